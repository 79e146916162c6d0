//! The `skelgen` command: skeletons for every fixture compile with warnings
//! denied in a crate that depends on skelgen-runtime alone, generation is
//! deterministic, `--help` is a snapshot, bad input is one line and exit 1.

use std::path::{Path, PathBuf};
use std::process::Command;

use skelgen_test_support::{fixture_path, fixtures_dir};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixtures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".bpf.o"))
        .collect();
    v.sort();
    v
}

fn skelgen(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_skelgen"))
        .args(args)
        .output()
        .expect("run skelgen")
}

#[test]
fn help_is_stable() {
    let out = skelgen(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let snapshot = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/help.txt");
    if std::env::var_os("SKELGEN_BLESS").is_some() {
        std::fs::create_dir_all(snapshot.parent().unwrap()).unwrap();
        std::fs::write(&snapshot, &help).unwrap();
    }
    let want = std::fs::read_to_string(&snapshot)
        .expect("snapshot missing: run with SKELGEN_BLESS=1 and review it");
    assert_eq!(
        help, want,
        "--help changed; rerun with SKELGEN_BLESS=1 if intended"
    );
}

#[test]
fn bad_input_is_one_line_exit_1_and_no_stdout() {
    let dir = std::env::temp_dir().join(format!("skelgen-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.bpf.o");
    std::fs::write(&bad, b"\x7fELF but not really").unwrap();
    for args in [
        vec![bad.to_str().unwrap()],
        vec![dir
            .join("missing.bpf.o")
            .to_str()
            .unwrap()
            .to_string()
            .leak() as &str],
    ] {
        let out = skelgen(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}: stdout not empty");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("skelgen: "), "{err}");
    }
    // A usage error is clap's, exit 2.
    assert_eq!(skelgen(&["--no-such-flag"]).status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn output_file_and_name() {
    let dir = std::env::temp_dir().join(format!("skelgen-cli-o-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out_file = dir.join("x.rs");
    let obj = fixture_path("xdp_counter");
    let out = skelgen(&[
        obj.to_str().unwrap(),
        "-o",
        out_file.to_str().unwrap(),
        "--name",
        "pkt_bpf",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let text = std::fs::read_to_string(&out_file).unwrap();
    assert!(text.contains("pub struct PktBpf {"));
    assert!(text.contains("pub struct OpenPktBpf {"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every fixture's skeleton, from the CLI, in one crate that depends on
/// skelgen-runtime alone, with every warning denied (`#![deny(warnings)]`
/// at its root covers the generated code).
#[test]
fn every_fixture_skeleton_compiles_against_the_runtime_alone() {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let krate = target.join("cli-skeletons");
    let src = krate.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let runtime = workspace().join("runtime").canonicalize().unwrap();
    std::fs::write(
        krate.join("Cargo.toml"),
        format!(
            "[package]\nname = \"cli-skeletons\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
             [dependencies]\nskelgen-runtime = {{ path = {:?} }}\n\n[workspace]\n",
            runtime
        ),
    )
    .unwrap();
    std::fs::copy(workspace().join("Cargo.lock"), krate.join("Cargo.lock")).unwrap();
    let mut lib = String::from("#![deny(warnings)]\n#![allow(missing_docs)]\n");
    for obj in fixtures() {
        let path = obj.to_str().unwrap();
        let first = skelgen(&[path]);
        assert!(
            first.status.success(),
            "{path}: {}",
            String::from_utf8_lossy(&first.stderr)
        );
        let second = skelgen(&[path]);
        assert_eq!(
            first.stdout, second.stdout,
            "{path}: generation is not deterministic"
        );
        let stem = obj
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .trim_end_matches(".bpf.o")
            .to_string();
        std::fs::write(src.join(format!("{stem}.rs")), &first.stdout).unwrap();
        lib.push_str(&format!("pub mod {stem} {{ include!(\"{stem}.rs\"); }}\n"));
    }
    std::fs::write(src.join("lib.rs"), lib).unwrap();
    let out = Command::new(env!("CARGO"))
        .args(["build", "--offline", "--quiet"])
        .current_dir(&krate)
        .env("CARGO_TARGET_DIR", target.join("cli-skeletons-target"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the generated skeletons do not compile:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// clang 14 records neither enum signedness nor 64-bit enumerators: the
/// CLI says so on stderr and still generates.
#[test]
fn old_clang_enums_are_warned_about() {
    let obj = fixture_path("layout");
    let out = skelgen(&[obj.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(!out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("skelgen: warning:") && err.contains("enum signedness"),
        "{err}"
    );
    assert!(err.contains("truncated its values to 32 bits"), "{err}");
}

/// An object of a few hundred BTF types (a libbpf-tools-style program built
/// with -g against a full vmlinux.h, which `skelgen btf dump` writes from
/// the running kernel) is formatted on two threads, each allocating from
/// the CLI's arena: the command's output is the library's (one allocator,
/// the system's), byte for byte, and the object has the types that take
/// that path.
#[test]
fn a_vmlinux_sized_skeleton_from_two_threads_equals_the_librarys() {
    use skelgen_test_support::{have_tool, require};
    let vmlinux = Path::new("/sys/kernel/btf/vmlinux");
    if !require(have_tool("clang"), "clang is not installed")
        || !require(vmlinux.exists(), "no /sys/kernel/btf/vmlinux")
    {
        return;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("two-threads");
    std::fs::create_dir_all(&dir).unwrap();
    let header = dir.join("vmlinux.h");
    let out = skelgen(&[
        "btf",
        "dump",
        "/sys/kernel/btf/vmlinux",
        "-o",
        header.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let src = workspace().join("skelgen/tests/data/exec_vmlinux.bpf.c");
    std::fs::copy(&src, dir.join("exec.bpf.c")).unwrap();
    let out = Command::new("clang")
        .args(["-g", "-O2", "-target", "bpf", "-D__TARGET_ARCH_x86"])
        .args(["-c", "exec.bpf.c", "-o", "exec.bpf.o"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let object = dir.join("exec.bpf.o");
    let bytes = std::fs::read(&object).unwrap();
    let types = skelgen_runtime::obj::Object::parse(&bytes, "exec")
        .unwrap()
        .btf
        .map_or(0, |btf| btf.len());
    assert!(types >= 256, "only {types} BTF types: the one-thread path");
    let cli = skelgen(&[object.to_str().unwrap()]);
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let path = object.to_string_lossy();
    let lib = skelgen::generate(
        &bytes,
        &skelgen::Options::new().name(skelgen::default_name(&path)),
    )
    .unwrap();
    assert!(
        String::from_utf8(cli.stdout).unwrap() == lib,
        "the command's skeleton differs from the library's"
    );
}
