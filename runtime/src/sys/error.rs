//! The error type of the syscall layer.

use std::io;

/// An error from the syscall layer: the kernel refused a call, an argument was
/// rejected before the call, or a kernel-provided file could not be read or parsed.
///
/// The `#[source]` of the syscall variants is the `errno` as an [`io::Error`];
/// the messages name the operation (`"BPF_MAP_CREATE"`) and never repeat the
/// cause, which a reporter prints from the chain.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SysError {
    /// The kernel returned an error for `op`.
    #[error("{op} failed{}", detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Syscall {
        /// The operation, e.g. `"BPF_MAP_CREATE"` or `"perf_event_open"`.
        op: &'static str,
        /// The errno.
        #[source]
        errno: io::Error,
        /// What was being done, e.g. the map name, when known.
        detail: Option<String>,
    },
    /// The kernel returned `EPERM`: the caller lacks the privileges.
    #[error(
        "{op} is not permitted{}: either the caller lacks privileges (run as root, or \
         grant CAP_BPF plus CAP_PERFMON for tracing or CAP_NET_ADMIN for networking; \
         kernels before 5.11 also charge BPF memory to RLIMIT_MEMLOCK, see \
         `bump_memlock_rlimit`) or the object refuses the change (e.g. a frozen map)",
        detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default()
    )]
    PermissionDenied {
        /// The operation, e.g. `"BPF_PROG_LOAD"`.
        op: &'static str,
        /// The errno (`EPERM`).
        #[source]
        errno: io::Error,
        /// What was being done, when known.
        detail: Option<String>,
    },
    /// `BPF_PROG_LOAD` (or `BPF_BTF_LOAD`) failed and the kernel explained why in
    /// `log` (the verifier log).
    #[error(
        "{op} of `{name}` was rejected{}; kernel log{}:\n{}",
        if *log_truncated { " (log truncated)" } else { "" },
        tail_note(log),
        log_tail(log)
    )]
    Verifier {
        /// `"BPF_PROG_LOAD"` or `"BPF_BTF_LOAD"`.
        op: &'static str,
        /// The program name as given to the loader (may be empty; `"BTF"` for
        /// `BPF_BTF_LOAD`).
        name: String,
        /// The errno (`EACCES`, `EINVAL`, `E2BIG`, ...).
        #[source]
        errno: io::Error,
        /// The whole verifier log.
        log: String,
        /// The log did not fit in the largest buffer tried.
        log_truncated: bool,
    },
    /// An argument was rejected before making the call.
    #[error("invalid argument to {op}: {reason}")]
    InvalidArgument {
        /// The operation the argument was for.
        op: &'static str,
        /// What was wrong and what was expected.
        reason: String,
    },
    /// A kernel-provided text file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A kernel-provided text file did not have the expected format.
    #[error("cannot parse {path} at byte {offset}: {reason}")]
    Parse {
        /// The file (or a description of the text's origin).
        path: String,
        /// Byte offset in the text where the problem starts.
        offset: usize,
        /// What was expected.
        reason: String,
    },
}

/// How many lines of a verifier log the error message shows; the whole log stays
/// available through [`SysError::verifier_log`].
const LOG_TAIL_LINES: usize = 40;

fn log_tail(log: &str) -> &str {
    let trimmed = log.trim_end_matches(['\n', '\0']);
    match trimmed.rmatch_indices('\n').nth(LOG_TAIL_LINES - 1) {
        Some((at, _)) => trimmed.get(at + 1..).unwrap_or(trimmed),
        None => trimmed,
    }
}

fn tail_note(log: &str) -> String {
    let lines = log.trim_end_matches(['\n', '\0']).lines().count();
    if lines > LOG_TAIL_LINES {
        format!(" (last {LOG_TAIL_LINES} of {lines} lines)")
    } else {
        String::new()
    }
}

impl SysError {
    /// Build the error for a failed syscall, mapping `EPERM` to
    /// [`SysError::PermissionDenied`].
    pub(crate) fn from_errno(op: &'static str, errno: io::Error, detail: Option<String>) -> Self {
        if errno.raw_os_error() == Some(libc::EPERM) {
            SysError::PermissionDenied { op, errno, detail }
        } else {
            SysError::Syscall { op, errno, detail }
        }
    }

    pub(crate) fn invalid(op: &'static str, reason: impl Into<String>) -> Self {
        SysError::InvalidArgument {
            op,
            reason: reason.into(),
        }
    }

    /// The operation that failed, e.g. `"BPF_MAP_CREATE"`.
    pub fn op(&self) -> &'static str {
        match self {
            SysError::Syscall { op, .. }
            | SysError::PermissionDenied { op, .. }
            | SysError::Verifier { op, .. }
            | SysError::InvalidArgument { op, .. } => op,
            SysError::Read { .. } | SysError::Parse { .. } => "read",
        }
    }

    /// The errno the kernel returned, if this error came from a syscall.
    pub fn errno(&self) -> Option<i32> {
        match self {
            SysError::Syscall { errno, .. }
            | SysError::PermissionDenied { errno, .. }
            | SysError::Verifier { errno, .. } => errno.raw_os_error(),
            SysError::Read { source, .. } => source.raw_os_error(),
            SysError::InvalidArgument { .. } | SysError::Parse { .. } => None,
        }
    }

    /// The verifier log carried by a `BPF_PROG_LOAD` (or `BPF_BTF_LOAD`) failure.
    pub fn verifier_log(&self) -> Option<&str> {
        match self {
            SysError::Verifier { log, .. } => Some(log),
            _ => None,
        }
    }

    /// Whether the kernel said `EPERM`.
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, SysError::PermissionDenied { .. })
    }
}
