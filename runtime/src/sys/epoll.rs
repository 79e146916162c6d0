//! A small owned epoll instance, for ring buffer and perf buffer polling.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use super::gateway::owned_fd_from_ret;
use super::SysError;

/// `EPOLLIN`.
pub const EPOLLIN: u32 = libc::EPOLLIN as u32;
/// `EPOLLOUT`.
pub const EPOLLOUT: u32 = libc::EPOLLOUT as u32;
/// `EPOLLERR`.
pub const EPOLLERR: u32 = libc::EPOLLERR as u32;
/// `EPOLLHUP`.
pub const EPOLLHUP: u32 = libc::EPOLLHUP as u32;

/// One ready event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EpollEvent {
    /// Ready events (`EPOLLIN`, ...).
    pub events: u32,
    /// The value given at registration.
    pub data: u64,
}

/// An epoll fd (`EPOLL_CLOEXEC`), closed on drop.
#[derive(Debug)]
pub struct Epoll {
    fd: OwnedFd,
}

impl AsFd for Epoll {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn ctl_error(what: &str) -> SysError {
    SysError::from_errno(
        "epoll_ctl",
        std::io::Error::last_os_error(),
        Some(what.to_string()),
    )
}

impl Epoll {
    /// `epoll_create1(EPOLL_CLOEXEC)`.
    pub fn new() -> Result<Self, SysError> {
        // SAFETY: no pointers; returns a new fd or -1.
        let ret = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if ret < 0 {
            return Err(SysError::from_errno(
                "epoll_create1",
                std::io::Error::last_os_error(),
                None,
            ));
        }
        let fd = owned_fd_from_ret(i64::from(ret))
            .map_err(|errno| SysError::from_errno("epoll_create1", errno, None))?;
        Ok(Epoll { fd })
    }

    fn ctl(&self, op: libc::c_int, fd: BorrowedFd<'_>, events: u32, data: u64) -> libc::c_int {
        let mut event = libc::epoll_event { events, u64: data };
        // SAFETY: `event` is a valid epoll_event for the call; both fds are open.
        unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, fd.as_raw_fd(), &mut event) }
    }

    /// Watch `fd` for `events`, reporting `data` when ready.
    pub fn add(&self, fd: impl AsFd, events: u32, data: u64) -> Result<(), SysError> {
        if self.ctl(libc::EPOLL_CTL_ADD, fd.as_fd(), events, data) != 0 {
            return Err(ctl_error("EPOLL_CTL_ADD"));
        }
        Ok(())
    }

    /// Change what `fd` is watched for.
    pub fn modify(&self, fd: impl AsFd, events: u32, data: u64) -> Result<(), SysError> {
        if self.ctl(libc::EPOLL_CTL_MOD, fd.as_fd(), events, data) != 0 {
            return Err(ctl_error("EPOLL_CTL_MOD"));
        }
        Ok(())
    }

    /// Stop watching `fd`.
    pub fn delete(&self, fd: impl AsFd) -> Result<(), SysError> {
        if self.ctl(libc::EPOLL_CTL_DEL, fd.as_fd(), 0, 0) != 0 {
            return Err(ctl_error("EPOLL_CTL_DEL"));
        }
        Ok(())
    }

    /// Wait up to `timeout_ms` (-1: forever) and fill `events`; returns how many
    /// are ready. An interrupting signal returns `Ok(0)`.
    pub fn wait(&self, events: &mut [EpollEvent], timeout_ms: i32) -> Result<usize, SysError> {
        if events.is_empty() {
            return Err(SysError::invalid("epoll_wait", "no room for events"));
        }
        let max = libc::c_int::try_from(events.len()).unwrap_or(libc::c_int::MAX);
        let mut raw = vec![libc::epoll_event { events: 0, u64: 0 }; max as usize];
        // SAFETY: `raw` holds `max` writable epoll_event slots for the call.
        let ret =
            unsafe { libc::epoll_wait(self.fd.as_raw_fd(), raw.as_mut_ptr(), max, timeout_ms) };
        if ret < 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EINTR) {
                return Ok(0);
            }
            return Err(SysError::from_errno("epoll_wait", err, None));
        }
        let n = usize::try_from(ret).unwrap_or(0).min(events.len());
        for (dst, src) in events.iter_mut().zip(raw.iter()).take(n) {
            let (ev, data) = (src.events, src.u64);
            *dst = EpollEvent { events: ev, data };
        }
        Ok(n)
    }
}
