//! tcpconnlat: TCP active-connect latency, as libbpf-tools' tcpconnlat
//! prints it: one line per connection, from the connect() call to the
//! SYN-ACK, over a perf buffer.
//!
//! The BPF object has the programs twice: fentry (what the tool is for:
//! cheaper than kprobes) and kprobes, loaded only where the kernel cannot
//! attach fentry programs, as the C tool does with `fentry_can_attach`.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use skelgen_runtime::perfbuf::PerfBuffer;

/// The generated skeleton (`OUT_DIR/tcpconnlat.skel.rs`, written by build.rs).
#[allow(dead_code)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/tcpconnlat.skel.rs"));
}
use skel::TcpconnlatBpf;

const AF_INET: i32 = 2;
const AF_INET6: i32 = 10;

/// Trace TCP connects and show connection latency.
#[derive(Parser)]
#[command(
    version,
    after_help = "EXAMPLES:\n    tcpconnlat              # trace all TCP connects\n    \
                  tcpconnlat 1            # trace connection latency slower than 1 ms\n    \
                  tcpconnlat 0.1          # trace connection latency slower than 100 us\n    \
                  tcpconnlat -t           # include timestamps\n    \
                  tcpconnlat -p 185       # trace PID 185 only\n    \
                  tcpconnlat -L           # include LPORT while printing outputs"
)]
struct Args {
    /// Include timestamp on output.
    #[arg(short = 't', long)]
    timestamp: bool,
    /// Trace this PID only.
    #[arg(short = 'p', long)]
    pid: Option<u32>,
    /// Include LPORT on output.
    #[arg(short = 'L', long)]
    lport: bool,
    /// Verbose debug output (which programs were attached).
    #[arg(short = 'v', long)]
    verbose: bool,
    /// Report only connects slower than this, in milliseconds.
    #[arg(value_parser = parse_min_ms)]
    min_ms: Option<f64>,
}

fn parse_min_ms(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v * 1000.0 >= 1.0 => Ok(v),
        _ => Err(format!("Invalid delay (in us): {s}")),
    }
}

/// One event, decoded from the layout of `struct event` (tcpconnlat.h).
struct Event {
    saddr: [u8; 16],
    daddr: [u8; 16],
    comm: String,
    delta_us: u64,
    ts_us: u64,
    tgid: u32,
    af: i32,
    lport: u16,
    dport_be: u16,
}

fn field<const N: usize>(b: &[u8], off: usize) -> Option<[u8; N]> {
    b.get(off..off + N)?.try_into().ok()
}

impl Event {
    const SIZE: usize = 76;

    fn parse(b: &[u8]) -> Option<Event> {
        if b.len() < Self::SIZE {
            return None;
        }
        let comm: [u8; 16] = field(b, 32)?;
        let end = comm.iter().position(|&c| c == 0).unwrap_or(comm.len());
        Some(Event {
            saddr: field(b, 0)?,
            daddr: field(b, 16)?,
            comm: String::from_utf8_lossy(&comm[..end]).into_owned(),
            delta_us: u64::from_ne_bytes(field(b, 48)?),
            ts_us: u64::from_ne_bytes(field(b, 56)?),
            tgid: u32::from_ne_bytes(field(b, 64)?),
            af: i32::from_ne_bytes(field(b, 68)?),
            lport: u16::from_ne_bytes(field(b, 72)?),
            dport_be: u16::from_ne_bytes(field(b, 74)?),
        })
    }

    fn addr(&self, raw: &[u8; 16]) -> Option<String> {
        match self.af {
            // The IPv4 address is the first 4 bytes, in network order.
            AF_INET => Some(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3]).to_string()),
            AF_INET6 => Some(Ipv6Addr::from(*raw).to_string()),
            _ => None,
        }
    }
}

/// `%-12.12s`: at most 12 characters, padded to 12.
fn comm12(comm: &str) -> String {
    let cut: String = comm.chars().take(12).collect();
    format!("{cut:<12}")
}

/// Formats one event line as the C tool's printf does; `start_ts` is the
/// first event's timestamp (for -t).
fn format_event(args: &Args, e: &Event, start_ts: &mut Option<u64>) -> Option<String> {
    let (src, dst) = (e.addr(&e.saddr)?, e.addr(&e.daddr)?);
    let mut line = String::new();
    if args.timestamp {
        let start = *start_ts.get_or_insert(e.ts_us);
        line.push_str(&format!(
            "{:<9.3} ",
            e.ts_us.wrapping_sub(start) as f64 / 1_000_000.0
        ));
    }
    let ip = if e.af == AF_INET { 4 } else { 6 };
    let dport = u16::from_be(e.dport_be);
    let lat = e.delta_us as f64 / 1000.0;
    if args.lport {
        line.push_str(&format!(
            "{:<6} {} {:<2} {:<16} {:<6} {:<16} {:<5} {:.2}",
            e.tgid,
            comm12(&e.comm),
            ip,
            src,
            e.lport,
            dst,
            dport,
            lat
        ));
    } else {
        line.push_str(&format!(
            "{:<6} {} {:<2} {:<16} {:<16} {:<5} {:.2}",
            e.tgid,
            comm12(&e.comm),
            ip,
            src,
            dst,
            dport,
            lat
        ));
    }
    Some(line)
}

/// Loads and attaches the fentry programs, or (where that fails) the
/// kprobes; the tracepoint that forgets dead sockets either way.
fn start(args: &Args) -> Result<(TcpconnlatBpf, &'static str)> {
    let open = |fentry: bool| -> Result<TcpconnlatBpf> {
        let mut open = TcpconnlatBpf::open()?;
        let ro = open.rodata_mut();
        ro.targ_min_us = args.min_ms.map_or(0, |ms| (ms * 1000.0) as u64);
        ro.targ_tgid = args.pid.unwrap_or(0);
        let p = &mut open.progs;
        if fentry {
            // As the C tool: the targets named explicitly.
            p.fentry_tcp_v4_connect
                .set_attach_target(None, "tcp_v4_connect")?;
            p.fentry_tcp_v6_connect
                .set_attach_target(None, "tcp_v6_connect")?;
            p.fentry_tcp_rcv_state_process
                .set_attach_target(None, "tcp_rcv_state_process")?;
        }
        for prog in [
            &mut p.fentry_tcp_v4_connect,
            &mut p.fentry_tcp_v6_connect,
            &mut p.fentry_tcp_rcv_state_process,
        ] {
            prog.set_autoload(fentry);
        }
        for prog in [
            &mut p.tcp_v4_connect,
            &mut p.tcp_v6_connect,
            &mut p.tcp_rcv_state_process,
        ] {
            prog.set_autoload(!fentry);
        }
        let mut skel = open.load()?;
        skel.attach()?;
        Ok(skel)
    };
    match open(true) {
        Ok(skel) => Ok((skel, "fentry")),
        Err(fentry) => {
            if args.verbose {
                eprintln!("tcpconnlat: fentry is unavailable ({fentry:#}), using kprobes");
            }
            open(false)
                .map(|s| (s, "kprobe"))
                .with_context(|| format!("fentry failed too: {fentry:#}"))
                .context("neither fentry nor kprobes attach")
        }
    }
}

fn main() -> Result<()> {
    // The loop below only ends with an error: Ctrl-C ends the process.
    let args = Args::parse();
    let (skel, family) = start(&args)?;
    if args.verbose {
        eprintln!("tcpconnlat: attached {family} programs");
    }
    let mut start_ts = None;
    let mut pb = PerfBuffer::builder(&skel.maps.events)
        .pages(16)
        .sample_cb(|_cpu, sample| match Event::parse(sample) {
            Some(e) => match format_event(&args, &e, &mut start_ts) {
                Some(line) => println!("{line}"),
                None => eprintln!("broken event: event->af={}", e.af),
            },
            None => eprintln!("tcpconnlat: short sample ({} bytes)", sample.len()),
        })
        .lost_cb(|cpu, n| eprintln!("lost {n} events on CPU #{cpu}"))
        .build()?;

    if args.timestamp {
        print!("{:<9} ", "TIME(s)");
    }
    if args.lport {
        println!(
            "{:<6} {:<12} {:<2} {:<16} {:<6} {:<16} {:<5} LAT(ms)",
            "PID", "COMM", "IP", "SADDR", "LPORT", "DADDR", "DPORT"
        );
    } else {
        println!(
            "{:<6} {:<12} {:<2} {:<16} {:<16} {:<5} LAT(ms)",
            "PID", "COMM", "IP", "SADDR", "DADDR", "DPORT"
        );
    }
    // Until interrupted (SIGINT ends the process, as it does the C tool's).
    loop {
        pb.poll(Duration::from_millis(100))?;
    }
}
