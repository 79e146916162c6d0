//! Removing DWARF from a BPF object before it is embedded in a skeleton.
//!
//! clang's `-g` is what produces `.BTF` and `.BTF.ext`, which the loader
//! needs, but it also produces DWARF, typically half of the object, which
//! nothing reads at run time. [`strip_debug`] rewrites a relocatable ELF64
//! object without it.
//!
//! What goes and what stays:
//!
//! - removed: every `.debug_*` section (and the compressed `.zdebug_*`
//!   spelling), every `SHT_REL`/`SHT_RELA` section that relocates a removed
//!   section (`.rel.debug_*`), and `.llvm_addrsig` (`SHT_LLVM_ADDRSIG`). The
//!   address-significance table only guides the linker's identical-code
//!   folding, and it lists symbols by *index*, which this rewrite renumbers,
//!   so keeping it would make it wrong.
//! - kept, byte for byte: everything else, in particular `.BTF`, `.BTF.ext`
//!   and their `.rel.BTF*` sections, program and data sections, `.maps`,
//!   `license`.
//! - rewritten: the section header table (indices renumbered, `sh_link` and
//!   `sh_info` fixed), the symbol table (symbols defined in removed sections
//!   — in clang output only the `STT_SECTION` symbols of `.debug_*` — are
//!   dropped rather than turned into `SHN_UNDEF` symbols, which a loader
//!   would mistake for externs), the relocations of kept sections (their
//!   symbol indices follow the renumbered table) and the string tables named
//!   by `e_shstrndx` and by the symbol table (rebuilt with only the names
//!   still used).
//!
//! Every section's data is placed at an offset aligned to its
//! `sh_addralign` and to at least 8 bytes, so readers that view
//! instructions or BTF in place keep aligned data.
//!
//! The input is untrusted: every offset and size is checked and every
//! problem is an error naming the section, symbol or relocation at fault.

use std::collections::HashMap;

/// An error rewriting an object. Each variant says where.
#[derive(Debug, thiserror::Error)]
pub enum StripError {
    /// The bytes do not start with the ELF magic.
    #[error("not an ELF file (no \\x7fELF magic)")]
    NotElf,
    /// A valid ELF feature that a clang-built BPF object never uses.
    #[error("unsupported ELF feature: {what}")]
    Unsupported {
        /// What was found.
        what: String,
    },
    /// A table or section's data lies outside the file.
    #[error("{what}: bytes {offset}..{offset}+{size} lie outside the {file_len}-byte file")]
    OutOfBounds {
        /// What was being read.
        what: String,
        /// Start offset.
        offset: u64,
        /// Length.
        size: u64,
        /// The file's length.
        file_len: usize,
    },
    /// A malformed ELF header.
    #[error("ELF header: {reason}")]
    Header {
        /// What is wrong.
        reason: String,
    },
    /// A malformed section header.
    #[error("section {index}: {reason}")]
    Section {
        /// Section index in the input.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// A malformed symbol.
    #[error("symbol {index} of symbol table section {section}: {reason}")]
    Symbol {
        /// Symbol table section index in the input.
        section: usize,
        /// Symbol index.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// A malformed relocation.
    #[error("relocation {index} of section {section} ('{name}'): {reason}")]
    Reloc {
        /// Relocation section index in the input.
        section: usize,
        /// Its name.
        name: String,
        /// Relocation index within the section.
        index: usize,
        /// What is wrong.
        reason: String,
    },
}

const EHDR_SIZE: usize = 64;
const SHDR_SIZE: usize = 64;
const SYM_SIZE: usize = 24;
const REL_SIZE: usize = 16;
const RELA_SIZE: usize = 24;

const SHT_NULL: u32 = 0;
const SHT_SYMTAB: u32 = 2;
const SHT_STRTAB: u32 = 3;
const SHT_RELA: u32 = 4;
const SHT_NOBITS: u32 = 8;
const SHT_REL: u32 = 9;
const SHT_GROUP: u32 = 17;
const SHT_SYMTAB_SHNDX: u32 = 18;
const SHT_DYNSYM: u32 = 11;
const SHT_LLVM_ADDRSIG: u32 = 0x6fff_4c03;
const SHF_INFO_LINK: u64 = 0x40;
const SHN_LORESERVE: u16 = 0xff00;
const SHN_XINDEX: u16 = 0xffff;
/// Larger alignments never occur in BPF objects; refusing them bounds the
/// padding a hostile header can make us allocate.
const MAX_ALIGN: u64 = 4096;

/// Returns `bytes` without DWARF: see the [module documentation](self) for
/// exactly what is removed and rewritten.
///
/// An object without debug sections comes back equivalent (string tables
/// compacted, `.llvm_addrsig` dropped).
pub fn strip_debug(bytes: &[u8]) -> Result<Vec<u8>, StripError> {
    let elf = Elf::parse(bytes)?;
    let plan = Plan::new(&elf)?;
    plan.write(&elf)
}

/// Little- or big-endian field access over the input.
#[derive(Clone, Copy)]
struct Endian {
    little: bool,
}

impl Endian {
    fn u16(self, b: [u8; 2]) -> u16 {
        if self.little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        }
    }
    fn u32(self, b: [u8; 4]) -> u32 {
        if self.little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    }
    fn u64(self, b: [u8; 8]) -> u64 {
        if self.little {
            u64::from_le_bytes(b)
        } else {
            u64::from_be_bytes(b)
        }
    }
    fn put_u16(self, out: &mut [u8], at: usize, v: u16) {
        let b = if self.little {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        };
        put(out, at, &b);
    }
    fn put_u32(self, out: &mut [u8], at: usize, v: u32) {
        let b = if self.little {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        };
        put(out, at, &b);
    }
    fn put_u64(self, out: &mut [u8], at: usize, v: u64) {
        let b = if self.little {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        };
        put(out, at, &b);
    }
}

/// Writes into a buffer this module sized itself; a short buffer would be a
/// bug here, not bad input, and is ignored rather than panicking.
fn put(out: &mut [u8], at: usize, b: &[u8]) {
    if let Some(dst) = out.get_mut(at..at + b.len()) {
        dst.copy_from_slice(b);
    }
}

/// Fixed-size reads from a record already known to be in bounds.
fn field<const N: usize>(rec: &[u8], at: usize) -> [u8; N] {
    let mut b = [0u8; N];
    if let Some(src) = rec.get(at..at + N) {
        b.copy_from_slice(src);
    }
    b
}

#[derive(Clone, Debug)]
struct SectionHeader {
    name: u32,
    sh_type: u32,
    flags: u64,
    addr: u64,
    offset: u64,
    size: u64,
    link: u32,
    info: u32,
    addralign: u64,
    entsize: u64,
}

struct Elf<'a> {
    bytes: &'a [u8],
    endian: Endian,
    shstrndx: usize,
    sections: Vec<SectionHeader>,
}

fn slice<'a>(bytes: &'a [u8], offset: u64, size: u64, what: &str) -> Result<&'a [u8], StripError> {
    let oob = || StripError::OutOfBounds {
        what: what.to_string(),
        offset,
        size,
        file_len: bytes.len(),
    };
    let start = usize::try_from(offset).map_err(|_| oob())?;
    let len = usize::try_from(size).map_err(|_| oob())?;
    let end = start.checked_add(len).ok_or_else(oob)?;
    bytes.get(start..end).ok_or_else(oob)
}

impl<'a> Elf<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Self, StripError> {
        if bytes.get(..4) != Some(b"\x7fELF".as_slice()) {
            return Err(StripError::NotElf);
        }
        let ehdr = slice(bytes, 0, EHDR_SIZE as u64, "ELF header")?;
        match ehdr.get(4) {
            Some(2) => {}
            class => {
                return Err(StripError::Unsupported {
                    what: format!("ELF class {class:?}: only ELF64 BPF objects exist"),
                })
            }
        }
        let endian = match ehdr.get(5) {
            Some(1) => Endian { little: true },
            Some(2) => Endian { little: false },
            data => {
                return Err(StripError::Header {
                    reason: format!("EI_DATA is {data:?}, expected 1 (LSB) or 2 (MSB)"),
                })
            }
        };
        let e_phnum = endian.u16(field(ehdr, 56));
        if e_phnum != 0 {
            return Err(StripError::Unsupported {
                what: format!("{e_phnum} program headers: only relocatable objects are stripped"),
            });
        }
        let shoff = endian.u64(field(ehdr, 40));
        let shentsize = endian.u16(field(ehdr, 58));
        let shnum = endian.u16(field(ehdr, 60));
        let shstrndx = endian.u16(field(ehdr, 62));
        if shnum == 0 && shoff != 0 {
            return Err(StripError::Unsupported {
                what: "extended section numbering (e_shnum = 0)".into(),
            });
        }
        if shstrndx == SHN_XINDEX {
            return Err(StripError::Unsupported {
                what: "extended section numbering (e_shstrndx = SHN_XINDEX)".into(),
            });
        }
        if usize::from(shentsize) != SHDR_SIZE && shnum != 0 {
            return Err(StripError::Header {
                reason: format!("e_shentsize is {shentsize}, expected {SHDR_SIZE}"),
            });
        }
        let table = slice(
            bytes,
            shoff,
            u64::from(shnum) * SHDR_SIZE as u64,
            "section header table",
        )?;
        let sections = table
            .chunks_exact(SHDR_SIZE)
            .map(|h| SectionHeader {
                name: endian.u32(field(h, 0)),
                sh_type: endian.u32(field(h, 4)),
                flags: endian.u64(field(h, 8)),
                addr: endian.u64(field(h, 16)),
                offset: endian.u64(field(h, 24)),
                size: endian.u64(field(h, 32)),
                link: endian.u32(field(h, 40)),
                info: endian.u32(field(h, 44)),
                addralign: endian.u64(field(h, 48)),
                entsize: endian.u64(field(h, 56)),
            })
            .collect::<Vec<_>>();
        let shstrndx = usize::from(shstrndx);
        if shstrndx >= sections.len() && !sections.is_empty() {
            return Err(StripError::Header {
                reason: format!(
                    "e_shstrndx {shstrndx} is not one of the {} sections",
                    sections.len()
                ),
            });
        }
        Ok(Elf {
            bytes,
            endian,
            shstrndx,
            sections,
        })
    }

    fn header(&self, index: usize) -> Result<&SectionHeader, StripError> {
        self.sections.get(index).ok_or_else(|| StripError::Section {
            index,
            reason: format!("no such section (the file has {})", self.sections.len()),
        })
    }

    /// The file bytes of a section; empty for `SHT_NOBITS`.
    fn data(&self, index: usize) -> Result<&'a [u8], StripError> {
        let h = self.header(index)?;
        if h.sh_type == SHT_NOBITS || h.sh_type == SHT_NULL {
            return Ok(&[]);
        }
        slice(
            self.bytes,
            h.offset,
            h.size,
            &format!("data of section {index}"),
        )
    }

    /// The NUL-terminated string at `offset` in string table `strtab`.
    fn string(&self, strtab: usize, offset: u32) -> Result<&'a [u8], StripError> {
        let data = self.data(strtab)?;
        let rest = data
            .get(offset as usize..)
            .ok_or_else(|| StripError::Section {
                index: strtab,
                reason: format!(
                    "string offset {offset} is past the end of the {}-byte string table",
                    data.len()
                ),
            })?;
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| StripError::Section {
                index: strtab,
                reason: format!("string at offset {offset} is not NUL-terminated"),
            })?;
        Ok(rest.get(..end).unwrap_or_default())
    }

    fn section_name(&self, index: usize) -> Result<&'a [u8], StripError> {
        let h = self.header(index)?;
        self.string(self.shstrndx, h.name)
    }
}

/// What to keep and how indices map from the input to the output.
struct Plan {
    /// `new_index[old]` for kept sections.
    new_index: Vec<Option<u32>>,
    /// Per kept symbol table (by input section index): old -> new symbol index.
    sym_maps: HashMap<usize, Vec<Option<u32>>>,
    /// Rebuilt string tables (by input section index): the new bytes and
    /// old offset -> new offset.
    strtabs: HashMap<usize, StrTab>,
}

struct StrTab {
    bytes: Vec<u8>,
    by_name: HashMap<Vec<u8>, u32>,
}

impl Default for StrTab {
    fn default() -> Self {
        Self::new()
    }
}

impl StrTab {
    /// An ELF string table starts with the empty string.
    fn new() -> Self {
        StrTab {
            bytes: vec![0],
            by_name: HashMap::from([(Vec::new(), 0)]),
        }
    }
    fn add(&mut self, name: &[u8]) -> u32 {
        if let Some(&off) = self.by_name.get(name) {
            return off;
        }
        let off = u32::try_from(self.bytes.len()).unwrap_or(u32::MAX);
        self.bytes.extend_from_slice(name);
        self.bytes.push(0);
        self.by_name.insert(name.to_vec(), off);
        off
    }
}

fn is_debug_name(name: &[u8]) -> bool {
    name.starts_with(b".debug") || name.starts_with(b".zdebug")
}

fn is_reloc(sh_type: u32) -> bool {
    sh_type == SHT_REL || sh_type == SHT_RELA
}

impl Plan {
    fn new(elf: &Elf<'_>) -> Result<Plan, StripError> {
        let n = elf.sections.len();
        let mut removed = vec![false; n];
        for (i, h) in elf.sections.iter().enumerate().skip(1) {
            match h.sh_type {
                SHT_GROUP => {
                    return Err(StripError::Unsupported {
                        what: format!("section group (SHT_GROUP) in section {i}"),
                    })
                }
                SHT_SYMTAB_SHNDX => {
                    return Err(StripError::Unsupported {
                        what: format!(
                            "extended symbol section indices (SHT_SYMTAB_SHNDX) in section {i}"
                        ),
                    })
                }
                SHT_DYNSYM => {
                    return Err(StripError::Unsupported {
                        what: format!("dynamic symbol table in section {i}"),
                    })
                }
                _ => {}
            }
            let name = elf.section_name(i)?;
            // `.rel.BTF` / `.rel.BTF.ext` only matter to a linker: the
            // loader (like libbpf) reads section names and offsets from
            // the BTF itself and never applies them.
            let btf_relocs =
                is_reloc(h.sh_type) && (name == b".rel.BTF" || name == b".rel.BTF.ext");
            removed[i] = is_debug_name(name) || h.sh_type == SHT_LLVM_ADDRSIG || btf_relocs;
        }
        // Relocations of removed sections go with them; a relocation
        // section never relocates another one, so one pass suffices.
        for (i, h) in elf.sections.iter().enumerate().skip(1) {
            if is_reloc(h.sh_type) && !removed[i] {
                let target = h.info as usize;
                if target >= n {
                    return Err(StripError::Section {
                        index: i,
                        reason: format!("relocates section {target}, which does not exist"),
                    });
                }
                if removed[target] {
                    removed[i] = true;
                }
            }
        }
        if removed.get(elf.shstrndx).copied().unwrap_or(false) {
            return Err(StripError::Header {
                reason: "the section name table is a debug section".into(),
            });
        }

        let mut new_index = vec![None; n];
        let mut next = 0u32;
        for (i, gone) in removed.iter().enumerate() {
            if !gone {
                new_index[i] = Some(next);
                next += 1;
            }
        }

        let mut strtabs: HashMap<usize, StrTab> = HashMap::new();
        if n > 0 {
            let mut shstr = StrTab::new();
            for i in (0..n).filter(|&i| new_index[i].is_some()) {
                shstr.add(elf.section_name(i)?);
            }
            strtabs.insert(elf.shstrndx, shstr);
        }

        let mut sym_maps = HashMap::new();
        for (i, h) in elf.sections.iter().enumerate() {
            if h.sh_type != SHT_SYMTAB || new_index[i].is_none() {
                continue;
            }
            if h.entsize != SYM_SIZE as u64 {
                return Err(StripError::Section {
                    index: i,
                    reason: format!(
                        "symbol table sh_entsize is {}, expected {SYM_SIZE}",
                        h.entsize
                    ),
                });
            }
            let strtab = h.link as usize;
            match elf.sections.get(strtab) {
                Some(s) if s.sh_type == SHT_STRTAB && new_index[strtab].is_some() => {}
                _ => {
                    return Err(StripError::Section {
                        index: i,
                        reason: format!("sh_link {strtab} is not a kept string table"),
                    })
                }
            }
            let data = elf.data(i)?;
            let mut map = Vec::with_capacity(data.len() / SYM_SIZE);
            let mut next_sym = 0u32;
            let names = strtabs.entry(strtab).or_default();
            for (k, sym) in data.chunks_exact(SYM_SIZE).enumerate() {
                let shndx = elf.endian.u16(field(sym, 6));
                let keep = if k == 0 {
                    true
                } else if shndx == SHN_XINDEX {
                    return Err(StripError::Symbol {
                        section: i,
                        index: k,
                        reason: "st_shndx is SHN_XINDEX (extended indices are unsupported)".into(),
                    });
                } else if shndx == 0 || shndx >= SHN_LORESERVE {
                    true
                } else {
                    let s = usize::from(shndx);
                    if s >= n {
                        return Err(StripError::Symbol {
                            section: i,
                            index: k,
                            reason: format!("st_shndx {s} is not one of the {n} sections"),
                        });
                    }
                    new_index[s].is_some()
                };
                if keep {
                    names.add(elf.string(strtab, elf.endian.u32(field(sym, 0)))?);
                    map.push(Some(next_sym));
                    next_sym += 1;
                } else {
                    map.push(None);
                }
            }
            sym_maps.insert(i, map);
        }

        Ok(Plan {
            new_index,
            sym_maps,
            strtabs,
        })
    }

    fn remap_section(&self, index: u32, owner: usize, what: &str) -> Result<u32, StripError> {
        match self.new_index.get(index as usize) {
            Some(Some(new)) => Ok(*new),
            Some(None) => Err(StripError::Section {
                index: owner,
                reason: format!("{what} {index} refers to a removed debug section"),
            }),
            None => Err(StripError::Section {
                index: owner,
                reason: format!("{what} {index} is not a section index"),
            }),
        }
    }

    /// The output bytes of kept section `i`.
    fn section_bytes(&self, elf: &Elf<'_>, i: usize) -> Result<Vec<u8>, StripError> {
        let h = elf.header(i)?;
        if let Some(tab) = self.strtabs.get(&i) {
            return Ok(tab.bytes.clone());
        }
        let data = elf.data(i)?;
        if h.sh_type == SHT_SYMTAB {
            return self.symtab_bytes(elf, i, data);
        }
        if is_reloc(h.sh_type) {
            return self.reloc_bytes(elf, i, h, data);
        }
        Ok(data.to_vec())
    }

    fn symtab_bytes(&self, elf: &Elf<'_>, i: usize, data: &[u8]) -> Result<Vec<u8>, StripError> {
        let e = elf.endian;
        let map = self.sym_maps.get(&i).map(Vec::as_slice).unwrap_or_default();
        let strtab = elf.header(i)?.link as usize;
        let names = self.strtabs.get(&strtab);
        let mut out = Vec::with_capacity(data.len());
        for (k, sym) in data.chunks_exact(SYM_SIZE).enumerate() {
            if map.get(k).copied().flatten().is_none() {
                continue;
            }
            let mut rec = sym.to_vec();
            let name = elf.string(strtab, e.u32(field(sym, 0)))?;
            let name_off = names
                .and_then(|t| t.by_name.get(name).copied())
                .unwrap_or(0);
            e.put_u32(&mut rec, 0, name_off);
            let shndx = e.u16(field(sym, 6));
            if shndx != 0 && shndx < SHN_LORESERVE {
                let new = self.remap_section(u32::from(shndx), i, "symbol st_shndx")?;
                let new = u16::try_from(new).map_err(|_| StripError::Symbol {
                    section: i,
                    index: k,
                    reason: "section index overflows st_shndx".into(),
                })?;
                e.put_u16(&mut rec, 6, new);
            }
            out.extend_from_slice(&rec);
        }
        Ok(out)
    }

    fn reloc_bytes(
        &self,
        elf: &Elf<'_>,
        i: usize,
        h: &SectionHeader,
        data: &[u8],
    ) -> Result<Vec<u8>, StripError> {
        let e = elf.endian;
        let size = if h.sh_type == SHT_REL {
            REL_SIZE
        } else {
            RELA_SIZE
        };
        let name = String::from_utf8_lossy(elf.section_name(i)?).into_owned();
        let bad = |index: usize, reason: String| StripError::Reloc {
            section: i,
            name: name.clone(),
            index,
            reason,
        };
        if h.entsize != size as u64 {
            return Err(StripError::Section {
                index: i,
                reason: format!("relocation sh_entsize is {}, expected {size}", h.entsize),
            });
        }
        let symtab = h.link as usize;
        let map = self
            .sym_maps
            .get(&symtab)
            .ok_or_else(|| StripError::Section {
                index: i,
                reason: format!("sh_link {symtab} is not a kept symbol table"),
            })?;
        let mut out = data.to_vec();
        for (k, rec) in out.chunks_exact_mut(size).enumerate() {
            let r_info = e.u64(field(rec, 8));
            let sym = (r_info >> 32) as usize;
            let new = match map.get(sym) {
                Some(Some(new)) => *new,
                Some(None) => {
                    return Err(bad(
                        k,
                        format!(
                            "refers to symbol {sym}, which is defined in a removed debug section"
                        ),
                    ))
                }
                None => {
                    return Err(bad(
                        k,
                        format!(
                            "symbol index {sym} is past the {}-entry symbol table",
                            map.len()
                        ),
                    ))
                }
            };
            e.put_u64(rec, 8, (u64::from(new) << 32) | (r_info & 0xffff_ffff));
        }
        Ok(out)
    }

    fn write(&self, elf: &Elf<'_>) -> Result<Vec<u8>, StripError> {
        let e = elf.endian;
        let mut out = elf.bytes.get(..EHDR_SIZE).unwrap_or_default().to_vec();
        let mut headers: Vec<SectionHeader> = Vec::new();
        for (i, h) in elf.sections.iter().enumerate() {
            if self.new_index.get(i).copied().flatten().is_none() {
                continue;
            }
            let mut nh = h.clone();
            if i == 0 {
                headers.push(nh);
                continue;
            }
            if h.addralign > MAX_ALIGN || (h.addralign > 1 && !h.addralign.is_power_of_two()) {
                return Err(StripError::Section {
                    index: i,
                    reason: format!(
                        "sh_addralign {} is not a power of two up to {MAX_ALIGN}",
                        h.addralign
                    ),
                });
            }
            let data = self.section_bytes(elf, i)?;
            let align = h.addralign.max(8) as usize;
            out.resize(out.len().next_multiple_of(align), 0);
            nh.offset = out.len() as u64;
            if h.sh_type != SHT_NOBITS {
                nh.size = data.len() as u64;
                out.extend_from_slice(&data);
            }
            let name = elf.section_name(i)?;
            nh.name = self
                .strtabs
                .get(&elf.shstrndx)
                .and_then(|t| t.by_name.get(name).copied())
                .unwrap_or(0);
            if h.link != 0 {
                nh.link = self.remap_section(h.link, i, "sh_link")?;
            }
            if h.sh_type == SHT_SYMTAB {
                // sh_info is one past the last local symbol; locals come
                // first, so it is the count of kept symbols before it.
                let map = self.sym_maps.get(&i).map(Vec::as_slice).unwrap_or_default();
                let locals = map
                    .iter()
                    .take(h.info as usize)
                    .filter(|m| m.is_some())
                    .count();
                nh.info = u32::try_from(locals).unwrap_or(u32::MAX);
            } else if is_reloc(h.sh_type) || h.flags & SHF_INFO_LINK != 0 {
                nh.info = self.remap_section(h.info, i, "sh_info")?;
            }
            headers.push(nh);
        }

        out.resize(out.len().next_multiple_of(8), 0);
        let shoff = out.len() as u64;
        for h in &headers {
            let mut rec = [0u8; SHDR_SIZE];
            e.put_u32(&mut rec, 0, h.name);
            e.put_u32(&mut rec, 4, h.sh_type);
            e.put_u64(&mut rec, 8, h.flags);
            e.put_u64(&mut rec, 16, h.addr);
            e.put_u64(&mut rec, 24, h.offset);
            e.put_u64(&mut rec, 32, h.size);
            e.put_u32(&mut rec, 40, h.link);
            e.put_u32(&mut rec, 44, h.info);
            e.put_u64(&mut rec, 48, h.addralign);
            e.put_u64(&mut rec, 56, h.entsize);
            out.extend_from_slice(&rec);
        }

        let shnum = u16::try_from(headers.len()).map_err(|_| StripError::Unsupported {
            what: "more than 65535 sections".into(),
        })?;
        let shstrndx = if elf.sections.is_empty() {
            0
        } else {
            self.remap_section(elf.shstrndx as u32, elf.shstrndx, "e_shstrndx")?
        };
        e.put_u64(&mut out, 40, shoff);
        e.put_u16(&mut out, 60, shnum);
        e.put_u16(&mut out, 62, u16::try_from(shstrndx).unwrap_or(0));
        Ok(out)
    }
}
