//! Perf events carrying programs: tracepoints (tracefs id), the perf event
//! of a kprobe or uprobe (PMU or legacy tracefs probe), perf_event programs,
//! and how a program is put on any of them (perf link or
//! `PERF_EVENT_IOC_SET_BPF`).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use super::error::{AttachError, Ctx};
use super::link::{Inner, Link};
use super::tracefs::{self, LegacyError, LegacyProbe, ProbeKind};
use super::ProbeMode;
use crate::sys::{self, attach_type, LinkCreate, LinkExtra, LinkTarget, PerfEventAttr, SysError};

/// Put `prog` on `perf` (a perf link where the kernel has them, else
/// `PERF_EVENT_IOC_SET_BPF`), enable it, and wrap both in a link. On error
/// the perf event is closed and `legacy` removed.
pub(super) fn attach_perf(
    ctx: Ctx<'_>,
    target: &str,
    perf: OwnedFd,
    legacy: Option<LegacyProbe>,
) -> Result<Link, AttachError> {
    attach_perf_cookie(ctx, target, perf, legacy, 0)
}

/// [`attach_perf`] with a BPF cookie (`bpf_get_attach_cookie()`), which only
/// a perf link can carry: a non-zero cookie on a kernel without perf links
/// (before 5.15) is refused rather than silently dropped.
pub(super) fn attach_perf_cookie(
    ctx: Ctx<'_>,
    target: &str,
    perf: OwnedFd,
    legacy: Option<LegacyProbe>,
    cookie: u64,
) -> Result<Link, AttachError> {
    let has_link = sys::probe::perf_link();
    if cookie != 0 && !has_link {
        drop(perf);
        if let Some(probe) = legacy {
            let _ = probe.remove();
        }
        return Err(ctx.unsupported(
            target,
            "a BPF cookie needs perf event BPF links (Linux 5.15+), which this kernel lacks",
        ));
    }
    let attached = if has_link {
        let mut create = LinkCreate::new(
            ctx.prog,
            LinkTarget::Fd(perf.as_fd()),
            attach_type::PERF_EVENT,
        );
        if cookie != 0 {
            create = create.extra(LinkExtra::PerfEventCookie(cookie));
        }
        create.create().map(Some)
    } else {
        sys::perf_event_set_bpf(&perf, ctx.prog).map(|()| None)
    };
    let attached = attached.and_then(|link| sys::perf_event_enable(&perf).map(|()| link));
    match attached {
        Ok(link) => Ok(Link::new(Inner::Perf { link, perf, legacy })),
        Err(source) => {
            drop(perf);
            if let Some(probe) = legacy {
                let _ = probe.remove();
            }
            Err(ctx.kernel(target, source))
        }
    }
}

pub(super) fn tracefs_root(ctx: Ctx<'_>, target: &str) -> Result<&'static Path, AttachError> {
    tracefs::root().ok_or_else(|| {
        ctx.unsupported(
            target,
            format!(
                "tracefs is not mounted (neither {} has an events directory); {}",
                sys::TRACEFS_ROOTS.join(" nor "),
                tracefs::MOUNT_HINT
            ),
        )
    })
}

pub(super) fn tracepoint(ctx: Ctx<'_>, category: &str, name: &str) -> Result<Link, AttachError> {
    let target = format!("tracepoint {category}:{name}");
    let root = tracefs_root(ctx, &target)?;
    if [category, name]
        .iter()
        .any(|s| s.is_empty() || s.contains('/') || *s == "." || *s == "..")
    {
        return Err(ctx.target(
            &target,
            "category and name must be non-empty names without '/'",
        ));
    }
    let id_path = root.join("events").join(category).join(name).join("id");
    let text = std::fs::read_to_string(&id_path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            ctx.target(
                &target,
                format!("no such tracepoint ({} does not exist)", id_path.display()),
            )
        } else {
            ctx.io(&target, "reading", &id_path, e)
        }
    })?;
    let id: u64 = text.trim().parse().map_err(|_| {
        ctx.target(
            &target,
            format!(
                "{} holds {:?}, expected a decimal id",
                id_path.display(),
                text.trim()
            ),
        )
    })?;
    let perf = sys::perf_event_open(&PerfEventAttr::tracepoint(id), -1, 0, None, 0)
        .map_err(|e| ctx.kernel(&target, e))?;
    attach_perf(ctx, &target, perf, None)
}

/// Attach a tracepoint program to tracefs tracepoint `category:name`
/// (`syscalls`, `sys_enter_getppid`).
pub fn attach_tracepoint(
    prog: BorrowedFd<'_>,
    category: &str,
    name: &str,
) -> Result<Link, AttachError> {
    tracepoint(Ctx::explicit(prog), category, name)
}

pub(super) fn legacy_error(ctx: Ctx<'_>, target: &str, err: LegacyError) -> AttachError {
    match err {
        LegacyError::Write { path, source } => ctx.io(target, "writing to", path, source),
        LegacyError::Read { path, source } => ctx.io(target, "reading", path, source),
        LegacyError::Parse { path, text } => ctx.target(
            target,
            format!("{} holds {text:?}, expected a decimal id", path.display()),
        ),
    }
}

/// Open the perf event of a kprobe or uprobe: through the PMU when it exists
/// (and `mode` allows), else through a legacy tracefs event.
#[allow(clippy::too_many_arguments)]
pub(super) fn probe_event<'s>(
    ctx: Ctx<'_>,
    target: &str,
    kind: ProbeKind,
    mode: ProbeMode,
    pmu_attr: &dyn Fn(u32, Option<u32>) -> PerfEventAttr<'s>,
    legacy_location: &dyn Fn() -> Result<String, AttachError>,
    legacy_name: &str,
    retprobe: bool,
    pid: i32,
) -> Result<(OwnedFd, Option<LegacyProbe>), AttachError> {
    probe_event_maxactive(
        ctx,
        target,
        kind,
        mode,
        pmu_attr,
        legacy_location,
        legacy_name,
        retprobe,
        pid,
        0,
    )
}

/// [`probe_event`] with the `maxactive` of a kretprobe (how many calls of
/// the function can be pending at once; 0: the kernel's default). Only the
/// legacy `kprobe_events` line can say it (`r<maxactive>:...`), so
/// `maxactive` makes [`ProbeMode::Auto`] take the legacy path and
/// [`ProbeMode::Pmu`] refuse, as libbpf does.
#[allow(clippy::too_many_arguments)]
pub(super) fn probe_event_maxactive<'s>(
    ctx: Ctx<'_>,
    target: &str,
    kind: ProbeKind,
    mode: ProbeMode,
    pmu_attr: &dyn Fn(u32, Option<u32>) -> PerfEventAttr<'s>,
    legacy_location: &dyn Fn() -> Result<String, AttachError>,
    legacy_name: &str,
    retprobe: bool,
    pid: i32,
    maxactive: u32,
) -> Result<(OwnedFd, Option<LegacyProbe>), AttachError> {
    if maxactive != 0 && !retprobe {
        return Err(ctx.target(target, "maxactive applies to return probes only"));
    }
    if maxactive != 0 && mode == ProbeMode::Pmu {
        return Err(ctx.unsupported(
            target,
            "the kprobe PMU cannot set a kretprobe's maxactive: use ProbeMode::Legacy or Auto",
        ));
    }
    let mode = if maxactive != 0 {
        ProbeMode::Legacy
    } else {
        mode
    };
    let cpu = if pid == -1 { 0 } else { -1 };
    let pmu = kind.pmu();
    let pmu_path = format!("/sys/bus/event_source/devices/{pmu}/type");
    let pmu_type = match mode {
        ProbeMode::Legacy => None,
        _ => sys::pmu_type(pmu).ok(),
    };
    if let Some(pmu_type) = pmu_type {
        let bit = if retprobe {
            Some(sys::pmu_retprobe_bit(pmu).map_err(|e| ctx.kernel(target, e))?)
        } else {
            None
        };
        let perf = sys::perf_event_open(&pmu_attr(pmu_type, bit), pid, cpu, None, 0)
            .map_err(|e| ctx.kernel(target, e))?;
        return Ok((perf, None));
    }
    if mode == ProbeMode::Pmu {
        return Err(ctx.unsupported(
            target,
            format!("the kernel has no {pmu} PMU ({pmu_path} is missing)"),
        ));
    }
    let Some(root) = tracefs::root() else {
        let reason = if mode == ProbeMode::Legacy {
            format!("tracefs is not mounted; {}", tracefs::MOUNT_HINT)
        } else {
            format!(
                "the kernel has no {pmu} PMU ({pmu_path} is missing) and tracefs is not \
                 mounted for the legacy {} interface; {}",
                kind.events_file(),
                tracefs::MOUNT_HINT
            )
        };
        return Err(ctx.unsupported(target, reason));
    };
    let control = root.join(kind.events_file());
    if !control.exists() {
        let config = match kind {
            ProbeKind::Kprobe => "CONFIG_KPROBES/CONFIG_KPROBE_EVENTS",
            ProbeKind::Uprobe => "CONFIG_UPROBES/CONFIG_UPROBE_EVENTS",
        };
        let reason = if mode == ProbeMode::Legacy {
            format!(
                "the kernel has no {pmu} support ({} is missing; built without {config}?)",
                control.display()
            )
        } else {
            format!(
                "the kernel has no {pmu} support: {pmu_path} and {} are both missing \
                 (built without {config}?)",
                control.display()
            )
        };
        return Err(ctx.unsupported(target, reason));
    }
    let location = legacy_location()?;
    let (probe, id) = LegacyProbe::add(
        kind,
        root,
        tracefs::event_name(legacy_name),
        retprobe,
        maxactive,
        &location,
    )
    .map_err(|e| legacy_error(ctx, target, e))?;
    match sys::perf_event_open(&PerfEventAttr::tracepoint(id), pid, cpu, None, 0) {
        Ok(perf) => Ok((perf, Some(probe))),
        Err(e) => {
            let _ = probe.remove();
            Err(ctx.kernel(target, e))
        }
    }
}

/// Attach a perf_event program to an open perf event (see
/// [`open_cpu_clock_events`]); the link owns the event.
pub fn attach_perf_event(prog: BorrowedFd<'_>, perf: OwnedFd) -> Result<Link, AttachError> {
    attach_perf(Ctx::explicit(prog), "perf event", perf, None)
}

/// One software CPU-clock sampling event per online CPU, sampling `freq`
/// times a second (for perf_event programs, as `profile` tools do); `pid`
/// restricts them to one thread (perf's `pid` is a thread id; `None`: every
/// task).
pub fn open_cpu_clock_events(freq: u64, pid: Option<i32>) -> Result<Vec<OwnedFd>, SysError> {
    sys::online_cpus()?
        .into_iter()
        .map(|cpu| {
            let cpu = i32::try_from(cpu).map_err(|_| SysError::InvalidArgument {
                op: "perf_event_open",
                reason: format!("cpu {cpu} out of range"),
            })?;
            sys::perf_event_open(
                &PerfEventAttr::cpu_clock(freq),
                pid.unwrap_or(-1),
                cpu,
                None,
                0,
            )
        })
        .collect()
}
