//! The lazy name index: every named type id, found by its name.
//!
//! Built on first use (or by `Btf::build_name_index`) as two parallel
//! arrays sorted by (hash of name, name, id): a lookup binary-searches the
//! hash, then narrows to the exact name, so equal names form one contiguous
//! run of ids that can be handed out as a slice.
//!
//! Building it is on the path of every first lookup in the kernel's BTF
//! (~70k names), so it avoids per-type work beyond one fused scan of each
//! name (finding its NUL and hashing it, 8 bytes at a time) and sorts with
//! a bucket sort on the hash rather than by comparing strings.

// No dependency on the reader: the index sees a BTF only through
// [`NameSource`], which the reader implements, so the two modules do not
// import each other.

/// What the index needs of a BTF: every named type's name hash, and a
/// type's name.
pub(crate) trait NameSource {
    /// Appends `(hash << 32) | id` for every named type, in id order (base
    /// types first, for split BTF), hashing with [`hash_c_string`] /
    /// [`hash_name`]. Unreadable names are left out.
    fn collect_names(&self, keys: &mut Vec<u64>);
    /// The name of `id` as bytes; empty if unreadable.
    fn name_of(&self, id: u32) -> &[u8];
    /// The string offset naming `id`, if readable (ids sharing one offset
    /// share one name, which saves comparing them).
    fn name_off_of(&self, id: u32) -> Option<u32>;
}

/// Sorted hashes and ids of every named type (base types included, for split BTF).
#[derive(Clone, Debug, Default)]
pub(crate) struct NameIndex {
    hashes: Vec<u32>,
    ids: Vec<u32>,
}

const K: u64 = 0x517c_c1b7_2722_0a95;
const LOW_BYTES: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// One FxHash-style step: collisions only cost a name comparison, so a fast
/// multiplicative hash is enough.
#[inline]
fn mix(h: u64, word: u64) -> u64 {
    (h.rotate_left(5) ^ word).wrapping_mul(K)
}

#[inline]
fn finish(h: u64) -> u32 {
    ((h >> 32) ^ h) as u32
}

/// Hash of a name: its full 8-byte words, then a final zero-padded word
/// holding the remaining 0..=7 bytes (the same words [`hash_c_string`] sees).
pub(crate) fn hash_name(name: &[u8]) -> u32 {
    let mut h = 0;
    let mut chunks = name.chunks_exact(8);
    for c in &mut chunks {
        h = mix(
            h,
            u64::from_le_bytes(<[u8; 8]>::try_from(c).unwrap_or([0; 8])),
        );
    }
    let mut last = [0u8; 8];
    for (d, s) in last.iter_mut().zip(chunks.remainder()) {
        *d = *s;
    }
    finish(mix(h, u64::from_le_bytes(last)))
}

/// Hash of the NUL-terminated string at the start of `bytes`, found and
/// hashed in one pass; `None` if there is no NUL.
pub(crate) fn hash_c_string(bytes: &[u8]) -> Option<u32> {
    let mut h = 0;
    let mut pos = 0;
    loop {
        let Some(chunk) = bytes.get(pos..pos + 8) else {
            let rest = bytes.get(pos..)?;
            let len = rest.iter().position(|&b| b == 0)?;
            return rest.get(..len).map(|tail| {
                let mut last = [0u8; 8];
                for (d, s) in last.iter_mut().zip(tail) {
                    *d = *s;
                }
                finish(mix(h, u64::from_le_bytes(last)))
            });
        };
        let word = u64::from_le_bytes(<[u8; 8]>::try_from(chunk).ok()?);
        // Flags zero bytes; the lowest flag is always a real zero byte.
        let zeros = word.wrapping_sub(LOW_BYTES) & !word & HIGH_BITS;
        if zeros != 0 {
            let len = zeros.trailing_zeros() / 8;
            let kept = if len == 0 {
                0
            } else {
                word & (u64::MAX >> (64 - 8 * len))
            };
            return Some(finish(mix(h, kept)));
        }
        h = mix(h, word);
        pos += 8;
    }
}

/// Splits `(hash << 32) | id` keys, given in id order, into hashes and ids
/// sorted by hash, equal hashes in id order.
///
/// One counting-sort pass on the hash's top bits, with about one bucket per
/// key so that a bucket holds one or two keys, then an insertion sort
/// inside each bucket: two sequential passes over the keys and one
/// scattered write of each, where an LSD radix sort on the whole 32-bit
/// hash takes two of each plus a copy.
fn bucket_sort_by_hash(keys: &[u64]) -> (Vec<u32>, Vec<u32>) {
    let bits = keys.len().next_power_of_two().trailing_zeros().clamp(1, 24);
    let bucket = |k: u64| (k >> (64 - bits)) as usize;
    // ends[b + 1] counts bucket b, then (after the prefix sum) is where
    // its next key goes; ends[b] is the start of bucket b.
    let mut ends = vec![0u32; (1usize << bits) + 1];
    for &k in keys {
        if let Some(c) = ends.get_mut(bucket(k) + 1) {
            *c += 1;
        }
    }
    let mut sum = 0;
    for c in ends.iter_mut() {
        (*c, sum) = (sum, sum + *c);
    }
    let mut hashes = vec![0u32; keys.len()];
    let mut ids = vec![0u32; keys.len()];
    for &k in keys {
        if let Some(c) = ends.get_mut(bucket(k) + 1) {
            if let (Some(h), Some(i)) = (hashes.get_mut(*c as usize), ids.get_mut(*c as usize)) {
                (*h, *i) = ((k >> 32) as u32, k as u32);
            }
            *c += 1;
        }
    }
    // ends[b + 1] is now the end of bucket b and the start of bucket b + 1.
    for pair in ends.windows(2) {
        let (start, end) = match pair {
            [s, e] => (*s as usize, *e as usize),
            _ => continue,
        };
        if end - start < 2 {
            continue;
        }
        let (Some(h), Some(i)) = (hashes.get_mut(start..end), ids.get_mut(start..end)) else {
            continue;
        };
        // Stable insertion sort by hash: buckets hold a handful of keys.
        for j in 1..h.len() {
            let mut k = j;
            while k > 0 && h.get(k - 1) > h.get(k) {
                h.swap(k - 1, k);
                i.swap(k - 1, k);
                k -= 1;
            }
        }
    }
    (hashes, ids)
}

/// Orders a run of ids with equal name hashes by (name, id). Skips the
/// common case of one id, or of ids that all share one name offset.
fn sort_run(btf: &impl NameSource, run: Option<&mut [u32]>) {
    let Some(run) = run else { return };
    if run.len() < 2 {
        return;
    }
    let name_off = |id| btf.name_off_of(id);
    let first = run.first().copied().and_then(name_off);
    if first.is_some() && run.iter().all(|&id| name_off(id) == first) {
        return;
    }
    run.sort_unstable_by(|&a, &b| btf.name_of(a).cmp(btf.name_of(b)).then(a.cmp(&b)));
}

impl NameIndex {
    /// The index of every name `btf` has; `capacity` is a hint (the
    /// number of types).
    pub(crate) fn build(btf: &impl NameSource, capacity: usize) -> NameIndex {
        let mut keys = Vec::with_capacity(capacity);
        btf.collect_names(&mut keys);
        // Keys are (hash << 32 | id) and collected in id order, so a plain
        // sort gives the same order as the stable bucket sort, which only
        // pays off on large BTF such as vmlinux; an object's own BTF has
        // tens of names.
        let (hashes, mut ids) = if keys.len() < BUCKET_SORT_MIN {
            keys.sort_unstable();
            (
                keys.iter().map(|&k| (k >> 32) as u32).collect(),
                keys.iter().map(|&k| k as u32).collect(),
            )
        } else {
            bucket_sort_by_hash(&keys)
        };
        // Within a run of equal hashes, order by name so that each name is
        // contiguous even when two names collide (rare: ~1 pair in vmlinux).
        let mut start = 0;
        for (i, pair) in hashes.windows(2).enumerate() {
            if pair.first() == pair.last() {
                continue;
            }
            sort_run(btf, ids.get_mut(start..=i));
            start = i + 1;
        }
        sort_run(btf, ids.get_mut(start..));
        NameIndex { hashes, ids }
    }

    /// The ids named `name` (`btf` must be the one the index was built
    /// from), in id order.
    pub(crate) fn find<'a>(&'a self, btf: &impl NameSource, name: &str) -> &'a [u32] {
        let h = hash_name(name.as_bytes());
        let lo = self.hashes.partition_point(|&x| x < h);
        let len = self
            .hashes
            .get(lo..)
            .unwrap_or(&[])
            .partition_point(|&x| x == h);
        let run = self.ids.get(lo..lo + len).unwrap_or(&[]);
        let want = name.as_bytes();
        let start = run.partition_point(|&id| btf.name_of(id) < want);
        let len = run
            .get(start..)
            .unwrap_or(&[])
            .partition_point(|&id| btf.name_of(id) == want);
        run.get(start..start + len).unwrap_or(&[])
    }
}

/// Below this many names a comparison sort beats the bucket sort.
const BUCKET_SORT_MIN: usize = 4 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fused_hash_matches_plain_hash() {
        for len in 0..40 {
            let name: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let mut c = name.clone();
            c.push(0);
            c.extend_from_slice(b"trailing garbage\xff");
            assert_eq!(hash_c_string(&c), Some(hash_name(&name)), "len {len}");
            assert_eq!(hash_c_string(&name), None);
        }
    }

    fn split(keys: &[u64]) -> (Vec<u32>, Vec<u32>) {
        (
            keys.iter().map(|&k| (k >> 32) as u32).collect(),
            keys.iter().map(|&k| k as u32).collect(),
        )
    }

    #[test]
    fn small_and_large_sorts_agree() {
        // Keys as built: hash in the high half, ids ascending in the low.
        for n in [1u64, 2, 3, 100, 5000, 70_000] {
            let keys: Vec<u64> = (0..n)
                .map(|id| ((id * 2654435761) % 977 * 4_000_037 % (1 << 32)) << 32 | id)
                .collect();
            let mut a = keys.clone();
            a.sort_unstable();
            assert_eq!(bucket_sort_by_hash(&keys), split(&a), "{n} keys");
        }
    }

    #[test]
    fn bucket_sort_is_stable_by_hash() {
        // Few distinct hashes, all in one bucket or spread over the top bits.
        for spread in [0u64, 27] {
            let keys: Vec<u64> = (0..1000u64)
                .map(|id| {
                    let hash = ((id * 7919 % 13) << spread | (id * 31 % 5) << 28) & 0xffff_ffff;
                    hash << 32 | id
                })
                .collect();
            let mut expected = keys.clone();
            expected.sort_by_key(|k| (k >> 32, k & 0xffff_ffff));
            assert_eq!(
                bucket_sort_by_hash(&keys),
                split(&expected),
                "spread {spread}"
            );
        }
    }
}
