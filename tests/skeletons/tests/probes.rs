//! The kprobe family through the generated skeleton of the `probes` fixture:
//! kprobe/kretprobe/ksyscall/kretsyscall, kprobe.multi/kretprobe.multi,
//! kprobe.session and uprobe.multi/uretprobe.multi, each auto-attached by
//! `attach()` and through the explicit calls with their options, observed
//! firing on the test's own getppid()/getpid() calls and stopping when the
//! link is dropped. Where the kernel matrix says the running kernel lacks a
//! feature, the error must name it.

use std::hint::black_box;
use std::os::unix::process::parent_id;

use skelgen_runtime::attach::{
    self, AttachError, KprobeMultiOptions, KprobeMultiTargets, KprobeOptions, KprobeTarget, Link,
    ProbeMode, UprobeMultiOptions, UprobeMultiTargets,
};
use skelgen_runtime::kernel::Kallsyms;
use skelgen_skeleton_tests::probes::{OpenProbesBpf, ProbesBpf};
use skelgen_test_support::matrix::{has, Feature};
use skelgen_test_support::{error_chain, kernel_serial};

/// The kernel function behind getppid() on x86-64 (6.1 and 6.12 alike).
const GETPPID: &str = "__x64_sys_getppid";
const GETPID: &str = "__x64_sys_getpid";

/// uprobe.multi targets in this binary: the fixture's pattern is
/// `skelgen_probes_umulti_*`.
#[no_mangle]
#[inline(never)]
pub extern "C" fn skelgen_probes_umulti_a(x: u64) -> u64 {
    black_box(x) + 1
}

#[no_mangle]
#[inline(never)]
pub extern "C" fn skelgen_probes_umulti_b(x: u64) -> u64 {
    black_box(x) + 2
}

/// A skeleton with only the programs `keep` loaded (the others need
/// features some kernels of the matrix lack).
fn open_only(keep: &[&str]) -> OpenProbesBpf {
    let mut open = ProbesBpf::open().unwrap();
    open.rodata_mut().targ_tgid = std::process::id() as i32;
    let p = &mut open.progs;
    for (name, prog) in [
        ("handle_kprobe", &mut p.handle_kprobe),
        ("handle_kretprobe", &mut p.handle_kretprobe),
        ("handle_ksyscall", &mut p.handle_ksyscall),
        ("handle_kretsyscall", &mut p.handle_kretsyscall),
        ("handle_kprobe_manual", &mut p.handle_kprobe_manual),
        ("handle_kprobe_multi", &mut p.handle_kprobe_multi),
        ("handle_kretprobe_multi", &mut p.handle_kretprobe_multi),
        (
            "handle_kprobe_multi_manual",
            &mut p.handle_kprobe_multi_manual,
        ),
        ("handle_kprobe_session", &mut p.handle_kprobe_session),
        ("handle_uprobe_multi", &mut p.handle_uprobe_multi),
        ("handle_uretprobe_multi", &mut p.handle_uretprobe_multi),
        (
            "handle_uprobe_multi_manual",
            &mut p.handle_uprobe_multi_manual,
        ),
        ("handle_uprobe_session", &mut p.handle_uprobe_session),
    ] {
        prog.set_autoload(keep.contains(&name));
    }
    open
}

fn getppid(n: usize) {
    for _ in 0..n {
        black_box(parent_id());
    }
}

fn getpid(n: usize) {
    for _ in 0..n {
        black_box(std::process::id());
    }
}

/// The refusal of a kernel without kprobes: the message names what is
/// missing.
fn assert_no_kprobes(err: &AttachError) {
    let msg = error_chain(err);
    assert!(matches!(err, AttachError::Unsupported { .. }), "{msg}");
    assert!(
        msg.contains("kprobe") && msg.contains("CONFIG_KPROBES"),
        "{msg}"
    );
}

fn kallsyms_addr(name: &str) -> u64 {
    Kallsyms::read()
        .unwrap()
        .lookup(name)
        .unwrap()
        .unwrap_or_else(|| panic!("{name} not in /proc/kallsyms"))
}

fn kprobe_events() -> String {
    std::fs::read_to_string("/sys/kernel/tracing/kprobe_events")
        .or_else(|_| std::fs::read_to_string("/sys/kernel/debug/tracing/kprobe_events"))
        .unwrap()
}

#[test]
fn kprobe_kretprobe_ksyscall_kretsyscall_fire_through_attach() {
    let Some(_k) = kernel_serial() else { return };
    let mut skel = open_only(&[
        "handle_kprobe",
        "handle_kretprobe",
        "handle_ksyscall",
        "handle_kretsyscall",
    ])
    .load()
    .unwrap();
    let attached = skel.attach();
    if !has(Feature::Kprobes) {
        assert_no_kprobes(&attached.unwrap_err());
        return;
    }
    attached.unwrap();
    assert_eq!(attach::ksyscall_function("getppid"), GETPPID);
    getppid(5);
    let b = skel.bss().read().unwrap();
    assert_eq!(
        (
            b.kprobe_hits,
            b.kretprobe_hits,
            b.ksyscall_hits,
            b.kretsyscall_hits
        ),
        (5, 5, 5, 5)
    );
    // Dropping a link detaches its program only.
    skel.links.handle_kprobe = None;
    skel.links.handle_kretsyscall = None;
    getppid(2);
    let b = skel.bss().read().unwrap();
    assert_eq!(
        (
            b.kprobe_hits,
            b.kretprobe_hits,
            b.ksyscall_hits,
            b.kretsyscall_hits
        ),
        (5, 7, 7, 5)
    );
}

/// Attach `link`, check that `n` getppid() calls add `n` hits and that none
/// count once it is dropped; returns the last cookie seen.
fn fires_then_stops(skel: &ProbesBpf, link: Link, what: &str) -> u64 {
    let before = skel.bss().read().unwrap().manual_hits;
    getppid(3);
    let b = skel.bss().read().unwrap();
    assert_eq!(b.manual_hits - before, 3, "{what}");
    drop(link);
    getppid(2);
    assert_eq!(
        skel.bss().read().unwrap().manual_hits - before,
        3,
        "{what}: after drop"
    );
    b.manual_cookie
}

#[test]
fn kprobe_options_pmu_legacy_cookie_offset_address_maxactive() {
    let Some(_k) = kernel_serial() else { return };
    let skel = open_only(&["handle_kprobe_manual"]).load().unwrap();
    let fd = skel.progs.handle_kprobe_manual.fd().unwrap();
    let opts = |mode, cookie| KprobeOptions {
        mode,
        cookie,
        ..KprobeOptions::default()
    };
    if !has(Feature::Kprobes) {
        for mode in [ProbeMode::Auto, ProbeMode::Pmu, ProbeMode::Legacy] {
            let err = attach::attach_kprobe_opts(fd, GETPPID, &opts(mode, 7)).unwrap_err();
            let msg = error_chain(&err);
            assert!(matches!(err, AttachError::Unsupported { .. }), "{msg}");
            assert!(msg.contains("kprobe"), "{msg}");
        }
        assert_no_kprobes(
            &attach::attach_ksyscall(fd, "getppid", &KprobeOptions::default()).unwrap_err(),
        );
        return;
    }

    // The PMU, with a BPF cookie through the perf link.
    let link = attach::attach_kprobe_opts(fd, GETPPID, &opts(ProbeMode::Pmu, 0xc00c1e)).unwrap();
    assert!(link.legacy_probe_event().is_none());
    assert_eq!(link.kind(), "perf event BPF link");
    assert_eq!(fires_then_stops(&skel, link, "PMU"), 0xc00c1e);

    // The legacy tracefs event, removed again on drop.
    let link = attach::attach_kprobe_opts(fd, GETPPID, &opts(ProbeMode::Legacy, 0x1e6ac7)).unwrap();
    let event = link.legacy_probe_event().expect("a legacy probe event");
    let name = event.rsplit('/').next().unwrap().to_owned();
    assert!(kprobe_events().contains(&name), "{event} in kprobe_events");
    assert_eq!(fires_then_stops(&skel, link, "legacy"), 0x1e6ac7);
    assert!(!kprobe_events().contains(&name), "{event} removed");

    // A kretprobe with maxactive: legacy only (`r16:` in kprobe_events).
    let ret = KprobeOptions {
        retprobe: true,
        maxactive: 16,
        ..KprobeOptions::default()
    };
    let link = attach::attach_kprobe_opts(fd, GETPPID, &ret).unwrap();
    let event = link
        .legacy_probe_event()
        .expect("maxactive takes the legacy path");
    let line = kprobe_events()
        .lines()
        .find(|l| l.contains(&event))
        .map(str::to_owned)
        .unwrap();
    assert!(line.starts_with("r16:"), "{line}");
    fires_then_stops(&skel, link, "kretprobe maxactive 16");
    let err = attach::attach_kprobe_opts(
        fd,
        GETPPID,
        &KprobeOptions {
            mode: ProbeMode::Pmu,
            ..ret
        },
    )
    .unwrap_err();
    assert!(error_chain(&err).contains("maxactive"), "{err}");

    // By address, through both interfaces.
    let addr = kallsyms_addr(GETPPID);
    for mode in [ProbeMode::Pmu, ProbeMode::Legacy] {
        let link =
            attach::attach_kprobe_opts(fd, KprobeTarget::Address(addr), &opts(mode, 0)).unwrap();
        fires_then_stops(&skel, link, &format!("address {addr:#x} ({mode:?})"));
    }

    // Function + offset: the first offset the kernel accepts as an
    // instruction boundary (it refuses the others with EILSEQ).
    let (offset, link) = (1..=32)
        .find_map(|offset| {
            attach::attach_kprobe_opts(
                fd,
                KprobeTarget::Symbol {
                    name: GETPPID,
                    offset,
                },
                &opts(ProbeMode::Pmu, 0),
            )
            .ok()
            .map(|link| (offset, link))
        })
        .expect("an instruction boundary in the first 32 bytes");
    fires_then_stops(&skel, link, &format!("{GETPPID}+{offset}"));

    // ksyscall through the explicit call.
    let link = attach::attach_ksyscall(fd, "getppid", &opts(ProbeMode::Auto, 5)).unwrap();
    assert_eq!(fires_then_stops(&skel, link, "ksyscall"), 5);
}

/// A function the compiler cloned (`name.isra.0`) is found from its plain
/// name: attach only (the clone's callers are not ours to trigger), through
/// the legacy interface whose `kprobe_events` line shows the resolved name.
#[test]
fn kprobe_on_a_compiler_clone_by_its_plain_name() {
    let Some(_k) = kernel_serial() else { return };
    if !has(Feature::Kprobes) {
        return; // covered by the refusal checks above
    }
    let skel = open_only(&["handle_kprobe_manual"]).load().unwrap();
    let fd = skel.progs.handle_kprobe_manual.fd().unwrap();
    let syms = Kallsyms::read().unwrap();
    let listed = std::fs::read_to_string("/sys/kernel/tracing/available_filter_functions").unwrap();
    let mut clones: Vec<(&str, &str)> = listed
        .lines()
        .filter(|l| !l.contains('['))
        .filter_map(|l| {
            let name = l.trim();
            let at = name.find(".isra.").or_else(|| name.find(".constprop."))?;
            Some((&name[..at], name))
        })
        .collect();
    clones.sort_unstable();
    clones.dedup_by_key(|c| c.0);
    // Plain names that are not symbols themselves and have one clone.
    let candidates: Vec<(&str, &str)> = clones
        .into_iter()
        .filter(|(base, _)| !syms.contains(base))
        .filter(|(base, _)| {
            syms.entries()
                .filter(|e| e.name.starts_with(&format!("{base}.")))
                .map(|e| e.name)
                .collect::<std::collections::BTreeSet<_>>()
                .len()
                == 1
        })
        .take(20)
        .collect();
    assert!(
        !candidates.is_empty(),
        "no .isra/.constprop clone on this kernel"
    );
    let opts = KprobeOptions {
        mode: ProbeMode::Legacy,
        ..KprobeOptions::default()
    };
    let mut tried = Vec::new();
    for (base, clone) in &candidates {
        match attach::attach_kprobe_opts(fd, *base, &opts) {
            Ok(link) => {
                let event = link.legacy_probe_event().unwrap();
                let line = kprobe_events()
                    .lines()
                    .find(|l| l.contains(&event))
                    .map(str::to_owned)
                    .unwrap();
                assert!(line.contains(clone), "{base} -> {line}");
                return;
            }
            Err(e) => tried.push(format!("{base}: {}", error_chain(&e))),
        }
    }
    panic!("no clone attached by its plain name: {tried:#?}");
}

#[test]
fn kprobe_multi_and_kretprobe_multi_one_link_many_functions() {
    let Some(_k) = kernel_serial() else { return };
    let mut skel = open_only(&[
        "handle_kprobe_multi",
        "handle_kretprobe_multi",
        "handle_kprobe_multi_manual",
    ])
    .load()
    .unwrap();
    let attached = skel.attach();
    let fd = skel.progs.handle_kprobe_multi_manual.fd().unwrap();
    let explicit = attach::attach_kprobe_multi(
        fd,
        KprobeMultiTargets::Symbols(&[GETPPID, GETPID]),
        &KprobeMultiOptions {
            cookies: &[1, 2],
            ..KprobeMultiOptions::default()
        },
    );
    if !has(Feature::KprobeMulti) {
        for err in [attached.unwrap_err(), explicit.unwrap_err()] {
            let msg = error_chain(&err);
            assert!(matches!(err, AttachError::Unsupported { .. }), "{msg}");
            assert!(
                msg.contains("kprobe.multi") && msg.contains("CONFIG_FPROBE"),
                "{msg}"
            );
        }
        return;
    }
    attached.unwrap();
    let explicit = explicit.unwrap();
    assert_eq!(explicit.kind(), "BPF link");
    assert_eq!(
        attach::kprobe_multi_functions("__do_sys_getp*id").unwrap(),
        ["__do_sys_getpid", "__do_sys_getppid"]
    );
    getppid(3);
    getpid(2);
    let b = skel.bss().read().unwrap();
    assert_eq!((b.multi_hits[0], b.kretmulti_hits), (5, 5));
    assert_eq!(&b.multi_manual_hits[1..3], &[3, 2], "cookie per function");

    // By address, with its own cookie.
    let addrs = [kallsyms_addr(GETPPID)];
    let by_addr = attach::attach_kprobe_multi(
        fd,
        KprobeMultiTargets::Addresses(&addrs),
        &KprobeMultiOptions {
            cookies: &[3],
            ..KprobeMultiOptions::default()
        },
    )
    .unwrap();
    drop(explicit);
    getppid(1);
    let b = skel.bss().read().unwrap();
    assert_eq!(b.multi_manual_hits, [0, 3, 2, 1]);
    assert_eq!((b.multi_hits[0], b.kretmulti_hits), (6, 6));

    // Dropping the links stops every site.
    drop(by_addr);
    skel.links.handle_kprobe_multi = None;
    skel.links.handle_kretprobe_multi = None;
    getppid(2);
    getpid(2);
    let a = skel.bss().read().unwrap();
    assert_eq!((a.multi_hits, a.kretmulti_hits), (b.multi_hits, 6));
    assert_eq!(a.multi_manual_hits, [0, 3, 2, 1]);
}

#[test]
fn kprobe_session_runs_at_entry_and_return() {
    let Some(_k) = kernel_serial() else { return };
    let mut skel = open_only(&["handle_kprobe_session"]).load().unwrap();
    let attached = skel.attach();
    if !has(Feature::KprobeSession) {
        let err = attached.unwrap_err();
        let msg = error_chain(&err);
        assert!(matches!(err, AttachError::Unsupported { .. }), "{msg}");
        assert!(msg.contains("kprobe.session"), "{msg}");
        return;
    }
    attached.unwrap();
    getppid(4);
    assert_eq!(skel.bss().read().unwrap().session_hits, 8);
    skel.links.handle_kprobe_session = None;
    getppid(4);
    assert_eq!(skel.bss().read().unwrap().session_hits, 8);
}

#[test]
fn uprobe_multi_and_uretprobe_multi_on_this_binary() {
    let Some(_k) = kernel_serial() else { return };
    let mut skel = open_only(&[
        "handle_uprobe_multi",
        "handle_uretprobe_multi",
        "handle_uprobe_multi_manual",
    ])
    .load()
    .unwrap();
    let exe = std::env::current_exe().unwrap();
    let exe = exe.to_str().unwrap();
    let attached = skel.attach();
    let fd = skel.progs.handle_uprobe_multi_manual.fd().unwrap();
    let by_symbol = attach::attach_uprobe_multi(
        fd,
        exe,
        UprobeMultiTargets::Symbols(&["skelgen_probes_umulti_a", "skelgen_probes_umulti_b"]),
        &UprobeMultiOptions {
            cookies: &[1, 2],
            pid: Some(std::process::id() as i32),
            ..UprobeMultiOptions::default()
        },
    );
    if !has(Feature::UprobeMulti) {
        for err in [attached.unwrap_err(), by_symbol.unwrap_err()] {
            let msg = error_chain(&err);
            assert!(matches!(err, AttachError::Unsupported { .. }), "{msg}");
            assert!(msg.contains("uprobe.multi") && msg.contains("6.6"), "{msg}");
        }
        return;
    }
    attached.unwrap();
    let by_symbol = by_symbol.unwrap();
    assert_eq!(skelgen_probes_umulti_a(1), 2);
    assert_eq!(skelgen_probes_umulti_b(1), 3);
    assert_eq!(skelgen_probes_umulti_b(2), 4);
    let b = skel.bss().read().unwrap();
    assert_eq!((b.umulti_hits, b.uretmulti_hits), (3, 3));
    assert_eq!(b.umulti_manual_hits, [0, 1, 2, 0]);

    // Explicit file offsets, with a cookie each.
    let data = std::fs::read(exe).unwrap();
    let offsets = [attach::func_file_offset(&data, "skelgen_probes_umulti_b").unwrap()];
    let by_offset = attach::attach_uprobe_multi(
        fd,
        exe,
        UprobeMultiTargets::Offsets(&offsets),
        &UprobeMultiOptions {
            cookies: &[3],
            ..UprobeMultiOptions::default()
        },
    )
    .unwrap();
    drop(by_symbol);
    skelgen_probes_umulti_a(0);
    skelgen_probes_umulti_b(0);
    let b = skel.bss().read().unwrap();
    assert_eq!(b.umulti_manual_hits, [0, 1, 2, 1]);
    assert_eq!((b.umulti_hits, b.uretmulti_hits), (5, 5));

    drop(by_offset);
    skel.links.handle_uprobe_multi = None;
    skelgen_probes_umulti_a(0);
    let a = skel.bss().read().unwrap();
    assert_eq!(a.umulti_manual_hits, [0, 1, 2, 1]);
    assert_eq!((a.umulti_hits, a.uretmulti_hits), (5, 6));
}

/// Whether the running kernel's `enum bpf_attach_type` names `value`: the
/// kernel's own word on which link types it has, for a kind the matrix
/// table does not track (uprobe.session came in 6.13: the host has it, the
/// VMs' 6.1 and 6.12 do not).
fn kernel_has_attach_type(value: &str) -> bool {
    use skelgen_runtime::btf::{Kind, TypeKind};
    let btf = skelgen_runtime::kernel::vmlinux_btf().unwrap();
    btf.build_name_index();
    let id = btf
        .find_by_name_kind("bpf_attach_type", Kind::Enum)
        .unwrap();
    let TypeKind::Enum(e) = btf.type_by_id(id).unwrap().kind else {
        panic!("bpf_attach_type is not an enum");
    };
    let found = e.values().any(|v| btf.name(v.name_off).unwrap() == value);
    found
}

/// uprobe.session target in this binary.
#[no_mangle]
#[inline(never)]
pub extern "C" fn skelgen_probes_usession(x: u64) -> u64 {
    black_box(x) * 2
}

#[test]
fn uprobe_session_runs_at_entry_and_return() {
    let Some(_k) = kernel_serial() else { return };
    let mut skel = open_only(&["handle_uprobe_session"]).load().unwrap();
    let attached = skel.attach();
    if !kernel_has_attach_type("BPF_TRACE_UPROBE_SESSION") {
        let err = attached.unwrap_err();
        let msg = error_chain(&err);
        assert!(matches!(err, AttachError::Unsupported { .. }), "{msg}");
        assert!(
            msg.contains("uprobe.session") && msg.contains("6.13"),
            "{msg}"
        );
        return;
    }
    attached.unwrap();
    for x in 0..3 {
        assert_eq!(skelgen_probes_usession(x), 2 * x);
    }
    assert_eq!(skel.bss().read().unwrap().usession_hits, 6);
    skel.links.handle_uprobe_session = None;
    skelgen_probes_usession(1);
    assert_eq!(skel.bss().read().unwrap().usession_hits, 6);
}
