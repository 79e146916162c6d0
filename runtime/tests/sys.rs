//! The syscall layer against the real kernel (root only) and against the fake
//! gateway (anywhere).
//!
//! Kernel tests print a reason and return when not root, unless
//! `SKELGEN_REQUIRE_KERNEL=1`, which turns the skip into a failure. They hold one
//! lock so that the fd-count test sees no other test's fds.

use std::cell::RefCell;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::rc::Rc;

use skelgen_runtime::sys::{
    self, elem_flags, map_flags, map_type, prog_type, Access, BatchOpts, Cmd, Epoll, EpollEvent,
    FakeReturn, LinkCreate, LinkExtra, LinkTarget, MapCreate, MapFd, Mmap, ObjKind, PerfEventAttr,
    ProgLoad, SysError, TestRun,
};
use skelgen_test_support::{fd_count, kernel_serial, serial};

// ---------------------------------------------------------------------------
// Helpers

/// One raw instruction in native byte order.
fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
    let regs = if cfg!(target_endian = "little") {
        dst | (src << 4)
    } else {
        (dst << 4) | src
    };
    let mut out = [0u8; 8];
    out[0] = code;
    out[1] = regs;
    out[2..4].copy_from_slice(&off.to_ne_bytes());
    out[4..8].copy_from_slice(&imm.to_ne_bytes());
    out
}

const MOV64_IMM: u8 = 0xb7;
const EXIT: u8 = 0x95;

/// `r0 = value; exit`.
fn return_const(value: i32) -> Vec<u8> {
    [insn(MOV64_IMM, 0, 0, 0, value), insn(EXIT, 0, 0, 0, 0)].concat()
}

fn dev_null() -> OwnedFd {
    File::open("/dev/null").expect("open /dev/null").into()
}

fn u32_key(k: u32) -> [u8; 4] {
    k.to_ne_bytes()
}

// ---------------------------------------------------------------------------
// Kernel tests

#[test]
fn hash_map_element_and_batch_commands() {
    let Some(_k) = kernel_serial() else { return };
    let map = MapCreate::new(map_type::HASH, 4, 8, 64)
        .name("sys_test_hash")
        .create()
        .unwrap();
    for k in 1..=5u32 {
        map.update(
            &u32_key(k),
            &u64::from(k * 10).to_ne_bytes(),
            elem_flags::ANY,
        )
        .unwrap();
    }
    let mut value = [0u8; 8];
    assert!(map.lookup(&u32_key(3), &mut value, 0).unwrap());
    assert_eq!(u64::from_ne_bytes(value), 30);
    assert!(!map.lookup(&u32_key(99), &mut value, 0).unwrap());

    // NOEXIST on an existing key: EEXIST, reported with the op.
    let err = map
        .update(&u32_key(3), &[0; 8], elem_flags::NOEXIST)
        .unwrap_err();
    assert_eq!(err.errno(), Some(libc::EEXIST));
    assert_eq!(err.op(), "BPF_MAP_UPDATE_ELEM");

    // Wrong key size: refused before the call.
    let err = map.lookup(&[0u8; 3], &mut value, 0).unwrap_err();
    assert!(matches!(err, SysError::InvalidArgument { .. }), "{err}");
    let err = map.lookup(&u32_key(1), &mut [0u8; 7], 0).unwrap_err();
    assert!(matches!(err, SysError::InvalidArgument { .. }), "{err}");

    assert!(map.delete(&u32_key(5)).unwrap());
    assert!(!map.delete(&u32_key(5)).unwrap());

    // Walk the keys.
    let mut keys = Vec::new();
    let mut next = [0u8; 4];
    let mut current: Option<[u8; 4]> = None;
    while map
        .next_key(current.as_ref().map(|k| &k[..]), &mut next)
        .unwrap()
    {
        keys.push(u32::from_ne_bytes(next));
        current = Some(next);
    }
    keys.sort();
    assert_eq!(keys, vec![1, 2, 3, 4]);

    // lookup_and_delete on a hash map (5.14+).
    assert!(map
        .lookup_and_delete(Some(&u32_key(4)), &mut value, 0)
        .unwrap());
    assert_eq!(u64::from_ne_bytes(value), 40);
    assert!(!map.lookup(&u32_key(4), &mut value, 0).unwrap());

    // Batches: add 10..20, read everything back, delete the new ones.
    let new_keys: Vec<u8> = (10..20u32).flat_map(u32_key).collect();
    let new_values: Vec<u8> = (10..20u64).flat_map(|v| (v * 10).to_ne_bytes()).collect();
    let done = map
        .update_batch(&new_keys, &new_values, BatchOpts::default())
        .unwrap();
    assert_eq!(done.count, 10);

    let mut seen = Vec::new();
    let mut cursor: Option<Vec<u8>> = None;
    loop {
        let mut out_batch = vec![0u8; map.batch_cursor_size()];
        let mut keys = vec![0u8; 4 * 8];
        let mut values = vec![0u8; 8 * 8];
        let r = map
            .lookup_batch(
                cursor.as_deref(),
                &mut out_batch,
                &mut keys,
                &mut values,
                8,
                BatchOpts::default(),
            )
            .unwrap();
        for i in 0..r.count {
            let k = u32::from_ne_bytes(keys[i * 4..i * 4 + 4].try_into().unwrap());
            let v = u64::from_ne_bytes(values[i * 8..i * 8 + 8].try_into().unwrap());
            assert_eq!(v, u64::from(k) * 10);
            seen.push(k);
        }
        if r.finished {
            break;
        }
        cursor = Some(out_batch);
    }
    seen.sort();
    let mut want: Vec<u32> = vec![1, 2, 3];
    want.extend(10..20);
    assert_eq!(seen, want);

    let done = map.delete_batch(&new_keys, BatchOpts::default()).unwrap();
    assert_eq!(done.count, 10);
    assert!(!map.lookup(&u32_key(15), &mut value, 0).unwrap());
    // A keys buffer that is not whole keys is refused.
    assert!(map.delete_batch(&[0u8; 5], BatchOpts::default()).is_err());
}

#[test]
fn mmapable_array_through_map_and_mapping_then_freeze() {
    let Some(_k) = kernel_serial() else { return };
    let map = MapCreate::new(map_type::ARRAY, 4, 8, 4)
        .flags(map_flags::MMAPABLE)
        .name("sys_test_mmap")
        .create()
        .unwrap();
    let len = sys::page_size();
    {
        let mut mapping = Mmap::new(&map, len, 0, Access::ReadWrite).unwrap();
        assert_eq!(mapping.len(), len);
        assert!(!mapping.as_ptr().is_null());

        // Write through the map, read through the mapping.
        map.update(&u32_key(2), &0xdead_beef_u64.to_ne_bytes(), 0)
            .unwrap();
        let mut got = [0u8; 8];
        mapping.read_volatile(16, &mut got).unwrap();
        assert_eq!(u64::from_ne_bytes(got), 0xdead_beef);

        // Write through the mapping, read through the map.
        mapping.write_volatile(8, &7u64.to_ne_bytes()).unwrap();
        let mut value = [0u8; 8];
        assert!(map.lookup(&u32_key(1), &mut value, 0).unwrap());
        assert_eq!(u64::from_ne_bytes(value), 7);
        assert_eq!(mapping.load_acquire_u64(8).unwrap(), 7);

        // Bounds and alignment are checked.
        assert!(mapping.read_volatile(len - 4, &mut got).is_err());
        assert!(mapping.read_volatile(usize::MAX, &mut got).is_err());
        assert!(mapping.load_acquire_u64(4).is_err());

        // Read-only mappings refuse writes.
        let mut ro = Mmap::new(&map, len, 0, Access::Read).unwrap();
        assert!(ro.write_volatile(0, &[1]).is_err());
    }
    // Freezing needs the writable mapping gone (dropped above).
    map.freeze().unwrap();
    let err = map.update(&u32_key(0), &[0; 8], 0).unwrap_err();
    assert!(err.is_permission_denied(), "{err}");
    assert!(err.to_string().contains("frozen"), "{err}");
}

#[test]
fn percpu_values_are_sized_per_cpu() {
    let Some(_k) = kernel_serial() else { return };
    let cpus = sys::num_possible_cpus().unwrap();
    assert_eq!(cpus, sys::possible_cpus().unwrap().len());
    let map = MapCreate::new(map_type::PERCPU_ARRAY, 4, 4, 1)
        .create()
        .unwrap();
    assert_eq!(map.user_value_size().unwrap(), 8 * cpus);
    let mut values = vec![0u8; 8 * cpus];
    assert!(map.lookup(&u32_key(0), &mut values, 0).unwrap());
    let err = map.lookup(&u32_key(0), &mut [0u8; 4], 0).unwrap_err();
    assert!(matches!(err, SysError::InvalidArgument { .. }), "{err}");
}

#[test]
fn xdp_program_test_run_and_info() {
    let Some(_k) = kernel_serial() else { return };
    let insns = return_const(2); // XDP_PASS
    let prog = ProgLoad::new(prog_type::XDP, &insns, "GPL")
        .name("sys_test_xdp")
        .load()
        .unwrap();
    assert!(prog.log.is_empty());

    // Run statistics count every test run while this fd is open.
    let stats = sys::enable_stats(sys::STATS_RUN_TIME).unwrap();
    let before = sys::prog_info(&prog.fd).unwrap().run_cnt;
    let packet = [0xabu8; 64];
    let mut out = [0u8; 128];
    let result = TestRun::new()
        .data_in(&packet)
        .data_out(&mut out)
        .repeat(7)
        .run(&prog.fd)
        .unwrap();
    assert_eq!(result.retval, 2);
    assert_eq!(result.data_size_out, 64);
    assert_eq!(&out[..64], &packet[..]);
    let info = sys::prog_info(&prog.fd).unwrap();
    assert_eq!(info.run_cnt - before, 7, "the repeat count is what ran");
    drop(stats);

    assert_eq!(info.name(), "sys_test_xdp");
    assert_eq!(info.prog_type, prog_type::XDP);
    assert!(info.id > 0);
    assert!(info.is_gpl_compatible());
    assert_eq!(info.xlated_prog_len as usize, insns.len());

    // The id leads back to the program.
    let mut found = false;
    let mut id = 0;
    while let Some(next) = sys::get_next_id(ObjKind::Prog, id).unwrap() {
        if next == info.id {
            found = true;
            break;
        }
        id = next;
    }
    assert!(found, "program id {} not listed", info.id);
    let again = sys::get_fd_by_id(ObjKind::Prog, info.id, 0).unwrap();
    assert_eq!(sys::prog_info(&again).unwrap().id, info.id);

    // A small output buffer: ENOSPC, not an overflow.
    let mut small = [0u8; 8];
    let err = TestRun::new()
        .data_in(&packet)
        .data_out(&mut small)
        .run(&prog.fd)
        .unwrap_err();
    assert_eq!(err.errno(), Some(libc::ENOSPC), "{err}");
}

#[test]
fn verifier_rejection_carries_the_log() {
    let Some(_k) = kernel_serial() else { return };
    let insns = insn(EXIT, 0, 0, 0, 0);
    let err = ProgLoad::new(prog_type::XDP, &insns, "GPL")
        .name("bad")
        .load()
        .unwrap_err();
    let log = err.verifier_log().expect("a verifier log");
    assert!(log.contains("R0 !read_ok"), "{log}");
    assert_eq!(err.errno(), Some(libc::EACCES));
    assert!(err.to_string().contains("`bad`"), "{err}");

    // Asking for a log up front returns it on success too.
    let ok = ProgLoad::new(prog_type::XDP, &return_const(2), "GPL")
        .log_level(1)
        .load()
        .unwrap();
    assert!(ok.log.contains("processed"), "{}", ok.log);

    // Instruction bytes that are not whole instructions never reach the kernel.
    let err = ProgLoad::new(prog_type::XDP, &[0u8; 7], "GPL")
        .load()
        .unwrap_err();
    assert!(matches!(err, SysError::InvalidArgument { .. }), "{err}");
}

#[test]
fn map_info_by_fd_and_id() {
    let Some(_k) = kernel_serial() else { return };
    let map = MapCreate::new(map_type::HASH, 8, 16, 32)
        .name("sys-test-info")
        .create()
        .unwrap();
    let info = sys::map_info(&map).unwrap();
    assert_eq!(info.name(), "sys_test_info", "sanitised name");
    assert_eq!(info.map_type, map_type::HASH);
    assert_eq!(
        (info.key_size, info.value_size, info.max_entries),
        (8, 16, 32)
    );
    assert!(info.id > 0);
    let reopened = MapFd::from_fd(sys::get_fd_by_id(ObjKind::Map, info.id, 0).unwrap()).unwrap();
    assert_eq!((reopened.key_size(), reopened.value_size()), (8, 16));
    reopened.update(&[1u8; 8], &[2u8; 16], 0).unwrap();
    let mut value = [0u8; 16];
    assert!(map.lookup(&[1u8; 8], &mut value, 0).unwrap());
    assert_eq!(value, [2u8; 16]);
}

#[test]
fn btf_load_info_and_rejection() {
    let Some(_k) = kernel_serial() else { return };
    // Header, `int`, strings "\0int\0".
    let mut btf = Vec::new();
    btf.extend_from_slice(&0xeb9fu16.to_ne_bytes());
    btf.extend_from_slice(&[1, 0]);
    for word in [24u32, 0, 16, 16, 5, 1, 1 << 24, 4, 0x0100_0020] {
        btf.extend_from_slice(&word.to_ne_bytes());
    }
    btf.extend_from_slice(b"\0int\0");
    let fd = sys::btf_load(&btf, 0).unwrap();
    let info = sys::btf_info(&fd).unwrap();
    assert_eq!(info.btf_size as usize, btf.len());
    assert!(info.id > 0);
    let (name, data) = sys::btf_name_and_data(&fd).unwrap();
    assert_eq!(name, "");
    assert_eq!(data, btf);

    // A type pointing at a string past the end: rejected with the kernel's log.
    let mut bad = btf.clone();
    bad[24..28].copy_from_slice(&100u32.to_ne_bytes());
    let err = sys::btf_load(&bad, 0).unwrap_err();
    assert_eq!(err.op(), "BPF_BTF_LOAD");
    assert!(err.verifier_log().is_some_and(|l| !l.is_empty()), "{err}");
}

#[test]
fn pin_and_get() {
    let Some(_k) = kernel_serial() else { return };
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let bpffs = mounts
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some("/sys/fs/bpf") && l.contains(" bpf "));
    if !skelgen_test_support::require(bpffs, "no bpffs at /sys/fs/bpf") {
        return;
    }
    let map = MapCreate::new(map_type::ARRAY, 4, 4, 1).create().unwrap();
    let path = format!("/sys/fs/bpf/skelgen_sys_test_{}", std::process::id());
    let path = Path::new(&path);
    sys::obj_pin(&map, path).unwrap();
    let got = sys::obj_get(path, 0);
    std::fs::remove_file(path).unwrap();
    let got = got.unwrap();
    assert_eq!(
        sys::map_info(&got).unwrap().id,
        sys::map_info(&map).unwrap().id
    );
    let err = sys::obj_get(path, 0).unwrap_err();
    assert_eq!(err.errno(), Some(libc::ENOENT));
}

#[test]
fn raw_tracepoint_and_perf_event_links() {
    let Some(_k) = kernel_serial() else { return };
    let insns = return_const(0);

    let raw = ProgLoad::new(prog_type::RAW_TRACEPOINT, &insns, "GPL")
        .load()
        .unwrap();
    let link = sys::raw_tracepoint_open(&raw.fd, Some("sys_enter"), 0).unwrap();
    assert_eq!(
        sys::link_info(&link).unwrap().link_type,
        sys::link_type::RAW_TRACEPOINT
    );
    drop(link);

    let id = sys::tracepoint_id("syscalls", "sys_enter_getppid");
    if !skelgen_test_support::require(id.is_ok(), "tracefs not mounted: perf part skipped") {
        return;
    }
    let Ok(id) = id else { return };
    let tp = ProgLoad::new(prog_type::TRACEPOINT, &insns, "GPL")
        .load()
        .unwrap();
    let stats = sys::enable_stats(sys::STATS_RUN_TIME).unwrap();

    // perf_event + BPF_LINK_CREATE with a cookie.
    let pid = std::process::id() as i32;
    let perf = sys::perf_event_open(&PerfEventAttr::tracepoint(id), pid, -1, None, 0).unwrap();
    let link = LinkCreate::new(
        tp.fd.as_fd(),
        LinkTarget::Fd(perf.as_fd()),
        sys::attach_type::PERF_EVENT,
    )
    .extra(LinkExtra::PerfEventCookie(7))
    .create()
    .unwrap();
    let before = sys::prog_info(&tp.fd).unwrap().run_cnt;
    for _ in 0..3 {
        std::hint::black_box(std::os::unix::process::parent_id());
    }
    let after = sys::prog_info(&tp.fd).unwrap().run_cnt;
    assert!(after >= before + 3, "run_cnt {before} -> {after}");
    assert_eq!(
        sys::link_info(&link).unwrap().link_type,
        sys::link_type::PERF_EVENT
    );
    sys::link_detach(&link).unwrap_or(()); // not every link type supports detach
    drop(link);
    drop(perf);

    // The pre-link path: PERF_EVENT_IOC_SET_BPF + ENABLE.
    let attr = PerfEventAttr::tracepoint(id).disabled(true);
    let perf = sys::perf_event_open(&attr, pid, -1, None, 0).unwrap();
    sys::perf_event_set_bpf(&perf, &tp.fd).unwrap();
    sys::perf_event_enable(&perf).unwrap();
    let before = sys::prog_info(&tp.fd).unwrap().run_cnt;
    std::hint::black_box(std::os::unix::process::parent_id());
    let after = sys::prog_info(&tp.fd).unwrap().run_cnt;
    assert!(after > before, "run_cnt {before} -> {after}");
    sys::perf_event_disable(&perf).unwrap();
    drop(stats);
}

#[test]
fn tcx_link_on_loopback() {
    let Some(_k) = kernel_serial() else { return };
    // TCX_NEXT (-1): defer to the next program, so the link changes nothing.
    let insns = return_const(-1);
    let prog = ProgLoad::new(prog_type::SCHED_CLS, &insns, "GPL")
        .expected_attach_type(sys::attach_type::TCX_INGRESS)
        .load()
        .unwrap();
    let link = LinkCreate::new(
        prog.fd.as_fd(),
        LinkTarget::Ifindex(1),
        sys::attach_type::TCX_INGRESS,
    )
    .extra(LinkExtra::Tcx {
        relative: 0,
        expected_revision: 0,
    })
    .create();
    if !skelgen_test_support::matrix::has(skelgen_test_support::matrix::Feature::Tcx) {
        // Before 6.6 the attach type is unknown to BPF_LINK_CREATE.
        let err = link.expect_err("a tcx link on a kernel without tcx");
        assert_eq!(err.errno(), Some(libc::EINVAL), "{err}");
        return;
    }
    let link = link.unwrap();
    let info = sys::link_info(&link).unwrap();
    assert_eq!(info.link_type, sys::link_type::TCX);
    assert_eq!(info.ifindex(), Some(1));
    assert_eq!(info.prog_id, sys::prog_info(&prog.fd).unwrap().id);
    sys::link_detach(&link).unwrap();
    assert_eq!(
        sys::link_info(&link).unwrap().ifindex(),
        Some(0),
        "detached"
    );
}

#[test]
fn no_fd_leaks_over_create_drop_cycles() {
    let Some(_k) = kernel_serial() else { return };
    // Warm up the probes and lazy statics that keep nothing open but may allocate.
    let _ = sys::num_possible_cpus();
    let before = fd_count();
    let insns = return_const(2);
    for i in 0..100 {
        let map = MapCreate::new(map_type::ARRAY, 4, 8, 2)
            .flags(map_flags::MMAPABLE)
            .create()
            .unwrap();
        let mapping = Mmap::new(&map, sys::page_size(), 0, Access::Read).unwrap();
        let prog = ProgLoad::new(prog_type::XDP, &insns, "GPL").load().unwrap();
        if i % 10 == 0 {
            // The failure path too.
            let _ = ProgLoad::new(prog_type::XDP, &insns[8..], "GPL")
                .load()
                .unwrap_err();
        }
        drop((mapping, prog, map));
    }
    assert_eq!(fd_count(), before);
}

#[test]
fn feature_probes_on_this_kernel() {
    let Some(_k) = kernel_serial() else { return };
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release.trim().split(['.', '-']);
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let before = fd_count();
    let results = sys::probe::all();
    assert_eq!(fd_count(), before, "probes close what they open");
    for (name, supported) in &results {
        eprintln!("probe {name}: {supported}");
    }
    // Every probed feature is in 5.17 and later.
    if (major, minor) >= (5, 17) {
        for (name, supported) in results {
            assert!(supported, "{name} should be supported on {release}");
        }
    }
}

#[test]
fn host_facts() {
    let Some(_k) = kernel_serial() else { return };
    assert!(!sys::possible_cpus().unwrap().is_empty());
    assert!(!sys::online_cpus().unwrap().is_empty());
    let (_, hard_before) = sys::memlock_rlimit().unwrap();
    let bumped = sys::bump_memlock_rlimit().unwrap();
    let (soft, hard) = sys::memlock_rlimit().unwrap();
    assert_eq!((soft, hard), bumped);
    // Unlimited, or (without CAP_SYS_RESOURCE) the soft limit raised to the hard one.
    assert!(
        soft == libc::RLIM_INFINITY || (soft == hard && hard == hard_before),
        "{soft} {hard}"
    );
}

#[test]
fn epoll_reports_readable_fds() {
    // No bpf(2) here: runs as any user.
    let _fds = serial();
    let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let epoll = Epoll::new().unwrap();
    epoll.add(&b, sys::EPOLLIN, 42).unwrap();
    let mut events = [EpollEvent::default(); 4];
    assert_eq!(epoll.wait(&mut events, 0).unwrap(), 0);
    std::io::Write::write_all(&mut a, b"x").unwrap();
    assert_eq!(epoll.wait(&mut events, 1000).unwrap(), 1);
    assert_eq!(
        events[0],
        EpollEvent {
            events: sys::EPOLLIN,
            data: 42
        }
    );
    epoll.modify(&b, sys::EPOLLIN, 43).unwrap();
    assert_eq!(epoll.wait(&mut events, 1000).unwrap(), 1);
    assert_eq!(events[0].data, 43);
    epoll.delete(&b).unwrap();
    assert_eq!(epoll.wait(&mut events, 0).unwrap(), 0);
    assert!(epoll.wait(&mut [], 0).is_err());
}

// ---------------------------------------------------------------------------
// Fake gateway tests: no kernel needed

/// Offsets in the `BPF_PROG_LOAD` attr (uapi).
const LOG_LEVEL: usize = 24;
const LOG_SIZE: usize = 28;
const LOG_TRUE_SIZE: usize = 140;

#[test]
fn fake_eperm_is_a_clear_permission_error() {
    let _fds = serial();
    let calls = Rc::new(RefCell::new(Vec::new()));
    let seen = calls.clone();
    let (map_err, prog_err) = sys::with_fake(
        move |call| {
            seen.borrow_mut().push(call.cmd);
            FakeReturn::Errno(libc::EPERM)
        },
        || {
            let map_err = MapCreate::new(map_type::HASH, 4, 4, 1)
                .name("counts")
                .create()
                .unwrap_err();
            let prog_err = ProgLoad::new(prog_type::XDP, &return_const(2), "GPL")
                .load()
                .unwrap_err();
            (map_err, prog_err)
        },
    );
    assert!(map_err.is_permission_denied());
    assert_eq!(map_err.op(), "BPF_MAP_CREATE");
    let text = map_err.to_string();
    assert!(
        text.contains("not permitted") && text.contains("CAP_BPF") && text.contains("counts"),
        "{text}"
    );
    assert!(prog_err.is_permission_denied());
    // No retry with a log: a log cannot explain EPERM.
    assert_eq!(*calls.borrow(), vec![Cmd::MapCreate, Cmd::ProgLoad]);
    let source = std::error::Error::source(&map_err).expect("errno as source");
    assert_eq!(
        source.to_string(),
        std::io::Error::from_raw_os_error(libc::EPERM).to_string()
    );
}

#[test]
fn fake_e2big_and_einval_keep_the_detail() {
    let _fds = serial();
    let err = sys::with_fake(
        |_| FakeReturn::Errno(libc::E2BIG),
        || {
            MapCreate::new(map_type::ARRAY, 4, 1 << 20, 1 << 30)
                .name("huge")
                .create()
                .unwrap_err()
        },
    );
    assert_eq!(err.errno(), Some(libc::E2BIG));
    assert!(!err.is_permission_denied());
    assert!(err.to_string().contains("map `huge`"), "{err}");
}

#[test]
fn fake_log_grows_on_enospc_until_it_fits() {
    let _fds = serial();
    let sizes = Rc::new(RefCell::new(Vec::new()));
    let seen = sizes.clone();
    let err = sys::with_fake(
        move |call| {
            let level = call.u32_at(LOG_LEVEL).unwrap();
            let size = call.u32_at(LOG_SIZE).unwrap();
            seen.borrow_mut()
                .push((level, size, call.log.as_ref().map_or(0, |l| l.len())));
            if level == 0 {
                return FakeReturn::Errno(libc::EINVAL);
            }
            if size < 1_000_000 {
                call.write_log("0: (95) exit\nR0 !read_ok\n");
                return FakeReturn::Errno(libc::ENOSPC);
            }
            call.write_log("0: (95) exit\nR0 !read_ok\nprocessed 1 insns\n");
            FakeReturn::Errno(libc::EACCES)
        },
        || {
            ProgLoad::new(prog_type::XDP, &insn(EXIT, 0, 0, 0, 0), "GPL")
                .name("grow")
                .load()
                .unwrap_err()
        },
    );
    // First a quiet attempt, then 64 KiB growing fourfold.
    assert_eq!(
        *sizes.borrow(),
        vec![
            (0, 0, 0),
            (1, 65536, 65536),
            (1, 262_144, 262_144),
            (1, 1_048_576, 1_048_576)
        ]
    );
    let SysError::Verifier {
        log,
        log_truncated,
        name,
        ..
    } = &err
    else {
        panic!("{err}")
    };
    assert!(
        log.contains("R0 !read_ok") && log.contains("processed"),
        "{log}"
    );
    assert!(!log_truncated);
    assert_eq!(name, "grow");
    assert_eq!(err.errno(), Some(libc::EACCES));
}

#[test]
fn fake_log_true_size_is_used_when_the_kernel_reports_it() {
    let _fds = serial();
    let sizes = Rc::new(RefCell::new(Vec::new()));
    let seen = sizes.clone();
    let loaded = sys::with_fake(
        move |call| {
            let size = call.u32_at(LOG_SIZE).unwrap();
            seen.borrow_mut().push(size);
            if size < 200_000 {
                call.set_u32_at(LOG_TRUE_SIZE, 200_000);
                return FakeReturn::Errno(libc::ENOSPC);
            }
            call.write_log("processed 2 insns\n");
            FakeReturn::Fd(dev_null())
        },
        || {
            ProgLoad::new(prog_type::XDP, &return_const(2), "GPL")
                .log_level(2)
                .log_size(4096)
                .load()
                .unwrap()
        },
    );
    assert_eq!(*sizes.borrow(), vec![4096, 200_000]);
    assert_eq!(loaded.log, "processed 2 insns\n");
}

#[test]
fn fake_eagain_is_retried() {
    let _fds = serial();
    let calls = Rc::new(RefCell::new(0));
    let count = calls.clone();
    let loaded = sys::with_fake(
        move |_| {
            *count.borrow_mut() += 1;
            if *count.borrow() <= 2 {
                FakeReturn::Errno(libc::EAGAIN)
            } else {
                FakeReturn::Fd(dev_null())
            }
        },
        || ProgLoad::new(prog_type::XDP, &return_const(2), "GPL").load(),
    );
    assert!(loaded.is_ok());
    assert_eq!(*calls.borrow(), 3);

    // A kernel that keeps saying EAGAIN: five quiet tries, five with a log, then the error.
    let calls = Rc::new(RefCell::new(0));
    let count = calls.clone();
    let err = sys::with_fake(
        move |_| {
            *count.borrow_mut() += 1;
            FakeReturn::Errno(libc::EINTR)
        },
        || {
            ProgLoad::new(prog_type::XDP, &return_const(2), "GPL")
                .load()
                .unwrap_err()
        },
    );
    assert_eq!(*calls.borrow(), 10);
    assert_eq!(err.errno(), Some(libc::EINTR));
    assert!(err.verifier_log().is_none());
}

#[test]
fn fake_outputs_reach_the_caller_and_values_are_not_fds() {
    let _fds = serial();
    // The fake writes `retval` (offset 4) and `duration` (offset 36) as the kernel would.
    let out = sys::with_fake(
        |call| {
            assert_eq!(call.cmd, Cmd::ProgTestRun);
            call.set_u32_at(4, 2);
            call.set_u32_at(36, 99);
            FakeReturn::Value(0)
        },
        || TestRun::new().data_in(&[0u8; 14]).run(dev_null()).unwrap(),
    );
    assert_eq!((out.retval, out.duration), (2, 99));

    // A plain number for an fd-creating command is refused, never wrapped as an fd.
    let err = sys::with_fake(
        |_| FakeReturn::Value(0),
        || {
            MapCreate::new(map_type::HASH, 4, 4, 1)
                .create()
                .unwrap_err()
        },
    );
    assert_eq!(err.errno(), Some(libc::EBADF));
}

#[test]
fn fake_is_per_thread_and_restored() {
    let _fds = serial();
    sys::with_fake(
        |_| FakeReturn::Errno(libc::ENOSYS),
        || {
            let inner = sys::with_fake(
                |_| FakeReturn::Errno(libc::EPERM),
                || {
                    MapCreate::new(map_type::HASH, 4, 4, 1)
                        .create()
                        .unwrap_err()
                },
            );
            assert!(inner.is_permission_denied());
            // The outer fake is back.
            let outer = MapCreate::new(map_type::HASH, 4, 4, 1)
                .create()
                .unwrap_err();
            assert_eq!(outer.errno(), Some(libc::ENOSYS));
            // Probes under a fake say "unsupported" and are not cached.
            assert!(!sys::probe::ringbuf());
        },
    );
}
