//! The build.rs `Builder`, driven as a build script would drive it, with
//! the `cargo:` lines captured.

use std::path::{Path, PathBuf};

use skelgen::{BuildError, Builder};
use skelgen_test_support::{fixtures_dir, have_tool, require};

fn fixtures() -> PathBuf {
    fixtures_dir().canonicalize().expect("tests/fixtures")
}

/// A fresh output directory per test.
fn out_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("builder-{test}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("out dir");
    dir
}

fn vfsstat(out: &Path) -> Builder {
    let fx = fixtures();
    Builder::new()
        .source(fx.join("vfsstat.bpf.c"))
        .include(fx.join("include"))
        .include(&fx)
        .out_dir(out)
        .target_arch("x86_64")
}

#[test]
fn builds_a_fixture_and_reports_every_header() {
    if !require(have_tool("clang"), "clang is not installed") {
        return;
    }
    let out = out_dir("fixture");
    let mut cargo = Vec::new();
    let skel = vfsstat(&out).build_to(&mut cargo).expect("build");
    let cargo = String::from_utf8(cargo).expect("utf-8");
    let fx = fixtures();

    assert_eq!(skel, out.join("vfsstat.skel.rs"));
    assert!(std::fs::metadata(&skel).is_ok_and(|m| m.len() > 0));
    for header in [
        fx.join("vfsstat.bpf.c"),
        fx.join("include/vmlinux-lite.h"),
        fx.join("vfsstat.h"),
        PathBuf::from("/usr/include/bpf/bpf_helpers.h"),
        PathBuf::from("/usr/include/bpf/bpf_tracing.h"),
    ] {
        let line = format!("cargo:rerun-if-changed={}", header.display());
        assert!(cargo.lines().any(|l| l == line), "no `{line}` in:\n{cargo}");
    }
    assert!(
        cargo
            .lines()
            .any(|l| l == "cargo:rerun-if-env-changed=CLANG"),
        "{cargo}"
    );
    // Each input once.
    let reruns: Vec<_> = cargo
        .lines()
        .filter(|l| l.starts_with("cargo:rerun-if-changed="))
        .collect();
    let mut unique = reruns.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(reruns.len(), unique.len(), "{cargo}");

    // The compiled object (with DWARF) and the stripped one the skeleton
    // embeds both parse to the same programs.
    let full = std::fs::read(out.join("vfsstat.bpf.o")).expect("object in OUT_DIR");
    let embed = std::fs::read(out.join("vfsstat.embed.bpf.o")).expect("embedded object");
    assert!(embed.len() < full.len());
    let a = skelgen_runtime::obj::Object::parse(&full, "vfsstat").expect("parse");
    let b = skelgen_runtime::obj::Object::parse(&embed, "vfsstat").expect("parse");
    let names = |o: &skelgen_runtime::obj::Object| {
        o.programs
            .iter()
            .map(|p| p.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&a), names(&b));
    assert_eq!(names(&a).len(), 10);
}

#[test]
fn the_skeleton_is_written_only_when_it_changes() {
    if !require(have_tool("clang"), "clang is not installed") {
        return;
    }
    let out = out_dir("unchanged");
    let skel = vfsstat(&out).build_to(&mut Vec::new()).expect("build");
    let first = std::fs::metadata(&skel)
        .and_then(|m| m.modified())
        .expect("mtime");
    std::thread::sleep(std::time::Duration::from_millis(20));
    vfsstat(&out).build_to(&mut Vec::new()).expect("rebuild");
    let second = std::fs::metadata(&skel)
        .and_then(|m| m.modified())
        .expect("mtime");
    assert_eq!(first, second, "an identical skeleton was rewritten");
}

#[test]
fn user_flags_come_after_the_defaults() {
    if !require(have_tool("clang"), "clang is not installed") {
        return;
    }
    let out = out_dir("flags");
    let src = out.join("flags.bpf.c");
    // The user -D reaches the preprocessor and the arch define follows
    // target_arch.
    std::fs::write(
        &src,
        "#ifndef FROM_USER\n#error FROM_USER missing\n#endif\n\
         #if !defined(__TARGET_ARCH_arm64)\n#error wrong arch\n#endif\n\
         char LICENSE[] __attribute__((section(\"license\"), used)) = \"GPL\";\n",
    )
    .expect("write source");
    Builder::new()
        .source(&src)
        .clang_args(["-DFROM_USER=1"])
        .target_arch("aarch64")
        .out_dir(&out)
        .build_to(&mut Vec::new())
        .expect("build");
    assert!(out.join("flags.skel.rs").exists());
}

#[test]
fn a_clang_error_carries_clangs_message() {
    if !require(have_tool("clang"), "clang is not installed") {
        return;
    }
    let out = out_dir("clang-error");
    let src = out.join("broken.bpf.c");
    std::fs::write(&src, "int f(void) { return undeclared_thing; }\n").expect("write source");
    let mut cargo = Vec::new();
    let err = Builder::new()
        .source(&src)
        .clang("clang")
        .target_arch("x86_64")
        .out_dir(&out)
        .build_to(&mut cargo)
        .expect_err("must fail");
    let BuildError::Clang { ref stderr, .. } = err else {
        panic!("expected BuildError::Clang, got {err:?}");
    };
    assert!(stderr.contains("undeclared_thing"), "{stderr}");
    let message = err.to_string();
    assert!(message.contains("clang failed"), "{message}");
    assert!(
        message.contains("use of undeclared identifier 'undeclared_thing'"),
        "{message}"
    );
    // Fixing the source must rerun the build script.
    let cargo = String::from_utf8(cargo).expect("utf-8");
    let line = format!("cargo:rerun-if-changed={}", src.display());
    assert!(cargo.lines().any(|l| l == line), "{cargo}");
    // clang was given explicitly: no CLANG lookup, so no env line.
    assert!(!cargo.contains("rerun-if-env-changed=CLANG"), "{cargo}");
}

#[test]
fn an_unknown_arch_is_named() {
    let out = out_dir("arch");
    let err = Builder::new()
        .source(fixtures().join("vfsstat.bpf.c"))
        .target_arch("mips64")
        .out_dir(&out)
        .build_to(&mut Vec::new())
        .expect_err("mips64 has no __TARGET_ARCH_ name here");
    assert!(
        matches!(&err, BuildError::UnknownArch { arch } if arch == "mips64"),
        "{err:?}"
    );
    assert!(err.to_string().contains("'mips64'"), "{err}");
}

#[test]
fn a_missing_clang_says_what_to_do() {
    let out = out_dir("no-clang");
    let err = Builder::new()
        .source(fixtures().join("vfsstat.bpf.c"))
        .clang("/nonexistent/bin/clang-99")
        .target_arch("x86_64")
        .out_dir(&out)
        .build_to(&mut Vec::new())
        .expect_err("no such clang");
    assert!(matches!(err, BuildError::ClangNotFound { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("/nonexistent/bin/clang-99"), "{message}");
    assert!(
        message.contains("install clang") && message.contains("CLANG"),
        "{message}"
    );
}

#[test]
fn a_compiled_object_skips_clang() {
    let out = out_dir("object");
    let obj = fixtures().join("xdp_counter.bpf.o");
    let mut cargo = Vec::new();
    let skel = Builder::new()
        .object(&obj)
        .name("xdp_counter_bpf")
        .clang("/nonexistent/clang")
        .out_dir(&out)
        .build_to(&mut cargo)
        .expect("build from object");
    assert_eq!(skel, out.join("xdp_counter.skel.rs"));
    let cargo = String::from_utf8(cargo).expect("utf-8");
    assert_eq!(
        cargo.trim(),
        format!("cargo:rerun-if-changed={}", obj.display())
    );
}

#[test]
fn not_a_bpf_object_is_a_generate_error() {
    let out = out_dir("not-bpf");
    let bogus = out.join("bogus.bpf.o");
    std::fs::write(&bogus, b"just text").expect("write");
    let err = Builder::new()
        .object(&bogus)
        .out_dir(&out)
        .build_to(&mut Vec::new())
        .expect_err("not an object");
    // Stripping comes first and reports the ELF problem with the path.
    assert!(matches!(err, BuildError::Strip { .. }), "{err:?}");
    assert!(err.to_string().contains("bogus.bpf.o"), "{err}");
}

#[test]
fn no_input_is_an_error() {
    let err = Builder::new()
        .out_dir(out_dir("no-input"))
        .build_to(&mut Vec::new())
        .expect_err("no input");
    assert!(matches!(err, BuildError::NoInput), "{err:?}");
}
