//! The lazy name index: every named type id, found by its name.
//!
//! Built on first use (or by [`Btf::build_name_index`]) as two parallel
//! arrays sorted by (hash of name, name, id): a lookup binary-searches the
//! hash, then narrows to the exact name, so equal names form one contiguous
//! run of ids that can be handed out as a slice. One allocation per array,
//! none per type.

use super::{Btf, Kind};

/// Sorted hashes and ids of every named type (base types included, for split BTF).
#[derive(Clone, Debug, Default)]
pub(crate) struct NameIndex {
    hashes: Vec<u64>,
    ids: Vec<u32>,
}

/// A fast multiplicative hash of a name (FxHash-style, 8 bytes at a time):
/// collisions only cost a name comparison, so quality needs are modest.
fn hash_name(name: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = name.len() as u64;
    let mut chunks = name.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(<[u8; 8]>::try_from(c).unwrap_or([0; 8]));
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut buf = [0u8; 8];
        for (d, s) in buf.iter_mut().zip(rest) {
            *d = *s;
        }
        h = (h.rotate_left(5) ^ u64::from_le_bytes(buf)).wrapping_mul(K);
    }
    h ^ (h >> 29)
}

impl NameIndex {
    fn build(btf: &Btf) -> NameIndex {
        // Base types first, so that a split BTF finds names across both.
        let mut entries: Vec<(u64, u32)> = Vec::with_capacity(btf.len() as usize);
        for id in 1..btf.len() {
            let Ok([name_off, _, _]) = btf.header(id) else {
                continue;
            };
            if name_off == 0 {
                continue;
            }
            // Unreadable names are skipped: they can never equal a &str.
            if let Ok(name) = btf.name_bytes(name_off) {
                if !name.is_empty() {
                    entries.push((hash_name(name), id));
                }
            }
        }
        let name_of = |id: u32| {
            btf.header(id)
                .ok()
                .and_then(|[off, _, _]| btf.name_bytes(off).ok())
                .unwrap_or(&[])
        };
        entries.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                // Equal hashes are nearly always equal names; compare them
                // so that a collision still leaves each name contiguous.
                .then_with(|| name_of(a.1).cmp(name_of(b.1)))
                .then(a.1.cmp(&b.1))
        });
        let (hashes, ids) = entries.into_iter().unzip();
        NameIndex { hashes, ids }
    }

    fn find<'a>(&'a self, btf: &Btf, name: &str) -> &'a [u32] {
        let h = hash_name(name.as_bytes());
        let lo = self.hashes.partition_point(|&x| x < h);
        let hi = lo
            + self
                .hashes
                .get(lo..)
                .unwrap_or(&[])
                .partition_point(|&x| x == h);
        let run = self.ids.get(lo..hi).unwrap_or(&[]);
        let name_of = |id: u32| {
            btf.header(id)
                .ok()
                .and_then(|[off, _, _]| btf.name_bytes(off).ok())
                .unwrap_or(&[])
        };
        let want = name.as_bytes();
        let start = run.partition_point(|&id| name_of(id) < want);
        let len = run
            .get(start..)
            .unwrap_or(&[])
            .partition_point(|&id| name_of(id) == want);
        run.get(start..start + len).unwrap_or(&[])
    }
}

impl Btf {
    fn name_index(&self) -> &NameIndex {
        self.names.get_or_init(|| NameIndex::build(self))
    }

    /// Builds the name index now rather than on the first lookup.
    pub fn build_name_index(&self) {
        self.name_index();
    }

    /// Every type id named `name`, in id order (base types included, for
    /// split BTF). Empty for `""` and for unknown names.
    pub fn find_by_name(&self, name: &str) -> &[u32] {
        if name.is_empty() {
            return &[];
        }
        self.name_index().find(self, name)
    }

    /// The first type id named `name` of kind `kind`.
    pub fn find_by_name_kind(&self, name: &str, kind: Kind) -> Option<u32> {
        self.find_by_name(name)
            .iter()
            .copied()
            .find(|&id| self.kind_of(id).ok() == Some(kind))
    }
}
