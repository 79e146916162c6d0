//! The attach target written after the `/` of a section name, decoded per
//! auto-attach kind as libbpf's attach functions read it.

use super::{AutoAttach, Match, SectionError};

/// What a section name says to attach a program to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachTarget<'a> {
    /// Nothing to attach automatically: the program kind is attached by an
    /// explicit call (xdp, tc, cgroup, struct_ops...), or the section gives
    /// no target (`SEC("kprobe")`, `SEC("tracepoint")`, `SEC("usdt")`).
    Manual,
    /// `kprobe/<function>[+<offset>]`, `kretprobe/<function>`.
    Kprobe {
        /// The kernel function.
        func: &'a str,
        /// Byte offset into the function.
        offset: u64,
        /// kretprobe.
        retprobe: bool,
    },
    /// `ksyscall/<syscall>`, `kretsyscall/<syscall>`: the name without the
    /// arch prefix (`__x64_sys_`), resolved at attach.
    Ksyscall {
        /// The syscall name (`getppid`).
        syscall: &'a str,
        /// kretsyscall.
        retprobe: bool,
    },
    /// `kprobe.multi/<pattern>`, `kretprobe.multi/<pattern>`,
    /// `kprobe.session/<pattern>`: `*` and `?` are wildcards.
    KprobeMulti {
        /// The function name pattern.
        pattern: &'a str,
        /// kretprobe.multi.
        retprobe: bool,
        /// kprobe.session.
        session: bool,
    },
    /// `uprobe[.s]/<path>:<function>[+<offset>]`, `uretprobe[.s]/...`.
    Uprobe {
        /// The binary or library.
        binary: &'a str,
        /// The function symbol (may carry a version: `malloc@@GLIBC_2.2.5`).
        func: &'a str,
        /// Byte offset into the function.
        offset: u64,
        /// uretprobe.
        retprobe: bool,
    },
    /// `uprobe.multi[.s]/<path>:<pattern>` and its uretprobe and session
    /// forms: `*` and `?` are wildcards.
    UprobeMulti {
        /// The binary or library.
        binary: &'a str,
        /// The function name pattern.
        pattern: &'a str,
        /// uretprobe.multi.
        retprobe: bool,
        /// uprobe.session.
        session: bool,
    },
    /// `usdt[.s]/<path>:<provider>:<name>`.
    Usdt {
        /// The binary or library.
        binary: &'a str,
        /// The USDT provider.
        provider: &'a str,
        /// The USDT probe name.
        name: &'a str,
    },
    /// `tracepoint/<category>/<name>`, `tp/<category>/<name>` and their
    /// sleepable forms.
    Tracepoint {
        /// The tracefs category (`syscalls`).
        category: &'a str,
        /// The event name (`sys_enter_getppid`).
        name: &'a str,
    },
    /// `raw_tp/<name>`, `raw_tracepoint[.w|.s]/<name>`.
    RawTracepoint {
        /// The tracepoint name (`sys_enter`).
        name: &'a str,
    },
    /// `tp_btf`, `fentry`, `fexit`, `fmod_ret`, `fsession`, `freplace`, `lsm`
    /// and `iter` programs: attached through the BTF id found at load.
    /// `name` is `None` when the section gives no target, which the user then
    /// sets before load.
    Btf {
        /// The target as written in the section (`vfs_read`, `sched_switch`,
        /// `file_open`, `task`); [`Match::btf_target`] adds the BTF prefix.
        name: Option<&'a str>,
    },
    /// `fentry.multi/<pattern>`, `fexit.multi/<pattern>`,
    /// `fsession.multi/<pattern>`.
    TracingMulti {
        /// The function name pattern.
        pattern: &'a str,
    },
}

/// Decode the attach target of a matched section name per its auto-attach
/// kind, as libbpf's attach functions read it.
///
/// This is stricter than libbpf where libbpf silently ignores trailing text
/// (`kprobe/foo-bar` is `foo` to libbpf's `sscanf`, an error here), so that a
/// typo is reported at build time rather than attaching somewhere unexpected.
pub fn parse_target<'a>(m: &Match<'a>) -> Result<AttachTarget<'a>, SectionError> {
    let def = m.def;
    let retprobe = def.is_retprobe();
    let session = def.is_session();
    let malformed = |expected: &'static str| SectionError::Malformed {
        section: m.section.to_owned(),
        expected,
    };

    let Some(target) = m.target else {
        return Ok(match def.auto_attach {
            AutoAttach::Trace | AutoAttach::Lsm | AutoAttach::Iter => {
                AttachTarget::Btf { name: None }
            }
            _ => AttachTarget::Manual,
        });
    };

    Ok(match def.auto_attach {
        AutoAttach::None => AttachTarget::Manual,
        AutoAttach::Kprobe => {
            const EXPECTED: &str = "kprobe/<function>[+<offset>] (function: a-zA-Z0-9_.)";
            let (func, offset) = match target.split_once('+') {
                Some((func, off)) => (func, parse_offset(off).ok_or_else(|| malformed(EXPECTED))?),
                None => (target, 0),
            };
            if !is_symbol(func) {
                return Err(malformed(EXPECTED));
            }
            if retprobe && offset != 0 {
                return Err(SectionError::RetprobeOffset {
                    section: m.section.to_owned(),
                });
            }
            AttachTarget::Kprobe {
                func,
                offset,
                retprobe,
            }
        }
        AutoAttach::Ksyscall => {
            if !is_symbol(target) {
                return Err(malformed("ksyscall/<syscall>"));
            }
            AttachTarget::Ksyscall {
                syscall: target,
                retprobe,
            }
        }
        AutoAttach::KprobeMulti | AutoAttach::KprobeSession => {
            if !is_pattern(target) {
                return Err(malformed("kprobe.multi/<pattern> (pattern: a-zA-Z0-9_.*?)"));
            }
            AttachTarget::KprobeMulti {
                pattern: target,
                retprobe,
                session,
            }
        }
        AutoAttach::Uprobe => {
            const EXPECTED: &str = "uprobe/<path>:<function>[+<offset>]";
            let (binary, spec) = target.split_once(':').ok_or_else(|| malformed(EXPECTED))?;
            // A `+` ends the function name only if a number follows it to the
            // end, as libbpf reads it.
            let (func, offset) = match spec.rsplit_once('+') {
                Some((func, off)) => match parse_offset(off) {
                    Some(offset) => (func, offset),
                    None => (spec, 0),
                },
                None => (spec, 0),
            };
            if binary.is_empty() || func.is_empty() {
                return Err(malformed(EXPECTED));
            }
            if retprobe && offset != 0 {
                return Err(SectionError::RetprobeOffset {
                    section: m.section.to_owned(),
                });
            }
            AttachTarget::Uprobe {
                binary,
                func,
                offset,
                retprobe,
            }
        }
        AutoAttach::UprobeMulti => {
            const EXPECTED: &str = "uprobe.multi/<path>:<pattern>";
            let (binary, pattern) = target.split_once(':').ok_or_else(|| malformed(EXPECTED))?;
            if binary.is_empty() || pattern.is_empty() {
                return Err(malformed(EXPECTED));
            }
            AttachTarget::UprobeMulti {
                binary,
                pattern,
                retprobe,
                session,
            }
        }
        AutoAttach::Usdt => {
            const EXPECTED: &str = "usdt/<path>:<provider>:<name>";
            let mut parts = target.split(':');
            let (Some(binary), Some(provider), Some(name), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(malformed(EXPECTED));
            };
            if binary.is_empty() || provider.is_empty() || name.is_empty() {
                return Err(malformed(EXPECTED));
            }
            AttachTarget::Usdt {
                binary,
                provider,
                name,
            }
        }
        AutoAttach::Tracepoint => {
            const EXPECTED: &str = "tracepoint/<category>/<name>";
            let (category, name) = target.split_once('/').ok_or_else(|| malformed(EXPECTED))?;
            if category.is_empty() || name.is_empty() || name.contains('/') {
                return Err(malformed(EXPECTED));
            }
            AttachTarget::Tracepoint { category, name }
        }
        AutoAttach::RawTracepoint => {
            if target.is_empty() || target.contains('/') {
                return Err(malformed("raw_tp/<tracepoint>"));
            }
            AttachTarget::RawTracepoint { name: target }
        }
        AutoAttach::Trace | AutoAttach::Lsm | AutoAttach::Iter => {
            if target.is_empty() || target.contains('/') {
                return Err(malformed("<type>/<btf name> (e.g. fentry/<function>)"));
            }
            AttachTarget::Btf { name: Some(target) }
        }
        AutoAttach::TracingMulti => {
            if !is_pattern(target) {
                return Err(malformed("fentry.multi/<pattern> (pattern: a-zA-Z0-9_.*?)"));
            }
            AttachTarget::TracingMulti { pattern: target }
        }
    })
}

/// A kernel or syscall symbol as libbpf accepts it: `a-zA-Z0-9_.`, non-empty.
fn is_symbol(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
}

/// A multi-probe pattern: symbol characters and the `*` / `?` wildcards.
fn is_pattern(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'*' | b'?'))
}

/// A non-negative offset as C's `%li` reads it: decimal, `0x` hex, or octal
/// with a leading `0`.
fn parse_offset(s: &str) -> Option<u64> {
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u64::from_str_radix(hex, 16).ok()
    } else if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        if s.len() > 1 && s.starts_with('0') {
            if !s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
                return None;
            }
            u64::from_str_radix(&s[1..], 8).ok()
        } else {
            s.parse().ok()
        }
    } else {
        None
    }
}
