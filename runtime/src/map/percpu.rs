//! [`PerCpuMap`]: per-CPU hash, array and LRU hash maps.

use std::marker::PhantomData;
use std::os::fd::BorrowedFd;

use super::{record, record_mut, Handle, Keys, MapError, PerCpuEntries, UpdateFlags};
use crate::sys::{self, map_type, MapFd, MapInfo};
use crate::Plain;

/// A per-CPU map (`PERCPU_HASH`, `PERCPU_ARRAY`, `LRU_PERCPU_HASH`): each key
/// has one `V` per possible CPU, and user space reads and writes them all at
/// once as a `Vec<V>` of [`sys::num_possible_cpus`] entries, in CPU order.
///
/// The kernel lays each CPU's slot out at a stride of `value_size` rounded up
/// to 8 bytes (a 4-byte value occupies 8); the handle packs and unpacks that.
#[derive(Debug)]
pub struct PerCpuMap<K, V> {
    handle: Handle,
    // See `Map`: no K or V is stored, so Send + Sync do not depend on them.
    _types: PhantomData<fn() -> (K, V)>,
}

/// Bytes between two CPUs' values in a per-CPU buffer.
fn stride<V>() -> usize {
    size_of::<V>().next_multiple_of(8)
}

/// Look up `key` in a per-CPU map and split the value per CPU.
pub(crate) fn lookup_values<V: Plain>(
    handle: &Handle,
    op: &'static str,
    key: &[u8],
) -> Result<Option<Vec<V>>, MapError> {
    let mut buf = handle.value_buf(op)?;
    let found = handle
        .fd()
        .lookup(key, &mut buf, 0)
        .map_err(handle.sys(op))?;
    if !found {
        return Ok(None);
    }
    Ok(Some(split::<V>(&buf)))
}

fn split<V: Plain>(buf: &[u8]) -> Vec<V> {
    let stride = stride::<V>();
    let cpus = buf.len().checked_div(stride).unwrap_or(0);
    (0..cpus)
        .filter_map(|cpu| record(buf, cpu, stride).and_then(V::read_from_prefix))
        .collect()
}

impl<K: Plain, V: Plain> PerCpuMap<K, V> {
    /// Wrap `fd` of a per-CPU hash, array or LRU hash map whose key is `K` and
    /// whose per-CPU value is `V`.
    pub fn new(fd: MapFd, name: &str) -> Result<Self, MapError> {
        let handle = Handle::new(fd, name);
        if !matches!(
            handle.fd().map_type(),
            map_type::PERCPU_HASH | map_type::PERCPU_ARRAY | map_type::LRU_PERCPU_HASH
        ) {
            return Err(handle.wrong_type(
                "PerCpuMap",
                "a PERCPU_HASH, PERCPU_ARRAY or LRU_PERCPU_HASH map",
            ));
        }
        let handle = handle.check_sizes("PerCpuMap", size_of::<K>(), size_of::<V>())?;
        Ok(PerCpuMap {
            handle,
            _types: PhantomData,
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

    /// The map fd with its geometry.
    pub fn map_fd(&self) -> &MapFd {
        self.handle.fd()
    }

    /// What the kernel says about the map.
    pub fn info(&self) -> Result<MapInfo, MapError> {
        self.handle.info()
    }

    /// How many values each key has: the number of possible CPUs.
    pub fn num_cpus(&self) -> Result<usize, MapError> {
        sys::num_possible_cpus().map_err(self.handle.sys("num_cpus"))
    }

    /// Every CPU's value of `key`, or `None` if there is no such key.
    pub fn lookup(&self, key: &K) -> Result<Option<Vec<V>>, MapError> {
        lookup_values(&self.handle, "lookup", key.as_bytes())
    }

    /// Set every CPU's value of `key`: `values` has one entry per possible CPU.
    pub fn update(&self, key: &K, values: &[V], flags: UpdateFlags) -> Result<(), MapError> {
        let op = "update";
        let cpus = self.num_cpus()?;
        if values.len() != cpus {
            return Err(self.handle.invalid(
                op,
                format!(
                    "{} values given, one per possible CPU ({cpus}) needed",
                    values.len()
                ),
            ));
        }
        let mut buf = self.handle.value_buf(op)?;
        let stride = stride::<V>();
        for (cpu, value) in values.iter().enumerate() {
            if let Some(slot) = record_mut(&mut buf, cpu, stride) {
                if let Some(dst) = slot.get_mut(..size_of::<V>()) {
                    dst.copy_from_slice(value.as_bytes());
                }
            }
        }
        self.handle
            .fd()
            .update(key.as_bytes(), &buf, flags.bits())
            .map_err(self.handle.sys(op))
    }

    /// Remove `key`; `Ok(false)` if it was not there. Arrays refuse (`EINVAL`).
    pub fn delete(&self, key: &K) -> Result<bool, MapError> {
        self.handle
            .fd()
            .delete(key.as_bytes())
            .map_err(self.handle.sys("delete"))
    }

    /// The keys; see [`Keys`].
    pub fn keys(&self) -> Keys<'_, K> {
        Keys::new(&self.handle)
    }

    /// The `(key, values)` pairs.
    pub fn iter(&self) -> PerCpuEntries<'_, K, V> {
        PerCpuEntries::new(&self.handle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stride_rounds_up_to_eight() {
        assert_eq!(stride::<u32>(), 8);
        assert_eq!(stride::<u64>(), 8);
        assert_eq!(stride::<[u8; 12]>(), 16);
        assert_eq!(stride::<u8>(), 8);
    }

    #[test]
    fn split_reads_each_slot_prefix() {
        let mut buf = vec![0u8; 24];
        buf[0..4].copy_from_slice(&1u32.to_ne_bytes());
        buf[4..8].copy_from_slice(&[0xff; 4]); // padding the kernel may leave
        buf[8..12].copy_from_slice(&2u32.to_ne_bytes());
        buf[16..20].copy_from_slice(&3u32.to_ne_bytes());
        assert_eq!(split::<u32>(&buf), vec![1, 2, 3]);
        assert_eq!(split::<u32>(&buf[..20]), vec![1, 2]);
    }
}
