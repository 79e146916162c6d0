//! runqlat: run-queue (scheduler) latency as a log2 histogram, as
//! libbpf-tools' runqlat prints it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use clap::Parser;

/// The generated skeleton (`OUT_DIR/runqlat.skel.rs`, written by build.rs).
#[allow(dead_code)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/runqlat.skel.rs"));
}
use skel::RunqlatBpf;

/// Summarize run-queue latency as a histogram.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Histogram in milliseconds instead of microseconds.
    #[arg(short, long)]
    milliseconds: bool,
    /// Print a timestamp before each histogram.
    #[arg(short = 'T', long)]
    timestamp: bool,
    /// Use raw tracepoints even where tp_btf works (the fallback path).
    #[arg(long)]
    raw_tp: bool,
    /// Seconds between outputs.
    #[arg(default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    interval: u64,
    /// Number of outputs [default: until interrupted].
    count: Option<u64>,
}

/// Loads and attaches the tp_btf programs, or the raw_tp ones.
fn start(milliseconds: bool, tp_btf: bool) -> Result<RunqlatBpf> {
    let mut open = RunqlatBpf::open()?;
    open.rodata_mut().targ_ms = milliseconds.into();
    let p = &mut open.progs;
    for prog in [
        &mut p.sched_wakeup,
        &mut p.sched_wakeup_new,
        &mut p.sched_switch,
    ] {
        prog.set_autoload(tp_btf);
    }
    for prog in [
        &mut p.sched_wakeup_raw,
        &mut p.sched_wakeup_new_raw,
        &mut p.sched_switch_raw,
    ] {
        prog.set_autoload(!tp_btf);
    }
    let mut skel = open.load()?;
    skel.attach()?;
    Ok(skel)
}

/// `HH:MM:SS` of the wall clock, in UTC.
fn timestamp() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (h, m, s) = (secs / 3600 % 24, secs / 60 % 60, secs % 60);
    format!("{h:02}:{m:02}:{s:02}")
}

/// The histogram in libbpf-tools' layout: one row per slot up to the last
/// non-empty one, stars scaled to the largest count; nothing if all are 0.
fn print_log2_hist(slots: &[u32], unit: &str) {
    let Some(last) = slots.iter().rposition(|&n| n > 0) else {
        return;
    };
    let max = slots.iter().copied().max().unwrap_or(1).max(1);
    let (indent, unit_width, width, stars) = if last <= 32 {
        (5, 19, 10, 40)
    } else {
        (15, 29, 20, 20)
    };
    println!("{:indent$}{unit:<unit_width$} : count    distribution", "");
    for (i, &count) in slots.iter().enumerate().take(last + 1) {
        let high = (1u64 << (i + 1)) - 1;
        let low = if i == 0 { 0 } else { 1u64 << i };
        let n = (u64::from(count) * stars / u64::from(max)) as usize;
        println!(
            "{low:>width$} -> {high:<width$} : {count:<8} |{:<stars$}|",
            "*".repeat(n),
            stars = stars as usize
        );
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let skel = match start(args.milliseconds, !args.raw_tp) {
        Ok(skel) => skel,
        Err(e) if !args.raw_tp => {
            eprintln!("runqlat: tp_btf unavailable ({e:#}); using raw tracepoints");
            start(args.milliseconds, false)?
        }
        Err(e) => return Err(e),
    };
    println!("Tracing run queue latency... Hit Ctrl-C to end.");

    let interval = Duration::from_secs(args.interval);
    let unit = if args.milliseconds { "msecs" } else { "usecs" };
    let mut last = skel.bss().hist()?;
    let mut printed = 0;
    while args.count.is_none_or(|n| printed < n) {
        std::thread::sleep(interval);
        let now = skel.bss().hist()?;
        let delta: Vec<u32> = now
            .iter()
            .zip(&last)
            .map(|(n, o)| n.wrapping_sub(*o))
            .collect();
        println!();
        if args.timestamp {
            println!("{:<8}", timestamp());
        }
        print_log2_hist(&delta, unit);
        last = now;
        printed += 1;
    }
    Ok(())
}
