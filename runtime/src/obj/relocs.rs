//! Relocations of program sections, classified as libbpf classifies them
//! into each program's [`Reloc`]s.
//!
//! Every lookup a relocation needs (its program, extern or map) goes through
//! an index built once, so the work stays linear in the number of
//! relocations: searching the programs for each relocation made an object
//! of 100k one-instruction programs, each with a call, take minutes.

use crate::fast::HashMap;

use log::debug;
use object::elf;

use super::elf::{Elf, Symbol};
use super::externs::{Extern, ExternKind};
use super::maps::{Map, MapKind};
use super::programs::{Program, Reloc, RelocKind, INSN_SIZE};
use super::ObjError;

const OP_CALL: u8 = 0x85; // BPF_JMP | BPF_CALL
const OP_LD_IMM64: u8 = 0x18; // BPF_LD | BPF_IMM | BPF_DW
const PSEUDO_CALL: u8 = 1;

fn sym_display<'a>(elf: &'a Elf<'_>, sym: &'a Symbol<'_>) -> &'a str {
    if sym.name.is_empty() && sym.kind == elf::STT_SECTION {
        elf.section(usize::from(sym.shndx)).map_or("", |s| s.name)
    } else {
        sym.name
    }
}

/// Marks an instruction that no program holds in [`insn_owners`].
const NO_OWNER: u32 = u32::MAX;

/// Per section, the index in `programs` of the program holding each
/// instruction: the first one in `programs` order, as a search would find.
fn insn_owners(programs: &[Program]) -> HashMap<usize, Vec<u32>> {
    let mut owners: HashMap<usize, Vec<u32>> = HashMap::default();
    for (i, p) in programs.iter().enumerate() {
        let Ok(i) = u32::try_from(i) else { break };
        let slots = owners.entry(p.section_index).or_default();
        let end = p.insn_offset + p.insn_count();
        if slots.len() < end {
            slots.resize(end, NO_OWNER);
        }
        for slot in slots.get_mut(p.insn_offset..end).unwrap_or_default() {
            if *slot == NO_OWNER {
                *slot = i;
            }
        }
    }
    owners
}

pub(crate) fn collect(
    elf: &Elf<'_>,
    programs: &mut [Program],
    maps: &[Map],
    externs: &mut [Extern],
) -> Result<(), ObjError> {
    let text_idx = elf.section_by_name(".text").map(|s| s.index);
    let text_len = text_idx
        .and_then(|i| elf.section(i))
        .map_or(0, |s| s.data.len() / INSN_SIZE);
    let owners = insn_owners(programs);
    let mut extern_by_name = HashMap::default();
    for (i, e) in externs.iter().enumerate() {
        extern_by_name.entry(e.name.as_str()).or_insert(i);
    }
    let (mut btf_maps, mut data_maps) = (HashMap::default(), HashMap::default());
    for (i, m) in maps.iter().enumerate() {
        match m.kind {
            MapKind::Btf { sec_offset } => {
                btf_maps.entry((m.section_index, sec_offset)).or_insert(i);
            }
            MapKind::Data(_) => {
                data_maps.entry(m.section_index).or_insert(i);
            }
            // Programs do not refer to struct_ops maps; their relocations
            // (program addresses in the map's value) are bound at parse.
            MapKind::StructOps(_) => {}
        }
    }
    for (target, entries) in &elf.rels {
        let Some(sec) = elf.section(*target) else {
            continue;
        };
        if !sec.is_exec() {
            continue;
        }
        for r in entries {
            let err = |reason: String| ObjError::Reloc {
                section: sec.name.to_string(),
                offset: r.offset,
                reason,
            };
            if r.offset % INSN_SIZE as u64 != 0 || r.offset >= sec.data.len() as u64 {
                return Err(err(format!(
                    "offset is not an instruction of the section ({} bytes)",
                    sec.data.len()
                )));
            }
            let sec_insn = (r.offset / INSN_SIZE as u64) as usize;
            let owner = owners
                .get(&sec.index)
                .and_then(|slots| slots.get(sec_insn))
                .filter(|&&o| o != NO_OWNER);
            let Some(prog) = owner.and_then(|&o| programs.get_mut(o as usize)) else {
                debug!(
                    "sec '{}': relocation at insn #{sec_insn} is outside every program, skipped",
                    sec.name
                );
                continue;
            };
            let insn_idx = sec_insn - prog.insn_offset;
            let b = prog
                .insns
                .get(insn_idx * INSN_SIZE..insn_idx * INSN_SIZE + INSN_SIZE)
                .ok_or_else(|| err("instruction out of range".into()))?;
            let (code, src) = (b[0], b[1] >> 4);
            let imm = i32::from_le_bytes([b[4], b[5], b[6], b[7]]);
            let sym = elf
                .symbols
                .get(r.sym as usize)
                .ok_or_else(|| err(format!("unknown symbol {}", r.sym)))?;
            let name = sym_display(elf, sym);
            let is_call = code == OP_CALL;
            let is_ld64 = code == OP_LD_IMM64;
            if is_ld64 && insn_idx + 1 >= prog.insn_count() {
                return Err(err("ld_imm64 is missing its second slot".into()));
            }

            let kind = if sym.is_undefined()
                && sym.is_global_or_weak()
                && sym.kind == elf::STT_NOTYPE
            {
                let ext = extern_by_name
                    .get(sym.name)
                    .copied()
                    .ok_or_else(|| err(format!("extern '{}' is not known", sym.name)))?;
                match (&externs[ext].kind, is_call, is_ld64) {
                    (ExternKind::Kfunc { .. }, true, _) => RelocKind::ExternCall { ext },
                    (ExternKind::Kfunc { .. }, false, _) => {
                        return Err(err(format!("kfunc '{}' used other than by a call", sym.name)))
                    }
                    (_, _, true) => RelocKind::Extern { ext },
                    _ => {
                        return Err(err(format!(
                            "extern '{}' referenced by an instruction that is not ld_imm64 (opcode {code:#04x})",
                            sym.name
                        )))
                    }
                }
            } else if is_call {
                if src != PSEUDO_CALL {
                    return Err(err(format!(
                        "call relocation against '{name}' on a call with src_reg {src}, expected BPF_PSEUDO_CALL"
                    )));
                }
                if Some(usize::from(sym.shndx)) != text_idx {
                    return Err(err(format!(
                        "call relocation against '{name}', which is not in .text"
                    )));
                }
                if sym.value % INSN_SIZE as u64 != 0 {
                    return Err(err(format!(
                        "call target '{name}' is not instruction aligned"
                    )));
                }
                let target = (sym.value / INSN_SIZE as u64) as i64 + i64::from(imm) + 1;
                let target_insn = usize::try_from(target)
                    .ok()
                    .filter(|&t| t < text_len)
                    .ok_or_else(|| err(format!("call target insn {target} is outside .text")))?;
                RelocKind::Call { target_insn }
            } else if !is_ld64 {
                return Err(err(format!(
                    "relocation against '{name}' on opcode {code:#04x}: expected ld_imm64 or call"
                )));
            } else if Some(usize::from(sym.shndx)) == text_idx
                && (sym.kind == elf::STT_SECTION || sym.kind == elf::STT_FUNC)
            {
                let byte = sym.value as i64 + i64::from(imm);
                if byte % INSN_SIZE as i64 != 0 {
                    return Err(err(format!(
                        "address of '{name}' + {imm} is not instruction aligned"
                    )));
                }
                let target_insn = usize::try_from(byte / INSN_SIZE as i64)
                    .ok()
                    .filter(|&t| t < text_len)
                    .ok_or_else(|| {
                        err(format!(
                            "function address '{name}' + {imm} is outside .text"
                        ))
                    })?;
                RelocKind::SubprogAddr { target_insn }
            } else {
                let shndx = usize::from(sym.shndx);
                let target_sec = elf.section(shndx).map_or("", |s| s.name);
                if target_sec == ".maps" {
                    let map = btf_maps.get(&(shndx, sym.value)).copied().ok_or_else(|| {
                        err(format!(
                            "no map at .maps offset {} for symbol '{name}'",
                            sym.value
                        ))
                    })?;
                    RelocKind::Map { map }
                } else if let Some(&map) = data_maps.get(&shndx) {
                    RelocKind::Data {
                        map,
                        sym_off: sym.value,
                    }
                } else {
                    return Err(err(format!(
                        "relocation against '{name}' in section '{target_sec}', which is neither .maps nor global data"
                    )));
                }
            };
            debug!(
                "prog '{}': relo #{} at insn {insn_idx}: {} '{}'",
                prog.name,
                prog.relocs.len(),
                kind.class(),
                name
            );
            prog.relocs.push(Reloc {
                insn: insn_idx,
                kind,
                sym: name.to_string(),
            });
        }
    }
    for p in programs.iter_mut() {
        crate::sort::stable_sort_by_u64(&mut p.relocs, |r| r.insn as u64);
    }
    Ok(())
}
