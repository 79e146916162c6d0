//! The one door to `bpf(2)`, and the one place a raw fd becomes an [`OwnedFd`].
//!
//! Every command goes through [`invoke`], which either makes the real syscall or,
//! when a test installed one with [`with_fake`], calls a fake on this thread.
//! Fakes let unit tests drive the error paths (`EPERM`, `E2BIG`, `ENOSPC` log
//! growth, `EAGAIN` retries) without a kernel or root.

use std::cell::RefCell;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// A `bpf(2)` command (`enum bpf_cmd` in `linux/bpf.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
#[allow(missing_docs)] // the names are the kernel's
pub enum Cmd {
    MapCreate = 0,
    MapLookupElem = 1,
    MapUpdateElem = 2,
    MapDeleteElem = 3,
    MapGetNextKey = 4,
    ProgLoad = 5,
    ObjPin = 6,
    ObjGet = 7,
    ProgAttach = 8,
    ProgDetach = 9,
    ProgTestRun = 10,
    ProgGetNextId = 11,
    MapGetNextId = 12,
    ProgGetFdById = 13,
    MapGetFdById = 14,
    ObjGetInfoByFd = 15,
    ProgQuery = 16,
    RawTracepointOpen = 17,
    BtfLoad = 18,
    BtfGetFdById = 19,
    TaskFdQuery = 20,
    MapLookupAndDeleteElem = 21,
    MapFreeze = 22,
    BtfGetNextId = 23,
    MapLookupBatch = 24,
    MapLookupAndDeleteBatch = 25,
    MapUpdateBatch = 26,
    MapDeleteBatch = 27,
    LinkCreate = 28,
    LinkUpdate = 29,
    LinkGetFdById = 30,
    LinkGetNextId = 31,
    EnableStats = 32,
    IterCreate = 33,
    LinkDetach = 34,
    ProgBindMap = 35,
}

impl Cmd {
    /// The kernel's name for the command, e.g. `"BPF_MAP_CREATE"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Cmd::MapCreate => "BPF_MAP_CREATE",
            Cmd::MapLookupElem => "BPF_MAP_LOOKUP_ELEM",
            Cmd::MapUpdateElem => "BPF_MAP_UPDATE_ELEM",
            Cmd::MapDeleteElem => "BPF_MAP_DELETE_ELEM",
            Cmd::MapGetNextKey => "BPF_MAP_GET_NEXT_KEY",
            Cmd::ProgLoad => "BPF_PROG_LOAD",
            Cmd::ObjPin => "BPF_OBJ_PIN",
            Cmd::ObjGet => "BPF_OBJ_GET",
            Cmd::ProgAttach => "BPF_PROG_ATTACH",
            Cmd::ProgDetach => "BPF_PROG_DETACH",
            Cmd::ProgTestRun => "BPF_PROG_TEST_RUN",
            Cmd::ProgGetNextId => "BPF_PROG_GET_NEXT_ID",
            Cmd::MapGetNextId => "BPF_MAP_GET_NEXT_ID",
            Cmd::ProgGetFdById => "BPF_PROG_GET_FD_BY_ID",
            Cmd::MapGetFdById => "BPF_MAP_GET_FD_BY_ID",
            Cmd::ObjGetInfoByFd => "BPF_OBJ_GET_INFO_BY_FD",
            Cmd::ProgQuery => "BPF_PROG_QUERY",
            Cmd::RawTracepointOpen => "BPF_RAW_TRACEPOINT_OPEN",
            Cmd::BtfLoad => "BPF_BTF_LOAD",
            Cmd::BtfGetFdById => "BPF_BTF_GET_FD_BY_ID",
            Cmd::TaskFdQuery => "BPF_TASK_FD_QUERY",
            Cmd::MapLookupAndDeleteElem => "BPF_MAP_LOOKUP_AND_DELETE_ELEM",
            Cmd::MapFreeze => "BPF_MAP_FREEZE",
            Cmd::BtfGetNextId => "BPF_BTF_GET_NEXT_ID",
            Cmd::MapLookupBatch => "BPF_MAP_LOOKUP_BATCH",
            Cmd::MapLookupAndDeleteBatch => "BPF_MAP_LOOKUP_AND_DELETE_BATCH",
            Cmd::MapUpdateBatch => "BPF_MAP_UPDATE_BATCH",
            Cmd::MapDeleteBatch => "BPF_MAP_DELETE_BATCH",
            Cmd::LinkCreate => "BPF_LINK_CREATE",
            Cmd::LinkUpdate => "BPF_LINK_UPDATE",
            Cmd::LinkGetFdById => "BPF_LINK_GET_FD_BY_ID",
            Cmd::LinkGetNextId => "BPF_LINK_GET_NEXT_ID",
            Cmd::EnableStats => "BPF_ENABLE_STATS",
            Cmd::IterCreate => "BPF_ITER_CREATE",
            Cmd::LinkDetach => "BPF_LINK_DETACH",
            Cmd::ProgBindMap => "BPF_PROG_BIND_MAP",
        }
    }
}

/// A per-command `bpf_attr` struct that may be handed to the kernel as bytes.
///
/// # Safety
///
/// Implementors are `#[repr(C)]`, contain only integers and integer arrays (every
/// bit pattern is valid) and have no implicit padding (every byte is initialised),
/// so viewing them as `&mut [u8]` is sound.
pub(crate) unsafe trait Attr: Sized {}

/// The byte view of an attr struct.
pub(crate) fn attr_bytes<A: Attr>(attr: &mut A) -> &mut [u8] {
    // SAFETY: `A: Attr` promises a padding-free struct of plain integers, so all
    // `size_of::<A>()` bytes are initialised and any bytes written back are valid;
    // the slice borrows `attr` mutably for its whole life.
    unsafe {
        std::slice::from_raw_parts_mut((attr as *mut A).cast::<u8>(), std::mem::size_of::<A>())
    }
}

/// A kernel log buffer (verifier or BTF log) travelling with a call.
///
/// The gateway itself writes the buffer's address into the attr at `ptr_offset`
/// right before the call, so that the address derives from the live `&mut`.
pub(crate) struct LogSlot<'a> {
    pub(crate) buf: &'a mut [u8],
    pub(crate) ptr_offset: usize,
}

/// One call as a fake sees it.
pub struct FakeCall<'a> {
    /// The command.
    pub cmd: Cmd,
    /// The attr bytes, exactly as the kernel would see them (uapi layout), and
    /// writable as the kernel would write its outputs.
    pub attr: &'a mut [u8],
    /// The log buffer of `BPF_PROG_LOAD` / `BPF_BTF_LOAD` when the call has one;
    /// a fake writes its "verifier log" here.
    pub log: Option<&'a mut [u8]>,
}

impl FakeCall<'_> {
    /// The `u32` at byte `offset` of the attr (uapi offsets), if in bounds.
    pub fn u32_at(&self, offset: usize) -> Option<u32> {
        let bytes = self.attr.get(offset..offset.checked_add(4)?)?;
        Some(u32::from_ne_bytes(bytes.try_into().ok()?))
    }

    /// The `u64` at byte `offset` of the attr, if in bounds.
    pub fn u64_at(&self, offset: usize) -> Option<u64> {
        let bytes = self.attr.get(offset..offset.checked_add(8)?)?;
        Some(u64::from_ne_bytes(bytes.try_into().ok()?))
    }

    /// Write a `u32` at byte `offset` of the attr, as the kernel writes outputs;
    /// returns false when out of bounds.
    pub fn set_u32_at(&mut self, offset: usize, value: u32) -> bool {
        let Some(end) = offset.checked_add(4) else {
            return false;
        };
        match self.attr.get_mut(offset..end) {
            Some(bytes) => {
                bytes.copy_from_slice(&value.to_ne_bytes());
                true
            }
            None => false,
        }
    }

    /// Copy `text` into the log buffer (NUL-terminated, truncated to fit);
    /// returns how many bytes of `text` fit.
    pub fn write_log(&mut self, text: &str) -> usize {
        let Some(log) = self.log.as_deref_mut() else {
            return 0;
        };
        let n = text.len().min(log.len().saturating_sub(1));
        if let (Some(dst), Some(src)) = (log.get_mut(..n), text.as_bytes().get(..n)) {
            dst.copy_from_slice(src);
        }
        if let Some(nul) = log.get_mut(n) {
            *nul = 0;
        }
        n
    }
}

/// What a fake returns for one call.
#[derive(Debug)]
pub enum FakeReturn {
    /// A non-negative return value of a command that does not create an fd.
    Value(i64),
    /// The fd returned by a command that creates one; the fake must own it (e.g.
    /// `File::open("/dev/null")?.into()`), so that nothing else gets closed.
    Fd(OwnedFd),
    /// Fail with this errno (`libc::EPERM`, ...).
    Errno(i32),
}

type FakeFn = Box<dyn FnMut(&mut FakeCall<'_>) -> FakeReturn>;

thread_local! {
    static FAKE: RefCell<Option<FakeFn>> = const { RefCell::new(None) };
}

/// Run `body` with every `bpf(2)` call made on this thread answered by `fake`
/// instead of the kernel. Restores the previous state afterwards, also when
/// `body` panics. Other threads are unaffected.
///
/// Feature probes run under a fake are computed but not cached.
pub fn with_fake<R>(
    fake: impl FnMut(&mut FakeCall<'_>) -> FakeReturn + 'static,
    body: impl FnOnce() -> R,
) -> R {
    struct Restore(Option<FakeFn>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            FAKE.with(|slot| *slot.borrow_mut() = previous);
        }
    }
    let previous = FAKE.with(|slot| slot.borrow_mut().replace(Box::new(fake)));
    let _restore = Restore(previous);
    body()
}

/// Whether a fake is installed on this thread.
pub(crate) fn fake_installed() -> bool {
    FAKE.with(|slot| slot.borrow().is_some())
}

/// What came back from one call.
enum Outcome {
    /// The kernel's non-negative return value.
    Kernel(i64),
    /// A fake's plain value.
    FakeValue(i64),
    /// A fake's fd.
    FakeFd(OwnedFd),
}

/// Perform one `bpf(cmd, attr, size)` call: the only `bpf(2)` in the crate.
fn invoke(cmd: Cmd, attr: &mut [u8], log: Option<LogSlot<'_>>) -> io::Result<Outcome> {
    let mut log = log;
    if let Some(slot) = log.as_mut() {
        let address = slot.buf.as_mut_ptr() as u64;
        let field = slot
            .ptr_offset
            .checked_add(8)
            .and_then(|end| attr.get_mut(slot.ptr_offset..end))
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        field.copy_from_slice(&address.to_ne_bytes());
    }
    // Take the fake out while it runs, so that a fake may itself call into sys.
    let fake = FAKE.with(|slot| slot.borrow_mut().take());
    if let Some(mut fake) = fake {
        let mut call = FakeCall {
            cmd,
            attr,
            log: log.map(|slot| slot.buf),
        };
        let answer = fake(&mut call);
        FAKE.with(|slot| {
            let mut slot = slot.borrow_mut();
            if slot.is_none() {
                *slot = Some(fake);
            }
        });
        return match answer {
            FakeReturn::Value(value) if value >= 0 => Ok(Outcome::FakeValue(value)),
            FakeReturn::Value(_) => Err(io::Error::from_raw_os_error(libc::EINVAL)),
            FakeReturn::Fd(fd) => Ok(Outcome::FakeFd(fd)),
            FakeReturn::Errno(errno) => Err(io::Error::from_raw_os_error(errno)),
        };
    }
    let size = libc::c_uint::try_from(attr.len())
        .map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?;
    // SAFETY: `attr` is a live, exclusively borrowed buffer of `size` bytes laid out
    // as the command's `bpf_attr`; every user pointer inside it was derived by the
    // caller from a borrow that outlives this call (and the log address above from
    // `log`, still borrowed here), with the matching length fields, so the kernel
    // reads and writes only memory we own for the duration of the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as u32 as libc::c_long,
            attr.as_mut_ptr(),
            size,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        #[allow(clippy::useless_conversion)] // c_long is i32 on 32-bit targets
        Ok(Outcome::Kernel(i64::from(ret)))
    }
}

/// Turn a syscall's non-negative return value into an [`OwnedFd`]: the only place
/// in the crate that does so.
pub(crate) fn owned_fd_from_ret(ret: i64) -> io::Result<OwnedFd> {
    let raw = RawFd::try_from(ret).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    if raw < 0 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: callers pass the return value of a syscall that just created a new
    // file descriptor (bpf(2) fd commands, perf_event_open, epoll_create1); nothing
    // else owns it yet, and it is open and non-negative.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// A command that returns a plain value (0 for most).
pub(crate) fn bpf_value(cmd: Cmd, attr: &mut [u8], log: Option<LogSlot<'_>>) -> io::Result<i64> {
    match invoke(cmd, attr, log)? {
        Outcome::Kernel(value) | Outcome::FakeValue(value) => Ok(value),
        Outcome::FakeFd(_) => Ok(0),
    }
}

/// A command that returns a new fd.
pub(crate) fn bpf_fd(cmd: Cmd, attr: &mut [u8], log: Option<LogSlot<'_>>) -> io::Result<OwnedFd> {
    match invoke(cmd, attr, log)? {
        Outcome::Kernel(ret) => owned_fd_from_ret(ret),
        Outcome::FakeFd(fd) => Ok(fd),
        // A fake's number is not an fd we may own: refuse rather than close it later.
        Outcome::FakeValue(_) => Err(io::Error::from_raw_os_error(libc::EBADF)),
    }
}

/// How many times a command interrupted with `EAGAIN`/`EINTR` is tried, as libbpf
/// does for `BPF_PROG_LOAD` (the verifier gives up with `EAGAIN` when a signal
/// is pending).
pub(crate) const RETRY_ATTEMPTS: usize = 5;

/// [`bpf_fd`] retried on `EAGAIN`/`EINTR` up to [`RETRY_ATTEMPTS`] times.
pub(crate) fn bpf_fd_retry(
    cmd: Cmd,
    attr: &mut [u8],
    log: Option<&mut [u8]>,
    ptr_offset: usize,
) -> io::Result<OwnedFd> {
    let mut log = log;
    let mut attempt = 1;
    loop {
        let slot = log.as_deref_mut().map(|buf| LogSlot { buf, ptr_offset });
        match bpf_fd(cmd, attr, slot) {
            Err(e)
                if attempt < RETRY_ATTEMPTS
                    && matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EINTR)) =>
            {
                attempt += 1;
            }
            other => return other,
        }
    }
}
