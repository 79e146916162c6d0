//! Clocks, the bpf() time counter, worker processes and medians.

use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context as _};

extern "C" {
    // c/bpf_time.c: nanoseconds spent inside bpf() + perf_event_open() by
    // this process so far (its syscall() wraps libc's).
    fn bench_kernel_ns() -> u64;
    // c/bpf_time.c: CLOCK_THREAD_CPUTIME_ID of the calling thread, in ns.
    fn bench_thread_cpu_ns() -> u64;
}

/// CPU time of the calling thread so far, in ns.
pub fn thread_cpu_ns() -> u64 {
    // SAFETY: a C function without arguments that only calls clock_gettime.
    unsafe { bench_thread_cpu_ns() }
}

/// Time spent inside bpf() and perf_event_open() so far, in ns.
pub fn kernel_ns() -> u64 {
    // SAFETY: reads a plain global counter; the workers are single-threaded.
    unsafe { bench_kernel_ns() }
}

/// Nanoseconds since `t`.
pub fn since(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Median of `v` (upper median for even lengths); `None` when empty.
pub fn median(v: &[u64]) -> Option<u64> {
    let mut s = v.to_vec();
    s.sort_unstable();
    s.get(s.len() / 2).copied()
}

/// Geometric mean of positive ratios.
pub fn geomean(v: &[f64]) -> Option<f64> {
    let ok: Vec<f64> = v.iter().copied().filter(|r| *r > 0.0).collect();
    if ok.is_empty() {
        return None;
    }
    Some((ok.iter().map(|r| r.ln()).sum::<f64>() / ok.len() as f64).exp())
}

/// The output of one worker process: one `ok N N ...` line per iteration.
#[derive(Debug, Default, Clone)]
pub struct Rows(pub Vec<Vec<u64>>);

/// Runs a worker (`program args...`) and parses its `ok` lines; an `error`
/// line or a failed exit becomes the error message.
pub fn run_worker(program: &str, args: &[String]) -> anyhow::Result<Rows> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut rows = Vec::new();
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix("ok ") {
            let nums: Result<Vec<u64>, _> = rest.split_whitespace().map(str::parse).collect();
            rows.push(nums.with_context(|| format!("bad worker line: {line}"))?);
        } else if let Some(msg) = line.strip_prefix("error ") {
            bail!("{msg}");
        }
    }
    if !out.status.success() || rows.is_empty() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().last().unwrap_or("no output");
        bail!("worker failed ({}): {last}", out.status);
    }
    Ok(Rows(rows))
}

/// Wall time of a whole process (`program args`, output discarded).
pub fn time_process(program: &str, args: &[String]) -> anyhow::Result<u64> {
    let t = Instant::now();
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    let ns = since(t);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        bail!(
            "{} failed: {}",
            program.rsplit('/').next().unwrap_or(program),
            stderr.lines().last().unwrap_or("no message")
        );
    }
    Ok(ns)
}

/// `ns` as milliseconds with 2-3 significant decimals.
pub fn ms(ns: u64) -> String {
    let v = ns as f64 / 1e6;
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// `a / b` as "0.42x".
pub fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// A ratio cell.
pub fn ratio_cell(r: Option<f64>) -> String {
    r.map_or_else(|| "–".into(), |r| format!("{r:.2}x"))
}
