//! [`UntypedMap`]: byte-slice access for maps without BTF key/value types.

use std::os::fd::BorrowedFd;

use super::{Handle, MapError, RawKeys, UpdateFlags};
use crate::sys::{MapFd, MapInfo};

/// A map handled as bytes: keys are `key_size` bytes, values are
/// [`UntypedMap::value_len`] bytes (for per-CPU maps every CPU's slot, each
/// rounded up to 8 bytes). Skeletons use it when the object's BTF gives no
/// key/value types (legacy `SEC("maps")` definitions).
#[derive(Debug)]
pub struct UntypedMap {
    handle: Handle,
}

impl UntypedMap {
    /// Wrap `fd` of any map.
    pub fn new(fd: MapFd, name: &str) -> Self {
        UntypedMap {
            handle: Handle::new(fd, name),
        }
    }

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

    /// The key size in bytes.
    pub fn key_size(&self) -> usize {
        self.handle.fd().key_size() as usize
    }

    /// The value size in bytes as the kernel defines it (one CPU's value).
    pub fn value_size(&self) -> usize {
        self.handle.fd().value_size() as usize
    }

    /// Bytes of a value buffer as user space reads and writes it.
    pub fn value_len(&self) -> Result<usize, MapError> {
        self.handle
            .fd()
            .user_value_size()
            .map_err(self.handle.sys("value_len"))
    }

    /// The value of `key` ([`UntypedMap::value_len`] bytes), or `None`.
    pub fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        let op = "lookup";
        let mut value = self.handle.value_buf(op)?;
        let found = self
            .handle
            .fd()
            .lookup(key, &mut value, 0)
            .map_err(self.handle.sys(op))?;
        Ok(found.then_some(value))
    }

    /// Set the value of `key`; `value` must be exactly
    /// [`UntypedMap::value_len`] bytes.
    pub fn update(&self, key: &[u8], value: &[u8], flags: UpdateFlags) -> Result<(), MapError> {
        let op = "update";
        let want = self.value_len()?;
        if value.len() != want {
            return Err(self.handle.invalid(
                op,
                format!("value is {} bytes, the map needs {want}", value.len()),
            ));
        }
        self.handle
            .fd()
            .update(key, value, flags.bits())
            .map_err(self.handle.sys(op))
    }

    /// Remove `key`; `Ok(false)` if it was not there.
    pub fn delete(&self, key: &[u8]) -> Result<bool, MapError> {
        self.handle
            .fd()
            .delete(key)
            .map_err(self.handle.sys("delete"))
    }

    /// Remove `key` and return its value. For queues and stacks pass an empty
    /// key to pop.
    pub fn lookup_and_delete(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        let op = "lookup_and_delete";
        let mut value = self.handle.value_buf(op)?;
        let key = if key.is_empty() && self.key_size() == 0 {
            None
        } else {
            Some(key)
        };
        let found = self
            .handle
            .fd()
            .lookup_and_delete(key, &mut value, 0)
            .map_err(self.handle.sys(op))?;
        Ok(found.then_some(value))
    }

    /// The keys, as `key_size`-byte vectors; see [`Keys`](super::Keys).
    pub fn keys(&self) -> RawKeys<'_> {
        RawKeys::new(&self.handle)
    }

    /// `BPF_MAP_FREEZE`: user space can no longer change the map.
    pub fn freeze(&self) -> Result<(), MapError> {
        self.handle.freeze()
    }
}
