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
//! | `kprobe/<func>[+off]`, `kretprobe/...`, `ksyscall/...` | kprobe PMU, else tracefs `kprobe_events`; compiler clones (`func.isra.0`) found from the plain name |
//! | `kprobe.multi/<glob>`, `kretprobe.multi/...`, `kprobe.session/...` | one `BPF_LINK_CREATE` (fprobe) for every function of `available_filter_functions` the glob matches |
//! | `uprobe.multi/<binary>:<glob>`, `uretprobe.multi/...`, `uprobe.session/...` | one `BPF_LINK_CREATE` for every function symbol of the binary the glob matches |
//! | `uprobe/<binary>:<func>[+off]`, `uretprobe/...` | uprobe PMU, else tracefs `uprobe_events` |
//! | `usdt/<binary>:<provider>:<name>` | one uprobe per probe site with specs in the object's USDT maps ([`auto_attach_with`]) |
//! | `fentry.multi`, `fexit.multi`, `fsession.multi` | refused: no released kernel has tracing multi links |
//! | anything else, and the above without a target | not attached automatically: `Ok(None)` |

pub mod auto;
mod elf;
mod error;
mod glob;
mod kprobe;
mod link;
mod multi;
mod net;
mod perf_event;
mod release;
mod tracefs;
mod tracing;
mod uprobe;
mod usdt;

use std::os::fd::BorrowedFd;

pub use elf::{func_file_offset, func_file_offsets_matching, resolve_binary, LIBRARY_DIRS};
pub use error::{AttachError, Who};
pub use kprobe::{
    attach_kprobe, attach_kprobe_opts, attach_kprobe_with, attach_ksyscall, ksyscall_function,
    KprobeOptions, KprobeTarget,
};
pub use link::Link;
pub use multi::{
    attach_kprobe_multi, attach_uprobe_multi, kprobe_multi_functions, KprobeMultiOptions,
    KprobeMultiTargets, UprobeMultiOptions, UprobeMultiTargets,
};
pub use net::{
    attach_cgroup, attach_netfilter, attach_socket_filter, attach_sockmap, attach_tc, attach_xdp,
    xdp_flags, NetfilterHook, TcDirection,
};
pub use perf_event::{attach_perf_event, attach_tracepoint, open_cpu_clock_events};
pub use release::release_all;
pub use tracing::{
    attach_freplace, attach_iter, attach_raw_tracepoint, attach_trace, attach_trace_with,
    TraceOptions,
};
pub use uprobe::{attach_uprobe, attach_uprobe_with, UprobeLocation, UprobeOptions};
pub use usdt::{
    attach_usdt, parse_usdt_notes, AttachContext, UsdtArg, UsdtArgLocation, UsdtError, UsdtNote,
    UsdtNotes, UsdtSpec, USDT_MAX_ARGS, USDT_SPEC_SIZE,
};

use crate::section::AttachTarget as SecTarget;
use perf_event::{attach_perf, probe_event, tracepoint};
use tracing::raw_tracepoint;

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
    let (ctx, m, target) = auto::resolve(prog, prog_name, section)?;
    let link = match target {
        SecTarget::Manual => return Ok(None),
        SecTarget::Tracepoint { category, name } => tracepoint(ctx, category, name)?,
        SecTarget::RawTracepoint { name } => raw_tracepoint(ctx, name)?,
        SecTarget::Btf { name } => auto::btf_arm(ctx, &m, name)?,
        SecTarget::Kprobe {
            func,
            offset,
            retprobe,
        } => auto::kprobe_arm(ctx, func, offset, retprobe)?,
        SecTarget::Ksyscall { syscall, retprobe } => auto::ksyscall_arm(ctx, syscall, retprobe)?,
        SecTarget::Uprobe {
            binary,
            func,
            offset,
            retprobe,
        } => auto::uprobe_arm(ctx, binary, func, offset, retprobe)?,
        SecTarget::Usdt {
            binary,
            provider,
            name,
        } => auto::usdt_arm(ctx, binary, provider, name, attach)?,
        SecTarget::KprobeMulti {
            pattern,
            retprobe,
            session,
        } => auto::kprobe_multi_arm(ctx, pattern, retprobe, session)?,
        SecTarget::UprobeMulti {
            binary,
            pattern,
            retprobe,
            session,
        } => auto::uprobe_multi_arm(ctx, binary, pattern, retprobe, session)?,
        SecTarget::TracingMulti { pattern } => {
            return Err(ctx.unsupported(
                format!("tracing multi-link {pattern}"),
                "fentry.multi/fexit.multi/fsession.multi links are not in any released kernel",
            ))
        }
    };
    Ok(Some(link))
}
