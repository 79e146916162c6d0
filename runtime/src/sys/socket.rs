//! `SO_ATTACH_BPF` / `SO_DETACH_BPF`: socket filter programs on a socket.

use std::os::fd::{AsFd, AsRawFd};

use super::SysError;

// `asm-generic/socket.h` values (x86, arm, riscv, powerpc, mips, ...); libc
// does not export them for every target.
#[cfg(not(target_arch = "sparc64"))]
const SO_ATTACH_BPF: libc::c_int = 50;
#[cfg(not(target_arch = "sparc64"))]
const SO_DETACH_BPF: libc::c_int = 27;
#[cfg(target_arch = "sparc64")]
const SO_ATTACH_BPF: libc::c_int = 0x34;
#[cfg(target_arch = "sparc64")]
const SO_DETACH_BPF: libc::c_int = 0x1b;

/// `setsockopt(sock, SOL_SOCKET, SO_ATTACH_BPF, &prog_fd)`: run `prog` (a
/// socket filter) on every packet `sock` receives. The socket keeps its own
/// reference to the program.
pub fn attach_bpf_to_socket(sock: impl AsFd, prog: impl AsFd) -> Result<(), SysError> {
    let prog_fd: libc::c_int = prog.as_fd().as_raw_fd();
    setsockopt_int(sock, SO_ATTACH_BPF, prog_fd, "setsockopt(SO_ATTACH_BPF)")
}

/// `setsockopt(sock, SOL_SOCKET, SO_DETACH_BPF)`: remove the filter program.
pub fn detach_bpf_from_socket(sock: impl AsFd) -> Result<(), SysError> {
    // The kernel ignores the value of SO_DETACH_BPF (= SO_DETACH_FILTER).
    setsockopt_int(sock, SO_DETACH_BPF, 0, "setsockopt(SO_DETACH_BPF)")
}

fn setsockopt_int(
    sock: impl AsFd,
    option: libc::c_int,
    value: libc::c_int,
    op: &'static str,
) -> Result<(), SysError> {
    // SAFETY: `value` is a live c_int on the stack and its exact size is passed;
    // the socket fd is borrowed, so it is open for the call.
    let ret = unsafe {
        libc::setsockopt(
            sock.as_fd().as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if ret < 0 {
        return Err(SysError::from_errno(
            op,
            std::io::Error::last_os_error(),
            None,
        ));
    }
    Ok(())
}
