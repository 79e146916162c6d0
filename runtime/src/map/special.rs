//! Handles for maps with their own semantics: program arrays, maps of maps,
//! queues and stacks, stack traces, ring buffers and perf event arrays.

use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use super::{Handle, Keys, MapError, UpdateFlags};
use crate::sys::{map_type, MapFd, MapInfo};
use crate::Plain;

/// `name()`, `fd()`, `map_fd()` and `info()` for a handle with a `handle` field.
macro_rules! accessors {
    () => {
        /// The map's name.
        pub fn name(&self) -> &str {
            self.handle.name()
        }

        /// The map fd.
        pub fn fd(&self) -> BorrowedFd<'_> {
            self.handle.borrowed()
        }

        /// The map fd with its geometry.
        pub fn map_fd(&self) -> &MapFd {
            self.handle.fd()
        }

        /// What the kernel says about the map.
        pub fn info(&self) -> Result<MapInfo, MapError> {
            self.handle.info()
        }
    };
}

/// Check the map type, or fail naming what `handle` needs.
fn expect_type(
    handle: Handle,
    name: &'static str,
    types: &[u32],
    expected: &'static str,
) -> Result<Handle, MapError> {
    if types.contains(&handle.fd().map_type()) {
        Ok(handle)
    } else {
        Err(handle.wrong_type(name, expected))
    }
}

/// The raw number of an fd, as fd-holding maps take it in their value.
fn fd_value(fd: impl AsFd) -> u32 {
    // Fds are non-negative, so the cast is lossless.
    fd.as_fd().as_raw_fd() as u32
}

/// A `PROG_ARRAY` (tail-call table): slots indexed by `u32` holding programs.
#[derive(Debug)]
pub struct ProgArray {
    handle: Handle,
}

impl ProgArray {
    /// Wrap `fd` of a `PROG_ARRAY` map.
    pub fn new(fd: MapFd, name: &str) -> Result<Self, MapError> {
        let handle = expect_type(
            Handle::new(fd, name),
            "ProgArray",
            &[map_type::PROG_ARRAY],
            "a PROG_ARRAY map",
        )?;
        let handle = handle.check_sizes("ProgArray", 4, 4)?;
        Ok(ProgArray { handle })
    }

    accessors!();

    /// Number of slots (`max_entries`).
    pub fn len(&self) -> u32 {
        self.handle.fd().max_entries()
    }

    /// Whether the array has no slots.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Put `prog` in slot `index` (the kernel takes its own reference). Fails
    /// with `E2BIG` past the end and `EINVAL` for a program of another type.
    pub fn set(&self, index: u32, prog: impl AsFd) -> Result<(), MapError> {
        self.handle
            .fd()
            .update(
                index.as_bytes(),
                fd_value(prog).as_bytes(),
                UpdateFlags::Any.bits(),
            )
            .map_err(self.handle.sys("set"))
    }

    /// Empty slot `index`; `Ok(false)` if it was empty.
    pub fn clear(&self, index: u32) -> Result<bool, MapError> {
        self.handle
            .fd()
            .delete(index.as_bytes())
            .map_err(self.handle.sys("clear"))
    }

    /// The id of the program in slot `index`, or `None` if it is empty.
    pub fn get(&self, index: u32) -> Result<Option<u32>, MapError> {
        let mut id = 0u32;
        let found = self
            .handle
            .fd()
            .lookup(index.as_bytes(), id.as_bytes_mut(), 0)
            .map_err(self.handle.sys("get"))?;
        Ok(found.then_some(id))
    }

    /// The indices of occupied slots.
    pub fn indices(&self) -> Keys<'_, u32> {
        Keys::new(&self.handle)
    }
}

/// An `ARRAY_OF_MAPS` or `HASH_OF_MAPS`: keys `K` mapping to inner maps.
/// Lookups return the inner map's id, as the kernel does.
#[derive(Debug)]
pub struct MapOfMaps<K> {
    handle: Handle,
    _key: PhantomData<fn() -> K>,
}

impl<K: Plain> MapOfMaps<K> {
    /// Wrap `fd` of a map-in-map whose key is `K`.
    pub fn new(fd: MapFd, name: &str) -> Result<Self, MapError> {
        let handle = expect_type(
            Handle::new(fd, name),
            "MapOfMaps",
            &[map_type::ARRAY_OF_MAPS, map_type::HASH_OF_MAPS],
            "an ARRAY_OF_MAPS or HASH_OF_MAPS map",
        )?;
        let handle = handle.check_sizes("MapOfMaps", size_of::<K>(), 4)?;
        Ok(MapOfMaps {
            handle,
            _key: PhantomData,
        })
    }

    accessors!();

    /// Make `inner` the map of `key`. The kernel checks that it matches the
    /// template inner map (type, sizes, flags) and fails with `EINVAL` if not.
    pub fn set(&self, key: &K, inner: impl AsFd) -> Result<(), MapError> {
        self.handle
            .fd()
            .update(
                key.as_bytes(),
                fd_value(inner).as_bytes(),
                UpdateFlags::Any.bits(),
            )
            .map_err(self.handle.sys("set"))
    }

    /// Remove the map of `key`; `Ok(false)` if there was none.
    pub fn delete(&self, key: &K) -> Result<bool, MapError> {
        self.handle
            .fd()
            .delete(key.as_bytes())
            .map_err(self.handle.sys("delete"))
    }

    /// The id of the inner map of `key`, or `None`. Open it with
    /// [`sys::get_fd_by_id`](crate::sys::get_fd_by_id).
    pub fn get_id(&self, key: &K) -> Result<Option<u32>, MapError> {
        let mut id = 0u32;
        let found = self
            .handle
            .fd()
            .lookup(key.as_bytes(), id.as_bytes_mut(), 0)
            .map_err(self.handle.sys("get_id"))?;
        Ok(found.then_some(id))
    }

    /// The keys that have an inner map (for arrays: every index).
    pub fn keys(&self) -> Keys<'_, K> {
        Keys::new(&self.handle)
    }
}

/// What `Queue` and `Stack` share: only the end that `pop` takes differs, and
/// the kernel decides that from the map type.
#[derive(Debug)]
struct PushPop<V> {
    handle: Handle,
    _value: PhantomData<fn() -> V>,
}

impl<V: Plain> PushPop<V> {
    fn new(
        fd: MapFd,
        name: &str,
        which: &'static str,
        t: u32,
        expected: &'static str,
    ) -> Result<Self, MapError> {
        let handle = expect_type(Handle::new(fd, name), which, &[t], expected)?;
        let handle = handle.check_sizes(which, 0, size_of::<V>())?;
        Ok(PushPop {
            handle,
            _value: PhantomData,
        })
    }

    fn push(&self, value: &V, flags: UpdateFlags) -> Result<(), MapError> {
        self.handle
            .fd()
            .update(&[], value.as_bytes(), flags.bits())
            .map_err(self.handle.sys("push"))
    }

    fn pop(&self) -> Result<Option<V>, MapError> {
        let mut value = V::zeroed();
        let found = self
            .handle
            .fd()
            .lookup_and_delete(None, value.as_bytes_mut(), 0)
            .map_err(self.handle.sys("pop"))?;
        Ok(found.then_some(value))
    }

    fn peek(&self) -> Result<Option<V>, MapError> {
        let mut value = V::zeroed();
        let found = self
            .handle
            .fd()
            .lookup(&[], value.as_bytes_mut(), 0)
            .map_err(self.handle.sys("peek"))?;
        Ok(found.then_some(value))
    }
}

macro_rules! push_pop_handle {
    ($(#[$meta:meta])* $name:ident, $type:expr, $expected:literal, $end:literal) => {
        $(#[$meta])*
        #[derive(Debug)]
        pub struct $name<V> {
            inner: PushPop<V>,
        }

        impl<V: Plain> $name<V> {
            #[doc = concat!("Wrap `fd` of ", $expected, " whose value is `V`.")]
            pub fn new(fd: MapFd, name: &str) -> Result<Self, MapError> {
                PushPop::new(fd, name, stringify!($name), $type, $expected)
                    .map(|inner| $name { inner })
            }

            /// The map's name.
            pub fn name(&self) -> &str {
                self.inner.handle.name()
            }

            /// The map fd.
            pub fn fd(&self) -> BorrowedFd<'_> {
                self.inner.handle.borrowed()
            }

            /// The map fd with its geometry.
            pub fn map_fd(&self) -> &MapFd {
                self.inner.handle.fd()
            }

            /// What the kernel says about the map.
            pub fn info(&self) -> Result<MapInfo, MapError> {
                self.inner.handle.info()
            }

            /// Add `value`. When full, `Any` fails with `E2BIG` and `Exist` drops
            #[doc = concat!("the element at the ", $end, " end to make room.")]
            pub fn push(&self, value: &V, flags: UpdateFlags) -> Result<(), MapError> {
                self.inner.push(value, flags)
            }

            #[doc = concat!("Take the element at the ", $end, " end, or `None` if empty.")]
            pub fn pop(&self) -> Result<Option<V>, MapError> {
                self.inner.pop()
            }

            #[doc = concat!("Copy the element at the ", $end, " end without taking it.")]
            pub fn peek(&self) -> Result<Option<V>, MapError> {
                self.inner.peek()
            }
        }
    };
}

push_pop_handle!(
    /// A `QUEUE` map: first in, first out.
    Queue,
    map_type::QUEUE,
    "a QUEUE map",
    "oldest"
);

push_pop_handle!(
    /// A `STACK` map: last in, first out.
    Stack,
    map_type::STACK,
    "a STACK map",
    "newest"
);

/// `BPF_F_STACK_BUILD_ID`: values are build-id records, not addresses.
const STACK_BUILD_ID: u32 = 1 << 5;

/// A `STACK_TRACE` map: `bpf_get_stackid()` ids mapping to instruction
/// pointers.
#[derive(Debug)]
pub struct StackTraceMap {
    handle: Handle,
}

impl StackTraceMap {
    /// Wrap `fd` of a `STACK_TRACE` map of addresses (not build ids).
    pub fn new(fd: MapFd, name: &str) -> Result<Self, MapError> {
        let handle = expect_type(
            Handle::new(fd, name),
            "StackTraceMap",
            &[map_type::STACK_TRACE],
            "a STACK_TRACE map",
        )?;
        if handle.fd().flags() & STACK_BUILD_ID != 0 {
            return Err(handle.wrong_type(
                "StackTraceMap",
                "a STACK_TRACE map of addresses (BPF_F_STACK_BUILD_ID is not supported)",
            ));
        }
        let value_size = handle.fd().value_size();
        let handle = if value_size % 8 == 0 && value_size > 0 {
            handle.check_sizes("StackTraceMap", 4, value_size as usize)?
        } else {
            // Report the mismatch against the nearest size that would do.
            let want = (value_size as usize).next_multiple_of(8).max(8);
            handle.check_sizes("StackTraceMap", 4, want)?
        };
        Ok(StackTraceMap { handle })
    }

    accessors!();

    /// Most frames a trace can hold (`value_size / 8`).
    pub fn max_depth(&self) -> usize {
        self.handle.fd().value_size() as usize / 8
    }

    /// The addresses of stack `stack_id`, innermost first, up to the first zero
    /// (the kernel zero-fills the rest of a short trace), or `None` if the id
    /// is unused.
    pub fn lookup(&self, stack_id: u32) -> Result<Option<Vec<u64>>, MapError> {
        let op = "lookup";
        let mut buf = self.handle.value_buf(op)?;
        let found = self
            .handle
            .fd()
            .lookup(stack_id.as_bytes(), &mut buf, 0)
            .map_err(self.handle.sys(op))?;
        if !found {
            return Ok(None);
        }
        Ok(Some(
            (0..self.max_depth())
                .map_while(|i| super::record(&buf, i, 8).and_then(u64::read_from))
                .take_while(|&ip| ip != 0)
                .collect(),
        ))
    }

    /// Free stack `stack_id`; `Ok(false)` if it was unused.
    pub fn delete(&self, stack_id: u32) -> Result<bool, MapError> {
        self.handle
            .fd()
            .delete(stack_id.as_bytes())
            .map_err(self.handle.sys("delete"))
    }

    /// The ids in use.
    pub fn stack_ids(&self) -> Keys<'_, u32> {
        Keys::new(&self.handle)
    }
}

/// A `RINGBUF` map. The handle only owns the fd; a consumer maps and reads it.
///
/// It may also hold the `PERF_EVENT_ARRAY` the map was switched to before
/// load ([`OpenMap::set_type`](crate::skel::OpenMap::set_type)), as
/// libbpf-tools do on kernels without ring buffers: a skeleton's field keeps
/// this type either way, and [`perf_event_array`](Self::perf_event_array)
/// gives the handle a perf buffer consumes.
#[derive(Debug)]
pub struct RingBufMap {
    handle: Handle,
}

impl RingBufMap {
    /// Wrap `fd` of a `RINGBUF` map (or of one switched to a
    /// `PERF_EVENT_ARRAY` before load).
    pub fn new(fd: MapFd, name: &str) -> Result<Self, MapError> {
        expect_type(
            Handle::new(fd, name),
            "RingBufMap",
            &[map_type::RINGBUF, map_type::PERF_EVENT_ARRAY],
            "a RINGBUF map (or one switched to PERF_EVENT_ARRAY before load)",
        )
        .map(|handle| RingBufMap { handle })
    }

    accessors!();

    /// Whether the map was switched to a `PERF_EVENT_ARRAY` before load.
    pub fn is_perf_event_array(&self) -> bool {
        self.handle.fd().map_type() == map_type::PERF_EVENT_ARRAY
    }

    /// The map as a perf event array (a handle on a second fd of the same
    /// map) if it was switched to one before load; `None` for a ring buffer.
    pub fn perf_event_array(&self) -> Result<Option<PerfEventArrayMap>, MapError> {
        if !self.is_perf_event_array() {
            return Ok(None);
        }
        let op = "perf_event_array";
        let fd = self.fd().try_clone_to_owned().map_err(|errno| {
            self.handle.sys(op)(crate::sys::SysError::Syscall {
                op: "fcntl(F_DUPFD_CLOEXEC)",
                errno,
                detail: None,
            })
        })?;
        let fd = MapFd::from_fd(fd).map_err(self.handle.sys(op))?;
        PerfEventArrayMap::new(fd, self.name()).map(Some)
    }

    /// Size of the data area in bytes (`max_entries`, a power-of-2 multiple of
    /// the page size).
    pub fn byte_size(&self) -> u32 {
        self.handle.fd().max_entries()
    }
}

/// A `PERF_EVENT_ARRAY` map. The handle only owns the fd; a consumer opens
/// the per-CPU perf buffers and stores them in it.
#[derive(Debug)]
pub struct PerfEventArrayMap {
    handle: Handle,
}

impl PerfEventArrayMap {
    /// Wrap `fd` of a `PERF_EVENT_ARRAY` map.
    pub fn new(fd: MapFd, name: &str) -> Result<Self, MapError> {
        expect_type(
            Handle::new(fd, name),
            "PerfEventArrayMap",
            &[map_type::PERF_EVENT_ARRAY],
            "a PERF_EVENT_ARRAY map",
        )
        .map(|handle| PerfEventArrayMap { handle })
    }

    accessors!();

    /// Number of slots (`max_entries`, usually the number of possible CPUs).
    pub fn len(&self) -> u32 {
        self.handle.fd().max_entries()
    }

    /// Whether the array has no slots.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
