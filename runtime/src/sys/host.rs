//! Facts about the host the loader needs: possible CPUs, the page size, and the
//! `RLIMIT_MEMLOCK` bump that kernels before 5.11 need for BPF maps.

use std::sync::OnceLock;

use super::SysError;

/// Where the kernel lists the CPUs that may ever come online.
pub const POSSIBLE_CPUS_PATH: &str = "/sys/devices/system/cpu/possible";

/// Where the kernel lists the CPUs online now.
pub const ONLINE_CPUS_PATH: &str = "/sys/devices/system/cpu/online";

/// Highest CPU number accepted from a CPU list: far above any real machine
/// (the kernel's `NR_CPUS` maximum is 8192), low enough that hostile text
/// cannot make us allocate gigabytes.
pub const MAX_CPU_ID: u32 = 1 << 16;

/// Parse a kernel CPU list such as `"0-3,5,7-8\n"` into sorted, distinct CPU ids.
///
/// `origin` names the text in errors (usually the file path). Rejects empty
/// lists, reversed ranges, ids above [`MAX_CPU_ID`] and anything that is not
/// digits, `-` and `,`.
pub fn parse_cpu_list(text: &str, origin: &str) -> Result<Vec<u32>, SysError> {
    let parse_err = |offset: usize, reason: String| SysError::Parse {
        path: origin.to_string(),
        offset,
        reason,
    };
    let body = text.trim_end_matches(['\n', '\0']);
    if body.trim().is_empty() {
        return Err(parse_err(
            0,
            "expected a CPU list like \"0-3,5\", found nothing".into(),
        ));
    }
    let number = |s: &str, offset: usize| -> Result<u32, SysError> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(parse_err(
                offset,
                format!("expected a CPU number, found {s:?}"),
            ));
        }
        let n: u32 = s
            .parse()
            .map_err(|_| parse_err(offset, format!("CPU number {s:?} is out of range")))?;
        if n > MAX_CPU_ID {
            return Err(parse_err(
                offset,
                format!("CPU number {n} exceeds the limit {MAX_CPU_ID}"),
            ));
        }
        Ok(n)
    };
    let mut cpus = Vec::new();
    let mut offset = 0;
    for item in body.split(',') {
        let item_offset = offset;
        offset += item.len() + 1;
        let item_trimmed = item.trim();
        let lead = item.len() - item.trim_start().len();
        let (lo, hi) = match item_trimmed.split_once('-') {
            Some((a, b)) => (
                number(a, item_offset + lead)?,
                number(b, item_offset + lead + a.len() + 1)?,
            ),
            None => {
                let n = number(item_trimmed, item_offset + lead)?;
                (n, n)
            }
        };
        if lo > hi {
            return Err(parse_err(
                item_offset + lead,
                format!("range {lo}-{hi} is reversed"),
            ));
        }
        cpus.extend(lo..=hi);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

fn read_cpu_file(path: &str) -> Result<Vec<u32>, SysError> {
    let text = std::fs::read_to_string(path).map_err(|source| SysError::Read {
        path: path.to_string(),
        source,
    })?;
    parse_cpu_list(&text, path)
}

/// The possible CPUs (`/sys/devices/system/cpu/possible`), read on each call.
pub fn possible_cpus() -> Result<Vec<u32>, SysError> {
    read_cpu_file(POSSIBLE_CPUS_PATH)
}

/// The online CPUs (`/sys/devices/system/cpu/online`), read on each call.
pub fn online_cpus() -> Result<Vec<u32>, SysError> {
    read_cpu_file(ONLINE_CPUS_PATH)
}

/// How many CPUs are possible: the factor of per-CPU map values and the size of
/// perf event arrays. Read once per process.
pub fn num_possible_cpus() -> Result<usize, SysError> {
    static COUNT: OnceLock<Result<usize, String>> = OnceLock::new();
    COUNT
        .get_or_init(|| possible_cpus().map(|c| c.len()).map_err(|e| e.to_string()))
        .clone()
        .map_err(|reason| SysError::Parse {
            path: POSSIBLE_CPUS_PATH.to_string(),
            offset: 0,
            reason,
        })
}

/// The page size (`sysconf(_SC_PAGESIZE)`), 4096 if the call fails.
pub fn page_size() -> usize {
    static SIZE: OnceLock<usize> = OnceLock::new();
    *SIZE.get_or_init(|| {
        // SAFETY: sysconf has no memory-safety preconditions.
        let ret = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(ret).ok().filter(|&n| n > 0).unwrap_or(4096)
    })
}

/// `RLIMIT_MEMLOCK` as `(soft, hard)`; `u64::MAX` means unlimited.
pub fn memlock_rlimit() -> Result<(u64, u64), SysError> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for the call's duration.
    let ret = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) };
    if ret != 0 {
        return Err(SysError::from_errno(
            "getrlimit",
            std::io::Error::last_os_error(),
            Some("RLIMIT_MEMLOCK".into()),
        ));
    }
    #[allow(clippy::unnecessary_cast)] // rlim_t is 32-bit on some targets
    Ok((limit.rlim_cur as u64, limit.rlim_max as u64))
}

/// Set `RLIMIT_MEMLOCK` to `(soft, hard)`; `u64::MAX` means unlimited.
pub fn set_memlock_rlimit(soft: u64, hard: u64) -> Result<(), SysError> {
    let to_rlim = |v: u64| {
        if v == u64::MAX {
            libc::RLIM_INFINITY
        } else {
            v as libc::rlim_t
        }
    };
    let limit = libc::rlimit {
        rlim_cur: to_rlim(soft),
        rlim_max: to_rlim(hard),
    };
    // SAFETY: `limit` is a valid rlimit read by the kernel during the call.
    let ret = unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &limit) };
    if ret != 0 {
        return Err(SysError::from_errno(
            "setrlimit",
            std::io::Error::last_os_error(),
            Some("RLIMIT_MEMLOCK".into()),
        ));
    }
    Ok(())
}

/// Raise `RLIMIT_MEMLOCK` as libbpf does for kernels before 5.11 (which charge
/// map memory to it; harmless on newer kernels): to unlimited, or, without
/// `CAP_SYS_RESOURCE`, the soft limit up to the hard one. Returns the
/// `(soft, hard)` limit now in effect.
pub fn bump_memlock_rlimit() -> Result<(u64, u64), SysError> {
    let (soft, hard) = memlock_rlimit()?;
    #[allow(clippy::unnecessary_cast)] // rlim_t is 32-bit on some targets
    let infinity = libc::RLIM_INFINITY as u64;
    if soft == infinity {
        return Ok((soft, hard));
    }
    match set_memlock_rlimit(u64::MAX, u64::MAX) {
        Ok(()) => Ok((u64::MAX, u64::MAX)),
        Err(e) if e.is_permission_denied() => {
            // Raising the soft limit up to the hard one needs no privilege.
            set_memlock_rlimit(hard, hard)?;
            Ok((hard, hard))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,5\n", "t").unwrap(), vec![0, 1, 2, 3, 5]);
        assert_eq!(parse_cpu_list("0\n", "t").unwrap(), vec![0]);
        assert_eq!(parse_cpu_list("2,0-1", "t").unwrap(), vec![0, 1, 2]);
        for bad in [
            "",
            "\n",
            "a",
            "3-1",
            "0-",
            "-1",
            "0,,1",
            "1-99999999",
            "0-4294967296",
            "1 2",
        ] {
            assert!(parse_cpu_list(bad, "t").is_err(), "{bad:?} accepted");
        }
        let err = parse_cpu_list("0-3,x", "possible").unwrap_err().to_string();
        assert!(err.contains("possible") && err.contains("byte 4"), "{err}");
    }

    #[test]
    fn page_size_is_sane() {
        assert!(page_size().is_power_of_two());
    }
}
