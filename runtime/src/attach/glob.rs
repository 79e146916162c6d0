//! The glob patterns of multi-probe sections (`kprobe.multi/vfs_*`,
//! `uprobe.multi/libc.so.6:mall?c`): `*` matches any run of characters,
//! `?` exactly one, everything else itself, as libbpf's `glob_match`.

/// Whether `text` matches `pattern` as a whole.
pub(crate) fn matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matcher with one backtrack point (the last `*`): linear in
    // practice, never exponential on patterns with many stars.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(matches("vfs_*", "vfs_read"));
        assert!(matches("vfs_*", "vfs_"));
        assert!(!matches("vfs_*", "vfs"));
        assert!(matches("*", ""));
        assert!(!matches("__x64_sys_getp?id", "__x64_sys_getpid"));
        assert!(matches("__x64_sys_getp?id", "__x64_sys_getppid"));
        assert!(matches("*read*", "vfs_readv"));
        assert!(matches("a*b*c", "aXbYbZc"));
        assert!(!matches("a*b*c", "aXbYbZ"));
        assert!(matches("exact", "exact"));
        assert!(!matches("exact", "exactly"));
    }
}
