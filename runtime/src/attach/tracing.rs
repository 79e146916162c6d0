//! BPF links without a perf event: raw tracepoints, BTF-targeted tracing
//! programs (tp_btf, fentry, fexit, fmod_ret, freplace, lsm) and iterators.

use std::os::fd::BorrowedFd;

use super::error::{AttachError, Ctx};
use super::link::{Inner, Link};
use crate::section::AttachType;
use crate::sys::{self, attach_type, LinkCreate, LinkExtra, LinkTarget};

pub(super) fn raw_tracepoint(ctx: Ctx<'_>, name: &str) -> Result<Link, AttachError> {
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
pub(super) fn btf_link(ctx: Ctx<'_>, attach_type: u32, target: &str) -> Result<Link, AttachError> {
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
    attach_trace_with(prog, attach_type, &TraceOptions::default())
}

/// Options of [`attach_trace_with`] (libbpf's `bpf_trace_opts`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TraceOptions {
    /// What `bpf_get_attach_cookie()` returns in the program (fentry, fexit,
    /// fmod_ret, lsm; kernel 6.0+). 0: none.
    pub cookie: u64,
}

/// [`attach_trace`] with options. A cookie needs `BPF_LINK_CREATE` with
/// tracing options, so unlike the cookie-less attach there is no
/// `BPF_RAW_TRACEPOINT_OPEN` fallback: an older kernel's refusal is returned.
pub fn attach_trace_with(
    prog: BorrowedFd<'_>,
    attach_type: Option<AttachType>,
    opts: &TraceOptions,
) -> Result<Link, AttachError> {
    let raw = attach_type.map_or(0, AttachType::as_u32);
    let target = match attach_type {
        Some(t) => format!("its load-time BTF target ({t})"),
        None => "its load-time BTF target".to_owned(),
    };
    let ctx = Ctx::explicit(prog);
    if opts.cookie == 0 {
        return btf_link(ctx, raw, &target);
    }
    LinkCreate::new(prog, LinkTarget::None, raw)
        .extra(LinkExtra::Tracing {
            target_btf_id: 0,
            cookie: opts.cookie,
        })
        .create()
        .map(|fd| Link::new(Inner::Bpf(fd)))
        .map_err(|e| ctx.kernel(format!("{target} with a BPF cookie"), e))
}

/// Attach freplace program `prog` in place of global function `func` of
/// loaded program `target_prog` (libbpf's `bpf_program__attach_freplace`).
/// The target may differ from the one given at load, if the function's
/// prototype is the same; with `target_prog` `None` this is the load-time
/// target, as [`attach_trace`].
pub fn attach_freplace(
    prog: BorrowedFd<'_>,
    target_prog: Option<BorrowedFd<'_>>,
    func: &str,
) -> Result<Link, AttachError> {
    let ctx = Ctx::explicit(prog);
    let Some(target) = target_prog else {
        return btf_link(ctx, 0, "its load-time freplace target");
    };
    let what = format!("global function {func} of another program");
    let btf_id = crate::loader::program_func_btf_id(target, func)
        .map_err(|reason| ctx.target(what.clone(), reason))?;
    LinkCreate::new(prog, LinkTarget::Fd(target), 0)
        .extra(LinkExtra::TargetBtfId(btf_id))
        .create()
        .map(|fd| Link::new(Inner::Bpf(fd)))
        .map_err(|e| ctx.kernel(what, e))
}

pub(super) fn iter(ctx: Ctx<'_>, iter_info: Option<&[u8]>) -> Result<Link, AttachError> {
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
