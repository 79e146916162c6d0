//! What a skeleton embeds of a typical object: a libbpf-tools-style program
//! compiled with -g against a full vmlinux.h (generated from the running
//! kernel's BTF), whose DWARF describes every kernel type it reads. The
//! embedded copy (DWARF stripped) must be at most 15% of the object.

use std::path::Path;
use std::process::Command;

use skelgen_test_support::{have_tool, require};

#[test]
fn embedded_object_is_at_most_15_percent_of_a_vmlinux_h_object() {
    let vmlinux = Path::new("/sys/kernel/btf/vmlinux");
    if !require(have_tool("clang"), "clang is not installed")
        || !require(
            Command::new("bpftool").arg("version").output().is_ok(),
            "bpftool is not installed",
        )
        || !require(vmlinux.exists(), "no /sys/kernel/btf/vmlinux")
    {
        return;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("embed-size");
    std::fs::create_dir_all(&dir).unwrap();
    let header = Command::new("bpftool")
        .args(["btf", "dump", "file"])
        .arg(vmlinux)
        .args(["format", "c"])
        .output()
        .unwrap();
    assert!(header.status.success());
    std::fs::write(dir.join("vmlinux.h"), header.stdout).unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/exec_vmlinux.bpf.c");
    std::fs::copy(&src, dir.join("exec.bpf.c")).unwrap();
    let out = Command::new("clang")
        .args([
            "-g",
            "-O2",
            "-target",
            "bpf",
            "-D__TARGET_ARCH_x86",
            "-c",
            "exec.bpf.c",
            "-o",
            "exec.bpf.o",
        ])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let object = std::fs::read(dir.join("exec.bpf.o")).unwrap();
    let embedded = skelgen::strip::strip_debug(&object).unwrap();
    let ratio = embedded.len() as f64 / object.len() as f64;
    eprintln!(
        "object {} bytes, embedded {} bytes ({:.1}%)",
        object.len(),
        embedded.len(),
        ratio * 100.0
    );
    assert!(
        ratio <= 0.15,
        "embedded {:.1}% of the object",
        ratio * 100.0
    );
    // And the skeleton embeds exactly that copy.
    let code = skelgen::generate(&object, &skelgen::Options::new().name("exec_bpf")).unwrap();
    assert!(
        code.contains(&format!("[u8; {}]", embedded.len())),
        "skeleton does not embed the stripped copy"
    );
}
