//! Runs vfsstat for two one-second intervals while this test reads and
//! writes a temporary file, and checks its output.

use std::io::{Read, Seek, SeekFrom, Write};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use skelgen_test_support::kernel as kernel_or_skip;
use skelgen_test_support::matrix::{has, Feature};

/// Reads and writes a temp file until `done`.
fn file_activity(done: &AtomicBool) {
    let path = std::env::temp_dir().join(format!("vfsstat-test-{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let mut buf = [0u8; 64];
    while !done.load(Ordering::Relaxed) {
        for _ in 0..100 {
            file.seek(SeekFrom::Start(0)).unwrap();
            file.write_all(&buf).unwrap();
            file.seek(SeekFrom::Start(0)).unwrap();
            file.read_exact(&mut buf).unwrap();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = std::fs::remove_file(&path);
}

/// Runs vfsstat with `args` while `file_activity` runs.
fn run(args: &[&str]) -> std::process::Output {
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| file_activity(&done));
        let out = Command::new(env!("CARGO_BIN_EXE_vfsstat"))
            .args(args)
            .output()
            .unwrap();
        done.store(true, Ordering::Relaxed);
        out
    })
}

/// The rows of a successful run, after checking the header and that reads
/// and writes were counted.
fn check_rows(out: &std::process::Output, want_rows: usize) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");

    let mut lines = stdout.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "TIME", "READ/s", "WRITE/s", "FSYNC/s", "OPEN/s", "CREATE/s", "UNLINK/s", "MKDIR/s",
            "RMDIR/s"
        ]
    );
    let rows: Vec<Vec<u64>> = lines
        .map(|l| {
            let (time, counts) = l.split_once(": ").unwrap();
            assert_eq!(time.len(), 8, "HH:MM:SS in {l:?}");
            counts
                .split_whitespace()
                .map(|n| n.parse().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), want_rows, "{stdout}");
    for row in &rows {
        assert_eq!(row.len(), 8, "{stdout}");
        // 100 reads and 100 writes every ~10 ms: thousands per second, at least
        // hundreds on a loaded machine (or a VM without KVM).
        assert!(row[0] >= 100 && row[1] >= 100, "READ/WRITE: {stdout}");
    }
}

#[test]
fn counts_reads_and_writes_per_interval() {
    if !kernel_or_skip() {
        return;
    }
    let out = run(&["1", "2"]);
    check_rows(&out, 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // fentry or kprobes work silently where the kernel has them; elsewhere
    // the tool says what it fell back to.
    if has(Feature::Trampolines) || has(Feature::Kprobes) {
        assert!(stderr.is_empty(), "{stderr}");
    } else {
        assert!(
            stderr.contains("falling back to syscall tracepoints")
                && stderr.contains("per system call"),
            "{stderr}"
        );
    }
}

#[test]
fn each_hook_counts_where_the_kernel_has_it() {
    if !kernel_or_skip() {
        return;
    }
    for (hook, available) in [
        ("fentry", has(Feature::Trampolines)),
        ("kprobe", has(Feature::Kprobes)),
        ("tracepoint", true),
    ] {
        let out = run(&["--hook", hook, "1", "1"]);
        if available {
            check_rows(&out, 1);
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "--hook {hook} ran: {stderr}");
            let want = if hook == "fentry" {
                "fentry_vfs_"
            } else {
                "CONFIG_KPROBES"
            };
            assert!(stderr.contains(want), "--hook {hook}: {stderr}");
        }
    }
}
