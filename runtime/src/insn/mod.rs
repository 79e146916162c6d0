//! BPF instructions: the 8-byte encoding, opcode constants, and a
//! disassembler printing the syntax of llvm-objdump and the verifier.
//!
//! An instruction is `code:8 dst:4 src:4 off:16 imm:32`, little-endian, the
//! byte order of every host this crate runs on (big-endian BPF objects are
//! rejected by the object model before they get here). `BPF_LD | BPF_IMM |
//! BPF_DW` (`ld_imm64`) takes two slots: the second holds the upper 32 bits of
//! the constant in its `imm` and is otherwise zero.

mod disasm;

pub use disasm::{disasm, disasm_lines, insn_text, DisasmLine};

/// Size of one instruction slot in bytes.
pub const INSN_SIZE: usize = 8;

// Instruction classes (`code & 0x07`).
/// Class: non-standard loads (`ld_imm64`, legacy packet loads).
pub const BPF_LD: u8 = 0x00;
/// Class: load into a register.
pub const BPF_LDX: u8 = 0x01;
/// Class: store an immediate.
pub const BPF_ST: u8 = 0x02;
/// Class: store a register, atomics.
pub const BPF_STX: u8 = 0x03;
/// Class: 32-bit arithmetic.
pub const BPF_ALU: u8 = 0x04;
/// Class: 64-bit jumps, calls, exit.
pub const BPF_JMP: u8 = 0x05;
/// Class: 32-bit jumps.
pub const BPF_JMP32: u8 = 0x06;
/// Class: 64-bit arithmetic.
pub const BPF_ALU64: u8 = 0x07;

// Load/store sizes (`code & 0x18`).
/// Size: 32 bits.
pub const BPF_W: u8 = 0x00;
/// Size: 16 bits.
pub const BPF_H: u8 = 0x08;
/// Size: 8 bits.
pub const BPF_B: u8 = 0x10;
/// Size: 64 bits.
pub const BPF_DW: u8 = 0x18;

// Load/store modes (`code & 0xe0`).
/// Mode: immediate (`ld_imm64`).
pub const BPF_IMM: u8 = 0x00;
/// Mode: legacy packet load at an absolute offset.
pub const BPF_ABS: u8 = 0x20;
/// Mode: legacy packet load at a register offset.
pub const BPF_IND: u8 = 0x40;
/// Mode: plain memory access.
pub const BPF_MEM: u8 = 0x60;
/// Mode: sign-extending load (cpu v4).
pub const BPF_MEMSX: u8 = 0x80;
/// Mode: atomic operation, the operation in `imm`.
pub const BPF_ATOMIC: u8 = 0xc0;

// Operand source (`code & 0x08`) for ALU and jumps.
/// Source: the immediate.
pub const BPF_K: u8 = 0x00;
/// Source: the `src` register.
pub const BPF_X: u8 = 0x08;

// ALU operations (`code & 0xf0`).
/// `+=`.
pub const BPF_ADD: u8 = 0x00;
/// `-=`.
pub const BPF_SUB: u8 = 0x10;
/// `*=`.
pub const BPF_MUL: u8 = 0x20;
/// `/=` (`s/=` with `off == 1`).
pub const BPF_DIV: u8 = 0x30;
/// `|=`.
pub const BPF_OR: u8 = 0x40;
/// `&=`.
pub const BPF_AND: u8 = 0x50;
/// `<<=`.
pub const BPF_LSH: u8 = 0x60;
/// `>>=`.
pub const BPF_RSH: u8 = 0x70;
/// Negation.
pub const BPF_NEG: u8 = 0x80;
/// `%=` (`s%=` with `off == 1`).
pub const BPF_MOD: u8 = 0x90;
/// `^=`.
pub const BPF_XOR: u8 = 0xa0;
/// Move (sign-extending with `off` 8/16/32).
pub const BPF_MOV: u8 = 0xb0;
/// `s>>=`.
pub const BPF_ARSH: u8 = 0xc0;
/// Byte swap; the width in `imm`.
pub const BPF_END: u8 = 0xd0;
/// Byte swap source bit: convert to little endian.
pub const BPF_TO_LE: u8 = 0x00;
/// Byte swap source bit: convert to big endian.
pub const BPF_TO_BE: u8 = 0x08;

// Jump operations (`code & 0xf0`).
/// Unconditional jump (`gotol` in class JMP32).
pub const BPF_JA: u8 = 0x00;
/// `==`.
pub const BPF_JEQ: u8 = 0x10;
/// Unsigned `>`.
pub const BPF_JGT: u8 = 0x20;
/// Unsigned `>=`.
pub const BPF_JGE: u8 = 0x30;
/// `&` (jump if any bit set).
pub const BPF_JSET: u8 = 0x40;
/// `!=`.
pub const BPF_JNE: u8 = 0x50;
/// Signed `>`.
pub const BPF_JSGT: u8 = 0x60;
/// Signed `>=`.
pub const BPF_JSGE: u8 = 0x70;
/// Call a helper, a BPF function or a kfunc.
pub const BPF_CALL: u8 = 0x80;
/// Return from the function.
pub const BPF_EXIT: u8 = 0x90;
/// Unsigned `<`.
pub const BPF_JLT: u8 = 0xa0;
/// Unsigned `<=`.
pub const BPF_JLE: u8 = 0xb0;
/// Signed `<`.
pub const BPF_JSLT: u8 = 0xc0;
/// Signed `<=`.
pub const BPF_JSLE: u8 = 0xd0;
/// Conditional pseudo jump (`may_goto`).
pub const BPF_JCOND: u8 = 0xe0;

// Atomic operations (`imm` of a `BPF_STX | BPF_ATOMIC` instruction).
/// Flag: the old value is returned in `src`.
pub const BPF_FETCH: i32 = 0x01;
/// Exchange (always fetches).
pub const BPF_XCHG: i32 = 0xe0 | BPF_FETCH;
/// Compare with `r0` and exchange (always fetches into `r0`).
pub const BPF_CMPXCHG: i32 = 0xf0 | BPF_FETCH;
/// Load-acquire.
pub const BPF_LOAD_ACQ: i32 = 0x100;
/// Store-release.
pub const BPF_STORE_REL: i32 = 0x110;

// `src` of an `ld_imm64`: what the constant means.
/// `imm` is a map fd.
pub const BPF_PSEUDO_MAP_FD: u8 = 1;
/// `imm` is a map fd, the second slot's `imm` an offset into its value.
pub const BPF_PSEUDO_MAP_VALUE: u8 = 2;
/// `imm` is a kernel BTF id of a variable (ksym).
pub const BPF_PSEUDO_BTF_ID: u8 = 3;
/// `imm` is the instruction offset of a BPF function (callback).
pub const BPF_PSEUDO_FUNC: u8 = 4;
/// `imm` is an index into the `fd_array` of `BPF_PROG_LOAD`.
pub const BPF_PSEUDO_MAP_IDX: u8 = 5;
/// As [`BPF_PSEUDO_MAP_IDX`], pointing into the map's value.
pub const BPF_PSEUDO_MAP_IDX_VALUE: u8 = 6;

// `src` of a `call`.
/// `imm` is the instruction offset of a BPF function (bpf-to-bpf call).
pub const BPF_PSEUDO_CALL: u8 = 1;
/// `imm` is the BTF id of a kernel function.
pub const BPF_PSEUDO_KFUNC_CALL: u8 = 2;

/// The frame pointer register, read-only.
pub const BPF_REG_FP: u8 = 10;

/// An error decoding instructions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InsnError {
    /// The byte length is not a whole number of instructions.
    #[error("instruction bytes: length {len} is not a multiple of 8 (trailing {trailing} bytes)")]
    BadLength {
        /// The length given.
        len: usize,
        /// The bytes past the last whole instruction.
        trailing: usize,
    },
}

/// One BPF instruction slot, laid out as the kernel's `struct bpf_insn`.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Insn {
    /// Opcode: class, and size/mode or operation/source.
    pub code: u8,
    /// `dst` in the low nibble, `src` in the high nibble.
    regs: u8,
    /// Signed offset: memory displacement or jump distance.
    pub off: i16,
    /// Signed immediate.
    pub imm: i32,
}

const _: () = assert!(std::mem::size_of::<Insn>() == INSN_SIZE);

impl Insn {
    /// An instruction from its fields; registers are taken modulo 16.
    pub const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            regs: (dst & 0x0f) | ((src & 0x0f) << 4),
            off,
            imm,
        }
    }

    /// The two slots of `ld_imm64 dst, imm64` with `src` saying what the
    /// constant is (0 for a plain number, else a `BPF_PSEUDO_*` kind).
    pub const fn ld_imm64(dst: u8, src: u8, imm64: u64) -> [Insn; 2] {
        [
            Insn::new(BPF_LD | BPF_IMM | BPF_DW, dst, src, 0, imm64 as u32 as i32),
            Insn::new(0, 0, 0, 0, (imm64 >> 32) as u32 as i32),
        ]
    }

    /// The destination register.
    pub const fn dst(&self) -> u8 {
        self.regs & 0x0f
    }

    /// The source register.
    pub const fn src(&self) -> u8 {
        self.regs >> 4
    }

    /// Set the destination register (modulo 16).
    pub fn set_dst(&mut self, dst: u8) {
        self.regs = (self.regs & 0xf0) | (dst & 0x0f);
    }

    /// Set the source register (modulo 16).
    pub fn set_src(&mut self, src: u8) {
        self.regs = (self.regs & 0x0f) | ((src & 0x0f) << 4);
    }

    /// The class (`code & 0x07`).
    pub const fn class(&self) -> u8 {
        self.code & 0x07
    }

    /// Decode one slot from its 8 little-endian bytes.
    pub const fn from_le_bytes(b: [u8; 8]) -> Insn {
        Insn {
            code: b[0],
            regs: b[1],
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    /// Encode one slot as 8 little-endian bytes.
    pub const fn to_le_bytes(&self) -> [u8; 8] {
        let off = self.off.to_le_bytes();
        let imm = self.imm.to_le_bytes();
        [
            self.code, self.regs, off[0], off[1], imm[0], imm[1], imm[2], imm[3],
        ]
    }

    /// Decode a section's bytes into instruction slots.
    pub fn from_bytes(bytes: &[u8]) -> Result<Vec<Insn>, InsnError> {
        let chunks = bytes.chunks_exact(INSN_SIZE);
        let trailing = chunks.remainder().len();
        if trailing != 0 {
            return Err(InsnError::BadLength {
                len: bytes.len(),
                trailing,
            });
        }
        Ok(chunks
            .map(|c| {
                let mut b = [0u8; INSN_SIZE];
                b.copy_from_slice(c);
                Insn::from_le_bytes(b)
            })
            .collect())
    }

    /// Encode instruction slots as bytes, as `BPF_PROG_LOAD` takes them.
    pub fn to_bytes(insns: &[Insn]) -> Vec<u8> {
        insns.iter().flat_map(Insn::to_le_bytes).collect()
    }

    /// Whether this is the first slot of a two-slot `ld_imm64`.
    pub const fn is_ld_imm64(&self) -> bool {
        self.code == BPF_LD | BPF_IMM | BPF_DW
    }

    /// The 64-bit constant of an `ld_imm64` from its two slots.
    pub const fn imm64(&self, next: &Insn) -> u64 {
        (self.imm as u32 as u64) | ((next.imm as u32 as u64) << 32)
    }

    /// Whether this is a `call` of any kind (helper, BPF function, kfunc).
    pub const fn is_call(&self) -> bool {
        self.code == BPF_JMP | BPF_CALL | BPF_K
    }

    /// Whether this is a call of a BPF function (bpf-to-bpf, `imm` is the
    /// distance in slots from the next instruction).
    pub const fn is_pseudo_call(&self) -> bool {
        self.is_call() && self.src() == BPF_PSEUDO_CALL
    }

    /// Whether this is a call of a kernel function by BTF id.
    pub const fn is_kfunc_call(&self) -> bool {
        self.is_call() && self.src() == BPF_PSEUDO_KFUNC_CALL
    }

    /// Whether this is a call of a helper by number.
    pub const fn is_helper_call(&self) -> bool {
        self.is_call() && self.src() == 0
    }

    /// Whether this is an `ld_imm64` of a BPF function's address (callback).
    pub const fn is_pseudo_func(&self) -> bool {
        self.is_ld_imm64() && self.src() == BPF_PSEUDO_FUNC
    }

    /// Whether this is `exit`.
    pub const fn is_exit(&self) -> bool {
        self.code == BPF_JMP | BPF_EXIT
    }
}

impl std::fmt::Debug for Insn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Insn {{ code: {:#04x}, dst: r{}, src: r{}, off: {}, imm: {} }}",
            self.code,
            self.dst(),
            self.src(),
            self.off,
            self.imm
        )
    }
}
