//! Attaching loaded programs: [`auto_attach`] does what libbpf's auto-attach
//! does for a section name (what a skeleton's `attach()` calls), and one
//! explicit function per attach kind covers the rest. Every attachment is a
//! [`Link`] that detaches on drop.
//!
//! | section | how |
//! | --- | --- |
//! | `tracepoint/<cat>/<name>`, `tp/...` | tracefs id, `perf_event_open`, perf link or `PERF_EVENT_IOC_SET_BPF` |
//! | `raw_tp/<name>`, `raw_tracepoint/...` | `BPF_RAW_TRACEPOINT_OPEN` |
//! | `tp_btf`, `fentry`, `fexit`, `fmod_ret`, `freplace`, `lsm` | `BPF_LINK_CREATE` to the load-time BTF target, else `BPF_RAW_TRACEPOINT_OPEN` |
//! | `iter/<name>` | `BPF_LINK_CREATE` (`BPF_TRACE_ITER`) |
//! | `kprobe/<func>[+off]`, `kretprobe/...`, `ksyscall/...` | kprobe PMU, else tracefs `kprobe_events` |
//! | `uprobe/<binary>:<func>[+off]`, `uretprobe/...` | uprobe PMU, else tracefs `uprobe_events` |
//! | `usdt/<binary>:<provider>:<name>` | one uprobe per probe site with specs in the object's USDT maps ([`auto_attach_with`]) |
//! | anything else, and the above without a target | not attached automatically: `Ok(None)` |

mod elf;
mod error;
mod link;
mod tracefs;
mod usdt;

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

pub use elf::{func_file_offset, resolve_binary, LIBRARY_DIRS};
pub use error::{AttachError, Who};
pub use link::Link;
pub use usdt::{
    attach_usdt, parse_usdt_notes, AttachContext, UsdtArg, UsdtArgLocation, UsdtError, UsdtNote,
    UsdtNotes, UsdtSpec, USDT_MAX_ARGS, USDT_SPEC_SIZE,
};

use crate::section::{self, AttachTarget as SecTarget, AttachType, AutoAttach};
use crate::sys::{
    self, attach_type, AttachTarget, LinkCreate, LinkExtra, LinkTarget, PerfEventAttr, SysError,
};
use error::Ctx;
use link::Inner;
use tracefs::{LegacyError, LegacyProbe, ProbeKind};

/// How a kprobe or uprobe is created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProbeMode {
    /// The PMU (`/sys/bus/event_source/devices/{kprobe,uprobe}`) when the
    /// kernel has it, else a legacy tracefs probe event (as libbpf).
    #[default]
    Auto,
    /// Only the PMU.
    Pmu,
    /// Only a legacy tracefs event (`kprobe_events`/`uprobe_events`),
    /// removed when the link is dropped.
    Legacy,
}

/// Attach `prog`, loaded from section `section` as `prog_name`, the way
/// libbpf's auto-attach does for that section (see the module table).
///
/// `Ok(None)` for program kinds that are never attached automatically (xdp,
/// tc, cgroup, socket, struct_ops, perf_event, ...) and for sections that
/// name no target (`kprobe`, `uprobe`, `usdt`, `tracepoint`): attach those
/// with the explicit functions of this module.
pub fn auto_attach(
    prog: BorrowedFd<'_>,
    prog_name: &str,
    section: &str,
) -> Result<Option<Link>, AttachError> {
    auto_attach_with(prog, prog_name, section, &AttachContext::default())
}

/// [`auto_attach`] with the object's maps that some sections need: `usdt/...`
/// programs attach only with `attach.usdt_specs` (and, on kernels without
/// BPF cookies, `attach.usdt_ip_to_id`).
pub fn auto_attach_with(
    prog: BorrowedFd<'_>,
    prog_name: &str,
    section: &str,
    attach: &AttachContext<'_>,
) -> Result<Option<Link>, AttachError> {
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
    let link = match target {
        SecTarget::Manual => return Ok(None),
        SecTarget::Tracepoint { category, name } => tracepoint(ctx, category, name)?,
        SecTarget::RawTracepoint { name } => raw_tracepoint(ctx, name)?,
        SecTarget::Btf { name } => {
            let what = name.map_or_else(
                || format!("its load-time BTF target ({})", m.def.prog_type),
                |n| format!("BTF target {n}"),
            );
            match m.def.auto_attach {
                AutoAttach::Iter => iter(ctx, None)?,
                _ => btf_link(ctx, m.def.expected_attach_type_raw(), &what)?,
            }
        }
        SecTarget::Kprobe {
            func,
            offset,
            retprobe,
        } => kprobe(ctx, retprobe, func, offset, ProbeMode::Auto)?,
        SecTarget::Ksyscall { syscall, retprobe } => ksyscall(ctx, retprobe, syscall)?,
        SecTarget::Uprobe {
            binary,
            func,
            offset,
            retprobe,
        } => uprobe(
            ctx,
            binary,
            UprobeLocation::Symbol { name: func, offset },
            &UprobeOptions {
                retprobe,
                ..UprobeOptions::default()
            },
        )?,
        SecTarget::Usdt {
            binary,
            provider,
            name,
        } => usdt::usdt(
            ctx,
            None,
            binary,
            provider,
            name,
            0,
            attach.usdt_specs,
            attach.usdt_ip_to_id,
        )?,
        SecTarget::KprobeMulti { pattern, .. } => {
            return Err(ctx.unsupported(
                format!("kprobe.multi {pattern}"),
                "kprobe.multi attachment is not implemented by skelgen yet",
            ))
        }
        SecTarget::UprobeMulti {
            binary, pattern, ..
        } => {
            return Err(ctx.unsupported(
                format!("uprobe.multi {binary}:{pattern}"),
                "uprobe.multi attachment is not implemented by skelgen yet",
            ))
        }
        SecTarget::TracingMulti { pattern } => {
            return Err(ctx.unsupported(
                format!("tracing multi-link {pattern}"),
                "fentry.multi/fexit.multi links are not in released kernels",
            ))
        }
    };
    Ok(Some(link))
}

// ---------------------------------------------------------------------------
// perf events: tracepoints, kprobes, uprobes, perf_event programs

/// Put `prog` on `perf` (a perf link where the kernel has them, else
/// `PERF_EVENT_IOC_SET_BPF`), enable it, and wrap both in a link. On error
/// the perf event is closed and `legacy` removed.
fn attach_perf(
    ctx: Ctx<'_>,
    target: &str,
    perf: OwnedFd,
    legacy: Option<LegacyProbe>,
) -> Result<Link, AttachError> {
    let attached = if sys::probe::perf_link() {
        LinkCreate::new(
            ctx.prog,
            LinkTarget::Fd(perf.as_fd()),
            attach_type::PERF_EVENT,
        )
        .create()
        .map(Some)
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

fn tracefs_root(ctx: Ctx<'_>, target: &str) -> Result<&'static Path, AttachError> {
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

fn tracepoint(ctx: Ctx<'_>, category: &str, name: &str) -> Result<Link, AttachError> {
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

fn legacy_error(ctx: Ctx<'_>, target: &str, err: LegacyError) -> AttachError {
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
fn probe_event<'s>(
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

fn kprobe(
    ctx: Ctx<'_>,
    retprobe: bool,
    func: &str,
    offset: u64,
    mode: ProbeMode,
) -> Result<Link, AttachError> {
    let target = format!(
        "{} {func}{}",
        if retprobe { "kretprobe" } else { "kprobe" },
        if offset != 0 {
            format!("+{offset:#x}")
        } else {
            String::new()
        }
    );
    if retprobe && offset != 0 {
        return Err(ctx.target(&target, "return probes cannot have an offset"));
    }
    let func_c =
        CString::new(func).map_err(|_| ctx.target(&target, "function name contains a NUL byte"))?;
    let (perf, legacy) = probe_event(
        ctx,
        &target,
        ProbeKind::Kprobe,
        mode,
        &|pmu_type, bit| PerfEventAttr::kprobe(pmu_type, &func_c, offset, bit),
        &|| {
            if func.chars().any(char::is_whitespace) {
                return Err(ctx.target(&target, "function name contains whitespace"));
            }
            Ok(format!("{func}+{offset}"))
        },
        func,
        retprobe,
        -1,
    )?;
    attach_perf(ctx, &target, perf, legacy)
}

/// Attach a kprobe program to kernel function `func` at byte `offset` (0:
/// its entry), or to its return (`retprobe`, offset 0).
pub fn attach_kprobe(
    prog: BorrowedFd<'_>,
    retprobe: bool,
    func: &str,
    offset: u64,
) -> Result<Link, AttachError> {
    kprobe(Ctx::explicit(prog), retprobe, func, offset, ProbeMode::Auto)
}

/// [`attach_kprobe`] choosing the PMU or legacy tracefs interface.
pub fn attach_kprobe_with(
    prog: BorrowedFd<'_>,
    retprobe: bool,
    func: &str,
    offset: u64,
    mode: ProbeMode,
) -> Result<Link, AttachError> {
    kprobe(Ctx::explicit(prog), retprobe, func, offset, mode)
}

/// The kernel's entry symbol of `syscall`: the arch wrapper
/// (`__x64_sys_<name>`) if `/proc/kallsyms` lists it, else `sys_<name>`.
fn syscall_symbol(syscall: &str) -> String {
    let prefix = if cfg!(target_arch = "x86_64") {
        "__x64_sys_"
    } else if cfg!(target_arch = "x86") {
        "__ia32_sys_"
    } else if cfg!(target_arch = "aarch64") {
        "__arm64_sys_"
    } else if cfg!(target_arch = "s390x") {
        "__s390x_sys_"
    } else if cfg!(target_arch = "riscv64") {
        "__riscv_sys_"
    } else {
        "sys_"
    };
    let wrapped = format!("{prefix}{syscall}");
    let listed = std::fs::read_to_string("/proc/kallsyms").is_ok_and(|text| {
        text.lines()
            .any(|line| line.split_whitespace().nth(2) == Some(wrapped.as_str()))
    });
    if listed {
        wrapped
    } else {
        format!("sys_{syscall}")
    }
}

fn ksyscall(ctx: Ctx<'_>, retprobe: bool, syscall: &str) -> Result<Link, AttachError> {
    kprobe(ctx, retprobe, &syscall_symbol(syscall), 0, ProbeMode::Auto)
}

/// Where in a binary a uprobe goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UprobeLocation<'a> {
    /// A function symbol (optionally versioned, `malloc@@GLIBC_2.2.5`) and a
    /// byte offset into it.
    Symbol {
        /// The symbol.
        name: &'a str,
        /// Bytes into the function.
        offset: u64,
    },
    /// A file offset.
    FileOffset(u64),
}

impl<'a> From<&'a str> for UprobeLocation<'a> {
    fn from(name: &'a str) -> Self {
        UprobeLocation::Symbol { name, offset: 0 }
    }
}

impl From<u64> for UprobeLocation<'_> {
    fn from(offset: u64) -> Self {
        UprobeLocation::FileOffset(offset)
    }
}

/// Options of [`attach_uprobe_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UprobeOptions {
    /// A return probe.
    pub retprobe: bool,
    /// Only this process (`None`: every process that runs the code).
    pub pid: Option<i32>,
    /// USDT semaphore file offset (0: none).
    pub ref_ctr_offset: u64,
    /// PMU or legacy tracefs.
    pub mode: ProbeMode,
}

fn uprobe(
    ctx: Ctx<'_>,
    binary: &str,
    location: UprobeLocation<'_>,
    opts: &UprobeOptions,
) -> Result<Link, AttachError> {
    let kind = if opts.retprobe { "uretprobe" } else { "uprobe" };
    let what = match location {
        UprobeLocation::Symbol { name, offset: 0 } => name.to_owned(),
        UprobeLocation::Symbol { name, offset } => format!("{name}+{offset:#x}"),
        UprobeLocation::FileOffset(off) => format!("{off:#x}"),
    };
    let mut target = format!("{kind} {binary}:{what}");
    let path: PathBuf = resolve_binary(binary).map_err(|reason| ctx.target(&target, reason))?;
    target = format!("{kind} {}:{what}", path.display());
    let offset = match location {
        UprobeLocation::FileOffset(off) => off,
        UprobeLocation::Symbol { name, offset } => {
            let data = std::fs::read(&path).map_err(|e| ctx.io(&target, "reading", &path, e))?;
            let base = func_file_offset(&data, name)
                .map_err(|reason| ctx.target(&target, format!("{}: {reason}", path.display())))?;
            base.checked_add(offset)
                .ok_or_else(|| ctx.target(&target, "offset overflows"))?
        }
    };
    let path_str = path
        .to_str()
        .ok_or_else(|| ctx.target(&target, "path is not UTF-8"))?;
    let path_c =
        CString::new(path_str).map_err(|_| ctx.target(&target, "path contains a NUL byte"))?;
    let pid = opts.pid.unwrap_or(-1);
    let ref_ctr = opts.ref_ctr_offset;
    let legacy_label = Path::new(path_str)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("bin")
        .to_owned()
        + "_"
        + &format!("{offset:x}");
    let (perf, legacy) = probe_event(
        ctx,
        &target,
        ProbeKind::Uprobe,
        opts.mode,
        &|pmu_type, bit| PerfEventAttr::uprobe(pmu_type, &path_c, offset, ref_ctr, bit),
        &|| {
            if path_str.chars().any(char::is_whitespace) {
                return Err(ctx.target(
                    &target,
                    "the legacy uprobe_events interface cannot take a path with whitespace",
                ));
            }
            Ok(if ref_ctr != 0 {
                format!("{path_str}:{offset:#x}({ref_ctr:#x})")
            } else {
                format!("{path_str}:{offset:#x}")
            })
        },
        &legacy_label,
        opts.retprobe,
        pid,
    )?;
    attach_perf(ctx, &target, perf, legacy)
}

/// Attach a uprobe program to `binary` (a path, or a bare library or program
/// name searched as [`resolve_binary`] does) at a function symbol or file
/// offset, for process `pid` or every process.
pub fn attach_uprobe<'a>(
    prog: BorrowedFd<'_>,
    retprobe: bool,
    pid: Option<i32>,
    binary: &str,
    location: impl Into<UprobeLocation<'a>>,
) -> Result<Link, AttachError> {
    uprobe(
        Ctx::explicit(prog),
        binary,
        location.into(),
        &UprobeOptions {
            retprobe,
            pid,
            ..UprobeOptions::default()
        },
    )
}

/// [`attach_uprobe`] with every option.
pub fn attach_uprobe_with<'a>(
    prog: BorrowedFd<'_>,
    binary: &str,
    location: impl Into<UprobeLocation<'a>>,
    opts: &UprobeOptions,
) -> Result<Link, AttachError> {
    uprobe(Ctx::explicit(prog), binary, location.into(), opts)
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

// ---------------------------------------------------------------------------
// BPF links: raw tracepoints, BTF targets, iterators, XDP, tcx, cgroups, ...

fn raw_tracepoint(ctx: Ctx<'_>, name: &str) -> Result<Link, AttachError> {
    let target = format!("raw tracepoint {name}");
    sys::raw_tracepoint_open(ctx.prog, Some(name), 0)
        .map(|fd| Link::new(Inner::Bpf(fd)))
        .map_err(|e| ctx.kernel(target, e))
}

/// Attach a raw_tp program to raw tracepoint `name` (`sys_enter`).
pub fn attach_raw_tracepoint(prog: BorrowedFd<'_>, name: &str) -> Result<Link, AttachError> {
    raw_tracepoint(Ctx::explicit(prog), name)
}

/// `BPF_LINK_CREATE` to the program's load-time BTF target; on kernels whose
/// `BPF_LINK_CREATE` does not know the attach type (`EINVAL`),
/// `BPF_RAW_TRACEPOINT_OPEN` with no name, as libbpf falls back.
fn btf_link(ctx: Ctx<'_>, attach_type: u32, target: &str) -> Result<Link, AttachError> {
    match LinkCreate::new(ctx.prog, LinkTarget::None, attach_type).create() {
        Ok(fd) => Ok(Link::new(Inner::Bpf(fd))),
        Err(e) if e.errno() == Some(libc::EINVAL) => sys::raw_tracepoint_open(ctx.prog, None, 0)
            .map(|fd| Link::new(Inner::Bpf(fd)))
            .map_err(|e| ctx.kernel(target, e)),
        Err(e) => Err(ctx.kernel(target, e)),
    }
}

/// Attach a BTF-typed tracing program (tp_btf, fentry, fexit, fmod_ret,
/// freplace, lsm) to the target it was loaded for; `attach_type` is its
/// expected attach type (`None` for freplace).
pub fn attach_trace(
    prog: BorrowedFd<'_>,
    attach_type: Option<AttachType>,
) -> Result<Link, AttachError> {
    let raw = attach_type.map_or(0, AttachType::as_u32);
    let target = match attach_type {
        Some(t) => format!("its load-time BTF target ({t})"),
        None => "its load-time BTF target".to_owned(),
    };
    btf_link(Ctx::explicit(prog), raw, &target)
}

fn iter(ctx: Ctx<'_>, iter_info: Option<&[u8]>) -> Result<Link, AttachError> {
    let mut create = LinkCreate::new(ctx.prog, LinkTarget::None, attach_type::TRACE_ITER);
    if let Some(info) = iter_info {
        create = create.extra(LinkExtra::IterInfo(info));
    }
    create
        .create()
        .map(|fd| Link::new(Inner::Bpf(fd)))
        .map_err(|e| ctx.kernel("iterator", e))
}

/// Attach an iterator program; `iter_info` is a `union bpf_iter_link_info`
/// (a map fd for map iterators, a cgroup or task for theirs), `None` for
/// the others. Read the output with [`sys::iter_create`] on the link fd.
pub fn attach_iter(prog: BorrowedFd<'_>, iter_info: Option<&[u8]>) -> Result<Link, AttachError> {
    iter(Ctx::explicit(prog), iter_info)
}

/// `XDP_FLAGS_*` for [`attach_xdp`].
pub mod xdp_flags {
    /// Fail if a program is already attached.
    pub const UPDATE_IF_NOEXIST: u32 = 1 << 0;
    /// Generic (skb) mode.
    pub const SKB_MODE: u32 = 1 << 1;
    /// Native driver mode.
    pub const DRV_MODE: u32 = 1 << 2;
    /// Offloaded to the NIC.
    pub const HW_MODE: u32 = 1 << 3;
}

/// Attach an XDP program to network device `ifindex` with a BPF link
/// (`flags`: [`xdp_flags`], 0 lets the kernel pick the mode).
pub fn attach_xdp(prog: BorrowedFd<'_>, ifindex: u32, flags: u32) -> Result<Link, AttachError> {
    let ctx = Ctx::explicit(prog);
    LinkCreate::new(prog, LinkTarget::Ifindex(ifindex), attach_type::XDP)
        .flags(flags)
        .create()
        .map(|fd| Link::new(Inner::Bpf(fd)))
        .map_err(|e| ctx.kernel(format!("XDP on ifindex {ifindex}"), e))
}

/// The direction of a tc program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcDirection {
    /// Packets received.
    Ingress,
    /// Packets sent.
    Egress,
}

/// Attach a tc (sched_cls) program to network device `ifindex` with a tcx
/// link (Linux 6.6+), after the programs already there.
pub fn attach_tc(
    prog: BorrowedFd<'_>,
    ifindex: u32,
    direction: TcDirection,
) -> Result<Link, AttachError> {
    let ctx = Ctx::explicit(prog);
    let (kind, name) = match direction {
        TcDirection::Ingress => (attach_type::TCX_INGRESS, "ingress"),
        TcDirection::Egress => (attach_type::TCX_EGRESS, "egress"),
    };
    let target = format!("tcx {name} on ifindex {ifindex}");
    LinkCreate::new(prog, LinkTarget::Ifindex(ifindex), kind)
        .extra(LinkExtra::Tcx {
            relative: 0,
            expected_revision: 0,
        })
        .create()
        .map(|fd| Link::new(Inner::Bpf(fd)))
        .map_err(|e| {
            if e.errno() == Some(libc::EINVAL) && !tcx_known() {
                ctx.unsupported(
                    target,
                    "the kernel has no tcx links (Linux 6.6+); netlink tc attachment is not \
                     implemented",
                )
            } else {
                ctx.kernel(target, e)
            }
        })
}

/// Whether the kernel knows tcx links, from its BTF (`enum bpf_attach_type`
/// has `BPF_TCX_INGRESS`); assumed yes when BTF cannot tell.
fn tcx_known() -> bool {
    match crate::btf::Btf::from_vmlinux() {
        Ok(btf) => {
            btf.build_name_index();
            !btf.find_by_name("tcx_link_attach").is_empty()
                || !btf.find_by_name("tcx_link").is_empty()
        }
        Err(_) => true,
    }
}

/// `BPF_F_ALLOW_MULTI` for the `BPF_PROG_ATTACH` fallback of cgroup programs.
const BPF_F_ALLOW_MULTI: u32 = 1 << 1;

/// Attach a cgroup program to the cgroup (v2 directory fd) `cgroup` with a
/// BPF link, falling back to `BPF_PROG_ATTACH` with `BPF_F_ALLOW_MULTI` on
/// kernels without cgroup links (before 5.7).
pub fn attach_cgroup(
    prog: BorrowedFd<'_>,
    cgroup: BorrowedFd<'_>,
    attach_type: AttachType,
) -> Result<Link, AttachError> {
    let ctx = Ctx::explicit(prog);
    let target = format!("cgroup ({attach_type})");
    let raw = attach_type.as_u32();
    match LinkCreate::new(prog, LinkTarget::Fd(cgroup), raw).create() {
        Ok(fd) => Ok(Link::new(Inner::Bpf(fd))),
        Err(e) if e.errno() == Some(libc::EINVAL) => {
            prog_attach(ctx, &target, cgroup, raw, BPF_F_ALLOW_MULTI)
                .map_err(|_| ctx.kernel(&target, e))
        }
        Err(e) => Err(ctx.kernel(target, e)),
    }
}

fn dup(ctx: Ctx<'_>, target: &str, fd: BorrowedFd<'_>) -> Result<OwnedFd, AttachError> {
    fd.try_clone_to_owned()
        .map_err(|e| ctx.io(target, "duplicating the fd of", PathBuf::from(target), e))
}

fn prog_attach(
    ctx: Ctx<'_>,
    target: &str,
    target_fd: BorrowedFd<'_>,
    attach_type: u32,
    flags: u32,
) -> Result<Link, AttachError> {
    let target_owned = dup(ctx, target, target_fd)?;
    let prog_owned = dup(ctx, target, ctx.prog)?;
    sys::prog_attach(
        AttachTarget::Fd(target_fd),
        ctx.prog,
        attach_type,
        flags,
        None,
    )
    .map_err(|e| ctx.kernel(target, e))?;
    Ok(Link::new(Inner::ProgAttach {
        target: target_owned,
        prog: prog_owned,
        attach_type,
    }))
}

/// Attach a sk_skb or sk_msg program to a sockmap or sockhash `map` with
/// `BPF_PROG_ATTACH` (`attach_type`: `SkSkbStreamVerdict`, `SkMsgVerdict`,
/// ...); the link detaches it with `BPF_PROG_DETACH`.
pub fn attach_sockmap(
    prog: BorrowedFd<'_>,
    map: BorrowedFd<'_>,
    attach_type: AttachType,
) -> Result<Link, AttachError> {
    let ctx = Ctx::explicit(prog);
    prog_attach(
        ctx,
        &format!("sockmap ({attach_type})"),
        map,
        attach_type.as_u32(),
        0,
    )
}

/// Attach a socket filter program to socket `sock` (`SO_ATTACH_BPF`). The
/// link holds a duplicate of the socket fd, to detach with `SO_DETACH_BPF`.
pub fn attach_socket_filter(
    prog: BorrowedFd<'_>,
    sock: BorrowedFd<'_>,
) -> Result<Link, AttachError> {
    let ctx = Ctx::explicit(prog);
    let owned = dup(ctx, "socket", sock)?;
    sys::attach_bpf_to_socket(sock, prog).map_err(|e| ctx.kernel("socket", e))?;
    Ok(Link::new(Inner::Socket(owned)))
}

/// Where a netfilter program hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetfilterHook {
    /// Protocol family (`NFPROTO_IPV4` = 2, `NFPROTO_IPV6` = 10).
    pub pf: u32,
    /// Hook (`NF_INET_PRE_ROUTING` = 0 ... `NF_INET_POST_ROUTING` = 4).
    pub hooknum: u32,
    /// Priority among the hook's functions.
    pub priority: i32,
    /// `BPF_F_NETFILTER_IP_DEFRAG` (1) to see defragmented packets.
    pub flags: u32,
}

/// Attach a netfilter program to a netfilter hook with a BPF link (6.4+).
pub fn attach_netfilter(prog: BorrowedFd<'_>, hook: NetfilterHook) -> Result<Link, AttachError> {
    let ctx = Ctx::explicit(prog);
    LinkCreate::new(prog, LinkTarget::None, attach_type::NETFILTER)
        .extra(LinkExtra::Netfilter {
            pf: hook.pf,
            hooknum: hook.hooknum,
            priority: hook.priority,
            flags: hook.flags,
        })
        .create()
        .map(|fd| Link::new(Inner::Bpf(fd)))
        .map_err(|e| {
            ctx.kernel(
                format!(
                    "netfilter pf {} hook {} priority {}",
                    hook.pf, hook.hooknum, hook.priority
                ),
                e,
            )
        })
}
