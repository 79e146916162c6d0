//! `LINUX_KERNEL_VERSION`: the running kernel's version code, found the way
//! libbpf finds it.
//!
//! libbpf tries, in order: Ubuntu's `/proc/version_signature` (whose last
//! field is the upstream version the kernel was built from), then a
//! `Debian x.y.z` in `uname -v` (Debian's release string keeps the patch
//! level at 0), then `uname -r`. Each parses `major.minor.patch` and packs it
//! as `KERNEL_VERSION(major, minor, min(patch, 255))`.

use super::KernelError;

/// Ubuntu's file with the upstream version (`Ubuntu 5.4.0-42.46-generic 5.4.44`).
pub const UBUNTU_VERSION_SIGNATURE: &str = "/proc/version_signature";
/// `uname -r`, read through procfs (no `uname(2)` outside the sys layer).
pub const OSRELEASE_PATH: &str = "/proc/sys/kernel/osrelease";
/// `uname -v`.
pub const UTS_VERSION_PATH: &str = "/proc/sys/kernel/version";

/// `KERNEL_VERSION(major, minor, patch)` as libbpf computes it: the patch
/// level saturates at 255 (4.9.256 and later would otherwise spill into the
/// minor number).
pub const fn kernel_version_code(major: u32, minor: u32, patch: u32) -> u32 {
    let patch = if patch > 255 { 255 } else { patch };
    (major << 16).wrapping_add(minor << 8).wrapping_add(patch)
}

/// Reads a decimal number at the start of `s` (after blanks, as `%u` does);
/// returns it and the rest.
fn leading_u32(s: &str) -> Option<(u32, &str)> {
    let s = s.trim_start();
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let digits = s.get(..end)?;
    if digits.is_empty() {
        return None;
    }
    Some((digits.parse().ok()?, s.get(end..)?))
}

/// Parses `major.minor.patch` at the start of `s`, ignoring what follows
/// (`6.18.44-fc-v657` -> 6, 18, 44), like `sscanf("%u.%u.%u")`.
pub fn parse_version_triple(s: &str) -> Option<(u32, u32, u32)> {
    let (major, rest) = leading_u32(s)?;
    let (minor, rest) = leading_u32(rest.strip_prefix('.')?)?;
    let (patch, _) = leading_u32(rest.strip_prefix('.')?)?;
    Some((major, minor, patch))
}

/// The version code from a `uname -r` release string; `None` unless it starts
/// with `major.minor.patch` (libbpf rejects `6.1` too).
pub fn parse_release(release: &str) -> Option<u32> {
    parse_version_triple(release).map(|(a, b, c)| kernel_version_code(a, b, c))
}

/// The version code from Ubuntu's `/proc/version_signature`: the third
/// whitespace-separated field (`Ubuntu 5.4.0-42.46-generic 5.4.44` -> 5.4.44).
pub fn parse_ubuntu_signature(signature: &str) -> Option<u32> {
    let field = signature.split_whitespace().nth(2)?;
    parse_release(field)
}

/// The version code from a Debian `uname -v` (`#1 SMP Debian 4.19.260-1
/// (2022-09-29)` -> 4.19.260); `None` when there is no `"Debian "` in it.
pub fn parse_debian_version(uts_version: &str) -> Option<u32> {
    let (_, after) = uts_version.split_once("Debian ")?;
    parse_release(after)
}

/// Combines the three sources in libbpf's order of precedence: the Ubuntu
/// signature (when present and parsable), the Debian version, the release.
pub fn kernel_version_from(
    ubuntu_signature: Option<&str>,
    release: &str,
    uts_version: &str,
) -> Option<u32> {
    ubuntu_signature
        .and_then(parse_ubuntu_signature)
        .or_else(|| parse_debian_version(uts_version))
        .or_else(|| parse_release(release))
}

fn read_trimmed(path: &str) -> Result<String, KernelError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim_end_matches('\n').to_string())
        .map_err(|e| KernelError::io(path, e))
}

/// The running kernel's version code, as libbpf gives `LINUX_KERNEL_VERSION`
/// (see the module docs for the Ubuntu and Debian quirks).
pub fn kernel_version() -> Result<u32, KernelError> {
    // A missing or unreadable signature only means "not Ubuntu", as in libbpf.
    let signature = std::fs::read_to_string(UBUNTU_VERSION_SIGNATURE).ok();
    let release = read_trimmed(OSRELEASE_PATH)?;
    let uts_version = read_trimmed(UTS_VERSION_PATH)?;
    kernel_version_from(signature.as_deref(), &release, &uts_version).ok_or_else(|| {
        KernelError::KernelVersion {
            reason: format!(
                "release '{release}' (uname -r) is not major.minor.patch, and neither \
                 {UBUNTU_VERSION_SIGNATURE} nor a 'Debian x.y.z' in uname -v ('{uts_version}') \
                 gives one"
            ),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_packs_and_saturates_patch() {
        assert_eq!(kernel_version_code(6, 18, 44), 0x06122c);
        assert_eq!(kernel_version_code(4, 9, 337), (4 << 16) | (9 << 8) | 255);
    }

    #[test]
    fn release_strings() {
        assert_eq!(parse_release("6.18.44-fc-v657"), Some(0x06122c));
        assert_eq!(parse_release("5.15.0-91-generic"), Some(0x050f00));
        assert_eq!(parse_release("6.1"), None);
        assert_eq!(parse_release("6.1-rc1"), None);
        assert_eq!(parse_release(""), None);
        assert_eq!(parse_release("x.1.2"), None);
        assert_eq!(parse_release("99999999999.1.2"), None);
    }

    #[test]
    fn ubuntu_signature_wins() {
        let sig = "Ubuntu 5.4.0-42.46-generic 5.4.44\n";
        assert_eq!(
            parse_ubuntu_signature(sig),
            Some(kernel_version_code(5, 4, 44))
        );
        assert_eq!(
            kernel_version_from(Some(sig), "5.4.0-42-generic", "#46-Ubuntu SMP"),
            Some(kernel_version_code(5, 4, 44))
        );
        // A malformed signature falls back to the release.
        assert_eq!(
            kernel_version_from(Some("Ubuntu"), "5.4.0-42-generic", "#46-Ubuntu SMP"),
            Some(kernel_version_code(5, 4, 0))
        );
    }

    #[test]
    fn debian_version_field() {
        let v = "#1 SMP Debian 4.19.260-1 (2022-09-29)";
        assert_eq!(
            parse_debian_version(v),
            Some(kernel_version_code(4, 19, 260))
        );
        assert_eq!(
            kernel_version_from(None, "4.19.0-22-amd64", v),
            Some(kernel_version_code(4, 19, 255))
        );
        assert_eq!(
            kernel_version_from(
                None,
                "6.1.0-13-amd64",
                "#1 SMP PREEMPT_DYNAMIC Debian 6.1.55-1 (2023-09-29)"
            ),
            Some(kernel_version_code(6, 1, 55))
        );
        assert_eq!(parse_debian_version("#1 SMP PREEMPT_DYNAMIC @0"), None);
        // "Debian" without a version: fall back to the release.
        assert_eq!(
            kernel_version_from(None, "6.1.0-13-amd64", "#1 SMP Debian kernel"),
            Some(kernel_version_code(6, 1, 0))
        );
    }
}
