//! `bpf_map_info`, `bpf_prog_info`, `bpf_link_info` and `bpf_btf_info` with the
//! kernel's layout, as `BPF_OBJ_GET_INFO_BY_FD` fills them.
//!
//! These are plain data: pointer fields come back as the integers the kernel
//! wrote (zero unless a buffer was supplied by this module).

use super::gateway::Attr;

/// The NUL-terminated name in a `BPF_OBJ_NAME_LEN` field, lossily decoded.
fn name_of(raw: &[u8; 16]) -> String {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(raw.get(..end).unwrap_or_default()).into_owned()
}

macro_rules! info_struct {
    ($(#[$meta:meta])* $name:ident, size = $size:expr, { $($(#[$fmeta:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[repr(C, align(8))]
        #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
        }
        // SAFETY: repr(C), integer fields only, no implicit padding (checked below).
        unsafe impl Attr for $name {}
        const _: () = {
            let sum = 0 $(+ std::mem::size_of::<$ty>())*;
            assert!(std::mem::size_of::<$name>() == $size);
            assert!(sum == $size, "implicit padding");
        };
    };
}

info_struct!(
    /// `struct bpf_map_info`.
    MapInfo, size = 88, {
        /// Map type (`type` in the uapi).
        map_type: u32,
        /// Map id.
        id: u32,
        /// Key size in bytes.
        key_size: u32,
        /// Value size in bytes.
        value_size: u32,
        /// `max_entries`.
        max_entries: u32,
        /// `map_flags`.
        map_flags: u32,
        /// Name, NUL-padded; see [`MapInfo::name`].
        name: [u8; 16],
        /// Offload device.
        ifindex: u32,
        /// `btf_vmlinux_value_type_id`.
        btf_vmlinux_value_type_id: u32,
        /// Network namespace device of an offloaded map.
        netns_dev: u64,
        /// Network namespace inode of an offloaded map.
        netns_ino: u64,
        /// BTF object id.
        btf_id: u32,
        /// BTF key type id.
        btf_key_type_id: u32,
        /// BTF value type id.
        btf_value_type_id: u32,
        /// Padding.
        pad0: u32,
        /// `map_extra`.
        map_extra: u64,
    }
);

impl MapInfo {
    /// The map name.
    pub fn name(&self) -> String {
        name_of(&self.name)
    }
}

info_struct!(
    /// `struct bpf_prog_info`.
    ProgInfo, size = 232, {
        /// Program type (`type` in the uapi).
        prog_type: u32,
        /// Program id.
        id: u32,
        /// The program tag (hash of the instructions).
        tag: [u8; 8],
        /// Bytes of JITed code.
        jited_prog_len: u32,
        /// Bytes of translated instructions.
        xlated_prog_len: u32,
        /// Buffer address (unused here: zero).
        jited_prog_insns: u64,
        /// Buffer address (unused here: zero).
        xlated_prog_insns: u64,
        /// Load time, ns since boot.
        load_time: u64,
        /// Uid of the loader.
        created_by_uid: u32,
        /// Number of maps used.
        nr_map_ids: u32,
        /// Buffer address for map ids.
        map_ids: u64,
        /// Name, NUL-padded; see [`ProgInfo::name`].
        name: [u8; 16],
        /// Offload device.
        ifindex: u32,
        /// Bit 0: GPL compatible.
        gpl_compatible: u32,
        /// Network namespace device.
        netns_dev: u64,
        /// Network namespace inode.
        netns_ino: u64,
        /// Count of JITed symbols.
        nr_jited_ksyms: u32,
        /// Count of JITed function lengths.
        nr_jited_func_lens: u32,
        /// Buffer address.
        jited_ksyms: u64,
        /// Buffer address.
        jited_func_lens: u64,
        /// BTF object id.
        btf_id: u32,
        /// `func_info_rec_size`.
        func_info_rec_size: u32,
        /// Buffer address.
        func_info: u64,
        /// Count of func_info records.
        nr_func_info: u32,
        /// Count of line_info records.
        nr_line_info: u32,
        /// Buffer address.
        line_info: u64,
        /// Buffer address.
        jited_line_info: u64,
        /// Count of JITed line_info records.
        nr_jited_line_info: u32,
        /// `line_info_rec_size`.
        line_info_rec_size: u32,
        /// `jited_line_info_rec_size`.
        jited_line_info_rec_size: u32,
        /// Count of program tags.
        nr_prog_tags: u32,
        /// Buffer address.
        prog_tags: u64,
        /// Cumulative run time in ns (with `BPF_ENABLE_STATS`).
        run_time_ns: u64,
        /// Run count (with `BPF_ENABLE_STATS`).
        run_cnt: u64,
        /// Runs skipped by recursion protection.
        recursion_misses: u64,
        /// Instructions the verifier processed.
        verified_insns: u32,
        /// BTF object id of the attach target.
        attach_btf_obj_id: u32,
        /// BTF type id of the attach target.
        attach_btf_id: u32,
        /// Padding.
        pad0: u32,
    }
);

impl ProgInfo {
    /// The program name.
    pub fn name(&self) -> String {
        name_of(&self.name)
    }
    /// Whether the license is GPL compatible.
    pub fn is_gpl_compatible(&self) -> bool {
        self.gpl_compatible & 1 != 0
    }
}

info_struct!(
    /// `struct bpf_btf_info`.
    BtfInfo, size = 32, {
        /// Buffer address for the raw BTF.
        btf: u64,
        /// Size of the raw BTF.
        btf_size: u32,
        /// BTF object id.
        id: u32,
        /// Buffer address for the name.
        name: u64,
        /// Length of the name (including NUL).
        name_len: u32,
        /// Non-zero for vmlinux and module BTF.
        kernel_btf: u32,
    }
);

info_struct!(
    /// `struct bpf_link_info`: the common header plus the per-type union as
    /// words; accessors decode the unions this crate uses.
    LinkInfo, size = 80, {
        /// Link type (`enum bpf_link_type`; `type` in the uapi).
        link_type: u32,
        /// Link id.
        id: u32,
        /// Id of the attached program.
        prog_id: u32,
        /// Padding.
        pad0: u32,
        /// The per-type union, in native-endian 32-bit words.
        extra: [u32; 16],
    }
);

/// `enum bpf_link_type` values used by [`LinkInfo`]'s accessors.
#[allow(missing_docs)]
pub mod link_type {
    pub const RAW_TRACEPOINT: u32 = 1;
    pub const TRACING: u32 = 2;
    pub const CGROUP: u32 = 3;
    pub const ITER: u32 = 4;
    pub const NETNS: u32 = 5;
    pub const XDP: u32 = 6;
    pub const PERF_EVENT: u32 = 7;
    pub const KPROBE_MULTI: u32 = 8;
    pub const STRUCT_OPS: u32 = 9;
    pub const NETFILTER: u32 = 10;
    pub const TCX: u32 = 11;
    pub const UPROBE_MULTI: u32 = 12;
    pub const NETKIT: u32 = 13;
}

impl LinkInfo {
    fn word(&self, index: usize) -> u32 {
        self.extra.get(index).copied().unwrap_or(0)
    }

    /// `tracing.{attach_type, target_obj_id, target_btf_id}` for tracing links.
    pub fn tracing(&self) -> Option<(u32, u32, u32)> {
        (self.link_type == link_type::TRACING).then(|| (self.word(0), self.word(1), self.word(2)))
    }

    /// `xdp.ifindex` (also `tcx.ifindex`, `netkit.ifindex`).
    pub fn ifindex(&self) -> Option<u32> {
        matches!(
            self.link_type,
            link_type::XDP | link_type::TCX | link_type::NETKIT
        )
        .then(|| self.word(0))
    }

    /// `cgroup.cgroup_id` for cgroup links.
    pub fn cgroup_id(&self) -> Option<u64> {
        (self.link_type == link_type::CGROUP).then(|| {
            let mut bytes = [0u8; 8];
            bytes[..4].copy_from_slice(&self.word(0).to_ne_bytes());
            bytes[4..].copy_from_slice(&self.word(1).to_ne_bytes());
            u64::from_ne_bytes(bytes)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;

    /// Offsets checked against `offsetof()` on the uapi header.
    #[test]
    fn layouts_match_uapi() {
        assert_eq!(offset_of!(ProgInfo, name), 64);
        assert_eq!(offset_of!(ProgInfo, netns_dev), 88);
        assert_eq!(offset_of!(ProgInfo, run_cnt), 200);
        assert_eq!(offset_of!(ProgInfo, attach_btf_id), 224);
        assert_eq!(offset_of!(MapInfo, btf_id), 64);
        assert_eq!(offset_of!(MapInfo, map_extra), 80);
        assert_eq!(offset_of!(LinkInfo, extra), 16);
    }
}
