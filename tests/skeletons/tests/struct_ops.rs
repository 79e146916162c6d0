//! struct_ops through the generated skeleton: a BPF TCP congestion control
//! (the `struct_ops` fixture) registered by `attach()` — with a map update
//! (`.struct_ops`) and with a BPF link (`.struct_ops.link`) — selected on a
//! loopback TCP socket with `setsockopt(TCP_CONGESTION)`, its callbacks seen
//! running while data flows, and gone (the name unknown) once the
//! registration is dropped. Kernels without struct_ops links refuse the
//! link map: that refusal is checked where the kernel matrix says so.
//!
//! struct_ops needs no ftrace: the host kernel, which refuses fentry and
//! friends, runs it (its struct_ops trampolines are not ftrace attachments).

use std::ffi::c_char;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use skelgen_runtime::sys::{set_tcp_congestion, tcp_congestion};
use skelgen_skeleton_tests::struct_ops::{OpenStructOpsBpf, StructOpsBpf};
use skelgen_test_support::matrix::{has, Feature};
use skelgen_test_support::{error_chain, kernel_serial};

/// Bytes sent through the congestion control: enough for the sender to be
/// limited by its window, so that `cong_avoid` runs.
const TRANSFER: usize = 16 << 20;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Via {
    MapUpdate,
    Link,
}

/// A name no other run has registered (`TCP_CA_NAME_MAX` is 16 with the NUL).
fn unique_name(prefix: &str) -> String {
    format!("{prefix}{}", std::process::id() % 1_000_000)
}

fn c_name(name: &str) -> [c_char; 16] {
    let mut out = [0 as c_char; 16];
    for (d, s) in out.iter_mut().zip(name.bytes().take(15)) {
        *d = s as c_char;
    }
    out
}

/// The skeleton with only `via`'s map created, registering as `name`.
fn open(via: Via, name: &str) -> OpenStructOpsBpf {
    let mut open = StructOpsBpf::open().unwrap();
    assert!(!open.maps.skel_cc.autocreate() && !open.maps.skel_cc_link.autocreate());
    match via {
        Via::MapUpdate => {
            open.maps.skel_cc.set_autocreate(true);
            assert_eq!(open.struct_ops.skel_cc.name, c_name("skel_cc"));
            open.struct_ops.skel_cc.name = c_name(name);
        }
        Via::Link => {
            open.maps.skel_cc_link.set_autocreate(true);
            open.struct_ops.skel_cc_link.name = c_name(name);
        }
    }
    open
}

fn available() -> String {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_available_congestion_control").unwrap()
}

/// Sends [`TRANSFER`] bytes over loopback TCP from a socket using
/// congestion control `name`, then closes both ends.
fn transfer(name: &str) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let reader = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0;
        loop {
            match s.read(&mut buf) {
                Ok(0) => break total,
                Ok(n) => total += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("read: {e}"),
            }
        }
    });
    let mut tx = TcpStream::connect(addr).unwrap();
    set_tcp_congestion(&tx, name).unwrap();
    assert_eq!(tcp_congestion(&tx).unwrap(), name);
    let chunk = vec![0x5au8; 1 << 16];
    for _ in 0..TRANSFER / chunk.len() {
        tx.write_all(&chunk).unwrap();
    }
    tx.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(reader.join().unwrap(), TRANSFER);
    drop(tx);
}

/// The callbacks' counts: (init, release, cong_avoid).
fn counts(skel: &StructOpsBpf) -> (u64, u64, u64) {
    let bss = skel.bss().read().unwrap();
    (bss.init_calls, bss.release_calls, bss.cong_avoid_calls)
}

/// Registers through `via`, drives the congestion control, unregisters.
fn congestion_control_runs(via: Via) {
    let name = unique_name(if via == Via::Link { "skl" } else { "skm" });
    let loaded = open(via, &name).load();
    if via == Via::Link && !has(Feature::StructOpsLink) {
        let msg = error_chain(&loaded.err().expect("a .struct_ops.link map was created"));
        assert!(
            msg.contains("skel_cc_link") && msg.contains("no struct_ops links"),
            "expected the missing struct_ops links named: {msg}"
        );
        return;
    }
    let mut skel = loaded.unwrap();
    assert!(!available().contains(&name), "registered before attach");
    let map = match via {
        Via::MapUpdate => skel.maps.skel_cc.as_ref(),
        Via::Link => skel.maps.skel_cc_link.as_ref(),
    }
    .expect("the map was created");
    assert_eq!(map.type_name(), "tcp_congestion_ops");
    assert_eq!(map.uses_link(), via == Via::Link);
    assert!(skel.maps.skel_cc.is_some() == (via == Via::MapUpdate));
    skel.attach().unwrap();
    let link = match via {
        Via::MapUpdate => skel.links.skel_cc.as_ref(),
        Via::Link => skel.links.skel_cc_link.as_ref(),
    }
    .expect("attach() registered the map");
    assert_eq!(
        link.kind(),
        if via == Via::Link {
            "BPF link"
        } else {
            "struct_ops registration"
        }
    );
    assert!(
        available().split_whitespace().any(|n| n == name),
        "{name} not in tcp_available_congestion_control: {}",
        available()
    );
    // attach() again keeps the registration it has.
    skel.attach().unwrap();

    assert_eq!(counts(&skel), (0, 0, 0));
    transfer(&name);
    // The sender's socket is destroyed (and its release callback run) once
    // its FIN is acknowledged, which may trail the close a little.
    let deadline = Instant::now() + Duration::from_secs(5);
    while counts(&skel).1 == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let (init, release, cong_avoid) = counts(&skel);
    assert!(init >= 1, "init ran {init} times");
    assert!(release >= 1, "release ran {release} times");
    assert!(cong_avoid > 0, "cong_avoid ran {cong_avoid} times");

    match via {
        Via::MapUpdate => skel.links.skel_cc = None,
        Via::Link => skel.links.skel_cc_link = None,
    }
    assert!(!available().split_whitespace().any(|n| n == name));
    let s = TcpStream::connect(
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap(),
    )
    .unwrap();
    let e = set_tcp_congestion(&s, &name).unwrap_err();
    let errno = e.errno().expect("an errno");
    assert_eq!(
        std::io::Error::from_raw_os_error(errno).kind(),
        ErrorKind::NotFound,
        "{e}"
    );

    // Registering again: a link map backs a new link; a plain map's value
    // is spent.
    let again = skel.attach();
    match via {
        Via::Link => {
            again.unwrap();
            assert!(available().split_whitespace().any(|n| n == name));
        }
        Via::MapUpdate => {
            let msg = error_chain(&again.expect_err("a .struct_ops map registered twice"));
            assert!(msg.contains("registers once"), "{msg}");
        }
    }
}

#[test]
fn congestion_control_registered_by_map_update_runs_and_unregisters_on_drop() {
    let Some(_s) = kernel_serial() else { return };
    congestion_control_runs(Via::MapUpdate);
}

#[test]
fn congestion_control_registered_by_link_runs_and_unregisters_on_drop() {
    let Some(_s) = kernel_serial() else { return };
    congestion_control_runs(Via::Link);
}

#[test]
fn with_no_struct_ops_map_created_nothing_of_it_loads() {
    let Some(_s) = kernel_serial() else { return };
    let skel = StructOpsBpf::open().unwrap().load().unwrap();
    assert!(skel.maps.skel_cc.is_none() && skel.maps.skel_cc_link.is_none());
    assert!(!skel.progs.skel_ssthresh.is_loaded());
    assert!(!skel.progs.skel_release.is_loaded());
}

#[test]
fn a_set_member_the_kernel_lacks_is_refused_and_skipped_once_zeroed() {
    let Some(_s) = kernel_serial() else { return };
    let mut open = StructOpsBpf::open().unwrap();
    open.maps.skel_cc_extra.set_autocreate(true);
    assert_eq!(open.struct_ops.skel_cc_extra.skelgen_extra, 1);
    let msg = error_chain(&open.load().err().expect("skelgen_extra = 1 accepted"));
    assert!(
        msg.contains("skel_cc_extra")
            && msg.contains("'skelgen_extra'")
            && msg.contains("has no such member"),
        "{msg}"
    );

    // Zeroed before load, the member is left out and the rest registers.
    let name = unique_name("skx");
    let mut open = StructOpsBpf::open().unwrap();
    open.maps.skel_cc_extra.set_autocreate(true);
    open.struct_ops.skel_cc_extra.skelgen_extra = 0;
    open.struct_ops.skel_cc_extra.name = c_name(&name);
    let mut skel = open.load().unwrap();
    // init and release are not members of this flavour: not loaded.
    assert!(skel.progs.skel_ssthresh.is_loaded() && !skel.progs.skel_init.is_loaded());
    skel.attach().unwrap();
    assert!(available().split_whitespace().any(|n| n == name));
    drop(skel);
    assert!(!available().split_whitespace().any(|n| n == name));
}

#[test]
fn a_data_member_of_another_size_than_the_kernels_is_refused() {
    let Some(_s) = kernel_serial() else { return };
    let mut open = StructOpsBpf::open().unwrap();
    open.maps.skel_cc_wide.set_autocreate(true);
    let msg = error_chain(&open.load().err().expect("an 8-byte flags accepted"));
    assert!(
        msg.contains("skel_cc_wide")
            && msg.contains("'flags'")
            && msg.contains("8 bytes here, 4 in the kernel's struct tcp_congestion_ops"),
        "{msg}"
    );
}

#[test]
fn a_function_pointer_written_before_load_is_refused() {
    let Some(_s) = kernel_serial() else { return };
    let mut open = open(Via::MapUpdate, &unique_name("skf"));
    assert_eq!(open.struct_ops.skel_cc.init, 0);
    open.struct_ops.skel_cc.init = 1;
    let msg = error_chain(
        &open
            .load()
            .err()
            .expect("a written function pointer accepted"),
    );
    assert!(
        msg.contains("skel_cc") && msg.contains("'init'") && msg.contains("function pointer"),
        "{msg}"
    );
}
