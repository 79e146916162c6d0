//! `skelgen link OUT IN...` from the command line: writes the linked object,
//! and a bad link fails with a message naming both files.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../tests/fixtures/link/{name}.bpf.o"))
}

fn skelgen_link(out: &Path, inputs: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_skelgen"))
        .arg("link")
        .arg(out)
        .args(inputs.iter().map(|n| fixture(n)))
        .output()
        .unwrap()
}

#[test]
fn links_and_reports_conflicts() {
    let dir = std::env::temp_dir().join(format!("skelgen-cli-link-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("linked.bpf.o");
    let ok = skelgen_link(&out, &["main", "lib", "override"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let bytes = std::fs::read(&out).unwrap();
    let obj = skelgen_runtime::obj::Object::parse(&bytes, "linked").unwrap();
    let mut progs: Vec<_> = obj.entry_programs().map(|p| p.name.as_str()).collect();
    progs.sort();
    assert_eq!(progs, ["handle_getppid", "lib_xdp", "main_xdp"]);

    let bad = skelgen_link(&dir.join("bad.o"), &["lib", "dup"]);
    assert!(!bad.status.success());
    let msg = String::from_utf8_lossy(&bad.stderr);
    assert!(
        msg.starts_with("skelgen: cannot link: symbol 'lib_add' is defined in both ")
            && msg.contains("lib.bpf.o (section '.text')")
            && msg.contains("dup.bpf.o (section '.text')"),
        "{msg}"
    );
    assert!(!dir.join("bad.o").exists());
}

#[test]
fn subskeleton_of_a_library() {
    let out = Command::new(env!("CARGO_BIN_EXE_skelgen"))
        .arg("--subskeleton")
        .arg(fixture("lib"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let code = String::from_utf8(out.stdout).unwrap();
    for part in [
        "pub struct LibBpfSubskel<'a>",
        "pub counts: ::skelgen_runtime::subskel::SubskelMap<'a, types::__u32, types::__u64>",
        "pub lib_xdp: ::std::os::fd::BorrowedFd<'a>",
        "pub lib_total: ::skelgen_runtime::subskel::SubskelVar<'a, types::__u64>",
    ] {
        assert!(code.contains(part), "{part} missing in:\n{code}");
    }
}
