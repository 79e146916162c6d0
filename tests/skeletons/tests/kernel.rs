//! Generated skeletons on the running kernel, used as a user would: open,
//! configure, load, attach, drive, read what the programs wrote.

use skelgen_runtime::skel::{CoreMode, OpenOptions, TestRun};
use skelgen_skeleton_tests::{
    core, kconfig, keywords, mapinmap, subprogs, tp_ringbuf, xdp_counter,
};
use skelgen_test_support::{error_chain, kernel_serial};

fn getpid() -> i32 {
    std::process::id() as i32
}

fn gettid() -> i32 {
    // The thread id of the calling thread, from procfs (no libc in this crate).
    std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name()?.to_str()?.parse().ok())
        .unwrap_or_else(getpid)
}

#[test]
fn xdp_counter_through_the_skeleton() {
    // One at a time: the programs count every getppid() of this process.
    let Some(_serial) = kernel_serial() else {
        return;
    };
    let mut open = xdp_counter::XdpCounterBpf::open().unwrap();
    assert_eq!(open.rodata_bar().bar_magic, 0xba4ba4);
    open.rodata_bar_mut().bar_drop_len = 60;
    let skel = open.load().unwrap();
    let out = skel
        .progs
        .xdp_count
        .test_run(TestRun::new().data_in(&[0u8; 64]).repeat(4))
        .unwrap();
    assert_eq!(out.retval, 1, "XDP_DROP for 64-byte packets");
    assert_eq!(skel.data_foo().foo_packets().unwrap(), 4);
    assert_eq!(skel.data_foo().foo_bytes().unwrap(), 256);
    assert_eq!(skel.data_foo().foo_magic().unwrap(), 0xf00f00);
    let dropped = skel.maps.pkt_stats.lookup(&1).unwrap().unwrap();
    assert_eq!((dropped.packets, dropped.bytes), (4, 256));
    assert_eq!(skel.bss().last_action().unwrap(), 1);
    assert_eq!(skel.rodata_bar().bar_drop_len, 60);
}

#[test]
fn subprograms_through_the_skeleton() {
    // One at a time: the programs count every getppid() of this process.
    let Some(_serial) = kernel_serial() else {
        return;
    };
    let skel = subprogs::SubprogsBpf::open().unwrap().load().unwrap();
    let out = skel
        .progs
        .xdp_entry
        .test_run(TestRun::new().data_in(&[0u8; 64]))
        .unwrap();
    assert_eq!(out.retval, 2);
    let bss = skel.bss().read().unwrap();
    assert_eq!(
        (
            bss.xdp_runs,
            bss.xdp_res_static,
            bss.xdp_res_global,
            bss.xdp_res_loop,
            bss.xdp_res_len
        ),
        (1, 42, 81, 45, 64)
    );
}

#[test]
fn tail_call_and_inner_maps_through_the_skeleton() {
    // One at a time: the programs count every getppid() of this process.
    let Some(_serial) = kernel_serial() else {
        return;
    };
    let skel = mapinmap::MapinmapBpf::open().unwrap().load().unwrap();
    let out = skel
        .progs
        .entry_prog
        .test_run(TestRun::new().data_in(&[0u8; 64]))
        .unwrap();
    assert_eq!(out.retval, 2, "the tail call is taken");
    assert_eq!(skel.bss().tail_runs().unwrap(), 1);
    assert_eq!(skel.maps.inner_a.lookup(&0).unwrap(), Some(1));
    assert_eq!(skel.maps.inner_b.lookup(&0).unwrap(), Some(11));
    assert!(skel.maps.outer_arr.get_id(&0).unwrap().is_some());
    assert!(skel.maps.jmp_table.get(1).unwrap().is_some());
}

#[test]
fn keyword_names_work() {
    // One at a time: the programs count every getppid() of this process.
    let Some(_serial) = kernel_serial() else {
        return;
    };
    let skel = keywords::KeywordsBpf::open().unwrap().load().unwrap();
    let out = skel
        .progs
        .r#match
        .test_run(TestRun::new().data_in(&[0u8; 64]))
        .unwrap();
    assert_eq!(out.retval, 2);
    assert_eq!(skel.bss().self_().unwrap(), 1);
    assert_eq!(skel.bss().r#fn().unwrap(), 1);
    // type[1] = self after the run.
    assert_eq!(skel.maps.r#type.lookup(&1).unwrap(), Some(1));
    assert_eq!(skel.maps.my_map.lookup(&0).unwrap(), Some(1));
    assert_eq!(skel.maps.myMap.lookup(&0).unwrap(), Some(2));
    skel.progs
        .fooBar
        .test_run(TestRun::new().data_in(&[0u8; 64]))
        .unwrap();
    skel.progs
        .foo_bar
        .test_run(TestRun::new().data_in(&[0u8; 64]))
        .unwrap();
    assert_eq!(skel.bss().COUNTER().unwrap(), 11);
    assert_eq!(skel.rodata().static_, 7);
}

#[test]
fn tracepoint_ringbuf_counts_our_getppid_calls() {
    // One at a time: the programs count every getppid() of this process.
    let Some(_serial) = kernel_serial() else {
        return;
    };
    let mut open = tp_ringbuf::TpRingbufBpf::open().unwrap();
    open.rodata_mut().targ_tgid = getpid();
    let mut skel = open.load().unwrap();
    skel.attach().unwrap();
    let tid = gettid();
    for _ in 0..5 {
        getppid_syscall();
    }
    assert_eq!(skel.bss().tp_hits().unwrap(), 5);
    assert_eq!(skel.bss().tp2_hits().unwrap(), 5);
    assert_eq!(skel.maps.counts.lookup(&(tid as u32)).unwrap(), Some(5));
    drop(skel);
}

/// getppid(2) itself: std's `parent_id` calls it.
fn getppid_syscall() -> i32 {
    std::os::unix::process::parent_id() as i32
}

fn core_values(mode: CoreMode) {
    let mut open = core::CoreBpf::open_with(OpenOptions {
        core: mode,
        ..OpenOptions::default()
    })
    .unwrap();
    open.rodata_mut().targ_tgid = getpid();
    let mut skel = open.load().unwrap();
    skel.attach().unwrap();
    let tid = gettid();
    let ppid = getppid_syscall();
    let b = skel.bss().read().unwrap();
    assert_eq!(b.runs, 1, "{mode:?}");
    assert_eq!(b.task_pid, tid, "{mode:?}");
    assert_eq!(b.task_tgid, getpid(), "{mode:?}");
    assert_eq!(b.parent_tgid, ppid, "{mode:?}");
    assert_eq!(
        (
            b.has_pid_field.raw(),
            b.has_fake_field.raw(),
            b.has_flavor_pid.raw(),
            b.has_task_type.raw(),
            b.has_fake_type.raw()
        ),
        (1, 0, 1, 1, 0),
        "{mode:?}"
    );
    assert_eq!(
        (b.has_enum_sid.raw(), b.has_fake_enum.raw(), b.enum_sid),
        (1, 0, 3),
        "{mode:?}"
    );
    assert_eq!((b.comm_size, b.pid_size), (16, 4), "{mode:?}");
    // The kernel's answers, from its own BTF.
    let vmlinux = skelgen_runtime::btf::Btf::from_vmlinux().unwrap();
    let task = vmlinux
        .find_by_name_kind("task_struct", skelgen_runtime::btf::Kind::Struct)
        .unwrap();
    assert_eq!(
        b.task_size,
        u64::from(vmlinux.size_of(task).unwrap()),
        "{mode:?}"
    );
    assert_eq!(b.task_btf_id, task, "{mode:?}");
    let skelgen_runtime::btf::TypeKind::Struct(st) = vmlinux.type_by_id(task).unwrap().kind else {
        unreachable!()
    };
    let pid_off = st
        .members()
        .find(|m| vmlinux.name(m.name_off).unwrap() == "pid")
        .unwrap()
        .bit_offset
        / 8;
    assert_eq!(b.pid_offset, pid_off, "{mode:?}");
    assert_eq!(b.in_execve, 0, "{mode:?}");
    drop(skel);
}

#[test]
fn core_reads_match_the_kernel_in_kernel_mode() {
    // One at a time: the programs count every getppid() of this process.
    let Some(_serial) = kernel_serial() else {
        return;
    };
    core_values(CoreMode::Kernel);
}

#[test]
fn core_reads_match_the_kernel_in_user_mode() {
    // One at a time: the programs count every getppid() of this process.
    let Some(_serial) = kernel_serial() else {
        return;
    };
    core_values(CoreMode::User);
}

#[test]
fn kconfig_values_are_the_kernels() {
    // One at a time: the programs count every getppid() of this process.
    let Some(_serial) = kernel_serial() else {
        return;
    };
    let mut open = kconfig::KconfigBpf::open().unwrap();
    open.rodata_mut().targ_tgid = getpid();
    let loaded = open.load();
    if !skelgen_test_support::matrix::has(skelgen_test_support::matrix::Feature::TaskKfuncs) {
        // The program calls bpf_task_from_pid (a strong kfunc extern): the
        // load fails naming it.
        let msg = error_chain(&loaded.err().expect("kconfig loads without task kfuncs"));
        assert!(msg.contains("bpf_task_from_pid"), "{msg}");
        return;
    }
    let mut skel = loaded.unwrap();
    let k = skel.kconfig();
    // LINUX_KERNEL_VERSION as uname implies: KERNEL_VERSION(a, b, min(c, 255)).
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let nums: Vec<u32> = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .take(3)
        .map(|s| s.parse().unwrap())
        .collect();
    let want = (nums[0] << 16) | (nums[1] << 8) | nums[2].min(255);
    assert_eq!(k.LINUX_KERNEL_VERSION as u32, want);
    assert_eq!(k.CONFIG_BPF_SYSCALL.raw(), 1);
    assert_eq!(
        k.CONFIG_SKELGEN_DOES_NOT_EXIST.raw(),
        0,
        "weak and missing is 0"
    );
    assert_eq!(k.LINUX_HAS_BPF_COOKIE.raw(), 1);
    skel.attach().unwrap();
    getppid_syscall();
    let b = skel.bss().read().unwrap();
    assert_eq!(b.runs, 1);
    assert_eq!(b.kernel_version, want);
    let d = skel.data().read().unwrap();
    assert_eq!(d.missing_config.raw(), 0);
    assert_eq!(d.missing_ksym, 0);
    assert_eq!(d.kfunc_tgid, getpid(), "the kfunc ran");
}

#[test]
fn strong_missing_kconfig_names_the_option() {
    // One at a time: the programs count every getppid() of this process.
    let Some(_serial) = kernel_serial() else {
        return;
    };
    let e = skelgen_skeleton_tests::kconfig_strong_missing::KconfigStrongMissingBpf::open()
        .unwrap()
        .load()
        .err()
        .expect("load must fail");
    let msg = error_chain(&e);
    assert!(msg.contains("CONFIG_SKELGEN_STRONG_MISSING"), "{msg}");
}

#[test]
fn layout_program_reads_its_data() {
    // One at a time: the programs count every getppid() of this process.
    let Some(_serial) = kernel_serial() else {
        return;
    };
    let skel = skelgen_skeleton_tests::layout::LayoutBpf::open()
        .unwrap()
        .load()
        .unwrap();
    let out = skel
        .progs
        .layout_touch
        .test_run(TestRun::new().data_in(&[0u8; 64]))
        .unwrap();
    assert_eq!(out.retval, 2);
    // pt.x + pt.y + bits.a + grid[2][3] + ro_limits.hi = 3 - 4 + 5 + 12 + 1000.
    assert_eq!(skel.bss().touched().unwrap(), 1016);
}

#[test]
fn every_map_handle_kind_through_the_skeleton() {
    // One at a time: the programs count every getppid() of this process.
    let Some(_serial) = kernel_serial() else {
        return;
    };
    use skelgen_runtime::map::UpdateFlags;
    use skelgen_skeleton_tests::maptypes::{types, MaptypesBpf};
    let skel = MaptypesBpf::open().unwrap().load().unwrap();
    skel.maps.inbox.push(&99, UpdateFlags::Any).unwrap();
    let key = types::lpm_key {
        prefixlen: 16,
        addr: [10, 1, 0, 0],
    };
    skel.maps.lpm.update(&key, &77, UpdateFlags::Any).unwrap();
    let out = skel
        .progs
        .maptypes_run
        .test_run(TestRun::new().data_in(&[0u8; 64]))
        .unwrap();
    assert_eq!(out.retval, 2);
    let b = skel.bss().read().unwrap();
    assert_eq!((b.runs, b.popped, b.lpm_hit, b.bloom_hit), (1, 99, 77, 1));
    // Queue: FIFO; stack: LIFO.
    assert_eq!(skel.maps.q.peek().unwrap(), Some(1));
    assert_eq!(
        (
            skel.maps.q.pop().unwrap(),
            skel.maps.q.pop().unwrap(),
            skel.maps.q.pop().unwrap()
        ),
        (Some(1), Some(2), Some(3))
    );
    assert_eq!(skel.maps.q.pop().unwrap(), None);
    assert_eq!(skel.maps.stk.pop().unwrap(), Some(3));
    // Per-CPU: one value per possible CPU, exactly one CPU ran the program.
    let per_cpu = skel.maps.pc_hash.lookup(&7).unwrap().unwrap();
    assert_eq!(
        per_cpu.len(),
        skelgen_runtime::sys::num_possible_cpus().unwrap()
    );
    assert_eq!(per_cpu.iter().sum::<u64>(), 1);
    let arr = skel.maps.pc_arr.lookup(&1).unwrap().unwrap();
    assert_eq!(arr.iter().sum::<u32>(), 5);
    assert_eq!(skel.maps.lru.lookup(&1).unwrap(), Some(1));
    // No traces were taken: an empty stack map answers None.
    assert_eq!(skel.maps.traces.lookup(0).unwrap(), None);
    // Bloom filter: 42 is in; 7 was never added (no false positive with
    // a 32-entry filter and one value).
    assert!(skel.maps.bloom.contains(&42).unwrap());
    assert!(!skel.maps.bloom.contains(&7).unwrap());
    skel.maps.bloom.insert(&7).unwrap();
    assert!(skel.maps.bloom.contains(&7).unwrap());
}
