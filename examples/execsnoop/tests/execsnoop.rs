//! Runs execsnoop while this test execs `/bin/true` (and a file that does
//! not exist), and checks that their lines appear, over the ring buffer and
//! over the perf buffer.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use skelgen_test_support::kernel as kernel_or_skip;

/// Starts execsnoop with `args`, waits for its header (it prints it once
/// attached), runs `trigger`, and returns everything it printed.
fn snoop(args: &[&str], trigger: impl FnOnce()) -> (String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_execsnoop"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut header = String::new();
    stdout.read_line(&mut header).unwrap();
    trigger();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{header}{rest}\n{stderr}");
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["PCOMM", "PID", "PPID", "RET", "ARGS"],
        "{stderr}"
    );
    (rest, stderr)
}

/// Execs `/bin/true MARKER a b`; its pid.
fn run_true(marker: &str) -> u32 {
    let mut child = Command::new("/bin/true")
        .args([marker, "a", "b"])
        .spawn()
        .unwrap();
    let pid = child.id();
    assert!(child.wait().unwrap().success());
    pid
}

/// The line of `pid` split in PCOMM, PID, PPID, RET and ARGS.
fn line_of(out: &str, pid: u32) -> Option<(String, u32, u32, i32, String)> {
    out.lines().find_map(|l| {
        let (comm, rest) = l.split_at_checked(16)?;
        let mut f = rest.split_whitespace();
        let p: u32 = f.next()?.parse().ok()?;
        let ppid = f.next()?.parse().ok()?;
        let ret = f.next()?.parse().ok()?;
        let args = f.collect::<Vec<_>>().join(" ");
        (p == pid).then(|| (comm.trim().to_string(), p, ppid, ret, args))
    })
}

#[test]
fn exec_of_true_over_the_ring_buffer() {
    if !kernel_or_skip() {
        return;
    }
    let marker = format!("skelgen-ring-{}", std::process::id());
    let mut pid = 0;
    let (out, stderr) = snoop(&["--name", "true", "--duration", "2"], || {
        pid = run_true(&marker);
    });
    let line =
        line_of(&out, pid).unwrap_or_else(|| panic!("no line for pid {pid}:\n{out}\n{stderr}"));
    assert_eq!(
        line,
        (
            "true".to_string(),
            pid,
            std::process::id(),
            0,
            format!("/bin/true {marker} a b")
        )
    );
    // --name true: every line is a `true`.
    for l in out.lines() {
        assert!(l.starts_with("true "), "{out}");
    }
}

#[test]
fn exec_and_failed_exec_over_the_perf_buffer() {
    if !kernel_or_skip() {
        return;
    }
    let marker = format!("skelgen-perf-{}", std::process::id());
    let missing = format!("/nonexistent-{marker}");
    let mut pid = 0;
    let (out, stderr) = snoop(
        &["--perf-buffer", "--fails", "--uid", "0", "--duration", "3"],
        || {
            pid = run_true(&marker);
            let err = Command::new(&missing).spawn().unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
        },
    );
    let line =
        line_of(&out, pid).unwrap_or_else(|| panic!("no line for pid {pid}:\n{out}\n{stderr}"));
    assert_eq!((line.0.as_str(), line.3), ("true", 0), "{out}");
    assert_eq!(line.4, format!("/bin/true {marker} a b"));
    // The failed exec: ENOENT, from a child of this process.
    let failed = out
        .lines()
        .find(|l| l.ends_with(&missing))
        .unwrap_or_else(|| panic!("no failed exec of {missing}:\n{out}\n{stderr}"));
    let f: Vec<&str> = failed.get(16..).unwrap().split_whitespace().collect();
    assert_eq!(
        (f[1], f[2]),
        (std::process::id().to_string().as_str(), "-2"),
        "{failed}"
    );
    assert!(!stderr.contains("lost"), "{stderr}");
}
