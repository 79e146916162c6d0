//! kprobes, kretprobes and ksyscalls: one perf event per probe, from the
//! kprobe PMU or a legacy `kprobe_events` line.
//!
//! A function name the kernel does not know is retried once with the
//! compiler's clone of it (`name.isra.0`, `name.constprop.0`,
//! `name.llvm.123`, ...) when `/proc/kallsyms` lists exactly one, since a
//! user writes the source name and GCC/LLVM rename what they specialise.

use std::ffi::CString;
use std::os::fd::BorrowedFd;
use std::sync::OnceLock;

use super::error::{AttachError, Ctx};
use super::link::Link;
use super::perf_event::{attach_perf_cookie, probe_event_maxactive};
use super::tracefs::ProbeKind;
use super::ProbeMode;
use crate::kernel::{has_syscall_wrapper, syscall_wrapper_prefix, Kallsyms};
use crate::sys::PerfEventAttr;

/// Where in the kernel a kprobe goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KprobeTarget<'a> {
    /// A function and a byte offset into it (0: its entry).
    Symbol {
        /// The function (`vfs_read`; a compiler clone such as
        /// `vfs_read.isra.0` is found from the plain name).
        name: &'a str,
        /// Bytes into the function; must be an instruction boundary.
        offset: u64,
    },
    /// A kernel text address (from `/proc/kallsyms`, which needs root).
    Address(u64),
}

impl<'a> From<&'a str> for KprobeTarget<'a> {
    fn from(name: &'a str) -> Self {
        KprobeTarget::Symbol { name, offset: 0 }
    }
}

/// Options of [`attach_kprobe_opts`] and [`attach_ksyscall`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KprobeOptions {
    /// A return probe (kretprobe).
    pub retprobe: bool,
    /// The value `bpf_get_attach_cookie()` returns in the program (0: none);
    /// needs perf links (Linux 5.15+).
    pub cookie: u64,
    /// Calls of the function a kretprobe can track at once (0: the kernel's
    /// default). Only legacy tracefs probes can set it, so a non-zero value
    /// makes [`ProbeMode::Auto`] take that path.
    pub maxactive: u32,
    /// PMU or legacy tracefs.
    pub mode: ProbeMode,
}

pub(super) fn kprobe(
    ctx: Ctx<'_>,
    target: KprobeTarget<'_>,
    opts: &KprobeOptions,
) -> Result<Link, AttachError> {
    match kprobe_once(ctx, target, opts) {
        Err(err) if is_unknown_symbol(&err) => {
            let KprobeTarget::Symbol { name, offset } = target else {
                return Err(err);
            };
            match compiler_clone(name) {
                Ok(Some(clone)) => kprobe_once(
                    ctx,
                    KprobeTarget::Symbol {
                        name: &clone,
                        offset,
                    },
                    opts,
                ),
                Ok(None) => Err(err),
                Err(reason) => Err(ctx.target(describe(target, opts), reason)),
            }
        }
        other => other,
    }
}

fn describe(target: KprobeTarget<'_>, opts: &KprobeOptions) -> String {
    let kind = if opts.retprobe { "kretprobe" } else { "kprobe" };
    match target {
        KprobeTarget::Symbol { name, offset: 0 } => format!("{kind} {name}"),
        KprobeTarget::Symbol { name, offset } => format!("{kind} {name}+{offset:#x}"),
        KprobeTarget::Address(addr) => format!("{kind} at {addr:#x}"),
    }
}

fn kprobe_once(
    ctx: Ctx<'_>,
    target: KprobeTarget<'_>,
    opts: &KprobeOptions,
) -> Result<Link, AttachError> {
    let what = describe(target, opts);
    let (name, offset) = match target {
        KprobeTarget::Symbol { name, offset } => (Some(name), offset),
        KprobeTarget::Address(addr) => (None, addr),
    };
    if opts.retprobe && name.is_some() && offset != 0 {
        return Err(ctx.target(&what, "return probes cannot have an offset"));
    }
    let name_c = name
        .map(|n| {
            CString::new(n).map_err(|_| ctx.target(&what, "function name contains a NUL byte"))
        })
        .transpose()?;
    let legacy_label = match name {
        Some(n) => n.to_owned(),
        None => format!("addr_{offset:x}"),
    };
    let (perf, legacy) = probe_event_maxactive(
        ctx,
        &what,
        ProbeKind::Kprobe,
        opts.mode,
        &|pmu_type, bit| match &name_c {
            Some(func) => PerfEventAttr::kprobe(pmu_type, func, offset, bit),
            None => PerfEventAttr::kprobe_addr(pmu_type, offset, bit),
        },
        &|| match name {
            Some(func) if func.chars().any(char::is_whitespace) => {
                Err(ctx.target(&what, "function name contains whitespace"))
            }
            Some(func) => Ok(format!("{func}+{offset}")),
            None => Ok(format!("{offset:#x}")),
        },
        &legacy_label,
        opts.retprobe,
        -1,
        opts.maxactive,
    )?;
    attach_perf_cookie(ctx, &what, perf, legacy, opts.cookie)
}

/// Whether the kernel refused a probe because it knows no such symbol: the
/// PMU answers `ENOENT`, a `kprobe_events` write fails with `ENOENT` (or
/// `EINVAL` on kernels that do not say more).
fn is_unknown_symbol(err: &AttachError) -> bool {
    match err {
        AttachError::Kernel { source, .. } => source.errno() == Some(libc::ENOENT),
        AttachError::Io { source, what, .. } => {
            *what == "writing to"
                && matches!(source.raw_os_error(), Some(libc::ENOENT | libc::EINVAL))
        }
        _ => false,
    }
}

/// The suffixes GCC and LLVM give the copies of a function they specialise
/// (interprocedural SRA, constant propagation, partial inlining, cold
/// splitting, LTO-renamed statics).
const CLONE_SUFFIXES: [&str; 6] = ["isra", "constprop", "part", "cold", "llvm", "lto_priv"];

/// Whether `candidate` is `name` followed by compiler clone suffixes
/// (`name.isra.0`, `name.constprop.0.isra.0`, `name.llvm.1234`).
pub(crate) fn is_clone_of(candidate: &str, name: &str) -> bool {
    let Some(rest) = candidate
        .strip_prefix(name)
        .and_then(|r| r.strip_prefix('.'))
    else {
        return false;
    };
    CLONE_SUFFIXES
        .iter()
        .any(|s| rest.split('.').next() == Some(*s))
}

/// The one compiler clone of `name` among the kernel's text symbols;
/// `Ok(None)` if there is none, an error naming them if there are several.
fn compiler_clone(name: &str) -> Result<Option<String>, String> {
    let syms = Kallsyms::read().map_err(|e| format!("looking for clones of {name}: {e}"))?;
    clone_in(&syms, name)
}

fn clone_in(syms: &Kallsyms, name: &str) -> Result<Option<String>, String> {
    let mut found: Vec<&str> = syms
        .entries()
        .filter(|e| matches!(e.kind, 't' | 'T') && is_clone_of(e.name, name))
        .map(|e| e.name)
        .collect();
    found.sort_unstable();
    found.dedup();
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some((*one).to_owned())),
        many => Err(format!(
            "no function {name}, and /proc/kallsyms lists several compiler clones of it ({}): \
             name one",
            many.join(", ")
        )),
    }
}

/// Attach a kprobe program to kernel function `func` at byte `offset` (0:
/// its entry), or to its return (`retprobe`, offset 0).
pub fn attach_kprobe(
    prog: BorrowedFd<'_>,
    retprobe: bool,
    func: &str,
    offset: u64,
) -> Result<Link, AttachError> {
    attach_kprobe_with(prog, retprobe, func, offset, ProbeMode::Auto)
}

/// [`attach_kprobe`] choosing the PMU or legacy tracefs interface.
pub fn attach_kprobe_with(
    prog: BorrowedFd<'_>,
    retprobe: bool,
    func: &str,
    offset: u64,
    mode: ProbeMode,
) -> Result<Link, AttachError> {
    kprobe(
        Ctx::explicit(prog),
        KprobeTarget::Symbol { name: func, offset },
        &KprobeOptions {
            retprobe,
            mode,
            ..KprobeOptions::default()
        },
    )
}

/// Attach a kprobe program to a function (and offset) or an address, with
/// every option: return probe, BPF cookie, maxactive, PMU or legacy.
pub fn attach_kprobe_opts<'a>(
    prog: BorrowedFd<'_>,
    target: impl Into<KprobeTarget<'a>>,
    opts: &KprobeOptions,
) -> Result<Link, AttachError> {
    kprobe(Ctx::explicit(prog), target.into(), opts)
}

/// The kernel function a `ksyscall/<name>` probe goes on, chosen as libbpf
/// does: where the kernel has syscall wrappers (`__x64_sys_bpf` is a kernel
/// symbol) the arch wrapper `__<arch>_sys_<name>`, else `__se_sys_<name>`.
/// Without `/proc/kallsyms` the wrapper is assumed on architectures that
/// have one (every x86-64 kernel since 4.17 does).
pub fn ksyscall_function(syscall: &str) -> String {
    static WRAPPED: OnceLock<bool> = OnceLock::new();
    let wrapped = *WRAPPED.get_or_init(|| {
        has_syscall_wrapper().unwrap_or_else(|_| syscall_wrapper_prefix().is_some())
    });
    match syscall_wrapper_prefix() {
        Some(prefix) if wrapped => format!("__{prefix}_sys_{syscall}"),
        _ => format!("__se_sys_{syscall}"),
    }
}

pub(super) fn ksyscall(
    ctx: Ctx<'_>,
    syscall: &str,
    opts: &KprobeOptions,
) -> Result<Link, AttachError> {
    let func = ksyscall_function(syscall);
    kprobe(ctx, KprobeTarget::from(func.as_str()), opts)
}

/// Attach a kprobe program to system call `syscall` (`getppid`: no prefix)
/// through its kernel entry function ([`ksyscall_function`]), as
/// `SEC("ksyscall/<name>")` does; `opts.retprobe` for its return.
pub fn attach_ksyscall(
    prog: BorrowedFd<'_>,
    syscall: &str,
    opts: &KprobeOptions,
) -> Result<Link, AttachError> {
    ksyscall(Ctx::explicit(prog), syscall, opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clone_suffixes() {
        assert!(is_clone_of("tcp_v4_connect.isra.0", "tcp_v4_connect"));
        assert!(is_clone_of("f.constprop.0.isra.0", "f"));
        assert!(is_clone_of("f.llvm.123456", "f"));
        assert!(!is_clone_of("f", "f"));
        assert!(!is_clone_of("f_other.isra.0", "f"));
        assert!(!is_clone_of("f.cfi_jt", "f"));
        assert!(!is_clone_of("ff.isra.0", "f"));
    }

    #[test]
    fn clone_lookup() {
        let text = "\
ffffffff81000000 T vfs_read
ffffffff81000100 t helper.isra.0
ffffffff81000200 t twice.constprop.0
ffffffff81000300 t twice.isra.0
ffffffff82000000 d helper.isra.1
ffffffffc0000000 t helper.isra.0\t[mod]
";
        let syms = Kallsyms::parse(text.to_owned(), "test").unwrap();
        assert_eq!(
            clone_in(&syms, "helper").unwrap().as_deref(),
            Some("helper.isra.0")
        );
        assert_eq!(clone_in(&syms, "vfs_read").unwrap(), None);
        let err = clone_in(&syms, "twice").unwrap_err();
        assert!(err.contains("twice.constprop.0, twice.isra.0"), "{err}");
    }
}
