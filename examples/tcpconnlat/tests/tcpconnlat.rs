//! Runs tcpconnlat while this test connects to its own loopback listeners,
//! and checks one line per connect, in the C tool's format, from the
//! fentry programs where the kernel has trampolines (kprobes where it has
//! only those; neither: the error names both).

use std::io::{BufRead, BufReader};
use std::net::{Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use skelgen_test_support::kernel as kernel_or_skip;
use skelgen_test_support::matrix::{has, Feature};

/// The tool's stdout lines, read on a thread so that the test can wait
/// with a timeout.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    rx
}

fn next(rx: &mpsc::Receiver<String>, what: &str) -> String {
    rx.recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("no {what} from tcpconnlat: {e}"))
}

fn stop(child: Child) -> String {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Connects to `addr` `n` times; returns the ports the connects came from.
fn connect_n(listener: &TcpListener, n: usize) -> Vec<u16> {
    let addr = listener.local_addr().unwrap();
    (0..n)
        .map(|_| {
            let s = TcpStream::connect(addr).unwrap();
            let (_peer, _) = listener.accept().unwrap();
            s.local_addr().unwrap().port()
        })
        .collect()
}

#[test]
fn one_line_per_loopback_connect() {
    if !kernel_or_skip() {
        return;
    }
    let me = std::process::id();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tcpconnlat"))
        .args(["-v", "-L", "-p", &me.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = lines_of(&mut child);
    if !has(Feature::Trampolines) && !has(Feature::Kprobes) {
        let status = child.wait().unwrap();
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert!(!status.success());
        assert!(
            err.contains("neither fentry nor kprobes attach")
                && err.contains("fentry_tcp_v4_connect")
                && err.contains("tcp_v4_connect"),
            "{err}"
        );
        return;
    }
    let header: Vec<String> = next(&rx, "header")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        header,
        ["PID", "COMM", "IP", "SADDR", "LPORT", "DADDR", "DPORT", "LAT(ms)"]
    );

    let v4 = TcpListener::bind("127.0.0.1:0").unwrap();
    let v4_ports = connect_n(&v4, 3);
    let v6 = TcpListener::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, 0)));
    let v6_ports = v6.as_ref().map_or(Vec::new(), |l| connect_n(l, 2));

    // bpf_get_current_comm() is the connecting thread's name.
    let comm: String = std::fs::read_to_string("/proc/thread-self/comm")
        .unwrap()
        .trim()
        .chars()
        .take(12)
        .collect();
    let mut seen = Vec::new();
    for _ in 0..v4_ports.len() + v6_ports.len() {
        let line = next(&rx, "event line");
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols.len(), 8, "{line:?}");
        assert_eq!(cols[0], me.to_string(), "{line:?}");
        assert_eq!(cols[1], comm, "{line:?}");
        let lport: u16 = cols[4].parse().unwrap();
        let lat: f64 = cols[7].parse().unwrap();
        assert!(
            lat >= 0.0 && cols[7].split_once('.').unwrap().1.len() == 2,
            "{line:?}"
        );
        match cols[2] {
            "4" => {
                assert_eq!((cols[3], cols[5]), ("127.0.0.1", "127.0.0.1"), "{line:?}");
                assert_eq!(cols[6], v4.local_addr().unwrap().port().to_string());
                assert!(v4_ports.contains(&lport), "{line:?}: ports {v4_ports:?}");
            }
            "6" => {
                assert_eq!((cols[3], cols[5]), ("::1", "::1"), "{line:?}");
                let l = v6.as_ref().unwrap();
                assert_eq!(cols[6], l.local_addr().unwrap().port().to_string());
                assert!(v6_ports.contains(&lport), "{line:?}: ports {v6_ports:?}");
            }
            other => panic!("IP {other} in {line:?}"),
        }
        seen.push(lport);
    }
    // No other line: every connect was reported once.
    assert!(
        rx.recv_timeout(Duration::from_millis(500)).is_err(),
        "an extra line"
    );
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), v4_ports.len() + v6_ports.len());

    let stderr = stop(child);
    let want = if has(Feature::Trampolines) {
        "attached fentry programs"
    } else {
        "attached kprobe programs"
    };
    assert!(stderr.contains(want), "{stderr}");
}

#[test]
fn min_latency_filters_fast_connects() {
    if !kernel_or_skip() {
        return;
    }
    if !has(Feature::Trampolines) && !has(Feature::Kprobes) {
        return; // the refusal is checked above
    }
    // 10 seconds: no loopback connect is that slow.
    let me = std::process::id();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tcpconnlat"))
        .args(["-t", "-p", &me.to_string(), "10000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = lines_of(&mut child);
    let header: Vec<String> = next(&rx, "header")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        header,
        ["TIME(s)", "PID", "COMM", "IP", "SADDR", "DADDR", "DPORT", "LAT(ms)"]
    );
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    connect_n(&l, 3);
    assert!(rx.recv_timeout(Duration::from_secs(1)).is_err(), "filtered");
    stop(child);
}

#[test]
fn invalid_delay_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_tcpconnlat"))
        .arg("-1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let out = Command::new(env!("CARGO_BIN_EXE_tcpconnlat"))
        .arg("abc")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("Invalid delay (in us): abc"));
}
