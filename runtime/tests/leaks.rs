//! Open/load/drop cycles leave the process's fds and the kernel's program
//! and map counts where they were. Its own test binary: other tests running
//! in parallel threads would move the counts.

use skelgen_runtime::loader::{OpenObject, OpenOptions};
use skelgen_test_support::{fd_count, fixture as bytes, kernel as kernel_or_skip};

/// The tests count process-wide fds: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Cycles per run: the default suite runs a short count; SKELGEN_LEAK_CYCLES
/// sets a longer one (10000 for the hardening run).
fn cycles() -> usize {
    std::env::var("SKELGEN_LEAK_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// How many programs or maps the kernel holds that carry one of `names`
/// (this fixture's), walking ids with our own syscalls. Counting only ours
/// keeps other processes' programs out of the comparison.
fn kernel_ids(kind: skelgen_runtime::sys::ObjKind) -> usize {
    use skelgen_runtime::sys;
    const NAMES: &[&str] = &[
        "xdp_count",
        "pkt_stats",
        ".data.foo",
        ".rodata.bar",
        "xdp_coun.bss",
    ];
    let mut n = 0;
    let mut id = 0;
    while let Ok(Some(next)) = sys::get_next_id(kind, id) {
        id = next;
        let Ok(fd) = sys::get_fd_by_id(kind, id, 0) else {
            continue;
        };
        let name = match kind {
            sys::ObjKind::Map => sys::map_info(&fd).map(|i| i.name()),
            _ => sys::prog_info(&fd).map(|i| i.name()),
        };
        if name.is_ok_and(|n| NAMES.contains(&n.as_str())) {
            n += 1;
        }
    }
    n
}

#[test]
fn open_load_drop_cycles_leak_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !kernel_or_skip() {
        return;
    }
    let obj = bytes("xdp_counter");
    let progs = kernel_ids(skelgen_runtime::sys::ObjKind::Prog);
    let maps = kernel_ids(skelgen_runtime::sys::ObjKind::Map);
    // Warm up lazily cached probes and kernel BTF (their fds stay open).
    drop(
        OpenObject::open(&obj, "xdp_counter", OpenOptions::default())
            .unwrap()
            .load()
            .unwrap(),
    );
    let fds = fd_count();
    let rss_before = rss_kib();
    for _ in 0..cycles() {
        let o = OpenObject::open(&obj, "xdp_counter", OpenOptions::default())
            .unwrap()
            .load()
            .unwrap();
        drop(o);
    }
    assert_eq!(fd_count(), fds, "fds leaked");
    let rss_after = rss_kib();
    eprintln!(
        "{} cycles: RSS {rss_before} KiB -> {rss_after} KiB",
        cycles()
    );
    assert!(
        rss_after < rss_before + 16 * 1024,
        "RSS grew from {rss_before} to {rss_after} KiB"
    );
    // The kernel frees closed maps and programs from a deferred work item:
    // give it a moment to catch up before counting.
    for _ in 0..200 {
        if kernel_ids(skelgen_runtime::sys::ObjKind::Map) <= maps
            && kernel_ids(skelgen_runtime::sys::ObjKind::Prog) <= progs
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert_eq!(
        kernel_ids(skelgen_runtime::sys::ObjKind::Prog),
        progs,
        "programs leaked"
    );
    assert_eq!(
        kernel_ids(skelgen_runtime::sys::ObjKind::Map),
        maps,
        "maps leaked"
    );
}

/// A load that fails part way (the verifier refuses the program after the
/// maps were created) closes everything it made.
#[test]
fn failed_loads_close_what_they_created() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !kernel_or_skip() {
        return;
    }
    let obj = bytes("verifier_reject");
    let _ = OpenObject::open(&obj, "verifier_reject", OpenOptions::default())
        .unwrap()
        .load();
    let fds = fd_count();
    for _ in 0..100 {
        let r = OpenObject::open(&obj, "verifier_reject", OpenOptions::default())
            .unwrap()
            .load();
        assert!(r.is_err());
    }
    assert_eq!(fd_count(), fds, "a failed load leaked fds");
}
