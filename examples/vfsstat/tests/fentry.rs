//! vfsstat's fentry programs against a workload of known size: on kernels
//! with BPF trampolines the tool picks fentry (seen as its tracing links in
//! the kernel while it runs), and its rows add up to the calls the test
//! made; elsewhere it says why fentry is unavailable.

use std::io::{BufRead, Read, Seek, SeekFrom, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use skelgen_runtime::sys;
use skelgen_test_support::kernel as kernel_or_skip;
use skelgen_test_support::matrix::{has, Feature};

/// How many of each VFS call [`known_workload`] makes.
const WL_READS: u64 = 1000;
const WL_WRITES: u64 = 1000;
const WL_FSYNCS: u64 = 20;
const WL_OPENS: u64 = 100;
const WL_FILES: u64 = 50;
const WL_DIRS: u64 = 30;

/// Exactly `WL_*` calls of each kind: reads and writes on one file (one
/// syscall each: 64-byte buffers, no short I/O on a regular file), fsyncs,
/// plain opens, files created and unlinked, directories made and removed.
fn known_workload(dir: &std::path::Path) {
    let path = dir.join("rw");
    // 1 open, 1 create (none through vfs_create: open(O_CREAT) creates
    // through the filesystem directly).
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let mut buf = [0u8; 64];
    for _ in 0..WL_WRITES {
        assert_eq!(file.write(&buf).unwrap(), 64);
    }
    file.seek(SeekFrom::Start(0)).unwrap();
    for _ in 0..WL_READS {
        assert_eq!(file.read(&mut buf).unwrap(), 64);
    }
    for _ in 0..WL_FSYNCS {
        file.sync_all().unwrap();
    }
    for _ in 0..WL_OPENS {
        drop(std::fs::File::open(&path).unwrap());
    }
    for i in 0..WL_FILES {
        let f = dir.join(format!("f{i}"));
        drop(std::fs::File::create(&f).unwrap());
        std::fs::remove_file(&f).unwrap();
    }
    for i in 0..WL_DIRS {
        let d = dir.join(format!("d{i}"));
        std::fs::create_dir(&d).unwrap();
        std::fs::remove_dir(&d).unwrap();
    }
    drop(file);
    std::fs::remove_file(&path).unwrap();
}

/// Ends vfsstat (it prints each row as a line, so nothing is lost).
fn stop(child: &mut std::process::Child) {
    child.kill().unwrap();
}

/// Tracing links (fentry) of the kernel whose program is named `fentry_vfs_*`.
fn fentry_vfs_links() -> usize {
    let mut n = 0;
    let mut id = 0;
    while let Ok(Some(next)) = sys::get_next_id(sys::ObjKind::Link, id) {
        id = next;
        let Ok(link) = sys::get_fd_by_id(sys::ObjKind::Link, id, 0) else {
            continue;
        };
        let Ok(info) = sys::link_info(&link) else {
            continue;
        };
        if info.tracing().is_none() {
            continue;
        }
        let Ok(prog) = sys::get_fd_by_id(sys::ObjKind::Prog, info.prog_id, 0) else {
            continue;
        };
        if sys::prog_info(&prog).is_ok_and(|p| p.name().starts_with("fentry_vfs_")) {
            n += 1;
        }
    }
    n
}

/// Every call the test makes after vfsstat printed its header (it is
/// attached by then) lands in the rows that follow. Counts are
/// system-wide, so the rest of the system may add some (little in a VM: at
/// most half as much again here, over a run as long as the workload).
#[test]
fn fentry_counts_a_known_workload() {
    if !kernel_or_skip() {
        return;
    }
    // Rows until stopped: the run lasts as long as the workload needs (a
    // VM without KVM is slow), plus two rows after it.
    let mut child = Command::new(env!("CARGO_BIN_EXE_vfsstat"))
        .args(["1", "3600"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let header = lines.next().unwrap().unwrap();
    assert!(header.starts_with("TIME"), "{header}");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    if !has(Feature::Trampolines) {
        assert_eq!(fentry_vfs_links(), 0);
        stop(&mut child);
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        // The tool says why only when it falls back past kprobes too.
        assert!(
            has(Feature::Kprobes)
                || stderr.contains("fentry programs are unavailable")
                    && stderr.contains("fentry_vfs_"),
            "{stderr}"
        );
        return;
    }
    // The best family is fentry: its 8 programs are attached.
    assert_eq!(fentry_vfs_links(), 8);
    // tmpfs where there is one: quick, and no network filesystem's extra calls.
    let base = ["/dev/shm"]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("vfsstat-known-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    known_workload(&dir);
    let mut rows: Vec<String> = rx.try_iter().collect();
    for _ in 0..2 {
        rows.push(rx.recv_timeout(Duration::from_secs(30)).unwrap());
    }
    stop(&mut child);
    let out = child.wait_with_output().unwrap();
    std::fs::remove_dir(&dir).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.is_empty(), "{stderr}");
    let mut sum = [0u64; 8];
    for row in &rows {
        let (_, counts) = row.split_once(": ").unwrap();
        for (s, n) in sum.iter_mut().zip(counts.split_whitespace()) {
            *s += n.parse::<u64>().unwrap();
        }
    }
    // Columns: READ WRITE FSYNC OPEN CREATE UNLINK MKDIR RMDIR. The test's
    // own mkdir of `dir` counts; its rmdir comes after the run. fsync(2)
    // reaches vfs_fsync only where the compiler kept the call out of line:
    // Debian's 6.1 inlines it into do_fsync (0 counted there, as the C tool
    // would), so FSYNC is bounded above only.
    let want = [
        ("READ", 0, WL_READS, true),
        ("WRITE", 1, WL_WRITES, true),
        ("FSYNC", 2, WL_FSYNCS, false),
        ("OPEN", 3, 1 + WL_OPENS + WL_FILES, true),
        ("UNLINK", 5, WL_FILES + 1, true),
        ("MKDIR", 6, WL_DIRS + 1, true),
        ("RMDIR", 7, WL_DIRS, true),
    ];
    let wrong: Vec<String> = want
        .iter()
        .filter(|&&(_, col, n, exact)| {
            let got = sum[col];
            (exact && got < n) || got > n + n / 2 + 20
        })
        .map(|&(name, col, n, _)| format!("{name}: counted {}, the workload made {n}", sum[col]))
        .collect();
    assert!(wrong.is_empty(), "{wrong:?}; rows: {rows:?}");
}
