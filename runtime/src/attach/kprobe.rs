//! kprobes, kretprobes and ksyscalls: one perf event per probe.

use std::ffi::CString;
use std::os::fd::BorrowedFd;

use super::error::{AttachError, Ctx};
use super::link::Link;
use super::perf_event::{attach_perf, probe_event};
use super::tracefs::ProbeKind;
use super::ProbeMode;
use crate::sys::PerfEventAttr;

pub(super) fn kprobe(
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

pub(super) fn ksyscall(ctx: Ctx<'_>, retprobe: bool, syscall: &str) -> Result<Link, AttachError> {
    kprobe(ctx, retprobe, &syscall_symbol(syscall), 0, ProbeMode::Auto)
}
