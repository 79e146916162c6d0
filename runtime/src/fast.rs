//! Hash maps for the object model's and loader's own indexes (sections and
//! symbols by name, instructions by owner, ...), with foldhash instead of
//! SipHash: they are built on every open and load, where SipHash and the
//! regrowth of unsized tables were ~60% of `datasec::fixup` and ~5% of a
//! small object's open + load in user space. foldhash is seeded per
//! process, so crafted names cannot be precomputed to collide.

pub(crate) type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
pub(crate) type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// An empty map with room for `n` entries.
pub(crate) fn map_with_capacity<K, V>(n: usize) -> HashMap<K, V> {
    HashMap::with_capacity_and_hasher(n, Default::default())
}
