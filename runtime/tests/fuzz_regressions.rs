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

/// Found by the `core_reloc` harness, whose fixture comes from
/// `include_bytes!` (alignment 1): a valid object at an address that is not
/// a multiple of 8 was refused as "Invalid ELF header size or alignment".
#[test]
fn objects_parse_at_any_alignment() {
    let elf = fixture("core");
    let mut buf = vec![0u8; elf.len() + 8];
    let expected = Object::parse(&elf, "core").expect("fixture parses");
    for shift in 0..8 {
        let slice = &mut buf[shift..shift + elf.len()];
        slice.copy_from_slice(&elf);
        let obj = Object::parse(slice, "core")
            .unwrap_or_else(|e| panic!("at address {:p}: {e}", slice.as_ptr()));
        assert_eq!(obj.programs.len(), expected.programs.len());
        assert_eq!(obj.maps.len(), expected.maps.len());
    }
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

// ---------------------------------------------------------------------------
// Crafted objects: a minimal ELF writer, for inputs too large to commit that
// show quadratic work (the fuzzer's 64 KiB inputs are too small to time out).
// ---------------------------------------------------------------------------

const SHT_PROGBITS: u32 = 1;
const SHT_SYMTAB: u32 = 2;
const SHT_STRTAB: u32 = 3;
const SHT_REL: u32 = 9;
const SHF_ALLOC_EXEC: u64 = 0x2 | 0x4;
const STB_GLOBAL_FUNC: u8 = (1 << 4) | 2;
const STB_GLOBAL_NOTYPE: u8 = 1 << 4;

/// A relocatable EM_BPF ELF64 with the given sections, then `.strtab`,
/// `.symtab` (a null symbol, then `symbols`) and `.shstrtab`.
/// Sections are (name, type, flags, data, sh_link, sh_info).
struct ElfWriter {
    sections: Vec<(String, u32, u64, Vec<u8>, u32, u32)>,
    symbols: Vec<u8>,
    strings: Vec<u8>,
}

impl ElfWriter {
    fn new() -> Self {
        ElfWriter {
            sections: Vec::new(),
            symbols: vec![0; 24],
            strings: vec![0],
        }
    }

    /// Adds a section; its index (the null section is 0).
    fn section(&mut self, name: &str, ty: u32, flags: u64, data: Vec<u8>, link_info: (u32, u32)) {
        let (link, info) = link_info;
        self.sections
            .push((name.into(), ty, flags, data, link, info));
    }

    /// Adds a symbol; its index.
    fn symbol(&mut self, name: &str, info: u8, shndx: u16, value: u64, size: u64) -> u32 {
        let name_off = self.strings.len() as u32;
        self.strings.extend_from_slice(name.as_bytes());
        self.strings.push(0);
        self.symbols.extend_from_slice(&name_off.to_le_bytes());
        self.symbols.extend_from_slice(&[info, 0]);
        self.symbols.extend_from_slice(&shndx.to_le_bytes());
        self.symbols.extend_from_slice(&value.to_le_bytes());
        self.symbols.extend_from_slice(&size.to_le_bytes());
        (self.symbols.len() / 24 - 1) as u32
    }

    fn finish(mut self) -> Vec<u8> {
        let strtab = self.sections.len() as u32 + 1;
        let strings = std::mem::take(&mut self.strings);
        let symbols = std::mem::take(&mut self.symbols);
        self.section(".strtab", SHT_STRTAB, 0, strings, (0, 0));
        self.section(".symtab", SHT_SYMTAB, 0, symbols, (strtab, 1));
        let mut shstrtab = vec![0u8];
        let mut name_offs = Vec::new();
        for s in self
            .sections
            .iter()
            .map(|s| &s.0)
            .chain([&".shstrtab".into()])
        {
            name_offs.push(shstrtab.len() as u32);
            shstrtab.extend_from_slice(s.as_bytes());
            shstrtab.push(0);
        }
        self.section(".shstrtab", SHT_STRTAB, 0, shstrtab, (0, 0));

        let mut out = vec![0u8; 64];
        let mut headers = vec![0u8; 64]; // the null section
        for (i, (_, ty, flags, data, link, info)) in self.sections.iter().enumerate() {
            while out.len() % 8 != 0 {
                out.push(0);
            }
            let entsize: u64 = if *ty == SHT_SYMTAB {
                24
            } else if *ty == SHT_REL {
                16
            } else {
                0
            };
            headers.extend_from_slice(&name_offs[i].to_le_bytes());
            headers.extend_from_slice(&ty.to_le_bytes());
            headers.extend_from_slice(&flags.to_le_bytes());
            headers.extend_from_slice(&0u64.to_le_bytes()); // addr
            headers.extend_from_slice(&(out.len() as u64).to_le_bytes());
            headers.extend_from_slice(&(data.len() as u64).to_le_bytes());
            headers.extend_from_slice(&link.to_le_bytes());
            headers.extend_from_slice(&info.to_le_bytes());
            headers.extend_from_slice(&8u64.to_le_bytes());
            headers.extend_from_slice(&entsize.to_le_bytes());
            out.extend_from_slice(data);
        }
        while out.len() % 8 != 0 {
            out.push(0);
        }
        let shoff = out.len() as u64;
        let shnum = self.sections.len() as u16 + 1;
        out.extend_from_slice(&headers);
        let mut eh = b"\x7fELF\x02\x01\x01".to_vec();
        eh.resize(16, 0);
        eh.extend_from_slice(&1u16.to_le_bytes()); // ET_REL
        eh.extend_from_slice(&247u16.to_le_bytes()); // EM_BPF
        eh.extend_from_slice(&1u32.to_le_bytes());
        eh.extend_from_slice(&[0; 16]); // entry, phoff
        eh.extend_from_slice(&shoff.to_le_bytes());
        eh.extend_from_slice(&0u32.to_le_bytes()); // flags
        for half in [64u16, 0, 0, 64, shnum, shnum - 1] {
            eh.extend_from_slice(&half.to_le_bytes());
        }
        out[..64].copy_from_slice(&eh);
        out
    }
}

/// Raw BTF from type records (as u32 words) and a string table.
fn raw_btf(types: &[u32], strings: &[u8]) -> Vec<u8> {
    let type_len = (types.len() * 4) as u32;
    let mut b = Vec::new();
    for w in [
        0x0001_eb9f_u32,
        24,
        0,
        type_len,
        type_len,
        strings.len() as u32,
    ] {
        b.extend_from_slice(&w.to_le_bytes());
    }
    for w in types {
        b.extend_from_slice(&w.to_le_bytes());
    }
    b.extend_from_slice(strings);
    b
}

/// Parses `elf`, failing the test if it takes longer than `limit` (in a
/// debug build: a linear pass takes milliseconds; the quadratic ones took
/// minutes at these sizes).
fn parse_within(elf: &[u8], limit: std::time::Duration) -> Object {
    let start = std::time::Instant::now();
    let obj = Object::parse(elf, "crafted").unwrap_or_else(|e| panic!("{e}"));
    let took = start.elapsed();
    assert!(took < limit, "parsing took {took:?}");
    obj
}

/// 20k kfunc externs: finding each one's DATASEC entry scanned every BTF
/// type, so 8000 of them took 15 s of CPU.
#[test]
fn many_externs_parse_in_linear_time() {
    const N: u32 = 20_000;
    let mut w = ElfWriter::new();
    let mut types = vec![0, 13 << 24, 0]; // id 1: FUNC_PROTO void (void)
    let mut strings = vec![0u8];
    for i in 0..N {
        let name = format!("kfunc{i}");
        types.extend_from_slice(&[strings.len() as u32, (12 << 24) | 2, 1]); // extern FUNC
        strings.extend_from_slice(name.as_bytes());
        strings.push(0);
        w.symbol(&name, STB_GLOBAL_NOTYPE, 0, 0, 0);
    }
    w.section(".BTF", SHT_PROGBITS, 0, raw_btf(&types, &strings), (0, 0));
    let obj = parse_within(&w.finish(), std::time::Duration::from_secs(5));
    assert_eq!(obj.externs.len(), N as usize);
}

/// 20k one-instruction programs, each in its own section and each calling a
/// `.text` function: programs were found by a search of every symbol per
/// section and every program per relocation.
#[test]
fn many_programs_and_relocations_parse_in_linear_time() {
    const N: usize = 20_000;
    let mut w = ElfWriter::new();
    let call = [0x85u8, 0x10, 0, 0, 0xff, 0xff, 0xff, 0xff]; // call pc-1+1 = .text+0
    let exit = [0x95u8, 0, 0, 0, 0, 0, 0, 0];
    w.section(".text", SHT_PROGBITS, SHF_ALLOC_EXEC, exit.to_vec(), (0, 0));
    let sub = w.symbol("sub", STB_GLOBAL_FUNC, 1, 0, 8);
    // Sections 2..2+N are programs, then their relocation tables; symtab
    // comes after those.
    let symtab = (2 + 2 * N) as u32 + 1;
    for i in 0..N {
        w.section(
            &format!("xdp/p{i}"),
            SHT_PROGBITS,
            SHF_ALLOC_EXEC,
            call.to_vec(),
            (0, 0),
        );
        w.symbol(&format!("p{i}"), STB_GLOBAL_FUNC, (2 + i) as u16, 0, 8);
    }
    let mut rel = 0u64.to_le_bytes().to_vec();
    rel.extend_from_slice(&((u64::from(sub) << 32) | 10).to_le_bytes()); // R_BPF_64_32
    for i in 0..N {
        let name = format!(".relxdp/p{i}");
        w.section(&name, SHT_REL, 0, rel.clone(), (symtab, (2 + i) as u32));
    }
    let obj = parse_within(&w.finish(), std::time::Duration::from_secs(5));
    assert_eq!(obj.entry_programs().count(), N);
    assert!(obj
        .programs
        .iter()
        .filter(|p| !p.subprog)
        .all(|p| p.relocs.len() == 1));
}
