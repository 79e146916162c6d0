//! `perf_event_open(2)` with a typed `perf_event_attr` builder, the perf event
//! ioctls BPF needs, and the sysfs/tracefs lookups that feed them.

use std::ffi::CStr;
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use super::gateway::owned_fd_from_ret;
use super::SysError;

/// `PERF_TYPE_HARDWARE`.
pub const PERF_TYPE_HARDWARE: u32 = 0;
/// `PERF_TYPE_SOFTWARE`.
pub const PERF_TYPE_SOFTWARE: u32 = 1;
/// `PERF_TYPE_TRACEPOINT`.
pub const PERF_TYPE_TRACEPOINT: u32 = 2;
/// `PERF_COUNT_SW_CPU_CLOCK`.
pub const PERF_COUNT_SW_CPU_CLOCK: u64 = 0;
/// `PERF_COUNT_SW_BPF_OUTPUT`.
pub const PERF_COUNT_SW_BPF_OUTPUT: u64 = 10;
/// `PERF_SAMPLE_RAW`.
pub const PERF_SAMPLE_RAW: u64 = 1 << 10;
/// `PERF_FLAG_FD_CLOEXEC`, always added by [`perf_event_open`].
pub const PERF_FLAG_FD_CLOEXEC: u64 = 1 << 3;

/// `PERF_ATTR_SIZE_VER8`: the struct below.
const ATTR_SIZE: u32 = 136;

/// `struct perf_event_attr` up to `config3`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct RawPerfEventAttr {
    type_: u32,
    size: u32,
    config: u64,
    sample_period_or_freq: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events_or_watermark: u32,
    bp_type: u32,
    config1: u64,
    config2: u64,
    branch_sample_type: u64,
    sample_regs_user: u64,
    sample_stack_user: u32,
    clockid: i32,
    sample_regs_intr: u64,
    aux_watermark: u32,
    sample_max_stack: u16,
    reserved_2: u16,
    aux_sample_size: u32,
    aux_action: u32,
    sig_data: u64,
    config3: u64,
}

const _: () = assert!(std::mem::size_of::<RawPerfEventAttr>() == ATTR_SIZE as usize);

/// Bits of the `perf_event_attr` flag word.
mod bit {
    pub const DISABLED: u64 = 1 << 0;
    pub const INHERIT: u64 = 1 << 1;
    pub const EXCLUDE_USER: u64 = 1 << 4;
    pub const EXCLUDE_KERNEL: u64 = 1 << 5;
    pub const EXCLUDE_HV: u64 = 1 << 6;
    pub const FREQ: u64 = 1 << 10;
    pub const WATERMARK: u64 = 1 << 14;
}

/// A `perf_event_attr`; `'a` covers strings that kprobe/uprobe attrs point to.
#[derive(Debug, Clone, Copy)]
pub struct PerfEventAttr<'a> {
    raw: RawPerfEventAttr,
    _strings: PhantomData<&'a CStr>,
}

impl<'a> PerfEventAttr<'a> {
    /// An attr of `type_` with `config`; everything else zero.
    pub fn new(type_: u32, config: u64) -> Self {
        PerfEventAttr {
            raw: RawPerfEventAttr {
                type_,
                size: ATTR_SIZE,
                config,
                ..RawPerfEventAttr::default()
            },
            _strings: PhantomData,
        }
    }

    /// A tracepoint by its tracefs id, sampling every hit.
    pub fn tracepoint(id: u64) -> Self {
        Self::new(PERF_TYPE_TRACEPOINT, id)
            .sample_period(1)
            .wakeup_events(1)
    }

    /// A software CPU clock sampling at `freq` Hz (perf_event programs).
    pub fn cpu_clock(freq: u64) -> Self {
        Self::new(PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK).freq(freq)
    }

    /// The `bpf_perf_event_output` target of a perf buffer: raw samples, waking
    /// the reader every `wakeup_events` samples.
    pub fn bpf_output(wakeup_events: u32) -> Self {
        Self::new(PERF_TYPE_SOFTWARE, PERF_COUNT_SW_BPF_OUTPUT)
            .sample_type(PERF_SAMPLE_RAW)
            .sample_period(1)
            .wakeup_events(wakeup_events.max(1))
    }

    /// A kprobe through the kprobe PMU (`pmu_type` from [`pmu_type`]`("kprobe")`):
    /// `func` + `offset`, or a return probe with `retprobe_bit` set (from
    /// [`pmu_retprobe_bit`]).
    pub fn kprobe(pmu_type: u32, func: &'a CStr, offset: u64, retprobe_bit: Option<u32>) -> Self {
        let config = retprobe_bit.map_or(0, |b| 1u64.checked_shl(b).unwrap_or(0));
        let mut attr = Self::new(pmu_type, config)
            .sample_period(1)
            .wakeup_events(1);
        attr.raw.config1 = func.as_ptr() as u64;
        attr.raw.config2 = offset;
        attr
    }

    /// A kprobe on a raw kernel address (`func` NULL).
    pub fn kprobe_addr(pmu_type: u32, addr: u64, retprobe_bit: Option<u32>) -> Self {
        let config = retprobe_bit.map_or(0, |b| 1u64.checked_shl(b).unwrap_or(0));
        let mut attr = Self::new(pmu_type, config)
            .sample_period(1)
            .wakeup_events(1);
        attr.raw.config2 = addr;
        attr
    }

    /// A uprobe through the uprobe PMU: file `path` at file `offset`, with an
    /// optional USDT semaphore `ref_ctr_offset`.
    pub fn uprobe(
        pmu_type: u32,
        path: &'a CStr,
        offset: u64,
        ref_ctr_offset: u64,
        retprobe_bit: Option<u32>,
    ) -> Self {
        let retprobe = retprobe_bit.map_or(0, |b| 1u64.checked_shl(b).unwrap_or(0));
        // PERF_UPROBE_REF_CTR_OFFSET_SHIFT
        let config = retprobe | (ref_ctr_offset << 32);
        let mut attr = Self::new(pmu_type, config)
            .sample_period(1)
            .wakeup_events(1);
        attr.raw.config1 = path.as_ptr() as u64;
        attr.raw.config2 = offset;
        attr
    }

    /// `sample_period` (clears `freq`).
    pub fn sample_period(mut self, period: u64) -> Self {
        self.raw.sample_period_or_freq = period;
        self.raw.flags &= !bit::FREQ;
        self
    }

    /// `sample_freq` (sets `freq`).
    pub fn freq(mut self, freq: u64) -> Self {
        self.raw.sample_period_or_freq = freq;
        self.raw.flags |= bit::FREQ;
        self
    }

    /// `sample_type`.
    pub fn sample_type(mut self, sample_type: u64) -> Self {
        self.raw.sample_type = sample_type;
        self
    }

    /// `wakeup_events` (clears `watermark`).
    pub fn wakeup_events(mut self, n: u32) -> Self {
        self.raw.wakeup_events_or_watermark = n;
        self.raw.flags &= !bit::WATERMARK;
        self
    }

    /// `wakeup_watermark` in bytes (sets `watermark`).
    pub fn wakeup_watermark(mut self, bytes: u32) -> Self {
        self.raw.wakeup_events_or_watermark = bytes;
        self.raw.flags |= bit::WATERMARK;
        self
    }

    fn flag(mut self, bit: u64, on: bool) -> Self {
        if on {
            self.raw.flags |= bit;
        } else {
            self.raw.flags &= !bit;
        }
        self
    }

    /// `disabled`.
    pub fn disabled(self, on: bool) -> Self {
        self.flag(bit::DISABLED, on)
    }
    /// `inherit`.
    pub fn inherit(self, on: bool) -> Self {
        self.flag(bit::INHERIT, on)
    }
    /// `exclude_user`.
    pub fn exclude_user(self, on: bool) -> Self {
        self.flag(bit::EXCLUDE_USER, on)
    }
    /// `exclude_kernel`.
    pub fn exclude_kernel(self, on: bool) -> Self {
        self.flag(bit::EXCLUDE_KERNEL, on)
    }
    /// `exclude_hv`.
    pub fn exclude_hv(self, on: bool) -> Self {
        self.flag(bit::EXCLUDE_HV, on)
    }
}

/// `perf_event_open(attr, pid, cpu, group_fd, flags | PERF_FLAG_FD_CLOEXEC)`.
pub fn perf_event_open(
    attr: &PerfEventAttr<'_>,
    pid: i32,
    cpu: i32,
    group: Option<BorrowedFd<'_>>,
    flags: u64,
) -> Result<OwnedFd, SysError> {
    let op = "perf_event_open";
    let mut raw = attr.raw;
    let group_fd = group.map_or(-1, |fd| fd.as_raw_fd());
    // SAFETY: `raw` is a complete perf_event_attr of `size` bytes; the string
    // pointers in config1 (kprobe/uprobe) come from `&'a CStr`s that `attr`
    // borrows, so they are NUL-terminated and live for the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &mut raw as *mut RawPerfEventAttr,
            pid as libc::c_long,
            cpu as libc::c_long,
            group_fd as libc::c_long,
            (flags | PERF_FLAG_FD_CLOEXEC) as libc::c_ulong,
        )
    };
    let detail = || {
        Some(format!(
            "type {}, config {:#x}, pid {pid}, cpu {cpu}",
            raw.type_, raw.config
        ))
    };
    if ret < 0 {
        return Err(SysError::from_errno(
            op,
            std::io::Error::last_os_error(),
            detail(),
        ));
    }
    #[allow(clippy::useless_conversion)] // c_long is i32 on 32-bit targets
    owned_fd_from_ret(i64::from(ret)).map_err(|errno| SysError::from_errno(op, errno, detail()))
}

/// `_IO('$', nr)` / `_IOW('$', nr, u32)` for this architecture.
mod ioc {
    #[cfg(any(
        target_arch = "powerpc",
        target_arch = "powerpc64",
        target_arch = "mips",
        target_arch = "mips64",
        target_arch = "sparc64"
    ))]
    const WRITE: u64 = 4;
    #[cfg(any(
        target_arch = "powerpc",
        target_arch = "powerpc64",
        target_arch = "mips",
        target_arch = "mips64",
        target_arch = "sparc64"
    ))]
    const DIR_SHIFT: u64 = 29;
    #[cfg(not(any(
        target_arch = "powerpc",
        target_arch = "powerpc64",
        target_arch = "mips",
        target_arch = "mips64",
        target_arch = "sparc64"
    )))]
    const WRITE: u64 = 1;
    #[cfg(not(any(
        target_arch = "powerpc",
        target_arch = "powerpc64",
        target_arch = "mips",
        target_arch = "mips64",
        target_arch = "sparc64"
    )))]
    const DIR_SHIFT: u64 = 30;
    const TYPE: u64 = b'$' as u64;

    pub const ENABLE: u64 = TYPE << 8;
    pub const DISABLE: u64 = (TYPE << 8) | 1;
    pub const SET_BPF: u64 = (WRITE << DIR_SHIFT) | (4 << 16) | (TYPE << 8) | 8;
}

fn perf_ioctl(
    fd: BorrowedFd<'_>,
    request: u64,
    arg: libc::c_ulong,
    op: &'static str,
) -> Result<(), SysError> {
    // SAFETY: the perf ioctls used here take an integer argument (or none); the
    // fd is borrowed and open.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, arg) };
    if ret < 0 {
        return Err(SysError::from_errno(
            op,
            std::io::Error::last_os_error(),
            None,
        ));
    }
    Ok(())
}

/// `PERF_EVENT_IOC_SET_BPF`: run `prog` on each event (the pre-link attach path).
pub fn perf_event_set_bpf(perf: impl AsFd, prog: impl AsFd) -> Result<(), SysError> {
    let prog_fd = prog.as_fd().as_raw_fd() as libc::c_ulong;
    perf_ioctl(
        perf.as_fd(),
        ioc::SET_BPF,
        prog_fd,
        "PERF_EVENT_IOC_SET_BPF",
    )
}

/// `PERF_EVENT_IOC_ENABLE`.
pub fn perf_event_enable(perf: impl AsFd) -> Result<(), SysError> {
    perf_ioctl(perf.as_fd(), ioc::ENABLE, 0, "PERF_EVENT_IOC_ENABLE")
}

/// `PERF_EVENT_IOC_DISABLE`.
pub fn perf_event_disable(perf: impl AsFd) -> Result<(), SysError> {
    perf_ioctl(perf.as_fd(), ioc::DISABLE, 0, "PERF_EVENT_IOC_DISABLE")
}

fn read_trimmed(path: &str) -> Result<String, SysError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|source| SysError::Read {
            path: path.to_string(),
            source,
        })
}

fn parse_u32(path: &str, text: &str, offset: usize) -> Result<u32, SysError> {
    text.parse().map_err(|_| SysError::Parse {
        path: path.to_string(),
        offset,
        reason: format!("expected a decimal number, found {text:?}"),
    })
}

/// The dynamic PMU type of `pmu` (`"kprobe"`, `"uprobe"`) from
/// `/sys/bus/event_source/devices/<pmu>/type`.
pub fn pmu_type(pmu: &str) -> Result<u32, SysError> {
    let path = format!("/sys/bus/event_source/devices/{pmu}/type");
    let text = read_trimmed(&path)?;
    parse_u32(&path, &text, 0)
}

/// The config bit that makes a `pmu` probe a return probe, from
/// `/sys/bus/event_source/devices/<pmu>/format/retprobe` (`"config:0"`).
pub fn pmu_retprobe_bit(pmu: &str) -> Result<u32, SysError> {
    let path = format!("/sys/bus/event_source/devices/{pmu}/format/retprobe");
    let text = read_trimmed(&path)?;
    let bit = text
        .strip_prefix("config:")
        .ok_or_else(|| SysError::Parse {
            path: path.clone(),
            offset: 0,
            reason: format!("expected \"config:<bit>\", found {text:?}"),
        })?;
    parse_u32(&path, bit, "config:".len())
}

/// Tracefs mount points tried in order.
pub const TRACEFS_ROOTS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// The id of tracepoint `category:name` from tracefs `events/<category>/<name>/id`.
pub fn tracepoint_id(category: &str, name: &str) -> Result<u64, SysError> {
    let valid = |s: &str| !s.is_empty() && !s.contains('/') && s != "." && s != "..";
    if !valid(category) || !valid(name) {
        return Err(SysError::invalid(
            "tracepoint id",
            format!("bad tracepoint {category:?}:{name:?}"),
        ));
    }
    let mut last = None;
    for root in TRACEFS_ROOTS {
        let path = format!("{root}/events/{category}/{name}/id");
        match read_trimmed(&path) {
            Ok(text) => {
                return text.parse().map_err(|_| SysError::Parse {
                    path,
                    offset: 0,
                    reason: format!("expected a decimal id, found {text:?}"),
                })
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| SysError::invalid("tracepoint id", "no tracefs root")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers() {
        #[cfg(target_arch = "x86_64")]
        {
            assert_eq!(ioc::ENABLE, 0x2400);
            assert_eq!(ioc::DISABLE, 0x2401);
            assert_eq!(ioc::SET_BPF, 0x4004_2408);
        }
    }

    #[test]
    fn attr_builders() {
        let a = PerfEventAttr::bpf_output(1);
        assert_eq!(a.raw.sample_type, PERF_SAMPLE_RAW);
        assert_eq!(a.raw.config, PERF_COUNT_SW_BPF_OUTPUT);
        let f = PerfEventAttr::cpu_clock(49);
        assert_eq!(f.raw.flags & bit::FREQ, bit::FREQ);
        let path = c"/bin/true";
        let u = PerfEventAttr::uprobe(9, path, 0x40, 0x10, Some(0));
        assert_eq!(u.raw.config, 1 | (0x10 << 32));
        assert_eq!(u.raw.config2, 0x40);
    }
}
