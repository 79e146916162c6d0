//! Multi-probe links: `kprobe.multi`/`kretprobe.multi`/`kprobe.session`
//! (fprobe) and `uprobe.multi`/`uretprobe.multi`/`uprobe.session`. One
//! `BPF_LINK_CREATE` puts the program on every site at once, with a BPF
//! cookie per site, and one link fd holds them all.
//!
//! Kernel function patterns are resolved as libbpf does: against tracefs
//! `available_filter_functions` (only those can take an fprobe), else
//! against the text symbols of `/proc/kallsyms`. Binary patterns are matched
//! against the ELF's function symbols.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::os::fd::BorrowedFd;
use std::path::Path;

use super::elf::{func_file_offset, func_file_offsets_matching, resolve_binary};
use super::error::{AttachError, Ctx};
use super::glob;
use super::link::{Inner, Link};
use super::tracefs;
use crate::btf::{Kind, TypeKind};
use crate::kernel::{vmlinux_btf, Kallsyms};
use crate::sys::{
    attach_type, KprobeMulti, LinkCreate, LinkExtra, LinkTarget, SysError, UprobeMulti,
};

/// The kernel's internal `ENOTSUPP`, which some BPF paths leak to user space.
const ENOTSUPP: i32 = 524;
/// `BPF_F_KPROBE_MULTI_RETURN`.
const KPROBE_MULTI_RETURN: u32 = 1;
/// `BPF_F_UPROBE_MULTI_RETURN`.
const UPROBE_MULTI_RETURN: u32 = 1;

/// The kernel functions of a [`attach_kprobe_multi`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KprobeMultiTargets<'a> {
    /// Every traceable function whose name matches the glob (`*`, `?`).
    Pattern(&'a str),
    /// These functions.
    Symbols(&'a [&'a str]),
    /// These kernel text addresses.
    Addresses(&'a [u64]),
}

/// Options of [`attach_kprobe_multi`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KprobeMultiOptions<'a> {
    /// Return probes (kretprobe.multi).
    pub retprobe: bool,
    /// A session (kprobe.session, 6.10+): the program runs at entry and,
    /// if it returned 0 there, again at return.
    pub session: bool,
    /// One `bpf_get_attach_cookie()` value per site, in the order of the
    /// symbols or addresses (empty: none). Not with a pattern, whose order
    /// the caller does not know.
    pub cookies: &'a [u64],
}

/// The traceable kernel functions matching `pattern`, sorted and without
/// duplicates: from `available_filter_functions` when tracefs is mounted and
/// lets us read it, else from the text symbols of `/proc/kallsyms` (which
/// also lists functions ftrace cannot hook, so attaching to all of them may
/// fail).
pub fn kprobe_multi_functions(pattern: &str) -> Result<Vec<String>, String> {
    let listed = tracefs::root()
        .and_then(|root| std::fs::read_to_string(root.join("available_filter_functions")).ok());
    let names: BTreeSet<String> = match listed {
        Some(text) => filter_functions_matching(&text, pattern),
        None => {
            let syms = Kallsyms::read().map_err(|e| e.to_string())?;
            syms.entries()
                .filter(|e| matches!(e.kind, 't' | 'T') && glob::matches(pattern, e.name))
                .map(|e| e.name.to_owned())
                .collect()
        }
    };
    Ok(names.into_iter().collect())
}

/// The names of `available_filter_functions` lines (`name` or
/// `name [module]`) that match `pattern`. ftrace lists a function it
/// refused as `__ftrace_invalid_address___<n>`: never a target.
fn filter_functions_matching(text: &str, pattern: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| !name.starts_with("__ftrace_invalid_address__"))
        .filter(|name| glob::matches(pattern, name))
        .map(str::to_owned)
        .collect()
}

/// Whether the running kernel's `enum bpf_attach_type` has `name`
/// (`BPF_TRACE_UPROBE_MULTI`), from its BTF; `None` when BTF cannot tell.
fn kernel_knows_attach_type(name: &str) -> Option<bool> {
    let btf = vmlinux_btf().ok()?;
    btf.build_name_index();
    let id = btf.find_by_name_kind("bpf_attach_type", Kind::Enum)?;
    let ty = btf.type_by_id(id).ok()?;
    let TypeKind::Enum(e) = ty.kind else {
        return None;
    };
    let known = e.values().any(|v| btf.name(v.name_off).ok() == Some(name));
    Some(known)
}

/// The error of a refused multi-probe link: a kernel lacking the link type
/// (by its BTF, or `EOPNOTSUPP` from a kernel built without fprobe) is
/// named as such, anything else is the kernel's error.
fn link_error(ctx: Ctx<'_>, target: &str, kind: MultiKind, err: SysError) -> AttachError {
    let errno = err.errno();
    let refused = matches!(errno, Some(libc::EINVAL | libc::EOPNOTSUPP | ENOTSUPP));
    if refused && kernel_knows_attach_type(kind.enum_name()) == Some(false) {
        return ctx.unsupported(
            target,
            format!(
                "the kernel has no {} links ({} came in Linux {}; {} is not in its enum \
                 bpf_attach_type)",
                kind.section(),
                kind.section(),
                kind.since(),
                kind.enum_name()
            ),
        );
    }
    if kind.is_kprobe() && matches!(errno, Some(libc::EOPNOTSUPP | ENOTSUPP)) {
        return ctx.unsupported(
            target,
            format!(
                "the kernel has no {} links: they need fprobe (CONFIG_FPROBE), which this \
                 kernel is built without",
                kind.section()
            ),
        );
    }
    ctx.kernel(target, err)
}

/// The kinds of multi-probe links, for messages.
#[derive(Debug, Clone, Copy)]
enum MultiKind {
    Kprobe,
    KprobeSession,
    Uprobe,
    UprobeSession,
}

impl MultiKind {
    fn section(self) -> &'static str {
        match self {
            MultiKind::Kprobe => "kprobe.multi",
            MultiKind::KprobeSession => "kprobe.session",
            MultiKind::Uprobe => "uprobe.multi",
            MultiKind::UprobeSession => "uprobe.session",
        }
    }

    fn enum_name(self) -> &'static str {
        match self {
            MultiKind::Kprobe => "BPF_TRACE_KPROBE_MULTI",
            MultiKind::KprobeSession => "BPF_TRACE_KPROBE_SESSION",
            MultiKind::Uprobe => "BPF_TRACE_UPROBE_MULTI",
            MultiKind::UprobeSession => "BPF_TRACE_UPROBE_SESSION",
        }
    }

    fn since(self) -> &'static str {
        match self {
            MultiKind::Kprobe => "5.18",
            MultiKind::KprobeSession => "6.10",
            MultiKind::Uprobe => "6.6",
            MultiKind::UprobeSession => "6.13",
        }
    }

    fn is_kprobe(self) -> bool {
        matches!(self, MultiKind::Kprobe | MultiKind::KprobeSession)
    }
}

pub(super) fn kprobe_multi(
    ctx: Ctx<'_>,
    targets: KprobeMultiTargets<'_>,
    opts: &KprobeMultiOptions<'_>,
) -> Result<Link, AttachError> {
    let (kind, section) = match (opts.session, opts.retprobe) {
        (true, _) => (MultiKind::KprobeSession, "kprobe.session"),
        (false, true) => (MultiKind::Kprobe, "kretprobe.multi"),
        (false, false) => (MultiKind::Kprobe, "kprobe.multi"),
    };
    let target = match targets {
        KprobeMultiTargets::Pattern(p) => format!("{section} {p}"),
        KprobeMultiTargets::Symbols(s) => format!("{section} {}", s.join(",")),
        KprobeMultiTargets::Addresses(a) => format!("{section} at {} addresses", a.len()),
    };
    if opts.session && opts.retprobe {
        return Err(ctx.target(
            &target,
            "a session covers entry and return: no retprobe flag",
        ));
    }
    let resolved: Vec<String>;
    let names: Vec<&str> = match targets {
        KprobeMultiTargets::Pattern(pattern) => {
            if !opts.cookies.is_empty() {
                return Err(ctx.target(
                    &target,
                    "cookies need explicit symbols or addresses (a pattern's order is the kernel's)",
                ));
            }
            // A name without wildcards goes to the kernel as it is: its
            // kallsyms lookup also finds aliases (`__x64_sys_getppid`),
            // which available_filter_functions lists under another name
            // (`__do_sys_getppid`) of the same address.
            resolved = if pattern.contains(['*', '?']) {
                kprobe_multi_functions(pattern).map_err(|r| ctx.target(&target, r))?
            } else {
                vec![pattern.to_owned()]
            };
            if resolved.is_empty() {
                return Err(ctx.target(
                    &target,
                    "the pattern matches no function of available_filter_functions",
                ));
            }
            resolved.iter().map(String::as_str).collect()
        }
        KprobeMultiTargets::Symbols(syms) => syms.to_vec(),
        KprobeMultiTargets::Addresses(_) => Vec::new(),
    };
    let names_c = names
        .iter()
        .map(|n| CString::new(*n).map_err(|_| ctx.target(&target, format!("{n:?} contains NUL"))))
        .collect::<Result<Vec<_>, _>>()?;
    let sym_refs: Vec<&std::ffi::CStr> = names_c.iter().map(CString::as_c_str).collect();
    let addrs: &[u64] = match targets {
        KprobeMultiTargets::Addresses(a) => a,
        _ => &[],
    };
    let count = sym_refs.len() + addrs.len();
    if count == 0 {
        return Err(ctx.target(&target, "no function to attach to"));
    }
    if !opts.cookies.is_empty() && opts.cookies.len() != count {
        return Err(ctx.target(
            &target,
            format!("{} cookies for {count} functions", opts.cookies.len()),
        ));
    }
    let link_type = if opts.session {
        attach_type::TRACE_KPROBE_SESSION
    } else {
        attach_type::TRACE_KPROBE_MULTI
    };
    LinkCreate::new(ctx.prog, LinkTarget::None, link_type)
        .extra(LinkExtra::KprobeMulti(KprobeMulti {
            syms: &sym_refs,
            addrs,
            cookies: opts.cookies,
            flags: if opts.retprobe {
                KPROBE_MULTI_RETURN
            } else {
                0
            },
        }))
        .create()
        .map(|fd| Link::new(Inner::Bpf(fd)))
        .map_err(|e| link_error(ctx, &target, kind, e))
}

/// Attach a kprobe program to many kernel functions with one link
/// (`kprobe.multi`, `kretprobe.multi` with `opts.retprobe`, `kprobe.session`
/// with `opts.session`). Needs a program loaded for that attach type (its
/// section says so).
pub fn attach_kprobe_multi(
    prog: BorrowedFd<'_>,
    targets: KprobeMultiTargets<'_>,
    opts: &KprobeMultiOptions<'_>,
) -> Result<Link, AttachError> {
    kprobe_multi(Ctx::explicit(prog), targets, opts)
}

/// The functions of a binary of a [`attach_uprobe_multi`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UprobeMultiTargets<'a> {
    /// Every function symbol whose name matches the glob (`*`, `?`).
    Pattern(&'a str),
    /// These function symbols.
    Symbols(&'a [&'a str]),
    /// These file offsets.
    Offsets(&'a [u64]),
}

/// Options of [`attach_uprobe_multi`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UprobeMultiOptions<'a> {
    /// Return probes (uretprobe.multi).
    pub retprobe: bool,
    /// A session (uprobe.session, 6.13+).
    pub session: bool,
    /// Only this process (`None`: every process that runs the code).
    pub pid: Option<i32>,
    /// One cookie per site, in the order of the symbols or offsets (empty:
    /// none). Not with a pattern.
    pub cookies: &'a [u64],
    /// One USDT semaphore offset per site (empty: none).
    pub ref_ctr_offsets: &'a [u64],
}

pub(super) fn uprobe_multi(
    ctx: Ctx<'_>,
    binary: &str,
    targets: UprobeMultiTargets<'_>,
    opts: &UprobeMultiOptions<'_>,
) -> Result<Link, AttachError> {
    let (kind, section) = match (opts.session, opts.retprobe) {
        (true, _) => (MultiKind::UprobeSession, "uprobe.session"),
        (false, true) => (MultiKind::Uprobe, "uretprobe.multi"),
        (false, false) => (MultiKind::Uprobe, "uprobe.multi"),
    };
    let what = match targets {
        UprobeMultiTargets::Pattern(p) => p.to_owned(),
        UprobeMultiTargets::Symbols(s) => s.join(","),
        UprobeMultiTargets::Offsets(o) => format!("{} offsets", o.len()),
    };
    let mut target = format!("{section} {binary}:{what}");
    if opts.session && opts.retprobe {
        return Err(ctx.target(
            &target,
            "a session covers entry and return: no retprobe flag",
        ));
    }
    let path = resolve_binary(binary).map_err(|reason| ctx.target(&target, reason))?;
    target = format!("{section} {}:{what}", path.display());
    let read = |path: &Path| std::fs::read(path).map_err(|e| ctx.io(&target, "reading", path, e));
    let offsets: Vec<u64> = match targets {
        UprobeMultiTargets::Offsets(o) => o.to_vec(),
        UprobeMultiTargets::Pattern(pattern) => {
            if !opts.cookies.is_empty() || !opts.ref_ctr_offsets.is_empty() {
                return Err(ctx.target(
                    &target,
                    "cookies and semaphores need explicit symbols or offsets",
                ));
            }
            let data = read(&path)?;
            let found = func_file_offsets_matching(&data, pattern)
                .map_err(|r| ctx.target(&target, format!("{}: {r}", path.display())))?;
            if found.is_empty() {
                return Err(ctx.target(
                    &target,
                    format!("no function symbol of {} matches", path.display()),
                ));
            }
            found.into_iter().map(|(_, off)| off).collect()
        }
        UprobeMultiTargets::Symbols(syms) => {
            let data = read(&path)?;
            syms.iter()
                .map(|s| {
                    func_file_offset(&data, s)
                        .map_err(|r| ctx.target(&target, format!("{}: {r}", path.display())))
                })
                .collect::<Result<_, _>>()?
        }
    };
    if offsets.is_empty() {
        return Err(ctx.target(&target, "no function to attach to"));
    }
    for (what, len) in [
        ("cookies", opts.cookies.len()),
        ("semaphore offsets", opts.ref_ctr_offsets.len()),
    ] {
        if len != 0 && len != offsets.len() {
            return Err(ctx.target(&target, format!("{len} {what} for {} sites", offsets.len())));
        }
    }
    let path_c = path
        .to_str()
        .and_then(|p| CString::new(p).ok())
        .ok_or_else(|| ctx.target(&target, "path is not UTF-8 or contains NUL"))?;
    let pid = match opts.pid {
        None => 0,
        Some(p) => u32::try_from(p)
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| ctx.target(&target, format!("pid {p} is not a process id")))?,
    };
    let link_type = if opts.session {
        attach_type::TRACE_UPROBE_SESSION
    } else {
        attach_type::TRACE_UPROBE_MULTI
    };
    LinkCreate::new(ctx.prog, LinkTarget::None, link_type)
        .extra(LinkExtra::UprobeMulti(UprobeMulti {
            path: &path_c,
            offsets: &offsets,
            ref_ctr_offsets: opts.ref_ctr_offsets,
            cookies: opts.cookies,
            pid,
            flags: if opts.retprobe {
                UPROBE_MULTI_RETURN
            } else {
                0
            },
        }))
        .create()
        .map(|fd| Link::new(Inner::Bpf(fd)))
        .map_err(|e| link_error(ctx, &target, kind, e))
}

/// Attach a kprobe-type program loaded for `uprobe.multi` (or its return or
/// session forms) to many functions of `binary` (a path, or a bare name
/// searched as [`resolve_binary`] does) with one link.
pub fn attach_uprobe_multi(
    prog: BorrowedFd<'_>,
    binary: &str,
    targets: UprobeMultiTargets<'_>,
    opts: &UprobeMultiOptions<'_>,
) -> Result<Link, AttachError> {
    uprobe_multi(Ctx::explicit(prog), binary, targets, opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_function_lines() {
        let text = "\
vfs_read
vfs_readv
__ftrace_invalid_address___123
vfs_write [some_mod]
vfs_read
do_sys_open
";
        let got: Vec<String> = filter_functions_matching(text, "vfs_*")
            .into_iter()
            .collect();
        assert_eq!(got, ["vfs_read", "vfs_readv", "vfs_write"]);
        assert!(filter_functions_matching(text, "__ftrace*").is_empty());
    }
}
