//! Runs runqlat briefly while threads of this test sleep and wake, and
//! checks the histograms it prints.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use skelgen_test_support::kernel as kernel_or_skip;

/// Runs runqlat with `args` while four threads sleep 1 ms and yield in a
/// loop (every wakeup is a run-queue wait); returns its stdout.
fn run_with_wakeups(args: &[&str]) -> String {
    let done = AtomicBool::new(false);
    let out = std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(1));
                    std::thread::yield_now();
                }
            });
        }
        let out = Command::new(env!("CARGO_BIN_EXE_runqlat"))
            .args(args)
            .output()
            .unwrap();
        done.store(true, Ordering::Relaxed);
        out
    });
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    stdout
}

/// One histogram: its unit and (low, high, count, stars) rows.
struct Hist {
    unit: String,
    rows: Vec<(u64, u64, u64, usize)>,
}

/// Histograms in libbpf-tools' layout:
/// `     usecs               : count    distribution` then rows like
/// `         8 -> 15         : 192      |*****   |`.
fn parse(stdout: &str) -> Vec<Hist> {
    let mut hists: Vec<Hist> = Vec::new();
    for line in stdout.lines() {
        if line.ends_with(": count    distribution") {
            let unit = line.split_whitespace().next().unwrap().to_string();
            hists.push(Hist {
                unit,
                rows: Vec::new(),
            });
        } else if let Some((range, rest)) = line.split_once(" : ") {
            let (low, high) = range.split_once(" -> ").unwrap();
            let (count, bar) = rest.split_once('|').unwrap();
            assert!(bar.ends_with('|'), "{line:?}");
            let stars = bar.chars().filter(|&c| c == '*').count();
            assert_eq!(bar.len(), 41, "40 columns and a closing bar: {line:?}");
            hists.last_mut().unwrap().rows.push((
                low.trim().parse().unwrap(),
                high.trim().parse().unwrap(),
                count.trim().parse().unwrap(),
                stars,
            ));
        }
    }
    hists
}

fn check(hist: &Hist, unit: &str, stdout: &str) {
    assert_eq!(hist.unit, unit, "{stdout}");
    let total: u64 = hist.rows.iter().map(|r| r.2).sum();
    assert!(total > 0, "{stdout}");
    let max = hist.rows.iter().map(|r| r.2).max().unwrap();
    for (i, &(low, high, count, stars)) in hist.rows.iter().enumerate() {
        let want_low = if i == 0 { 0 } else { 1 << i };
        assert_eq!((low, high), (want_low, (2 << i) - 1), "{stdout}");
        assert_eq!(stars as u64, count * 40 / max, "{stdout}");
    }
    assert!(
        hist.rows.last().unwrap().2 > 0,
        "ends at the last non-empty slot"
    );
}

#[test]
fn histogram_of_microseconds_per_interval() {
    if !kernel_or_skip() {
        return;
    }
    let stdout = run_with_wakeups(&["1", "2"]);
    assert!(stdout.starts_with("Tracing run queue latency... Hit Ctrl-C to end.\n"));
    let hists = parse(&stdout);
    assert_eq!(hists.len(), 2, "{stdout}");
    for hist in &hists {
        check(hist, "usecs", &stdout);
    }
}

#[test]
fn raw_tracepoints_and_milliseconds() {
    if !kernel_or_skip() {
        return;
    }
    let stdout = run_with_wakeups(&["--raw-tp", "--milliseconds", "1", "1"]);
    let hists = parse(&stdout);
    assert_eq!(hists.len(), 1, "{stdout}");
    check(&hists[0], "msecs", &stdout);
}
