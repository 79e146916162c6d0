//! Kernel facts for externs: config, version, kallsyms and kernel BTF.
//!
//! Parsing tests run anywhere on sample text. Tests on this machine's kernel
//! files print a reason and return when a file (or root) is missing, unless
//! `SKELGEN_REQUIRE_KERNEL=1`, which turns the skip into a failure.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use skelgen_runtime::kernel::{
    self, fill_kconfig, find_ksym_btf, kernel_version, kernel_version_from, resolve_kconfig,
    resolve_kfunc, resolve_typed_ksym, resolve_typeless_ksyms, types_are_compat, Kallsyms,
    KernelConfig, KernelError, KsymKind, LinuxFacts,
};
use skelgen_runtime::obj::{DataKind, Extern, ExternKind, Object};
use skelgen_test_support::{self as support, is_root, require};

// ---------------------------------------------------------------------------
// Helpers

fn fixture(name: &str) -> Object {
    Object::parse(&support::fixture(name), name)
        .unwrap_or_else(|e| panic!("{}: {e}", support::fixture_path(name).display()))
}

fn kconfig_image(obj: &Object) -> Vec<u8> {
    obj.maps
        .iter()
        .find(|m| m.data_kind() == Some(DataKind::Kconfig))
        .unwrap_or_else(|| panic!("{}: no .kconfig map", obj.name))
        .image
        .clone()
}

/// (offset, size) of kconfig extern `name`.
fn slot(obj: &Object, name: &str) -> (usize, usize) {
    let e = obj
        .externs
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("no extern {name}"));
    match e.kind {
        ExternKind::Kconfig { offset, size, .. } => (offset as usize, size as usize),
        ref other => panic!("{name}: not kconfig: {other:?}"),
    }
}

fn read_at<'a>(obj: &Object, image: &'a [u8], name: &str) -> &'a [u8] {
    let (off, size) = slot(obj, name);
    &image[off..off + size]
}

fn i32_at(obj: &Object, image: &[u8], name: &str) -> i32 {
    i32::from_ne_bytes(read_at(obj, image, name).try_into().unwrap())
}

fn has_system_config() -> bool {
    kernel::system_config_paths().is_ok_and(|paths| paths.iter().any(|p| p.exists()))
}

/// A config as this machine's /proc/config.gz has it (the facts in
/// kconfig.bpf.c's header).
const SAMPLE_CONFIG: &str = "\
#
# Linux/x86 6.18.44 Kernel Configuration
#
CONFIG_DEFAULT_HOSTNAME=\"(none)\"
CONFIG_BPF_SYSCALL=y
CONFIG_HZ_250=y
CONFIG_HZ=250
# CONFIG_KPROBES is not set
CONFIG_TUN=y
";

// ---------------------------------------------------------------------------
// Pure: sample texts

#[test]
fn kconfig_fixture_from_sample_text() {
    let obj = fixture("kconfig");
    let mut image = kconfig_image(&obj);
    let config = KernelConfig::parse(SAMPLE_CONFIG, "sample")
        .unwrap()
        .with_linux_facts(LinuxFacts {
            kernel_version: Some(kernel::kernel_version_code(6, 18, 44)),
            has_bpf_cookie: Some(true),
            has_syscall_wrapper: Some(true),
        });
    fill_kconfig(&obj.externs, &config, &mut image).unwrap();
    assert_eq!(i32_at(&obj, &image, "CONFIG_HZ"), 250);
    assert_eq!(read_at(&obj, &image, "CONFIG_BPF_SYSCALL"), [1]);
    assert_eq!(i32_at(&obj, &image, "CONFIG_TUN"), 1, "TRI_YES");
    assert_eq!(
        i32_at(&obj, &image, "CONFIG_KPROBES"),
        0,
        "weak, not set: TRI_NO"
    );
    assert_eq!(read_at(&obj, &image, "CONFIG_SKELGEN_DOES_NOT_EXIST"), [0]);
    assert_eq!(
        read_at(&obj, &image, "CONFIG_DEFAULT_HOSTNAME"),
        b"(none)\0\0\0\0\0\0\0\0\0\0"
    );
    assert_eq!(i32_at(&obj, &image, "LINUX_KERNEL_VERSION"), 0x06122c);
    assert_eq!(read_at(&obj, &image, "LINUX_HAS_BPF_COOKIE"), [1]);
}

#[test]
fn kconfig_overrides_win() {
    let obj = fixture("kconfig");
    let mut image = kconfig_image(&obj);
    let mut overrides = HashMap::new();
    overrides.insert("CONFIG_HZ".to_string(), "1000".to_string());
    overrides.insert("CONFIG_TUN".to_string(), "m".to_string());
    overrides.insert("CONFIG_SKELGEN_DOES_NOT_EXIST".to_string(), "y".to_string());
    let config = KernelConfig::parse(SAMPLE_CONFIG, "sample")
        .unwrap()
        .with_overrides(&overrides)
        .with_linux_facts(LinuxFacts {
            kernel_version: Some(1),
            has_bpf_cookie: Some(false),
            has_syscall_wrapper: None,
        });
    fill_kconfig(&obj.externs, &config, &mut image).unwrap();
    assert_eq!(i32_at(&obj, &image, "CONFIG_HZ"), 1000);
    assert_eq!(i32_at(&obj, &image, "CONFIG_TUN"), 2, "TRI_MODULE");
    assert_eq!(read_at(&obj, &image, "CONFIG_SKELGEN_DOES_NOT_EXIST"), [1]);
    assert_eq!(read_at(&obj, &image, "LINUX_HAS_BPF_COOKIE"), [0]);
}

#[test]
fn kconfig_bad_values_name_extern_and_line() {
    let obj = fixture("kconfig");
    let mut image = kconfig_image(&obj);
    let facts = LinuxFacts {
        kernel_version: Some(1),
        has_bpf_cookie: Some(true),
        has_syscall_wrapper: Some(true),
    };
    // A bool given 'm'.
    let text = SAMPLE_CONFIG.replace("CONFIG_BPF_SYSCALL=y", "CONFIG_BPF_SYSCALL=m");
    let config = KernelConfig::parse(&text, "cfg")
        .unwrap()
        .with_linux_facts(facts);
    let err = fill_kconfig(&obj.externs, &config, &mut image)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("CONFIG_BPF_SYSCALL") && err.contains("cfg:5"),
        "{err}"
    );
    // An int given a string.
    let text = SAMPLE_CONFIG.replace("CONFIG_HZ=250", "CONFIG_HZ=\"fast\"");
    let config = KernelConfig::parse(&text, "cfg")
        .unwrap()
        .with_linux_facts(facts);
    let err = fill_kconfig(&obj.externs, &config, &mut image)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("CONFIG_HZ") && err.contains("char array"),
        "{err}"
    );
    // A bad value for an option nobody asks for is fine.
    let text = format!("{SAMPLE_CONFIG}CONFIG_UNUSED=\"unterminated\nCONFIG_OTHER=12q\n");
    let config = KernelConfig::parse(&text, "cfg")
        .unwrap()
        .with_linux_facts(facts);
    fill_kconfig(&obj.externs, &config, &mut image).unwrap();
    // A malformed CONFIG_ line is an error whatever it names.
    let err = KernelConfig::parse("CONFIG_A=y\nCONFIG_UNUSED\n", "cfg").unwrap_err();
    assert!(
        matches!(err, KernelError::ConfigLine { line: 2, .. }),
        "{err}"
    );
    // The virtual externs need their facts.
    let config = KernelConfig::parse(SAMPLE_CONFIG, "cfg").unwrap();
    let err = fill_kconfig(&obj.externs, &config, &mut image).unwrap_err();
    assert!(matches!(err, KernelError::MissingFact { .. }), "{err}");
}

#[test]
fn strong_missing_kconfig_names_the_extern() {
    let obj = fixture("kconfig_strong_missing");
    let mut image = kconfig_image(&obj);
    let config = KernelConfig::parse(SAMPLE_CONFIG, "sample").unwrap();
    let err = fill_kconfig(&obj.externs, &config, &mut image).unwrap_err();
    assert!(matches!(err, KernelError::Unresolved { .. }), "{err}");
    assert!(
        err.to_string().contains("CONFIG_SKELGEN_STRONG_MISSING"),
        "{err}"
    );
}

#[test]
fn config_files_plain_and_gzip() {
    let dir = std::env::temp_dir().join(format!("skelgen-kernel-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let plain = dir.join("config");
    std::fs::write(&plain, SAMPLE_CONFIG).unwrap();
    let gz = dir.join("config.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(SAMPLE_CONFIG.as_bytes()).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    let broken = dir.join("broken.gz");
    std::fs::write(&broken, [0x1f, 0x8b, 8, 0, 1, 2, 3]).unwrap();

    for path in [&plain, &gz] {
        let c = KernelConfig::read_file(path).unwrap();
        let hz = c.lookup("CONFIG_HZ").unwrap();
        assert_eq!((hz.value, hz.line), ("250", 7));
        assert_eq!(hz.origin, path.display().to_string());
    }
    assert!(matches!(
        KernelConfig::read_file(&broken),
        Err(KernelError::Gzip { .. })
    ));
    assert!(matches!(
        KernelConfig::read_file(dir.join("absent")),
        Err(KernelError::Io { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn version_quirks_on_sample_strings() {
    let v = kernel::kernel_version_code;
    assert_eq!(
        kernel_version_from(None, "6.18.44-fc-v657", "#1 SMP PREEMPT_DYNAMIC @0"),
        Some(v(6, 18, 44))
    );
    assert_eq!(
        kernel_version_from(
            Some("Ubuntu 5.4.0-42.46-generic 5.4.44"),
            "5.4.0-42-generic",
            "#46-Ubuntu SMP"
        ),
        Some(v(5, 4, 44))
    );
    assert_eq!(
        kernel_version_from(
            None,
            "4.19.0-22-amd64",
            "#1 SMP Debian 4.19.260-1 (2022-09-29)"
        ),
        Some(v(4, 19, 255))
    );
    assert_eq!(kernel_version_from(None, "6.1", "#1"), None);
}

#[test]
fn kallsyms_sample_and_typeless_ksyms() {
    let obj = fixture("kconfig");
    let text = "ffffffff81000000 T _stext\nffffffff81000010 t other\n".to_string();
    let syms = Kallsyms::parse(text, "sample").unwrap();
    let addrs = resolve_typeless_ksyms(&obj.externs, &syms).unwrap();
    assert_eq!(addrs.get("_stext"), Some(&0xffff_ffff_8100_0000));
    assert_eq!(
        addrs.get("skelgen_no_such_ksym"),
        Some(&0),
        "weak missing -> 0"
    );
    // Strong and missing.
    let syms = Kallsyms::parse("ffffffff81000010 t other\n".into(), "sample").unwrap();
    let err = resolve_typeless_ksyms(&obj.externs, &syms).unwrap_err();
    assert!(err.to_string().contains("_stext"), "{err}");
    // Hidden addresses.
    let syms = Kallsyms::parse("0000000000000000 T _stext\n".into(), "sample").unwrap();
    let err = resolve_typeless_ksyms(&obj.externs, &syms).unwrap_err();
    assert!(matches!(err, KernelError::KallsymsHidden { .. }), "{err}");
    // Malformed.
    let err = Kallsyms::parse("ffffffff81000000 T\n".into(), "sample").unwrap_err();
    assert!(err.to_string().contains("sample:1"), "{err}");
}

#[test]
fn kfunc_proto_compat_against_own_btf() {
    // The object's prototypes are compatible with themselves and not with
    // each other (different parameter types: s32 vs pointer).
    let obj = fixture("kconfig");
    let btf = obj.btf.as_ref().unwrap();
    let proto = |name: &str| match obj.externs.iter().find(|e| e.name == name).unwrap().kind {
        ExternKind::Kfunc { proto } => proto,
        ref k => panic!("{k:?}"),
    };
    let (from_pid, release) = (proto("bpf_task_from_pid"), proto("bpf_task_release"));
    types_are_compat(btf, from_pid, btf, from_pid).unwrap();
    let err = types_are_compat(btf, from_pid, btf, release).unwrap_err();
    assert!(err.contains("parameter 0"), "{err}");
}

#[test]
fn bad_module_names_are_refused() {
    for name in ["", "vmlinux", "..", "a/b"] {
        assert!(
            matches!(
                kernel::module_btf(name),
                Err(KernelError::BadModuleName { .. })
            ),
            "{name:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// This machine

#[test]
fn kernel_version_matches_uname() {
    let out = std::process::Command::new("uname").arg("-r").output();
    let Ok(out) = out else {
        require(false, "no uname binary");
        return;
    };
    let release = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>());
    let (a, b, c) = match (parts.next(), parts.next(), parts.next()) {
        (Some(Ok(a)), Some(Ok(b)), Some(Ok(c))) => (a, b, c),
        _ => panic!("uname -r '{release}' is not x.y.z"),
    };
    if Path::new("/proc/version_signature").exists() {
        eprintln!("Ubuntu kernel: the signature decides, not uname -r");
        return;
    }
    let uts = std::fs::read_to_string("/proc/sys/kernel/version").unwrap_or_default();
    if uts.contains("Debian ") {
        // Debian kernels: `uname -v` (the package version) decides, not
        // `uname -r` (6.1.0-57-amd64 is 6.1.153 or so).
        let want = skelgen_runtime::kernel::parse_debian_version(&uts)
            .unwrap_or_else(|| panic!("no version in Debian's uname -v '{uts}'"));
        assert_eq!(kernel_version().unwrap(), want, "{uts}");
        assert_eq!(want >> 8, (a << 8) + b, "{uts} vs {release}");
        return;
    }
    assert_eq!(
        kernel_version().unwrap(),
        (a << 16) + (b << 8) + c.min(255),
        "{release}"
    );
}

#[test]
fn system_config_has_bpf_syscall() {
    if !require(has_system_config(), "no /boot/config-* nor /proc/config.gz") {
        return;
    }
    let config = KernelConfig::read_system().unwrap();
    let v = config
        .lookup("CONFIG_BPF_SYSCALL")
        .expect("CONFIG_BPF_SYSCALL");
    assert_eq!(v.value, "y");
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let boot = format!("/boot/config-{}", release.trim());
    let expected_origin = if Path::new(&boot).exists() {
        boot
    } else {
        kernel::PROC_CONFIG_GZ.to_string()
    };
    assert_eq!(v.origin, expected_origin);
}

#[test]
fn kallsyms_finds_stext() {
    if !require(
        Path::new(kernel::KALLSYMS_PATH).exists(),
        "no /proc/kallsyms",
    ) {
        return;
    }
    let syms = Kallsyms::read().unwrap();
    assert!(syms.contains("_stext"));
    let kptr_restrict =
        std::fs::read_to_string("/proc/sys/kernel/kptr_restrict").unwrap_or_default();
    if !require(
        is_root() && kptr_restrict.trim() != "2",
        "addresses need root and kptr_restrict < 2",
    ) {
        return;
    }
    let addr = syms.lookup("_stext").unwrap().expect("_stext");
    assert_ne!(addr, 0);
}

#[test]
fn vmlinux_btf_has_kfunc_and_var() {
    if !require(
        Path::new("/sys/kernel/btf/vmlinux").exists(),
        "no /sys/kernel/btf/vmlinux",
    ) {
        return;
    }
    let a = kernel::vmlinux_btf().unwrap();
    let b = kernel::vmlinux_btf().unwrap();
    assert!(std::sync::Arc::ptr_eq(&a, &b), "read once per process");

    let f = find_ksym_btf("bpf_task_from_pid", KsymKind::Func).unwrap();
    if !skelgen_test_support::matrix::has(skelgen_test_support::matrix::Feature::TaskKfuncs) {
        // 6.1: the kfunc does not exist; a strong extern of it is an error
        // that names it, a weak one resolves to nothing.
        assert!(f.is_none(), "{f:?}");
        let obj = fixture("kconfig");
        let e = ext_clone(&obj, "bpf_task_from_pid");
        let err = resolve_kfunc(obj.btf.as_ref().unwrap(), &e, find_ksym_btf)
            .expect_err("bpf_task_from_pid resolved on a kernel without it")
            .to_string();
        assert!(err.contains("bpf_task_from_pid"), "{err}");
        let mut weak = e.clone();
        weak.weak = true;
        assert!(
            resolve_kfunc(obj.btf.as_ref().unwrap(), &weak, find_ksym_btf)
                .unwrap()
                .is_none()
        );
        return;
    }
    let f = f.expect("bpf_task_from_pid");
    assert_eq!((f.btf_obj_id, f.btf_name.as_str()), (0, "vmlinux"));
    assert_eq!(a.type_name(f.type_id).unwrap(), "bpf_task_from_pid");
    let v = find_ksym_btf("bpf_prog_active", KsymKind::Var)
        .unwrap()
        .expect("bpf_prog_active");
    assert_eq!(v.btf_obj_id, 0);
    // Absent as a VAR: the module walk (bpf(), root only) finds nothing either.
    assert!(
        !is_root()
            || find_ksym_btf("bpf_task_from_pid", KsymKind::Var)
                .unwrap()
                .is_none()
    );

    // The fixtures' externs resolve against it, types checked.
    let obj = fixture("kconfig");
    let local = obj.btf.as_ref().unwrap();
    let ext = |name: &str| -> &Extern { obj.externs.iter().find(|e| e.name == name).unwrap() };
    let found = resolve_kfunc(local, ext("bpf_task_from_pid"), find_ksym_btf)
        .unwrap()
        .unwrap();
    assert_eq!(found.type_id, f.type_id);
    resolve_kfunc(local, ext("bpf_task_release"), find_ksym_btf)
        .unwrap()
        .unwrap();

    let obj = fixture("ksym_typed");
    let local = obj.btf.as_ref().unwrap();
    let e = obj
        .externs
        .iter()
        .find(|e| e.name == "bpf_prog_active")
        .unwrap();
    let found = resolve_typed_ksym(local, e, find_ksym_btf)
        .unwrap()
        .unwrap();
    assert_eq!(found.type_id, v.type_id);

    // A kfunc prototype that does not match (release's takes a pointer,
    // bpf_task_from_pid an s32) is refused for a strong extern.
    let mut wrong = ext_clone(&fixture("kconfig"), "bpf_task_release");
    wrong.name = "bpf_task_from_pid".into();
    let kobj = fixture("kconfig");
    let err = resolve_kfunc(kobj.btf.as_ref().unwrap(), &wrong, find_ksym_btf).unwrap_err();
    assert!(matches!(err, KernelError::KsymIncompatible { .. }), "{err}");
    wrong.weak = true;
    assert!(
        resolve_kfunc(kobj.btf.as_ref().unwrap(), &wrong, find_ksym_btf)
            .unwrap()
            .is_none()
    );
}

fn ext_clone(obj: &Object, name: &str) -> Extern {
    obj.externs.iter().find(|e| e.name == name).unwrap().clone()
}

#[test]
fn kconfig_fixture_on_this_kernel() {
    if !require(has_system_config(), "no kernel config file") {
        return;
    }
    let obj = fixture("kconfig");
    let mut image = kconfig_image(&obj);
    resolve_kconfig(&obj.externs, None, &HashMap::new(), &mut image).unwrap();

    // Expected values from the config text itself, read independently.
    let config = KernelConfig::read_system().unwrap();
    let hz: i32 = config.lookup("CONFIG_HZ").unwrap().value.parse().unwrap();
    assert_eq!(i32_at(&obj, &image, "CONFIG_HZ"), hz);
    assert_eq!(read_at(&obj, &image, "CONFIG_BPF_SYSCALL"), [1]);
    assert_eq!(
        read_at(&obj, &image, "CONFIG_SKELGEN_DOES_NOT_EXIST"),
        [0],
        "weak missing"
    );
    assert_eq!(
        i32_at(&obj, &image, "LINUX_KERNEL_VERSION") as u32,
        kernel_version().unwrap()
    );
    if std::fs::read_to_string("/proc/sys/kernel/osrelease").is_ok_and(|r| r.starts_with("6.18.")) {
        // kconfig.bpf.c's header: this machine's values.
        assert_eq!(hz, 250);
        assert_eq!(i32_at(&obj, &image, "CONFIG_TUN"), 1, "TRI_YES");
        assert_eq!(i32_at(&obj, &image, "CONFIG_KPROBES"), 0, "TRI_NO");
        assert_eq!(
            &read_at(&obj, &image, "CONFIG_DEFAULT_HOSTNAME")[..7],
            b"(none)\0"
        );
        if is_root() {
            assert_eq!(read_at(&obj, &image, "LINUX_HAS_BPF_COOKIE"), [1]);
        }
    }

    let obj = fixture("kconfig_strong_missing");
    let mut image = kconfig_image(&obj);
    let err = resolve_kconfig(&obj.externs, None, &HashMap::new(), &mut image).unwrap_err();
    assert!(
        err.to_string().contains("CONFIG_SKELGEN_STRONG_MISSING"),
        "{err}"
    );
}

#[test]
fn syscall_wrapper_detected() {
    if !require(
        Path::new(kernel::KALLSYMS_PATH).exists(),
        "no /proc/kallsyms",
    ) {
        return;
    }
    if cfg!(target_arch = "x86_64") {
        // x86-64 kernels since 4.17 always use the wrappers.
        assert!(kernel::has_syscall_wrapper().unwrap());
    }
}

// ---------------------------------------------------------------------------
// A typed ksym of a variable on the kernel: needs CONFIG_KALLSYMS_ALL

#[test]
fn typed_ksym_of_a_variable_reads_it_or_names_the_missing_symbol() {
    use skelgen_runtime::attach;
    use skelgen_runtime::loader::{LoadError, OpenObject, OpenOptions};
    use skelgen_test_support::matrix::{has, Feature};
    use std::os::fd::AsFd;

    let Some(_k) = support::kernel_serial() else {
        return;
    };
    let bytes = support::fixture("ksym_typed");
    let mut open = OpenObject::open(&bytes, "ksym_typed", OpenOptions::default()).unwrap();
    let index = |o: &Object, name: &str| o.maps.iter().position(|m| m.name == name).unwrap();
    let rodata = index(open.object(), ".rodata");
    // targ_tgid at offset 0.
    open.data_image_mut(rodata).unwrap().as_bytes_mut()[..4]
        .copy_from_slice(&(std::process::id() as i32).to_ne_bytes());
    let loaded = open.load();
    if !has(Feature::KallsymsAll) {
        // The BTF side resolves (the VAR is in vmlinux BTF); the kernel then
        // cannot find the variable's address and says which symbol.
        let e = loaded.expect_err("ksym_typed loads without KALLSYMS_ALL");
        let LoadError::ProgLoad { source, .. } = &e else {
            panic!("not a program load error: {}", support::error_chain(&e));
        };
        let log = source.verifier_log().unwrap_or_default();
        assert!(
            log.contains("failed to find the address for kernel symbol 'bpf_prog_active'"),
            "{}\n{log}",
            support::error_chain(&e)
        );
        return;
    }
    let o = loaded.unwrap_or_else(|e| panic!("{}", support::error_chain(&e)));
    let prog = o
        .object()
        .programs
        .iter()
        .position(|p| p.name == "ksym_typed_getppid")
        .unwrap();
    let link = attach::auto_attach(
        o.prog_fd(prog).unwrap().as_fd(),
        "ksym_typed_getppid",
        "tp/syscalls/sys_enter_getppid",
    )
    .unwrap()
    .expect("tracepoint auto-attaches");
    std::hint::black_box(std::os::unix::process::parent_id());
    drop(link);
    let read = |map: &str, at: usize, len: usize| {
        let m = o.map(index(o.object(), map)).unwrap();
        let mut v = vec![0u8; m.fd.value_size() as usize];
        assert!(m.fd.lookup(&0u32.to_ne_bytes(), &mut v, 0).unwrap());
        v[at..at + len].to_vec()
    };
    let runs = u64::from_ne_bytes(read(".bss", 0, 8).try_into().unwrap());
    assert_eq!(runs, 1, "the program ran once for our getppid");
    // bpf_prog_active is 1 on the CPU while a tracepoint program runs.
    let active = i32::from_ne_bytes(read(".data", 0, 4).try_into().unwrap());
    assert_eq!(active, 1, "bpf_prog_active as the program read it");
}
