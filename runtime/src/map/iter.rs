//! Key walks (`BPF_MAP_GET_NEXT_KEY`) and the batch cursor.

use std::iter::FusedIterator;
use std::marker::PhantomData;

use super::{Handle, MapError};
use crate::Plain;

/// The keys of a map, in the kernel's order, one `BPF_MAP_GET_NEXT_KEY` each.
///
/// The walk is not a snapshot. It asks for the key after the last one it
/// returned; if that key was deleted meanwhile, hash maps answer with their
/// first key, so the walk restarts from the beginning, as the kernel does, and
/// keys already returned may come again. Deleting every key as it is returned
/// therefore visits each key once. After an error the iterator ends.
pub struct Keys<'m, K> {
    handle: &'m Handle,
    prev: Option<K>,
    done: bool,
}

impl<'m, K: Plain> Keys<'m, K> {
    pub(crate) fn new(handle: &'m Handle) -> Self {
        Keys {
            handle,
            prev: None,
            done: false,
        }
    }
}

impl<K: Plain> Iterator for Keys<'_, K> {
    type Item = Result<K, MapError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut next = K::zeroed();
        let prev = self.prev.as_ref().map(Plain::as_bytes);
        match self.handle.fd().next_key(prev, next.as_bytes_mut()) {
            Ok(true) => {
                self.prev = Some(next);
                Some(Ok(next))
            }
            Ok(false) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(self.handle.sys("keys")(e)))
            }
        }
    }
}

impl<K: Plain> FusedIterator for Keys<'_, K> {}

/// Key/value pairs: [`Keys`] plus a lookup of each key. A key deleted between
/// the two steps is skipped.
pub struct Entries<'m, K, V> {
    keys: Keys<'m, K>,
    _value: PhantomData<fn() -> V>,
}

impl<'m, K: Plain, V: Plain> Entries<'m, K, V> {
    pub(crate) fn new(handle: &'m Handle) -> Self {
        Entries {
            keys: Keys::new(handle),
            _value: PhantomData,
        }
    }
}

impl<K: Plain, V: Plain> Iterator for Entries<'_, K, V> {
    type Item = Result<(K, V), MapError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let key = match self.keys.next()? {
                Ok(key) => key,
                Err(e) => return Some(Err(e)),
            };
            let mut value = V::zeroed();
            match self
                .keys
                .handle
                .fd()
                .lookup(key.as_bytes(), value.as_bytes_mut(), 0)
            {
                Ok(true) => return Some(Ok((key, value))),
                Ok(false) => continue,
                Err(e) => {
                    self.keys.done = true;
                    return Some(Err(self.keys.handle.sys("iter")(e)));
                }
            }
        }
    }
}

impl<K: Plain, V: Plain> FusedIterator for Entries<'_, K, V> {}

/// Key/value pairs of a per-CPU map, values one per possible CPU; see
/// [`Entries`].
pub struct PerCpuEntries<'m, K, V> {
    keys: Keys<'m, K>,
    _value: PhantomData<fn() -> V>,
}

impl<'m, K: Plain, V: Plain> PerCpuEntries<'m, K, V> {
    pub(crate) fn new(handle: &'m Handle) -> Self {
        PerCpuEntries {
            keys: Keys::new(handle),
            _value: PhantomData,
        }
    }
}

impl<K: Plain, V: Plain> Iterator for PerCpuEntries<'_, K, V> {
    type Item = Result<(K, Vec<V>), MapError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let key = match self.keys.next()? {
                Ok(key) => key,
                Err(e) => return Some(Err(e)),
            };
            match super::percpu::lookup_values::<V>(self.keys.handle, "iter", key.as_bytes()) {
                Ok(Some(values)) => return Some(Ok((key, values))),
                Ok(None) => continue,
                Err(e) => {
                    self.keys.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

impl<K: Plain, V: Plain> FusedIterator for PerCpuEntries<'_, K, V> {}

/// The keys of a map as byte vectors of `key_size` bytes; see [`Keys`].
pub struct RawKeys<'m> {
    handle: &'m Handle,
    prev: Option<Vec<u8>>,
    done: bool,
}

impl<'m> RawKeys<'m> {
    pub(crate) fn new(handle: &'m Handle) -> Self {
        RawKeys {
            handle,
            prev: None,
            done: false,
        }
    }
}

impl Iterator for RawKeys<'_> {
    type Item = Result<Vec<u8>, MapError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut next = vec![0; self.handle.fd().key_size() as usize];
        match self.handle.fd().next_key(self.prev.as_deref(), &mut next) {
            Ok(true) => {
                self.prev = Some(next.clone());
                Some(Ok(next))
            }
            Ok(false) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(self.handle.sys("keys")(e)))
            }
        }
    }
}

impl FusedIterator for RawKeys<'_> {}

/// Where a batch lookup resumes: start with [`BatchCursor::new`], pass the same
/// cursor to each call until [`BatchCursor::is_finished`].
///
/// The kernel's cursor is opaque (a bucket index for hash maps, a key for
/// arrays); this keeps its bytes between calls.
#[derive(Debug, Clone, Default)]
pub struct BatchCursor {
    next: Option<Vec<u8>>,
    finished: bool,
}

impl BatchCursor {
    /// A cursor at the start of the map.
    pub fn new() -> Self {
        BatchCursor::default()
    }

    /// Whether the kernel reported the end of the map; further lookups return 0.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Back to the start of the map.
    pub fn reset(&mut self) {
        *self = BatchCursor::default();
    }

    pub(crate) fn position(&self) -> Option<&[u8]> {
        self.next.as_deref()
    }

    pub(crate) fn advance(&mut self, next: Vec<u8>, finished: bool) {
        self.finished = finished;
        self.next = if finished { None } else { Some(next) };
    }
}
