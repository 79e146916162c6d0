//! tcpconnect: active TCP connections, as libbpf-tools' tcpconnect prints
//! them: one line per successful connect() (a perf buffer event), or, with
//! `-c`, one line per flow with its count when the tool stops.
//!
//! The programs are kprobes and kretprobes on tcp_v4_connect() and
//! tcp_v6_connect(), auto-attached by the skeleton from their section names.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use skelgen_runtime::perfbuf::PerfBuffer;
use skelgen_runtime::Plain;

/// The generated skeleton (`OUT_DIR/tcpconnect.skel.rs`, written by build.rs).
#[allow(dead_code)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/tcpconnect.skel.rs"));
}
use skel::types::event;
use skel::TcpconnectBpf;

/// `AF_INET`, `AF_INET6` as the BPF side stores them.
const AF_INET: u32 = 2;
const AF_INET6: u32 = 10;
/// `MAX_PORTS` of tcpconnect.h.
const MAX_PORTS: usize = 64;

/// Count/Trace active tcp connections.
///
/// EXAMPLES:
///     tcpconnect             # trace all TCP connect()s
///     tcpconnect -t          # include timestamps
///     tcpconnect -p 181      # only trace PID 181
///     tcpconnect -P 80       # only trace port 80
///     tcpconnect -P 80,81    # only trace port 80 and 81
///     tcpconnect -U          # include UID
///     tcpconnect -u 1000     # only trace UID 1000
///     tcpconnect -c          # count connects per src, dest, port
#[derive(Parser)]
#[command(version, verbatim_doc_comment)]
struct Args {
    /// Verbose debug output
    #[arg(short, long)]
    verbose: bool,
    /// Include timestamp on output
    #[arg(short, long)]
    timestamp: bool,
    /// Count connects per src ip and dst ip/port
    #[arg(short, long)]
    count: bool,
    /// Include UID on output
    #[arg(short = 'U', long = "print-uid")]
    print_uid: bool,
    /// Process PID to trace
    #[arg(short, long, value_parser = clap::value_parser!(u32).range(1..=i32::MAX as i64))]
    pid: Option<u32>,
    /// Process UID to trace
    #[arg(short, long, value_parser = clap::value_parser!(u32).range(0..=u32::MAX as i64 - 1))]
    uid: Option<u32>,
    /// Consider source port when counting
    #[arg(short, long = "source-port")]
    source_port: bool,
    /// Comma-separated list of destination ports to trace
    #[arg(short = 'P', long = "port", value_name = "PORTS", value_parser = parse_ports)]
    ports: Option<Ports>,
    /// trace cgroups in this map (not implemented, as in libbpf-tools)
    #[arg(short = 'C', long = "cgroupmap", value_name = "PATH")]
    cgroupmap: Option<String>,
    /// trace mount namespaces in this map (not implemented, as in libbpf-tools)
    #[arg(short = 'M', long = "mntnsmap", value_name = "PATH")]
    mntnsmap: Option<String>,
    /// Stop after this many seconds (a skelgen addition; Ctrl-C also stops,
    /// and in count mode prints the counts)
    #[arg(short, long, value_name = "SECS")]
    duration: Option<u64>,
}

/// The destination ports of `-P`, in host order.
#[derive(Debug, Clone)]
struct Ports(Vec<u16>);

/// `-P 80,81`: 1 to 64 ports, each 1..=65535.
fn parse_ports(arg: &str) -> Result<Ports, String> {
    let ports: Vec<u16> = arg
        .split(',')
        .map(|p| match p.trim().parse::<u16>() {
            Ok(0) | Err(_) => Err(format!("invalid PORT_LIST: {arg}")),
            Ok(n) => Ok(n),
        })
        .collect::<Result<_, _>>()?;
    if ports.len() > MAX_PORTS {
        return Err(format!(
            "invalid PORT_LIST: {arg} (at most {MAX_PORTS} ports)"
        ));
    }
    Ok(Ports(ports))
}

/// The address of `af` in the first bytes of `raw`.
fn addr(af: u32, raw: &[u8; 16]) -> String {
    if af == AF_INET {
        Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3]).to_string()
    } else {
        Ipv6Addr::from(*raw).to_string()
    }
}

fn print_events_header(args: &Args) {
    let mut line = String::new();
    if args.timestamp {
        line += &format!("{:<9}", "TIME(s)");
    }
    if args.print_uid {
        line += &format!("{:<6}", "UID");
    }
    line += &format!(
        "{:<6} {:<16} {:<2} {:<16} {:<16}",
        "PID", "COMM", "IP", "SADDR", "DADDR"
    );
    if args.source_port {
        line += &format!(" {:<5}", "SPORT");
    }
    line += &format!(" {:<5}", "DPORT");
    println!("{line}");
}

/// One output line for an event; `None` for a sample too short or of an
/// unknown family.
fn format_event(args: &Args, start_ts: &mut u64, sample: &[u8]) -> Option<String> {
    let mut e = event::default();
    let n = std::mem::size_of::<event>();
    e.as_bytes_mut().copy_from_slice(sample.get(..n)?);
    if e.af != AF_INET && e.af != AF_INET6 {
        return None;
    }
    let mut line = String::new();
    if args.timestamp {
        if *start_ts == 0 {
            *start_ts = e.ts_us;
        }
        line += &format!(
            "{:<9.3}",
            e.ts_us.saturating_sub(*start_ts) as f64 / 1_000_000.0
        );
    }
    if args.print_uid {
        line += &format!("{:<6}", e.uid);
    }
    let comm = e.task.map(|c| c as u8);
    let comm = comm.split(|&c| c == 0).next().unwrap_or_default();
    line += &format!(
        "{:<6} {:<16} {:<2} {:<16} {:<16}",
        e.pid,
        String::from_utf8_lossy(comm),
        if e.af == AF_INET { 4 } else { 6 },
        addr(e.af, &e.saddr),
        addr(e.af, &e.daddr),
    );
    if args.source_port {
        line += &format!(" {:<5}", e.sport);
    }
    line += &format!(" {:<5}", u16::from_be(e.dport));
    Some(line)
}

fn print_counts(args: &Args, skel: &TcpconnectBpf) -> Result<()> {
    let mut header = format!("\n{:<25} {:<25}", "LADDR", "RADDR");
    if args.source_port {
        header += &format!(" {:<20}", "LPORT");
    }
    header += &format!(" {:<20} {:<10}", "RPORT", "CONNECTS");
    println!("{header}");
    let row = |s: String, d: String, sport: u16, dport: u16, n: u64| {
        let mut line = format!("{s:<25} {d:<25}");
        if args.source_port {
            line += &format!(" {sport:<20}");
        }
        line += &format!(" {:<20} {n:<10}", u16::from_be(dport));
        println!("{line}");
    };
    for entry in skel.maps.ipv4_count.iter() {
        let (k, n) = entry?;
        let (s, d) = (k.saddr.to_ne_bytes(), k.daddr.to_ne_bytes());
        row(
            Ipv4Addr::from(s).to_string(),
            Ipv4Addr::from(d).to_string(),
            k.sport,
            k.dport,
            n,
        );
    }
    for entry in skel.maps.ipv6_count.iter() {
        let (k, n) = entry?;
        row(
            Ipv6Addr::from(k.saddr).to_string(),
            Ipv6Addr::from(k.daddr).to_string(),
            k.sport,
            k.dport,
            n,
        );
    }
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.cgroupmap.is_some() {
        eprint!("not implemented: --cgroupmap");
    }
    if args.mntnsmap.is_some() {
        eprint!("not implemented: --mntnsmap");
    }
    let mut open = TcpconnectBpf::open()?;
    let ro = open.rodata_mut();
    ro.do_count = args.count.into();
    ro.source_port = args.source_port.into();
    if let Some(pid) = args.pid {
        ro.filter_pid = pid;
    }
    if let Some(uid) = args.uid {
        ro.filter_uid = uid;
    }
    if let Some(Ports(ports)) = &args.ports {
        for (slot, port) in ro.filter_ports.iter_mut().zip(ports) {
            *slot = i32::from(port.to_be());
        }
        ro.filter_ports_len = ports.len() as i32;
    }
    let mut skel = open.load().context("failed to load BPF object")?;
    skel.attach().context("failed to attach BPF programs")?;
    if args.verbose {
        for (name, link) in [
            ("tcp_v4_connect", &skel.links.tcp_v4_connect),
            ("tcp_v4_connect_ret", &skel.links.tcp_v4_connect_ret),
            ("tcp_v6_connect", &skel.links.tcp_v6_connect),
            ("tcp_v6_connect_ret", &skel.links.tcp_v6_connect_ret),
        ] {
            let how = link.as_ref().map_or("not attached", |l| l.kind());
            eprintln!("tcpconnect: {name}: {how}");
        }
    }

    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&stop))
        .context("can't set signal handler")?;
    let deadline = args
        .duration
        .map(|s| Instant::now() + Duration::from_secs(s));
    let done = || stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d);

    if args.count {
        while !done() {
            std::thread::sleep(Duration::from_millis(50));
        }
        return print_counts(&args, &skel);
    }

    let mut start_ts = 0u64;
    let mut pb = PerfBuffer::builder(&skel.maps.events)
        .sample_cb(
            |_cpu, sample| match format_event(&args, &mut start_ts, sample) {
                Some(line) => println!("{line}"),
                None => eprintln!("tcpconnect: broken event ({} bytes)", sample.len()),
            },
        )
        .lost_cb(|cpu, n| eprintln!("Lost {n} events on CPU #{cpu}!"))
        .build()?;
    print_events_header(&args);
    while !done() {
        pb.poll(Duration::from_millis(100))?;
    }
    Ok(())
}
