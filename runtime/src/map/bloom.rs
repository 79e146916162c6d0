//! [`BloomFilter`]: a `BPF_MAP_TYPE_BLOOM_FILTER` of `V` values.

use std::marker::PhantomData;
use std::os::fd::BorrowedFd;

use super::{Handle, MapError, UpdateFlags};
use crate::sys::{map_type, MapFd};
use crate::Plain;

/// A bloom filter: values are added and tested, never listed or removed.
/// The kernel answers "maybe present" or "certainly absent".
#[derive(Debug)]
pub struct BloomFilter<V> {
    handle: Handle,
    _value: PhantomData<fn() -> V>,
}

impl<V: Plain> BloomFilter<V> {
    /// Wraps `fd` of a bloom filter whose values are `V`.
    pub fn new(fd: MapFd, name: &str) -> Result<Self, MapError> {
        let handle = Handle::new(fd, name);
        if handle.fd().map_type() != map_type::BLOOM_FILTER {
            return Err(handle.wrong_type("BloomFilter", "a BLOOM_FILTER map"));
        }
        let handle = handle.check_sizes("BloomFilter", 0, std::mem::size_of::<V>())?;
        Ok(BloomFilter {
            handle,
            _value: PhantomData,
        })
    }

    /// The map's name.
    pub fn name(&self) -> &str {
        self.handle.name()
    }

    /// The map fd.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.handle.borrowed()
    }

    /// Adds `value`.
    pub fn insert(&self, value: &V) -> Result<(), MapError> {
        self.handle
            .fd()
            .update(&[], value.as_bytes(), UpdateFlags::Any.bits())
            .map_err(self.handle.sys("insert"))
    }

    /// Whether `value` may have been added (`false`: certainly not). The
    /// kernel reads the value to test from the lookup's value buffer.
    pub fn contains(&self, value: &V) -> Result<bool, MapError> {
        let mut probe = *value;
        self.handle
            .fd()
            .lookup(&[], probe.as_bytes_mut(), 0)
            .map_err(self.handle.sys("contains"))
    }
}
