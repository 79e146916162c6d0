//! Writing a result into the instruction it belongs to, or poisoning it.

use crate::insn::{
    Insn, BPF_ALU, BPF_ALU64, BPF_B, BPF_CALL, BPF_DW, BPF_H, BPF_JMP, BPF_K, BPF_LD, BPF_LDX,
    BPF_ST, BPF_STX, BPF_W, BPF_X,
};

use super::calc::ReloResult;
use super::error::ReloError;

/// The helper id a poisoned instruction calls: `0xbad2310` ("bad relo"),
/// the number libbpf uses. No helper has it, so the verifier rejects the
/// program with "invalid func unknown#195896080" only if the instruction
/// is reachable; dead code guarded by an `*_exists` check is dropped.
pub const POISON_HELPER_ID: i32 = 0x0bad_2310;

/// The instruction libbpf substitutes for a relocation it cannot satisfy.
pub const fn poison_insn() -> Insn {
    Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, POISON_HELPER_ID)
}

/// Whether `insn` is a poisoned instruction.
pub fn is_poisoned(insn: &Insn) -> bool {
    *insn == poison_insn()
}

const SIZE_MASK: u8 = 0x18;

fn access_bytes(code: u8) -> u32 {
    match code & SIZE_MASK {
        BPF_B => 1,
        BPF_H => 2,
        BPF_W => 4,
        _ => 8,
    }
}

fn size_code(bytes: u32) -> Option<u8> {
    Some(match bytes {
        1 => BPF_B,
        2 => BPF_H,
        4 => BPF_W,
        8 => BPF_DW,
        _ => return None,
    })
}

fn slot(insns: &mut [Insn], idx: usize) -> Result<&mut Insn, ReloError> {
    let len = insns.len();
    insns.get_mut(idx).ok_or(ReloError::InsnOutOfRange {
        index: idx as u64,
        len,
    })
}

/// Replaces the instruction at `idx` (both slots of an `ld_imm64`, so the
/// verifier does not trip over a lone second slot first) by the poison call.
fn poison(insns: &mut [Insn], idx: usize) -> Result<(), ReloError> {
    if slot(insns, idx)?.is_ld_imm64() {
        *slot(insns, idx + 1)? = poison_insn();
    }
    *slot(insns, idx)? = poison_insn();
    Ok(())
}

/// Patches `res` into the instruction at `idx`. Returns whether it was
/// poisoned rather than patched.
pub(crate) fn patch_insn(
    insns: &mut [Insn],
    idx: usize,
    res: &ReloResult,
) -> Result<bool, ReloError> {
    if res.poison {
        poison(insns, idx)?;
        return Ok(true);
    }
    let (orig, new) = (res.orig_val, res.new_val);
    let insn = *slot(insns, idx)?;
    match insn.class() {
        BPF_ALU | BPF_ALU64 => {
            if insn.code & BPF_X != BPF_K {
                return Err(ReloError::UnsupportedInsn { code: insn.code });
            }
            if res.validate && insn.imm as i64 as u64 != orig {
                return Err(ReloError::UnexpectedValue {
                    class: "ALU",
                    found: i64::from(insn.imm),
                    expected: orig,
                    new,
                });
            }
            // Values reach the immediate as 32 bits; refuse to truncate.
            let fits = u32::try_from(new).is_ok() || i32::try_from(new as i64).is_ok();
            if !fits {
                return Err(ReloError::ValueTooBig {
                    class: "ALU",
                    field: "imm",
                    value: new,
                });
            }
            slot(insns, idx)?.imm = new as u32 as i32;
        }
        BPF_LDX | BPF_ST | BPF_STX => {
            if res.validate && insn.off as i64 as u64 != orig {
                return Err(ReloError::UnexpectedValue {
                    class: "LDX/ST/STX",
                    found: i64::from(insn.off),
                    expected: orig,
                    new,
                });
            }
            let off = i16::try_from(new).map_err(|_| ReloError::ValueTooBig {
                class: "LDX/ST/STX",
                field: "off",
                value: new,
            })?;
            if res.fail_memsz_adjust {
                // Reading the target field with this load would give a
                // wrong value (a sign or size mismatch); poison as libbpf.
                log::warn!(
                    "CO-RE: instruction #{idx} accesses a field whose size changed \
                     ({} -> {} bytes) and cannot be resized; poisoning it",
                    res.orig_sz,
                    res.new_sz
                );
                poison(insns, idx)?;
                return Ok(true);
            }
            let mut code = insn.code;
            if res.new_sz != res.orig_sz {
                let found = access_bytes(code);
                if found != res.orig_sz {
                    return Err(ReloError::UnexpectedMemSize {
                        found,
                        expected: res.orig_sz,
                    });
                }
                let size =
                    size_code(res.new_sz).ok_or(ReloError::BadNewMemSize { size: res.new_sz })?;
                code = (code & !SIZE_MASK) | size;
            }
            let target = slot(insns, idx)?;
            target.off = off;
            target.code = code;
        }
        BPF_LD => {
            if !insn.is_ld_imm64() {
                return Err(ReloError::LdImm64Form);
            }
            let next = *slot(insns, idx + 1)?;
            let plain = insn.src() == 0
                && insn.off == 0
                && next.code == 0
                && next.dst() == 0
                && next.src() == 0
                && next.off == 0;
            if !plain {
                return Err(ReloError::LdImm64Form);
            }
            let imm = insn.imm64(&next);
            if res.validate && imm != orig {
                return Err(ReloError::UnexpectedValue {
                    class: "ld_imm64",
                    found: imm as i64,
                    expected: orig,
                    new,
                });
            }
            slot(insns, idx)?.imm = new as u32 as i32;
            slot(insns, idx + 1)?.imm = (new >> 32) as u32 as i32;
        }
        _ => return Err(ReloError::UnsupportedInsn { code: insn.code }),
    }
    Ok(false)
}
