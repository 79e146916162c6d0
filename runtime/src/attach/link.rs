//! [`Link`]: what keeps a program attached, undone on drop.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use log::warn;

use super::error::AttachError;
use super::tracefs::LegacyProbe;
use crate::sys::{self, AttachTarget};

/// What holds the attachment.
#[derive(Debug)]
pub(crate) enum Inner {
    /// A BPF link (`BPF_LINK_CREATE`, `BPF_RAW_TRACEPOINT_OPEN`): closing
    /// the last reference detaches.
    Bpf(OwnedFd),
    /// A perf event carrying the program, through a perf BPF link (`link`) or
    /// `PERF_EVENT_IOC_SET_BPF` (`link` `None`); a legacy tracefs probe event
    /// behind it is removed after the perf event is closed.
    Perf {
        link: Option<OwnedFd>,
        perf: OwnedFd,
        legacy: Option<LegacyProbe>,
    },
    /// `BPF_PROG_ATTACH` to `target` (a cgroup, a sockmap): detached with
    /// `BPF_PROG_DETACH` of the same program.
    ProgAttach {
        target: OwnedFd,
        prog: OwnedFd,
        attach_type: u32,
    },
    /// `SO_ATTACH_BPF` on a socket: detached with `SO_DETACH_BPF`.
    Socket(OwnedFd),
    /// A struct_ops map registered by updating its key 0 (`.struct_ops`,
    /// no link): unregistered by deleting key 0.
    StructOps(sys::MapFd),
    /// Several attachments acting as one (the probes of a USDT), released in
    /// order, then `keep` (what they need while attached, such as USDT spec
    /// ids) is dropped.
    Multi {
        links: Vec<Link>,
        keep: Box<dyn std::any::Any + Send + Sync>,
    },
    /// Already detached.
    Gone,
}

/// An attached program. Dropping the link detaches the program (closing the
/// BPF link or perf event, `BPF_PROG_DETACH`, `SO_DETACH_BPF`, removing a
/// legacy tracefs probe) unless the link is pinned, in which case the pin
/// keeps the attachment until [`unpin`](Link::unpin) (or `rm`) removes it.
///
/// Errors while detaching on drop are logged; [`detach`](Link::detach)
/// returns them.
///
/// Attachments that need their target to detach (cgroup, sockmap, socket)
/// hold a duplicate of the target fd, so the target stays open as long as the
/// link does.
#[derive(Debug)]
pub struct Link {
    inner: Inner,
    pinned: Option<PathBuf>,
}

impl Link {
    pub(crate) fn new(inner: Inner) -> Self {
        Link {
            inner,
            pinned: None,
        }
    }

    /// A struct_ops registration: a BPF link (`.struct_ops.link`), or the
    /// map itself, registered by a map update (`.struct_ops`) and
    /// unregistered by deleting its key 0.
    pub(crate) fn struct_ops(link: Option<OwnedFd>, map: sys::MapFd) -> Self {
        match link {
            Some(fd) => Link::new(Inner::Bpf(fd)),
            None => Link::new(Inner::StructOps(map)),
        }
    }

    /// Several links as one: dropping it releases each of `links`, then
    /// drops `keep`.
    pub(crate) fn multi(links: Vec<Link>, keep: Box<dyn std::any::Any + Send + Sync>) -> Self {
        Link::new(Inner::Multi { links, keep })
    }

    /// The attachments of a link that stands for several (one per USDT
    /// probe site); empty for the others.
    pub fn parts(&self) -> &[Link] {
        match &self.inner {
            Inner::Multi { links, .. } => links,
            _ => &[],
        }
    }

    /// What kind of attachment this is, for messages.
    pub fn kind(&self) -> &'static str {
        match &self.inner {
            Inner::Bpf(_) => "BPF link",
            Inner::Perf { link: Some(_), .. } => "perf event BPF link",
            Inner::Perf { link: None, .. } => "perf event",
            Inner::ProgAttach { .. } => "BPF_PROG_ATTACH attachment",
            Inner::Socket(_) => "socket filter",
            Inner::StructOps(_) => "struct_ops registration",
            Inner::Multi { .. } => "multi-probe link",
            Inner::Gone => "detached link",
        }
    }

    /// The fd that represents the attachment: the BPF link (also for perf
    /// events attached through a perf link), else the perf event, the
    /// attach target (cgroup, map) or the socket; `None` for a multi-probe
    /// link (see [`parts`](Link::parts)).
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        match &self.inner {
            Inner::Bpf(fd) => Some(fd.as_fd()),
            Inner::Perf {
                link: Some(link), ..
            } => Some(link.as_fd()),
            Inner::Perf { perf, .. } => Some(perf.as_fd()),
            Inner::ProgAttach { target, .. } => Some(target.as_fd()),
            Inner::Socket(sock) => Some(sock.as_fd()),
            Inner::StructOps(map) => Some(map.as_fd()),
            Inner::Multi { .. } | Inner::Gone => None,
        }
    }

    /// The perf event behind a kprobe, uprobe, tracepoint or perf_event
    /// attachment.
    pub fn perf_event_fd(&self) -> Option<BorrowedFd<'_>> {
        match &self.inner {
            Inner::Perf { perf, .. } => Some(perf.as_fd()),
            _ => None,
        }
    }

    /// The legacy tracefs probe event behind this link (`kprobes/<name>` or
    /// `uprobes/<name>`), when the kernel had no kprobe/uprobe PMU or legacy
    /// mode was asked for.
    pub fn legacy_probe_event(&self) -> Option<String> {
        match &self.inner {
            Inner::Perf {
                legacy: Some(probe),
                ..
            } => Some(probe.event()),
            _ => None,
        }
    }

    /// The bpffs path this link is pinned at.
    pub fn pin_path(&self) -> Option<&Path> {
        self.pinned.as_deref()
    }

    /// Pin the link at `path` (on a bpffs mount) so that it outlives this
    /// process. Only BPF links can be pinned (perf events attached by
    /// `PERF_EVENT_IOC_SET_BPF`, `BPF_PROG_ATTACH` and socket filters cannot).
    pub fn pin(&mut self, path: impl AsRef<Path>) -> Result<(), AttachError> {
        let path = path.as_ref();
        let fd = match &self.inner {
            Inner::Bpf(fd) => fd.as_fd(),
            Inner::Perf {
                link: Some(link), ..
            } => link.as_fd(),
            _ => {
                return Err(AttachError::NotPinnable {
                    path: path.to_owned(),
                    kind: self.kind(),
                })
            }
        };
        sys::obj_pin(fd, path).map_err(|source| AttachError::Pin {
            path: path.to_owned(),
            source: Box::new(source),
        })?;
        self.pinned = Some(path.to_owned());
        Ok(())
    }

    /// Remove the pin made by [`pin`](Link::pin); the link then detaches when
    /// dropped. Nothing to do if it is not pinned.
    pub fn unpin(&mut self) -> Result<(), AttachError> {
        if let Some(path) = self.pinned.take() {
            if let Err(source) = std::fs::remove_file(&path) {
                let err = AttachError::Unpin {
                    path: path.clone(),
                    source,
                };
                self.pinned = Some(path);
                return Err(err);
            }
        }
        Ok(())
    }

    /// Detach now, reporting errors that dropping would only log. A pinned
    /// link is unpinned first, so that the attachment really goes away.
    pub fn detach(mut self) -> Result<(), AttachError> {
        self.unpin()?;
        let inner = std::mem::replace(&mut self.inner, Inner::Gone);
        release(inner)
    }

    /// Keep the attachment alive without this handle: the link is leaked
    /// (its fds stay open until the process exits) — useful only together
    /// with a pin. Returns the pin path, if any.
    pub fn forget(mut self) -> Option<PathBuf> {
        let inner = std::mem::replace(&mut self.inner, Inner::Gone);
        std::mem::forget(inner);
        self.pinned.take()
    }
}

/// Undo an attachment, in the order that lets each step succeed: a legacy
/// probe event can only be removed once no perf event uses it.
fn release(inner: Inner) -> Result<(), AttachError> {
    match inner {
        Inner::Bpf(fd) => drop(fd),
        Inner::Perf { link, perf, legacy } => {
            if link.is_none() {
                // Best effort: closing the event stops the program anyway.
                let _ = sys::perf_event_disable(&perf);
            }
            drop(link);
            drop(perf);
            if let Some(probe) = legacy {
                probe.remove()?;
            }
        }
        Inner::ProgAttach {
            target,
            prog,
            attach_type,
        } => {
            sys::prog_detach(
                AttachTarget::Fd(target.as_fd()),
                Some(prog.as_fd()),
                attach_type,
            )
            .map_err(|source| AttachError::Detach {
                kind: "BPF_PROG_ATTACH attachment",
                source: Box::new(source),
            })?;
        }
        Inner::Socket(sock) => {
            sys::detach_bpf_from_socket(&sock).map_err(|source| AttachError::Detach {
                kind: "socket filter",
                source: Box::new(source),
            })?;
        }
        Inner::StructOps(map) => {
            map.delete(&0u32.to_le_bytes())
                .map_err(|source| AttachError::Detach {
                    kind: "struct_ops registration",
                    source: Box::new(source),
                })?;
        }
        Inner::Multi { mut links, keep } => {
            // Every part is released even if one fails; the first error is
            // reported.
            let mut first = Ok(());
            for mut link in links.drain(..) {
                let inner = std::mem::replace(&mut link.inner, Inner::Gone);
                let result = release(inner);
                if first.is_ok() {
                    first = result;
                }
            }
            drop(keep);
            first?;
        }
        Inner::Gone => {}
    }
    Ok(())
}

impl Drop for Link {
    fn drop(&mut self) {
        if self.pinned.is_some() {
            // The pin holds the attachment; closing our fds leaves it in place.
            return;
        }
        let inner = std::mem::replace(&mut self.inner, Inner::Gone);
        if let Err(err) = release(inner) {
            warn!("dropping link: {err}");
        }
    }
}
