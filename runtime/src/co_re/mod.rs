//! CO-RE in user space: relocating a program's instructions against a
//! target BTF, as libbpf does before `BPF_PROG_LOAD` (the kernel can do the
//! same itself since 5.17; this engine is the fallback and the reference).
//!
//! Pure code: local BTF, target BTF and instructions in, patched
//! instructions out; no syscalls, no files.
//!
//! For each `bpf_core_relo` record the engine
//! 1. parses the access string into a local spec: the field path with its
//!    bit offset, the type, or the enumerator (`spec`);
//! 2. takes as candidates the target types of compatible kind whose
//!    essential name (`task_struct___v1` -> `task_struct`) is the local
//!    type's ([`CoreTarget`]);
//! 3. matches each candidate (`matching`): member names recursively
//!    through anonymous members, compatible field types, array bounds,
//!    enumerator names; `TYPE_MATCHES` with its stricter rules;
//! 4. computes the value for the local and the target spec (`calc`); all
//!    matching candidates must agree;
//! 5. patches the instruction (`patch`): ALU immediate, load/store offset
//!    (resizing the access where the field size changed and zero extension
//!    keeps the value), or the 64-bit `ld_imm64` constant, after checking
//!    that it held the local value. A field or enumerator missing from the
//!    target poisons the instruction (a call of helper [`POISON_HELPER_ID`])
//!    so that the verifier objects only if that code is reachable; the
//!    `*_exists` kinds give 0 and type-based kinds give 0 instead.

mod calc;
mod error;
mod matching;
mod names;
mod patch;
mod spec;
mod target;

use log::debug;

use crate::btf::ext::{CoreRelo, CoreReloKind};
use crate::btf::Btf;
use crate::insn::{Insn, INSN_SIZE};

use calc::{calc_relo, ReloResult};
pub use error::{CoreError, ReloError};
use matching::{kinds_compatible, Matcher};
use names::essential_name;
pub use patch::{is_poisoned, poison_insn, POISON_HELPER_ID};
use spec::parse_local;
pub use target::CoreTarget;

/// What [`relocate_program`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelocStats {
    /// Relocations whose value was patched into an instruction.
    pub applied: usize,
    /// Relocations whose instruction was poisoned (missing field or
    /// enumerator, or a load that cannot be resized).
    pub poisoned: usize,
}

/// Relocates one program's instructions in place.
///
/// `relos` are the program's records, with `insn_off` in bytes from the
/// program's first instruction (the caller converts from the section's
/// frame of reference); `local` is the object's BTF. On error nothing is
/// written: `insns` is left as it was.
pub fn relocate_program(
    local: &Btf,
    target: &CoreTarget,
    prog_name: &str,
    insns: &mut [Insn],
    relos: &[CoreRelo],
) -> Result<RelocStats, CoreError> {
    let mut work = insns.to_vec();
    let mut stats = RelocStats::default();
    for (relo_index, relo) in relos.iter().enumerate() {
        let poisoned = apply(local, target, &mut work, relo)
            .map_err(|source| describe(local, prog_name, relo_index, relo, source))?;
        if poisoned {
            debug!(
                "prog '{prog_name}': CO-RE relo #{relo_index} ({}) poisoned insn #{}",
                relo.kind,
                relo.insn_off / INSN_SIZE as u32
            );
            stats.poisoned += 1;
        } else {
            stats.applied += 1;
        }
    }
    insns.copy_from_slice(&work);
    Ok(stats)
}

/// Computes and patches one relocation; `true` if it poisoned.
fn apply(
    local: &Btf,
    target: &CoreTarget,
    insns: &mut [Insn],
    relo: &CoreRelo,
) -> Result<bool, ReloError> {
    if relo.insn_off % INSN_SIZE as u32 != 0 {
        return Err(ReloError::InsnUnaligned {
            insn_off: relo.insn_off,
        });
    }
    let idx = (relo.insn_off / INSN_SIZE as u32) as usize;
    if idx >= insns.len() {
        return Err(ReloError::InsnOutOfRange {
            index: idx as u64,
            len: insns.len(),
        });
    }
    let res = compute(local, target, relo)?;
    patch::patch_insn(insns, idx, &res)
}

/// The result of one relocation: libbpf's `bpf_core_calc_relo_insn`.
fn compute(local: &Btf, target: &CoreTarget, relo: &CoreRelo) -> Result<ReloResult, ReloError> {
    compute_with_target(local, target, relo).map(|(res, _)| res)
}

/// What one relocation uses of the target BTF: the candidate that matched
/// and the path taken through it. `bpftool gen min_core_btf` keeps exactly
/// these types and members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetUse {
    /// The relocation's kind.
    pub kind: CoreReloKind,
    /// The matched target type (the candidate itself, before modifiers and
    /// typedefs are skipped).
    pub root_type_id: u32,
    /// Every index crossed from the root: the first steps over whole
    /// objects of the root type; later ones pick members (anonymous ones
    /// included) or array elements. The enumerator index for enum value
    /// kinds; empty for type-based kinds.
    pub path: Vec<u32>,
}

/// The target types and members that `relo` resolves to, or `None` when
/// no candidate matches (or the kind does not look at the target:
/// `TYPE_ID_LOCAL`). The same matching as [`relocate_program`], so the
/// answer is what a load against `target` would use.
pub fn target_use(
    local: &Btf,
    target: &CoreTarget,
    relo: &CoreRelo,
) -> Result<Option<TargetUse>, ReloError> {
    compute_with_target(local, target, relo).map(|(_, used)| used)
}

/// [`compute`], also returning the first matching candidate's spec.
fn compute_with_target(
    local: &Btf,
    target: &CoreTarget,
    relo: &CoreRelo,
) -> Result<(ReloResult, Option<TargetUse>), ReloError> {
    let local_type = local.type_by_id(relo.type_id).map_err(ReloError::local)?;
    let access = local.name(relo.access_str_off).map_err(ReloError::local)?;
    let local_spec = parse_local(local, relo, access)?;

    if relo.kind == CoreReloKind::TypeIdLocal {
        // The linker may renumber types, so the compiler's value is not checked.
        return Ok((ReloResult::unchecked(u64::from(relo.type_id)), None));
    }
    let local_name = local.name(local_type.name_off).map_err(ReloError::local)?;
    if local_name.is_empty() {
        return Err(ReloError::AnonymousType);
    }

    let targ_btf = target.btf();
    let mut matcher = Matcher::new(local, targ_btf);
    let mut chosen: Option<(u32, u64, ReloResult, Vec<u32>)> = None;
    for &cand in target.candidates(essential_name(local_name)).iter() {
        let cand_kind = targ_btf.kind_of(cand).map_err(ReloError::target)?;
        if !kinds_compatible(local_type.kind(), cand_kind) {
            continue;
        }
        let Some(cand_spec) = matcher.spec_match(&local_spec, relo.kind, cand)? else {
            continue;
        };
        let res = calc_relo(relo.kind, &local_spec, Some(&cand_spec))?;
        debug!(
            "CO-RE {} of [{}] {local_name} \"{access}\": candidate [{cand}] gives {}",
            relo.kind,
            relo.type_id,
            res.describe()
        );
        match &chosen {
            None => chosen = Some((cand, cand_spec.bit_offset, res, cand_spec.raw)),
            Some((first_id, first_bits, first, _)) => {
                if *first_bits != cand_spec.bit_offset {
                    return Err(ReloError::FieldAmbiguity {
                        first_id: *first_id,
                        first_bit_offset: *first_bits,
                        other_id: cand,
                        other_bit_offset: cand_spec.bit_offset,
                    });
                }
                if first.poison != res.poison || first.new_val != res.new_val {
                    return Err(ReloError::ValueAmbiguity {
                        first_id: *first_id,
                        first: first.describe(),
                        other_id: cand,
                        other: res.describe(),
                    });
                }
            }
        }
    }
    match chosen {
        Some((root_type_id, _, res, path)) => Ok((
            res,
            Some(TargetUse {
                kind: relo.kind,
                root_type_id,
                path,
            }),
        )),
        // Expected for existence checks and guarded code: the kind decides
        // between 0 and poison.
        None => Ok((calc_relo(relo.kind, &local_spec, None)?, None)),
    }
}

/// Wraps `source` with where it happened, reading names defensively (the
/// error may be that they cannot be read).
fn describe(
    local: &Btf,
    prog: &str,
    relo_index: usize,
    relo: &CoreRelo,
    source: ReloError,
) -> CoreError {
    let type_desc = match local.type_by_id(relo.type_id) {
        Ok(t) => match local.name(t.name_off) {
            Ok("") => format!("anonymous {}", t.kind()),
            Ok(name) => format!("{} {name}", t.kind()),
            Err(_) => format!("{} with an unreadable name", t.kind()),
        },
        Err(_) => format!("out of range: the local BTF has ids 0..{}", local.len()),
    };
    let access = match local.name(relo.access_str_off) {
        Ok(a) if a.len() <= 80 => a.to_owned(),
        Ok(a) => format!("{}...", a.chars().take(80).collect::<String>()),
        Err(_) => format!("<unreadable string offset {}>", relo.access_str_off),
    };
    CoreError {
        prog: prog.to_owned(),
        relo_index,
        insn_off: relo.insn_off,
        insn_index: relo.insn_off / INSN_SIZE as u32,
        kind: relo.kind,
        type_id: relo.type_id,
        type_desc,
        access,
        source: Box::new(source),
    }
}
