//! What the project's tests share.
//!
//! Kernel tests need root (and tracefs, bpffs). Where they cannot run they
//! skip with a printed reason, except when `SKELGEN_REQUIRE_KERNEL=1` (set
//! by `.ci/run`), where a skip is a failure.
#![warn(missing_docs)]

use std::path::{Path, PathBuf};

pub mod matrix;
pub mod usdt;
use std::sync::{Mutex, MutexGuard};

/// Whether the process runs with uid 0.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .is_some_and(|l| l.split_whitespace().nth(1) == Some("0"))
    })
}

/// Whether skips are failures (`SKELGEN_REQUIRE_KERNEL=1`).
pub fn skips_are_failures() -> bool {
    std::env::var("SKELGEN_REQUIRE_KERNEL").is_ok_and(|v| v == "1")
}

/// `true` if `available`; otherwise prints why the test skips and returns
/// `false`, or panics when skips are failures.
pub fn require(available: bool, reason: &str) -> bool {
    if available {
        return true;
    }
    if skips_are_failures() {
        panic!("required test cannot run: {reason}");
    }
    eprintln!("skipped: {reason}");
    false
}

/// Gate for tests that load BPF programs: root, with tracefs and bpffs
/// mounted (mounted here if missing).
pub fn kernel() -> bool {
    if !require(is_root(), "not root: cannot load BPF programs") {
        return false;
    }
    mount_if_missing("tracefs", "nodev", "/sys/kernel/tracing");
    mount_if_missing("bpf", "bpf", "/sys/fs/bpf");
    true
}

fn mount_if_missing(fstype: &str, source: &str, target: &str) {
    let mounted = std::fs::read_to_string("/proc/mounts").is_ok_and(|m| {
        m.lines()
            .any(|l| l.split_whitespace().nth(1) == Some(target))
    });
    if !mounted {
        let _ = std::process::Command::new("mount")
            .args(["-t", fstype, source, target])
            .status();
    }
}

/// Whether `tool --version` runs.
pub fn have_tool(tool: &str) -> bool {
    std::process::Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `tests/fixtures` of the workspace.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// The path of fixture `name` (`tests/fixtures/<name>.bpf.o`).
pub fn fixture_path(name: &str) -> PathBuf {
    fixtures_dir().join(format!("{name}.bpf.o"))
}

/// The bytes of fixture `name`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = fixture_path(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every committed fixture, as (name, bytes), by name. Panics if there is
/// none (a broken checkout).
pub fn all_fixtures() -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(fixtures_dir())
        .expect("tests/fixtures")
        .filter_map(|e| {
            let p = e.ok()?.path();
            let name = p.file_name()?.to_str()?.strip_suffix(".bpf.o")?.to_string();
            Some((name, std::fs::read(&p).ok()?))
        })
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no fixtures found");
    v
}

/// An error and its causes, one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

/// Open fds of this process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// The test binary's lock, for tests that must not overlap: ones that
/// count the process's fds or whose triggers would reach each other's
/// programs. One lock per test binary; a test that failed holding it does
/// not fail the others (poisoning is ignored).
pub fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// [`serial`], then [`kernel`]: the lock when kernel tests can run, `None`
/// (after saying why) when they cannot. The lock comes first, so that the
/// check (which reads /proc and may run `mount`) opens no fds while another
/// test holds the lock and counts its own.
pub fn kernel_serial() -> Option<MutexGuard<'static, ()>> {
    let guard = serial();
    kernel().then_some(guard)
}

/// A cgroup v2 mount to attach cgroup programs to: `/sys/fs/cgroup/unified`
/// where systemd's hybrid layout puts it (this machine), else the first
/// cgroup2 mount in `/proc/mounts` (`/sys/fs/cgroup` in a VM guest). Panics
/// if there is none: kernel tests run where cgroup v2 is mounted.
pub fn cgroup2_root() -> PathBuf {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let cgroup2: Vec<&str> = mounts
        .lines()
        .filter_map(|l| {
            let mut cols = l.split_whitespace();
            let (_, target, fstype) = (cols.next()?, cols.next()?, cols.next()?);
            (fstype == "cgroup2").then_some(target)
        })
        .collect();
    let pick = cgroup2
        .iter()
        .find(|t| **t == "/sys/fs/cgroup/unified")
        .or_else(|| cgroup2.first())
        .unwrap_or_else(|| panic!("no cgroup2 mount in /proc/mounts"));
    PathBuf::from(pick)
}
