//! `BPF_BTF_LOAD`, with the log grown on `ENOSPC` like the verifier log.

use std::os::fd::OwnedFd;

use super::attr::{self, BtfLoadAttr, BTF_LOAD_LOG_BUF};
use super::gateway::{attr_bytes, bpf_fd_retry, Cmd};
use super::prog::{grow_log, log_text, DEFAULT_LOG_SIZE, MAX_LOG_SIZE};
use super::SysError;

/// Load raw BTF (header, types, strings) into the kernel.
///
/// With `log_level` 0 the first attempt has no log and a failure is retried with
/// level 1 so that the error carries the kernel's explanation.
pub fn btf_load(btf: &[u8], log_level: u32) -> Result<OwnedFd, SysError> {
    let op = Cmd::BtfLoad.as_str();
    let size = u32::try_from(btf.len())
        .map_err(|_| SysError::invalid(op, format!("BTF of {} bytes exceeds u32", btf.len())))?;
    if size == 0 {
        return Err(SysError::invalid(op, "BTF is empty"));
    }
    let base = BtfLoadAttr {
        btf: attr::ptr_of(btf),
        btf_size: size,
        ..BtfLoadAttr::default()
    };
    if log_level == 0 {
        let mut quiet = base;
        match bpf_fd_retry(Cmd::BtfLoad, attr_bytes(&mut quiet), None, BTF_LOAD_LOG_BUF) {
            Ok(fd) => return Ok(fd),
            Err(errno) if errno.raw_os_error() == Some(libc::EPERM) => {
                return Err(SysError::from_errno(op, errno, None))
            }
            Err(_) => {}
        }
    }
    let mut log_size = DEFAULT_LOG_SIZE;
    loop {
        let mut log = vec![0u8; log_size as usize];
        let mut attr = BtfLoadAttr {
            btf_log_size: log_size,
            btf_log_level: log_level.max(1),
            ..base
        };
        let result = bpf_fd_retry(
            Cmd::BtfLoad,
            attr_bytes(&mut attr),
            Some(&mut log),
            BTF_LOAD_LOG_BUF,
        );
        match result {
            Ok(fd) => return Ok(fd),
            Err(errno) if errno.raw_os_error() == Some(libc::ENOSPC) && log_size < MAX_LOG_SIZE => {
                log_size = grow_log(log_size, attr.btf_log_true_size);
            }
            Err(errno) => {
                let text = log_text(&log);
                if text.is_empty() {
                    return Err(SysError::from_errno(op, errno, None));
                }
                let truncated = errno.raw_os_error() == Some(libc::ENOSPC);
                return Err(SysError::Verifier {
                    op,
                    name: "BTF".to_string(),
                    errno,
                    log: text,
                    log_truncated: truncated,
                });
            }
        }
    }
}
