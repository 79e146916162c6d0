//! Typed handles on loaded maps, and views of global data.
//!
//! A skeleton hands out one handle per map, typed by the map's BTF key and
//! value: [`Map`] for hash/array-like maps, [`PerCpuMap`] for per-CPU maps,
//! [`ProgArray`], [`MapOfMaps`], [`Queue`], [`Stack`], [`StackTraceMap`],
//! [`RingBufMap`] and [`PerfEventArrayMap`] for maps with their own semantics,
//! [`StructOpsMap`] for struct_ops maps (registered, not read or written),
//! [`UntypedMap`] when BTF names no key/value types, and [`DataMap`] /
//! [`FrozenData`] for `.bss`, `.data` and `.rodata`.
//!
//! Every handle owns its [`MapFd`] and the map's name, checks
//! at construction that the map's type and sizes fit the Rust types, and copies
//! keys and values through [`Plain`](crate::Plain) byte views: no `unsafe`.
//! No handle gives a `&`/`&mut` into memory BPF programs write: see
//! [`DataMap`] for why.
//!
//! # Sharing between threads
//!
//! Handles are `Send` and `Sync` whatever `K` and `V` are (they only ever hold
//! bytes of those types transiently): a map fd may be used from any thread and
//! the kernel serialises concurrent element operations on one map itself, so
//! every element method takes `&self`. Only [`DataMap`]'s writes take
//! `&mut self`, because they go through a shared mapping that Rust code must not
//! write from two places at once.
//!
//! Handles are deliberately not `Clone`: one handle owns one fd.

mod bloom;
mod data;
mod error;
mod iter;
mod percpu;
mod special;
mod struct_ops;
mod typed;
mod untyped;

use std::os::fd::{AsFd, BorrowedFd};

use crate::sys::{self, elem_flags, map_type, MapFd, MapInfo, SysError};

pub use bloom::BloomFilter;
pub use data::{DataMap, FrozenData};
pub use error::MapError;
pub use iter::{BatchCursor, Entries, Keys, PerCpuEntries, RawKeys};
pub use percpu::PerCpuMap;
pub use special::{
    MapOfMaps, PerfEventArrayMap, ProgArray, Queue, RingBufMap, Stack, StackTraceMap,
};
pub use struct_ops::StructOpsMap;
pub use typed::Map;
pub use untyped::UntypedMap;

/// How an update treats an existing element (`BPF_ANY`, `BPF_NOEXIST`,
/// `BPF_EXIST`, `BPF_F_LOCK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UpdateFlags {
    /// Create or replace.
    #[default]
    Any,
    /// Create only: fails with `EEXIST` if the key exists.
    NoExist,
    /// Replace only: fails with `ENOENT` if the key does not exist. For queues
    /// and stacks: push even when full, dropping the oldest element.
    Exist,
    /// Create or replace while holding the value's `struct bpf_spin_lock`
    /// (the value type must contain one).
    Lock,
}

impl UpdateFlags {
    /// The `flags` word the kernel takes.
    pub fn bits(self) -> u64 {
        match self {
            UpdateFlags::Any => elem_flags::ANY,
            UpdateFlags::NoExist => elem_flags::NOEXIST,
            UpdateFlags::Exist => elem_flags::EXIST,
            UpdateFlags::Lock => elem_flags::LOCK,
        }
    }
}

/// The name of a map type, for messages.
pub(crate) fn type_name(t: u32) -> String {
    let name = match t {
        map_type::HASH => "HASH",
        map_type::ARRAY => "ARRAY",
        map_type::PROG_ARRAY => "PROG_ARRAY",
        map_type::PERF_EVENT_ARRAY => "PERF_EVENT_ARRAY",
        map_type::PERCPU_HASH => "PERCPU_HASH",
        map_type::PERCPU_ARRAY => "PERCPU_ARRAY",
        map_type::STACK_TRACE => "STACK_TRACE",
        map_type::CGROUP_ARRAY => "CGROUP_ARRAY",
        map_type::LRU_HASH => "LRU_HASH",
        map_type::LRU_PERCPU_HASH => "LRU_PERCPU_HASH",
        map_type::LPM_TRIE => "LPM_TRIE",
        map_type::ARRAY_OF_MAPS => "ARRAY_OF_MAPS",
        map_type::HASH_OF_MAPS => "HASH_OF_MAPS",
        map_type::PERCPU_CGROUP_STORAGE => "PERCPU_CGROUP_STORAGE",
        map_type::QUEUE => "QUEUE",
        map_type::STACK => "STACK",
        map_type::RINGBUF => "RINGBUF",
        map_type::BLOOM_FILTER => "BLOOM_FILTER",
        map_type::USER_RINGBUF => "USER_RINGBUF",
        other => return format!("type {other}"),
    };
    name.to_string()
}

/// The fd and name every handle owns, and what they all do with them.
#[derive(Debug)]
pub(crate) struct Handle {
    fd: MapFd,
    name: String,
}

impl Handle {
    pub(crate) fn new(fd: MapFd, name: &str) -> Self {
        Handle {
            fd,
            name: name.to_string(),
        }
    }

    pub(crate) fn fd(&self) -> &MapFd {
        &self.fd
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn borrowed(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Wrap a syscall-layer error with this map's name and `op`.
    pub(crate) fn sys(&self, op: &'static str) -> impl FnOnce(SysError) -> MapError + '_ {
        move |source| MapError::Sys {
            map: self.name.clone(),
            op,
            source,
        }
    }

    pub(crate) fn invalid(&self, op: &'static str, reason: impl Into<String>) -> MapError {
        MapError::InvalidArgument {
            map: self.name.clone(),
            op,
            reason: reason.into(),
        }
    }

    pub(crate) fn wrong_type(self, handle: &'static str, expected: &'static str) -> MapError {
        MapError::WrongType {
            actual: type_name(self.fd.map_type()),
            map: self.name,
            handle,
            expected,
        }
    }

    /// `SizeMismatch` unless the map's sizes are exactly `key` and `value`.
    pub(crate) fn check_sizes(
        self,
        handle: &'static str,
        key: usize,
        value: usize,
    ) -> Result<Self, MapError> {
        let (key_size, value_size) = (self.fd.key_size(), self.fd.value_size());
        if key_size as usize == key && value_size as usize == value {
            return Ok(self);
        }
        Err(MapError::SizeMismatch {
            map: self.name,
            handle,
            rust_key: key,
            rust_value: value,
            key_size,
            value_size,
        })
    }

    pub(crate) fn info(&self) -> Result<MapInfo, MapError> {
        sys::map_info(&self.fd).map_err(self.sys("info"))
    }

    pub(crate) fn freeze(&self) -> Result<(), MapError> {
        self.fd.freeze().map_err(self.sys("freeze"))
    }

    /// A zeroed buffer of one user-space value (per-CPU maps: every CPU's slot).
    pub(crate) fn value_buf(&self, op: &'static str) -> Result<Vec<u8>, MapError> {
        let len = self.fd.user_value_size().map_err(self.sys(op))?;
        Ok(vec![0; len])
    }
}

/// The `index`-th `size`-byte record of `buf`, if it is all there.
pub(crate) fn record(buf: &[u8], index: usize, size: usize) -> Option<&[u8]> {
    let start = index.checked_mul(size)?;
    buf.get(start..start.checked_add(size)?)
}

/// As [`record`], writable.
pub(crate) fn record_mut(buf: &mut [u8], index: usize, size: usize) -> Option<&mut [u8]> {
    let start = index.checked_mul(size)?;
    buf.get_mut(start..start.checked_add(size)?)
}

/// Which handle serves a map type that [`Map`] refuses, for the error message.
pub(crate) fn dedicated_handle(t: u32) -> Option<&'static str> {
    Some(match t {
        map_type::PERCPU_HASH
        | map_type::PERCPU_ARRAY
        | map_type::LRU_PERCPU_HASH
        | map_type::PERCPU_CGROUP_STORAGE => "a map without per-CPU values (use PerCpuMap)",
        map_type::PROG_ARRAY => "a map of plain values (use ProgArray)",
        map_type::ARRAY_OF_MAPS | map_type::HASH_OF_MAPS => "a map of plain values (use MapOfMaps)",
        map_type::QUEUE => "a map with keys (use Queue)",
        map_type::STACK => "a map with keys (use Stack)",
        map_type::STACK_TRACE => "a map of plain values (use StackTraceMap)",
        map_type::RINGBUF => "a map with elements (use RingBufMap)",
        map_type::USER_RINGBUF => "a map with elements (user ring buffers have no handle yet)",
        map_type::PERF_EVENT_ARRAY => "a map of plain values (use PerfEventArrayMap)",
        _ => return None,
    })
}
