//! Feature probes for link kinds, answered by the errno of a `BPF_LINK_CREATE`
//! that cannot succeed: each is built so that a kernel with the feature gets
//! past its own checks and fails on a later, specific one (a bad user pointer,
//! a path that is not a regular file, a device that does not exist), while a
//! kernel without it stops earlier with `EINVAL` or `EOPNOTSUPP`. Nothing is
//! attached, so a probe never disturbs programs already running. Answers are
//! not cached: these are diagnostics (the kernel matrix check), not load-path
//! decisions.

use std::os::fd::{AsFd, AsRawFd};

use super::attr::LinkCreateAttr;
use super::gateway::{attr_bytes, bpf_fd, Cmd};
use super::link::{attach_type, LinkCreate, LinkExtra, LinkTarget, UprobeMulti};
use super::prog::{prog_type, ProgLoad};

/// What a probe found: whether the kernel has the feature, and what it
/// answered (the errno), for messages that must show both sides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The kernel has the feature.
    pub supported: bool,
    /// What the kernel said, e.g. `BPF_LINK_CREATE answered EFAULT`.
    pub evidence: String,
}

impl Answer {
    fn new(supported: bool, evidence: impl Into<String>) -> Answer {
        Answer {
            supported,
            evidence: evidence.into(),
        }
    }
}

/// `BPF_TRACE_KPROBE_SESSION` (6.10+).
const TRACE_KPROBE_SESSION: u32 = 56;
/// `BPF_NETKIT_PRIMARY` (6.7+).
const NETKIT_PRIMARY: u32 = 54;
/// A user address no process maps (the zero page), for `copy_from_user` to
/// fault on.
const UNMAPPED_USER_ADDR: u64 = 8;
/// An interface index no network namespace has.
const NO_SUCH_IFINDEX: u32 = 0x7fff_ffff;

/// `r0 = 0; exit`.
const RETURN_ZERO: [u8; 16] = [0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0];

fn errno_name(errno: i32) -> String {
    match errno {
        libc::EINVAL => "EINVAL".into(),
        libc::EOPNOTSUPP => "EOPNOTSUPP".into(),
        libc::EFAULT => "EFAULT".into(),
        libc::EBADF => "EBADF".into(),
        libc::ENODEV => "ENODEV".into(),
        libc::ENXIO => "ENXIO".into(),
        libc::EPERM => "EPERM".into(),
        libc::E2BIG => "E2BIG".into(),
        524 => "ENOTSUPP".into(),
        n => format!("errno {n}"),
    }
}

/// Loads `r0 = 0; exit` as `prog_type` expecting `expected`; `Err` is the
/// answer when the kernel refuses even that.
fn load(prog_type: u32, expected: u32) -> Result<super::LoadedProg, Answer> {
    ProgLoad::new(prog_type, &RETURN_ZERO, "GPL")
        .expected_attach_type(expected)
        .load()
        .map_err(|e| {
            Answer::new(
                false,
                format!(
                    "BPF_PROG_LOAD (type {prog_type}, expected attach type {expected}) refused: {e}"
                ),
            )
        })
}

/// Turns a link-create result into an answer: supported iff it failed
/// with `want`.
fn judge(result: std::io::Result<std::os::fd::OwnedFd>, want: i32, what: &str) -> Answer {
    match result {
        // Cannot happen by construction; a link that exists is a yes.
        Ok(_) => Answer::new(true, format!("{what}: BPF_LINK_CREATE succeeded")),
        Err(e) => {
            let errno = e.raw_os_error().unwrap_or(0);
            Answer::new(
                errno == want,
                format!(
                    "{what}: BPF_LINK_CREATE answered {} (a kernel with it answers {})",
                    errno_name(errno),
                    errno_name(want)
                ),
            )
        }
    }
}

/// A kprobe-multi-shaped `BPF_LINK_CREATE` with one address at an unmapped
/// user pointer: a kernel that implements `attach` copies the addresses in
/// and faults (`EFAULT`); one built without `CONFIG_FPROBE` answers
/// `EOPNOTSUPP`, one that predates the attach type `EINVAL`.
fn multi_kprobe_probe(attach: u32, what: &str) -> Answer {
    let prog = match load(prog_type::KPROBE, attach) {
        Ok(p) => p,
        Err(a) => return a,
    };
    let mut attr = LinkCreateAttr {
        prog_or_map_fd: prog.fd.as_raw_fd() as u32,
        attach_type: attach,
        ..LinkCreateAttr::default()
    };
    attr.set_u32(16, 0); // flags
    attr.set_u32(20, 1); // cnt
    attr.set_u64(32, UNMAPPED_USER_ADDR); // addrs
    judge(
        bpf_fd(Cmd::LinkCreate, attr_bytes(&mut attr), None),
        libc::EFAULT,
        what,
    )
}

/// `kprobe.multi` links (5.18+, needs `CONFIG_FPROBE`).
pub fn kprobe_multi() -> Answer {
    multi_kprobe_probe(attach_type::TRACE_KPROBE_MULTI, "kprobe_multi")
}

/// `kprobe.session` links (6.10+, needs `CONFIG_FPROBE`).
pub fn kprobe_session() -> Answer {
    multi_kprobe_probe(TRACE_KPROBE_SESSION, "kprobe_session")
}

/// `uprobe.multi` links (6.6+): a uprobe on `/` (a directory) fails with
/// `EBADF` where the link kind exists, as libbpf probes it.
pub fn uprobe_multi() -> Answer {
    let prog = match load(prog_type::KPROBE, attach_type::TRACE_UPROBE_MULTI) {
        Ok(p) => p,
        Err(a) => return a,
    };
    let offsets = [0u64];
    let result = LinkCreate::new(
        prog.fd.as_fd(),
        LinkTarget::None,
        attach_type::TRACE_UPROBE_MULTI,
    )
    .extra(LinkExtra::UprobeMulti(UprobeMulti {
        path: c"/",
        offsets: &offsets,
        ref_ctr_offsets: &[],
        cookies: &[],
        pid: 0,
        flags: 0,
    }))
    .create();
    let errno = match result {
        Ok(_) => return Answer::new(true, "uprobe_multi: BPF_LINK_CREATE on '/' succeeded"),
        Err(e) => e.errno().unwrap_or(0),
    };
    Answer::new(
        errno == libc::EBADF,
        format!(
            "uprobe_multi: BPF_LINK_CREATE on '/' answered {} (a kernel with it answers EBADF)",
            errno_name(errno)
        ),
    )
}

/// A `sched_cls` link of `attach` on an interface that does not exist: the
/// tcx and netkit attach code looks the device up (`ENODEV`); a kernel
/// without the attach type rejects it first (`EINVAL`).
fn device_link_probe(attach: u32, what: &str) -> Answer {
    let prog = match load(prog_type::SCHED_CLS, attach) {
        Ok(p) => p,
        Err(a) => return a,
    };
    let mut attr = LinkCreateAttr {
        prog_or_map_fd: prog.fd.as_raw_fd() as u32,
        target_fd_or_ifindex: NO_SUCH_IFINDEX,
        attach_type: attach,
        ..LinkCreateAttr::default()
    };
    judge(
        bpf_fd(Cmd::LinkCreate, attr_bytes(&mut attr), None),
        libc::ENODEV,
        what,
    )
}

/// tcx links (6.6+).
pub fn tcx() -> Answer {
    device_link_probe(attach_type::TCX_INGRESS, "tcx")
}

/// netkit links (6.7+, needs `CONFIG_NETKIT`).
pub fn netkit() -> Answer {
    device_link_probe(NETKIT_PRIMARY, "netkit")
}
