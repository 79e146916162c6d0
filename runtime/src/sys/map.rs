//! `BPF_MAP_CREATE` and the element, batch and freeze commands.
//!
//! The kernel reads `key_size` bytes from every key pointer and writes
//! `value_size` (times the CPU count for per-CPU maps) bytes to every value
//! pointer, so the wrappers live on [`MapFd`], which knows those sizes and checks
//! every slice against them before the call.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use super::attr::{obj_name, BatchAttr, ElemAttr, MapCreateAttr, OBJ_NAME_LEN};
use super::gateway::{attr_bytes, bpf_fd, bpf_value, Cmd};
use super::host::num_possible_cpus;
use super::SysError;

/// Map type numbers (`enum bpf_map_type`) the runtime uses by name.
#[allow(missing_docs)]
pub mod map_type {
    pub const HASH: u32 = 1;
    pub const ARRAY: u32 = 2;
    pub const PROG_ARRAY: u32 = 3;
    pub const PERF_EVENT_ARRAY: u32 = 4;
    pub const PERCPU_HASH: u32 = 5;
    pub const PERCPU_ARRAY: u32 = 6;
    pub const STACK_TRACE: u32 = 7;
    pub const CGROUP_ARRAY: u32 = 8;
    pub const LRU_HASH: u32 = 9;
    pub const LRU_PERCPU_HASH: u32 = 10;
    pub const LPM_TRIE: u32 = 11;
    pub const ARRAY_OF_MAPS: u32 = 12;
    pub const HASH_OF_MAPS: u32 = 13;
    pub const PERCPU_CGROUP_STORAGE: u32 = 21;
    pub const QUEUE: u32 = 22;
    pub const STACK: u32 = 23;
    pub const RINGBUF: u32 = 27;
    pub const BLOOM_FILTER: u32 = 30;
    pub const USER_RINGBUF: u32 = 31;
}

/// `BPF_MAP_CREATE` flags (`map_flags`) the runtime uses by name.
#[allow(missing_docs)]
pub mod map_flags {
    pub const NO_PREALLOC: u32 = 1 << 0;
    pub const NUMA_NODE: u32 = 1 << 2;
    pub const RDONLY_PROG: u32 = 1 << 7;
    pub const WRONLY_PROG: u32 = 1 << 8;
    pub const MMAPABLE: u32 = 1 << 10;
    pub const INNER_MAP: u32 = 1 << 12;
}

/// Element update flags.
#[allow(missing_docs)]
pub mod elem_flags {
    pub const ANY: u64 = 0;
    pub const NOEXIST: u64 = 1;
    pub const EXIST: u64 = 2;
    pub const LOCK: u64 = 4;
}

/// Whether values of this map type are one slot per possible CPU in user space.
pub fn is_percpu(map_type: u32) -> bool {
    matches!(
        map_type,
        map_type::PERCPU_HASH
            | map_type::PERCPU_ARRAY
            | map_type::LRU_PERCPU_HASH
            | map_type::PERCPU_CGROUP_STORAGE
    )
}

/// Builder for `BPF_MAP_CREATE`.
#[derive(Debug, Clone)]
pub struct MapCreate<'fd> {
    attr: MapCreateAttr,
    name: String,
    inner_map: Option<BorrowedFd<'fd>>,
    btf: Option<BorrowedFd<'fd>>,
}

impl<'fd> MapCreate<'fd> {
    /// A map of `map_type` with the given sizes; everything else zero.
    pub fn new(map_type: u32, key_size: u32, value_size: u32, max_entries: u32) -> Self {
        let attr = MapCreateAttr {
            map_type,
            key_size,
            value_size,
            max_entries,
            ..MapCreateAttr::default()
        };
        MapCreate {
            attr,
            name: String::new(),
            inner_map: None,
            btf: None,
        }
    }

    /// `map_flags` (see [`map_flags`]).
    pub fn flags(mut self, flags: u32) -> Self {
        self.attr.map_flags = flags;
        self
    }

    /// The map name: truncated to 15 bytes, characters the kernel refuses replaced
    /// by `_`. Leave unset on kernels without names (before 4.15).
    pub fn name(mut self, name: &str) -> Self {
        self.attr.map_name = obj_name(name);
        self.name = name.to_string();
        self
    }

    /// The template inner map of a map-in-map.
    pub fn inner_map(mut self, fd: BorrowedFd<'fd>) -> Self {
        self.inner_map = Some(fd);
        self
    }

    /// NUMA node (also sets `BPF_F_NUMA_NODE`).
    pub fn numa_node(mut self, node: u32) -> Self {
        self.attr.numa_node = node;
        self.attr.map_flags |= map_flags::NUMA_NODE;
        self
    }

    /// BTF object and the key/value type ids in it.
    pub fn btf(mut self, btf: BorrowedFd<'fd>, key_type_id: u32, value_type_id: u32) -> Self {
        self.btf = Some(btf);
        self.attr.btf_key_type_id = key_type_id;
        self.attr.btf_value_type_id = value_type_id;
        self
    }

    /// `btf_vmlinux_value_type_id` (struct_ops maps).
    pub fn btf_vmlinux_value_type_id(mut self, id: u32) -> Self {
        self.attr.btf_vmlinux_value_type_id = id;
        self
    }

    /// `map_extra` (bloom filter hash count, arena address).
    pub fn map_extra(mut self, extra: u64) -> Self {
        self.attr.map_extra = extra;
        self
    }

    /// `map_ifindex` (device offload).
    pub fn ifindex(mut self, ifindex: u32) -> Self {
        self.attr.map_ifindex = ifindex;
        self
    }

    /// Create the map.
    pub fn create(&self) -> Result<MapFd, SysError> {
        let mut attr = self.attr;
        attr.inner_map_fd = self.inner_map.map_or(0, |fd| fd.as_raw_fd() as u32);
        attr.btf_fd = self.btf.map_or(0, |fd| fd.as_raw_fd() as u32);
        let fd = bpf_fd(Cmd::MapCreate, attr_bytes(&mut attr), None)
            .map_err(|errno| SysError::from_errno(Cmd::MapCreate.as_str(), errno, self.detail()))?;
        Ok(MapFd::from_parts(
            fd,
            self.attr.map_type,
            self.attr.key_size,
            self.attr.value_size,
            self.attr.max_entries,
            self.attr.map_flags,
        ))
    }

    fn detail(&self) -> Option<String> {
        let a = &self.attr;
        Some(format!(
            "map `{}`: type {}, key {} B, value {} B, max_entries {}, flags {:#x}",
            self.name, a.map_type, a.key_size, a.value_size, a.max_entries, a.map_flags
        ))
    }
}

/// A map fd with the geometry its element commands need.
#[derive(Debug)]
pub struct MapFd {
    fd: OwnedFd,
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    flags: u32,
}

impl AsFd for MapFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl From<MapFd> for OwnedFd {
    fn from(map: MapFd) -> OwnedFd {
        map.fd
    }
}

fn len_u32(op: &'static str, what: &str, len: usize) -> Result<u32, SysError> {
    u32::try_from(len)
        .map_err(|_| SysError::invalid(op, format!("{what} of {len} bytes exceeds u32")))
}

impl MapFd {
    fn from_parts(
        fd: OwnedFd,
        map_type: u32,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
        flags: u32,
    ) -> Self {
        MapFd {
            fd,
            map_type,
            key_size,
            value_size,
            max_entries,
            flags,
        }
    }

    /// Wrap an fd of an existing map (from `BPF_OBJ_GET`, `BPF_MAP_GET_FD_BY_ID`),
    /// asking the kernel for its geometry.
    pub fn from_fd(fd: OwnedFd) -> Result<Self, SysError> {
        let info = super::object::map_info(&fd)?;
        Ok(MapFd::from_parts(
            fd,
            info.map_type,
            info.key_size,
            info.value_size,
            info.max_entries,
            info.map_flags,
        ))
    }

    /// The map type.
    pub fn map_type(&self) -> u32 {
        self.map_type
    }
    /// The key size in bytes.
    pub fn key_size(&self) -> u32 {
        self.key_size
    }
    /// The value size in bytes, as given at creation (one CPU's slot for per-CPU maps).
    pub fn value_size(&self) -> u32 {
        self.value_size
    }
    /// `max_entries`.
    pub fn max_entries(&self) -> u32 {
        self.max_entries
    }
    /// `map_flags`.
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// Bytes of a value buffer as user space sees it: `value_size`, or for per-CPU
    /// maps `round_up(value_size, 8)` for each possible CPU.
    pub fn user_value_size(&self) -> Result<usize, SysError> {
        let size = self.value_size as usize;
        if is_percpu(self.map_type) {
            Ok(size.next_multiple_of(8) * num_possible_cpus()?)
        } else {
            Ok(size)
        }
    }

    fn check_key(&self, op: &'static str, key: &[u8]) -> Result<(), SysError> {
        if key.len() != self.key_size as usize {
            return Err(SysError::invalid(
                op,
                format!(
                    "key is {} bytes, the map's key_size is {}",
                    key.len(),
                    self.key_size
                ),
            ));
        }
        Ok(())
    }

    fn check_value(
        &self,
        op: &'static str,
        value_len: usize,
        count: usize,
    ) -> Result<(), SysError> {
        let one = self.user_value_size()?;
        let want = one
            .checked_mul(count)
            .ok_or_else(|| SysError::invalid(op, "value buffer size overflows"))?;
        if value_len < want {
            return Err(SysError::invalid(
                op,
                format!("value buffer is {value_len} bytes, {want} needed ({count} x {one})"),
            ));
        }
        Ok(())
    }

    fn key_ptr(key: &[u8]) -> u64 {
        super::attr::ptr_of(key)
    }

    /// `BPF_MAP_LOOKUP_ELEM`: copy the value of `key` into `value` (at least
    /// [`MapFd::user_value_size`] bytes). `Ok(false)` if there is no such key.
    pub fn lookup(&self, key: &[u8], value: &mut [u8], flags: u64) -> Result<bool, SysError> {
        let op = Cmd::MapLookupElem.as_str();
        self.check_key(op, key)?;
        self.check_value(op, value.len(), 1)?;
        let mut attr = ElemAttr {
            map_fd: self.fd.as_raw_fd() as u32,
            key: Self::key_ptr(key),
            value_or_next_key: super::attr::mut_ptr_of(value),
            flags,
            ..ElemAttr::default()
        };
        self.found(Cmd::MapLookupElem, &mut attr)
    }

    /// `BPF_MAP_UPDATE_ELEM` with [`elem_flags`].
    pub fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), SysError> {
        let op = Cmd::MapUpdateElem.as_str();
        self.check_key(op, key)?;
        self.check_value(op, value.len(), 1)?;
        let mut attr = ElemAttr {
            map_fd: self.fd.as_raw_fd() as u32,
            key: Self::key_ptr(key),
            value_or_next_key: super::attr::ptr_of(value),
            flags,
            ..ElemAttr::default()
        };
        bpf_value(Cmd::MapUpdateElem, attr_bytes(&mut attr), None)
            .map(drop)
            .map_err(|errno| SysError::from_errno(op, errno, None))
    }

    /// `BPF_MAP_DELETE_ELEM`. `Ok(false)` if there was no such key.
    pub fn delete(&self, key: &[u8]) -> Result<bool, SysError> {
        self.check_key(Cmd::MapDeleteElem.as_str(), key)?;
        let mut attr = ElemAttr {
            map_fd: self.fd.as_raw_fd() as u32,
            key: Self::key_ptr(key),
            ..ElemAttr::default()
        };
        self.found(Cmd::MapDeleteElem, &mut attr)
    }

    /// `BPF_MAP_GET_NEXT_KEY`: the key after `key` (the first key for `None`) into
    /// `next_key`. `Ok(false)` at the end.
    pub fn next_key(&self, key: Option<&[u8]>, next_key: &mut [u8]) -> Result<bool, SysError> {
        let op = Cmd::MapGetNextKey.as_str();
        if let Some(key) = key {
            self.check_key(op, key)?;
        }
        self.check_key(op, next_key)?;
        let mut attr = ElemAttr {
            map_fd: self.fd.as_raw_fd() as u32,
            key: key.map_or(0, Self::key_ptr),
            value_or_next_key: super::attr::mut_ptr_of(next_key),
            ..ElemAttr::default()
        };
        self.found(Cmd::MapGetNextKey, &mut attr)
    }

    /// `BPF_MAP_LOOKUP_AND_DELETE_ELEM`; `key` is `None` for queue and stack maps.
    /// `Ok(false)` if there was nothing to take.
    pub fn lookup_and_delete(
        &self,
        key: Option<&[u8]>,
        value: &mut [u8],
        flags: u64,
    ) -> Result<bool, SysError> {
        let op = Cmd::MapLookupAndDeleteElem.as_str();
        match key {
            Some(key) => self.check_key(op, key)?,
            None if self.key_size != 0 => {
                return Err(SysError::invalid(
                    op,
                    format!("a key of {} bytes is required", self.key_size),
                ))
            }
            None => {}
        }
        self.check_value(op, value.len(), 1)?;
        let mut attr = ElemAttr {
            map_fd: self.fd.as_raw_fd() as u32,
            key: key.map_or(0, Self::key_ptr),
            value_or_next_key: super::attr::mut_ptr_of(value),
            flags,
            ..ElemAttr::default()
        };
        self.found(Cmd::MapLookupAndDeleteElem, &mut attr)
    }

    /// `BPF_MAP_FREEZE`: no more writes from user space.
    pub fn freeze(&self) -> Result<(), SysError> {
        let mut attr = ElemAttr {
            map_fd: self.fd.as_raw_fd() as u32,
            ..ElemAttr::default()
        };
        bpf_value(Cmd::MapFreeze, attr_bytes(&mut attr), None)
            .map(drop)
            .map_err(|errno| SysError::from_errno(Cmd::MapFreeze.as_str(), errno, None))
    }

    fn found(&self, cmd: Cmd, attr: &mut ElemAttr) -> Result<bool, SysError> {
        match bpf_value(cmd, attr_bytes(attr), None) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(errno) => Err(SysError::from_errno(cmd.as_str(), errno, None)),
        }
    }

    /// Size of a batch cursor: the kernel reads and writes `key_size` bytes for
    /// arrays and 4 bytes (a bucket index) for hash maps.
    pub fn batch_cursor_size(&self) -> usize {
        (self.key_size as usize).max(4)
    }

    #[allow(clippy::too_many_arguments)]
    fn batch_common(
        &self,
        cmd: Cmd,
        cursor: BatchCursor<'_>,
        keys: u64,
        keys_len: usize,
        values: u64,
        values_len: usize,
        count: usize,
        opts: BatchOpts,
    ) -> Result<BatchResult, SysError> {
        let op = cmd.as_str();
        let need_keys = count
            .checked_mul(self.key_size as usize)
            .ok_or_else(|| SysError::invalid(op, "key buffer size overflows"))?;
        if keys_len < need_keys {
            return Err(SysError::invalid(
                op,
                format!("keys buffer is {keys_len} bytes, {need_keys} needed"),
            ));
        }
        if values != 0 || cmd != Cmd::MapDeleteBatch {
            self.check_value(op, values_len, count)?;
        }
        let (in_batch, out_batch) = match cursor {
            BatchCursor::None => (0, 0),
            BatchCursor::Lookup {
                in_batch,
                out_batch,
            } => {
                let size = self.batch_cursor_size();
                if in_batch.is_some_and(|b| b.len() < size) || out_batch.len() < size {
                    return Err(SysError::invalid(
                        op,
                        format!("batch cursors must hold {size} bytes"),
                    ));
                }
                (
                    in_batch.map_or(0, super::attr::ptr_of),
                    super::attr::mut_ptr_of(out_batch),
                )
            }
        };
        let mut attr = BatchAttr {
            in_batch,
            out_batch,
            keys,
            values,
            count: len_u32(op, "count", count)?,
            map_fd: self.fd.as_raw_fd() as u32,
            elem_flags: opts.elem_flags,
            flags: opts.flags,
        };
        let result = bpf_value(cmd, attr_bytes(&mut attr), None);
        let done = attr.count as usize;
        match result {
            Ok(_) => Ok(BatchResult {
                count: done,
                finished: false,
            }),
            // ENOENT: the walk reached the end; `count` says how many came back.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(BatchResult {
                count: done,
                finished: true,
            }),
            Err(errno) => Err(SysError::from_errno(
                op,
                errno,
                Some(format!("{done} of {count} elements done")),
            )),
        }
    }

    /// `BPF_MAP_LOOKUP_BATCH`: up to `count` entries into `keys`/`values`,
    /// starting after `in_batch` (`None` = from the start); the cursor to continue
    /// from is written to `out_batch` ([`MapFd::batch_cursor_size`] bytes).
    #[allow(clippy::too_many_arguments)]
    pub fn lookup_batch(
        &self,
        in_batch: Option<&[u8]>,
        out_batch: &mut [u8],
        keys: &mut [u8],
        values: &mut [u8],
        count: usize,
        opts: BatchOpts,
    ) -> Result<BatchResult, SysError> {
        self.lookup_batch_cmd(
            Cmd::MapLookupBatch,
            in_batch,
            out_batch,
            keys,
            values,
            count,
            opts,
        )
    }

    /// `BPF_MAP_LOOKUP_AND_DELETE_BATCH`: as [`MapFd::lookup_batch`], deleting
    /// what it returns.
    #[allow(clippy::too_many_arguments)]
    pub fn lookup_and_delete_batch(
        &self,
        in_batch: Option<&[u8]>,
        out_batch: &mut [u8],
        keys: &mut [u8],
        values: &mut [u8],
        count: usize,
        opts: BatchOpts,
    ) -> Result<BatchResult, SysError> {
        self.lookup_batch_cmd(
            Cmd::MapLookupAndDeleteBatch,
            in_batch,
            out_batch,
            keys,
            values,
            count,
            opts,
        )
    }

    /// The two lookup batch commands differ only in what the kernel does
    /// with the entries it returns.
    #[allow(clippy::too_many_arguments)]
    fn lookup_batch_cmd(
        &self,
        cmd: Cmd,
        in_batch: Option<&[u8]>,
        out_batch: &mut [u8],
        keys: &mut [u8],
        values: &mut [u8],
        count: usize,
        opts: BatchOpts,
    ) -> Result<BatchResult, SysError> {
        let (kl, vl) = (keys.len(), values.len());
        let (k, v) = (
            super::attr::mut_ptr_of(keys),
            super::attr::mut_ptr_of(values),
        );
        self.batch_common(
            cmd,
            BatchCursor::Lookup {
                in_batch,
                out_batch,
            },
            k,
            kl,
            v,
            vl,
            count,
            opts,
        )
    }

    /// `BPF_MAP_UPDATE_BATCH`: `keys.len() / key_size` entries.
    pub fn update_batch(
        &self,
        keys: &[u8],
        values: &[u8],
        opts: BatchOpts,
    ) -> Result<BatchResult, SysError> {
        let count = self.count_of(Cmd::MapUpdateBatch.as_str(), keys)?;
        self.batch_common(
            Cmd::MapUpdateBatch,
            BatchCursor::None,
            super::attr::ptr_of(keys),
            keys.len(),
            super::attr::ptr_of(values),
            values.len(),
            count,
            opts,
        )
    }

    /// `BPF_MAP_DELETE_BATCH`: `keys.len() / key_size` entries.
    pub fn delete_batch(&self, keys: &[u8], opts: BatchOpts) -> Result<BatchResult, SysError> {
        let count = self.count_of(Cmd::MapDeleteBatch.as_str(), keys)?;
        self.batch_common(
            Cmd::MapDeleteBatch,
            BatchCursor::None,
            super::attr::ptr_of(keys),
            keys.len(),
            0,
            0,
            count,
            opts,
        )
    }

    fn count_of(&self, op: &'static str, keys: &[u8]) -> Result<usize, SysError> {
        let size = self.key_size as usize;
        if size == 0 || keys.len() % size != 0 {
            return Err(SysError::invalid(
                op,
                format!(
                    "keys buffer of {} bytes is not a whole number of {size}-byte keys",
                    keys.len()
                ),
            ));
        }
        Ok(keys.len() / size)
    }
}

enum BatchCursor<'a> {
    None,
    Lookup {
        in_batch: Option<&'a [u8]>,
        out_batch: &'a mut [u8],
    },
}

/// `elem_flags` and `flags` of a batch command.
#[derive(Debug, Clone, Copy, Default)]
pub struct BatchOpts {
    /// Per-element flags ([`elem_flags`]).
    pub elem_flags: u64,
    /// Command flags.
    pub flags: u64,
}

/// What a batch command did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchResult {
    /// Elements processed (filled, for lookups).
    pub count: usize,
    /// The kernel reported the end of the map (`ENOENT`).
    pub finished: bool,
}

const _: () = assert!(OBJ_NAME_LEN == 16);
