//! The disassembler: one line of text per instruction, in llvm-objdump's
//! syntax (`r1 = *(u64 *)(r10 - 8)`, `if w1 s> w2 goto +3`, `r1 = 0 ll`),
//! which is also the verifier's, bar spacing.
//!
//! Where llvm-objdump has a choice, this follows what it prints by default:
//! loads and stores name 64-bit registers (`r1 = *(u32 *)(r2 + 0)`), while
//! 32-bit atomics name 32-bit ones (`w2 = atomic_fetch_add((u32 *)(r1 + 0),
//! w2)`), as llvm-objdump does once it decodes them at all (its default
//! decoder mistakes every 32-bit atomic for `lock ... +=`). Immediates are
//! signed decimal. Instructions newer than clang 14 (cpu v4: `s/=`,
//! `r1 = (s8)r2`, `bswap16`, sign-extending loads, `gotol`; `may_goto`,
//! `addr_space_cast`, load-acquire/store-release) use the spelling of the
//! LLVM release that introduced them. An `ld_imm64` whose `src` marks a
//! kernel object (set by the loader, never by clang) prints the kind and
//! number, e.g. `r1 = map[fd:5] ll`.
//!
//! Anything the kernel would not accept prints as `invalid ...` rather than
//! failing: the disassembler is a diagnostic tool and never panics.

use std::fmt;

use super::*;

/// One disassembled instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisasmLine {
    /// Index of the instruction's first slot (an `ld_imm64` covers this slot
    /// and the next; no line is printed for the second, as llvm-objdump).
    pub index: usize,
    /// The instruction in llvm-objdump's syntax.
    pub text: String,
    /// What the caller's `annotate` said about this slot.
    pub note: Option<String>,
}

impl fmt::Display for DisasmLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:>5}: {}", self.index, self.text)?;
        if let Some(note) = &self.note {
            write!(f, "  ; {note}")?;
        }
        Ok(())
    }
}

/// Disassemble `insns`, one line per instruction (`"   12: r1 = 0 ll"`),
/// followed by `"  ; note"` where `annotate(index)` gives one (e.g. the map a
/// relocation points at, or a helper's name).
pub fn disasm(insns: &[Insn], annotate: impl Fn(usize) -> Option<String>) -> Vec<String> {
    disasm_lines(insns, annotate)
        .iter()
        .map(DisasmLine::to_string)
        .collect()
}

/// Disassemble `insns` into structured lines (see [`disasm`]).
pub fn disasm_lines(insns: &[Insn], annotate: impl Fn(usize) -> Option<String>) -> Vec<DisasmLine> {
    let mut lines = Vec::with_capacity(insns.len());
    let mut index = 0;
    while let Some((text, slots)) = insn_text(insns, index) {
        lines.push(DisasmLine {
            index,
            text,
            note: annotate(index),
        });
        index += slots;
    }
    lines
}

/// The text of the instruction at `index` and how many slots it takes (2 for
/// an `ld_imm64`, else 1); `None` past the end.
pub fn insn_text(insns: &[Insn], index: usize) -> Option<(String, usize)> {
    let insn = insns.get(index)?;
    if insn.is_ld_imm64() {
        return Some(match insns.get(index + 1) {
            Some(next) => (ld_imm64(insn, next), 2),
            None => ("invalid ld_imm64: second slot missing".to_owned(), 1),
        });
    }
    let text = match insn.class() {
        BPF_ALU | BPF_ALU64 => alu(insn),
        BPF_LD => ld_legacy(insn),
        BPF_LDX => ldx(insn),
        BPF_ST => st(insn),
        BPF_STX => stx(insn),
        _ => jmp(insn),
    };
    Some((text.unwrap_or_else(|| invalid(insn)), 1))
}

fn invalid(insn: &Insn) -> String {
    format!(
        "invalid opcode {:#04x} (dst r{}, src r{}, off {}, imm {})",
        insn.code,
        insn.dst(),
        insn.src(),
        insn.off,
        insn.imm
    )
}

/// `(r2 + 8)`, `(r10 - 8)`.
fn mem(base: u8, off: i16) -> String {
    let off = i32::from(off);
    if off >= 0 {
        format!("(r{base} + {off})")
    } else {
        format!("(r{base} - {})", -off)
    }
}

/// `r2 + 8`, as the xchg and cmpxchg forms write the address.
fn addr(base: u8, off: i16) -> String {
    let m = mem(base, off);
    m.trim_start_matches('(').trim_end_matches(')').to_owned()
}

fn size_bits(code: u8) -> u32 {
    match code & 0x18 {
        BPF_W => 32,
        BPF_H => 16,
        BPF_B => 8,
        _ => 64,
    }
}

/// `+3`, `-5`, `+0`, as jump distances print.
fn rel(distance: i32) -> String {
    format!("{distance:+}")
}

fn ld_imm64(insn: &Insn, next: &Insn) -> String {
    let dst = insn.dst();
    let value = insn.imm64(next);
    let (imm, off) = (insn.imm, next.imm);
    match insn.src() {
        0 => format!("r{dst} = {} ll", value as i64),
        BPF_PSEUDO_MAP_FD => format!("r{dst} = map[fd:{imm}] ll"),
        BPF_PSEUDO_MAP_VALUE => format!("r{dst} = map[fd:{imm}][0]+{off} ll"),
        BPF_PSEUDO_BTF_ID => format!("r{dst} = btf_id[{imm}] ll"),
        BPF_PSEUDO_FUNC => format!("r{dst} = func[{}] ll", rel(imm)),
        BPF_PSEUDO_MAP_IDX => format!("r{dst} = map[idx:{imm}] ll"),
        BPF_PSEUDO_MAP_IDX_VALUE => format!("r{dst} = map[idx:{imm}][0]+{off} ll"),
        src => format!("invalid ld_imm64 (src {src}, imm {})", value as i64),
    }
}

fn alu(insn: &Insn) -> Option<String> {
    let is64 = insn.class() == BPF_ALU64;
    let p = if is64 { 'r' } else { 'w' };
    let (dst, src) = (insn.dst(), insn.src());
    let from_reg = insn.code & BPF_X == BPF_X;
    let operand = if from_reg {
        format!("{p}{src}")
    } else {
        insn.imm.to_string()
    };
    let op = insn.code & 0xf0;
    let assign = match op {
        BPF_ADD => "+=",
        BPF_SUB => "-=",
        BPF_MUL => "*=",
        BPF_DIV if insn.off == 1 => "s/=",
        BPF_DIV => "/=",
        BPF_OR => "|=",
        BPF_AND => "&=",
        BPF_LSH => "<<=",
        BPF_RSH => ">>=",
        BPF_MOD if insn.off == 1 => "s%=",
        BPF_MOD => "%=",
        BPF_XOR => "^=",
        BPF_ARSH => "s>>=",
        BPF_NEG => {
            return (!from_reg && insn.off == 0).then(|| format!("{p}{dst} = -{p}{dst}"));
        }
        BPF_MOV => return mov(insn, p, &operand),
        BPF_END => return endian(insn),
        _ => return None,
    };
    let off_ok = insn.off == 0 || (insn.off == 1 && matches!(op, BPF_DIV | BPF_MOD));
    off_ok.then(|| format!("{p}{dst} {assign} {operand}"))
}

fn mov(insn: &Insn, p: char, operand: &str) -> Option<String> {
    let (dst, src) = (insn.dst(), insn.src());
    let is64 = p == 'r';
    if insn.code & BPF_X == 0 {
        return (insn.off == 0).then(|| format!("{p}{dst} = {operand}"));
    }
    match insn.off {
        0 => Some(format!("{p}{dst} = {operand}")),
        8 | 16 => Some(format!("{p}{dst} = (s{}){p}{src}", insn.off)),
        32 if is64 => Some(format!("r{dst} = (s32)r{src}")),
        1 if is64 => Some(format!(
            "r{dst} = addr_space_cast(r{src}, {}, {})",
            (insn.imm as u32) >> 16,
            (insn.imm as u32) & 0xffff
        )),
        _ => None,
    }
}

fn endian(insn: &Insn) -> Option<String> {
    let dst = insn.dst();
    let width = insn.imm;
    if !matches!(width, 16 | 32 | 64) || insn.off != 0 {
        return None;
    }
    let kind = match (insn.class(), insn.code & BPF_X) {
        (BPF_ALU, BPF_TO_BE) => "be",
        (BPF_ALU, _) => "le",
        (_, BPF_TO_LE) => "bswap",
        _ => return None,
    };
    Some(format!("r{dst} = {kind}{width} r{dst}"))
}

/// `BPF_LD` other than `ld_imm64`: the legacy packet loads.
fn ld_legacy(insn: &Insn) -> Option<String> {
    let bits = size_bits(insn.code);
    if bits == 64 {
        return None;
    }
    match insn.code & 0xe0 {
        BPF_ABS => Some(format!("r0 = *(u{bits} *)skb[{}]", insn.imm)),
        BPF_IND if insn.imm == 0 => Some(format!("r0 = *(u{bits} *)skb[r{}]", insn.src())),
        BPF_IND => Some(format!(
            "r0 = *(u{bits} *)skb[r{} + {}]",
            insn.src(),
            insn.imm
        )),
        _ => None,
    }
}

fn ldx(insn: &Insn) -> Option<String> {
    let bits = size_bits(insn.code);
    let (dst, at) = (insn.dst(), mem(insn.src(), insn.off));
    match insn.code & 0xe0 {
        BPF_MEM => Some(format!("r{dst} = *(u{bits} *){at}")),
        BPF_MEMSX if bits < 64 => Some(format!("r{dst} = *(s{bits} *){at}")),
        _ => None,
    }
}

fn st(insn: &Insn) -> Option<String> {
    let bits = size_bits(insn.code);
    (insn.code & 0xe0 == BPF_MEM)
        .then(|| format!("*(u{bits} *){} = {}", mem(insn.dst(), insn.off), insn.imm))
}

fn stx(insn: &Insn) -> Option<String> {
    let bits = size_bits(insn.code);
    let (dst, src, off) = (insn.dst(), insn.src(), insn.off);
    match insn.code & 0xe0 {
        BPF_MEM => Some(format!("*(u{bits} *){} = r{src}", mem(dst, off))),
        BPF_ATOMIC => atomic(insn, bits),
        _ => None,
    }
}

fn atomic(insn: &Insn, bits: u32) -> Option<String> {
    let (dst, src, off) = (insn.dst(), insn.src(), insn.off);
    let p = if bits == 64 { 'r' } else { 'w' };
    let at = mem(dst, off);
    match insn.imm {
        BPF_LOAD_ACQ => {
            return Some(format!(
                "{p}{dst} = load_acquire((u{bits} *){})",
                mem(src, off)
            ))
        }
        BPF_STORE_REL => return Some(format!("store_release((u{bits} *){at}, {p}{src})")),
        _ => {}
    }
    if bits < 32 {
        return None;
    }
    let name = |op: i32| match op {
        0x00 => Some(("+=", "add")),
        0x40 => Some(("|=", "or")),
        0x50 => Some(("&=", "and")),
        0xa0 => Some(("^=", "xor")),
        _ => None,
    };
    let suffix = if bits == 64 { "_64" } else { "32_32" };
    match insn.imm {
        BPF_XCHG => Some(format!(
            "{p}{src} = xchg{suffix}({}, {p}{src})",
            addr(dst, off)
        )),
        BPF_CMPXCHG => Some(format!(
            "{p}0 = cmpxchg{suffix}({}, {p}0, {p}{src})",
            addr(dst, off)
        )),
        imm if imm & BPF_FETCH != 0 => {
            let (_, op) = name(imm & !BPF_FETCH)?;
            Some(format!(
                "{p}{src} = atomic_fetch_{op}((u{bits} *){at}, {p}{src})"
            ))
        }
        imm => {
            let (assign, _) = name(imm)?;
            Some(format!("lock *(u{bits} *){at} {assign} {p}{src}"))
        }
    }
}

fn jmp(insn: &Insn) -> Option<String> {
    let is64 = insn.class() == BPF_JMP;
    let p = if is64 { 'r' } else { 'w' };
    let (dst, src) = (insn.dst(), insn.src());
    let from_reg = insn.code & BPF_X == BPF_X;
    let cmp = match insn.code & 0xf0 {
        BPF_JA if from_reg => return None,
        BPF_JA if is64 => return Some(format!("goto {}", rel(insn.off.into()))),
        BPF_JA => return Some(format!("gotol {}", rel(insn.imm))),
        BPF_CALL if !is64 => return None,
        BPF_CALL if from_reg => return Some(format!("callx r{dst}")),
        BPF_CALL => return Some(format!("call {}", insn.imm)),
        BPF_EXIT if is64 && !from_reg => return Some("exit".to_owned()),
        BPF_JCOND if is64 && !from_reg => {
            return Some(format!("may_goto {}", rel(insn.off.into())))
        }
        BPF_JEQ => "==",
        BPF_JGT => ">",
        BPF_JGE => ">=",
        BPF_JSET => "&",
        BPF_JNE => "!=",
        BPF_JSGT => "s>",
        BPF_JSGE => "s>=",
        BPF_JLT => "<",
        BPF_JLE => "<=",
        BPF_JSLT => "s<",
        BPF_JSLE => "s<=",
        _ => return None,
    };
    let rhs = if from_reg {
        format!("{p}{src}")
    } else {
        insn.imm.to_string()
    };
    Some(format!(
        "if {p}{dst} {cmp} {rhs} goto {}",
        rel(insn.off.into())
    ))
}
