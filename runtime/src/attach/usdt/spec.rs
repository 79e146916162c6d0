//! USDT argument specs: the x86-64 argument strings of stapsdt notes
//! (`-4@%edi 8@-8(%rbp) -4@$5`) as the `struct __bpf_usdt_spec` that
//! `bpf_usdt_arg()` reads.

use object::elf;

use super::{UsdtError, USDT_MAX_ARGS, USDT_SPEC_SIZE};

/// `sizeof(struct __bpf_usdt_arg_spec)`.
const ARG_SPEC_SIZE: usize = 16;
/// `offsetof(struct __bpf_usdt_spec, usdt_cookie)`.
const COOKIE_OFFSET: usize = ARG_SPEC_SIZE * USDT_MAX_ARGS;
/// `offsetof(struct __bpf_usdt_spec, arg_cnt)`.
const ARG_CNT_OFFSET: usize = COOKIE_OFFSET + 8;

/// Where a USDT argument is (`enum __bpf_usdt_arg_type` and its operands).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UsdtArgLocation {
    /// A constant (`-4@$5`).
    Const(i64),
    /// A register (`8@%rax`): its byte offset in `struct pt_regs`.
    Reg {
        /// `offsetof(struct pt_regs, reg)`.
        reg_off: u16,
    },
    /// Memory at a register plus an offset (`-4@-20(%rbp)`).
    RegDeref {
        /// `offsetof(struct pt_regs, reg)`.
        reg_off: u16,
        /// Bytes added to the register.
        offset: i64,
    },
}

/// One USDT argument: where it is, its size and signedness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UsdtArg {
    /// Where.
    pub location: UsdtArgLocation,
    /// Size in bytes: 1, 2, 4 or 8.
    pub size: u8,
    /// Sign-extended (a negative size in the note).
    pub signed: bool,
}

impl UsdtArg {
    /// `arg_bitshift`: the bits above the argument, cleared or sign-extended
    /// (0 for sizes of 8 bytes or more).
    pub fn bitshift(&self) -> u8 {
        64u8.saturating_sub(self.size.saturating_mul(8))
    }

    /// `struct __bpf_usdt_arg_spec` in native byte order.
    fn to_bytes(self) -> [u8; ARG_SPEC_SIZE] {
        let (val_off, arg_type, reg_off): (u64, u32, u16) = match self.location {
            UsdtArgLocation::Const(v) => (v as u64, 0, 0),
            UsdtArgLocation::Reg { reg_off } => (0, 1, reg_off),
            UsdtArgLocation::RegDeref { reg_off, offset } => (offset as u64, 2, reg_off),
        };
        let mut out = [0u8; ARG_SPEC_SIZE];
        out[0..8].copy_from_slice(&val_off.to_ne_bytes());
        out[8..12].copy_from_slice(&arg_type.to_ne_bytes());
        out[12..14].copy_from_slice(&reg_off.to_ne_bytes());
        out[14] = u8::from(self.signed);
        out[15] = self.bitshift();
        out
    }
}

/// What `bpf_usdt_arg()` needs for one probe site: `struct __bpf_usdt_spec`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UsdtSpec {
    /// The arguments, at most [`USDT_MAX_ARGS`].
    pub args: Vec<UsdtArg>,
    /// What `bpf_usdt_cookie()` returns.
    pub cookie: u64,
}

impl UsdtSpec {
    /// Parse the argument string of a note of ELF machine `machine` (only
    /// x86-64, `EM_X86_64` = 62, is supported): space-separated
    /// `size@location`, with a negative size for signed values, and
    /// locations `$imm`, `%reg`, `off(%reg)` or `(%reg)`.
    pub fn parse(machine: u16, args: &str, cookie: u64) -> Result<UsdtSpec, UsdtError> {
        if machine != elf::EM_X86_64 {
            return Err(UsdtError::Machine { machine });
        }
        let tokens: Vec<&str> = args.split_ascii_whitespace().collect();
        if tokens.len() > USDT_MAX_ARGS {
            return Err(UsdtError::TooManyArgs {
                count: tokens.len(),
            });
        }
        let args = tokens
            .iter()
            .enumerate()
            .map(|(index, text)| {
                parse_x86_64_arg(text).map_err(|reason| UsdtError::Arg {
                    index,
                    arg: clip(text, 64),
                    reason,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(UsdtSpec { args, cookie })
    }

    /// The `__bpf_usdt_specs` value: `struct __bpf_usdt_spec` in native
    /// byte order.
    pub fn to_bytes(&self) -> [u8; USDT_SPEC_SIZE] {
        let mut out = [0u8; USDT_SPEC_SIZE];
        for (slot, arg) in out
            .chunks_exact_mut(ARG_SPEC_SIZE)
            .zip(self.args.iter().take(USDT_MAX_ARGS))
        {
            slot.copy_from_slice(&arg.to_bytes());
        }
        out[COOKIE_OFFSET..COOKIE_OFFSET + 8].copy_from_slice(&self.cookie.to_ne_bytes());
        let count = self.args.len().min(USDT_MAX_ARGS) as u16;
        out[ARG_CNT_OFFSET..ARG_CNT_OFFSET + 2].copy_from_slice(&count.to_ne_bytes());
        out
    }
}

fn parse_x86_64_arg(text: &str) -> Result<UsdtArg, String> {
    let (size_text, location) = text
        .split_once('@')
        .ok_or("expected size@location (`-4@%edi`)")?;
    let size: i32 = size_text
        .parse()
        .map_err(|_| format!("size {size_text:?} is not a number"))?;
    let (size, signed) = match size {
        1 | 2 | 4 | 8 => (size as u8, false),
        -1 | -2 | -4 | -8 => (size.unsigned_abs() as u8, true),
        _ => return Err(format!("size {size} is not one of ±1, ±2, ±4, ±8")),
    };
    let location = if let Some(imm) = location.strip_prefix('$') {
        UsdtArgLocation::Const(parse_int(imm).ok_or_else(|| {
            format!(
                "constant {imm:?} is not a decimal integer (symbolic constants are not supported)"
            )
        })?)
    } else if let Some(reg) = location.strip_prefix('%') {
        UsdtArgLocation::Reg {
            reg_off: x86_64_reg_offset(reg)?,
        }
    } else if let Some((offset_text, rest)) = location.split_once('(') {
        let inner = rest
            .strip_suffix(')')
            .ok_or("memory operand without a closing ')'")?;
        if inner.contains(',') {
            return Err("indexed memory operands (base,index,scale) are not supported".to_owned());
        }
        let reg = inner
            .strip_prefix('%')
            .ok_or("expected a register (`%rbp`) in the memory operand")?;
        let reg_off = x86_64_reg_offset(reg)?;
        let offset = if offset_text.is_empty() {
            0
        } else {
            parse_int(offset_text).ok_or_else(|| {
                format!(
                    "offset {offset_text:?} is not a decimal integer (symbol-relative \
                     operands such as `var(%rip)` are not supported)"
                )
            })?
        };
        UsdtArgLocation::RegDeref { reg_off, offset }
    } else {
        return Err("expected `$imm`, `%reg`, `off(%reg)` or `(%reg)` after '@'".to_owned());
    };
    Ok(UsdtArg {
        location,
        size,
        signed,
    })
}

/// `text` cut to at most `max` bytes on a character boundary.
fn clip(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default().to_owned()
}

/// A decimal integer with an optional sign; values above `i64::MAX` (as
/// written for unsigned 64-bit constants) wrap.
fn parse_int(text: &str) -> Option<i64> {
    text.parse::<i64>()
        .ok()
        .or_else(|| text.parse::<u64>().ok().map(|v| v as i64))
}

/// `offsetof(struct pt_regs, reg)` of an x86-64 register or sub-register.
fn x86_64_reg_offset(reg: &str) -> Result<u16, String> {
    // The uapi x86-64 `struct pt_regs`, in order, 8 bytes each.
    const REGS: [(u16, &[&str]); 19] = [
        (0, &["r15", "r15d", "r15w", "r15b"]),
        (8, &["r14", "r14d", "r14w", "r14b"]),
        (16, &["r13", "r13d", "r13w", "r13b"]),
        (24, &["r12", "r12d", "r12w", "r12b"]),
        (32, &["rbp", "ebp", "bp", "bpl"]),
        (40, &["rbx", "ebx", "bx", "bl"]),
        (48, &["r11", "r11d", "r11w", "r11b"]),
        (56, &["r10", "r10d", "r10w", "r10b"]),
        (64, &["r9", "r9d", "r9w", "r9b"]),
        (72, &["r8", "r8d", "r8w", "r8b"]),
        (80, &["rax", "eax", "ax", "al"]),
        (88, &["rcx", "ecx", "cx", "cl"]),
        (96, &["rdx", "edx", "dx", "dl"]),
        (104, &["rsi", "esi", "si", "sil"]),
        (112, &["rdi", "edi", "di", "dil"]),
        // 120 is orig_rax, which no operand names.
        (128, &["rip", "eip", "ip"]),
        (136, &["cs"]),
        (144, &["eflags", "rflags", "flags"]),
        (152, &["rsp", "esp", "sp", "spl"]),
    ];
    REGS.iter()
        .find(|(_, names)| names.contains(&reg))
        .map(|(off, _)| *off)
        .ok_or_else(|| match reg {
            "ah" | "bh" | "ch" | "dh" => {
                format!("high-byte register %{reg} is not supported")
            }
            _ => format!("unknown x86-64 register %{reg}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_layout_matches_usdt_bpf_h() {
        let spec = UsdtSpec::parse(elf::EM_X86_64, "-4@%edi 8@-8(%rbp) 2@$7", 0xc0ffee).unwrap();
        let b = spec.to_bytes();
        // args[0]: REG rdi (112), signed, shift 32.
        assert_eq!(&b[8..12], &1u32.to_ne_bytes());
        assert_eq!(&b[12..14], &112u16.to_ne_bytes());
        assert_eq!((b[14], b[15]), (1, 32));
        // args[1]: REG_DEREF rbp (32), offset -8.
        assert_eq!(&b[16..24], &(-8i64 as u64).to_ne_bytes());
        assert_eq!(&b[24..28], &2u32.to_ne_bytes());
        assert_eq!(&b[28..30], &32u16.to_ne_bytes());
        assert_eq!((b[30], b[31]), (0, 0));
        // args[2]: CONST 7, unsigned, shift 48.
        assert_eq!(&b[32..40], &7u64.to_ne_bytes());
        assert_eq!((b[46], b[47]), (0, 48));
        assert_eq!(&b[192..200], &0xc0ffee_u64.to_ne_bytes());
        assert_eq!(&b[200..202], &3u16.to_ne_bytes());
    }
}
