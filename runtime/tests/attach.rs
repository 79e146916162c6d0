//! Attaching programs on the running kernel and watching them fire.
//!
//! Each kernel test loads a tiny hand-assembled program that bumps a counter
//! in an array map (only for this process where other processes could
//! trigger it), attaches it with `skelgen_runtime::attach`, drives it, and
//! checks that dropping the link stops the counting. The tests need root; as
//! another user they print why and pass, unless `SKELGEN_REQUIRE_KERNEL=1`.
//! They take a lock so that one test's triggers never reach another's program.

use std::net::UdpSocket;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use skelgen_runtime::attach::{
    self, AttachError, Link, ProbeMode, TcDirection, UprobeLocation, UprobeOptions,
};
use skelgen_runtime::btf::{Btf, Kind};
use skelgen_runtime::section::{AttachType, ProgType};
use skelgen_runtime::sys::{map_type, MapCreate, MapFd, ProgLoad};
use skelgen_test_support::kernel_serial;
use skelgen_test_support::matrix::{has, Feature};

// ---------------------------------------------------------------------------
// harness

fn tgid() -> u32 {
    std::process::id()
}

/// The trigger of the tracing tests: nothing else in this process calls it.
fn getppid() {
    // std's parent_id() is libc's getppid(), a real syscall each time.
    std::hint::black_box(std::os::unix::process::parent_id());
}

// ---------------------------------------------------------------------------
// a tiny assembler: "if this is ours, counter += 1; return ret"

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
    let mut out = [0u8; 8];
    out[0] = code;
    out[1] = (dst & 0xf) | (src << 4);
    out[2..4].copy_from_slice(&off.to_le_bytes());
    out[4..8].copy_from_slice(&imm.to_le_bytes());
    out
}

const LDX_DW: u8 = 0x79; // r_dst = *(u64 *)(r_src + off)
const JNE_K: u8 = 0x55; // if r_dst != imm goto +off
const RSH64_K: u8 = 0x77; // r_dst >>= imm
const MOV64_K: u8 = 0xb7; // r_dst = imm
const CALL: u8 = 0x85;
const EXIT: u8 = 0x95;
const LD_IMM64: u8 = 0x18;
const ATOMIC_DW: u8 = 0xdb; // lock *(u64 *)(r_dst + off) op= r_src
const PSEUDO_MAP_VALUE: u8 = 2;
const GET_CURRENT_PID_TGID: i32 = 14;

/// What a counting program checks before counting.
#[derive(Clone, Copy, Default)]
struct Filter {
    /// Only when `bpf_get_current_pid_tgid() >> 32` is this.
    tgid: Option<u32>,
    /// Only when the u64 at ctx + 8 is this (the syscall id of raw_tp and
    /// tp_btf `sys_enter`).
    ctx_arg1: Option<i32>,
}

/// `r0 = ret; exit` after bumping the u64 at offset 0 of array `map`'s
/// element 0, if `filter` passes.
fn counting_program(map: BorrowedFd<'_>, filter: Filter, ret: i32) -> Vec<u8> {
    use std::os::fd::AsRawFd;
    // (instruction, jump-to-end?)
    let mut code: Vec<([u8; 8], bool)> = Vec::new();
    if let Some(id) = filter.ctx_arg1 {
        code.push((insn(LDX_DW, 2, 1, 8, 0), false));
        code.push((insn(JNE_K, 2, 0, 0, id), true));
    }
    if let Some(tgid) = filter.tgid {
        code.push((insn(CALL, 0, 0, 0, GET_CURRENT_PID_TGID), false));
        code.push((insn(RSH64_K, 0, 0, 0, 32), false));
        code.push((insn(JNE_K, 0, 0, 0, tgid as i32), true));
    }
    code.push((
        insn(LD_IMM64, 1, PSEUDO_MAP_VALUE, 0, map.as_raw_fd()),
        false,
    ));
    code.push((insn(0, 0, 0, 0, 0), false)); // second half: value offset 0
    code.push((insn(MOV64_K, 2, 0, 0, 1), false));
    code.push((insn(ATOMIC_DW, 1, 2, 0, 0), false)); // BPF_ADD
    let end = code.len();
    code.push((insn(MOV64_K, 0, 0, 0, ret), false));
    code.push((insn(EXIT, 0, 0, 0, 0), false));
    let mut bytes = Vec::new();
    for (i, (mut ins, to_end)) in code.into_iter().enumerate() {
        if to_end {
            let off = (end - i - 1) as i16;
            ins[2..4].copy_from_slice(&off.to_le_bytes());
        }
        bytes.extend_from_slice(&ins);
    }
    bytes
}

/// A counter (one-element u64 array) and a program that bumps it.
struct Counter {
    map: MapFd,
}

impl Counter {
    fn new() -> Counter {
        Counter {
            map: MapCreate::new(map_type::ARRAY, 4, 8, 1)
                .name("attach_test")
                .create()
                .expect("create counter map"),
        }
    }

    fn get(&self) -> u64 {
        let mut value = [0u8; 8];
        assert!(self.map.lookup(&0u32.to_ne_bytes(), &mut value, 0).unwrap());
        u64::from_ne_bytes(value)
    }

    fn load(&self, prog_type: ProgType, filter: Filter, ret: i32) -> OwnedFd {
        self.load_with(prog_type, filter, ret, |p| p)
    }

    fn load_with(
        &self,
        prog_type: ProgType,
        filter: Filter,
        ret: i32,
        tweak: impl for<'a> FnOnce(ProgLoad<'a>) -> ProgLoad<'a>,
    ) -> OwnedFd {
        let insns = counting_program(self.map.as_fd(), filter, ret);
        let load = tweak(ProgLoad::new(prog_type.as_u32(), &insns, "GPL").name("attach_test"));
        match load.load() {
            Ok(p) => p.fd,
            Err(e) => panic!("load: {e}\n{:?}", e.verifier_log()),
        }
    }
}

fn ours() -> Filter {
    Filter {
        tgid: Some(tgid()),
        ctx_arg1: None,
    }
}

const NR_GETPPID: i32 = 110;

/// Wait (up to a second) for `f` to hold: links released through bpffs are
/// freed by a kernel work item.
fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(1) {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

// ---------------------------------------------------------------------------
// tracing

/// Call getppid `n` times with `link` attached, check the counter saw exactly
/// those, drop the link and check it sees no more.
fn count_getppid(counter: &Counter, link: Link) {
    let before = counter.get();
    for _ in 0..5 {
        getppid();
    }
    assert_eq!(counter.get() - before, 5, "{} counted getppid", link.kind());
    drop(link);
    let after = counter.get();
    getppid();
    getppid();
    assert_eq!(
        counter.get(),
        after,
        "still counting after the link dropped"
    );
}

#[test]
fn tracepoint_auto_attach() {
    let Some(_k) = kernel_serial() else { return };
    let counter = Counter::new();
    let prog = counter.load(ProgType::Tracepoint, ours(), 0);
    for section in [
        "tracepoint/syscalls/sys_enter_getppid",
        "tp/syscalls/sys_enter_getppid",
    ] {
        let link = attach::auto_attach(prog.as_fd(), "handle_tp", section)
            .unwrap()
            .expect("tracepoints auto-attach");
        assert!(link.perf_event_fd().is_some());
        count_getppid(&counter, link);
    }
    let link = attach::attach_tracepoint(prog.as_fd(), "syscalls", "sys_enter_getppid").unwrap();
    count_getppid(&counter, link);

    let err =
        attach::auto_attach(prog.as_fd(), "handle_tp", "tp/syscalls/sys_enter_nope").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("handle_tp")
            && msg.contains("tp/syscalls/sys_enter_nope")
            && msg.contains("no such tracepoint"),
        "{msg}"
    );
}

#[test]
fn raw_tracepoint_and_pin() {
    let Some(_k) = kernel_serial() else { return };
    let counter = Counter::new();
    let filter = Filter {
        tgid: Some(tgid()),
        ctx_arg1: Some(NR_GETPPID),
    };
    let prog = counter.load(ProgType::RawTracepoint, filter, 0);
    for section in ["raw_tp/sys_enter", "raw_tracepoint/sys_enter"] {
        let link = attach::auto_attach(prog.as_fd(), "handle_raw_tp", section)
            .unwrap()
            .expect("raw_tp auto-attaches");
        count_getppid(&counter, link);
    }

    // A pinned link outlives its handle; removing the pin detaches.
    let pin = format!("/sys/fs/bpf/skelgen_attach_test_{}", tgid());
    let _ = std::fs::remove_file(&pin);
    let mut link = attach::attach_raw_tracepoint(prog.as_fd(), "sys_enter").unwrap();
    link.pin(&pin).unwrap();
    assert_eq!(link.pin_path(), Some(Path::new(&pin)));
    drop(link);
    let before = counter.get();
    getppid();
    assert_eq!(counter.get(), before + 1, "pinned link stays attached");
    std::fs::remove_file(&pin).unwrap();
    assert!(
        eventually(|| {
            let now = counter.get();
            getppid();
            counter.get() == now
        }),
        "unpinned link still attached"
    );

    // unpin() and detach() on a handle.
    let mut link = attach::attach_raw_tracepoint(prog.as_fd(), "sys_enter").unwrap();
    link.pin(&pin).unwrap();
    link.unpin().unwrap();
    assert!(!Path::new(&pin).exists());
    link.detach().unwrap();
    let before = counter.get();
    getppid();
    assert_eq!(counter.get(), before);
}

fn vmlinux_id(name: &str, kind: Kind) -> u32 {
    let btf = Btf::from_vmlinux().expect("vmlinux BTF");
    btf.find_by_name_kind(name, kind)
        .unwrap_or_else(|| panic!("{name} not in vmlinux BTF"))
}

#[test]
fn tp_btf_auto_attach() {
    let Some(_k) = kernel_serial() else { return };
    let counter = Counter::new();
    let filter = Filter {
        tgid: Some(tgid()),
        ctx_arg1: Some(NR_GETPPID),
    };
    let btf_id = vmlinux_id("btf_trace_sys_enter", Kind::Typedef);
    let prog = counter.load_with(ProgType::Tracing, filter, 0, |p| {
        p.expected_attach_type(AttachType::TraceRawTp.as_u32())
            .attach_btf_id(btf_id)
    });
    let link = attach::auto_attach(prog.as_fd(), "handle_tp_btf", "tp_btf/sys_enter")
        .unwrap()
        .expect("tp_btf auto-attaches");
    count_getppid(&counter, link);
    let link = attach::attach_trace(prog.as_fd(), Some(AttachType::TraceRawTp)).unwrap();
    count_getppid(&counter, link);
}

#[test]
fn fentry_counts_where_the_kernel_has_trampolines() {
    let Some(_k) = kernel_serial() else { return };
    let counter = Counter::new();
    let btf = Btf::from_vmlinux().expect("vmlinux BTF");
    let (func, btf_id) = ["__x64_sys_getppid", "__do_sys_getppid"]
        .into_iter()
        .find_map(|f| btf.find_by_name_kind(f, Kind::Func).map(|id| (f, id)))
        .expect("a getppid function in vmlinux BTF");
    let insns = counting_program(counter.map.as_fd(), ours(), 0);
    let load = ProgLoad::new(ProgType::Tracing.as_u32(), &insns, "GPL")
        .expected_attach_type(AttachType::TraceFentry.as_u32())
        .attach_btf_id(btf_id)
        .load();
    if has(Feature::Trampolines) {
        let prog = load.unwrap_or_else(|e| panic!("fentry/{func} does not load: {e}"));
        // Auto-attach (like tp_btf), then an explicit attach: each counts
        // exactly this process's getppid calls and stops when dropped.
        let section = format!("fentry/{func}");
        let link = attach::auto_attach(prog.fd.as_fd(), "f", &section)
            .unwrap()
            .expect("fentry auto-attaches");
        count_getppid(&counter, link);
        let link = attach::attach_trace(prog.fd.as_fd(), Some(AttachType::TraceFentry)).unwrap();
        count_getppid(&counter, link);
    } else {
        // Kernels that refuse trampolines refuse the load itself.
        let e = load.expect_err("fentry loads on a kernel the table says refuses trampolines");
        assert!(e.is_permission_denied(), "{e}");
    }
}

/// The kernel function of the getppid syscall (x86-64 syscall wrapper).
const GETPPID_FUNC: &str = "__x64_sys_getppid";

#[test]
fn kprobes_count_or_the_error_names_missing_files() {
    let Some(_k) = kernel_serial() else { return };
    let counter = Counter::new();
    let prog = counter.load(ProgType::Kprobe, ours(), 0);
    if has(Feature::Kprobes) {
        // Entry and return probes, auto-attached from the section and
        // explicit, through the PMU and through legacy tracefs events: each
        // counts exactly this process's getppid calls.
        let section = format!("kprobe/{GETPPID_FUNC}");
        let link = attach::auto_attach(prog.as_fd(), "handle_kprobe", &section)
            .unwrap()
            .expect("kprobe auto-attaches");
        count_getppid(&counter, link);
        let link = attach::auto_attach(prog.as_fd(), "handle_ksys", "ksyscall/getppid")
            .unwrap()
            .expect("ksyscall auto-attaches");
        count_getppid(&counter, link);
        count_getppid(
            &counter,
            attach::attach_kprobe(prog.as_fd(), true, GETPPID_FUNC, 0).unwrap(),
        );
        for mode in [ProbeMode::Pmu, ProbeMode::Legacy] {
            let link =
                attach::attach_kprobe_with(prog.as_fd(), false, GETPPID_FUNC, 0, mode).unwrap();
            count_getppid(&counter, link);
        }
        // A function that does not exist is named in the error.
        let err = attach::attach_kprobe(prog.as_fd(), false, "skelgen_no_such_function", 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("skelgen_no_such_function"), "{err}");
        return;
    }
    let auto = attach::auto_attach(prog.as_fd(), "handle_kprobe", "kprobe/do_nanosleep");
    let explicit = attach::attach_kprobe(prog.as_fd(), true, "do_nanosleep", 0);
    let syscall = attach::auto_attach(prog.as_fd(), "handle_ksys", "ksyscall/getppid");
    for result in [auto.map(|_| ()), explicit.map(|_| ()), syscall.map(|_| ())] {
        let err = result.unwrap_err();
        assert!(matches!(err, AttachError::Unsupported { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("/sys/bus/event_source/devices/kprobe/type")
                && msg.contains("kprobe_events")
                && msg.contains("CONFIG_KPROBES"),
            "{msg}"
        );
    }
    let err = attach::auto_attach(prog.as_fd(), "handle_kprobe", "kprobe/do_nanosleep")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("program 'handle_kprobe' (sec 'kprobe/do_nanosleep'): cannot attach to kprobe do_nanosleep"),
        "{err}"
    );
    // Explicit calls name the program from the kernel.
    let err = attach::attach_kprobe(prog.as_fd(), false, "vfs_read", 0)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("program 'attach_test': "), "{err}");
}

// ---------------------------------------------------------------------------
// uprobes

/// The uprobe target in this test binary.
#[no_mangle]
#[inline(never)]
pub extern "C" fn skelgen_attach_uprobe_target(x: u64) -> u64 {
    std::hint::black_box(x) + 1
}

fn call_target() {
    let f: extern "C" fn(u64) -> u64 = std::hint::black_box(skelgen_attach_uprobe_target);
    assert_eq!(f(41), 42);
}

fn exe() -> String {
    std::env::current_exe()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
}

fn count_calls(counter: &Counter, link: Link, call: &dyn Fn()) {
    let before = counter.get();
    call();
    call();
    assert_eq!(counter.get() - before, 2, "{} counted calls", link.kind());
    drop(link);
    let after = counter.get();
    call();
    assert_eq!(
        counter.get(),
        after,
        "still counting after the link dropped"
    );
}

#[test]
fn uprobe_on_own_function() {
    let Some(_k) = kernel_serial() else { return };
    let counter = Counter::new();
    let prog = counter.load(ProgType::Kprobe, ours(), 0);
    let exe = exe();
    for retprobe in [false, true] {
        let link = attach::attach_uprobe(
            prog.as_fd(),
            retprobe,
            None,
            &exe,
            "skelgen_attach_uprobe_target",
        )
        .unwrap();
        count_calls(&counter, link, &call_target);
        // Only this process.
        let link = attach::attach_uprobe(
            prog.as_fd(),
            retprobe,
            Some(tgid() as i32),
            &exe,
            "skelgen_attach_uprobe_target",
        )
        .unwrap();
        count_calls(&counter, link, &call_target);
    }
    // By section name, as a skeleton does.
    for kind in ["uprobe", "uretprobe"] {
        let section = format!("{kind}/{exe}:skelgen_attach_uprobe_target");
        let link = attach::auto_attach(prog.as_fd(), "handle_uprobe", &section)
            .unwrap()
            .expect("uprobe with a target auto-attaches");
        count_calls(&counter, link, &call_target);
    }
    // By file offset.
    let data = std::fs::read(&exe).unwrap();
    let offset = attach::func_file_offset(&data, "skelgen_attach_uprobe_target").unwrap();
    let link = attach::attach_uprobe(prog.as_fd(), false, None, &exe, offset).unwrap();
    count_calls(&counter, link, &call_target);

    let err = attach::attach_uprobe(prog.as_fd(), false, None, &exe, "no_such_symbol_xyz")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no function symbol no_such_symbol_xyz"),
        "{err}"
    );
}

#[test]
fn uprobe_on_libc_by_library_name() {
    let Some(_k) = kernel_serial() else { return };
    let counter = Counter::new();
    let prog = counter.load(ProgType::Kprobe, ours(), 0);
    // libc's getppid(): only the tests of this file call it, one at a time.
    let call = getppid;
    for retprobe in [false, true] {
        let link =
            attach::attach_uprobe(prog.as_fd(), retprobe, None, "libc.so.6", "getppid").unwrap();
        count_calls(&counter, link, &call);
    }
    let link = attach::auto_attach(prog.as_fd(), "handle_libc", "uprobe/libc.so.6:getppid")
        .unwrap()
        .expect("auto-attaches");
    count_calls(&counter, link, &call);
}

fn uprobe_events() -> String {
    std::fs::read_to_string("/sys/kernel/tracing/uprobe_events")
        .or_else(|_| std::fs::read_to_string("/sys/kernel/debug/tracing/uprobe_events"))
        .unwrap_or_default()
}

#[test]
fn legacy_uprobe_events_are_removed() {
    let Some(_k) = kernel_serial() else { return };
    let counter = Counter::new();
    let prog = counter.load(ProgType::Kprobe, ours(), 0);
    let exe = exe();
    for retprobe in [false, true] {
        let opts = UprobeOptions {
            retprobe,
            mode: ProbeMode::Legacy,
            ..UprobeOptions::default()
        };
        let link = attach::attach_uprobe_with(
            prog.as_fd(),
            &exe,
            UprobeLocation::Symbol {
                name: "skelgen_attach_uprobe_target",
                offset: 0,
            },
            &opts,
        )
        .unwrap();
        let event = link.legacy_probe_event().expect("a legacy probe");
        assert!(
            event.starts_with(&format!("uprobes/skelgen_{}_", tgid())),
            "{event}"
        );
        assert!(
            uprobe_events().contains(&event),
            "{event} not in uprobe_events"
        );
        count_calls(&counter, link, &call_target);
        assert!(
            !uprobe_events().contains(&event),
            "{event} left in uprobe_events"
        );
    }
    // Explicit detach removes it too, and reports success.
    let opts = UprobeOptions {
        mode: ProbeMode::Legacy,
        ..UprobeOptions::default()
    };
    let link =
        attach::attach_uprobe_with(prog.as_fd(), &exe, "skelgen_attach_uprobe_target", &opts)
            .unwrap();
    let event = link.legacy_probe_event().unwrap();
    link.detach().unwrap();
    assert!(!uprobe_events().contains(&event));
}

// ---------------------------------------------------------------------------
// perf_event

#[test]
fn perf_event_cpu_clock() {
    let Some(_k) = kernel_serial() else { return };
    let counter = Counter::new();
    let prog = counter.load(ProgType::PerfEvent, ours(), 0);
    let events = attach::open_cpu_clock_events(1000, None).unwrap();
    assert!(!events.is_empty());
    let links: Vec<Link> = events
        .into_iter()
        .map(|perf| attach::attach_perf_event(prog.as_fd(), perf).unwrap())
        .collect();
    let spin = |ms| {
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(ms) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    };
    spin(200);
    let seen = counter.get();
    assert!(seen > 10, "only {seen} samples in 200 ms at 1000 Hz");
    drop(links);
    let after = counter.get();
    spin(50);
    assert_eq!(counter.get(), after);
}

// ---------------------------------------------------------------------------
// networking on lo

fn udp_pair() -> (UdpSocket, UdpSocket) {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    tx.connect(rx.local_addr().unwrap()).unwrap();
    (tx, rx)
}

fn send_one(tx: &UdpSocket, rx: &UdpSocket) {
    tx.send(b"skelgen attach test").unwrap();
    let mut buf = [0u8; 64];
    let n = rx.recv(&mut buf).expect("packet delivered");
    assert_eq!(&buf[..n], b"skelgen attach test");
}

fn count_packets(counter: &Counter, link: Link) {
    let (tx, rx) = udp_pair();
    let before = counter.get();
    send_one(&tx, &rx);
    assert!(counter.get() > before, "{} saw no packet", link.kind());
    drop(link);
    let after = counter.get();
    send_one(&tx, &rx);
    assert_eq!(
        counter.get(),
        after,
        "still counting after the link dropped"
    );
}

const LO: u32 = 1;

#[test]
fn xdp_on_lo() {
    let Some(_k) = kernel_serial() else { return };
    let counter = Counter::new();
    let prog = counter.load(ProgType::Xdp, Filter::default(), 2); // XDP_PASS
    assert!(attach::auto_attach(prog.as_fd(), "x", "xdp")
        .unwrap()
        .is_none());
    let link = attach::attach_xdp(prog.as_fd(), LO, 0).unwrap();
    count_packets(&counter, link);
}

#[test]
fn tc_on_lo() {
    let Some(_k) = kernel_serial() else { return };
    let counter = Counter::new();
    let prog = counter.load(ProgType::SchedCls, Filter::default(), 0); // TC_ACT_OK
    assert!(attach::auto_attach(prog.as_fd(), "t", "tc")
        .unwrap()
        .is_none());
    for direction in [TcDirection::Ingress, TcDirection::Egress] {
        if let Some(link) = tc_or_refused(prog.as_fd(), LO, direction) {
            count_packets(&counter, link);
        }
    }
}

/// `attach_tc` where the kernel has tcx links; elsewhere checks that the
/// refusal names what is missing, and gives `None`.
fn tc_or_refused(prog: BorrowedFd<'_>, ifindex: u32, direction: TcDirection) -> Option<Link> {
    let result = attach::attach_tc(prog, ifindex, direction);
    if has(Feature::Tcx) {
        return Some(result.unwrap());
    }
    let err = result.expect_err("tc attached on a kernel without tcx links");
    assert!(matches!(err, AttachError::Unsupported { .. }), "{err:?}");
    assert!(err.to_string().contains("tcx links (Linux 6.6+)"), "{err}");
    None
}

#[test]
fn cgroup_skb_egress() {
    let Some(_k) = kernel_serial() else { return };
    let counter = Counter::new();
    let prog = counter.load_with(ProgType::CgroupSkb, Filter::default(), 1, |p| {
        p.expected_attach_type(AttachType::CgroupInetEgress.as_u32())
    });
    let cgroup = std::fs::File::open(skelgen_test_support::cgroup2_root()).unwrap();
    let link =
        attach::attach_cgroup(prog.as_fd(), cgroup.as_fd(), AttachType::CgroupInetEgress).unwrap();
    count_packets(&counter, link);
}

#[test]
fn socket_filter_on_udp_socket() {
    let Some(_k) = kernel_serial() else { return };
    let counter = Counter::new();
    let prog = counter.load(ProgType::SocketFilter, Filter::default(), 0xffff);
    assert!(attach::auto_attach(prog.as_fd(), "s", "socket")
        .unwrap()
        .is_none());
    let (tx, rx) = udp_pair();
    let link = attach::attach_socket_filter(prog.as_fd(), rx.as_fd()).unwrap();
    send_one(&tx, &rx);
    send_one(&tx, &rx);
    assert_eq!(counter.get(), 2);
    link.detach().unwrap();
    send_one(&tx, &rx);
    assert_eq!(counter.get(), 2);
    // Drop detaches as well.
    let link = attach::attach_socket_filter(prog.as_fd(), rx.as_fd()).unwrap();
    send_one(&tx, &rx);
    assert_eq!(counter.get(), 3);
    drop(link);
    send_one(&tx, &rx);
    assert_eq!(counter.get(), 3);
}

// ---------------------------------------------------------------------------
// without a kernel

#[test]
fn manual_sections_are_not_auto_attached() {
    // No syscall is made for these: any fd will do.
    let file = std::fs::File::open("/dev/null").unwrap();
    for section in [
        "xdp",
        "tc",
        "tcx/ingress",
        "classifier",
        "cgroup_skb/egress",
        "cgroup/sock_create",
        "socket",
        "struct_ops/dummy",
        "perf_event",
        "sk_msg",
        "kprobe",
        "uprobe",
        "uretprobe",
        "usdt",
        "tracepoint",
        "raw_tp",
        "ksyscall",
        "netfilter",
    ] {
        let got = attach::auto_attach(file.as_fd(), "p", section);
        assert!(matches!(got, Ok(None)), "{section}: {got:?}");
    }
    for section in ["nonsense", "tracepoint/only_category", "kprobe/bad name"] {
        let err = attach::auto_attach(file.as_fd(), "p", section).unwrap_err();
        assert!(
            matches!(err, AttachError::Section { .. }),
            "{section}: {err:?}"
        );
        assert!(err.to_string().contains(section), "{err}");
    }
}

#[test]
fn library_lookup_errors_say_where() {
    let err = attach::resolve_binary("libskelgen-none.so.1").unwrap_err();
    for dir in attach::LIBRARY_DIRS {
        assert!(err.contains(dir), "{err}");
    }
    let libc = attach::resolve_binary("libc.so.6").unwrap();
    assert!(libc.is_absolute());
    let data = std::fs::read(&libc).unwrap();
    let off = attach::func_file_offset(&data, "getppid").unwrap();
    assert!(off > 0 && (off as usize) < data.len());
}

// ---------------------------------------------------------------------------
// the attach fixture, through the loader, as a skeleton drives it

mod fixture {
    use super::*;
    use skelgen_runtime::loader::{LoadedObject, OpenObject, OpenOptions};

    /// `.bss` offsets (attach.bpf.c's header: one __u64 per program, then
    /// uprobe_arg and uretprobe_ret).
    const RAW_TP_HITS: usize = 0;
    const TP_BTF_HITS: usize = 8;
    const TRACEPOINT_HITS: usize = 16;
    const UPROBE_HITS: usize = 24;
    const URETPROBE_HITS: usize = 32;
    const PERF_EVENT_HITS: usize = 48;
    const TC_HITS: usize = 56;
    const CGROUP_SKB_HITS: usize = 64;
    const SOCK_CREATE_HITS: usize = 72;
    const SOCKET_HITS: usize = 80;
    const UPROBE_ARG: usize = 88;
    const URETPROBE_RET: usize = 96;

    fn load() -> LoadedObject {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/attach.bpf.o"
        );
        let bytes = std::fs::read(path).unwrap();
        let mut open = OpenObject::open(&bytes, "attach", OpenOptions::default()).unwrap();
        let rodata = open
            .object()
            .maps
            .iter()
            .position(|m| m.name == ".rodata")
            .unwrap();
        // targ_tgid at offset 0.
        open.data_image_mut(rodata).unwrap().as_bytes_mut()[..4]
            .copy_from_slice(&(tgid() as i32).to_ne_bytes());
        open.load().unwrap()
    }

    fn bss(o: &LoadedObject, offset: usize) -> u64 {
        let index = o
            .object()
            .maps
            .iter()
            .position(|m| m.name == ".bss")
            .unwrap();
        let map = o.map(index).unwrap();
        let mut value = vec![0u8; map.fd.value_size() as usize];
        assert!(map.fd.lookup(&0u32.to_ne_bytes(), &mut value, 0).unwrap());
        u64::from_ne_bytes(value[offset..offset + 8].try_into().unwrap())
    }

    fn prog<'a>(o: &'a LoadedObject, name: &str) -> BorrowedFd<'a> {
        let index = o
            .object()
            .programs
            .iter()
            .position(|p| p.name == name)
            .unwrap();
        o.prog_fd(index).unwrap().as_fd()
    }

    #[test]
    fn auto_attach_every_program_then_drive_them() {
        let Some(_k) = kernel_serial() else { return };
        let o = load();
        // What a skeleton's attach() does: every program, by its section.
        let mut links = Vec::new();
        let mut manual = Vec::new();
        for (index, p) in o.object().programs.iter().enumerate() {
            let Some(fd) = o.prog_fd(index) else { continue };
            match attach::auto_attach(fd.as_fd(), &p.name, &p.section).unwrap() {
                Some(link) => links.push(link),
                None => manual.push(p.name.clone()),
            }
        }
        manual.sort();
        assert_eq!(
            manual,
            [
                "handle_cgroup_skb",
                "handle_perf_event",
                "handle_sock_create",
                "handle_socket",
                "handle_tc",
                "handle_uprobe",
                "handle_uretprobe",
                "handle_usdt"
            ]
        );
        for _ in 0..3 {
            getppid();
        }
        assert_eq!(bss(&o, RAW_TP_HITS), 3);
        assert_eq!(bss(&o, TP_BTF_HITS), 3);
        assert_eq!(bss(&o, TRACEPOINT_HITS), 3);
        drop(links);
        getppid();
        assert_eq!(bss(&o, RAW_TP_HITS), 3);
        assert_eq!(bss(&o, TP_BTF_HITS), 3);
        assert_eq!(bss(&o, TRACEPOINT_HITS), 3);

        // The explicit ones.
        let exe = exe();
        let up = attach::attach_uprobe(
            prog(&o, "handle_uprobe"),
            false,
            None,
            &exe,
            "skelgen_attach_uprobe_target",
        )
        .unwrap();
        let uret = attach::attach_uprobe(
            prog(&o, "handle_uretprobe"),
            true,
            Some(tgid() as i32),
            &exe,
            "skelgen_attach_uprobe_target",
        )
        .unwrap();
        call_target();
        assert_eq!(bss(&o, UPROBE_HITS), 1);
        assert_eq!(bss(&o, URETPROBE_HITS), 1);
        assert_eq!(bss(&o, UPROBE_ARG), 41);
        assert_eq!(bss(&o, URETPROBE_RET), 42);
        drop((up, uret));

        let perf: Vec<Link> = attach::open_cpu_clock_events(1000, None)
            .unwrap()
            .into_iter()
            .map(|fd| attach::attach_perf_event(prog(&o, "handle_perf_event"), fd).unwrap())
            .collect();
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(100) {
            std::hint::black_box(start.elapsed());
        }
        assert!(bss(&o, PERF_EVENT_HITS) > 0);
        drop(perf);

        let cgroup = std::fs::File::open(skelgen_test_support::cgroup2_root()).unwrap();
        let tc = tc_or_refused(prog(&o, "handle_tc"), LO, TcDirection::Ingress);
        let links = [
            attach::attach_cgroup(
                prog(&o, "handle_cgroup_skb"),
                cgroup.as_fd(),
                AttachType::CgroupInetEgress,
            )
            .unwrap(),
            attach::attach_cgroup(
                prog(&o, "handle_sock_create"),
                cgroup.as_fd(),
                AttachType::CgroupInetSockCreate,
            )
            .unwrap(),
        ];
        let (tx, rx) = udp_pair();
        let filter = attach::attach_socket_filter(prog(&o, "handle_socket"), rx.as_fd()).unwrap();
        send_one(&tx, &rx);
        assert!(tc.is_none() || bss(&o, TC_HITS) >= 1);
        assert!(bss(&o, CGROUP_SKB_HITS) >= 1);
        assert!(bss(&o, SOCK_CREATE_HITS) >= 2, "udp_pair made two sockets");
        assert_eq!(bss(&o, SOCKET_HITS), 1);
        drop((links, tc));
        drop(filter);
    }
}

// ---------------------------------------------------------------------------
// iterators, sockmap, netfilter: attach and detach

/// `r0 = ret; exit`.
fn return_const(ret: i32) -> Vec<u8> {
    [insn(MOV64_K, 0, 0, 0, ret), insn(EXIT, 0, 0, 0, 0)].concat()
}

#[test]
fn iter_auto_attach_and_read() {
    let Some(_k) = kernel_serial() else { return };
    let btf_id = vmlinux_id("bpf_iter_task", Kind::Func);
    let insns = return_const(0);
    let prog = ProgLoad::new(ProgType::Tracing.as_u32(), &insns, "GPL")
        .expected_attach_type(AttachType::TraceIter.as_u32())
        .attach_btf_id(btf_id)
        .load();
    // Iterators need no trampoline: they load on every kernel of the matrix.
    let prog = prog.unwrap_or_else(|e| panic!("{e}")).fd;
    let link = attach::auto_attach(prog.as_fd(), "dump_task", "iter/task")
        .unwrap()
        .expect("iter auto-attaches");
    let out = skelgen_runtime::sys::iter_create(link.fd().unwrap()).unwrap();
    // The program prints nothing: the iterator reads empty.
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::fs::File::from(out), &mut text).unwrap();
    assert!(text.is_empty());
}

#[test]
fn sockmap_prog_attach_detaches_on_drop() {
    let Some(_k) = kernel_serial() else { return };
    const SOCKMAP: u32 = 15;
    let map = MapCreate::new(SOCKMAP, 4, 4, 4).create().unwrap();
    let insns = return_const(1); // SK_PASS
    let prog = ProgLoad::new(ProgType::SkSkb.as_u32(), &insns, "GPL")
        .expected_attach_type(AttachType::SkSkbStreamVerdict.as_u32())
        .load()
        .unwrap()
        .fd;
    let link =
        attach::attach_sockmap(prog.as_fd(), map.as_fd(), AttachType::SkSkbStreamVerdict).unwrap();
    link.detach().unwrap();
    // Detached: detaching again finds nothing.
    let again =
        attach::attach_sockmap(prog.as_fd(), map.as_fd(), AttachType::SkSkbStreamVerdict).unwrap();
    drop(again);
    let err = skelgen_runtime::sys::prog_detach(
        skelgen_runtime::sys::AttachTarget::Fd(map.as_fd()),
        Some(prog.as_fd()),
        AttachType::SkSkbStreamVerdict.as_u32(),
    )
    .unwrap_err();
    assert_eq!(err.errno(), Some(libc_enoent()), "{err}");
}

fn libc_enoent() -> i32 {
    std::io::Error::from(std::io::ErrorKind::NotFound)
        .raw_os_error()
        .unwrap_or(2)
}

#[test]
fn netfilter_link() {
    let Some(_k) = kernel_serial() else { return };
    let insns = return_const(1); // NF_ACCEPT
    let prog = match ProgLoad::new(ProgType::Netfilter.as_u32(), &insns, "GPL")
        .expected_attach_type(AttachType::Netfilter.as_u32())
        .load()
    {
        Ok(p) => p.fd,
        Err(e) => {
            assert!(
                !has(Feature::Netfilter),
                "netfilter programs do not load: {e}"
            );
            return;
        }
    };
    assert!(
        has(Feature::Netfilter),
        "netfilter loads on a kernel without it"
    );
    let hook = attach::NetfilterHook {
        pf: 2,      // NFPROTO_IPV4
        hooknum: 3, // NF_INET_LOCAL_OUT
        priority: 1000,
        flags: 0,
    };
    match attach::attach_netfilter(prog.as_fd(), hook) {
        Ok(link) => {
            let (tx, rx) = udp_pair();
            send_one(&tx, &rx); // NF_ACCEPT lets it through
            link.detach().unwrap();
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains("netfilter pf 2 hook 3"), "{msg}");
            eprintln!("no netfilter links here: {e}");
        }
    }
}
