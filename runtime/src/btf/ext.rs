//! `.BTF.ext`: per-instruction metadata that clang emits beside `.BTF`.
//!
//! Layout (little-endian): a header (`magic` 0xeB9F, `version` 1, `flags`,
//! `hdr_len`, then offset/length pairs for func_info, line_info and, when
//! `hdr_len` covers it, core_relo; offsets count from the end of the header).
//! Each subsection starts with its record size (a u32, so that newer, longer
//! records can be read by older readers) followed by one block per ELF
//! section: `sec_name_off`, `num_info`, then `num_info` records.
//!
//! Section names are offsets into the `.BTF` string table; the caller
//! resolves them with [`super::Btf::name`].

use super::reader::{read_u32, BTF_MAGIC};
use super::BtfError;

/// Header up to and including the line_info pair.
const EXT_HEADER_MIN: usize = 24;
/// Header with the core_relo pair.
const EXT_HEADER_CORE: usize = 32;

const FUNC_INFO_MIN: u32 = 8;
const LINE_INFO_MIN: u32 = 16;
const CORE_RELO_MIN: u32 = 16;

/// Parsed `.BTF.ext`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BtfExt {
    /// `bpf_func_info` records, per ELF section.
    pub func_info: Vec<SecInfo<FuncInfo>>,
    /// `bpf_line_info` records, per ELF section.
    pub line_info: Vec<SecInfo<LineInfo>>,
    /// `bpf_core_relo` records, per ELF section.
    pub core_relos: Vec<SecInfo<CoreRelo>>,
    /// Record size of func_info in the file (0 when the subsection is empty).
    pub func_info_rec_size: u32,
    /// Record size of line_info in the file (0 when the subsection is empty).
    pub line_info_rec_size: u32,
    /// Record size of core_relo in the file (0 when absent or empty).
    pub core_relo_rec_size: u32,
}

/// The records of one ELF section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecInfo<T> {
    /// The section's name, as an offset into the `.BTF` string table.
    pub sec_name_off: u32,
    /// Its records, in file order.
    pub records: Vec<T>,
}

/// `bpf_func_info`: where a function starts and its `FUNC` type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FuncInfo {
    /// Byte offset of the first instruction in the ELF section (as in the
    /// file; the kernel wants instruction indexes, i.e. this divided by 8).
    pub insn_off: u32,
    /// The `FUNC` type id.
    pub type_id: u32,
}

/// `bpf_line_info`: the source line of an instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineInfo {
    /// Byte offset of the instruction in the ELF section.
    pub insn_off: u32,
    /// File name, as an offset into the `.BTF` string table.
    pub file_name_off: u32,
    /// Source line text, as an offset into the `.BTF` string table.
    pub line_off: u32,
    /// Line number (bits 10..32) and column (bits 0..10).
    pub line_col: u32,
}

impl LineInfo {
    /// The line number.
    pub fn line(&self) -> u32 {
        self.line_col >> 10
    }

    /// The column.
    pub fn column(&self) -> u32 {
        self.line_col & 0x3ff
    }
}

/// `bpf_core_relo`: one CO-RE relocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoreRelo {
    /// Byte offset of the instruction to patch in the ELF section.
    pub insn_off: u32,
    /// The local (program's) type id the access starts from.
    pub type_id: u32,
    /// The access string (`"0:1:2"`), or the enumerator index for enum value
    /// relocations, as an offset into the `.BTF` string table.
    pub access_str_off: u32,
    /// What the relocation computes.
    pub kind: CoreReloKind,
}

/// `enum bpf_core_relo_kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum CoreReloKind {
    /// Byte offset of a field.
    FieldByteOffset = 0,
    /// Byte size of a field.
    FieldByteSize = 1,
    /// Whether a field exists in the target.
    FieldExists = 2,
    /// Whether a field is signed.
    FieldSigned = 3,
    /// Left shift to extract a bitfield into a u64.
    FieldLShiftU64 = 4,
    /// Right shift to extract a bitfield into a u64.
    FieldRShiftU64 = 5,
    /// The local type id.
    TypeIdLocal = 6,
    /// The matching target type id.
    TypeIdTarget = 7,
    /// Whether the type exists in the target.
    TypeExists = 8,
    /// Size of the target type.
    TypeSize = 9,
    /// Whether an enumerator exists in the target.
    EnumvalExists = 10,
    /// An enumerator's value in the target.
    EnumvalValue = 11,
    /// Whether the target type matches (`bpf_core_type_matches`).
    TypeMatches = 12,
}

impl CoreReloKind {
    /// The kind for a raw value, if known.
    pub fn from_raw(raw: u32) -> Option<CoreReloKind> {
        use CoreReloKind::*;
        Some(match raw {
            0 => FieldByteOffset,
            1 => FieldByteSize,
            2 => FieldExists,
            3 => FieldSigned,
            4 => FieldLShiftU64,
            5 => FieldRShiftU64,
            6 => TypeIdLocal,
            7 => TypeIdTarget,
            8 => TypeExists,
            9 => TypeSize,
            10 => EnumvalExists,
            11 => EnumvalValue,
            12 => TypeMatches,
            _ => return None,
        })
    }

    /// libbpf's name for the kind, as in its debug output (`byte_off`, `type_size`...).
    pub fn as_str(self) -> &'static str {
        use CoreReloKind::*;
        match self {
            FieldByteOffset => "byte_off",
            FieldByteSize => "byte_sz",
            FieldExists => "field_exists",
            FieldSigned => "signed",
            FieldLShiftU64 => "lshift_u64",
            FieldRShiftU64 => "rshift_u64",
            TypeIdLocal => "local_type_id",
            TypeIdTarget => "target_type_id",
            TypeExists => "type_exists",
            TypeSize => "type_size",
            EnumvalExists => "enumval_exists",
            EnumvalValue => "enumval_value",
            TypeMatches => "type_matches",
        }
    }
}

impl std::fmt::Display for CoreReloKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a record sits, for decoders' error messages.
struct RecordAt {
    block: usize,
    sec_name_off: u32,
    index: usize,
    offset: usize,
}

/// One subsection's bounds and rules.
struct Subsection {
    name: &'static str,
    off: u32,
    len: u32,
    min_rec: u32,
}

impl BtfExt {
    /// Parses a `.BTF.ext` section.
    pub fn parse(bytes: &[u8]) -> Result<BtfExt, BtfError> {
        let len = bytes.len();
        let truncated = || BtfError::Truncated {
            what: ".BTF.ext header",
            offset: 0,
            needed: EXT_HEADER_MIN,
            len,
        };
        let magic = match bytes.get(0..2) {
            Some(&[a, b]) => u16::from_le_bytes([a, b]),
            _ => return Err(truncated()),
        };
        if magic == BTF_MAGIC.swap_bytes() {
            return Err(BtfError::BigEndian { what: ".BTF.ext" });
        }
        if magic != BTF_MAGIC {
            return Err(BtfError::BadMagic {
                what: ".BTF.ext",
                magic,
            });
        }
        let version = *bytes.get(2).ok_or_else(truncated)?;
        if version != 1 {
            return Err(BtfError::BadVersion {
                what: ".BTF.ext",
                version,
            });
        }
        if len < EXT_HEADER_MIN {
            return Err(truncated());
        }
        let field = |at| read_u32(bytes, at).ok_or_else(truncated);
        let hdr_len = field(4)?;
        if (hdr_len as usize) < EXT_HEADER_MIN || hdr_len as usize > len {
            return Err(BtfError::BadHeaderLen {
                what: ".BTF.ext",
                hdr_len,
                min: EXT_HEADER_MIN as u32,
                len,
            });
        }
        let func = Subsection {
            name: "func_info",
            off: field(8)?,
            len: field(12)?,
            min_rec: FUNC_INFO_MIN,
        };
        let line = Subsection {
            name: "line_info",
            off: field(16)?,
            len: field(20)?,
            min_rec: LINE_INFO_MIN,
        };
        let core = if hdr_len as usize >= EXT_HEADER_CORE {
            Some(Subsection {
                name: "core_relo",
                off: field(24)?,
                len: field(28)?,
                min_rec: CORE_RELO_MIN,
            })
        } else {
            None
        };
        let hdr_len = hdr_len as usize;
        let (func_info_rec_size, func_info) = parse_subsection(bytes, hdr_len, &func, |r, _| {
            Ok(FuncInfo {
                insn_off: word(r, 0),
                type_id: word(r, 4),
            })
        })?;
        let (line_info_rec_size, line_info) = parse_subsection(bytes, hdr_len, &line, |r, _| {
            Ok(LineInfo {
                insn_off: word(r, 0),
                file_name_off: word(r, 4),
                line_off: word(r, 8),
                line_col: word(r, 12),
            })
        })?;
        let (core_relo_rec_size, core_relos) = match &core {
            Some(core) => parse_subsection(bytes, hdr_len, core, |r, at| {
                let raw = word(r, 12);
                let kind = CoreReloKind::from_raw(raw).ok_or(BtfError::UnknownCoreReloKind {
                    block: at.block,
                    sec_name_off: at.sec_name_off,
                    record: at.index,
                    offset: at.offset,
                    kind: raw,
                })?;
                Ok(CoreRelo {
                    insn_off: word(r, 0),
                    type_id: word(r, 4),
                    access_str_off: word(r, 8),
                    kind,
                })
            })?,
            None => (0, Vec::new()),
        };
        Ok(BtfExt {
            func_info,
            line_info,
            core_relos,
            func_info_rec_size,
            line_info_rec_size,
            core_relo_rec_size,
        })
    }

    /// The func_info block of the ELF section named by `sec_name_off`.
    pub fn func_info_for(&self, sec_name_off: u32) -> Option<&SecInfo<FuncInfo>> {
        self.func_info
            .iter()
            .find(|s| s.sec_name_off == sec_name_off)
    }

    /// The line_info block of the ELF section named by `sec_name_off`.
    pub fn line_info_for(&self, sec_name_off: u32) -> Option<&SecInfo<LineInfo>> {
        self.line_info
            .iter()
            .find(|s| s.sec_name_off == sec_name_off)
    }

    /// The core_relo block of the ELF section named by `sec_name_off`.
    pub fn core_relos_for(&self, sec_name_off: u32) -> Option<&SecInfo<CoreRelo>> {
        self.core_relos
            .iter()
            .find(|s| s.sec_name_off == sec_name_off)
    }
}

/// Word `i` of a record whose minimum size the caller has checked.
fn word(rec: &[u8], at: usize) -> u32 {
    read_u32(rec, at).unwrap_or(0)
}

/// Parses one subsection into (record size, blocks). An empty subsection
/// (length 0) has no record size and no blocks.
fn parse_subsection<T>(
    bytes: &[u8],
    hdr_len: usize,
    sub: &Subsection,
    mut decode: impl FnMut(&[u8], &RecordAt) -> Result<T, BtfError>,
) -> Result<(u32, Vec<SecInfo<T>>), BtfError> {
    if sub.len == 0 {
        return Ok((0, Vec::new()));
    }
    if sub.off % 4 != 0 {
        return Err(BtfError::Misaligned {
            section: sub.name,
            offset: sub.off,
        });
    }
    let start = hdr_len as u64 + u64::from(sub.off);
    let end = start + u64::from(sub.len);
    let data = match bytes.get(start as usize..end as usize) {
        Some(d) if end <= bytes.len() as u64 => d,
        _ => {
            return Err(BtfError::SectionOutOfBounds {
                section: sub.name,
                offset: start,
                size: sub.len,
                len: bytes.len(),
            })
        }
    };
    let start = start as usize;
    let rec_size = read_u32(data, 0).ok_or(BtfError::Truncated {
        what: ".BTF.ext record size",
        offset: start,
        needed: 4,
        len: data.len(),
    })?;
    if rec_size < sub.min_rec || rec_size % 4 != 0 {
        return Err(BtfError::ExtRecordSize {
            section: sub.name,
            offset: start,
            size: rec_size,
            min: sub.min_rec,
        });
    }
    let rec_size_usize = rec_size as usize;
    let mut blocks = Vec::new();
    let mut pos = 4usize;
    while pos < data.len() {
        let block = blocks.len();
        let (Some(sec_name_off), Some(num_info)) = (read_u32(data, pos), read_u32(data, pos + 4))
        else {
            return Err(BtfError::Truncated {
                what: ".BTF.ext block header",
                offset: start + pos,
                needed: 8,
                len: data.len() - pos,
            });
        };
        let remaining = data.len() - pos - 8;
        if num_info == 0 {
            return Err(BtfError::ExtEmptyBlock {
                section: sub.name,
                block,
                offset: start + pos,
            });
        }
        let total = u64::from(num_info) * u64::from(rec_size);
        if total > remaining as u64 {
            return Err(BtfError::ExtBadCount {
                section: sub.name,
                block,
                offset: start + pos,
                num_info,
                rec_size,
                remaining,
            });
        }
        pos += 8;
        // Bounded by the data: num_info * rec_size <= remaining.
        let mut records = Vec::with_capacity(num_info as usize);
        for index in 0..num_info as usize {
            let rec = data.get(pos..pos + rec_size_usize).unwrap_or(&[]);
            let at = RecordAt {
                block,
                sec_name_off,
                index,
                offset: start + pos,
            };
            records.push(decode(rec, &at)?);
            pos += rec_size_usize;
        }
        blocks.push(SecInfo {
            sec_name_off,
            records,
        });
    }
    Ok((rec_size, blocks))
}
