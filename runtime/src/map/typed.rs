//! [`Map`]: hash, array, LRU, LPM trie and other maps with one value per key.

use std::marker::PhantomData;
use std::os::fd::BorrowedFd;

use super::{
    dedicated_handle, record, record_mut, BatchCursor, Entries, Handle, Keys, MapError, UpdateFlags,
};
use crate::sys::{BatchOpts, MapFd, MapInfo};
use crate::Plain;

/// A map whose keys are `K` and whose values are one `V` each (hash, array,
/// LRU hash, LPM trie, ...), with `K` and `V` the Rust types of the map's BTF.
///
/// Per-CPU maps, queues, stacks and maps of fds have their own handles
/// ([`PerCpuMap`](super::PerCpuMap), [`Queue`](super::Queue), ...);
/// [`Map::new`] refuses them with an error naming the right one.
#[derive(Debug)]
pub struct Map<K, V> {
    handle: Handle,
    // fn() -> (K, V): the handle stores no K or V, so it is Send + Sync whatever
    // they are (see the module docs).
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K: Plain, V: Plain> Map<K, V> {
    /// Wrap `fd`, checking that the map holds one `V` per `K`:
    /// `size_of::<K>() == key_size`, `size_of::<V>() == value_size`, and a map
    /// type with plain keys and values.
    pub fn new(fd: MapFd, name: &str) -> Result<Self, MapError> {
        let handle = Handle::new(fd, name);
        let t = handle.fd().map_type();
        if let Some(expected) = dedicated_handle(t) {
            return Err(handle.wrong_type("Map", expected));
        }
        let handle = handle.check_sizes("Map", size_of::<K>(), size_of::<V>())?;
        if size_of::<K>() == 0 {
            return Err(handle.wrong_type("Map", "a map with keys (key_size > 0)"));
        }
        Ok(Map {
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

    /// The map fd with its geometry, for the byte-slice commands of
    /// [`sys`](crate::sys).
    pub fn map_fd(&self) -> &MapFd {
        self.handle.fd()
    }

    /// What the kernel says about the map (`BPF_OBJ_GET_INFO_BY_FD`).
    pub fn info(&self) -> Result<MapInfo, MapError> {
        self.handle.info()
    }

    /// The value of `key`, or `None` if there is no such key.
    pub fn lookup(&self, key: &K) -> Result<Option<V>, MapError> {
        let mut value = V::zeroed();
        let found = self
            .handle
            .fd()
            .lookup(key.as_bytes(), value.as_bytes_mut(), 0)
            .map_err(self.handle.sys("lookup"))?;
        Ok(found.then_some(value))
    }

    /// Set the value of `key`. `NoExist` fails with `EEXIST` on an existing key,
    /// `Exist` with `ENOENT` on a missing one (see [`MapError::errno`]).
    pub fn update(&self, key: &K, value: &V, flags: UpdateFlags) -> Result<(), MapError> {
        self.handle
            .fd()
            .update(key.as_bytes(), value.as_bytes(), flags.bits())
            .map_err(self.handle.sys("update"))
    }

    /// Remove `key`; `Ok(false)` if it was not there. Arrays refuse (`EINVAL`).
    pub fn delete(&self, key: &K) -> Result<bool, MapError> {
        self.handle
            .fd()
            .delete(key.as_bytes())
            .map_err(self.handle.sys("delete"))
    }

    /// Remove `key` and return its value (hash maps, kernel 5.14+).
    pub fn lookup_and_delete(&self, key: &K) -> Result<Option<V>, MapError> {
        let mut value = V::zeroed();
        let found = self
            .handle
            .fd()
            .lookup_and_delete(Some(key.as_bytes()), value.as_bytes_mut(), 0)
            .map_err(self.handle.sys("lookup_and_delete"))?;
        Ok(found.then_some(value))
    }

    /// The keys; see [`Keys`] for what deletion during the walk does.
    pub fn keys(&self) -> Keys<'_, K> {
        Keys::new(&self.handle)
    }

    /// The `(key, value)` pairs, one lookup per key.
    pub fn iter(&self) -> Entries<'_, K, V> {
        Entries::new(&self.handle)
    }

    /// `BPF_MAP_LOOKUP_BATCH`: fill `keys` and `values` (equal, non-zero
    /// lengths) from where `cursor` stands, and return how many were filled.
    /// When the map is exhausted the cursor is finished and further calls
    /// return 0.
    ///
    /// Hash maps return whole buckets: a bucket with more elements than the
    /// buffers hold fails with `ENOSPC` (retry with larger buffers). Map types
    /// without batch support fail with `EINVAL`/`ENOTSUPP`; use [`Map::iter`].
    pub fn lookup_batch(
        &self,
        cursor: &mut BatchCursor,
        keys: &mut [K],
        values: &mut [V],
    ) -> Result<usize, MapError> {
        self.lookup_batch_common(cursor, keys, values, false)
    }

    /// As [`Map::lookup_batch`], deleting what it returns (hash maps).
    pub fn lookup_and_delete_batch(
        &self,
        cursor: &mut BatchCursor,
        keys: &mut [K],
        values: &mut [V],
    ) -> Result<usize, MapError> {
        self.lookup_batch_common(cursor, keys, values, true)
    }

    fn lookup_batch_common(
        &self,
        cursor: &mut BatchCursor,
        keys: &mut [K],
        values: &mut [V],
        delete: bool,
    ) -> Result<usize, MapError> {
        let op = if delete {
            "lookup_and_delete_batch"
        } else {
            "lookup_batch"
        };
        let count = same_len(&self.handle, op, keys.len(), values.len())?;
        if cursor.is_finished() {
            return Ok(0);
        }
        let (ks, vs) = (size_of::<K>(), size_of::<V>());
        let mut key_buf = vec![0u8; count.saturating_mul(ks)];
        let mut value_buf = vec![0u8; count.saturating_mul(vs)];
        let mut next = vec![0u8; self.handle.fd().batch_cursor_size()];
        let fd = self.handle.fd();
        let args = (
            cursor.position(),
            &mut next[..],
            &mut key_buf[..],
            &mut value_buf[..],
        );
        let result = if delete {
            fd.lookup_and_delete_batch(args.0, args.1, args.2, args.3, count, BatchOpts::default())
        } else {
            fd.lookup_batch(args.0, args.1, args.2, args.3, count, BatchOpts::default())
        }
        .map_err(self.handle.sys(op))?;
        let filled = result.count.min(count);
        for (i, (key, value)) in keys.iter_mut().zip(values.iter_mut()).enumerate() {
            if i >= filled {
                break;
            }
            if let Some(k) = record(&key_buf, i, ks).and_then(K::read_from) {
                *key = k;
            }
            if let Some(v) = record(&value_buf, i, vs).and_then(V::read_from) {
                *value = v;
            }
        }
        cursor.advance(next, result.finished);
        Ok(filled)
    }

    /// `BPF_MAP_UPDATE_BATCH`: set `values[i]` for `keys[i]` (equal lengths),
    /// creating or replacing. Returns how many were set; on an error the kernel
    /// may have set some. The kernel takes only [`UpdateFlags::Any`] and
    /// [`UpdateFlags::Lock`] here; use [`Map::update`] for the others.
    pub fn update_batch(
        &self,
        keys: &[K],
        values: &[V],
        flags: UpdateFlags,
    ) -> Result<usize, MapError> {
        let op = "update_batch";
        if !matches!(flags, UpdateFlags::Any | UpdateFlags::Lock) {
            return Err(self
                .handle
                .invalid(op, format!("batch updates take Any or Lock, not {flags:?}")));
        }
        let count = same_len(&self.handle, op, keys.len(), values.len())?;
        let key_buf = concat(keys);
        let value_buf = concat(values);
        let opts = BatchOpts {
            elem_flags: flags.bits(),
            flags: 0,
        };
        let result = self
            .handle
            .fd()
            .update_batch(&key_buf, &value_buf, opts)
            .map_err(self.handle.sys(op))?;
        Ok(result.count.min(count))
    }

    /// `BPF_MAP_DELETE_BATCH`: remove `keys` in order, returning how many were
    /// removed. The kernel stops at the first key that is not in the map, so a
    /// count below `keys.len()` means `keys[count]` was missing and the keys
    /// after it were not tried. Arrays refuse (`EINVAL`).
    pub fn delete_batch(&self, keys: &[K]) -> Result<usize, MapError> {
        let op = "delete_batch";
        if keys.is_empty() {
            return Err(self.handle.invalid(op, "no keys"));
        }
        let result = self
            .handle
            .fd()
            .delete_batch(&concat(keys), BatchOpts::default())
            .map_err(self.handle.sys(op))?;
        Ok(result.count.min(keys.len()))
    }

    /// `BPF_MAP_FREEZE`: user space can no longer change the map.
    pub fn freeze(&self) -> Result<(), MapError> {
        self.handle.freeze()
    }
}

/// The common non-zero length of two batch buffers.
pub(crate) fn same_len(
    handle: &Handle,
    op: &'static str,
    keys: usize,
    values: usize,
) -> Result<usize, MapError> {
    if keys != values {
        return Err(handle.invalid(
            op,
            format!("{keys} keys but {values} values; the lengths must match"),
        ));
    }
    if keys == 0 {
        return Err(handle.invalid(op, "empty buffers"));
    }
    Ok(keys)
}

/// The bytes of `items`, back to back.
pub(crate) fn concat<T: Plain>(items: &[T]) -> Vec<u8> {
    let mut out = vec![0u8; items.len().saturating_mul(size_of::<T>())];
    for (i, item) in items.iter().enumerate() {
        if let Some(dst) = record_mut(&mut out, i, size_of::<T>()) {
            dst.copy_from_slice(item.as_bytes());
        }
    }
    out
}
