//! The ELF layer: sections, symbols and relocation tables of a BPF object,
//! decoded once into plain owned-index form so the rest of the model never
//! touches raw ELF structures.

use object::elf;
use object::read::elf::{FileHeader, Rel as _, SectionHeader as _, Sym as _};
use object::Endianness;

use super::ObjError;

/// A decoded section header.
#[derive(Debug, Clone)]
pub(crate) struct Section<'a> {
    pub index: usize,
    pub name: &'a str,
    pub sh_type: u32,
    pub flags: u64,
    /// File bytes; empty for `SHT_NOBITS`.
    pub data: &'a [u8],
    /// `sh_size` (for `.bss` larger than `data`).
    pub size: u64,
}

impl Section<'_> {
    pub fn is_exec(&self) -> bool {
        self.sh_type == elf::SHT_PROGBITS && self.flags & u64::from(elf::SHF_EXECINSTR) != 0
    }
}

/// A decoded symbol.
#[derive(Debug, Clone)]
pub(crate) struct Symbol<'a> {
    pub name: &'a str,
    pub shndx: u16,
    pub value: u64,
    pub size: u64,
    pub bind: u8,
    pub kind: u8,
    pub visibility: u8,
}

impl Symbol<'_> {
    pub fn is_undefined(&self) -> bool {
        self.shndx == elf::SHN_UNDEF
    }

    pub fn is_global_or_weak(&self) -> bool {
        self.bind == elf::STB_GLOBAL || self.bind == elf::STB_WEAK
    }

    pub fn is_hidden(&self) -> bool {
        self.visibility == elf::STV_HIDDEN || self.visibility == elf::STV_INTERNAL
    }
}

/// One relocation entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RelEntry {
    pub offset: u64,
    pub sym: u32,
}

/// The decoded ELF file.
pub(crate) struct Elf<'a> {
    pub sections: Vec<Section<'a>>,
    pub symbols: Vec<Symbol<'a>>,
    /// Relocation tables: (index of the relocated section, entries).
    pub rels: Vec<(usize, Vec<RelEntry>)>,
}

/// The NUL-terminated string at `offset` of a string table's bytes.
///
/// Found with core's byte search rather than through object's
/// `StringTable`, which uses the memchr crate: where a binary enables
/// memchr's `std` feature, its first call probes the CPU with CPUID, a VM
/// exit on virtual machines (~150 µs per process measured on the benchmark
/// VM), and that first call would be here, in every tool's first open.
fn table_string(strings: &[u8], offset: u32) -> Option<&[u8]> {
    let tail = strings.get(offset as usize..)?;
    std::ffi::CStr::from_bytes_until_nul(tail)
        .ok()
        .map(std::ffi::CStr::to_bytes)
}

fn utf8(bytes: &[u8], what: impl FnOnce() -> String) -> Result<&str, ObjError> {
    std::str::from_utf8(bytes).map_err(|_| ObjError::Elf {
        reason: format!("{} is not valid UTF-8", what()),
    })
}

impl<'a> Elf<'a> {
    pub fn parse(data: &'a [u8]) -> Result<Self, ObjError> {
        if data.len() < 4 || &data[..4] != b"\x7fELF" {
            return Err(ObjError::NotElf);
        }
        if data.len() > 4 && data[4] != elf::ELFCLASS64 {
            return Err(ObjError::Elf {
                reason: "32-bit ELF: BPF objects are ELF64".into(),
            });
        }
        if data.len() > 5 && data[5] == elf::ELFDATA2MSB {
            return Err(ObjError::BigEndian);
        }
        let header = elf::FileHeader64::<Endianness>::parse(data).map_err(|e| ObjError::Elf {
            reason: format!("bad ELF header: {e}"),
        })?;
        let endian = header.endian().map_err(|e| ObjError::Elf {
            reason: format!("bad ELF header: {e}"),
        })?;
        let machine = header.e_machine(endian);
        if machine != elf::EM_BPF {
            return Err(ObjError::WrongMachine { machine });
        }
        let e_type = header.e_type(endian);
        if e_type != elf::ET_REL {
            return Err(ObjError::NotRelocatable { e_type });
        }
        let table = header.sections(endian, data).map_err(|e| ObjError::Elf {
            reason: format!("bad section header table: {e}"),
        })?;

        // `sections` checked that e_shstrndx names a section.
        let shstrtab = header
            .shstrndx(endian, data)
            .and_then(|i| table.section(object::SectionIndex(i as usize)))
            .and_then(|sh| sh.data(endian, data))
            .map_err(|e| ObjError::Elf {
                reason: format!("bad section name table: {e}"),
            })?;
        let mut sections = Vec::with_capacity(table.len());
        let mut rels = Vec::new();
        for (idx, sh) in table.enumerate() {
            let index = idx.0;
            let name_off = sh.sh_name(endian);
            let name_bytes = table_string(shstrtab, name_off).ok_or_else(|| ObjError::Elf {
                reason: format!(
                    "section {index}: bad name: offset {name_off} is outside the section name \
                     table ({} bytes) or not NUL-terminated",
                    shstrtab.len()
                ),
            })?;
            let name = utf8(name_bytes, || format!("section {index} name"))?;
            let sh_type = sh.sh_type(endian);
            let size = sh.sh_size(endian);
            let sec_data = if sh_type == elf::SHT_NOBITS {
                &[][..]
            } else {
                sh.data(endian, data).map_err(|_| ObjError::Section {
                    index,
                    name: name.to_string(),
                    reason: format!(
                        "data at file offset {} size {} is outside the file ({} bytes)",
                        sh.sh_offset(endian),
                        size,
                        data.len()
                    ),
                })?
            };
            if sh_type == elf::SHT_REL {
                let (entries, _link) = sh
                    .rel(endian, data)
                    .map_err(|e| ObjError::Section {
                        index,
                        name: name.to_string(),
                        reason: format!("bad relocation table: {e}"),
                    })?
                    .unwrap_or((&[], object::SectionIndex(0)));
                let target = sh.sh_info(endian) as usize;
                let decoded: Vec<RelEntry> = entries
                    .iter()
                    .map(|r| RelEntry {
                        offset: r.r_offset(endian),
                        sym: r.r_sym(endian),
                    })
                    .collect();
                rels.push((target, decoded));
            }
            sections.push(Section {
                index,
                name,
                sh_type,
                flags: sh.sh_flags(endian),
                data: sec_data,
                size,
            });
        }

        let symtab = table
            .symbols(endian, data, elf::SHT_SYMTAB)
            .map_err(|e| ObjError::Elf {
                reason: format!("bad symbol table: {e}"),
            })?;
        if symtab.is_empty() {
            return Err(ObjError::Elf {
                reason: "no symbol table (.symtab): was the object stripped?".into(),
            });
        }
        // `symbols` checked that the symbol table links a string table.
        let strtab = table
            .section(symtab.string_section())
            .and_then(|sh| sh.data(endian, data))
            .map_err(|e| ObjError::Elf {
                reason: format!("bad symbol string table: {e}"),
            })?;
        let mut symbols = Vec::with_capacity(symtab.len());
        for (i, sym) in symtab.iter().enumerate() {
            let name_off = sym.st_name(endian);
            let name_bytes = table_string(strtab, name_off).ok_or_else(|| ObjError::Elf {
                reason: format!(
                    "symbol {i}: bad name: offset {name_off} is outside the string table \
                     ({} bytes) or not NUL-terminated",
                    strtab.len()
                ),
            })?;
            let name = utf8(name_bytes, || format!("symbol {i} name"))?;
            symbols.push(Symbol {
                name,
                shndx: sym.st_shndx(endian),
                value: sym.st_value(endian),
                size: sym.st_size(endian),
                bind: sym.st_bind(),
                kind: sym.st_type(),
                visibility: sym.st_visibility(),
            });
        }
        for (target, entries) in &rels {
            for (i, r) in entries.iter().enumerate() {
                if r.sym as usize >= symbols.len() {
                    return Err(ObjError::Reloc {
                        section: sections
                            .get(*target)
                            .map_or_else(|| format!("#{target}"), |s| s.name.to_string()),
                        offset: r.offset,
                        reason: format!(
                            "relocation {i} names symbol {} but the symbol table has {}",
                            r.sym,
                            symbols.len()
                        ),
                    });
                }
            }
        }
        Ok(Elf {
            sections,
            symbols,
            rels,
        })
    }

    pub fn section(&self, index: usize) -> Option<&Section<'a>> {
        self.sections.get(index)
    }

    pub fn section_by_name(&self, name: &str) -> Option<&Section<'a>> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// The relocations applying to section `index`.
    pub fn rels_for(&self, index: usize) -> &[RelEntry] {
        self.rels
            .iter()
            .find(|(t, _)| *t == index)
            .map_or(&[], |(_, r)| r.as_slice())
    }
}
