//! vfsstat (libbpf-tools) on a skelgen skeleton: counts VFS calls per
//! second. The size benchmark compares this binary with the same tool on
//! libbpf-rs (`../vfsstat-libbpf-rs`); both share every line but the BPF ones.
//!
//! usage: vfsstat-skelgen [INTERVAL [COUNT]]

use std::time::Duration;

use anyhow::Context as _;

mod skel {
    skelgen_macro::include_bpf!("../../../tests/fixtures/vfsstat.bpf.o");
}

const NAMES: [&str; 5] = ["READ", "WRITE", "FSYNC", "OPEN", "CREATE"];

fn main() -> anyhow::Result<()> {
    let (interval, count) = args()?;
    let mut open = skel::VfsstatBpf::open().context("open")?;
    // kprobes where the kernel has them, else fentry (libbpf-tools probes
    // the other way round; this kernel has neither, see README.md).
    if kprobes_available() {
        open.progs.fentry_vfs_read.set_autoload(false);
        open.progs.fentry_vfs_write.set_autoload(false);
        open.progs.fentry_vfs_fsync.set_autoload(false);
        open.progs.fentry_vfs_open.set_autoload(false);
        open.progs.fentry_vfs_create.set_autoload(false);
    } else {
        open.progs.kprobe_vfs_read.set_autoload(false);
        open.progs.kprobe_vfs_write.set_autoload(false);
        open.progs.kprobe_vfs_fsync.set_autoload(false);
        open.progs.kprobe_vfs_open.set_autoload(false);
        open.progs.kprobe_vfs_create.set_autoload(false);
    }
    let mut skel = open.load().context("load")?;
    skel.attach().context("attach")?;
    let mut prev = [0u64; 5];
    for _ in 0..count {
        std::thread::sleep(Duration::from_secs(interval));
        let now: [u64; 5] = skel.bss().stats().context("read .bss")?;
        print_line(&prev, &now, interval);
        prev = now;
    }
    Ok(())
}

fn args() -> anyhow::Result<(u64, u64)> {
    let mut it = std::env::args().skip(1);
    let interval = it.next().map_or(Ok(1), |s| s.parse()).context("INTERVAL")?;
    let count = it
        .next()
        .map_or(Ok(u64::MAX), |s| s.parse())
        .context("COUNT")?;
    Ok((interval.max(1), count))
}

fn kprobes_available() -> bool {
    std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists()
}

fn print_line(prev: &[u64; 5], now: &[u64; 5], interval: u64) {
    let mut line = String::new();
    for ((name, p), n) in NAMES.iter().zip(prev).zip(now) {
        line.push_str(&format!("{name}/s: {:<8} ", n.wrapping_sub(*p) / interval));
    }
    println!("{}", line.trim_end());
}
