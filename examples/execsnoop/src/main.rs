//! execsnoop: one line per exec(), as libbpf-tools' execsnoop prints them,
//! from a ring buffer or, on kernels without one (or with --perf-buffer),
//! a perf buffer.

use std::cell::Cell;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Parser;
use skelgen_runtime::perfbuf::PerfBuffer;
use skelgen_runtime::ringbuf::RingBuffer;
use skelgen_runtime::skel::MapType;
use skelgen_runtime::Plain;

/// The generated skeleton (`OUT_DIR/execsnoop.skel.rs`, written by build.rs).
#[allow(dead_code)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/execsnoop.skel.rs"));
}
use skel::{types::event, ExecsnoopBpf};

/// Trace exec() system calls.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Trace this user id only.
    #[arg(short, long)]
    uid: Option<u32>,
    /// Print only commands whose name contains this string.
    #[arg(short, long)]
    name: Option<String>,
    /// Include failed exec()s.
    #[arg(short = 'x', long)]
    fails: bool,
    /// Stop after this many seconds.
    #[arg(short, long)]
    duration: Option<u64>,
    /// Stop after printing this many events.
    #[arg(short, long)]
    max_events: Option<u64>,
    /// Use a perf buffer even if the kernel has ring buffers.
    #[arg(long)]
    perf_buffer: bool,
}

/// One output line for a sample, or `None` for a sample too short to hold
/// an event header.
fn format_event(sample: &[u8]) -> Option<String> {
    let mut e = event::default();
    let header = std::mem::offset_of!(event, args);
    let n = sample.len().min(std::mem::size_of::<event>());
    if n < header {
        return None;
    }
    e.as_bytes_mut()
        .get_mut(..n)?
        .copy_from_slice(sample.get(..n)?);
    let comm = e.comm.map(|c| c as u8);
    let comm = comm.split(|&c| c == 0).next().unwrap_or_default();
    let args = e.args.map(|c| c as u8);
    let args = args.get(..e.args_size as usize).unwrap_or(&args);
    let mut line = format!(
        "{:<16} {:<6} {:<6} {:>3} ",
        String::from_utf8_lossy(comm),
        e.pid,
        e.ppid,
        e.retval
    );
    let parts: Vec<_> = args
        .split(|&c| c == 0)
        .filter(|a| !a.is_empty())
        .map(String::from_utf8_lossy)
        .collect();
    line.push_str(&parts.join(" "));
    if usize::try_from(e.args_count).is_ok_and(|n| n > parts.len()) {
        line.push_str(" ...");
    }
    Some(line)
}

/// Where events arrive.
enum Events<'cb> {
    Ring(RingBuffer<'cb>),
    Perf(PerfBuffer<'cb>),
}

fn main() -> Result<()> {
    let args = Args::parse();
    let perf = args.perf_buffer || !skelgen_runtime::sys::probe::ringbuf();
    let mut open = ExecsnoopBpf::open()?;
    let rodata = open.rodata_mut();
    if let Some(uid) = args.uid {
        rodata.targ_uid = uid;
    }
    rodata.ignore_failed = (!args.fails).into();
    rodata.use_ringbuf = (!perf).into();
    if perf {
        open.maps.events.set_type(MapType::PERF_EVENT_ARRAY);
    }
    let mut skel = open.load()?;
    skel.attach()?;

    let printed = Cell::new(0u64);
    let limit = args.max_events.unwrap_or(u64::MAX);
    let print = |sample: &[u8]| match format_event(sample) {
        Some(line) if printed.get() < limit => {
            if line.get(..16).is_some_and(|comm| {
                args.name
                    .as_ref()
                    .is_none_or(|n| comm.trim_end().contains(n.as_str()))
            }) {
                println!("{line}");
                printed.set(printed.get() + 1);
            }
        }
        Some(_) => {}
        None => eprintln!("execsnoop: short sample ({} bytes) ignored", sample.len()),
    };
    let mut events = match skel.maps.events.perf_event_array()? {
        Some(map) => Events::Perf(
            PerfBuffer::builder(&map)
                .sample_cb(|_cpu, sample| print(sample))
                .lost_cb(|cpu, n| eprintln!("execsnoop: lost {n} events on CPU #{cpu}"))
                .build()?,
        ),
        None => Events::Ring(
            RingBuffer::builder()
                .add(&skel.maps.events, |sample| {
                    print(sample);
                    0
                })
                .build()?,
        ),
    };

    println!(
        "{:<16} {:<6} {:<6} {:>3} ARGS",
        "PCOMM", "PID", "PPID", "RET"
    );
    let deadline = args
        .duration
        .map(|s| Instant::now() + Duration::from_secs(s));
    while printed.get() < limit {
        let mut timeout = Duration::from_millis(100);
        if let Some(deadline) = deadline {
            timeout = timeout.min(deadline.saturating_duration_since(Instant::now()));
            if timeout.is_zero() {
                break;
            }
        }
        match &mut events {
            Events::Ring(rb) => rb.poll(timeout).map(drop)?,
            Events::Perf(pb) => pb.poll(timeout).map(drop)?,
        }
    }
    // At the deadline, what the kernel already submitted is still printed
    // (a slow machine, a VM without KVM, otherwise loses the last events).
    if printed.get() < limit {
        match &mut events {
            Events::Ring(rb) => rb.poll(Duration::ZERO).map(drop)?,
            Events::Perf(pb) => pb.poll(Duration::ZERO).map(drop)?,
        }
    }
    Ok(())
}
