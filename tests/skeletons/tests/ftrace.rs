//! Trampoline-based attach kinds through generated skeletons: fentry, fexit,
//! fmod_ret and their sleepable forms on vmlinux and module functions, a
//! program retargeted before load, BPF LSM hooks denying an operation,
//! freplace replacing another program's global function and fexit tracing
//! one. Each is seen firing and then stopping when its link is dropped; on
//! kernels without trampolines (the kernel matrix says which) the load's
//! refusal is checked.

use std::os::fd::AsFd;

use skelgen_runtime::attach::{self, TraceOptions};
use skelgen_runtime::section::AttachType;
use skelgen_runtime::skel::TestRun;
use skelgen_runtime::sys;
use skelgen_skeleton_tests::freplace::FreplaceBpf;
use skelgen_skeleton_tests::ftrace::{FtraceBpf, OpenFtraceBpf};
use skelgen_skeleton_tests::lsm::LsmBpf;
use skelgen_test_support::matrix::{has, Feature};
use skelgen_test_support::{error_chain, kernel_serial, require};

/// The ftrace skeleton with only the programs in `on` loading, counting
/// this process.
fn ftrace_with(on: &[&str]) -> OpenFtraceBpf {
    let mut open = FtraceBpf::open().unwrap();
    open.bss_mut().targ_tgid = std::process::id();
    open.bss_mut().targ_tid = gettid();
    let p = &mut open.progs;
    for prog in [
        &mut p.fentry_test1,
        &mut p.fexit_test2,
        &mut p.fentry_mrt,
        &mut p.fmod_ret_mrt,
        &mut p.fexit_mrt,
        &mut p.fentry_getpgid,
        &mut p.fmod_ret_getattr,
        &mut p.fentry_sleepable,
        &mut p.fexit_sleepable,
        &mut p.fentry_module,
        &mut p.fentry_retarget,
    ] {
        let name = prog.name().to_owned();
        prog.set_autoload(on.contains(&name.as_str()));
    }
    open
}

/// On a kernel without trampolines, `err` is the load's refusal: it names
/// the program and the kernel's EPERM.
fn assert_refused(err: &dyn std::error::Error, prog: &str) {
    let msg = error_chain(err);
    assert!(
        msg.contains(prog) && msg.contains("not permitted"),
        "expected the kernel's refusal of {prog}: {msg}"
    );
}

fn getpgid_n(n: usize) {
    for _ in 0..n {
        // SAFETY: getpgid(0) only reads the caller's process group.
        unsafe { libc::getpgid(0) };
    }
}

/// `BPF_PROG_TEST_RUN` retval of a tracing program: bit 16 set when the
/// traced function's body ran, the low 16 bits its return value.
fn run(skel: &FtraceBpf, prog: &str) -> u32 {
    let p = match prog {
        "fentry_test1" => &skel.progs.fentry_test1,
        "fmod_ret_mrt" => &skel.progs.fmod_ret_mrt,
        "fentry_sleepable" => &skel.progs.fentry_sleepable,
        "fentry_retarget" => &skel.progs.fentry_retarget,
        other => panic!("no test run for {other}"),
    };
    p.test_run(TestRun::new()).unwrap().retval
}

#[test]
fn fentry_fexit_and_fmod_ret_fire_through_attach_and_stop_on_drop() {
    let Some(_s) = kernel_serial() else { return };
    let open = ftrace_with(&[
        "fentry_test1",
        "fexit_test2",
        "fentry_getpgid",
        "fmod_ret_getattr",
    ]);
    let loaded = open.load();
    if !has(Feature::Trampolines) {
        assert_refused(&loaded.err().expect("no trampolines here"), "fentry_test1");
        return;
    }
    let mut skel = loaded.unwrap();
    skel.attach().unwrap();
    assert!(skel.links.fentry_test1.is_some() && skel.links.fmod_ret_getattr.is_some());
    assert!(
        skel.links.fentry_module.is_none(),
        "not loaded, not attached"
    );

    // The test run of an fentry program calls bpf_fentry_test1(1) (-> 2) and
    // bpf_fentry_test2(2, 3) (-> 5).
    run(&skel, "fentry_test1");
    let b = skel.bss().read().unwrap();
    assert_eq!((b.test1_hits, b.test1_arg, b.test1_cookie), (1, 1, 0));
    assert_eq!((b.test2_hits, b.test2_ret), (1, 5));

    // A real syscall, from this process only.
    getpgid_n(3);
    assert_eq!(skel.bss().getpgid_hits().unwrap(), 3);

    // fmod_ret replaces security_inode_getattr's return value for this
    // thread: stat() fails with EXDEV; other threads are left alone.
    let e = std::fs::metadata("Cargo.toml").expect_err("stat fails");
    assert_eq!(e.raw_os_error(), Some(libc::EXDEV), "{e}");
    let other = std::thread::spawn(|| std::fs::metadata("Cargo.toml").is_ok());
    assert!(other.join().unwrap());
    assert_eq!(skel.bss().getattr_hits().unwrap(), 1);

    // Dropping the links detaches them.
    skel.links.fentry_test1 = None;
    skel.links.fentry_getpgid = None;
    skel.links.fmod_ret_getattr = None;
    run(&skel, "fentry_test1");
    getpgid_n(2);
    std::fs::metadata("Cargo.toml").unwrap();
    let b = skel.bss().read().unwrap();
    assert_eq!((b.test1_hits, b.getpgid_hits, b.getattr_hits), (1, 3, 1));
    // fexit on bpf_fentry_test2 is still attached.
    assert_eq!(b.test2_hits, 2);
}

#[test]
fn fmod_ret_changes_bpf_modify_return_test_through_test_run() {
    let Some(_s) = kernel_serial() else { return };
    let loaded = ftrace_with(&["fentry_mrt", "fmod_ret_mrt", "fexit_mrt"]).load();
    if !has(Feature::FmodRetSleepable) {
        let msg = error_chain(&loaded.err().expect("refused here"));
        assert!(
            msg.contains("fentry_mrt") && msg.contains("not permitted")
                || msg.contains("fmod_ret_mrt") && msg.contains("is not modifiable"),
            "{msg}"
        );
        return;
    }
    let mut skel = loaded.unwrap();
    // Before attaching: what the test run returns on this kernel (6.12's
    // also calls bpf_modify_return_test2, adding its result and its body).
    let base = run(&skel, "fmod_ret_mrt");
    let (base_side, base_ret) = (base >> 16, base & 0xffff);
    assert!(
        base_side >= 1,
        "bpf_modify_return_test's body ran: {base:#x}"
    );
    skel.attach().unwrap();
    // fmod_ret returning 0 leaves bpf_modify_return_test(1, &b) alone: it
    // returns 4, as fexit sees.
    assert_eq!(run(&skel, "fmod_ret_mrt"), base);
    let b = skel.bss().read().unwrap();
    assert_eq!(
        (b.mrt_entry_hits, b.mrt_entry_arg, b.fmod_ret_hits),
        (1, 1, 1)
    );
    assert_eq!(b.mrt_exit_ret, 4);
    // Returning -EINVAL skips the body (one side effect less) and becomes
    // the function's return value (-22 instead of 4).
    skel.bss_mut().set_fmod_ret_value(&-22).unwrap();
    let want = (base_side - 1) << 16 | (base_ret.wrapping_sub(4 + 22) & 0xffff);
    assert_eq!(run(&skel, "fmod_ret_mrt"), want, "base {base:#x}");
    assert_eq!(skel.bss().mrt_exit_ret().unwrap(), -22i32 as u32 as u64);
    assert_eq!(skel.bss().fmod_ret_hits().unwrap(), 2);
    // Detached, the function is itself again.
    skel.links.fmod_ret_mrt = None;
    assert_eq!(run(&skel, "fmod_ret_mrt"), base, "fmod_ret detached");
    assert_eq!(skel.bss().fmod_ret_hits().unwrap(), 2);
}

#[test]
fn explicit_attach_with_a_cookie() {
    let Some(_s) = kernel_serial() else { return };
    let loaded = ftrace_with(&["fentry_test1"]).load();
    if !has(Feature::Trampolines) {
        assert_refused(&loaded.err().expect("no trampolines here"), "fentry_test1");
        return;
    }
    let skel = loaded.unwrap();
    let fd = skel.progs.fentry_test1.fd().unwrap();
    let link = attach::attach_trace_with(
        fd,
        Some(AttachType::TraceFentry),
        &TraceOptions { cookie: 0xc00c1e },
    )
    .unwrap();
    run(&skel, "fentry_test1");
    let b = skel.bss().read().unwrap();
    assert_eq!((b.test1_hits, b.test1_cookie), (1, 0xc00c1e));
    drop(link);
    run(&skel, "fentry_test1");
    assert_eq!(skel.bss().test1_hits().unwrap(), 1);
    // Without options: the load-time target, no cookie.
    let _link = attach::attach_trace(fd, Some(AttachType::TraceFentry)).unwrap();
    run(&skel, "fentry_test1");
    let b = skel.bss().read().unwrap();
    assert_eq!((b.test1_hits, b.test1_cookie), (2, 0));
}

#[test]
fn sleepable_fentry_and_fexit_fire() {
    let Some(_s) = kernel_serial() else { return };
    let loaded = ftrace_with(&["fentry_sleepable", "fexit_sleepable"]).load();
    if !has(Feature::FmodRetSleepable) {
        let msg = error_chain(&loaded.err().expect("refused here"));
        assert!(
            msg.contains("fentry_sleepable")
                && (msg.contains("not permitted") || msg.contains("is not sleepable")),
            "{msg}"
        );
        return;
    }
    let mut skel = loaded.unwrap();
    skel.attach().unwrap();
    run(&skel, "fentry_sleepable");
    let b = skel.bss().read().unwrap();
    assert_eq!(
        (
            b.sleepable_entry_hits,
            b.sleepable_exit_hits,
            b.sleepable_exit_ret
        ),
        (1, 1, 2)
    );
    skel.links.fentry_sleepable = None;
    skel.links.fexit_sleepable = None;
    run(&skel, "fentry_sleepable");
    let b = skel.bss().read().unwrap();
    assert_eq!((b.sleepable_entry_hits, b.sleepable_exit_hits), (1, 1));
}

/// The vmlinux BTF id of function `name`.
fn vmlinux_func(name: &str) -> u32 {
    skelgen_runtime::kernel::vmlinux_btf()
        .unwrap()
        .find_by_name_kind(name, skelgen_runtime::btf::Kind::Func)
        .unwrap()
}

#[test]
fn set_attach_target_retargets_before_load() {
    let Some(_s) = kernel_serial() else { return };
    // A target no BTF has is refused before the kernel is asked.
    let mut open = ftrace_with(&["fentry_retarget"]);
    open.progs
        .fentry_retarget
        .set_attach_target(None, "skelgen_no_such_function")
        .unwrap();
    let msg = error_chain(&open.load().err().expect("unknown target"));
    assert!(
        msg.contains("fentry_retarget")
            && msg.contains("'skelgen_no_such_function' (FUNC) not found"),
        "{msg}"
    );

    let mut open = ftrace_with(&["fentry_retarget"]);
    open.progs
        .fentry_retarget
        .set_attach_target(None, "bpf_fentry_test3")
        .unwrap();
    let loaded = open.load();
    if !has(Feature::Trampolines) {
        assert_refused(
            &loaded.err().expect("no trampolines here"),
            "fentry_retarget",
        );
        return;
    }
    let mut skel = loaded.unwrap();
    let info = sys::prog_info(skel.progs.fentry_retarget.fd().unwrap()).unwrap();
    assert_eq!(info.attach_btf_id, vmlinux_func("bpf_fentry_test3"));
    skel.attach().unwrap();
    let link = skel.links.fentry_retarget.as_ref().unwrap();
    let (_, _, btf_id) = sys::link_info(link.fd().unwrap())
        .unwrap()
        .tracing()
        .unwrap();
    assert_eq!(btf_id, vmlinux_func("bpf_fentry_test3"));
    // bpf_fentry_test3(4, 5, 6): the first argument is 4, not test1's 1.
    run(&skel, "fentry_retarget");
    let b = skel.bss().read().unwrap();
    assert_eq!((b.retarget_hits, b.retarget_arg), (1, 4));
    skel.links.fentry_retarget = None;
    run(&skel, "fentry_retarget");
    assert_eq!(skel.bss().retarget_hits().unwrap(), 1);
}

/// Opens a file on the 9p filesystem the VM's root is shared over.
fn open_a_file_n(n: usize) {
    for _ in 0..n {
        drop(std::fs::File::open("Cargo.toml").unwrap());
    }
}

#[test]
fn fentry_on_a_module_function() {
    let Some(_s) = kernel_serial() else { return };
    let loaded = ftrace_with(&["fentry_module"]).load();
    if !has(Feature::ModuleBtf) {
        let msg = error_chain(&loaded.err().expect("no module BTF here"));
        assert!(
            msg.contains("fentry_module")
                && msg.contains(
                    "'v9fs_file_open' (FUNC) not found in vmlinux BTF nor in 0 module BTFs"
                ),
            "{msg}"
        );
        return;
    }
    let on_9p = std::fs::read_to_string("/proc/mounts")
        .unwrap()
        .lines()
        .any(|l| l.split_whitespace().nth(2) == Some("9p"));
    if !require(
        on_9p,
        "no 9p mount: the module target v9fs_file_open never runs",
    ) {
        return;
    }
    if !has(Feature::Trampolines) {
        assert_refused(&loaded.err().expect("no trampolines here"), "fentry_module");
        return;
    }
    let mut skel = loaded.unwrap();
    // Found in the module's BTF, not vmlinux: the program's attach BTF
    // object is the module's.
    let info = sys::prog_info(skel.progs.fentry_module.fd().unwrap()).unwrap();
    let vmlinux_id = btf_obj_id("vmlinux");
    assert_ne!(info.attach_btf_obj_id, vmlinux_id);
    assert_eq!(info.attach_btf_obj_id, btf_obj_id("9p"));
    skel.attach().unwrap();
    open_a_file_n(3);
    let hits = skel.bss().module_hits().unwrap();
    assert!(hits >= 3, "module fentry fired {hits} times for 3 opens");
    skel.links.fentry_module = None;
    open_a_file_n(3);
    assert_eq!(skel.bss().module_hits().unwrap(), hits);
    drop(skel);

    // The same, named explicitly as module:function.
    let mut open = ftrace_with(&["fentry_module"]);
    open.progs
        .fentry_module
        .set_attach_target(None, "9p:v9fs_file_open")
        .unwrap();
    let mut skel = open.load().unwrap();
    let fd = skel.progs.fentry_module.fd().unwrap();
    assert_eq!(
        sys::prog_info(fd).unwrap().attach_btf_obj_id,
        btf_obj_id("9p")
    );
    let link = attach::attach_trace(fd, Some(AttachType::TraceFentry)).unwrap();
    open_a_file_n(2);
    assert!(skel.bss().module_hits().unwrap() >= 2);
    drop(link);
    skel.bss_mut().set_module_hits(&0).unwrap();
    open_a_file_n(2);
    assert_eq!(skel.bss().module_hits().unwrap(), 0);
    // A module that does not exist is named in the error.
    let mut open = ftrace_with(&["fentry_module"]);
    open.progs
        .fentry_module
        .set_attach_target(None, "skelgen_nomod:v9fs_file_open")
        .unwrap();
    let msg = error_chain(&open.load().err().expect("no such module"));
    assert!(
        msg.contains("module 'skelgen_nomod' has no BTF loaded"),
        "{msg}"
    );
}

/// The kernel's id of the BTF object named `name` (vmlinux or a module).
fn btf_obj_id(name: &str) -> u32 {
    let mut id = 0;
    while let Ok(Some(next)) = sys::get_next_id(sys::ObjKind::Btf, id) {
        id = next;
        let Ok(fd) = sys::get_fd_by_id(sys::ObjKind::Btf, id, 0) else {
            continue;
        };
        if sys::btf_info(&fd).unwrap().kernel_btf == 0 {
            continue;
        }
        if sys::btf_name_and_data(&fd).unwrap().0 == name {
            return id;
        }
    }
    panic!("no kernel BTF object named {name}")
}

fn gettid() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as u32 }
}

#[test]
fn lsm_hooks_deny_then_allow_after_the_links_drop() {
    let Some(_s) = kernel_serial() else { return };
    let mut open = LsmBpf::open().unwrap();
    open.bss_mut().targ_tgid = std::process::id();
    open.bss_mut().targ_tid = gettid();
    let loaded = open.load();
    if !has(Feature::Trampolines) {
        assert_refused(&loaded.err().expect("no trampolines here"), "deny_mkdir");
        return;
    }
    let lsms = std::fs::read_to_string("/sys/kernel/security/lsm").unwrap_or_default();
    if !require(
        lsms.split(',').any(|l| l == "bpf"),
        &format!("BPF LSM is not active (lsm={lsms}): boot with lsm=...,bpf"),
    ) {
        return;
    }
    let mut skel = loaded.unwrap();
    skel.attach().unwrap();
    let dir = std::env::temp_dir().join(format!("skelgen-lsm-{}", std::process::id()));
    let _ = std::fs::remove_dir(&dir);
    let e = std::fs::create_dir(&dir).expect_err("mkdir denied");
    assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
    let e = std::fs::File::open("Cargo.toml").expect_err("open denied");
    assert_eq!(e.raw_os_error(), Some(libc::EACCES), "{e}");
    // Other threads of this process may open files (the sleepable hook
    // filters by thread).
    let other = std::thread::spawn(|| std::fs::File::open("Cargo.toml").is_ok());
    assert!(other.join().unwrap(), "another thread's open is allowed");
    let b = skel.bss().read().unwrap();
    assert_eq!((b.mkdir_denied, b.open_denied), (1, 1));

    skel.links.deny_mkdir = None;
    skel.links.deny_open = None;
    std::fs::create_dir(&dir).unwrap();
    std::fs::remove_dir(&dir).unwrap();
    drop(std::fs::File::open("Cargo.toml").unwrap());
    let b = skel.bss().read().unwrap();
    assert_eq!((b.mkdir_denied, b.open_denied), (1, 1));
}

#[test]
fn freplace_replaces_a_global_function_of_another_program() {
    let Some(_s) = kernel_serial() else { return };
    let target = FreplaceBpf::open().unwrap().load().unwrap();
    let pkt = [0u8; 64];
    let verdict = || {
        target
            .progs
            .xdp_target
            .test_run(TestRun::new().data_in(&pkt))
            .unwrap()
            .retval
    };
    assert_eq!(verdict(), 2, "XDP_PASS from the original verdict()");
    let target_fd = target.progs.xdp_target.fd().unwrap();

    // Without a target program the load says what it needs.
    let mut open = FreplaceBpf::open().unwrap();
    open.progs.xdp_target.set_autoload(false);
    open.progs.new_verdict.set_autoload(true);
    let msg = error_chain(&open.load().err().expect("freplace needs a target"));
    assert!(
        msg.contains("new_verdict") && msg.contains("set_attach_target(Some(target_prog_fd)"),
        "{msg}"
    );

    let mut open = FreplaceBpf::open().unwrap();
    open.progs.xdp_target.set_autoload(false);
    open.progs.new_verdict.set_autoload(true);
    open.progs
        .new_verdict
        .set_attach_target(Some(target_fd), "verdict")
        .unwrap();
    let loaded = open.load();
    if !has(Feature::Trampolines) {
        assert_refused(&loaded.err().expect("no trampolines here"), "new_verdict");
        return;
    }
    let mut ext = loaded.unwrap();
    ext.attach().unwrap();
    assert_eq!(verdict(), 1, "XDP_DROP from new_verdict()");
    assert_eq!(ext.bss().replaced_runs().unwrap(), 1);
    assert_eq!(target.bss().target_runs().unwrap(), 2);
    ext.links.new_verdict = None;
    assert_eq!(verdict(), 2, "restored after the link dropped");
    assert_eq!(ext.bss().replaced_runs().unwrap(), 1);

    // Explicitly, naming the target program and function again.
    let link = attach::attach_freplace(
        ext.progs.new_verdict.fd().unwrap(),
        Some(target_fd.as_fd()),
        "verdict",
    )
    .unwrap();
    assert_eq!(verdict(), 1);
    drop(link);
    assert_eq!(verdict(), 2);
    assert_eq!(ext.bss().replaced_runs().unwrap(), 2);
    // A function the target does not have is named.
    let e = attach::attach_freplace(
        ext.progs.new_verdict.fd().unwrap(),
        Some(target_fd.as_fd()),
        "skelgen_no_such_function",
    )
    .expect_err("no such function");
    let msg = error_chain(&e);
    assert!(
        msg.contains("'skelgen_no_such_function' not found"),
        "{msg}"
    );
}

#[test]
fn fexit_on_a_global_function_of_another_program() {
    let Some(_s) = kernel_serial() else { return };
    let target = FreplaceBpf::open().unwrap().load().unwrap();
    let target_fd = target.progs.xdp_target.fd().unwrap();
    let mut open = FreplaceBpf::open().unwrap();
    open.progs.xdp_target.set_autoload(false);
    open.progs.trace_verdict.set_autoload(true);
    open.progs
        .trace_verdict
        .set_attach_target(Some(target_fd), "verdict")
        .unwrap();
    let loaded = open.load();
    if !has(Feature::Trampolines) {
        assert_refused(&loaded.err().expect("no trampolines here"), "trace_verdict");
        return;
    }
    let mut tracer = loaded.unwrap();
    // Its attach target lives in the XDP program's own BTF object.
    let info = sys::prog_info(tracer.progs.trace_verdict.fd().unwrap()).unwrap();
    let target_btf = sys::prog_info(target_fd).unwrap().btf_id;
    assert_eq!(info.attach_btf_obj_id, target_btf);
    tracer.attach().unwrap();
    let pkt = [0u8; 64];
    let verdict = || {
        target
            .progs
            .xdp_target
            .test_run(TestRun::new().data_in(&pkt))
            .unwrap()
            .retval
    };
    assert_eq!(verdict(), 2);
    let b = tracer.bss().read().unwrap();
    assert_eq!((b.traced_runs, b.traced_verdict), (1, 2));
    tracer.links.trace_verdict = None;
    assert_eq!(verdict(), 2);
    assert_eq!(tracer.bss().traced_runs().unwrap(), 1);
}
