//! Every attach kind this kernel allows, through the generated skeleton of
//! the `attach` fixture, observed to fire; kprobe and fentry (vfsstat)
//! counting where the kernel matrix says the kernel has them, refused with
//! the reason elsewhere; dropping the skeleton detaches everything.

use std::net::UdpSocket;
use std::os::fd::AsFd;
use std::sync::Mutex;

use skelgen_runtime::attach::{self, TcDirection};
use skelgen_runtime::section::AttachType;
use skelgen_skeleton_tests::attach::{AttachBpf, OpenAttachBpf};
use skelgen_test_support::matrix::{has, Feature};
use skelgen_test_support::{error_chain, fd_count, kernel as kernel_or_skip};

/// One test at a time: they share lo, the root cgroup and process-wide fd counts.
static SERIAL: Mutex<()> = Mutex::new(());

fn open() -> OpenAttachBpf {
    let mut open = AttachBpf::open().unwrap();
    open.rodata_mut().targ_tgid = std::process::id() as i32;
    open
}

fn load() -> AttachBpf {
    open().load().unwrap()
}

/// The uprobe target in this test binary.
#[no_mangle]
#[inline(never)]
pub extern "C" fn skelgen_uprobe_target(x: u64) -> u64 {
    std::hint::black_box(x) + 1
}

fn lo_ifindex() -> u32 {
    std::fs::read_to_string("/sys/class/net/lo/ifindex")
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn udp_to_lo(n: usize) {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..n {
        tx.send_to(b"skelgen", rx.local_addr().unwrap()).unwrap();
    }
    let mut buf = [0u8; 16];
    rx.set_read_timeout(Some(std::time::Duration::from_secs(1)))
        .unwrap();
    for _ in 0..n {
        let _ = rx.recv_from(&mut buf);
    }
}

#[test]
fn tracepoint_raw_tp_and_tp_btf_fire_through_attach() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !kernel_or_skip() {
        return;
    }
    let mut skel = load();
    skel.attach().unwrap();
    assert!(skel.links.handle_tracepoint.is_some());
    assert!(skel.links.handle_raw_tp.is_some());
    assert!(skel.links.handle_tp_btf.is_some());
    // Sections without a target are left for explicit calls.
    assert!(skel.links.handle_uprobe.is_none() && skel.links.handle_tc.is_none());
    for _ in 0..3 {
        let _ = std::os::unix::process::parent_id();
    }
    let b = skel.bss().read().unwrap();
    assert_eq!((b.tracepoint_hits, b.raw_tp_hits, b.tp_btf_hits), (3, 3, 3));
    // Dropping a link detaches its program.
    skel.links.handle_raw_tp = None;
    let _ = std::os::unix::process::parent_id();
    let b = skel.bss().read().unwrap();
    assert_eq!((b.tracepoint_hits, b.raw_tp_hits), (4, 3));
}

#[test]
fn uprobe_and_uretprobe_on_this_binary_and_on_libc() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !kernel_or_skip() {
        return;
    }
    let mut skel = load();
    let exe = std::env::current_exe().unwrap();
    let exe = exe.to_str().unwrap();
    let pid = Some(std::process::id() as i32);
    skel.links.handle_uprobe = Some(
        attach::attach_uprobe(
            skel.progs.handle_uprobe.fd().unwrap(),
            false,
            pid,
            exe,
            "skelgen_uprobe_target",
        )
        .unwrap(),
    );
    skel.links.handle_uretprobe = Some(
        attach::attach_uprobe(
            skel.progs.handle_uretprobe.fd().unwrap(),
            true,
            pid,
            exe,
            "skelgen_uprobe_target",
        )
        .unwrap(),
    );
    assert_eq!(skelgen_uprobe_target(41), 42);
    let b = skel.bss().read().unwrap();
    assert_eq!((b.uprobe_hits, b.uretprobe_hits), (1, 1));
    assert_eq!((b.uprobe_arg, b.uretprobe_ret), (41, 42));

    // libc: getppid(), found through the bare library name.
    let libc_skel = load();
    let _link = attach::attach_uprobe(
        libc_skel.progs.handle_uprobe.fd().unwrap(),
        false,
        pid,
        "libc.so.6",
        "getppid",
    )
    .unwrap();
    for _ in 0..2 {
        let _ = std::os::unix::process::parent_id();
    }
    assert_eq!(libc_skel.bss().uprobe_hits().unwrap(), 2);
}

#[test]
fn perf_event_software_clock() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !kernel_or_skip() {
        return;
    }
    let skel = load();
    let events = attach::open_cpu_clock_events(1000, None).unwrap();
    let links: Vec<_> = events
        .into_iter()
        .map(|e| attach::attach_perf_event(skel.progs.handle_perf_event.fd().unwrap(), e).unwrap())
        .collect();
    // Burn CPU in this process for a while so samples land on us.
    let start = std::time::Instant::now();
    let mut x = 0u64;
    while start.elapsed() < std::time::Duration::from_millis(300) {
        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
    }
    drop(links);
    assert!(
        skel.bss().perf_event_hits().unwrap() > 0,
        "no perf_event samples"
    );
}

#[test]
fn xdp_tc_cgroup_and_socket_count_packets_on_lo() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !kernel_or_skip() {
        return;
    }
    let mut skel = load();
    let lo = lo_ifindex();
    skel.links.handle_tc = tc_or_refused(skel.progs.handle_tc.fd().unwrap(), lo);
    let cgroup = std::fs::File::open(skelgen_test_support::cgroup2_root()).unwrap();
    skel.links.handle_cgroup_skb = Some(
        attach::attach_cgroup(
            skel.progs.handle_cgroup_skb.fd().unwrap(),
            cgroup.as_fd(),
            AttachType::CgroupInetEgress,
        )
        .unwrap(),
    );
    skel.links.handle_sock_create = Some(
        attach::attach_cgroup(
            skel.progs.handle_sock_create.fd().unwrap(),
            cgroup.as_fd(),
            AttachType::CgroupInetSockCreate,
        )
        .unwrap(),
    );
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    skel.links.handle_socket = Some(
        attach::attach_socket_filter(skel.progs.handle_socket.fd().unwrap(), rx.as_fd()).unwrap(),
    );
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..3 {
        tx.send_to(b"skelgen", rx.local_addr().unwrap()).unwrap();
    }
    let mut buf = [0u8; 16];
    for _ in 0..3 {
        rx.recv_from(&mut buf).unwrap();
    }
    udp_to_lo(2);
    let b = skel.bss().read().unwrap();
    assert!(
        skel.links.handle_tc.is_none() || b.tc_hits >= 3,
        "tc: {}",
        b.tc_hits
    );
    assert!(b.cgroup_skb_hits >= 3, "cgroup_skb: {}", b.cgroup_skb_hits);
    assert!(
        b.sock_create_hits >= 2,
        "sock_create: {}",
        b.sock_create_hits
    );
    assert!(b.socket_hits >= 3, "socket filter: {}", b.socket_hits);
}

/// tc ingress through `attach_tc` where the kernel has tcx links;
/// elsewhere checks that the refusal names what is missing, and gives `None`.
fn tc_or_refused(prog: std::os::fd::BorrowedFd<'_>, ifindex: u32) -> Option<attach::Link> {
    let result = attach::attach_tc(prog, ifindex, TcDirection::Ingress);
    if has(Feature::Tcx) {
        return Some(result.unwrap());
    }
    let err = result.expect_err("tc attached on a kernel without tcx links");
    assert!(err.to_string().contains("tcx links (Linux 6.6+)"), "{err}");
    None
}

/// Writes, fsyncs, reopens and reads back a temporary file: vfs_write,
/// vfs_open and vfs_read each run at least once.
fn vfs_calls() {
    use std::io::{Read, Write};
    let path = std::env::temp_dir().join(format!("skelgen-vfs-{}", std::process::id()));
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(b"skelgen").unwrap();
    f.sync_all().unwrap();
    drop(f);
    let mut text = String::new();
    std::fs::File::open(&path)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, "skelgen");
    std::fs::remove_file(&path).unwrap();
}

/// vfsstat's skeleton with one family of programs (`fentry` or `kprobe`)
/// loaded, attached and counting this test's VFS calls.
fn vfsstat_counts(family: &str) {
    use skelgen_skeleton_tests::vfsstat::VfsstatBpf;
    let mut open = VfsstatBpf::open().unwrap();
    let fentry = family == "fentry";
    open.progs.fentry_vfs_read.set_autoload(fentry);
    open.progs.fentry_vfs_write.set_autoload(fentry);
    open.progs.fentry_vfs_fsync.set_autoload(fentry);
    open.progs.fentry_vfs_open.set_autoload(fentry);
    open.progs.fentry_vfs_create.set_autoload(fentry);
    open.progs.kprobe_vfs_read.set_autoload(!fentry);
    open.progs.kprobe_vfs_write.set_autoload(!fentry);
    open.progs.kprobe_vfs_fsync.set_autoload(!fentry);
    open.progs.kprobe_vfs_open.set_autoload(!fentry);
    open.progs.kprobe_vfs_create.set_autoload(!fentry);
    let mut skel = open
        .load()
        .unwrap_or_else(|e| panic!("{family}: {}", error_chain(&e)));
    skel.attach()
        .unwrap_or_else(|e| panic!("{family}: {}", error_chain(&e)));
    vfs_calls();
    // No pid filter (as the real tool): the counts are at least ours.
    // (Not vfs_fsync: on Debian's 6.1 fentry on vfs_fsync counted none of
    // this test's fsync(2) calls on tmpfs; the kernel's call path there
    // does not go through the traced vfs_fsync.)
    let stats = skel.bss().read().unwrap().stats;
    for (i, what) in [(0, "read"), (1, "write"), (3, "open")] {
        assert!(stats[i] >= 1, "{family} counted no vfs_{what}: {stats:?}");
    }
}

#[test]
fn vfsstat_fentry_and_kprobes_count_or_are_refused_with_the_reason() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !kernel_or_skip() {
        return;
    }
    use skelgen_skeleton_tests::vfsstat::VfsstatBpf;
    if has(Feature::Trampolines) {
        vfsstat_counts("fentry");
    } else {
        // fentry: the kernel refuses the load; the error names the program
        // and carries the kernel's errno.
        let e = VfsstatBpf::open()
            .unwrap()
            .load()
            .err()
            .expect("fentry must not load without trampolines");
        let msg = error_chain(&e);
        assert!(
            msg.contains("fentry_vfs_") && msg.contains("load failed"),
            "{msg}"
        );
    }
    if has(Feature::Kprobes) {
        vfsstat_counts("kprobe");
    } else {
        let mut open = VfsstatBpf::open().unwrap();
        open.progs.fentry_vfs_read.set_autoload(false);
        open.progs.fentry_vfs_write.set_autoload(false);
        open.progs.fentry_vfs_fsync.set_autoload(false);
        open.progs.fentry_vfs_open.set_autoload(false);
        open.progs.fentry_vfs_create.set_autoload(false);
        let mut skel = open.load().unwrap();
        let e = skel.attach().expect_err("kprobes cannot attach here");
        let msg = error_chain(&e);
        assert!(
            msg.contains("kprobe") && msg.contains("CONFIG_KPROBES"),
            "{msg}"
        );
    }
}

/// Links of the kernel whose program is named `name`.
fn links_of(name: &str) -> usize {
    use skelgen_runtime::sys;
    let mut n = 0;
    let mut id = 0;
    while let Ok(Some(next)) = sys::get_next_id(sys::ObjKind::Link, id) {
        id = next;
        let Ok(fd) = sys::get_fd_by_id(sys::ObjKind::Link, id, 0) else {
            continue;
        };
        let Ok(info) = sys::link_info(&fd) else {
            continue;
        };
        let Ok(pfd) = sys::get_fd_by_id(sys::ObjKind::Prog, info.prog_id, 0) else {
            continue;
        };
        if sys::prog_info(&pfd).is_ok_and(|p| p.name() == name) {
            n += 1;
        }
    }
    n
}

#[test]
fn dropping_the_skeleton_detaches_everything() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !kernel_or_skip() {
        return;
    }
    let fds = fd_count();
    let mut skel = load();
    skel.attach().unwrap();
    let exe = std::env::current_exe().unwrap();
    skel.links.handle_uprobe = Some(
        attach::attach_uprobe_with(
            skel.progs.handle_uprobe.fd().unwrap(),
            exe.to_str().unwrap(),
            "skelgen_uprobe_target",
            &attach::UprobeOptions {
                mode: attach::ProbeMode::Legacy,
                ..attach::UprobeOptions::default()
            },
        )
        .unwrap(),
    );
    skel.links.handle_tc = tc_or_refused(skel.progs.handle_tc.fd().unwrap(), lo_ifindex());
    let tc_links = usize::from(skel.links.handle_tc.is_some());
    let legacy = skel
        .links
        .handle_uprobe
        .as_ref()
        .unwrap()
        .legacy_probe_event();
    let events = std::fs::read_to_string("/sys/kernel/tracing/uprobe_events").unwrap();
    let legacy = legacy.expect("a legacy uprobe event");
    assert!(events.contains(&legacy), "{events}");
    assert_eq!(links_of("handle_tp_btf"), 1);
    assert_eq!(links_of("handle_tc"), tc_links);
    drop(skel);
    assert_eq!(links_of("handle_tp_btf"), 0, "tp_btf link left behind");
    assert_eq!(links_of("handle_tc"), 0, "tcx link left behind");
    assert_eq!(links_of("handle_tracepoi"), 0, "perf link left behind");
    let events = std::fs::read_to_string("/sys/kernel/tracing/uprobe_events").unwrap();
    assert!(
        !events.contains(&legacy),
        "tracefs probe left behind: {events}"
    );
    assert_eq!(
        fd_count(),
        fds,
        "fds (links, perf events, maps, programs) left open"
    );
}
