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
//! a radix sort rather than by comparing strings.

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

/// Stable LSD radix sort of `(hash << 32) | id` keys by their hash, in two
/// 16-bit passes. Keys come in id order, so equal hashes stay in id order.
fn radix_sort_by_hash(keys: &mut Vec<u64>) {
    let mut out = vec![0u64; keys.len()];
    let mut counts = vec![0usize; 1 << 16];
    for shift in [32, 48] {
        counts.iter_mut().for_each(|c| *c = 0);
        let digit = |k: u64| ((k >> shift) & 0xffff) as usize;
        for &k in keys.iter() {
            if let Some(c) = counts.get_mut(digit(k)) {
                *c += 1;
            }
        }
        let mut next = 0;
        for c in counts.iter_mut() {
            (*c, next) = (next, next + *c);
        }
        for &k in keys.iter() {
            if let Some(c) = counts.get_mut(digit(k)) {
                if let Some(slot) = out.get_mut(*c) {
                    *slot = k;
                }
                *c += 1;
            }
        }
        std::mem::swap(keys, &mut out);
    }
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
    run.sort_by(|&a, &b| btf.name_of(a).cmp(btf.name_of(b)).then(a.cmp(&b)));
}

impl NameIndex {
    /// The index of every name `btf` has; `capacity` is a hint (the
    /// number of types).
    pub(crate) fn build(btf: &impl NameSource, capacity: usize) -> NameIndex {
        let mut keys = Vec::with_capacity(capacity);
        btf.collect_names(&mut keys);
        // Keys are (hash << 32 | id) and collected in id order, so a plain
        // sort gives the same order as the stable radix sort. The radix
        // sort's count arrays (512 KiB, zeroed twice) only pay off on large
        // BTF such as vmlinux; an object's own BTF has tens of names.
        if keys.len() < RADIX_SORT_MIN {
            keys.sort_unstable();
        } else {
            radix_sort_by_hash(&mut keys);
        }
        let hashes: Vec<u32> = keys.iter().map(|&k| (k >> 32) as u32).collect();
        let mut ids: Vec<u32> = keys.iter().map(|&k| k as u32).collect();
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

/// Below this many names a comparison sort beats the radix sort.
const RADIX_SORT_MIN: usize = 16 * 1024;

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

    #[test]
    fn small_and_large_sorts_agree() {
        // Keys as built: hash in the high half, ids ascending in the low.
        let keys: Vec<u64> = (0..5000u64)
            .map(|id| (id * 2654435761 % 977) << 32 | id)
            .collect();
        let mut a = keys.clone();
        a.sort_unstable();
        let mut b = keys;
        radix_sort_by_hash(&mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn radix_sort_is_stable_by_hash() {
        let mut keys: Vec<u64> = (0..1000u64)
            .map(|id| ((id * 7919 % 13) << 32 | (id * 31 % 5) << 48) | id)
            .collect();
        let mut expected = keys.clone();
        expected.sort_by_key(|k| (k >> 32, k & 0xffff_ffff));
        radix_sort_by_hash(&mut keys);
        assert_eq!(keys, expected);
    }
}
