//! xdpcount: packets and bytes received on one interface, per interval,
//! counted by an XDP program into a per-CPU array.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use clap::Parser;
use skelgen_runtime::attach::{attach_xdp, xdp_flags};

/// The generated skeleton (`OUT_DIR/xdpcount.skel.rs`, written by build.rs).
#[allow(dead_code)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/xdpcount.skel.rs"));
}
use skel::XdpcountBpf;

/// Count the packets and bytes an interface receives, with XDP.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Network interface to attach to.
    #[arg(short, long, default_value = "lo")]
    interface: String,
    /// Force generic (skb) mode instead of letting the kernel choose.
    #[arg(long)]
    skb_mode: bool,
    /// Seconds between outputs.
    #[arg(default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    interval: u64,
    /// Number of outputs [default: until interrupted].
    count: Option<u64>,
}

/// The interface's index, from sysfs.
fn ifindex(name: &str) -> Result<u32> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        anyhow::bail!("{name:?} is not an interface name");
    }
    let path = format!("/sys/class/net/{name}/ifindex");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("no network interface {name:?} ({path})"))?;
    text.trim()
        .parse()
        .with_context(|| format!("{path} holds {:?}, expected a number", text.trim()))
}

/// `HH:MM:SS` of the wall clock, in UTC.
fn timestamp() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (h, m, s) = (secs / 3600 % 24, secs / 60 % 60, secs % 60);
    format!("{h:02}:{m:02}:{s:02}")
}

/// Packets and bytes so far, summed over CPUs.
fn totals(skel: &XdpcountBpf) -> Result<(u64, u64)> {
    let per_cpu = skel.maps.counts.lookup(&0)?.unwrap_or_default();
    Ok(per_cpu
        .iter()
        .fold((0, 0), |(p, b), rec| (p + rec.packets, b + rec.bytes)))
}

fn main() -> Result<()> {
    let args = Args::parse();
    let ifindex = ifindex(&args.interface)?;
    let skel = XdpcountBpf::open()?.load()?;
    let flags = if args.skb_mode {
        xdp_flags::SKB_MODE
    } else {
        0
    };
    let _link = attach_xdp(skel.progs.xdp_count.fd()?, ifindex, flags)
        .with_context(|| format!("attaching XDP to {}", args.interface))?;
    println!(
        "Counting packets on {} (ifindex {ifindex})... Hit Ctrl-C to end.",
        args.interface
    );
    println!("{:<8}  {:>10} {:>12}", "TIME", "PKTS/s", "BYTES/s");

    let mut last = totals(&skel)?;
    let mut printed = 0;
    while args.count.is_none_or(|n| printed < n) {
        std::thread::sleep(Duration::from_secs(args.interval));
        let now = totals(&skel)?;
        let (packets, bytes) = (now.0 - last.0, now.1 - last.1);
        println!(
            "{:<8}: {:>10} {:>12}",
            timestamp(),
            packets / args.interval,
            bytes / args.interval
        );
        last = now;
        printed += 1;
    }
    Ok(())
}
