//! uprobes and uretprobes on a function or file offset of a binary.

use std::ffi::CString;
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};

use super::elf::{func_file_offset, resolve_binary};
use super::error::{AttachError, Ctx};
use super::link::Link;
use super::perf_event::{attach_perf, probe_event};
use super::tracefs::ProbeKind;
use super::ProbeMode;
use crate::sys::PerfEventAttr;

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

pub(super) fn uprobe(
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
