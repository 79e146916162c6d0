//! Auto-attach one kind at a time, as a generated skeleton calls it.
//!
//! [`auto_attach_with`](super::auto_attach_with) decides the kind from the
//! section name at run time, so a binary that calls it links every attach
//! kind (USDT's note parser, the ELF symbol lookup of uprobes, multi-probe
//! links, ...). The generator already knows each program's section, so a
//! skeleton calls the function of this module for that kind and the linker
//! keeps only the kinds the object uses. Each function does what
//! `auto_attach_with` does for its kind and refuses any other kind of
//! section.

use std::os::fd::BorrowedFd;

use super::error::Ctx;
use super::kprobe::{kprobe, ksyscall};
use super::perf_event::tracepoint;
use super::tracing::{btf_link, iter, raw_tracepoint};
use super::uprobe::uprobe;
use super::{
    multi, usdt, AttachContext, AttachError, KprobeMultiOptions, KprobeMultiTargets, KprobeOptions,
    KprobeTarget, Link, UprobeLocation, UprobeMultiOptions, UprobeMultiTargets, UprobeOptions,
};
use crate::section::{self, AttachTarget as SecTarget, AutoAttach, Match};

/// The program's context and its section's row and target.
pub(super) fn resolve<'a>(
    prog: BorrowedFd<'a>,
    prog_name: &'a str,
    section: &'a str,
) -> Result<(Ctx<'a>, Match<'a>, SecTarget<'a>), AttachError> {
    let ctx = Ctx {
        prog,
        name: Some(prog_name),
        section: Some(section),
    };
    let section_error = |source| AttachError::Section {
        who: ctx.who(),
        source,
    };
    let Some(m) = section::lookup(section) else {
        return Err(section_error(section::SectionError::Unknown {
            section: section.to_owned(),
        }));
    };
    let target = section::parse_target(&m).map_err(section_error)?;
    Ok((ctx, m, target))
}

/// `Ok(None)` for a section with nothing to attach, else the error for a
/// section of another kind than the function called.
fn other(ctx: Ctx<'_>, target: SecTarget<'_>, kind: &str) -> Result<Option<Link>, AttachError> {
    match target {
        SecTarget::Manual => Ok(None),
        _ => Err(ctx.unsupported(
            format!("{kind} auto-attach"),
            format!(
                "the section is not a {kind} section ({target:?}); the skeleton and the \
                 object disagree"
            ),
        )),
    }
}

pub(super) fn btf_arm(
    ctx: Ctx<'_>,
    m: &Match<'_>,
    name: Option<&str>,
) -> Result<Link, AttachError> {
    let what = name.map_or_else(
        || format!("its load-time BTF target ({})", m.def.prog_type),
        |n| format!("BTF target {n}"),
    );
    match m.def.auto_attach {
        AutoAttach::Iter => iter(ctx, None),
        _ => btf_link(ctx, m.def.expected_attach_type_raw(), &what),
    }
}

pub(super) fn kprobe_arm(
    ctx: Ctx<'_>,
    func: &str,
    offset: u64,
    retprobe: bool,
) -> Result<Link, AttachError> {
    kprobe(
        ctx,
        KprobeTarget::Symbol { name: func, offset },
        &KprobeOptions {
            retprobe,
            ..KprobeOptions::default()
        },
    )
}

pub(super) fn ksyscall_arm(
    ctx: Ctx<'_>,
    syscall: &str,
    retprobe: bool,
) -> Result<Link, AttachError> {
    ksyscall(
        ctx,
        syscall,
        &KprobeOptions {
            retprobe,
            ..KprobeOptions::default()
        },
    )
}

pub(super) fn uprobe_arm(
    ctx: Ctx<'_>,
    binary: &str,
    func: &str,
    offset: u64,
    retprobe: bool,
) -> Result<Link, AttachError> {
    uprobe(
        ctx,
        binary,
        UprobeLocation::Symbol { name: func, offset },
        &UprobeOptions {
            retprobe,
            ..UprobeOptions::default()
        },
    )
}

pub(super) fn usdt_arm(
    ctx: Ctx<'_>,
    binary: &str,
    provider: &str,
    name: &str,
    attach: &AttachContext<'_>,
) -> Result<Link, AttachError> {
    usdt::usdt(
        ctx,
        None,
        binary,
        provider,
        name,
        0,
        attach.usdt_specs,
        attach.usdt_ip_to_id,
    )
}

pub(super) fn kprobe_multi_arm(
    ctx: Ctx<'_>,
    pattern: &str,
    retprobe: bool,
    session: bool,
) -> Result<Link, AttachError> {
    multi::kprobe_multi(
        ctx,
        KprobeMultiTargets::Pattern(pattern),
        &KprobeMultiOptions {
            retprobe,
            session,
            ..KprobeMultiOptions::default()
        },
    )
}

pub(super) fn uprobe_multi_arm(
    ctx: Ctx<'_>,
    binary: &str,
    pattern: &str,
    retprobe: bool,
    session: bool,
) -> Result<Link, AttachError> {
    multi::uprobe_multi(
        ctx,
        binary,
        UprobeMultiTargets::Pattern(pattern),
        &UprobeMultiOptions {
            retprobe,
            session,
            ..UprobeMultiOptions::default()
        },
    )
}

/// `tracepoint/<category>/<name>`, `tp/...`.
pub fn tracepoint_section(
    prog: BorrowedFd<'_>,
    prog_name: &str,
    section: &str,
) -> Result<Option<Link>, AttachError> {
    match resolve(prog, prog_name, section)? {
        (ctx, _, SecTarget::Tracepoint { category, name }) => {
            tracepoint(ctx, category, name).map(Some)
        }
        (ctx, _, t) => other(ctx, t, "tracepoint"),
    }
}

/// `raw_tp/<name>`, `raw_tracepoint/...`.
pub fn raw_tracepoint_section(
    prog: BorrowedFd<'_>,
    prog_name: &str,
    section: &str,
) -> Result<Option<Link>, AttachError> {
    match resolve(prog, prog_name, section)? {
        (ctx, _, SecTarget::RawTracepoint { name }) => raw_tracepoint(ctx, name).map(Some),
        (ctx, _, t) => other(ctx, t, "raw tracepoint"),
    }
}

/// `tp_btf`, `fentry`, `fexit`, `fmod_ret`, `freplace`, `lsm`, `iter`: the
/// load-time BTF target.
pub fn btf_section(
    prog: BorrowedFd<'_>,
    prog_name: &str,
    section: &str,
) -> Result<Option<Link>, AttachError> {
    match resolve(prog, prog_name, section)? {
        (ctx, m, SecTarget::Btf { name }) => btf_arm(ctx, &m, name).map(Some),
        (ctx, _, t) => other(ctx, t, "BTF-target"),
    }
}

/// `kprobe/<func>[+off]`, `kretprobe/...`.
pub fn kprobe_section(
    prog: BorrowedFd<'_>,
    prog_name: &str,
    section: &str,
) -> Result<Option<Link>, AttachError> {
    match resolve(prog, prog_name, section)? {
        (
            ctx,
            _,
            SecTarget::Kprobe {
                func,
                offset,
                retprobe,
            },
        ) => kprobe_arm(ctx, func, offset, retprobe).map(Some),
        (ctx, _, t) => other(ctx, t, "kprobe"),
    }
}

/// `ksyscall/<syscall>`, `kretsyscall/...`.
pub fn ksyscall_section(
    prog: BorrowedFd<'_>,
    prog_name: &str,
    section: &str,
) -> Result<Option<Link>, AttachError> {
    match resolve(prog, prog_name, section)? {
        (ctx, _, SecTarget::Ksyscall { syscall, retprobe }) => {
            ksyscall_arm(ctx, syscall, retprobe).map(Some)
        }
        (ctx, _, t) => other(ctx, t, "ksyscall"),
    }
}

/// `uprobe/<binary>:<func>[+off]`, `uretprobe/...`.
pub fn uprobe_section(
    prog: BorrowedFd<'_>,
    prog_name: &str,
    section: &str,
) -> Result<Option<Link>, AttachError> {
    match resolve(prog, prog_name, section)? {
        (
            ctx,
            _,
            SecTarget::Uprobe {
                binary,
                func,
                offset,
                retprobe,
            },
        ) => uprobe_arm(ctx, binary, func, offset, retprobe).map(Some),
        (ctx, _, t) => other(ctx, t, "uprobe"),
    }
}

/// `usdt/<binary>:<provider>:<name>`, with the object's USDT maps.
pub fn usdt_section(
    prog: BorrowedFd<'_>,
    prog_name: &str,
    section: &str,
    attach: &AttachContext<'_>,
) -> Result<Option<Link>, AttachError> {
    match resolve(prog, prog_name, section)? {
        (
            ctx,
            _,
            SecTarget::Usdt {
                binary,
                provider,
                name,
            },
        ) => usdt_arm(ctx, binary, provider, name, attach).map(Some),
        (ctx, _, t) => other(ctx, t, "usdt"),
    }
}

/// `kprobe.multi/<glob>`, `kretprobe.multi/...`, `kprobe.session/...`.
pub fn kprobe_multi_section(
    prog: BorrowedFd<'_>,
    prog_name: &str,
    section: &str,
) -> Result<Option<Link>, AttachError> {
    match resolve(prog, prog_name, section)? {
        (
            ctx,
            _,
            SecTarget::KprobeMulti {
                pattern,
                retprobe,
                session,
            },
        ) => kprobe_multi_arm(ctx, pattern, retprobe, session).map(Some),
        (ctx, _, t) => other(ctx, t, "kprobe.multi"),
    }
}

/// `uprobe.multi/<binary>:<glob>`, `uretprobe.multi/...`, `uprobe.session/...`.
pub fn uprobe_multi_section(
    prog: BorrowedFd<'_>,
    prog_name: &str,
    section: &str,
) -> Result<Option<Link>, AttachError> {
    match resolve(prog, prog_name, section)? {
        (
            ctx,
            _,
            SecTarget::UprobeMulti {
                binary,
                pattern,
                retprobe,
                session,
            },
        ) => uprobe_multi_arm(ctx, binary, pattern, retprobe, session).map(Some),
        (ctx, _, t) => other(ctx, t, "uprobe.multi"),
    }
}
