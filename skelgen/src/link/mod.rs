//! Static linking of BPF objects: several `.bpf.o` into one, as
//! `bpftool gen object` (libbpf's `bpf_linker`) does.
//!
//! Per input, in order:
//!
//! 1. sections: code and data sections of one name are concatenated, each
//!    input's part aligned to its `sh_addralign` (`license`/`version` must be
//!    identical and are kept once); DWARF, `.llvm_addrsig` and notes are
//!    dropped; `.BTF`/`.BTF.ext` are rebuilt;
//! 2. symbols: locals are copied (values shifted by their section's offset),
//!    one section symbol per output section; globals are resolved by name:
//!    a definition beats an extern, a strong definition beats a weak one,
//!    two strong definitions are an error naming both files and sections,
//!    and the two BTF types must match (an extern `__u32` against a `__u64`
//!    definition is an error naming both types);
//! 3. relocations: offsets shifted, symbols renumbered; relocations against a
//!    section symbol carry the target's offset in the instruction (a call's
//!    immediate counts instructions, a 64-bit load's counts bytes), which is
//!    shifted by where that section's part now starts;
//! 4. BTF: types appended with ids renumbered; a global VAR/FUNC appears once
//!    (an extern resolved later takes the definition's type and linkage, and
//!    an extern prototype gets the definition's parameter names); DATASECs
//!    are rebuilt per output section with offsets from the final symbols;
//!    then deduplicated (as [`dedup_btf`] does);
//! 5. BTF.ext: func_info, line_info and core_relo records follow their
//!    section, instruction offsets shifted and type ids renumbered.
//!
//! Every input is untrusted: problems are [`LinkError`]s naming the file,
//! section and symbol, never panics.

mod btf;
mod compat;
mod dedup;
mod ext;
mod input;
mod types;
mod write;

use std::collections::HashMap;

use skelgen_runtime::btf::BtfError;

use input::{
    InSymbol, Input, SHF_EXECINSTR, SHN_LORESERVE, SHN_UNDEF, SHT_NOBITS, SHT_PROGBITS, SHT_REL,
    STB_GLOBAL, STB_LOCAL, STB_WEAK, STT_FILE, STT_SECTION,
};
use write::{OutSection, OutSymbol, FIRST_SECTION};

/// An error linking objects. Each variant names the file and what in it.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Nothing to link.
    #[error("no input objects")]
    NoInputs,
    /// The file is not a BPF relocatable ELF object.
    #[error("{file}: {reason}")]
    Elf {
        /// The input file.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// A section cannot be linked.
    #[error("{file}: section '{section}': {reason}")]
    Section {
        /// The input file.
        file: String,
        /// The section.
        section: String,
        /// What is wrong.
        reason: String,
    },
    /// A symbol cannot be linked.
    #[error("{file}: symbol '{symbol}': {reason}")]
    Symbol {
        /// The input file.
        file: String,
        /// The symbol.
        symbol: String,
        /// What is wrong.
        reason: String,
    },
    /// A relocation cannot be carried over.
    #[error("{file}: relocation {index} of section '{section}': {reason}")]
    Reloc {
        /// The input file.
        file: String,
        /// The relocated section.
        section: String,
        /// Index in its relocation table.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// Two strong definitions of one global symbol.
    #[error(transparent)]
    DuplicateSymbol(Box<DuplicateSymbol>),
    /// The two sides of a global symbol have different types.
    #[error(transparent)]
    TypeMismatch(Box<TypeMismatch>),
    /// An input's BTF or BTF.ext is invalid.
    #[error("{file}: invalid BTF")]
    Btf {
        /// The input file.
        file: String,
        /// The reader's error.
        #[source]
        source: BtfError,
    },
    /// The linked BTF could not be written (limits of the format).
    #[error("writing the linked BTF")]
    WriteBtf(#[source] BtfError),
}

/// Two strong definitions of one global symbol.
#[derive(Debug, thiserror::Error)]
#[error(
    "symbol '{symbol}' is defined in both {first_file} (section '{first_section}') and \
     {second_file} (section '{second_section}'); make one of them __weak or extern"
)]
pub struct DuplicateSymbol {
    /// The symbol.
    pub symbol: String,
    /// The file defining it first.
    pub first_file: String,
    /// Its section there.
    pub first_section: String,
    /// The file defining it again.
    pub second_file: String,
    /// Its section there.
    pub second_section: String,
}

/// The two sides of a global symbol have different types.
#[derive(Debug, thiserror::Error)]
#[error(
    "symbol '{symbol}' has incompatible types: {first_type} in {first_file} \
     (section '{first_section}'), {second_type} in {second_file} (section '{second_section}')"
)]
pub struct TypeMismatch {
    /// The symbol.
    pub symbol: String,
    /// The file seen first.
    pub first_file: String,
    /// Its section there (`UND` for an extern).
    pub first_section: String,
    /// The type there.
    pub first_type: String,
    /// The other file.
    pub second_file: String,
    /// Its section there.
    pub second_section: String,
    /// The type there.
    pub second_type: String,
}

/// Deduplicates a raw `.BTF` blob (what [`link`] does to the merged BTF):
/// equivalent types merged, the first of each kept, ids renumbered in
/// order. DATASEC and VAR types are kept as they are.
pub fn dedup_btf(bytes: &[u8]) -> Result<Vec<u8>, LinkError> {
    let btf_err = |source| LinkError::Btf {
        file: "<btf>".into(),
        source,
    };
    let btf = skelgen_runtime::btf::Btf::parse(bytes).map_err(btf_err)?;
    let mut list = types::TypeList::default();
    for id in 1..btf.len() {
        let t = types::RawType::from_btf(&btf, id).map_err(btf_err)?;
        if let Some(&bad) = t.refs().iter().find(|&&r| r >= btf.len()) {
            return Err(btf_err(BtfError::BadTypeId {
                id: bad,
                len: btf.len(),
                referenced_from: Some(id),
            }));
        }
        list.push(t);
    }
    dedup::dedup(&mut list);
    let (out, _) = list
        .encode(&types::Strings::default())
        .map_err(LinkError::WriteBtf)?;
    Ok(out)
}

/// Links `inputs` (file name, object bytes) into one relocatable object.
/// The file names are only used in error messages.
pub fn link<N: AsRef<str>, B: AsRef<[u8]>>(inputs: &[(N, B)]) -> Result<Vec<u8>, LinkError> {
    if inputs.is_empty() {
        return Err(LinkError::NoInputs);
    }
    let parsed = inputs
        .iter()
        .map(|(n, b)| Input::parse(n.as_ref(), b.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut linker = Linker::default();
    for (i, input) in parsed.iter().enumerate() {
        linker.add(&parsed, i, input)?;
    }
    linker.finish(&parsed)
}

/// Where an input section went: output section index (into `secs`) and
/// the offset of its part.
#[derive(Clone, Copy, Debug)]
struct Placed {
    out: usize,
    off: u64,
}

/// A global symbol being resolved.
#[derive(Debug)]
struct Global {
    /// Index in `syms`.
    sym: usize,
    is_extern: bool,
    is_weak: bool,
    /// The input whose symbol currently defines it (or first declared it).
    origin: usize,
    /// Its section name there, for messages.
    origin_section: String,
    /// The output BTF VAR/FUNC id, once known.
    btf_id: Option<u32>,
    /// A definition whose BTF must replace the extern's when its input's BTF
    /// is appended: (input, source type id).
    complete_from: Option<(usize, u32)>,
}

#[derive(Debug)]
struct OutReloc {
    offset: u64,
    sym: usize,
    typ: u32,
}

#[derive(Debug, Default)]
struct Linker {
    secs: Vec<OutSection>,
    relocs: Vec<Vec<OutReloc>>,
    /// One STT_SECTION symbol per output section.
    sec_syms: Vec<Option<usize>>,
    syms: Vec<OutSymbol>,
    globals: HashMap<String, Global>,
    /// Per input: where each of its sections went.
    placed: Vec<Vec<Option<Placed>>>,
    /// Per input: output symbol of each of its symbols.
    sym_maps: Vec<Vec<usize>>,
    btf: btf::BtfMerge,
    ext: ext::ExtMerge,
}

fn section_name(input: &Input, shndx: u16) -> String {
    match shndx {
        SHN_UNDEF => "UND".into(),
        i => input
            .sections
            .get(i as usize)
            .map_or_else(|| format!("#{i}"), |s| s.name.clone()),
    }
}

impl Linker {
    fn add(&mut self, all: &[Input], idx: usize, input: &Input) -> Result<(), LinkError> {
        self.add_sections(input)?;
        self.add_symbols(all, idx, input)?;
        self.add_relocs(idx, input)?;
        self.btf.add(idx, input, &mut self.globals)?;
        let placed = &self.placed[idx];
        self.ext.add(input, placed, self.btf.type_map(idx))?;
        Ok(())
    }

    fn add_sections(&mut self, input: &Input) -> Result<(), LinkError> {
        let mut placed = Vec::with_capacity(input.sections.len());
        for s in &input.sections {
            let data_like = matches!(s.sh_type, SHT_PROGBITS | SHT_NOBITS);
            // An empty .text (no subprograms) is left out, as libbpf does.
            let empty_text = s.name == ".text" && s.size == 0;
            if !data_like
                || empty_text
                || input::is_ignored(&s.name)
                || s.name == ".BTF"
                || s.name == ".BTF.ext"
            {
                placed.push(None);
                continue;
            }
            let sec_err = |reason: String| LinkError::Section {
                file: input.file.clone(),
                section: s.name.clone(),
                reason,
            };
            let existing = self.secs.iter().position(|o| o.name == s.name);
            let out = match existing {
                Some(o) => {
                    let d = &self.secs[o];
                    if d.sh_type != s.sh_type || d.flags != s.flags {
                        return Err(sec_err(format!(
                            "type {:#x} flags {:#x} differ from the same section in an earlier \
                             input (type {:#x} flags {:#x})",
                            s.sh_type, s.flags, d.sh_type, d.flags
                        )));
                    }
                    if s.name == "license" || s.name == "version" {
                        if d.data != s.data {
                            return Err(sec_err(
                                "contents differ from an earlier input's; they must be identical"
                                    .into(),
                            ));
                        }
                        placed.push(None);
                        continue;
                    }
                    o
                }
                None => {
                    self.secs.push(OutSection {
                        name: s.name.clone(),
                        sh_type: s.sh_type,
                        flags: s.flags,
                        align: 1,
                        data: Vec::new(),
                        size: 0,
                        link: 0,
                        info: 0,
                        entsize: 0,
                    });
                    self.relocs.push(Vec::new());
                    self.sec_syms.push(None);
                    self.secs.len() - 1
                }
            };
            let d = &mut self.secs[out];
            let off = d.size.div_ceil(s.align) * s.align;
            let end = off
                .checked_add(s.size)
                .filter(|&e| e <= u64::from(u32::MAX))
                .ok_or_else(|| sec_err("the merged section would exceed 4 GiB".into()))?;
            if s.sh_type == SHT_PROGBITS {
                if s.data.len() as u64 != s.size {
                    return Err(sec_err("size does not match its data".into()));
                }
                d.data.resize(off as usize, 0);
                d.data.extend_from_slice(&s.data);
            }
            d.size = end;
            d.align = d.align.max(s.align);
            placed.push(Some(Placed { out, off }));
        }
        self.placed.push(placed);
        Ok(())
    }

    fn push_sym(&mut self, s: OutSymbol) -> usize {
        self.syms.push(s);
        self.syms.len() - 1
    }

    fn add_symbols(&mut self, all: &[Input], idx: usize, input: &Input) -> Result<(), LinkError> {
        if self.syms.is_empty() {
            self.syms.push(OutSymbol {
                name: String::new(),
                value: 0,
                size: 0,
                bind: 0,
                typ: 0,
                other: 0,
                shndx: 0,
            });
        }
        let mut map = vec![0usize; input.symbols.len()];
        for (i, s) in input.symbols.iter().enumerate().skip(1) {
            map[i] = self.add_symbol(all, idx, input, s)?;
        }
        self.sym_maps.push(map);
        Ok(())
    }

    fn add_symbol(
        &mut self,
        all: &[Input],
        idx: usize,
        input: &Input,
        s: &InSymbol,
    ) -> Result<usize, LinkError> {
        let sym_err = |reason: String| LinkError::Symbol {
            file: input.file.clone(),
            symbol: s.name.clone(),
            reason,
        };
        let is_extern = s.shndx == SHN_UNDEF;
        let placed = if is_extern || s.shndx >= SHN_LORESERVE {
            None
        } else {
            match input.sections.get(s.shndx as usize) {
                None => return Err(sym_err(format!("section index {} out of range", s.shndx))),
                Some(_) => match self.placed[idx].get(s.shndx as usize).copied().flatten() {
                    Some(p) => Some(p),
                    // In a dropped section (DWARF) or a deduplicated license:
                    // keep nothing; relocations against it are dropped too.
                    None => return Ok(self.globals.get(&s.name).map_or(0, |g| g.sym)),
                },
            }
        };
        if s.typ == STT_FILE && s.bind == STB_LOCAL {
            let sym = OutSymbol {
                name: s.name.clone(),
                value: 0,
                size: 0,
                bind: STB_LOCAL,
                typ: STT_FILE,
                other: 0,
                shndx: s.shndx,
            };
            return Ok(self.push_sym(sym));
        }
        let shndx = |p: Option<Placed>| p.map_or(s.shndx, |p| (FIRST_SECTION + p.out) as u16);
        if s.typ == STT_SECTION {
            let Some(p) = placed else {
                return Ok(0);
            };
            if let Some(existing) = self.sec_syms[p.out] {
                return Ok(existing);
            }
            let sym = OutSymbol {
                name: String::new(),
                value: 0,
                size: 0,
                bind: STB_LOCAL,
                typ: STT_SECTION,
                other: 0,
                shndx: shndx(placed),
            };
            let n = self.push_sym(sym);
            self.sec_syms[p.out] = Some(n);
            return Ok(n);
        }
        let value = s.value + placed.map_or(0, |p| p.off);
        let new_sym = OutSymbol {
            name: s.name.clone(),
            value,
            size: s.size,
            bind: s.bind,
            typ: s.typ,
            other: s.other,
            shndx: shndx(placed),
        };
        if s.bind == STB_LOCAL {
            return Ok(self.push_sym(new_sym));
        }
        if s.bind != STB_GLOBAL && s.bind != STB_WEAK {
            return Err(sym_err(format!("unsupported binding {}", s.bind)));
        }
        if s.other & 3 > 2 {
            return Err(sym_err(format!("unsupported visibility {}", s.other & 3)));
        }
        let this_section = section_name(input, s.shndx);
        let Some(g) = self.globals.get_mut(&s.name) else {
            let sym = self.push_sym(new_sym);
            self.globals.insert(
                s.name.clone(),
                Global {
                    sym,
                    is_extern,
                    is_weak: s.bind == STB_WEAK,
                    origin: idx,
                    origin_section: this_section,
                    btf_id: None,
                    complete_from: None,
                },
            );
            return Ok(sym);
        };
        let origin = &all[g.origin];
        if !is_extern && !g.is_extern && !g.is_weak && s.bind != STB_WEAK {
            return Err(LinkError::DuplicateSymbol(Box::new(DuplicateSymbol {
                symbol: s.name.clone(),
                first_file: origin.file.clone(),
                first_section: g.origin_section.clone(),
                second_file: input.file.clone(),
                second_section: this_section,
            })));
        }
        btf::check_match(&s.name, origin, &g.origin_section, input, &this_section)?;
        let dst = &mut self.syms[g.sym];
        if s.bind == STB_GLOBAL {
            dst.bind = STB_GLOBAL;
            g.is_weak = false;
        }
        // The stricter visibility wins (hidden over default).
        if s.other & 3 > dst.other & 3 {
            dst.other = (dst.other & !3) | (s.other & 3);
        }
        if is_extern || (!g.is_extern && s.bind == STB_WEAK) {
            return Ok(g.sym);
        }
        // A strong definition (or the first definition of an extern).
        dst.typ = s.typ;
        dst.shndx = new_sym.shndx;
        dst.value = new_sym.value;
        dst.size = s.size;
        let was_extern = g.is_extern;
        g.is_extern = false;
        g.origin = idx;
        g.origin_section = this_section;
        if was_extern || g.btf_id.is_some() {
            g.complete_from = Some((idx, 0));
        }
        Ok(g.sym)
    }

    fn add_relocs(&mut self, idx: usize, input: &Input) -> Result<(), LinkError> {
        for (target, _, list) in &input.relocs {
            let Some(tp) = self.placed[idx].get(*target).copied().flatten() else {
                continue;
            };
            let tsec = &input.sections[*target];
            let exec = tsec.flags & SHF_EXECINSTR != 0;
            for (ri, r) in list.iter().enumerate() {
                let err = |reason: String| LinkError::Reloc {
                    file: input.file.clone(),
                    section: tsec.name.clone(),
                    index: ri,
                    reason,
                };
                let Some(sym) = input.symbols.get(r.sym as usize) else {
                    return Err(err(format!("symbol index {} out of range", r.sym)));
                };
                if r.offset >= tsec.size {
                    return Err(err(format!(
                        "offset {} is past the section's {} bytes",
                        r.offset, tsec.size
                    )));
                }
                let dsym = self.sym_maps[idx][r.sym as usize];
                let offset = tp.off + r.offset;
                if sym.typ == STT_SECTION {
                    let shift = self.placed[idx]
                        .get(sym.shndx as usize)
                        .copied()
                        .flatten()
                        .map(|p| p.off)
                        .ok_or_else(|| {
                            err(format!(
                                "against section {}, which is not linked",
                                sym.shndx
                            ))
                        })?;
                    if !exec {
                        return Err(err(
                            "relocation against a section symbol in a non-code section".into(),
                        ));
                    }
                    let data = &mut self.secs[tp.out].data;
                    let at = offset as usize;
                    let Some(insn) = data.get_mut(at..at + 8) else {
                        return Err(err("the instruction lies outside the section".into()));
                    };
                    let imm = i32::from_le_bytes([insn[4], insn[5], insn[6], insn[7]]);
                    // A call counts instructions, a 64-bit load bytes.
                    let add = if insn[0] == 0x85 { shift / 8 } else { shift };
                    let new = i64::from(imm) + add as i64;
                    let new = i32::try_from(new)
                        .map_err(|_| err(format!("immediate {new} does not fit 32 bits")))?;
                    insn[4..8].copy_from_slice(&new.to_le_bytes());
                }
                self.relocs[tp.out].push(OutReloc {
                    offset,
                    sym: dsym,
                    typ: r.typ,
                });
            }
        }
        Ok(())
    }

    fn finish(mut self, all: &[Input]) -> Result<Vec<u8>, LinkError> {
        // Symbols: locals first, as ELF requires.
        let mut order: Vec<usize> = (0..self.syms.len())
            .filter(|&i| self.syms[i].bind == STB_LOCAL)
            .collect();
        let first_global = order.len();
        order.extend((0..self.syms.len()).filter(|&i| self.syms[i].bind != STB_LOCAL));
        let mut new_index = vec![0usize; self.syms.len()];
        for (n, &old) in order.iter().enumerate() {
            new_index[old] = n;
        }
        let syms: Vec<OutSymbol> = order.iter().map(|&i| self.syms[i].clone()).collect();

        let mut ext = std::mem::take(&mut self.ext);
        let (btf_bytes, ext_bytes) = self.btf.finish(
            all,
            &self.secs,
            &self.placed,
            &self.sym_maps,
            &self.syms,
            &mut ext,
        )?;
        let mut sections = std::mem::take(&mut self.secs);
        for (i, relocs) in self.relocs.iter().enumerate() {
            if relocs.is_empty() {
                continue;
            }
            let mut data = Vec::with_capacity(relocs.len() * 16);
            for r in relocs {
                data.extend_from_slice(&r.offset.to_le_bytes());
                let info = ((new_index[r.sym] as u64) << 32) | u64::from(r.typ);
                data.extend_from_slice(&info.to_le_bytes());
            }
            let size = data.len() as u64;
            sections.push(OutSection {
                name: format!(".rel{}", sections[i].name),
                sh_type: SHT_REL,
                flags: 0x40, // SHF_INFO_LINK
                align: 8,
                data,
                size,
                link: 2,
                info: (FIRST_SECTION + i) as u32,
                entsize: 16,
            });
        }
        for (name, bytes) in [(".BTF", btf_bytes), (".BTF.ext", ext_bytes)] {
            if bytes.is_empty() {
                continue;
            }
            let size = bytes.len() as u64;
            sections.push(OutSection {
                name: name.into(),
                sh_type: SHT_PROGBITS,
                flags: 0,
                align: 8,
                data: bytes,
                size,
                link: 0,
                info: 0,
                entsize: 0,
            });
        }
        Ok(write::write_elf(&sections, &syms, first_global))
    }
}
