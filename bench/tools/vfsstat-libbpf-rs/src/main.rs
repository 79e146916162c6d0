//! vfsstat (libbpf-tools) on libbpf-rs: counts VFS calls per second. The
//! size benchmark compares this binary with the same tool on a skelgen
//! skeleton (`../vfsstat-skelgen`); both share every line but the BPF ones.
//!
//! usage: vfsstat-libbpf-rs [INTERVAL [COUNT]]

use std::time::Duration;

use anyhow::Context as _;
use libbpf_rs::{MapCore as _, MapFlags, ObjectBuilder};

static OBJECT: &[u8] = include_bytes!("../../../../tests/fixtures/vfsstat.bpf.o");

const NAMES: [&str; 5] = ["READ", "WRITE", "FSYNC", "OPEN", "CREATE"];

fn main() -> anyhow::Result<()> {
    let (interval, count) = args()?;
    let mut open = ObjectBuilder::default()
        .name("vfsstat")?
        .open_memory(OBJECT)
        .context("open")?;
    // kprobes where the kernel has them, else fentry (libbpf-tools probes
    // the other way round; this kernel has neither, see README.md).
    let off = if kprobes_available() {
        "fentry_"
    } else {
        "kprobe_"
    };
    for mut prog in open.progs_mut() {
        if prog.name().to_string_lossy().starts_with(off) {
            prog.set_autoload(false);
        }
    }
    let obj = open.load().context("load")?;
    let mut links = Vec::new();
    for prog in obj.progs_mut() {
        if prog.autoload() {
            links.push(prog.attach().context("attach")?);
        }
    }
    let bss = obj
        .maps()
        .find(|m| m.name().to_string_lossy().ends_with(".bss"))
        .context("no .bss map")?;
    let mut prev = [0u64; 5];
    for _ in 0..count {
        std::thread::sleep(Duration::from_secs(interval));
        let value = bss
            .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
            .context("read .bss")?
            .context(".bss is empty")?;
        let mut now = [0u64; 5];
        for (n, chunk) in now.iter_mut().zip(value.chunks_exact(8)) {
            *n = u64::from_ne_bytes(chunk.try_into()?);
        }
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
