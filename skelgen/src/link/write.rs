//! Writing the linked object: a relocatable ELF64 little-endian EM_BPF file.
//!
//! Written by hand rather than with the `object` crate's `write` feature:
//! the layout is fixed and tiny (header, sections, symbols, REL tables, one
//! string table), the linker must control section order, symbol indices and
//! alignment exactly (relocations name symbols by index, and the loader
//! reads instructions and BTF in place), and the workspace's `object`
//! dependency stays read-only.

/// A section to write. Indices: 0 is the null section, 1 `.strtab`, 2
/// `.symtab`, then these in order (the first of them has index 3).
#[derive(Debug)]
pub(crate) struct OutSection {
    pub name: String,
    pub sh_type: u32,
    pub flags: u64,
    pub align: u64,
    /// Contents (empty for SHT_NOBITS, whose size is `size`).
    pub data: Vec<u8>,
    pub size: u64,
    pub link: u32,
    pub info: u32,
    pub entsize: u64,
}

/// A symbol to write; `shndx` is already an output section index.
#[derive(Debug, Clone)]
pub(crate) struct OutSymbol {
    pub name: String,
    pub value: u64,
    pub size: u64,
    pub bind: u8,
    pub typ: u8,
    pub other: u8,
    pub shndx: u16,
}

/// Index of the first section in `sections`.
pub(crate) const FIRST_SECTION: usize = 3;
const SHT_STRTAB: u32 = 3;
const SHT_SYMTAB: u32 = 2;
const SHT_NOBITS: u32 = 8;

struct StrTab {
    bytes: Vec<u8>,
    index: std::collections::HashMap<String, u32>,
}

impl StrTab {
    fn add(&mut self, s: &str) -> u32 {
        if s.is_empty() {
            return 0;
        }
        if let Some(&o) = self.index.get(s) {
            return o;
        }
        let o = self.bytes.len() as u32;
        self.bytes.extend_from_slice(s.as_bytes());
        self.bytes.push(0);
        self.index.insert(s.to_string(), o);
        o
    }
}

fn pad_to(out: &mut Vec<u8>, align: u64) {
    let align = align.max(1) as usize;
    while out.len() % align != 0 {
        out.push(0);
    }
}

/// Writes the ELF file. `symbols[0]` must be the null symbol and locals
/// must come first (`first_global` is the index of the first non-local).
pub(crate) fn write_elf(
    sections: &[OutSection],
    symbols: &[OutSymbol],
    first_global: usize,
) -> Vec<u8> {
    let mut strtab = StrTab {
        bytes: vec![0],
        index: Default::default(),
    };
    let strtab_name = strtab.add(".strtab");
    let symtab_name = strtab.add(".symtab");
    let names: Vec<u32> = sections.iter().map(|s| strtab.add(&s.name)).collect();
    let mut symtab = Vec::with_capacity(symbols.len() * 24);
    for s in symbols {
        let name = strtab.add(&s.name);
        symtab.extend_from_slice(&name.to_le_bytes());
        symtab.push((s.bind << 4) | (s.typ & 0xf));
        symtab.push(s.other);
        symtab.extend_from_slice(&s.shndx.to_le_bytes());
        symtab.extend_from_slice(&s.value.to_le_bytes());
        symtab.extend_from_slice(&s.size.to_le_bytes());
    }

    let mut out = vec![0u8; 64];
    // (offset, size) of each section's bytes in the file.
    let place = |out: &mut Vec<u8>, data: &[u8], align: u64| -> u64 {
        pad_to(out, align.max(8));
        let at = out.len() as u64;
        out.extend_from_slice(data);
        at
    };
    let strtab_off = place(&mut out, &strtab.bytes, 1);
    let symtab_off = place(&mut out, &symtab, 8);
    let offs: Vec<u64> = sections
        .iter()
        .map(|s| place(&mut out, &s.data, s.align))
        .collect();
    pad_to(&mut out, 8);
    let shoff = out.len() as u64;

    let mut shdr = |name: u32,
                    sh_type: u32,
                    flags: u64,
                    offset: u64,
                    size: u64,
                    link: u32,
                    info: u32,
                    align: u64,
                    entsize: u64| {
        out.extend_from_slice(&name.to_le_bytes());
        out.extend_from_slice(&sh_type.to_le_bytes());
        out.extend_from_slice(&flags.to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&link.to_le_bytes());
        out.extend_from_slice(&info.to_le_bytes());
        out.extend_from_slice(&align.to_le_bytes());
        out.extend_from_slice(&entsize.to_le_bytes());
    };
    shdr(0, 0, 0, 0, 0, 0, 0, 0, 0);
    shdr(
        strtab_name,
        SHT_STRTAB,
        0,
        strtab_off,
        strtab.bytes.len() as u64,
        0,
        0,
        1,
        0,
    );
    shdr(
        symtab_name,
        SHT_SYMTAB,
        0,
        symtab_off,
        symtab.len() as u64,
        1,
        first_global as u32,
        8,
        24,
    );
    for ((s, &off), &name) in sections.iter().zip(&offs).zip(&names) {
        let size = if s.sh_type == SHT_NOBITS {
            s.size
        } else {
            s.data.len() as u64
        };
        shdr(
            name, s.sh_type, s.flags, off, size, s.link, s.info, s.align, s.entsize,
        );
    }

    let shnum = (FIRST_SECTION + sections.len()) as u16;
    let mut h = Vec::with_capacity(64);
    h.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    h.extend_from_slice(&[0; 8]);
    h.extend_from_slice(&1u16.to_le_bytes()); // ET_REL
    h.extend_from_slice(&247u16.to_le_bytes()); // EM_BPF
    h.extend_from_slice(&1u32.to_le_bytes());
    h.extend_from_slice(&0u64.to_le_bytes()); // e_entry
    h.extend_from_slice(&0u64.to_le_bytes()); // e_phoff
    h.extend_from_slice(&shoff.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    h.extend_from_slice(&64u16.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(&64u16.to_le_bytes());
    h.extend_from_slice(&shnum.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes()); // e_shstrndx: .strtab
    out[..64].copy_from_slice(&h);
    out
}
