//! The BPF object model: what a clang-built `.bpf.o` declares.
//!
//! [`Object::parse`] reads the ELF (sections, symbols, relocations), the
//! `.BTF` and `.BTF.ext` sections, and builds the programs, maps (BTF-defined
//! and internal global-data maps), externs and relocations, as libbpf's
//! `bpf_object__open` does. It makes no syscalls and reads no files, so the
//! generator at build time and the loader at run time share it.
//!
//! Every input byte is untrusted: errors name the section, offset, symbol or
//! type id at fault.

mod datasec;
mod elf;
mod externs;
mod maps;
mod programs;
mod relocs;

use std::fmt;

use log::debug;

use crate::btf::ext::BtfExt;
use crate::btf::{Btf, BtfError};

pub use externs::{Extern, ExternKind, KconfigType};
pub use maps::{
    DataKind, InitSlot, Map, MapDef, MapKind, MapType, PinningType, SlotTarget, StructOps,
    StructOpsMember, BPF_F_LINK, BPF_F_MMAPABLE, BPF_F_RDONLY_PROG, MAX_DATA_MAP_SIZE,
};
pub use programs::{Program, Reloc, RelocKind};

/// An error understanding a BPF object. Each variant says where.
#[derive(Debug, thiserror::Error)]
pub enum ObjError {
    /// The bytes do not start with the ELF magic.
    #[error("not an ELF file (no \\x7fELF magic)")]
    NotElf,
    /// A structural ELF problem.
    #[error("malformed ELF: {reason}")]
    Elf {
        /// What is wrong.
        reason: String,
    },
    /// `e_machine` is not `EM_BPF`.
    #[error("ELF machine is {machine}, expected EM_BPF (247): not a BPF object")]
    WrongMachine {
        /// The `e_machine` found.
        machine: u16,
    },
    /// `e_type` is not `ET_REL`.
    #[error("ELF type is {e_type}, expected ET_REL (1): BPF objects are relocatable files")]
    NotRelocatable {
        /// The `e_type` found.
        e_type: u16,
    },
    /// A big-endian (`bpfeb`) object.
    #[error("big-endian BPF object: only little-endian objects (clang -target bpf or bpfel on x86/arm64) are supported")]
    BigEndian,
    /// A problem in one section.
    #[error("section {index} '{name}': {reason}")]
    Section {
        /// Section index.
        index: usize,
        /// Section name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// `.BTF` or `.BTF.ext` could not be read.
    #[error("section '{section}': invalid BTF")]
    Btf {
        /// `.BTF` or `.BTF.ext`.
        section: &'static str,
        /// The reader's error.
        #[source]
        source: BtfError,
    },
    /// A program could not be understood.
    #[error("sec '{section}': program '{name}': {reason}")]
    Program {
        /// Section name.
        section: String,
        /// Program (function) name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A map could not be understood.
    #[error("map '{name}': {reason}")]
    Map {
        /// Map name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// An extern could not be understood.
    #[error("extern '{name}': {reason}")]
    Extern {
        /// Extern name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A relocation could not be classified.
    #[error("section '{section}' offset {offset}: {reason}")]
    Reloc {
        /// The relocated section.
        section: String,
        /// Byte offset of the relocated instruction or data.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The pre-BTF `SEC("maps")` map definitions.
    #[error("legacy map definitions in SEC(\"maps\") are not supported (as in libbpf 1.x): use BTF-defined maps in SEC(\".maps\")")]
    LegacyMaps,
    /// Something in the object is larger than this parser accepts: a bound
    /// that keeps hostile input from exhausting memory or time.
    #[error("{what} is {value}, more than {limit_name} = {limit}")]
    Limit {
        /// What is too large, and where.
        what: String,
        /// Its value.
        value: u64,
        /// The limit's name, as exported by this module.
        limit_name: &'static str,
        /// The limit.
        limit: u64,
    },
    /// A BTF-defined map or a global data section without `.BTF`.
    #[error("object has {what} but no .BTF section: compile with clang -g")]
    MissingBtf {
        /// What needed BTF.
        what: &'static str,
    },
}

impl ObjError {
    pub(crate) fn map(name: &str, reason: impl fmt::Display) -> Self {
        ObjError::Map {
            name: name.to_string(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn btf(source: BtfError) -> Self {
        ObjError::Btf {
            section: ".BTF",
            source,
        }
    }
}

/// A parsed BPF object.
#[derive(Debug)]
pub struct Object {
    /// Object name as libbpf derives it: the file name up to its first dot
    /// (`vfsstat.bpf.o` -> `vfsstat`). Prefixes internal map names.
    pub name: String,
    /// Contents of `SEC("license")`.
    pub license: String,
    /// Contents of `SEC("version")`, 0 if absent.
    pub kern_version: u32,
    /// `.BTF`, after the DATASEC fixups libbpf applies.
    pub btf: Option<Btf>,
    /// `.BTF.ext`.
    pub btf_ext: Option<BtfExt>,
    /// Every function of every executable section, entry programs first in
    /// section order, then `.text` subprograms.
    pub programs: Vec<Program>,
    /// BTF-defined maps (in `.maps` order), then internal global-data maps.
    pub maps: Vec<Map>,
    /// `.kconfig` and `.ksyms` externs, in libbpf's order (kconfig sorted by
    /// alignment then size then name, then ksyms by name).
    pub externs: Vec<Extern>,
}

/// Derives libbpf's object name from a file name or path.
pub fn object_name_from_path(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let stem = base.split('.').next().unwrap_or(base);
    stem.to_string()
}

/// The optional parts of the loader an object uses ([`Object::loader_needs`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoaderNeeds {
    /// `SEC(".struct_ops")` / `SEC(".struct_ops.link")` maps.
    pub struct_ops: bool,
    /// `.kconfig` externs.
    pub kconfig: bool,
    /// `.ksyms` externs: kernel variables and kfuncs.
    pub ksyms: bool,
    /// CO-RE relocations (which may be applied in user space).
    pub user_core: bool,
}

/// Collects the struct_ops maps of an object (the loader's struct_ops part).
pub(crate) type CollectStructOps =
    fn(&elf::Elf<'_>, Option<&Btf>, &maps::EntryProgs<'_>, &mut Vec<Map>) -> Result<(), ObjError>;

pub(crate) use maps::collect_struct_ops_maps;

impl Object {
    /// Parses a BPF object. `name` is the object name (see
    /// [`object_name_from_path`]); it prefixes internal map names.
    pub fn parse(bytes: &[u8], name: &str) -> Result<Object, ObjError> {
        Object::parse_parts(bytes, name, Some(collect_struct_ops_maps))
    }

    /// [`Object::parse`] with struct_ops maps collected by `struct_ops`, or
    /// refused when it is `None` (the loader's parts; see
    /// `loader::LoaderParts`).
    pub(crate) fn parse_parts(
        bytes: &[u8],
        name: &str,
        struct_ops: Option<CollectStructOps>,
    ) -> Result<Object, ObjError> {
        // The ELF reader reads headers in place and needs them 8-aligned;
        // a slice from `include_bytes!` or a sub-slice may not be (found by
        // the core_reloc fuzz harness: a valid object refused as "Invalid
        // ELF header size or alignment"). Parse an aligned copy instead.
        if bytes.as_ptr() as usize % 8 != 0 {
            let mut buf = vec![0u8; bytes.len() + 7];
            let start = (8 - buf.as_ptr() as usize % 8) % 8;
            let aligned = buf
                .get_mut(start..start + bytes.len())
                .ok_or_else(|| ObjError::Elf {
                    reason: "cannot make an aligned copy".into(),
                })?;
            aligned.copy_from_slice(bytes);
            return Object::parse_aligned(aligned, name, struct_ops);
        }
        Object::parse_aligned(bytes, name, struct_ops)
    }

    fn parse_aligned(
        bytes: &[u8],
        name: &str,
        struct_ops: Option<CollectStructOps>,
    ) -> Result<Object, ObjError> {
        let elf = elf::Elf::parse(bytes)?;
        if elf.section_by_name("maps").is_some() {
            return Err(ObjError::LegacyMaps);
        }

        let license = match elf.section_by_name("license") {
            Some(s) => {
                let end = s
                    .data
                    .iter()
                    .position(|&b| b == 0)
                    .ok_or_else(|| ObjError::Section {
                        index: s.index,
                        name: s.name.to_string(),
                        reason: "license string is not NUL-terminated".into(),
                    })?;
                String::from_utf8_lossy(&s.data[..end]).into_owned()
            }
            None => String::new(),
        };
        let kern_version = match elf.section_by_name("version") {
            Some(s) => match <[u8; 4]>::try_from(s.data) {
                Ok(b) => u32::from_le_bytes(b),
                Err(_) => {
                    return Err(ObjError::Section {
                        index: s.index,
                        name: s.name.to_string(),
                        reason: format!("expected 4 bytes, found {}", s.data.len()),
                    })
                }
            },
            None => 0,
        };

        let mut btf = match elf.section_by_name(".BTF") {
            Some(s) => Some(Btf::parse(s.data).map_err(ObjError::btf)?),
            None => None,
        };
        let btf_ext = match elf.section_by_name(".BTF.ext") {
            Some(s) => Some(BtfExt::parse(s.data).map_err(|source| ObjError::Btf {
                section: ".BTF.ext",
                source,
            })?),
            None => None,
        };
        debug!(
            "object '{name}': {} sections, {} symbols, license '{license}', BTF {}, BTF.ext {}",
            elf.sections.len(),
            elf.symbols.len(),
            if btf.is_some() { "present" } else { "absent" },
            if btf_ext.is_some() {
                "present"
            } else {
                "absent"
            },
        );

        if let Some(btf) = btf.as_mut() {
            datasec::fixup(&elf, btf)?;
        }
        let mut externs = externs::collect(&elf, btf.as_mut())?;
        let mut programs = programs::collect(&elf)?;
        let entry_programs: crate::fast::HashSet<&str> = programs
            .iter()
            .filter(|p| !p.subprog)
            .map(|p| p.name.as_str())
            .collect();
        let mut maps = maps::collect_btf_maps(&elf, btf.as_ref(), &entry_programs)?;
        maps::collect_data_maps(&elf, btf.as_ref(), name, &mut maps)?;
        let struct_ops_progs: maps::EntryProgs<'_> = programs
            .iter()
            .filter(|p| !p.subprog)
            .map(|p| {
                let key = (
                    p.section_index,
                    (p.insn_offset * programs::INSN_SIZE) as u64,
                );
                let is_struct_ops = p
                    .section_match()
                    .is_some_and(|m| m.def.prog_type == crate::section::ProgType::StructOps);
                (
                    key,
                    maps::EntryProg {
                        name: &p.name,
                        is_struct_ops,
                    },
                )
            })
            .collect();
        match struct_ops {
            Some(collect) => collect(&elf, btf.as_ref(), &struct_ops_progs, &mut maps)?,
            None => {
                if let Some(s) = elf.sections.iter().find(|s| {
                    let base = s.name.strip_prefix('?').unwrap_or(s.name);
                    maps::STRUCT_OPS_SECTIONS.contains(&base)
                }) {
                    return Err(ObjError::Section {
                        index: s.index,
                        name: s.name.to_string(),
                        reason: "struct_ops maps need the loader's struct_ops part, which this \
                                 object was opened without (LoaderParts)"
                            .into(),
                    });
                }
            }
        }
        if let Some(m) = maps::kconfig_map(&externs, btf.as_ref(), name)? {
            maps.push(m);
        }
        relocs::collect(&elf, &mut programs, &maps, &mut externs)?;

        Ok(Object {
            name: name.to_string(),
            license,
            kern_version,
            btf,
            btf_ext,
            programs,
            maps,
            externs,
        })
    }

    /// The program named `name`.
    pub fn program(&self, name: &str) -> Option<&Program> {
        self.programs.iter().find(|p| p.name == name)
    }

    /// The map named `name` (C name for `.maps`, section name for data maps).
    pub fn map(&self, name: &str) -> Option<&Map> {
        self.maps.iter().find(|m| m.name == name)
    }

    /// Which optional parts of the loader this object needs (what a
    /// skeleton passes as `LoaderParts`, so that its binary links no other).
    pub fn loader_needs(&self) -> LoaderNeeds {
        let externs = |f: fn(&ExternKind) -> bool| self.externs.iter().any(|e| f(&e.kind));
        LoaderNeeds {
            struct_ops: self.maps.iter().any(|m| m.struct_ops().is_some()),
            kconfig: externs(|k| matches!(k, ExternKind::Kconfig { .. })),
            ksyms: externs(|k| matches!(k, ExternKind::Ksym { .. } | ExternKind::Kfunc { .. })),
            user_core: self
                .btf_ext
                .as_ref()
                .is_some_and(|ext| ext.core_relos.iter().any(|s| !s.records.is_empty())),
        }
    }

    /// Entry programs (not `.text` subprograms).
    pub fn entry_programs(&self) -> impl Iterator<Item = &Program> {
        self.programs.iter().filter(|p| !p.subprog)
    }
}
