//! Every input the fuzzers (`fuzz/`) found to crash, hang or exhaust memory,
//! replayed through the same harness code the fuzz targets run
//! (`fuzz/harness/runtime.rs`), plus a direct test of each limit added for
//! them. The saved inputs live in `tests/fuzz-corpus/regressions/<target>/`.

#[path = "../../fuzz/harness/runtime.rs"]
mod harness;

use std::path::PathBuf;

use skelgen_runtime::obj::{ObjError, Object, MAX_DATA_MAP_SIZE};

fn regressions(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "tests",
        "fuzz-corpus",
        "regressions",
        target,
    ]
    .iter()
    .collect();
    // A target with no finding yet has no directory.
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.display().to_string(), bytes)
        })
        .collect();
    files.sort();
    files
}

fn replay(target: &str, run: fn(&[u8])) {
    for (path, bytes) in regressions(target) {
        eprintln!("replaying {path}");
        run(&bytes);
    }
}

#[test]
fn obj_parse_regressions() {
    replay("obj_parse", harness::obj_parse);
}

#[test]
fn btf_parse_regressions() {
    replay("btf_parse", harness::btf_parse);
}

#[test]
fn btf_ext_parse_regressions() {
    replay("btf_ext_parse", harness::btf_ext_parse);
}

#[test]
fn core_reloc_regressions() {
    replay("core_reloc", harness::core_reloc);
}

#[test]
fn core_reloc_harness_relocates_the_fixture() {
    // Mode 1 with the fixture's own BTF: the harness's baseline input, which
    // must keep working (a harness that always bails out finds nothing).
    let btf = Object::parse(harness::CORE_FIXTURE, "core")
        .expect("fixture parses")
        .btf
        .expect("fixture has BTF");
    let mut input = vec![1u8];
    input.extend_from_slice(btf.raw());
    harness::core_reloc(&input);
}

// ---------------------------------------------------------------------------
// ELF surgery on fixtures, to state each finding as the object that shows it.
// ---------------------------------------------------------------------------

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../tests/fixtures/{name}.bpf.o",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn u16_at(b: &[u8], at: usize) -> usize {
    u16::from_le_bytes([b[at], b[at + 1]]) as usize
}

fn u32_at(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize
}

fn u64_at(b: &[u8], at: usize) -> usize {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap()) as usize
}

/// Byte offset of the ELF64 section header of the section named `name`.
fn section_header(elf: &[u8], name: &str) -> usize {
    let (shoff, shentsize) = (u64_at(elf, 0x28), u16_at(elf, 0x3a));
    let (shnum, shstrndx) = (u16_at(elf, 0x3c), u16_at(elf, 0x3e));
    let strtab = u64_at(elf, shoff + shstrndx * shentsize + 0x18);
    (0..shnum)
        .map(|i| shoff + i * shentsize)
        .find(|&h| {
            let at = strtab + u32_at(elf, h);
            elf[at..].split(|&b| b == 0).next() == Some(name.as_bytes())
        })
        .unwrap_or_else(|| panic!("no section {name}"))
}

/// Found by `obj_parse` (oom-bss-4gib): a `.bss` whose header claims
/// 4 GiB made the object model allocate its zero image up front.
#[test]
fn bss_larger_than_the_data_map_limit_is_an_error() {
    let mut elf = fixture("xdp_counter");
    let h = section_header(&elf, ".bss");
    for (size, ok) in [
        (u64::from(MAX_DATA_MAP_SIZE), true),
        (u64::from(MAX_DATA_MAP_SIZE) + 1, false),
        (0xffff_fff7, false),
    ] {
        elf[h + 0x20..h + 0x28].copy_from_slice(&size.to_le_bytes());
        match Object::parse(&elf, "x") {
            Ok(obj) if ok => {
                let bss = obj.map(".bss").expect(".bss map");
                assert_eq!(u64::from(bss.def.value_size), size);
            }
            Ok(_) => panic!(".bss of {size} bytes accepted"),
            Err(e) if !ok => {
                assert!(
                    matches!(
                        &e,
                        ObjError::Limit { what, value, limit_name: "MAX_DATA_MAP_SIZE", .. }
                            if what.contains(".bss") && *value == size
                    ),
                    "{e}"
                );
            }
            Err(e) => panic!(".bss of {size} bytes refused: {e}"),
        }
    }
    // Past u32: refused earlier, by the DATASEC fixup.
    elf[h + 0x20..h + 0x28].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(Object::parse(&elf, "x").is_err());
}
