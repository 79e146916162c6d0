//! One stable sort for the whole crate.
//!
//! Each `sort_by_key` call site instantiates the standard library's stable
//! sort (driftsort) for its element type and closure, 7-10 KB of code each;
//! the lists sorted here are short (symbols of a section, relocations of a
//! program). Sorting `(key, index)` pairs instead shares one instantiation
//! of the sorting code among every caller, and the per-type part is a
//! move of each element.

/// Sorts `v` by `key`, keeping equal keys in their order (a stable sort).
pub(crate) fn stable_sort_by_u64<T>(v: &mut Vec<T>, key: impl Fn(&T) -> u64) {
    if v.windows(2).all(|w| match w {
        [a, b] => key(a) <= key(b),
        _ => true,
    }) {
        return;
    }
    let mut order: Vec<(u64, usize)> = v.iter().map(&key).zip(0..).collect();
    sort_pairs(&mut order);
    let mut slots: Vec<Option<T>> = v.drain(..).map(Some).collect();
    v.extend(
        order
            .iter()
            .filter_map(|&(_, i)| slots.get_mut(i).and_then(Option::take)),
    );
}

/// The one instantiation: distinct indices make the order total, so an
/// unstable sort is stable in the keys.
#[inline(never)]
fn sort_pairs(order: &mut [(u64, usize)]) {
    order.sort_unstable();
}

#[cfg(test)]
mod tests {
    use super::stable_sort_by_u64;

    #[test]
    fn sorts_by_key_and_keeps_equal_keys_in_order() {
        let mut v: Vec<(u64, &str)> = vec![(3, "a"), (1, "b"), (3, "c"), (0, "d"), (1, "e")];
        stable_sort_by_u64(&mut v, |x| x.0);
        assert_eq!(v, [(0, "d"), (1, "b"), (1, "e"), (3, "a"), (3, "c")]);
        let mut sorted = vec![1u64, 2, 2, 5];
        stable_sort_by_u64(&mut sorted, |&x| x);
        assert_eq!(sorted, [1, 2, 2, 5]);
        let mut empty: Vec<u64> = Vec::new();
        stable_sort_by_u64(&mut empty, |&x| x);
        assert!(empty.is_empty());
    }
}
