//! Runs xdpcount on `lo` for two one-second intervals while this test sends
//! UDP packets to 127.0.0.1, and checks the counts.

use std::net::UdpSocket;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use skelgen_test_support::kernel as kernel_or_skip;

const PAYLOAD: usize = 100;

/// Sends UDP datagrams over loopback until `done`; counts them in `sent`.
fn udp_traffic(done: &AtomicBool, sent: &AtomicU64) {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_nonblocking(true).unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = rx.local_addr().unwrap();
    let mut buf = [0u8; 2048];
    while !done.load(Ordering::Relaxed) {
        for _ in 0..20 {
            tx.send_to(&[0x5a; PAYLOAD], to).unwrap();
            sent.fetch_add(1, Ordering::Relaxed);
        }
        while rx.recv(&mut buf).is_ok() {}
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn counts_udp_packets_on_loopback() {
    if !kernel_or_skip() {
        return;
    }
    let done = AtomicBool::new(false);
    let sent = AtomicU64::new(0);
    let out = std::thread::scope(|s| {
        s.spawn(|| udp_traffic(&done, &sent));
        let out = Command::new(env!("CARGO_BIN_EXE_xdpcount"))
            .args(["--interface", "lo", "1", "2"])
            .output()
            .unwrap();
        done.store(true, Ordering::Relaxed);
        out
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");

    let mut lines = stdout.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("Counting packets on lo (ifindex "));
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["TIME", "PKTS/s", "BYTES/s"]);
    let rows: Vec<(u64, u64)> = lines
        .map(|l| {
            let (_, counts) = l.split_once(": ").unwrap();
            let n: Vec<u64> = counts
                .split_whitespace()
                .map(|n| n.parse().unwrap())
                .collect();
            (n[0], n[1])
        })
        .collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    assert!(sent.load(Ordering::Relaxed) > 0);
    for &(packets, bytes) in &rows {
        // ~2000 datagrams a second (fewer on a loaded machine); each is
        // Ethernet + IPv4 + UDP headers + payload on the wire of lo.
        assert!(packets >= 20, "{stdout}");
        assert!(
            bytes >= packets * (14 + 20 + 8 + PAYLOAD as u64),
            "{stdout}"
        );
    }
}
