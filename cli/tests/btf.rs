//! `skelgen btf dump` and `skelgen min-core-btf` as a user runs them: output
//! files, formats, and one-line errors with exit status 1.

use std::path::Path;
use std::process::Command;

use skelgen_test_support::fixture_path;

fn skelgen(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_skelgen"))
        .args(args)
        .output()
        .expect("run skelgen")
}

fn tmp(name: &str) -> String {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-btf");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name).to_string_lossy().into_owned()
}

#[test]
fn btf_dump_writes_c_and_rust() {
    let obj = fixture_path("core");
    let obj = obj.to_str().unwrap();
    let out = tmp("core.h");
    let o = skelgen(&["btf", "dump", obj, "-o", &out]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let header = std::fs::read_to_string(&out).unwrap();
    assert!(header.starts_with("#ifndef __VMLINUX_H__"), "{header}");
    assert!(header.contains("struct task_struct {"), "{header}");

    let o = skelgen(&[
        "btf",
        "dump",
        obj,
        "--format",
        "rust",
        "--type",
        "task_struct",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let code = String::from_utf8(o.stdout).unwrap();
    assert!(code.contains("pub struct task_struct"), "{code}");
    assert!(
        code.contains("::core::mem::offset_of!(task_struct, pid)"),
        "{code}"
    );
}

#[test]
fn bad_input_is_one_line_and_exit_1() {
    let junk = tmp("junk.btf");
    std::fs::write(&junk, b"\x9f\xeb\x01\x00junk").unwrap();
    for args in [
        vec!["btf", "dump", junk.as_str()],
        vec!["btf", "dump", "/nonexistent/skelgen.btf"],
        vec![
            "btf",
            "dump",
            fixture_path("core").to_str().unwrap(),
            "--format",
            "rust",
        ],
        vec!["min-core-btf", junk.as_str(), "/dev/null", "/nonexistent.o"],
    ] {
        let o = skelgen(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8(o.stderr).unwrap();
        assert!(err.starts_with("skelgen: "), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn min_core_btf_writes_raw_btf() {
    let src = tmp("core-src.btf");
    let o = skelgen(&[
        "min-core-btf",
        "/sys/kernel/btf/vmlinux",
        &src,
        fixture_path("core").to_str().unwrap(),
    ]);
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        assert_eq!(o.status.code(), Some(1));
        return;
    }
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = std::fs::read(&src).unwrap();
    let btf = skelgen_runtime::btf::Btf::parse(&bytes).unwrap();
    assert!(btf
        .find_by_name_kind("task_struct", skelgen_runtime::btf::Kind::Struct)
        .is_some());
}
