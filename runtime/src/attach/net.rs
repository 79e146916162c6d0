//! Network and cgroup attachment: XDP, tc (tcx), cgroups, sockmaps, socket
//! filters, netfilter.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::PathBuf;

use super::error::{AttachError, Ctx};
use super::link::{Inner, Link};
use crate::section::AttachType;
use crate::sys::{self, attach_type, AttachTarget, LinkCreate, LinkExtra, LinkTarget};

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
