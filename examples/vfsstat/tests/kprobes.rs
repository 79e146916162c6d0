//! vfsstat on its kprobe path (`--kprobes`) against a workload of known
//! size: N reads, N writes and M opens of a temporary file while vfsstat
//! runs. vfsstat counts the whole system, so the totals must be at least the
//! workload and at most the workload plus what the system did in a run of
//! the same length without it.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::process::{Command, Stdio};

use skelgen_test_support::kernel_serial;
use skelgen_test_support::matrix::{has, Feature};

const READS: u64 = 500;
const WRITES: u64 = 500;
const OPENS: u64 = 100;

/// Column indexes of READ, WRITE and OPEN in a row.
const READ: usize = 0;
const WRITE: usize = 1;
const OPEN: usize = 3;

/// Runs `vfsstat --kprobes 1 SECS`, runs `workload` once it printed its
/// header (it is attached then), and returns the column sums of its rows.
fn totals(secs: u32, workload: impl FnOnce()) -> Result<[u64; 8], String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vfsstat"))
        .args(["--kprobes", "1", &secs.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut header = String::new();
    stdout.read_line(&mut header).unwrap();
    if !header.is_empty() {
        workload();
    }
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    if !child.wait().unwrap().success() {
        return Err(err);
    }
    let mut sums = [0u64; 8];
    let mut rows = 0;
    for line in rest.lines() {
        let (_, counts) = line.split_once(": ").ok_or(line.to_owned())?;
        for (sum, n) in sums.iter_mut().zip(counts.split_whitespace()) {
            *sum += n.parse::<u64>().map_err(|e| format!("{line}: {e}"))?;
        }
        rows += 1;
    }
    assert_eq!(rows, secs, "{header}{rest}");
    Ok(sums)
}

/// READS reads and WRITES writes of 64 bytes, and OPENS opens, of a file.
fn workload() {
    let path = std::env::temp_dir().join(format!("vfsstat-kprobes-{}", std::process::id()));
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(&[0u8; 64]).unwrap();
    drop(file);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let mut buf = [0u8; 64];
    for _ in 0..WRITES {
        file.seek(SeekFrom::Start(0)).unwrap();
        file.write_all(&buf).unwrap();
    }
    for _ in 0..READS {
        file.seek(SeekFrom::Start(0)).unwrap();
        file.read_exact(&mut buf).unwrap();
    }
    // The create and the open above are two of the opens.
    for _ in 0..OPENS - 2 {
        drop(std::fs::File::open(&path).unwrap());
    }
    let _ = std::fs::remove_file(&path);
}

#[test]
fn kprobe_path_counts_a_known_workload() {
    let Some(_k) = kernel_serial() else { return };
    // Long enough for the workload in a loaded VM without KVM (it must end
    // inside the window, which the totals check relies on).
    let secs = 10;
    if !has(Feature::Kprobes) {
        let err = totals(secs, || {}).unwrap_err();
        assert!(err.contains("CONFIG_KPROBES"), "{err}");
        return;
    }
    let quiet = totals(secs, || {}).unwrap();
    let mut took = std::time::Duration::ZERO;
    let busy = totals(secs, || {
        let start = std::time::Instant::now();
        workload();
        took = start.elapsed();
    })
    .unwrap();
    assert!(
        took.as_secs() + 1 < u64::from(secs),
        "the workload took {took:?}, too long for a {secs} s window"
    );
    for (name, col, want) in [
        ("READ", READ, READS),
        ("WRITE", WRITE, WRITES),
        ("OPEN", OPEN, OPENS),
    ] {
        // Background varies between runs: allow twice the quiet run's, and
        // a floor for a quiet run that happened to see almost nothing.
        let slack = 2 * quiet[col] + 200;
        assert!(
            busy[col] >= want && busy[col] <= want + slack,
            "{name}: {} counted for a workload of {want} (quiet run: {})",
            busy[col],
            quiet[col]
        );
    }
}
