//! Reading one input object of a link: its sections, symbols, relocations,
//! BTF and BTF.ext, checked and copied out of the ELF (through the `object`
//! crate's bounds-checked ELF reader).

use object::elf;
use object::read::elf::{FileHeader, Rel as _, SectionHeader as _, Sym as _};
use object::LittleEndian as LE;

use skelgen_runtime::btf::ext::BtfExt;
use skelgen_runtime::btf::Btf;

use super::LinkError;

pub(crate) const SHT_PROGBITS: u32 = 1;
pub(crate) const SHT_SYMTAB: u32 = 2;
pub(crate) const SHT_RELA: u32 = 4;
pub(crate) const SHT_NOBITS: u32 = 8;
pub(crate) const SHT_REL: u32 = 9;
pub(crate) const SHF_EXECINSTR: u64 = 4;
pub(crate) const STT_SECTION: u8 = 3;
pub(crate) const STT_FILE: u8 = 4;
pub(crate) const STB_LOCAL: u8 = 0;
pub(crate) const STB_GLOBAL: u8 = 1;
pub(crate) const STB_WEAK: u8 = 2;
pub(crate) const SHN_UNDEF: u16 = 0;
pub(crate) const SHN_LORESERVE: u16 = 0xff00;
/// Alignments past this never occur in BPF objects; refusing them bounds the
/// padding a hostile header can make the linker allocate.
pub(crate) const MAX_ALIGN: u64 = 4096;

/// A section of an input.
#[derive(Debug)]
pub(crate) struct InSection {
    pub name: String,
    pub sh_type: u32,
    pub flags: u64,
    pub align: u64,
    pub size: u64,
    /// Empty for SHT_NOBITS.
    pub data: Vec<u8>,
}

/// A symbol of an input.
#[derive(Debug, Clone)]
pub(crate) struct InSymbol {
    pub name: String,
    pub value: u64,
    pub size: u64,
    pub bind: u8,
    pub typ: u8,
    pub other: u8,
    pub shndx: u16,
}

/// One relocation (REL: the addend is in the relocated bytes).
#[derive(Debug, Clone, Copy)]
pub(crate) struct InReloc {
    pub offset: u64,
    pub sym: u32,
    pub typ: u32,
}

/// A parsed input object.
#[derive(Debug)]
pub(crate) struct Input {
    pub file: String,
    pub sections: Vec<InSection>,
    pub symbols: Vec<InSymbol>,
    /// (relocated section index, relocations), per SHT_REL section.
    pub relocs: Vec<(usize, String, Vec<InReloc>)>,
    pub btf: Option<Btf>,
    pub ext: Option<BtfExt>,
}

/// Sections the linker does not carry over: DWARF (and its relocations),
/// the address-significance table, notes.
pub(crate) fn is_ignored(name: &str) -> bool {
    name.starts_with(".debug_")
        || name.starts_with(".rel.debug_")
        || name == ".llvm_addrsig"
        || name.starts_with(".note")
        || name.starts_with(".rel.BTF")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl Input {
    pub fn parse(file: &str, data: &[u8]) -> Result<Input, LinkError> {
        // The ELF reader views headers in place and needs them 8-aligned; a
        // slice from `include_bytes!` or a sub-slice may not be (found by
        // the `link` fuzz target: every input behind its mode byte was
        // refused). Parse an aligned copy then.
        if data.as_ptr() as usize % 8 != 0 {
            let mut buf = vec![0u8; data.len() + 7];
            let start = (8 - buf.as_ptr() as usize % 8) % 8;
            if let Some(aligned) = buf.get_mut(start..start + data.len()) {
                aligned.copy_from_slice(data);
                return Input::parse_aligned(file, aligned);
            }
        }
        Input::parse_aligned(file, data)
    }

    fn parse_aligned(file: &str, data: &[u8]) -> Result<Input, LinkError> {
        let elf_err = |what: &str, e: object::read::Error| LinkError::Elf {
            file: file.to_string(),
            reason: format!("{what}: {e}"),
        };
        let bad = |reason: String| LinkError::Elf {
            file: file.to_string(),
            reason,
        };
        let hdr =
            elf::FileHeader64::<LE>::parse(data).map_err(|e| elf_err("not an ELF64 file", e))?;
        if !hdr.is_little_endian() {
            return Err(bad("big-endian objects are not supported".into()));
        }
        let e = LE;
        if hdr.e_machine(e) != elf::EM_BPF {
            return Err(bad(format!(
                "machine {} is not EM_BPF ({})",
                hdr.e_machine(e),
                elf::EM_BPF
            )));
        }
        if hdr.e_type(e) != elf::ET_REL {
            return Err(bad("not a relocatable object (ET_REL)".into()));
        }
        let secs = hdr
            .sections(e, data)
            .map_err(|err| elf_err("section headers", err))?;
        let mut sections = Vec::with_capacity(secs.len());
        let mut symtab = None;
        for (i, sh) in secs.iter().enumerate() {
            let name = text(
                secs.section_name(e, sh)
                    .map_err(|err| elf_err(&format!("name of section {i}"), err))?,
            );
            let sh_type = sh.sh_type(e);
            let align = sh.sh_addralign(e).max(1);
            if align > MAX_ALIGN || !align.is_power_of_two() {
                return Err(LinkError::Section {
                    file: file.to_string(),
                    section: name,
                    reason: format!("alignment {align} is not a power of two up to {MAX_ALIGN}"),
                });
            }
            let bytes = if sh_type == SHT_NOBITS || sh_type == 0 {
                Vec::new()
            } else {
                sh.data(e, data)
                    .map_err(|err| elf_err(&format!("data of section '{name}'"), err))?
                    .to_vec()
            };
            if sh_type == SHT_SYMTAB {
                if symtab.is_some() {
                    return Err(bad("more than one symbol table".into()));
                }
                symtab = Some(i);
            }
            if sh_type == SHT_RELA && !is_ignored(&name) {
                return Err(LinkError::Section {
                    file: file.to_string(),
                    section: name,
                    reason: "RELA relocations are not used by BPF objects".into(),
                });
            }
            sections.push(InSection {
                name,
                sh_type,
                flags: sh.sh_flags(e),
                align,
                size: sh.sh_size(e),
                data: bytes,
            });
        }
        let mut symbols = Vec::new();
        if symtab.is_some() {
            let table = secs
                .symbols(e, data, SHT_SYMTAB)
                .map_err(|err| elf_err("symbol table", err))?;
            for (i, s) in table.iter().enumerate() {
                let name = text(
                    table
                        .symbol_name(e, s)
                        .map_err(|err| elf_err(&format!("name of symbol {i}"), err))?,
                );
                symbols.push(InSymbol {
                    name,
                    value: s.st_value(e),
                    size: s.st_size(e),
                    bind: s.st_bind(),
                    typ: s.st_type(),
                    other: s.st_other(),
                    shndx: s.st_shndx(e),
                });
            }
        }
        let mut relocs = Vec::new();
        for (i, sh) in secs.iter().enumerate() {
            let name = sections.get(i).map(|s| s.name.clone()).unwrap_or_default();
            if sh.sh_type(e) != SHT_REL || is_ignored(&name) {
                continue;
            }
            let target = sh.sh_info(e) as usize;
            let target_name = match sections.get(target) {
                Some(t) => t.name.clone(),
                None => {
                    return Err(LinkError::Section {
                        file: file.to_string(),
                        section: name,
                        reason: format!("relocates section {target}, which does not exist"),
                    })
                }
            };
            if is_ignored(&target_name) || target_name == ".BTF" || target_name == ".BTF.ext" {
                continue;
            }
            let rels: &[elf::Rel64<LE>] = sh
                .data_as_array(e, data)
                .map_err(|err| elf_err(&format!("relocations of '{name}'"), err))?;
            let list = rels
                .iter()
                .map(|r| InReloc {
                    offset: r.r_offset(e),
                    sym: r.r_sym(e),
                    typ: r.r_type(e),
                })
                .collect();
            relocs.push((target, name, list));
        }
        let find = |n: &str| {
            sections
                .iter()
                .find(|s| s.name == n && s.sh_type == SHT_PROGBITS)
        };
        let btf = match find(".BTF") {
            Some(s) => Some(Btf::parse(&s.data).map_err(|source| LinkError::Btf {
                file: file.to_string(),
                source,
            })?),
            None => None,
        };
        let ext = match (find(".BTF.ext"), &btf) {
            (Some(s), Some(_)) => {
                Some(BtfExt::parse(&s.data).map_err(|source| LinkError::Btf {
                    file: file.to_string(),
                    source,
                })?)
            }
            _ => None,
        };
        Ok(Input {
            file: file.to_string(),
            sections,
            symbols,
            relocs,
            btf,
            ext,
        })
    }
}
