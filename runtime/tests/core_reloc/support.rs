//! Hand-built BTF, instruction helpers, and reading relocated instructions.

use std::sync::Arc;

use skelgen_runtime::btf::ext::{CoreRelo, CoreReloKind};
use skelgen_runtime::btf::Btf;
use skelgen_runtime::co_re::{is_poisoned, relocate_program, CoreError, CoreTarget, RelocStats};
use skelgen_runtime::insn::{
    Insn, BPF_ALU, BPF_ALU64, BPF_EXIT, BPF_JMP, BPF_K, BPF_LDX, BPF_MEM, BPF_MOV, BPF_ST, BPF_STX,
};

pub const SIGNED: u32 = 1 << 24;

#[derive(Clone)]
pub struct BtfBuilder {
    words: Vec<u32>,
    strings: Vec<u8>,
    next_id: u32,
}

impl BtfBuilder {
    pub fn new() -> Self {
        BtfBuilder {
            words: Vec::new(),
            strings: vec![0],
            next_id: 1,
        }
    }

    /// Appends a string (an access string, or a name) and returns its offset.
    pub fn s(&mut self, text: &str) -> u32 {
        if text.is_empty() {
            return 0;
        }
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(text.as_bytes());
        self.strings.push(0);
        off
    }

    pub fn ty(
        &mut self,
        name: &str,
        kind: u32,
        vlen: u32,
        kflag: bool,
        sot: u32,
        rest: &[u32],
    ) -> u32 {
        let name = self.s(name);
        let info = (u32::from(kflag) << 31) | (kind << 24) | vlen;
        self.words.extend_from_slice(&[name, info, sot]);
        self.words.extend_from_slice(rest);
        self.next_id += 1;
        self.next_id - 1
    }

    pub fn int(&mut self, name: &str, size: u32, signed: bool) -> u32 {
        let enc = if signed { SIGNED } else { 0 };
        self.ty(name, 1, 0, false, size, &[enc | (size * 8)])
    }
    pub fn ptr(&mut self, to: u32) -> u32 {
        self.ty("", 2, 0, false, to, &[])
    }
    pub fn array(&mut self, elem: u32, n: u32) -> u32 {
        self.ty("", 3, 0, false, 0, &[elem, elem, n])
    }
    pub fn typedef(&mut self, name: &str, to: u32) -> u32 {
        self.ty(name, 8, 0, false, to, &[])
    }
    /// Members as (name, type, bit offset, bitfield size).
    pub fn composite(
        &mut self,
        kind: u32,
        name: &str,
        size: u32,
        members: &[(&str, u32, u32, u32)],
    ) -> u32 {
        let kflag = members.iter().any(|m| m.3 != 0);
        let mut rest = Vec::new();
        for &(n, ty, off, bits) in members {
            let n = self.s(n);
            rest.extend_from_slice(&[n, ty, if kflag { (bits << 24) | off } else { off }]);
        }
        self.ty(name, kind, members.len() as u32, kflag, size, &rest)
    }
    pub fn strukt(&mut self, name: &str, size: u32, members: &[(&str, u32, u32, u32)]) -> u32 {
        self.composite(4, name, size, members)
    }
    pub fn union(&mut self, name: &str, size: u32, members: &[(&str, u32, u32, u32)]) -> u32 {
        self.composite(5, name, size, members)
    }
    pub fn enum32(&mut self, name: &str, values: &[(&str, i32)]) -> u32 {
        let mut rest = Vec::new();
        for &(n, v) in values {
            let n = self.s(n);
            rest.extend_from_slice(&[n, v as u32]);
        }
        self.ty(name, 6, values.len() as u32, true, 4, &rest)
    }
    pub fn enum64(&mut self, name: &str, values: &[(&str, u64)]) -> u32 {
        let mut rest = Vec::new();
        for &(n, v) in values {
            let n = self.s(n);
            rest.extend_from_slice(&[n, v as u32, (v >> 32) as u32]);
        }
        self.ty(name, 19, values.len() as u32, false, 8, &rest)
    }

    pub fn build(&self) -> Btf {
        let types: Vec<u8> = self.words.iter().flat_map(|w| w.to_le_bytes()).collect();
        let mut out = vec![0x9f, 0xeb, 1, 0];
        let tl = types.len() as u32;
        for w in [24, 0, tl, tl, self.strings.len() as u32] {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(&types);
        out.extend_from_slice(&self.strings);
        Btf::from_vec(out).expect("hand-built BTF parses")
    }
}

pub fn relo(insn: u32, type_id: u32, access_str_off: u32, kind: CoreReloKind) -> CoreRelo {
    CoreRelo {
        insn_off: insn * 8,
        type_id,
        access_str_off,
        kind,
    }
}

/// `r1 = imm` (ALU64 mov with an immediate).
pub fn mov(imm: i32) -> Insn {
    Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, 1, 0, 0, imm)
}
pub fn ldx(size: u8, off: i16) -> Insn {
    Insn::new(BPF_LDX | BPF_MEM | size, 0, 1, off, 0)
}
pub fn exit() -> Insn {
    Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
}

pub fn run(
    local: &Btf,
    target: Btf,
    insns: &mut [Insn],
    relos: &[CoreRelo],
) -> Result<RelocStats, CoreError> {
    relocate_program(
        local,
        &CoreTarget::new(Arc::new(target)),
        "unit",
        insns,
        relos,
    )
}

/// What a relocated instruction now says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    Poison,
    Value(u64),
}

pub fn seen(insns: &[Insn], idx: usize) -> Seen {
    let i = insns[idx];
    if is_poisoned(&i) {
        return Seen::Poison;
    }
    if i.is_ld_imm64() {
        return Seen::Value(i.imm64(&insns[idx + 1]));
    }
    match i.class() {
        BPF_ALU | BPF_ALU64 => Seen::Value(i.imm as i64 as u64),
        BPF_LDX | BPF_ST | BPF_STX => Seen::Value(i.off as i64 as u64),
        _ => panic!("instruction #{idx} is not relocatable: {i:?}"),
    }
}

/// Reads a bitfield as BPF_CORE_READ_BITFIELD does: a little-endian load
/// of `size` bytes at `off`, shifted left then right (arithmetic if signed).
pub fn extract(mem: &[u8], off: u64, size: u64, lshift: u64, rshift: u64, signed: bool) -> u64 {
    let mut v = 0u64;
    for i in 0..size {
        v |= u64::from(mem[(off + i) as usize]) << (8 * i);
    }
    v <<= lshift;
    if signed {
        ((v as i64) >> rshift) as u64
    } else {
        v >> rshift
    }
}

/// A 0xa5-filled buffer with `pattern` written in bits `bit_off..bit_off+bits`.
pub fn with_field(len: usize, bit_off: u64, bits: u32, pattern: u64) -> Vec<u8> {
    let mut mem = vec![0xa5u8; len];
    for b in 0..u64::from(bits) {
        let (byte, bit) = (((bit_off + b) / 8) as usize, (bit_off + b) % 8);
        mem[byte] = (mem[byte] & !(1 << bit)) | ((((pattern >> b) & 1) as u8) << bit);
    }
    mem
}
