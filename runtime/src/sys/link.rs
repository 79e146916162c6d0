//! `BPF_LINK_CREATE` with its per-attach-type options, `BPF_LINK_DETACH`,
//! `BPF_RAW_TRACEPOINT_OPEN`, `BPF_PROG_ATTACH`/`DETACH` and `BPF_ITER_CREATE`.

use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use super::attr::{
    IterCreateAttr, LinkCreateAttr, LinkDetachAttr, ProgAttachAttr, RawTracepointAttr,
};
use super::gateway::{attr_bytes, bpf_fd, bpf_value, Cmd};
use super::SysError;

/// Attach type numbers (`enum bpf_attach_type`) the runtime uses by name.
#[allow(missing_docs)]
pub mod attach_type {
    pub const CGROUP_INET_INGRESS: u32 = 0;
    pub const TRACE_RAW_TP: u32 = 23;
    pub const TRACE_FENTRY: u32 = 24;
    pub const TRACE_FEXIT: u32 = 25;
    pub const TRACE_ITER: u32 = 28;
    pub const XDP: u32 = 37;
    pub const PERF_EVENT: u32 = 41;
    pub const TRACE_KPROBE_MULTI: u32 = 42;
    pub const NETFILTER: u32 = 45;
    pub const TCX_INGRESS: u32 = 46;
    pub const TCX_EGRESS: u32 = 47;
    pub const TRACE_UPROBE_MULTI: u32 = 48;
    pub const TRACE_KPROBE_SESSION: u32 = 56;
    pub const TRACE_UPROBE_SESSION: u32 = 57;
}

/// What a link attaches to.
#[derive(Debug, Clone, Copy)]
pub enum LinkTarget<'a> {
    /// `target_fd`: a perf event, cgroup, netns, program...
    Fd(BorrowedFd<'a>),
    /// `target_ifindex`: a network device (XDP, tcx, netkit).
    Ifindex(u32),
    /// No target (tracing, iterators, multi-probes).
    None,
}

/// `kprobe_multi` options: either symbols or addresses, optional cookies.
#[derive(Debug, Clone, Copy, Default)]
pub struct KprobeMulti<'a> {
    /// Function names.
    pub syms: &'a [&'a CStr],
    /// Function addresses (instead of `syms`).
    pub addrs: &'a [u64],
    /// One cookie per probe, or empty.
    pub cookies: &'a [u64],
    /// `BPF_F_KPROBE_MULTI_RETURN` (1) for return probes.
    pub flags: u32,
}

/// `uprobe_multi` options.
#[derive(Debug, Clone, Copy)]
pub struct UprobeMulti<'a> {
    /// The binary.
    pub path: &'a CStr,
    /// File offsets of the probes.
    pub offsets: &'a [u64],
    /// Reference counter (semaphore) offsets, one per probe, or empty.
    pub ref_ctr_offsets: &'a [u64],
    /// One cookie per probe, or empty.
    pub cookies: &'a [u64],
    /// Process filter (0: any).
    pub pid: u32,
    /// `BPF_F_UPROBE_MULTI_RETURN` (1) for return probes.
    pub flags: u32,
}

/// The per-attach-type part of `BPF_LINK_CREATE` (a union in the uapi).
#[derive(Debug, Clone, Copy, Default)]
pub enum LinkExtra<'a> {
    /// Nothing.
    #[default]
    None,
    /// `target_btf_id`.
    TargetBtfId(u32),
    /// `iter_info` bytes (a `bpf_iter_link_info`).
    IterInfo(&'a [u8]),
    /// `perf_event.bpf_cookie`.
    PerfEventCookie(u64),
    /// `kprobe_multi`.
    KprobeMulti(KprobeMulti<'a>),
    /// `tracing.{target_btf_id, cookie}`.
    Tracing {
        /// BTF id of the target.
        target_btf_id: u32,
        /// Cookie for `bpf_get_attach_cookie()`.
        cookie: u64,
    },
    /// `netfilter`.
    Netfilter {
        /// Protocol family.
        pf: u32,
        /// Hook number.
        hooknum: u32,
        /// Priority.
        priority: i32,
        /// Flags.
        flags: u32,
    },
    /// `tcx` (also netkit): relative fd or id and the expected revision.
    Tcx {
        /// `relative_fd` or `relative_id`, chosen by `flags`.
        relative: u32,
        /// `expected_revision` (0: any).
        expected_revision: u64,
    },
    /// `uprobe_multi`.
    UprobeMulti(UprobeMulti<'a>),
}

/// Builder for `BPF_LINK_CREATE`.
#[derive(Debug, Clone, Copy)]
pub struct LinkCreate<'a> {
    prog: BorrowedFd<'a>,
    target: LinkTarget<'a>,
    attach_type: u32,
    flags: u32,
    extra: LinkExtra<'a>,
}

fn check_len(op: &'static str, what: &str, len: usize, cnt: usize) -> Result<(), SysError> {
    if len != 0 && len != cnt {
        return Err(SysError::invalid(
            op,
            format!("{what} has {len} entries, expected {cnt}"),
        ));
    }
    Ok(())
}

fn slice_ptr(values: &[u64]) -> u64 {
    if values.is_empty() {
        0
    } else {
        values.as_ptr() as u64
    }
}

impl<'a> LinkCreate<'a> {
    /// Link `prog` to `target` with `attach_type`.
    pub fn new(prog: BorrowedFd<'a>, target: LinkTarget<'a>, attach_type: u32) -> Self {
        LinkCreate {
            prog,
            target,
            attach_type,
            flags: 0,
            extra: LinkExtra::None,
        }
    }

    /// `flags`.
    pub fn flags(mut self, flags: u32) -> Self {
        self.flags = flags;
        self
    }

    /// The per-attach-type options.
    pub fn extra(mut self, extra: LinkExtra<'a>) -> Self {
        self.extra = extra;
        self
    }

    /// Create the link.
    pub fn create(&self) -> Result<OwnedFd, SysError> {
        let op = Cmd::LinkCreate.as_str();
        let mut attr = LinkCreateAttr {
            prog_or_map_fd: self.prog.as_raw_fd() as u32,
            target_fd_or_ifindex: match self.target {
                LinkTarget::Fd(fd) => fd.as_raw_fd() as u32,
                LinkTarget::Ifindex(index) => index,
                LinkTarget::None => 0,
            },
            attach_type: self.attach_type,
            flags: self.flags,
            ..LinkCreateAttr::default()
        };
        // Pointer arrays built here must outlive the syscall below.
        let mut sym_ptrs: Vec<u64> = Vec::new();
        match self.extra {
            LinkExtra::None => {}
            LinkExtra::TargetBtfId(id) => attr.set_u32(16, id),
            LinkExtra::IterInfo(info) => {
                let len = u32::try_from(info.len())
                    .map_err(|_| SysError::invalid(op, "iter_info too large"))?;
                attr.set_u64(16, super::attr::ptr_of(info));
                attr.set_u32(24, len);
            }
            LinkExtra::PerfEventCookie(cookie) => attr.set_u64(16, cookie),
            LinkExtra::KprobeMulti(k) => {
                let cnt = if k.syms.is_empty() {
                    k.addrs.len()
                } else {
                    k.syms.len()
                };
                if cnt == 0 || (!k.syms.is_empty() && !k.addrs.is_empty()) {
                    return Err(SysError::invalid(
                        op,
                        "kprobe_multi needs either symbols or addresses",
                    ));
                }
                check_len(op, "kprobe_multi cookies", k.cookies.len(), cnt)?;
                sym_ptrs = k.syms.iter().map(|s| s.as_ptr() as u64).collect();
                attr.set_u32(16, k.flags);
                attr.set_u32(
                    20,
                    u32::try_from(cnt).map_err(|_| SysError::invalid(op, "too many probes"))?,
                );
                attr.set_u64(24, slice_ptr(&sym_ptrs));
                attr.set_u64(32, slice_ptr(k.addrs));
                attr.set_u64(40, slice_ptr(k.cookies));
            }
            LinkExtra::Tracing {
                target_btf_id,
                cookie,
            } => {
                attr.set_u32(16, target_btf_id);
                attr.set_u64(24, cookie);
            }
            LinkExtra::Netfilter {
                pf,
                hooknum,
                priority,
                flags,
            } => {
                attr.set_u32(16, pf);
                attr.set_u32(20, hooknum);
                attr.set_u32(24, priority as u32);
                attr.set_u32(28, flags);
            }
            LinkExtra::Tcx {
                relative,
                expected_revision,
            } => {
                attr.set_u32(16, relative);
                attr.set_u64(24, expected_revision);
            }
            LinkExtra::UprobeMulti(u) => {
                let cnt = u.offsets.len();
                if cnt == 0 {
                    return Err(SysError::invalid(
                        op,
                        "uprobe_multi needs at least one offset",
                    ));
                }
                check_len(
                    op,
                    "uprobe_multi ref_ctr_offsets",
                    u.ref_ctr_offsets.len(),
                    cnt,
                )?;
                check_len(op, "uprobe_multi cookies", u.cookies.len(), cnt)?;
                attr.set_u64(16, u.path.as_ptr() as u64);
                attr.set_u64(24, slice_ptr(u.offsets));
                attr.set_u64(32, slice_ptr(u.ref_ctr_offsets));
                attr.set_u64(40, slice_ptr(u.cookies));
                attr.set_u32(
                    48,
                    u32::try_from(cnt).map_err(|_| SysError::invalid(op, "too many probes"))?,
                );
                attr.set_u32(52, u.flags);
                attr.set_u32(56, u.pid);
            }
        }
        let result = bpf_fd(Cmd::LinkCreate, attr_bytes(&mut attr), None);
        drop(sym_ptrs);
        result.map_err(|errno| {
            SysError::from_errno(op, errno, Some(format!("attach type {}", self.attach_type)))
        })
    }
}

/// `BPF_LINK_DETACH`: detach the link from its target, leaving the fd valid.
pub fn link_detach(link: impl AsFd) -> Result<(), SysError> {
    let mut attr = LinkDetachAttr {
        link_fd: link.as_fd().as_raw_fd() as u32,
        ..LinkDetachAttr::default()
    };
    bpf_value(Cmd::LinkDetach, attr_bytes(&mut attr), None)
        .map(drop)
        .map_err(|errno| SysError::from_errno(Cmd::LinkDetach.as_str(), errno, None))
}

/// `BPF_RAW_TRACEPOINT_OPEN`: attach a raw_tp program to tracepoint `name`, or a
/// tp_btf/fentry/fexit/lsm program to its load-time target with `name` `None`.
/// `cookie` needs 6.10+ (leave 0 on older kernels).
pub fn raw_tracepoint_open(
    prog: impl AsFd,
    name: Option<&str>,
    cookie: u64,
) -> Result<OwnedFd, SysError> {
    let op = Cmd::RawTracepointOpen.as_str();
    let name_c = name
        .map(|n| {
            CString::new(n)
                .map_err(|_| SysError::invalid(op, format!("tracepoint name {n:?} contains NUL")))
        })
        .transpose()?;
    let mut attr = RawTracepointAttr {
        name: name_c.as_ref().map_or(0, |n| n.as_ptr() as u64),
        prog_fd: prog.as_fd().as_raw_fd() as u32,
        cookie,
        ..RawTracepointAttr::default()
    };
    bpf_fd(Cmd::RawTracepointOpen, attr_bytes(&mut attr), None)
        .map_err(|errno| SysError::from_errno(op, errno, name.map(|n| format!("tracepoint {n}"))))
}

/// Where `BPF_PROG_ATTACH` attaches.
#[derive(Debug, Clone, Copy)]
pub enum AttachTarget<'a> {
    /// A cgroup, socket map, ... fd.
    Fd(BorrowedFd<'a>),
    /// A network device (tcx via `BPF_PROG_ATTACH`).
    Ifindex(u32),
}

impl AttachTarget<'_> {
    fn raw(self) -> u32 {
        match self {
            AttachTarget::Fd(fd) => fd.as_raw_fd() as u32,
            AttachTarget::Ifindex(index) => index,
        }
    }
}

/// `BPF_PROG_ATTACH` with `attach_flags` (`BPF_F_ALLOW_MULTI`, `BPF_F_REPLACE`
/// with `replace`, ...).
pub fn prog_attach(
    target: AttachTarget<'_>,
    prog: impl AsFd,
    attach_type: u32,
    attach_flags: u32,
    replace: Option<BorrowedFd<'_>>,
) -> Result<(), SysError> {
    let mut attr = ProgAttachAttr {
        target_fd_or_ifindex: target.raw(),
        attach_bpf_fd: prog.as_fd().as_raw_fd() as u32,
        attach_type,
        attach_flags,
        replace_bpf_fd: replace.map_or(0, |fd| fd.as_raw_fd() as u32),
        ..ProgAttachAttr::default()
    };
    bpf_value(Cmd::ProgAttach, attr_bytes(&mut attr), None)
        .map(drop)
        .map_err(|errno| {
            SysError::from_errno(
                Cmd::ProgAttach.as_str(),
                errno,
                Some(format!("attach type {attach_type}")),
            )
        })
}

/// `BPF_PROG_DETACH` (`prog` `None` for the legacy single-program detach).
pub fn prog_detach(
    target: AttachTarget<'_>,
    prog: Option<BorrowedFd<'_>>,
    attach_type: u32,
) -> Result<(), SysError> {
    let mut attr = ProgAttachAttr {
        target_fd_or_ifindex: target.raw(),
        attach_bpf_fd: prog.map_or(0, |fd| fd.as_raw_fd() as u32),
        attach_type,
        ..ProgAttachAttr::default()
    };
    bpf_value(Cmd::ProgDetach, attr_bytes(&mut attr), None)
        .map(drop)
        .map_err(|errno| {
            SysError::from_errno(
                Cmd::ProgDetach.as_str(),
                errno,
                Some(format!("attach type {attach_type}")),
            )
        })
}

/// `BPF_ITER_CREATE`: an fd to `read()` an iterator link's output from.
pub fn iter_create(link: impl AsFd) -> Result<OwnedFd, SysError> {
    let mut attr = IterCreateAttr {
        link_fd: link.as_fd().as_raw_fd() as u32,
        flags: 0,
    };
    bpf_fd(Cmd::IterCreate, attr_bytes(&mut attr), None)
        .map_err(|errno| SysError::from_errno(Cmd::IterCreate.as_str(), errno, None))
}
