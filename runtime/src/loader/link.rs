//! Building one loadable instruction stream per entry program: the program's
//! own instructions, then every `.text` subprogram it reaches (calls and
//! callback addresses, transitively), each appended once; call offsets,
//! map/data/extern references and BTF.ext records (func_info, line_info,
//! CO-RE relocations) rewritten for the new layout.

use crate::fast::HashMap;
use std::os::fd::RawFd;

use crate::btf::ext::{BtfExt, CoreRelo};
use crate::btf::Btf;
use crate::insn::{
    Insn, BPF_CALL, BPF_JMP, BPF_PSEUDO_BTF_ID, BPF_PSEUDO_CALL, BPF_PSEUDO_FUNC,
    BPF_PSEUDO_KFUNC_CALL, BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE,
};
use crate::obj::{Object, Program, Reloc, RelocKind};

use super::LoadError;

/// The helper id libbpf uses to poison an instruction that must never run
/// (an unresolved weak kfunc): the verifier rejects it only if reachable.
pub const POISON_HELPER: i32 = 0xbad2310;

/// What an extern resolved to, for relocation.
#[derive(Clone, Debug)]
pub(crate) enum ExternValue {
    /// A `.kconfig` value at `offset` in the `.kconfig` map (index `map`).
    Kconfig { map: usize, offset: u32 },
    /// A typeless ksym: its address.
    Addr(u64),
    /// A typed ksym or kfunc by BTF id; `fd_index` indexes `fd_array`
    /// (0: vmlinux), for a ksym the BTF object fd (0: vmlinux).
    Btf {
        id: u32,
        obj_fd: RawFd,
        fd_index: i16,
    },
    /// A weak extern that the kernel does not have.
    Missing,
}

/// Everything relocation needs from the load so far.
pub(crate) struct Resolved<'a> {
    /// Raw fd of each created map (by index in `Object::maps`).
    pub map_fds: &'a [Option<RawFd>],
    /// Value of each extern (by index in `Object::externs`).
    pub externs: &'a [ExternValue],
}

/// A program ready for `BPF_PROG_LOAD`.
pub(crate) struct Linked {
    pub insns: Vec<Insn>,
    /// `bpf_func_info` records (insn_off in instructions).
    pub func_info: Vec<u8>,
    /// `bpf_line_info` records (insn_off in instructions).
    pub line_info: Vec<u8>,
    /// `bpf_core_relo` records for the kernel (insn_off in bytes).
    pub core_relos: Vec<u8>,
    /// The same CO-RE records, for the user-space engine.
    pub core_records: Vec<CoreRelo>,
}

/// BTF.ext records of one ELF section, with section-relative instruction
/// indexes.
#[derive(Default)]
struct SecExt {
    func: Vec<(usize, u32)>,
    line: Vec<(usize, [u32; 3])>,
    core: Vec<(usize, CoreRelo)>,
}

pub(crate) struct ExtIndex<'a> {
    /// By section name, borrowed from the object's BTF.
    by_section: HashMap<&'a str, SecExt>,
}

impl<'a> ExtIndex<'a> {
    pub fn new(btf: Option<&'a Btf>, ext: Option<&BtfExt>) -> Result<Self, LoadError> {
        let (Some(btf), Some(ext)) = (btf, ext) else {
            return Ok(ExtIndex {
                by_section: HashMap::default(),
            });
        };
        let mut by_section: HashMap<&'a str, SecExt> =
            crate::fast::map_with_capacity(ext.func_info.len());
        let sec_name = |off: u32| -> Result<&'a str, LoadError> {
            // Kept with its `?`: `?fentry/f` and `fentry/f` are two ELF
            // sections, each with its own records at offset 0.
            btf.name(off).map_err(|e| LoadError::Btf {
                what: "section name of a .BTF.ext block",
                source: e,
            })
        };
        for s in &ext.func_info {
            let e = by_section.entry(sec_name(s.sec_name_off)?).or_default();
            e.func.extend(
                s.records
                    .iter()
                    .map(|r| (r.insn_off as usize / 8, r.type_id)),
            );
        }
        for s in &ext.line_info {
            let e = by_section.entry(sec_name(s.sec_name_off)?).or_default();
            e.line.extend(s.records.iter().map(|r| {
                (
                    r.insn_off as usize / 8,
                    [r.file_name_off, r.line_off, r.line_col],
                )
            }));
        }
        for s in &ext.core_relos {
            let e = by_section.entry(sec_name(s.sec_name_off)?).or_default();
            e.core
                .extend(s.records.iter().map(|r| (r.insn_off as usize / 8, *r)));
        }
        Ok(ExtIndex { by_section })
    }
}

fn err(prog: &str, insn: usize, reason: impl Into<String>) -> LoadError {
    LoadError::Relocation {
        prog: prog.to_string(),
        insn,
        reason: reason.into(),
    }
}

/// The function of section `section_index` that contains section-relative
/// instruction `insn`.
fn containing(obj: &Object, section_index: usize, insn: usize) -> Option<usize> {
    obj.programs.iter().position(|p| {
        p.section_index == section_index
            && insn >= p.insn_offset
            && insn < p.insn_offset + p.insn_count()
    })
}

fn text_section_index(obj: &Object) -> Option<usize> {
    obj.programs
        .iter()
        .find(|p| p.subprog)
        .map(|p| p.section_index)
}

/// Links entry program `entry` of `obj` and applies every relocation.
pub(crate) fn link_program(
    obj: &Object,
    entry: usize,
    ext: &ExtIndex<'_>,
    res: &Resolved<'_>,
) -> Result<Linked, LoadError> {
    let main = &obj.programs[entry];
    let text = text_section_index(obj);
    // (program index, position in the output), in order of placement.
    let mut chunks: Vec<(usize, usize)> = vec![(entry, 0)];
    let mut placed: HashMap<usize, usize> = HashMap::default();
    placed.insert(entry, 0);
    let mut out = decode(main)?;

    let mut next = 0;
    while next < chunks.len() {
        let (pi, pos) = chunks[next];
        next += 1;
        let prog = &obj.programs[pi];
        // Calls and callback addresses: by relocation (into .text), or,
        // for a call without one, relative within the same section.
        let count = prog.insn_count();
        // Relocations in instruction order (the first of an instruction
        // first), walked beside the instructions: a search per instruction
        // was quadratic, and a tenth of a small object's load.
        let mut by_insn: Vec<&Reloc> = prog.relocs.iter().collect();
        by_insn.sort_by_key(|r| r.insn);
        let mut next_reloc = by_insn.iter().peekable();
        for i in 0..count {
            let at = pos + i;
            let insn = out[at];
            while next_reloc.next_if(|r| r.insn < i).is_some() {}
            let reloc = next_reloc.peek().filter(|r| r.insn == i).copied();
            let target = match reloc.map(|r| &r.kind) {
                Some(RelocKind::Call { target_insn }) => Some((text, *target_insn, false)),
                Some(RelocKind::SubprogAddr { target_insn }) => Some((text, *target_insn, true)),
                Some(_) => None,
                None if insn.code == (BPF_JMP | BPF_CALL) && insn.src() == BPF_PSEUDO_CALL => {
                    let t = (prog.insn_offset + i) as i64 + i64::from(insn.imm) + 1;
                    let t = usize::try_from(t)
                        .map_err(|_| err(&main.name, at, "call before the section start"))?;
                    Some((Some(prog.section_index), t, false))
                }
                None => None,
            };
            let Some((sec, target_insn, is_addr)) = target else {
                continue;
            };
            let sec =
                sec.ok_or_else(|| err(&main.name, at, "call into .text, but there is no .text"))?;
            let callee = containing(obj, sec, target_insn).ok_or_else(|| {
                err(
                    &main.name,
                    at,
                    format!("call target insn {target_insn} is in no function"),
                )
            })?;
            let callee_pos = match placed.get(&callee) {
                Some(&p) => p,
                None => {
                    let p = out.len();
                    out.extend(decode(&obj.programs[callee])?);
                    placed.insert(callee, p);
                    chunks.push((callee, p));
                    p
                }
            };
            let dest = callee_pos + (target_insn - obj.programs[callee].insn_offset);
            let rel = dest as i64 - at as i64 - 1;
            let rel =
                i32::try_from(rel).map_err(|_| err(&main.name, at, "call offset overflows"))?;
            let slot = &mut out[at];
            slot.imm = rel;
            if is_addr {
                slot.set_src(BPF_PSEUDO_FUNC);
            } else {
                slot.set_src(BPF_PSEUDO_CALL);
            }
        }
        // Data, map and extern references.
        for r in &prog.relocs {
            let at = pos + r.insn;
            apply(&main.name, &mut out, at, &r.kind, res)?;
        }
    }

    // BTF.ext records of every chunk, rebased.
    let mut func_info = Vec::new();
    let mut line_info = Vec::new();
    let mut core_relos = Vec::new();
    let mut core_records = Vec::new();
    let mut funcs: Vec<(usize, u32)> = Vec::new();
    let mut lines: Vec<(usize, [u32; 3])> = Vec::new();
    for &(pi, pos) in &chunks {
        let p = &obj.programs[pi];
        let Some(sec) = ext.by_section.get(section_name(obj, p).as_ref()) else {
            continue;
        };
        let range = p.insn_offset..p.insn_offset + p.insn_count();
        funcs.extend(
            sec.func
                .iter()
                .filter(|(i, _)| range.contains(i))
                .map(|(i, t)| (i - p.insn_offset + pos, *t)),
        );
        lines.extend(
            sec.line
                .iter()
                .filter(|(i, _)| range.contains(i))
                .map(|(i, l)| (i - p.insn_offset + pos, *l)),
        );
        for (i, c) in sec.core.iter().filter(|(i, _)| range.contains(i)) {
            let new = i - p.insn_offset + pos;
            let mut c = *c;
            c.insn_off =
                u32::try_from(new * 8).map_err(|_| err(&main.name, new, "program too large"))?;
            core_records.push(c);
        }
    }
    crate::sort::stable_sort_by_u64(&mut funcs, |f| f.0 as u64);
    crate::sort::stable_sort_by_u64(&mut lines, |l| l.0 as u64);
    for (i, t) in funcs {
        func_info.extend((i as u32).to_le_bytes());
        func_info.extend(t.to_le_bytes());
    }
    for (i, [f, l, c]) in lines {
        for w in [i as u32, f, l, c] {
            line_info.extend(w.to_le_bytes());
        }
    }
    crate::sort::stable_sort_by_u64(&mut core_records, |c| u64::from(c.insn_off));
    for c in &core_records {
        for w in [c.insn_off, c.type_id, c.access_str_off, c.kind as u32] {
            core_relos.extend(w.to_le_bytes());
        }
    }
    Ok(Linked {
        insns: out,
        func_info,
        line_info,
        core_relos,
        core_records,
    })
}

/// The section name a program's BTF.ext records are filed under.
/// The ELF section name BTF.ext records `p` under: `p.section` lost the
/// `?` prefix that turned autoload off, which the object's default autoload
/// still tells.
fn section_name<'a>(obj: &'a Object, p: &'a Program) -> std::borrow::Cow<'a, str> {
    let _ = obj;
    if p.subprog {
        ".text".into()
    } else if !p.autoload {
        format!("?{}", p.section).into()
    } else {
        p.section.as_str().into()
    }
}

fn decode(p: &Program) -> Result<Vec<Insn>, LoadError> {
    Insn::from_bytes(&p.insns).map_err(|e| err(&p.name, 0, e.to_string()))
}

fn ld_imm64_slots<'a>(
    prog: &str,
    out: &'a mut [Insn],
    at: usize,
) -> Result<(&'a mut Insn, &'a mut Insn), LoadError> {
    match out.get_mut(at..at + 2) {
        Some([a, b]) if a.is_ld_imm64() => Ok((a, b)),
        _ => Err(err(prog, at, "expected an ld_imm64 instruction")),
    }
}

fn apply(
    prog: &str,
    out: &mut [Insn],
    at: usize,
    kind: &RelocKind,
    res: &Resolved<'_>,
) -> Result<(), LoadError> {
    let map_fd = |map: usize| -> Result<RawFd, LoadError> {
        res.map_fds
            .get(map)
            .copied()
            .flatten()
            .ok_or_else(|| err(prog, at, format!("map #{map} was not created")))
    };
    match kind {
        RelocKind::Call { .. } | RelocKind::SubprogAddr { .. } => {}
        RelocKind::Map { map } => {
            let fd = map_fd(*map)?;
            let (a, _) = ld_imm64_slots(prog, out, at)?;
            a.set_src(BPF_PSEUDO_MAP_FD);
            a.imm = fd;
        }
        RelocKind::Data { map, sym_off } => {
            let fd = map_fd(*map)?;
            let (a, b) = ld_imm64_slots(prog, out, at)?;
            let off = i64::from(a.imm) + *sym_off as i64;
            let off = i32::try_from(off).map_err(|_| err(prog, at, "data offset overflows"))?;
            a.set_src(BPF_PSEUDO_MAP_VALUE);
            a.imm = fd;
            b.imm = off;
        }
        RelocKind::Extern { ext } => {
            let value = res
                .externs
                .get(*ext)
                .ok_or_else(|| err(prog, at, format!("extern #{ext} unknown")))?;
            let (a, b) = ld_imm64_slots(prog, out, at)?;
            match value {
                ExternValue::Kconfig { map, offset } => {
                    let fd = map_fd(*map)?;
                    a.set_src(BPF_PSEUDO_MAP_VALUE);
                    a.imm = fd;
                    b.imm = *offset as i32;
                }
                ExternValue::Addr(addr) => {
                    a.set_src(0);
                    a.imm = *addr as u32 as i32;
                    b.imm = (*addr >> 32) as u32 as i32;
                }
                ExternValue::Btf { id, obj_fd, .. } => {
                    a.set_src(BPF_PSEUDO_BTF_ID);
                    a.imm = *id as i32;
                    b.imm = *obj_fd;
                }
                ExternValue::Missing => {
                    a.set_src(0);
                    a.imm = 0;
                    b.imm = 0;
                }
            }
        }
        RelocKind::ExternCall { ext } => {
            let value = res
                .externs
                .get(*ext)
                .ok_or_else(|| err(prog, at, format!("extern #{ext} unknown")))?;
            let insn = out
                .get_mut(at)
                .ok_or_else(|| err(prog, at, "instruction out of range"))?;
            match value {
                ExternValue::Btf { id, fd_index, .. } => {
                    insn.set_src(BPF_PSEUDO_KFUNC_CALL);
                    insn.imm = *id as i32;
                    insn.off = *fd_index;
                }
                ExternValue::Missing => {
                    insn.set_src(0);
                    insn.imm = POISON_HELPER;
                    insn.off = 0;
                }
                other => {
                    return Err(err(
                        prog,
                        at,
                        format!("kfunc call resolved to a non-function: {other:?}"),
                    ))
                }
            }
        }
    }
    Ok(())
}
