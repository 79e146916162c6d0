//! Programs: one per `STT_FUNC` symbol of each executable section, with
//! the relocations of its instructions ([`Reloc`], filled in by `relocs`).

use log::debug;
use object::elf;

use super::elf::Elf;
use super::ObjError;

/// Size of one BPF instruction slot.
pub const INSN_SIZE: usize = 8;

/// One BPF function: an entry program (in a `SEC("...")` section) or a
/// subprogram (in `.text`).
#[derive(Debug, Clone)]
pub struct Program {
    /// Function name.
    pub name: String,
    /// Section name, without the `?` prefix that turns autoload off.
    pub section: String,
    /// ELF section index.
    pub section_index: usize,
    /// Offset of the first instruction within its section, in instructions.
    pub insn_offset: usize,
    /// The program's instructions, as little-endian bytes (`8 * n`).
    pub insns: Vec<u8>,
    /// Whether `load()` loads it (`false` for `SEC("?...")`).
    pub autoload: bool,
    /// A `.text` function: linked into the programs that call it.
    pub subprog: bool,
    /// `STB_GLOBAL` or `STB_WEAK` (a global subprogram is verified on its own).
    pub global: bool,
    /// Hidden visibility (`__hidden`): a global the loader marks static in
    /// BTF, so the verifier checks it in its callers' context, as libbpf does.
    pub hidden: bool,
    /// Relocations, with instruction indexes relative to this program.
    pub relocs: Vec<Reloc>,
}

impl Program {
    /// Number of instruction slots.
    pub fn insn_count(&self) -> usize {
        self.insns.len() / INSN_SIZE
    }

    /// The section-table entry and attach target for this program's section.
    pub fn section_match(&self) -> Option<crate::section::Match<'_>> {
        crate::section::lookup(&self.section)
    }
}

/// What a relocated instruction refers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelocKind {
    /// `ld_imm64` of a BTF-defined map: becomes the map's fd.
    Map {
        /// Index into [`super::Object::maps`].
        map: usize,
    },
    /// `ld_imm64` of an address in a global-data map: becomes map value + offset.
    Data {
        /// Index into [`super::Object::maps`].
        map: usize,
        /// The symbol's offset in its section, added to the instruction's imm.
        sym_off: u64,
    },
    /// `ld_imm64` of a `.kconfig`/`.ksyms` variable.
    Extern {
        /// Index into [`super::Object::externs`].
        ext: usize,
    },
    /// A call of a kfunc.
    ExternCall {
        /// Index into [`super::Object::externs`].
        ext: usize,
    },
    /// A BPF-to-BPF call into `.text`.
    Call {
        /// Target instruction, relative to the start of `.text`.
        target_insn: usize,
    },
    /// `ld_imm64` of a `.text` function's address (a callback, `BPF_PSEUDO_FUNC`).
    SubprogAddr {
        /// Target instruction, relative to the start of `.text`.
        target_insn: usize,
    },
}

impl RelocKind {
    /// A short class name, for counts and `inspect`.
    pub fn class(&self) -> &'static str {
        match self {
            RelocKind::Map { .. } => "map",
            RelocKind::Data { .. } => "data",
            RelocKind::Extern { .. } => "extern",
            RelocKind::ExternCall { .. } => "kfunc_call",
            RelocKind::Call { .. } => "call",
            RelocKind::SubprogAddr { .. } => "subprog_addr",
        }
    }
}

/// One relocation of a program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reloc {
    /// Instruction index, relative to the program's first instruction.
    pub insn: usize,
    /// What it refers to.
    pub kind: RelocKind,
    /// The symbol named by the relocation (a section name for section symbols).
    pub sym: String,
}

/// Collects every function of every executable section, as libbpf's
/// `bpf_object__init_prog` does: entry programs first, in section and
/// offset order, then `.text`.
pub(crate) fn collect(elf: &Elf<'_>) -> Result<Vec<Program>, ObjError> {
    let mut entry = Vec::new();
    let mut text = Vec::new();
    // Function symbols by section, in one pass: filtering every symbol for
    // every section is quadratic in a crafted object of many sections.
    let mut funcs_of: crate::fast::HashMap<usize, Vec<_>> = Default::default();
    for s in elf.symbols.iter().filter(|s| s.kind == elf::STT_FUNC) {
        funcs_of.entry(usize::from(s.shndx)).or_default().push(s);
    }
    for sec in elf.sections.iter().filter(|s| s.is_exec()) {
        let is_text = sec.name == ".text";
        let (sec_name, autoload) = match sec.name.strip_prefix('?') {
            Some(rest) => (rest, false),
            None => (sec.name, true),
        };
        if sec.data.len() % INSN_SIZE != 0 {
            return Err(ObjError::Section {
                index: sec.index,
                name: sec.name.to_string(),
                reason: format!(
                    "size {} is not a multiple of the instruction size (8)",
                    sec.data.len()
                ),
            });
        }
        let mut funcs = funcs_of.remove(&sec.index).unwrap_or_default();
        crate::sort::stable_sort_by_u64(&mut funcs, |s| s.value);
        if funcs.is_empty() && !sec.data.is_empty() {
            debug!(
                "sec '{}': {} bytes of code but no function symbol, skipped",
                sec.name,
                sec.data.len()
            );
        }
        for sym in funcs {
            let err = |reason: String| ObjError::Program {
                section: sec.name.to_string(),
                name: sym.name.to_string(),
                reason,
            };
            if sym.name.is_empty() {
                return Err(err("function symbol without a name".into()));
            }
            let start = usize::try_from(sym.value).unwrap_or(usize::MAX);
            let size = usize::try_from(sym.size).unwrap_or(usize::MAX);
            if start % INSN_SIZE != 0 || size % INSN_SIZE != 0 {
                return Err(err(format!(
                    "offset {start} or size {size} is not a multiple of 8"
                )));
            }
            let end = start
                .checked_add(size)
                .filter(|&e| e <= sec.data.len())
                .ok_or_else(|| {
                    err(format!(
                        "instructions {start}..+{size} run past the section's {} bytes",
                        sec.data.len()
                    ))
                })?;
            if size == 0 {
                return Err(err("function of size 0".into()));
            }
            if !is_text && sym.bind == elf::STB_LOCAL {
                return Err(err(
                    "static functions in a program section are not supported (as libbpf): \
                     make it global or move it to .text"
                        .into(),
                ));
            }
            debug!(
                "sec '{}': found program '{}' at insn offset {} ({} bytes), code size {} insns",
                sec.name,
                sym.name,
                start / INSN_SIZE,
                start,
                size / INSN_SIZE
            );
            let prog = Program {
                name: sym.name.to_string(),
                section: sec_name.to_string(),
                section_index: sec.index,
                insn_offset: start / INSN_SIZE,
                insns: sec.data[start..end].to_vec(),
                autoload: autoload && !is_text,
                subprog: is_text,
                global: sym.bind != elf::STB_LOCAL,
                hidden: sym.is_hidden(),
                relocs: Vec::new(),
            };
            if is_text {
                text.push(prog);
            } else {
                entry.push(prog);
            }
        }
    }
    let mut seen = crate::fast::HashSet::default();
    for p in entry.iter().chain(text.iter()) {
        if !seen.insert(p.name.as_str()) {
            return Err(ObjError::Program {
                section: p.section.clone(),
                name: p.name.clone(),
                reason: "two functions share this name".into(),
            });
        }
    }
    entry.extend(text);
    Ok(entry)
}
