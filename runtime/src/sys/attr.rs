//! Per-command `union bpf_attr` members as `#[repr(C)]` structs (uapi
//! `linux/bpf.h` of 6.18), every padding byte an explicit field.
//!
//! The kernel copies `min(size, sizeof(bpf_attr))` bytes and zero-checks the tail
//! of a larger one, so each struct is passed with its own size: older kernels
//! accept it as long as the fields they do not know stay zero. Structs start
//! zeroed through `Default` and are filled by the typed builders of the other
//! modules.

use super::gateway::Attr;

/// `BPF_OBJ_NAME_LEN`.
pub(crate) const OBJ_NAME_LEN: usize = 16;

macro_rules! attr_struct {
    ($(#[$meta:meta])* $name:ident, size = $size:expr, { $($(#[$fmeta:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[repr(C, align(8))]
        #[derive(Debug, Default, Clone, Copy)]
        pub(crate) struct $name {
            $($(#[$fmeta])* pub(crate) $field: $ty,)*
        }
        // SAFETY: repr(C), integer fields only, and the size assertion below
        // together with the explicit `_pad` fields rules out implicit padding.
        unsafe impl Attr for $name {}
        const _: () = {
            let sum = 0 $(+ std::mem::size_of::<$ty>())*;
            assert!(std::mem::size_of::<$name>() == $size);
            assert!(sum == $size, "implicit padding");
        };
    };
}

attr_struct!(
    /// `BPF_MAP_CREATE`.
    MapCreateAttr, size = 80, {
        map_type: u32,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
        map_flags: u32,
        inner_map_fd: u32,
        numa_node: u32,
        map_name: [u8; OBJ_NAME_LEN],
        map_ifindex: u32,
        btf_fd: u32,
        btf_key_type_id: u32,
        btf_value_type_id: u32,
        btf_vmlinux_value_type_id: u32,
        map_extra: u64,
        value_type_btf_obj_fd: i32,
        map_token_fd: i32,
    }
);

attr_struct!(
    /// `BPF_MAP_*_ELEM`, `BPF_MAP_GET_NEXT_KEY`, `BPF_MAP_FREEZE`.
    ElemAttr, size = 32, {
        map_fd: u32,
        _pad: u32,
        key: u64,
        value_or_next_key: u64,
        flags: u64,
    }
);

attr_struct!(
    /// `BPF_MAP_*_BATCH`.
    BatchAttr, size = 56, {
        in_batch: u64,
        out_batch: u64,
        keys: u64,
        values: u64,
        count: u32,
        map_fd: u32,
        elem_flags: u64,
        flags: u64,
    }
);

attr_struct!(
    /// `BPF_PROG_LOAD`.
    ProgLoadAttr, size = 152, {
        prog_type: u32,
        insn_cnt: u32,
        insns: u64,
        license: u64,
        log_level: u32,
        log_size: u32,
        log_buf: u64,
        kern_version: u32,
        prog_flags: u32,
        prog_name: [u8; OBJ_NAME_LEN],
        prog_ifindex: u32,
        expected_attach_type: u32,
        prog_btf_fd: u32,
        func_info_rec_size: u32,
        func_info: u64,
        func_info_cnt: u32,
        line_info_rec_size: u32,
        line_info: u64,
        line_info_cnt: u32,
        attach_btf_id: u32,
        /// `attach_prog_fd` or `attach_btf_obj_fd` (a union in the uapi).
        attach_prog_or_btf_obj_fd: u32,
        core_relo_cnt: u32,
        fd_array: u64,
        core_relos: u64,
        core_relo_rec_size: u32,
        log_true_size: u32,
        prog_token_fd: i32,
        fd_array_cnt: u32,
    }
);

/// Offset of `log_buf` in [`ProgLoadAttr`].
pub(crate) const PROG_LOAD_LOG_BUF: usize = 32;

attr_struct!(
    /// `BPF_OBJ_PIN`, `BPF_OBJ_GET`.
    ObjAttr, size = 24, {
        pathname: u64,
        bpf_fd: u32,
        file_flags: u32,
        path_fd: i32,
        _pad: u32,
    }
);

attr_struct!(
    /// `BPF_PROG_ATTACH`, `BPF_PROG_DETACH`.
    ProgAttachAttr, size = 32, {
        target_fd_or_ifindex: u32,
        attach_bpf_fd: u32,
        attach_type: u32,
        attach_flags: u32,
        replace_bpf_fd: u32,
        relative_fd_or_id: u32,
        expected_revision: u64,
    }
);

attr_struct!(
    /// `BPF_PROG_TEST_RUN`.
    TestRunAttr, size = 80, {
        prog_fd: u32,
        retval: u32,
        data_size_in: u32,
        data_size_out: u32,
        data_in: u64,
        data_out: u64,
        repeat: u32,
        duration: u32,
        ctx_size_in: u32,
        ctx_size_out: u32,
        ctx_in: u64,
        ctx_out: u64,
        flags: u32,
        cpu: u32,
        batch_size: u32,
        _pad: u32,
    }
);

attr_struct!(
    /// `BPF_*_GET_NEXT_ID`, `BPF_*_GET_FD_BY_ID`.
    IdAttr, size = 16, {
        start_or_object_id: u32,
        next_id: u32,
        open_flags: u32,
        fd_by_id_token_fd: i32,
    }
);

attr_struct!(
    /// `BPF_OBJ_GET_INFO_BY_FD`.
    InfoAttr, size = 16, {
        bpf_fd: u32,
        info_len: u32,
        info: u64,
    }
);

attr_struct!(
    /// `BPF_RAW_TRACEPOINT_OPEN`.
    RawTracepointAttr, size = 24, {
        name: u64,
        prog_fd: u32,
        _pad: u32,
        cookie: u64,
    }
);

attr_struct!(
    /// `BPF_BTF_LOAD`.
    BtfLoadAttr, size = 40, {
        btf: u64,
        btf_log_buf: u64,
        btf_size: u32,
        btf_log_size: u32,
        btf_log_level: u32,
        btf_log_true_size: u32,
        btf_flags: u32,
        btf_token_fd: i32,
    }
);

/// Offset of `btf_log_buf` in [`BtfLoadAttr`].
pub(crate) const BTF_LOAD_LOG_BUF: usize = 8;

attr_struct!(
    /// `BPF_LINK_CREATE`. The per-attach-type union starting at byte 16 is kept as
    /// words and written through [`LinkCreateAttr::set_u32`] / `set_u64` with the
    /// uapi offsets (relative to the struct start).
    LinkCreateAttr, size = 64, {
        prog_or_map_fd: u32,
        target_fd_or_ifindex: u32,
        attach_type: u32,
        flags: u32,
        extra: [u32; 12],
    }
);

impl LinkCreateAttr {
    /// Byte offset where the union starts.
    const EXTRA: usize = 16;

    /// Write a `u32` at uapi byte `offset` inside the union.
    pub(crate) fn set_u32(&mut self, offset: usize, value: u32) {
        let Some(relative) = offset.checked_sub(Self::EXTRA) else {
            return;
        };
        if let Some(slot) = self.extra.get_mut(relative / 4) {
            *slot = value;
        }
    }

    /// Write a `u64` at uapi byte `offset` (8-aligned) inside the union, in
    /// native byte order as the kernel reads it.
    pub(crate) fn set_u64(&mut self, offset: usize, value: u64) {
        let bytes = value.to_ne_bytes();
        let (first, second) = bytes.split_at(4);
        let word = |half: &[u8]| {
            let mut w = [0u8; 4];
            w.copy_from_slice(half);
            u32::from_ne_bytes(w)
        };
        self.set_u32(offset, word(first));
        self.set_u32(offset + 4, word(second));
    }
}

attr_struct!(
    /// `BPF_LINK_DETACH`.
    LinkDetachAttr, size = 8, {
        link_fd: u32,
        _pad: u32,
    }
);

attr_struct!(
    /// `BPF_ENABLE_STATS`.
    EnableStatsAttr, size = 8, {
        stats_type: u32,
        _pad: u32,
    }
);

attr_struct!(
    /// `BPF_ITER_CREATE`.
    IterCreateAttr, size = 8, {
        link_fd: u32,
        flags: u32,
    }
);

attr_struct!(
    /// `BPF_PROG_BIND_MAP`.
    ProgBindMapAttr, size = 16, {
        prog_fd: u32,
        map_fd: u32,
        flags: u32,
        _pad: u32,
    }
);

/// Copy `name` into a `BPF_OBJ_NAME_LEN` field as the kernel accepts it:
/// at most 15 bytes followed by NUL, characters other than ASCII alphanumerics,
/// `_` and `.` replaced by `_` (the kernel rejects them with `EINVAL`).
pub(crate) fn obj_name(name: &str) -> [u8; OBJ_NAME_LEN] {
    let mut out = [0u8; OBJ_NAME_LEN];
    for (dst, &b) in out.iter_mut().take(OBJ_NAME_LEN - 1).zip(name.as_bytes()) {
        *dst = if b.is_ascii_alphanumeric() || b == b'_' || b == b'.' {
            b
        } else {
            b'_'
        };
    }
    out
}

/// An address for a `__aligned_u64` pointer field; 0 for an empty slice, so that
/// the kernel never sees a dangling address with a zero length.
pub(crate) fn ptr_of(bytes: &[u8]) -> u64 {
    if bytes.is_empty() {
        0
    } else {
        bytes.as_ptr() as u64
    }
}

/// Like [`ptr_of`] for output buffers.
pub(crate) fn mut_ptr_of(bytes: &mut [u8]) -> u64 {
    if bytes.is_empty() {
        0
    } else {
        bytes.as_mut_ptr() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;

    /// Offsets checked against `offsetof()` on the uapi header.
    #[test]
    fn layouts_match_uapi() {
        assert_eq!(offset_of!(MapCreateAttr, map_ifindex), 44);
        assert_eq!(offset_of!(MapCreateAttr, btf_vmlinux_value_type_id), 60);
        assert_eq!(offset_of!(MapCreateAttr, map_extra), 64);
        assert_eq!(offset_of!(BatchAttr, flags), 48);
        assert_eq!(offset_of!(ProgLoadAttr, log_buf), PROG_LOAD_LOG_BUF);
        assert_eq!(offset_of!(ProgLoadAttr, prog_ifindex), 64);
        assert_eq!(offset_of!(ProgLoadAttr, attach_btf_id), 108);
        assert_eq!(offset_of!(ProgLoadAttr, fd_array), 120);
        assert_eq!(offset_of!(ProgLoadAttr, core_relo_rec_size), 136);
        assert_eq!(offset_of!(ProgLoadAttr, log_true_size), 140);
        assert_eq!(offset_of!(TestRunAttr, ctx_out), 56);
        assert_eq!(offset_of!(TestRunAttr, batch_size), 72);
        assert_eq!(offset_of!(BtfLoadAttr, btf_log_buf), BTF_LOAD_LOG_BUF);
        assert_eq!(offset_of!(BtfLoadAttr, btf_log_level), 24);
        assert_eq!(offset_of!(LinkCreateAttr, extra), 16);
    }

    #[test]
    fn link_union_words() {
        let mut attr = LinkCreateAttr::default();
        attr.set_u64(24, 0x1122_3344_5566_7788);
        let bytes: Vec<u8> = attr.extra.iter().flat_map(|w| w.to_ne_bytes()).collect();
        assert_eq!(bytes[8..16], 0x1122_3344_5566_7788u64.to_ne_bytes());
        // Out-of-range offsets are ignored, not a panic.
        attr.set_u32(16 + 48, 1);
    }

    #[test]
    fn names_are_truncated_and_sanitised() {
        assert_eq!(
            &obj_name("a-very-long-map-name-here")[..],
            b"a_very_long_map\0"
        );
        assert_eq!(&obj_name("x.bss")[..6], b"x.bss\0");
    }
}
