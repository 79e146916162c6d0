//! `SO_ATTACH_BPF` / `SO_DETACH_BPF`: socket filter programs on a socket;
//! `TCP_CONGESTION`: the congestion control of a TCP socket (a struct_ops
//! `tcp_congestion_ops` is selected by its name).

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

/// `TCP_CA_NAME_MAX`: congestion control names are at most 15 bytes and a NUL.
const TCP_CA_NAME_MAX: usize = 16;

/// `setsockopt(sock, IPPROTO_TCP, TCP_CONGESTION, name)`: use the congestion
/// control registered as `name` (a built-in such as `cubic`, or a BPF
/// `tcp_congestion_ops` registered through struct_ops). `ENOENT` when no
/// congestion control has that name.
pub fn set_tcp_congestion(sock: impl AsFd, name: &str) -> Result<(), SysError> {
    let op = "setsockopt(TCP_CONGESTION)";
    if name.len() >= TCP_CA_NAME_MAX || name.contains('\0') {
        return Err(SysError::invalid(
            op,
            format!("congestion control name {name:?}: at most 15 bytes, no NUL"),
        ));
    }
    // SAFETY: the value is `name`'s bytes, valid for the length passed; the
    // socket fd is borrowed, so it is open for the call.
    let ret = unsafe {
        libc::setsockopt(
            sock.as_fd().as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            name.as_ptr().cast(),
            name.len() as libc::socklen_t,
        )
    };
    if ret < 0 {
        return Err(SysError::from_errno(
            op,
            std::io::Error::last_os_error(),
            Some(format!("congestion control {name:?}")),
        ));
    }
    Ok(())
}

/// `getsockopt(sock, IPPROTO_TCP, TCP_CONGESTION)`: the name of the
/// congestion control a TCP socket uses.
pub fn tcp_congestion(sock: impl AsFd) -> Result<String, SysError> {
    let mut buf = [0u8; TCP_CA_NAME_MAX];
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: `buf` is writable for `len` bytes and `len` is a live
    // socklen_t the kernel updates; the socket fd is borrowed.
    let ret = unsafe {
        libc::getsockopt(
            sock.as_fd().as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if ret < 0 {
        return Err(SysError::from_errno(
            "getsockopt(TCP_CONGESTION)",
            std::io::Error::last_os_error(),
            None,
        ));
    }
    let got = buf.get(..len as usize).unwrap_or(&buf);
    let end = got.iter().position(|&b| b == 0).unwrap_or(got.len());
    Ok(String::from_utf8_lossy(&got[..end]).into_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn congestion_control_names_are_checked_before_the_call() {
        let sock = std::fs::File::open("/dev/null").unwrap();
        for bad in ["a_name_of_16_byt", "nul\0inside"] {
            let e = super::set_tcp_congestion(&sock, bad).unwrap_err();
            assert!(e.errno().is_none(), "{bad:?}: no syscall made: {e}");
            assert!(e.to_string().contains("TCP_CONGESTION"), "{e}");
        }
    }
}
