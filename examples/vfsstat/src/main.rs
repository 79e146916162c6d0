//! vfsstat: VFS calls per second, as libbpf-tools' vfsstat prints them.
//!
//! The BPF object carries three families of programs counting into one
//! `.bss` array: fentry (cheapest), kprobes, and syscall tracepoints. The
//! first family that loads and attaches wins; the others are never loaded
//! (`set_autoload(false)`). `--hook` picks one family instead.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use clap::Parser;
use skelgen_runtime::skel::OpenProgram;

/// The generated skeleton (`OUT_DIR/vfsstat.skel.rs`, written by build.rs).
#[allow(dead_code)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/vfsstat.skel.rs"));
}
use skel::{OpenVfsstatBpfProgs, VfsstatBpf};

/// Column names, in the order of `enum stat_types` in vfsstat.bpf.c.
const STATS: [&str; 8] = [
    "READ", "WRITE", "FSYNC", "OPEN", "CREATE", "UNLINK", "MKDIR", "RMDIR",
];

/// Count VFS calls (read, write, fsync, open, create, unlink, mkdir, rmdir)
/// system-wide, per second.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Seconds between outputs.
    #[arg(default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    interval: u64,
    /// Number of outputs [default: until interrupted].
    count: Option<u64>,
    /// Use only this family of programs (fail if the kernel cannot run it)
    /// instead of the best one the kernel has.
    #[arg(long, value_enum)]
    hook: Option<Hook>,
    /// Use the kprobe programs only (fail if the kernel has no kprobes);
    /// the same as `--hook kprobe`.
    #[arg(long, conflicts_with = "hook")]
    kprobes: bool,
}

/// How the programs are hooked into the kernel, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Hook {
    Fentry,
    Kprobe,
    Tracepoint,
}

/// Every program with the family it belongs to.
fn programs(p: &mut OpenVfsstatBpfProgs) -> Vec<(Hook, &mut OpenProgram)> {
    use Hook::*;
    vec![
        (Fentry, &mut p.fentry_vfs_read),
        (Fentry, &mut p.fentry_vfs_write),
        (Fentry, &mut p.fentry_vfs_fsync),
        (Fentry, &mut p.fentry_vfs_open),
        (Fentry, &mut p.fentry_vfs_create),
        (Fentry, &mut p.fentry_vfs_unlink),
        (Fentry, &mut p.fentry_vfs_mkdir),
        (Fentry, &mut p.fentry_vfs_rmdir),
        (Kprobe, &mut p.kprobe_vfs_read),
        (Kprobe, &mut p.kprobe_vfs_write),
        (Kprobe, &mut p.kprobe_vfs_fsync),
        (Kprobe, &mut p.kprobe_vfs_open),
        (Kprobe, &mut p.kprobe_vfs_create),
        (Kprobe, &mut p.kprobe_vfs_unlink),
        (Kprobe, &mut p.kprobe_vfs_mkdir),
        (Kprobe, &mut p.kprobe_vfs_rmdir),
        (Tracepoint, &mut p.tp_read),
        (Tracepoint, &mut p.tp_pread64),
        (Tracepoint, &mut p.tp_write),
        (Tracepoint, &mut p.tp_pwrite64),
        (Tracepoint, &mut p.tp_fsync),
        (Tracepoint, &mut p.tp_fdatasync),
        (Tracepoint, &mut p.tp_open),
        (Tracepoint, &mut p.tp_openat),
        (Tracepoint, &mut p.tp_openat2),
        (Tracepoint, &mut p.tp_creat),
        (Tracepoint, &mut p.tp_unlink),
        (Tracepoint, &mut p.tp_unlinkat),
        (Tracepoint, &mut p.tp_mkdir),
        (Tracepoint, &mut p.tp_mkdirat),
        (Tracepoint, &mut p.tp_rmdir),
    ]
}

/// Loads and attaches the programs of one family only.
fn start(hook: Hook) -> Result<VfsstatBpf> {
    let mut open = VfsstatBpf::open()?;
    for (family, prog) in programs(&mut open.progs) {
        prog.set_autoload(family == hook);
    }
    let mut skel = open.load()?;
    skel.attach()?;
    Ok(skel)
}

/// fentry, else kprobes, else syscall tracepoints, saying why on stderr.
fn start_best() -> Result<VfsstatBpf> {
    let fentry = match start(Hook::Fentry) {
        Ok(skel) => return Ok(skel),
        Err(e) => e,
    };
    let kprobe = match start(Hook::Kprobe) {
        Ok(skel) => return Ok(skel),
        Err(e) => e,
    };
    eprintln!("vfsstat: fentry programs are unavailable: {fentry:#}");
    eprintln!("vfsstat: kprobes are unavailable: {kprobe:#}");
    eprintln!(
        "vfsstat: falling back to syscall tracepoints: counts are per system call \
         (read+pread64, write+pwrite64, fsync+fdatasync, open/openat/openat2/creat, \
         create = O_CREAT or creat, unlink/unlinkat, mkdir/mkdirat, rmdir/unlinkat \
         with AT_REMOVEDIR), not per VFS call"
    );
    start(Hook::Tracepoint).context("syscall tracepoints are unavailable too")
}

/// `HH:MM:SS` of the wall clock, in UTC (libbpf-tools prints local time;
/// finding the local zone needs libc or a TZif parser, out of scope here).
fn timestamp() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (h, m, s) = (secs / 3600 % 24, secs / 60 % 60, secs % 60);
    format!("{h:02}:{m:02}:{s:02}")
}

fn main() -> Result<()> {
    let args = Args::parse();
    let hook = if args.kprobes {
        Some(Hook::Kprobe)
    } else {
        args.hook
    };
    let skel = match hook {
        Some(hook) => start(hook).with_context(|| format!("--hook {hook:?}"))?,
        None => start_best()?,
    };

    // The baseline is read before the header goes out: whoever starts a
    // workload on seeing the header must find all of it in the first row.
    let mut last = skel.bss().stats()?;
    print!("{:<8}  ", "TIME");
    for name in STATS {
        print!(" {name:>6}/s");
    }
    println!();

    let mut printed = 0;
    while args.count.is_none_or(|n| printed < n) {
        std::thread::sleep(Duration::from_secs(args.interval));
        let now = skel.bss().stats()?;
        print!("{:<8}: ", timestamp());
        for (new, old) in now.iter().zip(&last) {
            print!(" {:>8}", new.wrapping_sub(*old) / args.interval);
        }
        println!();
        last = now;
        printed += 1;
    }
    Ok(())
}
