//! `min_core_btf` against bpftool's `gen min_core_btf` on the same inputs:
//! the same types, and never more bytes; and its errors on bad input.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use skelgen::min_core::{min_core_btf, MinCoreError};
use skelgen_runtime::btf::{Btf, VMLINUX_BTF_PATH};
use skelgen_test_support::{all_fixtures, error_chain, fixture, have_tool, require};

/// The fixtures with CO-RE relocations against kernel types.
const WITH_CORE: &[&str] = &["core", "attach", "kconfig", "struct_ops"];

#[test]
fn minimal_btf_is_no_larger_than_bpftools() {
    if !require(
        Path::new(VMLINUX_BTF_PATH).exists(),
        "no /sys/kernel/btf/vmlinux",
    ) || !require(have_tool("bpftool"), "bpftool is not installed")
    {
        return;
    }
    let full = Arc::new(Btf::from_vmlinux().unwrap());
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("min-core");
    std::fs::create_dir_all(&dir).unwrap();
    let fixtures = skelgen_test_support::fixtures_dir();
    let mut sets: Vec<Vec<&str>> = WITH_CORE.iter().map(|f| vec![*f]).collect();
    sets.push(WITH_CORE.to_vec());
    for set in sets {
        let objects: Vec<(String, Vec<u8>)> = set
            .iter()
            .map(|n| (format!("{n}.bpf.o"), fixture(n)))
            .collect();
        let refs: Vec<(&str, &[u8])> = objects
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        let ours =
            min_core_btf(full.clone(), &refs).unwrap_or_else(|e| panic!("{}", error_chain(&e)));
        Btf::parse(&ours).expect("our output parses");
        let out = dir.join("bpftool.btf");
        let status = Command::new("bpftool")
            .args(["gen", "min_core_btf", VMLINUX_BTF_PATH])
            .arg(&out)
            .args(set.iter().map(|n| fixtures.join(format!("{n}.bpf.o"))))
            .status()
            .unwrap();
        assert!(status.success(), "bpftool failed on {set:?}");
        let theirs = std::fs::read(&out).unwrap();
        eprintln!(
            "{set:?}: {} bytes here, {} from bpftool{}",
            ours.len(),
            theirs.len(),
            if ours == theirs { " (identical)" } else { "" }
        );
        assert!(ours.len() <= theirs.len(), "{set:?}: larger than bpftool's");
        // The same types: bpftool's own listing of both files.
        let dump = |p: &Path| {
            let o = Command::new("bpftool")
                .args(["btf", "dump", "file"])
                .arg(p)
                .output()
                .unwrap();
            String::from_utf8(o.stdout).unwrap()
        };
        let mine = dir.join("ours.btf");
        std::fs::write(&mine, &ours).unwrap();
        assert_eq!(dump(&mine), dump(&out), "{set:?}: types differ");
    }
}

#[test]
fn objects_without_core_give_an_empty_btf_and_bad_input_errors() {
    // A hand-made target with none of the types: relocations find no
    // candidate (existence checks give 0), so nothing is kept.
    let mut raw = Vec::new();
    for w in [0x0001_eb9f_u32, 24, 0, 0, 0, 1] {
        raw.extend_from_slice(&w.to_le_bytes());
    }
    raw.push(0);
    let empty = Arc::new(Btf::from_vec(raw.clone()).unwrap());
    let core = fixture("core");
    let out = min_core_btf(empty.clone(), &[("core.bpf.o", &core)]).unwrap();
    assert_eq!(Btf::parse(&out).unwrap().len(), 1, "only void");

    // Not an object.
    let e = min_core_btf(empty.clone(), &[("junk.o", b"junk")]).unwrap_err();
    assert!(matches!(e, MinCoreError::Object { .. }), "{e}");
    assert!(error_chain(&e).contains("junk.o"));

    // Split source BTF.
    let mut split = Vec::new();
    for w in [0x0001_eb9f_u32, 24, 0, 0, 0, 0] {
        split.extend_from_slice(&w.to_le_bytes());
    }
    let split = Arc::new(Btf::parse_split(&split, empty).unwrap());
    let e = min_core_btf(split, &[("core.bpf.o", &core)]).unwrap_err();
    assert!(matches!(e, MinCoreError::SplitSource), "{e}");

    // Every fixture goes through against a kernel-like target without panicking.
    if Path::new(VMLINUX_BTF_PATH).exists() {
        let full = Arc::new(Btf::from_vmlinux().unwrap());
        for (name, bytes) in all_fixtures() {
            if let Err(e) = min_core_btf(full.clone(), &[(&name, &bytes)]) {
                eprintln!("{name}: {}", error_chain(&e));
            }
        }
    }
}
