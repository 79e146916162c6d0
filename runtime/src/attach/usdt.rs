//! USDT (user statically defined tracing) probes, compatible with libbpf's
//! `<bpf/usdt.bpf.h>`: the BPF side reads its arguments through
//! `bpf_usdt_arg()`, which finds a `struct __bpf_usdt_spec` in the
//! `__bpf_usdt_specs` array map by a spec id — the BPF cookie of the probe,
//! or on kernels without cookies the `__bpf_usdt_ip_to_spec_id` entry of the
//! probe's address. This module fills those maps and attaches one uprobe per
//! probe site.
//!
//! The steps, each public so that tools can list probes:
//! [`parse_usdt_notes`] reads the `.note.stapsdt` notes of a binary (probe
//! address and file offset, semaphore, argument string);
//! [`UsdtSpec::parse`] turns an x86-64 argument string (`-4@%edi
//! 8@-8(%rbp) -4@$5`) into what `bpf_usdt_arg()` reads, and
//! [`UsdtSpec::to_bytes`] lays it out as the 208-byte map value;
//! [`attach_usdt`] does it all and returns one [`Link`] for every site.
//!
//! A USDT link is a multi-probe [`Link`] ([`Link::parts`] lists the uprobe
//! of each site). Dropping it detaches every uprobe, then frees its spec ids
//! (ids are allocated per specs map, process-wide) and removes its
//! `ip_to_spec_id` entries; the spec values stay in the map.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use log::warn;
use object::elf;
use object::read::elf::{FileHeader, ProgramHeader, SectionHeader};
use object::{Endianness, FileKind};

use super::error::{AttachError, Ctx};
use super::link::{Inner, Link};
use super::tracefs::ProbeKind;
use super::{resolve_binary, ProbeMode};
use crate::sys::{self, attach_type, elem_flags, map_type, LinkCreate, LinkExtra, LinkTarget};
use crate::sys::{MapFd, PerfEventAttr};

/// `BPF_USDT_MAX_ARG_CNT` of `<bpf/usdt.bpf.h>`.
pub const USDT_MAX_ARGS: usize = 12;
/// `sizeof(struct __bpf_usdt_spec)`: the value size of `__bpf_usdt_specs`.
pub const USDT_SPEC_SIZE: usize = 208;
/// `sizeof(struct __bpf_usdt_arg_spec)`.
const ARG_SPEC_SIZE: usize = 16;
/// `offsetof(struct __bpf_usdt_spec, usdt_cookie)`.
const COOKIE_OFFSET: usize = ARG_SPEC_SIZE * USDT_MAX_ARGS;
/// `offsetof(struct __bpf_usdt_spec, arg_cnt)`.
const ARG_CNT_OFFSET: usize = COOKIE_OFFSET + 8;

/// The note type of SystemTap probe descriptors (`NT_STAPSDT`).
const NT_STAPSDT: u32 = 3;

/// An error reading USDT notes or argument specs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsdtError {
    /// The file is not an ELF file the notes can be read from.
    #[error("malformed ELF: {reason}")]
    Elf {
        /// What is wrong.
        reason: String,
    },
    /// A `.note.stapsdt` note is malformed.
    #[error(".note.stapsdt note at section offset {offset:#x}: {reason}")]
    Note {
        /// Byte offset of the note in `.note.stapsdt`.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// An address of a note lies in no `PT_LOAD` segment that can hold it.
    #[error("USDT {provider}:{name}: {what} address {addr:#x} {reason}")]
    Address {
        /// Provider of the probe.
        provider: String,
        /// Name of the probe.
        name: String,
        /// `probe` or `semaphore`.
        what: &'static str,
        /// The address.
        addr: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// An argument of an argument string cannot be understood.
    #[error("USDT argument #{index} {arg:?}: {reason}")]
    Arg {
        /// 0-based position in the argument string.
        index: usize,
        /// The argument as written in the note (cut to 64 bytes).
        arg: String,
        /// What was expected.
        reason: String,
    },
    /// More arguments than `<bpf/usdt.bpf.h>` can hold.
    #[error("USDT argument string has {count} arguments, at most {USDT_MAX_ARGS} are supported")]
    TooManyArgs {
        /// How many there are.
        count: usize,
    },
    /// Argument specs of this machine are not supported.
    #[error("USDT arguments of ELF machine {machine} are not supported (only x86-64)")]
    Machine {
        /// `e_machine`.
        machine: u16,
    },
}

/// One USDT probe site, from a `.note.stapsdt` note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsdtNote {
    /// Provider (`skelgen` of `skelgen:one`).
    pub provider: String,
    /// Probe name.
    pub name: String,
    /// Virtual address of the probe, adjusted for prelinking (by the
    /// difference between `.stapsdt.base`'s address and the note's base).
    pub addr: u64,
    /// File offset of the probe: where the uprobe goes.
    pub file_offset: u64,
    /// Virtual address of the semaphore (0: none).
    pub semaphore_addr: u64,
    /// File offset of the semaphore: the uprobe's `ref_ctr_offset` (0: none).
    pub semaphore_offset: u64,
    /// The argument string (`-4@%edi 8@-8(%rbp)`).
    pub args: String,
}

/// The USDT probe sites of a binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsdtNotes {
    /// `e_machine` (62: x86-64).
    pub machine: u16,
    /// `ET_DYN` (a shared library or position-independent executable, whose
    /// run-time addresses depend on where it is mapped), not `ET_EXEC`.
    pub position_independent: bool,
    /// Every note, in file order.
    pub notes: Vec<UsdtNote>,
}

/// Read the `.note.stapsdt` notes of ELF file `data`. A file without the
/// section has no probes (an empty list, not an error).
pub fn parse_usdt_notes(data: &[u8]) -> Result<UsdtNotes, UsdtError> {
    match FileKind::parse(data) {
        Ok(FileKind::Elf64) => notes::<elf::FileHeader64<Endianness>>(data, 8),
        Ok(FileKind::Elf32) => notes::<elf::FileHeader32<Endianness>>(data, 4),
        Ok(other) => Err(UsdtError::Elf {
            reason: format!("not an ELF file ({other:?})"),
        }),
        Err(e) => Err(UsdtError::Elf {
            reason: format!("not an ELF file ({e})"),
        }),
    }
}

/// A `PT_LOAD` segment.
#[derive(Debug, Clone, Copy)]
struct Segment {
    vaddr: u64,
    memsz: u64,
    offset: u64,
    exec: bool,
}

impl Segment {
    fn contains(&self, addr: u64) -> bool {
        addr >= self.vaddr && addr - self.vaddr < self.memsz
    }
}

fn notes<Elf: FileHeader<Endian = Endianness>>(
    data: &[u8],
    addr_size: usize,
) -> Result<UsdtNotes, UsdtError> {
    let bad = |what: &str, e: object::read::Error| UsdtError::Elf {
        reason: format!("{what}: {e}"),
    };
    let header = Elf::parse(data).map_err(|e| bad("header", e))?;
    let endian = header.endian().map_err(|e| bad("header", e))?;
    let machine = header.e_machine(endian);
    let position_independent = header.e_type(endian) == elf::ET_DYN;
    let sections = header
        .sections(endian, data)
        .map_err(|e| bad("section headers", e))?;
    let segments: Vec<Segment> = header
        .program_headers(endian, data)
        .map_err(|e| bad("program headers", e))?
        .iter()
        .filter(|ph| ph.p_type(endian) == elf::PT_LOAD)
        .map(|ph| Segment {
            vaddr: ph.p_vaddr(endian).into(),
            memsz: ph.p_memsz(endian).into(),
            offset: ph.p_offset(endian).into(),
            exec: ph.p_flags(endian) & elf::PF_X != 0,
        })
        .collect();

    let base_section = sections
        .section_by_name(endian, b".stapsdt.base")
        .map(|(_, sh)| sh.sh_addr(endian).into());
    let Some((_, note_section)) = sections.section_by_name(endian, b".note.stapsdt") else {
        return Ok(UsdtNotes {
            machine,
            position_independent,
            notes: Vec::new(),
        });
    };
    if note_section.sh_type(endian) != elf::SHT_NOTE {
        return Err(UsdtError::Elf {
            reason: format!(
                ".note.stapsdt has section type {}, expected SHT_NOTE",
                note_section.sh_type(endian)
            ),
        });
    }
    let bytes = note_section
        .data(endian, data)
        .map_err(|e| bad(".note.stapsdt data", e))?;
    let align = usize::try_from(note_section.sh_addralign(endian).into()).unwrap_or(4);
    let mut out = Vec::new();
    for raw in RawNotes::new(bytes, endian, align.max(4)) {
        let raw = raw?;
        if raw.kind != NT_STAPSDT || raw.owner != b"stapsdt" {
            continue;
        }
        let desc = parse_desc(raw.desc, addr_size, endian).map_err(|reason| UsdtError::Note {
            offset: raw.offset as u64,
            reason,
        })?;
        out.push(locate(desc, base_section, &segments)?);
    }
    Ok(UsdtNotes {
        machine,
        position_independent,
        notes: out,
    })
}

/// One ELF note, before its descriptor is read.
struct RawNote<'a> {
    offset: usize,
    kind: u32,
    owner: &'a [u8],
    desc: &'a [u8],
}

/// The notes of a note section: `namesz`, `descsz`, `type`, then the name
/// and the descriptor, each padded to `align` (4 for stapsdt notes).
struct RawNotes<'a> {
    bytes: &'a [u8],
    pos: usize,
    endian: Endianness,
    align: usize,
}

impl<'a> RawNotes<'a> {
    fn new(bytes: &'a [u8], endian: Endianness, align: usize) -> Self {
        RawNotes {
            bytes,
            pos: 0,
            endian,
            align,
        }
    }

    fn word(&self, at: usize) -> Option<u32> {
        let b: [u8; 4] = self.bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(match self.endian {
            Endianness::Little => u32::from_le_bytes(b),
            Endianness::Big => u32::from_be_bytes(b),
        })
    }

    fn next_note(&mut self) -> Result<RawNote<'a>, String> {
        let start = self.pos;
        let header = |i: usize| {
            self.word(start + 4 * i)
                .ok_or_else(|| "truncated note header (12 bytes expected)".to_owned())
        };
        let (namesz, descsz, kind) = (header(0)? as usize, header(1)? as usize, header(2)?);
        let pad = |n: usize| n.checked_next_multiple_of(self.align);
        let name_at = start + 12;
        let desc_at = pad(namesz)
            .and_then(|n| name_at.checked_add(n))
            .ok_or("name size overflows")?;
        let end = pad(descsz)
            .and_then(|n| desc_at.checked_add(n))
            .ok_or("descriptor size overflows")?;
        let name = self
            .bytes
            .get(name_at..name_at.saturating_add(namesz))
            .ok_or_else(|| format!("name of {namesz} bytes runs past the section"))?;
        let desc = self
            .bytes
            .get(desc_at..desc_at.saturating_add(descsz))
            .ok_or_else(|| format!("descriptor of {descsz} bytes runs past the section"))?;
        // The last descriptor's padding may be missing.
        self.pos = end.min(self.bytes.len());
        let owner = name.strip_suffix(b"\0").unwrap_or(name);
        Ok(RawNote {
            offset: start,
            kind,
            owner,
            desc,
        })
    }
}

impl<'a> Iterator for RawNotes<'a> {
    type Item = Result<RawNote<'a>, UsdtError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.bytes.len() {
            return None;
        }
        let offset = self.pos;
        Some(self.next_note().map_err(|reason| {
            // Stop after the first malformed note: its sizes cannot be trusted.
            self.pos = self.bytes.len();
            UsdtError::Note {
                offset: offset as u64,
                reason,
            }
        }))
    }
}

/// The fields of a stapsdt descriptor, addresses as written.
struct Desc {
    pc: u64,
    base: u64,
    semaphore: u64,
    provider: String,
    name: String,
    args: String,
}

fn parse_desc(desc: &[u8], addr_size: usize, endian: Endianness) -> Result<Desc, String> {
    let addr = |i: usize| -> Result<u64, String> {
        let bytes = desc
            .get(i * addr_size..(i + 1) * addr_size)
            .ok_or_else(|| {
                format!(
                    "descriptor of {} bytes is too short for 3 addresses of {addr_size} bytes",
                    desc.len()
                )
            })?;
        let mut buf = [0u8; 8];
        Ok(match endian {
            Endianness::Little => {
                buf.get_mut(..addr_size)
                    .ok_or("bad address size")?
                    .copy_from_slice(bytes);
                u64::from_le_bytes(buf)
            }
            Endianness::Big => {
                buf.get_mut(8 - addr_size..)
                    .ok_or("bad address size")?
                    .copy_from_slice(bytes);
                u64::from_be_bytes(buf)
            }
        })
    };
    let (pc, base, semaphore) = (addr(0)?, addr(1)?, addr(2)?);
    let mut strings = desc.get(3 * addr_size..).unwrap_or_default();
    let mut next = |what: &str| -> Result<String, String> {
        let nul = strings
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| format!("{what} string has no NUL terminator"))?;
        let (text, rest) = strings.split_at(nul);
        strings = rest.get(1..).unwrap_or_default();
        Ok(String::from_utf8_lossy(text).into_owned())
    };
    let provider = next("provider")?;
    let name = next("name")?;
    let args = next("argument")?;
    if provider.is_empty() || name.is_empty() {
        return Err("empty provider or probe name".to_owned());
    }
    Ok(Desc {
        pc,
        base,
        semaphore,
        provider,
        name,
        args,
    })
}

/// Adjust the probe address for prelinking (as libbpf: by `.stapsdt.base`'s
/// address minus the note's base) and turn addresses into file offsets.
fn locate(
    desc: Desc,
    base_section: Option<u64>,
    segments: &[Segment],
) -> Result<UsdtNote, UsdtError> {
    let addr = match base_section {
        Some(base) if desc.base != 0 => desc.pc.wrapping_add(base.wrapping_sub(desc.base)),
        _ => desc.pc,
    };
    let err = |what: &'static str, addr: u64, reason: &'static str| UsdtError::Address {
        provider: desc.provider.clone(),
        name: desc.name.clone(),
        what,
        addr,
        reason,
    };
    let file_offset = match segments.iter().find(|s| s.contains(addr)) {
        None => return Err(err("probe", addr, "is in no PT_LOAD segment")),
        Some(seg) if !seg.exec => {
            return Err(err(
                "probe",
                addr,
                "is in a PT_LOAD segment that is not executable",
            ))
        }
        Some(seg) => (addr - seg.vaddr)
            .checked_add(seg.offset)
            .ok_or_else(|| err("probe", addr, "has a file offset past 2^64"))?,
    };
    let semaphore_offset = if desc.semaphore == 0 {
        0
    } else {
        let seg = segments
            .iter()
            .find(|s| s.contains(desc.semaphore))
            .ok_or_else(|| err("semaphore", desc.semaphore, "is in no PT_LOAD segment"))?;
        (desc.semaphore - seg.vaddr)
            .checked_add(seg.offset)
            .ok_or_else(|| err("semaphore", desc.semaphore, "has a file offset past 2^64"))?
    };
    Ok(UsdtNote {
        addr,
        file_offset,
        semaphore_addr: desc.semaphore,
        semaphore_offset,
        provider: desc.provider,
        name: desc.name,
        args: desc.args,
    })
}

// ---------------------------------------------------------------------------
// argument specs

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

// ---------------------------------------------------------------------------
// spec ids

/// The spec ids in use, per specs map (by kernel map id), process-wide.
static SPEC_IDS: Mutex<BTreeMap<u32, BTreeSet<u32>>> = Mutex::new(BTreeMap::new());

/// The spec ids and `ip_to_spec_id` entries of one USDT link, given back when
/// it is dropped (after its uprobes are gone).
#[derive(Debug)]
struct SpecLease {
    map_id: u32,
    ids: Vec<u32>,
    ip_map: Option<MapFd>,
    ips: Vec<u64>,
}

impl SpecLease {
    /// `count` free ids below `max_entries` of specs map `map_id`.
    fn allocate(map_id: u32, count: usize, max_entries: u32) -> Option<SpecLease> {
        let mut all = SPEC_IDS.lock().unwrap_or_else(|e| e.into_inner());
        let used = all.entry(map_id).or_default();
        let ids: Vec<u32> = (0..max_entries)
            .filter(|id| !used.contains(id))
            .take(count)
            .collect();
        if ids.len() < count {
            return None;
        }
        used.extend(ids.iter().copied());
        Some(SpecLease {
            map_id,
            ids,
            ip_map: None,
            ips: Vec::new(),
        })
    }
}

impl Drop for SpecLease {
    fn drop(&mut self) {
        if let Some(map) = &self.ip_map {
            for ip in &self.ips {
                if let Err(e) = map.delete(&ip.to_ne_bytes()) {
                    warn!("USDT: removing ip_to_spec_id entry {ip:#x}: {e}");
                }
            }
        }
        let mut all = SPEC_IDS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(used) = all.get_mut(&self.map_id) {
            for id in &self.ids {
                used.remove(id);
            }
            if used.is_empty() {
                all.remove(&self.map_id);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// attaching

/// The maps of `<bpf/usdt.bpf.h>` a skeleton passes to
/// [`auto_attach_with`](super::auto_attach_with) for its `usdt/...` programs.
#[derive(Debug, Clone, Copy, Default)]
pub struct AttachContext<'a> {
    /// The object's `__bpf_usdt_specs` map.
    pub usdt_specs: Option<&'a MapFd>,
    /// The object's `__bpf_usdt_ip_to_spec_id` map (needed only on kernels
    /// without BPF cookies, before 5.15).
    pub usdt_ip_to_id: Option<&'a MapFd>,
}

/// Attach a USDT program (`SEC("usdt")`, using `<bpf/usdt.bpf.h>`) to every
/// probe site `provider:name` of `binary` (a path, or a name searched as
/// [`resolve_binary`] does), for process `pid` or every process.
///
/// `specs` is the object's `__bpf_usdt_specs` map and `ip_to_id` its
/// `__bpf_usdt_ip_to_spec_id` map; `cookie` is what `bpf_usdt_cookie()`
/// returns. Each site gets a spec (identical ones share an id) and a uprobe
/// (with the semaphore as `ref_ctr_offset`) whose BPF cookie is the spec id;
/// kernels without BPF cookies get `ip_to_id` entries instead, which for a
/// position-independent binary needs `pid`.
#[allow(clippy::too_many_arguments)]
pub fn attach_usdt(
    prog: BorrowedFd<'_>,
    pid: Option<i32>,
    binary: &str,
    provider: &str,
    name: &str,
    cookie: u64,
    specs: &MapFd,
    ip_to_id: Option<&MapFd>,
) -> Result<Link, AttachError> {
    usdt(
        Ctx::explicit(prog),
        pid,
        binary,
        provider,
        name,
        cookie,
        Some(specs),
        ip_to_id,
    )
}

#[allow(clippy::too_many_arguments)]
pub(super) fn usdt(
    ctx: Ctx<'_>,
    pid: Option<i32>,
    binary: &str,
    provider: &str,
    name: &str,
    cookie: u64,
    specs: Option<&MapFd>,
    ip_to_id: Option<&MapFd>,
) -> Result<Link, AttachError> {
    let mut target = format!("usdt {binary}:{provider}:{name}");
    let Some(specs) = specs else {
        return Err(ctx.target(
            &target,
            "USDT programs need the object's __bpf_usdt_specs map (and \
             __bpf_usdt_ip_to_spec_id on kernels without BPF cookies): attach through the \
             skeleton, or with auto_attach_with and an AttachContext",
        ));
    };
    if !cfg!(target_arch = "x86_64") {
        return Err(ctx.unsupported(
            &target,
            "USDT argument specs are only implemented for x86-64",
        ));
    }
    check_map(
        ctx,
        &target,
        "__bpf_usdt_specs",
        specs,
        map_type::ARRAY,
        4,
        USDT_SPEC_SIZE,
    )?;
    if let Some(map) = ip_to_id {
        check_map(
            ctx,
            &target,
            "__bpf_usdt_ip_to_spec_id",
            map,
            map_type::HASH,
            8,
            4,
        )?;
    }

    let path: PathBuf = resolve_binary(binary).map_err(|reason| ctx.target(&target, reason))?;
    target = format!("usdt {}:{provider}:{name}", path.display());
    let data = std::fs::read(&path).map_err(|e| ctx.io(&target, "reading", &path, e))?;
    let parsed = parse_usdt_notes(&data)
        .map_err(|e| ctx.target(&target, format!("{}: {e}", path.display())))?;
    let sites: Vec<&UsdtNote> = parsed
        .notes
        .iter()
        .filter(|n| n.provider == provider && n.name == name)
        .collect();
    if sites.is_empty() {
        return Err(ctx.target(
            &target,
            format!(
                "{} has no USDT probe {provider}:{name} ({} probes in .note.stapsdt{})",
                path.display(),
                parsed.notes.len(),
                list_probes(&parsed.notes)
            ),
        ));
    }

    // Specs, deduplicated; site i uses spec spec_of[i].
    let mut unique: Vec<UsdtSpec> = Vec::new();
    let mut index: HashMap<UsdtSpec, usize> = HashMap::new();
    let mut spec_of = Vec::with_capacity(sites.len());
    for site in &sites {
        let spec = UsdtSpec::parse(parsed.machine, &site.args, cookie).map_err(|e| {
            ctx.target(
                &target,
                format!("{}: probe at {:#x}: {e}", path.display(), site.addr),
            )
        })?;
        let next = unique.len();
        let i = *index.entry(spec.clone()).or_insert(next);
        if i == next {
            unique.push(spec);
        }
        spec_of.push(i);
    }

    let cookies = sys::probe::bpf_cookie();
    if cookies && !sys::probe::perf_link() {
        return Err(ctx.unsupported(
            &target,
            "the kernel has BPF cookies but no perf links to set them with",
        ));
    }

    let map_id = sys::map_info(specs.as_fd())
        .map_err(|e| ctx.kernel(&target, e))?
        .id;
    let mut lease =
        SpecLease::allocate(map_id, unique.len(), specs.max_entries()).ok_or_else(|| {
            ctx.target(
                &target,
                format!(
                    "__bpf_usdt_specs is full: {} spec ids needed, its {} entries are in use \
                     (raise BPF_USDT_MAX_SPEC_CNT)",
                    unique.len(),
                    specs.max_entries()
                ),
            )
        })?;
    for (id, spec) in lease.ids.iter().zip(&unique) {
        specs
            .update(&id.to_ne_bytes(), &spec.to_bytes(), elem_flags::ANY)
            .map_err(|e| ctx.kernel(&target, e))?;
    }

    if !cookies {
        let Some(ip_map) = ip_to_id else {
            return Err(ctx.unsupported(
                &target,
                "the kernel has no BPF cookies (before 5.15): the object's \
                 __bpf_usdt_ip_to_spec_id map is needed",
            ));
        };
        let owned = ip_map.as_fd().try_clone_to_owned().map_err(|e| {
            ctx.io(
                &target,
                "duplicating the fd of",
                "__bpf_usdt_ip_to_spec_id",
                e,
            )
        })?;
        lease.ip_map = Some(MapFd::from_fd(owned).map_err(|e| ctx.kernel(&target, e))?);
        for (site, &spec) in sites.iter().zip(&spec_of) {
            let ip = runtime_ip(parsed.position_independent, site, &path, pid)
                .map_err(|reason| ctx.target(&target, reason))?;
            let id = lease.ids.get(spec).copied().unwrap_or_default();
            ip_map
                .update(&ip.to_ne_bytes(), &id.to_ne_bytes(), elem_flags::NOEXIST)
                .map_err(|e| {
                    if e.errno() == Some(libc::EEXIST) {
                        ctx.target(
                            &target,
                            format!(
                                "address {ip:#x} already has a USDT spec: without BPF cookies \
                                 one probe site can be attached once per object"
                            ),
                        )
                    } else {
                        ctx.kernel(&target, e)
                    }
                })?;
            lease.ips.push(ip);
        }
    }

    let path_str = path
        .to_str()
        .ok_or_else(|| ctx.target(&target, "path is not UTF-8"))?;
    let path_c =
        CString::new(path_str).map_err(|_| ctx.target(&target, "path contains a NUL byte"))?;
    let mut links = Vec::with_capacity(sites.len());
    for (site, &spec) in sites.iter().zip(&spec_of) {
        let id = lease.ids.get(spec).copied().unwrap_or_default();
        let site_target = format!("{target} (offset {:#x})", site.file_offset);
        links.push(site_probe(
            ctx,
            &site_target,
            &path_c,
            path_str,
            site,
            pid,
            cookies.then_some(u64::from(id)),
        )?);
    }
    Ok(Link::multi(links, Box::new(lease)))
}

/// `: provider:name, ...` for an error message, at most 8 names.
fn list_probes(notes: &[UsdtNote]) -> String {
    let mut seen = BTreeSet::new();
    let mut names: Vec<String> = notes
        .iter()
        .map(|n| format!("{}:{}", n.provider, n.name))
        .filter(|name| seen.insert(name.clone()))
        .collect();
    if names.is_empty() {
        return String::new();
    }
    let more = names.len().saturating_sub(8);
    names.truncate(8);
    let mut text = format!(": {}", names.join(", "));
    if more > 0 {
        text += &format!(", and {more} more");
    }
    text
}

fn check_map(
    ctx: Ctx<'_>,
    target: &str,
    what: &str,
    map: &MapFd,
    want_type: u32,
    key: u32,
    value: usize,
) -> Result<(), AttachError> {
    if map.map_type() != want_type || map.key_size() != key || map.value_size() as usize != value {
        return Err(ctx.target(
            target,
            format!(
                "the map given as {what} has type {}, key {} B, value {} B; expected type {}, \
                 key {key} B, value {value} B (as <bpf/usdt.bpf.h> declares it)",
                map.map_type(),
                map.key_size(),
                map.value_size(),
                want_type
            ),
        ));
    }
    Ok(())
}

/// The uprobe of one site, with the spec id as BPF cookie when the kernel
/// has cookies.
fn site_probe(
    ctx: Ctx<'_>,
    target: &str,
    path_c: &CString,
    path_str: &str,
    site: &UsdtNote,
    pid: Option<i32>,
    cookie: Option<u64>,
) -> Result<Link, AttachError> {
    let offset = site.file_offset;
    let ref_ctr = site.semaphore_offset;
    if ref_ctr >= 1 << 32 {
        return Err(ctx.target(
            target,
            format!("semaphore file offset {ref_ctr:#x} does not fit the uprobe PMU's 32 bits"),
        ));
    }
    let label = format!(
        "usdt_{}_{offset:x}",
        Path::new(path_str)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("bin")
    );
    let (perf, legacy) = super::probe_event(
        ctx,
        target,
        ProbeKind::Uprobe,
        ProbeMode::Auto,
        &|pmu_type, bit| PerfEventAttr::uprobe(pmu_type, path_c, offset, ref_ctr, bit),
        &|| {
            if path_str.chars().any(char::is_whitespace) {
                return Err(ctx.target(
                    target,
                    "the legacy uprobe_events interface cannot take a path with whitespace",
                ));
            }
            Ok(if ref_ctr != 0 {
                format!("{path_str}:{offset:#x}({ref_ctr:#x})")
            } else {
                format!("{path_str}:{offset:#x}")
            })
        },
        &label,
        false,
        pid.unwrap_or(-1),
    )?;
    let Some(cookie) = cookie else {
        return super::attach_perf(ctx, target, perf, legacy);
    };
    let attached = LinkCreate::new(
        ctx.prog,
        LinkTarget::Fd(perf.as_fd()),
        attach_type::PERF_EVENT,
    )
    .extra(LinkExtra::PerfEventCookie(cookie))
    .create()
    .and_then(|link| sys::perf_event_enable(&perf).map(|()| link));
    match attached {
        Ok(link) => Ok(Link::new(Inner::Perf {
            link: Some(link),
            perf,
            legacy,
        })),
        Err(source) => {
            drop(perf);
            if let Some(probe) = legacy {
                let _ = probe.remove();
            }
            Err(ctx.kernel(target, source))
        }
    }
}

/// The address of a probe in the running process, for `ip_to_spec_id`: the
/// note's address for a fixed-address executable; for a position-independent
/// binary, where `pid` maps it (from `/proc/<pid>/maps`).
fn runtime_ip(
    position_independent: bool,
    site: &UsdtNote,
    path: &Path,
    pid: Option<i32>,
) -> Result<u64, String> {
    if !position_independent {
        return Ok(site.addr);
    }
    let Some(pid) = pid else {
        return Err(format!(
            "{} is position-independent: without BPF cookies its probes can only be \
             attached for one process (give a pid)",
            path.display()
        ));
    };
    let maps_path = format!("/proc/{pid}/maps");
    let text =
        std::fs::read_to_string(&maps_path).map_err(|e| format!("cannot read {maps_path}: {e}"))?;
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    mapped_address(&text, &canonical, site.file_offset).ok_or_else(|| {
        format!(
            "{} is not mapped at file offset {:#x} in process {pid} ({maps_path})",
            canonical.display(),
            site.file_offset
        )
    })
}

/// Where file offset `offset` of `path` is mapped executable, from the text
/// of a `/proc/<pid>/maps` file (`start-end perms offset dev inode path`).
fn mapped_address(maps: &str, path: &Path, offset: u64) -> Option<u64> {
    maps.lines().find_map(|line| {
        // Five fields, then the path: the rest of the line (it may hold
        // spaces).
        let mut rest = line;
        let mut fields = [""; 5];
        for field in &mut fields {
            rest = rest.trim_start();
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let (head, tail) = rest.split_at_checked(end)?;
            *field = head;
            rest = tail;
        }
        let [range, perms, file_off, _dev, _inode] = fields;
        let file_off = u64::from_str_radix(file_off, 16).ok()?;
        let mapped = rest.trim();
        let (start, end) = range.split_once('-')?;
        let start = u64::from_str_radix(start, 16).ok()?;
        let end = u64::from_str_radix(end, 16).ok()?;
        let len = end.checked_sub(start)?;
        let inside = offset >= file_off && offset - file_off < len;
        (perms.contains('x') && Path::new(mapped) == path && inside)
            .then(|| start.checked_add(offset - file_off))
            .flatten()
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

    #[test]
    fn maps_lines() {
        let maps = "\
55d0c0a00000-55d0c0a01000 r--p 00000000 fd:01 123 /usr/bin/prog
55d0c0a01000-55d0c0a02000 r-xp 00001000 fd:01 123 /usr/bin/prog
7f0000000000-7f0000001000 r-xp 00001000 fd:01 124 /usr/lib/with space.so
";
        let prog = Path::new("/usr/bin/prog");
        assert_eq!(mapped_address(maps, prog, 0x1234), Some(0x55d0c0a01234));
        assert_eq!(mapped_address(maps, prog, 0x234), None);
        assert_eq!(mapped_address(maps, prog, 0x2000), None);
        let spaced = Path::new("/usr/lib/with space.so");
        assert_eq!(mapped_address(maps, spaced, 0x1010), Some(0x7f0000000010));
        assert_eq!(mapped_address("garbage\n- - -", prog, 0), None);
    }
}
