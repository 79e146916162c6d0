//! Flavors: `task_struct___v2` is a local "flavor" of `task_struct`. The
//! essential name is everything before the last `X___Y` separator, where
//! neither X nor Y is an underscore (so `__u32` and `a____b` keep theirs).

/// The name without its `___flavor` suffix.
pub(crate) fn essential_name(name: &str) -> &str {
    let sep = name
        .as_bytes()
        .windows(5)
        .rposition(|w| matches!(w, [x, b'_', b'_', b'_', y] if *x != b'_' && *y != b'_'));
    // `i + 1` is the first `_` of the separator: a char boundary.
    match sep {
        Some(i) => name.get(..i + 1).unwrap_or(name),
        None => name,
    }
}

#[cfg(test)]
mod tests {
    use super::essential_name;

    #[test]
    fn flavors_are_stripped_at_the_last_separator() {
        for (name, want) in [
            ("task_struct", "task_struct"),
            ("task_struct___flavor", "task_struct"),
            ("task_struct___a___b", "task_struct___a"),
            ("PIDTYPE_SID___skel", "PIDTYPE_SID"),
            ("a___b", "a"),
            ("a____b", "a____b"),
            ("a___", "a___"),
            ("___b", "___b"),
            ("__u32", "__u32"),
            ("", ""),
            ("é___x", "é"),
        ] {
            assert_eq!(essential_name(name), want, "{name}");
        }
    }
}
