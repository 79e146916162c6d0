//! Runs tcpconnect while this test makes loopback TCP connects (IPv4 and
//! IPv6), and checks its lines: one per connect with our pid, the family,
//! the addresses and ports; the pid, port, timestamp, uid and source-port
//! options; and the per-flow counts of `-c`. Where the kernel has no
//! kprobes the tool must fail saying so.

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};

use skelgen_test_support::kernel_serial;
use skelgen_test_support::matrix::{has, Feature};

/// Starts tcpconnect with `args` (and `-d secs`), waits until it is
/// attached (its first output line, the header, or for `-c` a moment), runs
/// `trigger`, and returns its whole stdout after it exits.
fn run(args: &[&str], secs: u32, trigger: impl FnOnce()) -> (String, String) {
    let secs = secs.to_string();
    let mut child: Child = Command::new(env!("CARGO_BIN_EXE_tcpconnect"))
        .args(args)
        .args(["-d", &secs])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    if args.contains(&"-c") {
        // Count mode prints nothing until the end; -v reports each attached
        // program on stderr, which tells us when to start.
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut attached = 0;
        let mut line = String::new();
        while attached < 4 && stderr.read_line(&mut line).unwrap() > 0 {
            attached += usize::from(line.contains("tcp_v"));
            line.clear();
        }
        child.stderr = None;
        trigger();
        let mut rest = String::new();
        stdout.read_to_string(&mut rest).unwrap();
        let mut err = String::new();
        stderr.read_to_string(&mut err).unwrap();
        assert!(child.wait().unwrap().success(), "{rest}\n{err}");
        return (rest, err);
    }
    stdout.read_line(&mut first).unwrap();
    if !first.is_empty() {
        trigger();
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
    let status = child.wait().unwrap();
    assert!(status.success(), "{first}{rest}\n{err}");
    (first + &rest, err)
}

/// Connects to `listener` `n` times; the local ports used.
fn connect(listener: &TcpListener, n: usize) -> Vec<u16> {
    let to = listener.local_addr().unwrap();
    (0..n)
        .map(|_| {
            let s = TcpStream::connect(to).unwrap();
            let _ = listener.accept().unwrap();
            s.local_addr().unwrap().port()
        })
        .collect()
}

fn listen(addr: &str) -> Option<TcpListener> {
    TcpListener::bind(addr).ok()
}

/// The event lines of `pid`, split on whitespace.
fn lines_of(out: &str, pid: u32) -> Vec<Vec<String>> {
    out.lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .filter(|f| f.iter().any(|w| w == &pid.to_string()))
        .collect()
}

#[test]
fn traces_loopback_connects_v4_and_v6() {
    let Some(_k) = kernel_serial() else { return };
    let v4 = listen("127.0.0.1:0").unwrap();
    let v6 = listen("[::1]:0");
    let port4 = v4.local_addr().unwrap().port();
    if !has(Feature::Kprobes) {
        let out = Command::new(env!("CARGO_BIN_EXE_tcpconnect"))
            .args(["-d", "1"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            err.contains("kprobe tcp_v4_connect") && err.contains("CONFIG_KPROBES"),
            "{err}"
        );
        return;
    }
    let pid = std::process::id();
    let (out, err) = run(&["-p", &pid.to_string()], 4, || {
        connect(&v4, 3);
        if let Some(v6) = &v6 {
            connect(v6, 2);
        }
    });
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["PID", "COMM", "IP", "SADDR", "DADDR", "DPORT"],
        "{err}"
    );
    let rows = lines_of(&out, pid);
    let v4_rows: Vec<_> = rows.iter().filter(|r| r[2] == "4").collect();
    assert_eq!(v4_rows.len(), 3, "{out}\n{err}");
    for r in &v4_rows {
        assert_eq!(r[0], pid.to_string());
        assert_eq!(
            &r[3..],
            ["127.0.0.1", "127.0.0.1", &port4.to_string()],
            "{r:?}"
        );
    }
    if let Some(v6) = &v6 {
        let port6 = v6.local_addr().unwrap().port().to_string();
        let v6_rows: Vec<_> = rows.iter().filter(|r| r[2] == "6").collect();
        assert_eq!(v6_rows.len(), 2, "{out}");
        for r in &v6_rows {
            assert_eq!(&r[3..], ["::1", "::1", port6.as_str()], "{r:?}");
        }
    } else {
        eprintln!("no IPv6 loopback here: only IPv4 checked");
    }
}

#[test]
fn port_filter_timestamp_uid_and_source_port_columns() {
    let Some(_k) = kernel_serial() else { return };
    if !has(Feature::Kprobes) {
        return; // the refusal is checked above
    }
    let wanted = listen("127.0.0.1:0").unwrap();
    let other = listen("127.0.0.1:0").unwrap();
    let port = wanted.local_addr().unwrap().port();
    let pid = std::process::id();
    let mut sports = Vec::new();
    let (out, _) = run(
        &[
            "-t",
            "-U",
            "-s",
            "-P",
            &port.to_string(),
            "-p",
            &pid.to_string(),
        ],
        4,
        || {
            sports = connect(&wanted, 2);
            connect(&other, 2);
        },
    );
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["TIME(s)", "UID", "PID", "COMM", "IP", "SADDR", "DADDR", "SPORT", "DPORT"]
    );
    let rows = lines_of(&out, pid);
    assert_eq!(rows.len(), 2, "only port {port}: {out}");
    let first: f64 = rows[0][0].parse().unwrap();
    assert_eq!(first, 0.0, "time is relative to the first event");
    for (r, sport) in rows.iter().zip(&sports) {
        assert!(r[0].parse::<f64>().unwrap() >= 0.0);
        assert_eq!(r[1], "0", "uid of root");
        assert_eq!(r[2], pid.to_string());
        assert_eq!(
            &r[r.len() - 2..],
            [sport.to_string(), port.to_string()],
            "{r:?}"
        );
    }
}

#[test]
fn count_mode_counts_per_flow() {
    let Some(_k) = kernel_serial() else { return };
    if !has(Feature::Kprobes) {
        return;
    }
    let a = listen("127.0.0.1:0").unwrap();
    let b = listen("127.0.0.1:0").unwrap();
    let pid = std::process::id().to_string();
    let (out, err) = run(&["-c", "-v", "-p", &pid], 4, || {
        connect(&a, 3);
        connect(&b, 1);
    });
    let mut lines = out.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["LADDR", "RADDR", "RPORT", "CONNECTS"], "{err}");
    let mut rows: Vec<Vec<String>> = lines
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect();
    rows.sort();
    let row = |l: &TcpListener, n: &str| -> Vec<String> {
        let port = l.local_addr().unwrap().port().to_string();
        ["127.0.0.1", "127.0.0.1", &port, n]
            .map(str::to_owned)
            .to_vec()
    };
    let mut want = vec![row(&a, "3"), row(&b, "1")];
    want.sort();
    assert_eq!(rows, want, "{out}");
}
