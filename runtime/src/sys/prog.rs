//! `BPF_PROG_LOAD` (with the verifier log grown until it fits),
//! `BPF_PROG_TEST_RUN`, `BPF_PROG_BIND_MAP` and `BPF_ENABLE_STATS`.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use super::attr::{self, obj_name, ProgBindMapAttr, ProgLoadAttr, TestRunAttr, PROG_LOAD_LOG_BUF};
use super::gateway::{attr_bytes, bpf_fd, bpf_fd_retry, bpf_value, Cmd};
use super::SysError;

/// Program type numbers (`enum bpf_prog_type`) the runtime uses by name.
#[allow(missing_docs)]
pub mod prog_type {
    pub const SOCKET_FILTER: u32 = 1;
    pub const KPROBE: u32 = 2;
    pub const SCHED_CLS: u32 = 3;
    pub const TRACEPOINT: u32 = 5;
    pub const XDP: u32 = 6;
    pub const PERF_EVENT: u32 = 7;
    pub const RAW_TRACEPOINT: u32 = 17;
    pub const TRACING: u32 = 26;
    pub const SYSCALL: u32 = 31;
}

/// Size of one BPF instruction.
pub const INSN_SIZE: usize = 8;

/// Verifier log buffer of the first attempt that asks for a log.
pub const DEFAULT_LOG_SIZE: u32 = 64 * 1024;

/// Largest log buffer tried: kernels before 5.2 refuse sizes from 16 MiB up.
pub const MAX_LOG_SIZE: u32 = (u32::MAX >> 8) - 1;

/// Builder for `BPF_PROG_LOAD`. Instructions are raw bytes (8 per instruction,
/// native byte order), BTF.ext records raw bytes with their record size.
#[derive(Debug, Clone)]
pub struct ProgLoad<'a> {
    attr: ProgLoadAttr,
    name: String,
    insns: &'a [u8],
    license: &'a str,
    log_level: u32,
    log_size: u32,
    prog_btf: Option<BorrowedFd<'a>>,
    attach_prog: Option<BorrowedFd<'a>>,
    attach_btf_obj: Option<BorrowedFd<'a>>,
    func_info: Option<(&'a [u8], u32)>,
    line_info: Option<(&'a [u8], u32)>,
    core_relos: Option<(&'a [u8], u32)>,
    fd_array: Option<&'a [BorrowedFd<'a>]>,
}

/// A loaded program and, when a log was requested, the verifier's log.
#[derive(Debug)]
pub struct LoadedProg {
    /// The program fd.
    pub fd: OwnedFd,
    /// The verifier log (empty unless `log_level` was set).
    pub log: String,
}

impl<'a> ProgLoad<'a> {
    /// A program of `prog_type` from raw instruction bytes under `license`.
    pub fn new(prog_type: u32, insns: &'a [u8], license: &'a str) -> Self {
        ProgLoad {
            attr: ProgLoadAttr {
                prog_type,
                ..ProgLoadAttr::default()
            },
            name: String::new(),
            insns,
            license,
            log_level: 0,
            log_size: DEFAULT_LOG_SIZE,
            prog_btf: None,
            attach_prog: None,
            attach_btf_obj: None,
            func_info: None,
            line_info: None,
            core_relos: None,
            fd_array: None,
        }
    }

    /// Program name (truncated to 15 bytes); leave unset on kernels before 4.15.
    pub fn name(mut self, name: &str) -> Self {
        self.attr.prog_name = obj_name(name);
        self.name = name.to_string();
        self
    }

    /// `expected_attach_type`.
    pub fn expected_attach_type(mut self, attach_type: u32) -> Self {
        self.attr.expected_attach_type = attach_type;
        self
    }

    /// `prog_flags` (`BPF_F_SLEEPABLE`, `BPF_F_XDP_HAS_FRAGS`, ...).
    pub fn prog_flags(mut self, flags: u32) -> Self {
        self.attr.prog_flags = flags;
        self
    }

    /// `kern_version` (only kprobes on kernels before 5.0 check it).
    pub fn kern_version(mut self, version: u32) -> Self {
        self.attr.kern_version = version;
        self
    }

    /// `prog_ifindex` (device offload).
    pub fn ifindex(mut self, ifindex: u32) -> Self {
        self.attr.prog_ifindex = ifindex;
        self
    }

    /// Verifier log level to load with from the start (1 = verbose, 2 = very
    /// verbose, 4 = stats). With 0 (the default) the first attempt has no log and
    /// a failure is retried once with level 1 to explain it.
    pub fn log_level(mut self, level: u32) -> Self {
        self.log_level = level;
        self
    }

    /// First log buffer size; it grows on `ENOSPC` up to [`MAX_LOG_SIZE`].
    pub fn log_size(mut self, size: u32) -> Self {
        self.log_size = size.clamp(128, MAX_LOG_SIZE);
        self
    }

    /// The program's BTF object (`prog_btf_fd`).
    pub fn prog_btf(mut self, btf: BorrowedFd<'a>) -> Self {
        self.prog_btf = Some(btf);
        self
    }

    /// `bpf_func_info` records and their size.
    pub fn func_info(mut self, records: &'a [u8], rec_size: u32) -> Self {
        self.func_info = Some((records, rec_size));
        self
    }

    /// `bpf_line_info` records and their size.
    pub fn line_info(mut self, records: &'a [u8], rec_size: u32) -> Self {
        self.line_info = Some((records, rec_size));
        self
    }

    /// `bpf_core_relo` records and their size, for the kernel to apply CO-RE
    /// itself (5.17+; needs [`ProgLoad::prog_btf`] and func_info, without which
    /// the kernel ignores them).
    pub fn core_relos(mut self, records: &'a [u8], rec_size: u32) -> Self {
        self.core_relos = Some((records, rec_size));
        self
    }

    /// `attach_btf_id` (tp_btf, fentry, lsm, struct_ops, ...).
    pub fn attach_btf_id(mut self, id: u32) -> Self {
        self.attr.attach_btf_id = id;
        self
    }

    /// `attach_btf_obj_fd`: the module BTF holding `attach_btf_id`.
    pub fn attach_btf_obj(mut self, fd: BorrowedFd<'a>) -> Self {
        self.attach_btf_obj = Some(fd);
        self
    }

    /// `attach_prog_fd`: the program an fentry/freplace program attaches to.
    pub fn attach_prog(mut self, fd: BorrowedFd<'a>) -> Self {
        self.attach_prog = Some(fd);
        self
    }

    /// `fd_array`: fds that instructions refer to by index.
    pub fn fd_array(mut self, fds: &'a [BorrowedFd<'a>]) -> Self {
        self.fd_array = Some(fds);
        self
    }

    fn op() -> &'static str {
        Cmd::ProgLoad.as_str()
    }

    fn records(
        &self,
        what: &str,
        recs: Option<(&'a [u8], u32)>,
    ) -> Result<(u64, u32, u32), SysError> {
        let Some((bytes, rec_size)) = recs else {
            return Ok((0, 0, 0));
        };
        if bytes.is_empty() {
            return Ok((0, 0, 0));
        }
        if rec_size == 0 || bytes.len() % rec_size as usize != 0 {
            return Err(SysError::invalid(
                Self::op(),
                format!(
                    "{what}: {} bytes is not a whole number of {rec_size}-byte records",
                    bytes.len()
                ),
            ));
        }
        let count = u32::try_from(bytes.len() / rec_size as usize)
            .map_err(|_| SysError::invalid(Self::op(), format!("{what}: too many records")))?;
        Ok((attr::ptr_of(bytes), rec_size, count))
    }

    /// Load the program: `EAGAIN`/`EINTR` retried, the log grown on `ENOSPC`, a
    /// failure explained by the verifier log in [`SysError::Verifier`].
    pub fn load(&self) -> Result<LoadedProg, SysError> {
        let op = Self::op();
        if self.insns.is_empty() || self.insns.len() % INSN_SIZE != 0 {
            return Err(SysError::invalid(
                op,
                format!(
                    "program `{}`: {} instruction bytes is not a non-zero multiple of 8",
                    self.name,
                    self.insns.len()
                ),
            ));
        }
        let license = CString::new(self.license).map_err(|_| {
            SysError::invalid(
                op,
                format!("license {:?} contains a NUL byte", self.license),
            )
        })?;
        let fd_array: Option<Vec<i32>> = self
            .fd_array
            .map(|fds| fds.iter().map(|fd| fd.as_raw_fd()).collect());
        let mut attr = self.attr;
        attr.insn_cnt = u32::try_from(self.insns.len() / INSN_SIZE)
            .map_err(|_| SysError::invalid(op, "too many instructions"))?;
        attr.insns = self.insns.as_ptr() as u64;
        attr.license = license.as_ptr() as u64;
        attr.prog_btf_fd = self.prog_btf.map_or(0, |fd| fd.as_raw_fd() as u32);
        attr.attach_prog_or_btf_obj_fd = match (self.attach_prog, self.attach_btf_obj) {
            (Some(_), Some(_)) => {
                return Err(SysError::invalid(
                    op,
                    "attach_prog_fd and attach_btf_obj_fd are exclusive",
                ))
            }
            (Some(fd), None) | (None, Some(fd)) => fd.as_raw_fd() as u32,
            (None, None) => 0,
        };
        (attr.func_info, attr.func_info_rec_size, attr.func_info_cnt) =
            self.records("func_info", self.func_info)?;
        (attr.line_info, attr.line_info_rec_size, attr.line_info_cnt) =
            self.records("line_info", self.line_info)?;
        (attr.core_relos, attr.core_relo_rec_size, attr.core_relo_cnt) =
            self.records("core_relos", self.core_relos)?;
        attr.fd_array = fd_array.as_ref().map_or(0, |fds| {
            if fds.is_empty() {
                0
            } else {
                fds.as_ptr() as u64
            }
        });

        if self.log_level == 0 {
            let mut quiet = attr;
            match bpf_fd_retry(
                Cmd::ProgLoad,
                attr_bytes(&mut quiet),
                None,
                PROG_LOAD_LOG_BUF,
            ) {
                Ok(fd) => {
                    return Ok(LoadedProg {
                        fd,
                        log: String::new(),
                    })
                }
                // No log can explain a missing privilege.
                Err(errno) if errno.raw_os_error() == Some(libc::EPERM) => {
                    return Err(SysError::from_errno(
                        op,
                        errno,
                        Some(format!("program `{}`", self.name)),
                    ))
                }
                Err(_) => {}
            }
        }
        self.load_with_log(attr, self.log_level.max(1))
    }

    fn load_with_log(&self, mut attr: ProgLoadAttr, level: u32) -> Result<LoadedProg, SysError> {
        let op = Self::op();
        let mut size = self.log_size;
        loop {
            let mut log = vec![0u8; size as usize];
            attr.log_level = level;
            attr.log_size = size;
            attr.log_true_size = 0;
            let mut this = attr;
            let result = bpf_fd_retry(
                Cmd::ProgLoad,
                attr_bytes(&mut this),
                Some(&mut log),
                PROG_LOAD_LOG_BUF,
            );
            let text = log_text(&log);
            match result {
                Ok(fd) => return Ok(LoadedProg { fd, log: text }),
                Err(errno) if errno.raw_os_error() == Some(libc::ENOSPC) && size < MAX_LOG_SIZE => {
                    size = grow_log(size, this.log_true_size);
                }
                // Nothing logged: the failure came before the verifier (privileges, limits).
                Err(errno) if text.is_empty() => {
                    return Err(SysError::from_errno(
                        op,
                        errno,
                        Some(format!("program `{}`", self.name)),
                    ))
                }
                Err(errno) => {
                    let truncated = errno.raw_os_error() == Some(libc::ENOSPC);
                    return Err(SysError::Verifier {
                        op,
                        name: self.name.clone(),
                        errno,
                        log: text,
                        log_truncated: truncated,
                    });
                }
            }
        }
    }
}

/// The next log size after `ENOSPC`: what the kernel said it needs
/// (`log_true_size`, 6.4+), else four times the current one; capped.
pub(crate) fn grow_log(current: u32, true_size: u32) -> u32 {
    let next = if true_size > current {
        true_size
    } else {
        current.saturating_mul(4)
    };
    next.max(current.saturating_add(1)).min(MAX_LOG_SIZE)
}

/// The text of a log buffer, up to its NUL.
pub(crate) fn log_text(buf: &[u8]) -> String {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(buf.get(..end).unwrap_or_default()).into_owned()
}

/// Inputs of `BPF_PROG_TEST_RUN`.
#[derive(Debug, Default)]
pub struct TestRun<'a> {
    data_in: &'a [u8],
    data_out: Option<&'a mut [u8]>,
    ctx_in: &'a [u8],
    ctx_out: Option<&'a mut [u8]>,
    repeat: u32,
    flags: u32,
    cpu: u32,
    batch_size: u32,
}

/// Results of `BPF_PROG_TEST_RUN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestRunOutput {
    /// The program's return value.
    pub retval: u32,
    /// Average run time in ns.
    pub duration: u32,
    /// Bytes of output data (may exceed the buffer when `ENOSPC` was returned).
    pub data_size_out: u32,
    /// Bytes of output context.
    pub ctx_size_out: u32,
}

impl<'a> TestRun<'a> {
    /// An empty run (no data, no context, repeat 1).
    pub fn new() -> Self {
        Self::default()
    }
    /// Input packet / data.
    pub fn data_in(mut self, data: &'a [u8]) -> Self {
        self.data_in = data;
        self
    }
    /// Buffer for the output packet.
    pub fn data_out(mut self, out: &'a mut [u8]) -> Self {
        self.data_out = Some(out);
        self
    }
    /// Input context.
    pub fn ctx_in(mut self, ctx: &'a [u8]) -> Self {
        self.ctx_in = ctx;
        self
    }
    /// Buffer for the output context.
    pub fn ctx_out(mut self, out: &'a mut [u8]) -> Self {
        self.ctx_out = Some(out);
        self
    }
    /// Run this many times (0 means 1).
    pub fn repeat(mut self, repeat: u32) -> Self {
        self.repeat = repeat;
        self
    }
    /// `flags` (`BPF_F_TEST_RUN_ON_CPU`, `BPF_F_TEST_XDP_LIVE_FRAMES`).
    pub fn flags(mut self, flags: u32) -> Self {
        self.flags = flags;
        self
    }
    /// CPU to run on (with `BPF_F_TEST_RUN_ON_CPU`).
    pub fn cpu(mut self, cpu: u32) -> Self {
        self.cpu = cpu;
        self
    }
    /// `batch_size` (XDP live frames).
    pub fn batch_size(mut self, size: u32) -> Self {
        self.batch_size = size;
        self
    }

    /// Run `prog` once per [`TestRun::repeat`].
    pub fn run(self, prog: impl AsFd) -> Result<TestRunOutput, SysError> {
        let op = Cmd::ProgTestRun.as_str();
        let size = |what: &str, len: usize| {
            u32::try_from(len)
                .map_err(|_| SysError::invalid(op, format!("{what} of {len} bytes exceeds u32")))
        };
        let TestRun {
            data_in,
            data_out,
            ctx_in,
            ctx_out,
            repeat,
            flags,
            cpu,
            batch_size,
        } = self;
        // An output pointer with size 0 lets the kernel copy without bound:
        // empty output buffers are passed as NULL.
        let (data_out_ptr, data_out_len) = match data_out {
            Some(out) if !out.is_empty() => (out.as_mut_ptr() as u64, size("data_out", out.len())?),
            _ => (0, 0),
        };
        let (ctx_out_ptr, ctx_out_len) = match ctx_out {
            Some(out) if !out.is_empty() => (out.as_mut_ptr() as u64, size("ctx_out", out.len())?),
            _ => (0, 0),
        };
        let mut attr = TestRunAttr {
            prog_fd: prog.as_fd().as_raw_fd() as u32,
            data_size_in: size("data_in", data_in.len())?,
            data_size_out: data_out_len,
            data_in: attr::ptr_of(data_in),
            data_out: data_out_ptr,
            repeat,
            ctx_size_in: size("ctx_in", ctx_in.len())?,
            ctx_size_out: ctx_out_len,
            ctx_in: attr::ptr_of(ctx_in),
            ctx_out: ctx_out_ptr,
            flags,
            cpu,
            batch_size,
            ..TestRunAttr::default()
        };
        bpf_value(Cmd::ProgTestRun, attr_bytes(&mut attr), None).map_err(|errno| {
            SysError::from_errno(
                op,
                errno,
                Some(format!(
                    "data_size_out {}, ctx_size_out {}",
                    attr.data_size_out, attr.ctx_size_out
                )),
            )
        })?;
        Ok(TestRunOutput {
            retval: attr.retval,
            duration: attr.duration,
            data_size_out: attr.data_size_out,
            ctx_size_out: attr.ctx_size_out,
        })
    }
}

/// `BPF_PROG_BIND_MAP`: keep `map` alive as long as `prog` (maps used only
/// through `fd_array` or by user space, like `.rodata` metadata).
pub fn prog_bind_map(prog: impl AsFd, map: impl AsFd) -> Result<(), SysError> {
    let mut attr = ProgBindMapAttr {
        prog_fd: prog.as_fd().as_raw_fd() as u32,
        map_fd: map.as_fd().as_raw_fd() as u32,
        ..ProgBindMapAttr::default()
    };
    bpf_value(Cmd::ProgBindMap, attr_bytes(&mut attr), None)
        .map(drop)
        .map_err(|errno| SysError::from_errno(Cmd::ProgBindMap.as_str(), errno, None))
}

/// `BPF_STATS_RUN_TIME`: count run time and runs of every program.
pub const STATS_RUN_TIME: u32 = 0;

/// `BPF_ENABLE_STATS`: statistics stay on while the returned fd is open.
pub fn enable_stats(stats_type: u32) -> Result<OwnedFd, SysError> {
    let mut attr = super::attr::EnableStatsAttr {
        stats_type,
        ..Default::default()
    };
    bpf_fd(Cmd::EnableStats, attr_bytes(&mut attr), None)
        .map_err(|errno| SysError::from_errno(Cmd::EnableStats.as_str(), errno, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_growth() {
        assert_eq!(grow_log(1000, 0), 4000);
        assert_eq!(grow_log(1000, 123_456), 123_456);
        assert_eq!(grow_log(MAX_LOG_SIZE - 1, 0), MAX_LOG_SIZE);
        assert_eq!(grow_log(1000, 10), 4000);
        assert_eq!(grow_log(MAX_LOG_SIZE, 0), MAX_LOG_SIZE);
    }

    #[test]
    fn log_text_stops_at_nul() {
        assert_eq!(log_text(b"abc\0def"), "abc");
        assert_eq!(log_text(b"abc"), "abc");
    }
}
