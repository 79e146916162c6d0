//! BTF reader: header validation, the type-id -> offset index, type decoding
//! and string lookup.
//!
//! Layout (all little-endian): a header (`magic` 0xeB9F, `version` 1,
//! `flags`, `hdr_len`, then type and string section offsets and lengths,
//! both relative to the end of the header), a type section of variable-size
//! records (a 12-byte header `name_off, info, size|type` followed by
//! kind-specific data), and a string section of NUL-terminated names.

use std::ffi::CStr;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use super::bytes::Bytes;
use super::names::{hash_c_string, hash_name, NameIndex, NameSource};
use super::types::{
    Array, Composite, Datasec, Enum, Enum64, FuncLinkage, FuncProto, Int, Kind, Type, TypeKind,
    VarLinkage,
};
use super::BtfError;

/// The BTF magic, as stored little-endian.
pub(crate) const BTF_MAGIC: u16 = 0xeb9f;
/// The fixed part of the header: magic..str_len.
pub(crate) const HEADER_LEN: usize = 24;
/// Size of a type header (`name_off`, `info`, `size`/`type`).
pub(crate) const TYPE_HEADER_LEN: usize = 12;
/// Where the kernel's BTF for the running kernel lives.
pub const VMLINUX_BTF_PATH: &str = "/sys/kernel/btf/vmlinux";

/// Header field offsets.
pub(crate) const HDR_TYPE_LEN: usize = 12;
pub(crate) const HDR_TYPE_OFF: usize = 8;
pub(crate) const HDR_STR_OFF: usize = 16;
pub(crate) const HDR_STR_LEN: usize = 20;

/// Parsed BTF: owns the raw bytes and indexes every type by id.
///
/// Types are decoded on access ([`Btf::type_by_id`]) into borrowed views;
/// nothing is copied or validated beyond the header and the record bounds
/// until it is asked for. A split BTF (kernel module) shares its base through
/// an [`Arc`]: its ids continue after the base's, and so do its string
/// offsets.
#[derive(Clone)]
pub struct Btf {
    /// Header, type section and string section, as given (patched in place).
    pub(crate) data: Bytes,
    pub(crate) hdr_len: usize,
    /// Absolute start and length of the type section in `data`.
    pub(crate) type_start: usize,
    pub(crate) type_len: usize,
    /// Absolute start and length of the string section in `data`.
    pub(crate) str_start: usize,
    pub(crate) str_len: usize,
    /// `offsets[i]`: offset of type `first_id + i` from `type_start`.
    pub(crate) offsets: Vec<u32>,
    /// 1 for a base BTF (id 0 is void); `base.len()` for a split BTF.
    pub(crate) first_id: u32,
    /// String offsets below this resolve in the base.
    pub(crate) str_base: u32,
    pub(crate) base: Option<Arc<Btf>>,
    pub(crate) names: OnceLock<NameIndex>,
}

impl std::fmt::Debug for Btf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Btf")
            .field("len", &self.len())
            .field("first_id", &self.first_id)
            .field("type_len", &self.type_len)
            .field("str_len", &self.str_len)
            .field("split", &self.base.is_some())
            .finish_non_exhaustive()
    }
}

/// The little-endian u32 at `at`, if all four bytes are there.
#[inline]
pub(crate) fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(<[u8; 4]>::try_from(b).ok()?))
}

/// Per raw kind: (fixed trailing bytes, bytes per `vlen` record); `None`
/// for kinds this reader does not know (0 is `BTF_KIND_UNKN`).
const RECORD_LAYOUT: [Option<(u32, u32)>; 32] = {
    let mut t = [None; 32];
    t[1] = Some((4, 0)); // INT: encoding word
    t[2] = Some((0, 0)); // PTR
    t[3] = Some((12, 0)); // ARRAY: elem type, index type, nelems
    t[4] = Some((0, 12)); // STRUCT: members
    t[5] = Some((0, 12)); // UNION: members
    t[6] = Some((0, 8)); // ENUM: name, value
    t[7] = Some((0, 0)); // FWD
    t[8] = Some((0, 0)); // TYPEDEF
    t[9] = Some((0, 0)); // VOLATILE
    t[10] = Some((0, 0)); // CONST
    t[11] = Some((0, 0)); // RESTRICT
    t[12] = Some((0, 0)); // FUNC (vlen is the linkage, not a count)
    t[13] = Some((0, 8)); // FUNC_PROTO: params
    t[14] = Some((4, 0)); // VAR: linkage
    t[15] = Some((0, 12)); // DATASEC: var_secinfos
    t[16] = Some((0, 0)); // FLOAT
    t[17] = Some((4, 0)); // DECL_TAG: component_idx
    t[18] = Some((0, 0)); // TYPE_TAG
    t[19] = Some((0, 12)); // ENUM64: name, lo32, hi32
    t
};

/// Bytes of kind-specific data that follow the 12-byte header of a type of
/// raw kind `kind` with `vlen` records, or `None` for an unknown kind.
///
/// A table rather than a `match`: kinds arrive in no predictable order, and
/// the branch-free lookup keeps the one-pass index off the misprediction path.
#[inline]
pub(crate) fn trailing_len(kind: u32, vlen: u32) -> Option<usize> {
    let (fixed, per) = (*RECORD_LAYOUT.get(kind as usize)?)?;
    Some(fixed as usize + per as usize * vlen as usize)
}

/// Kind bits of `info`.
#[inline]
pub(crate) fn info_kind(info: u32) -> u32 {
    (info >> 24) & 0x1f
}

/// `vlen` bits of `info`.
#[inline]
pub(crate) fn info_vlen(info: u32) -> u32 {
    info & 0xffff
}

/// The validated section layout of a header.
struct Layout {
    hdr_len: usize,
    type_start: usize,
    type_len: usize,
    str_start: usize,
    str_len: usize,
}

fn parse_header(data: &[u8], split: bool) -> Result<Layout, BtfError> {
    let len = data.len();
    let truncated = |needed| BtfError::Truncated {
        what: "BTF header",
        offset: 0,
        needed,
        len,
    };
    let magic = data
        .get(0..2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .ok_or_else(|| truncated(HEADER_LEN))?;
    if magic == BTF_MAGIC.swap_bytes() {
        return Err(BtfError::BigEndian { what: "BTF" });
    }
    if magic != BTF_MAGIC {
        return Err(BtfError::BadMagic { what: "BTF", magic });
    }
    let version = *data.get(2).ok_or_else(|| truncated(HEADER_LEN))?;
    if version != 1 {
        return Err(BtfError::BadVersion {
            what: "BTF",
            version,
        });
    }
    if len < HEADER_LEN {
        return Err(truncated(HEADER_LEN));
    }
    let field = |at| read_u32(data, at).ok_or_else(|| truncated(HEADER_LEN));
    let hdr_len = field(4)?;
    if (hdr_len as usize) < HEADER_LEN || hdr_len as usize > len {
        return Err(BtfError::BadHeaderLen {
            what: "BTF",
            hdr_len,
            min: HEADER_LEN as u32,
            len,
        });
    }
    let (type_off, type_len) = (field(HDR_TYPE_OFF)?, field(HDR_TYPE_LEN)?);
    let (str_off, str_len) = (field(HDR_STR_OFF)?, field(HDR_STR_LEN)?);
    if type_off % 4 != 0 {
        return Err(BtfError::Misaligned {
            section: "type",
            offset: type_off,
        });
    }
    // u64 arithmetic: hdr_len + off + len cannot overflow.
    let section = |name, off: u32, size: u32| {
        let start = hdr_len as u64 + off as u64;
        let end = start + size as u64;
        if end > len as u64 {
            Err(BtfError::SectionOutOfBounds {
                section: name,
                offset: start,
                size,
                len,
            })
        } else {
            Ok((start, end))
        }
    };
    let (type_start, type_end) = section("type", type_off, type_len)?;
    let (str_start, str_end) = section("string", str_off, str_len)?;
    if type_len > 0 && str_len > 0 && type_start < str_end && str_start < type_end {
        return Err(BtfError::SectionsOverlap {
            type_start,
            type_end,
            str_start,
            str_end,
        });
    }
    let strings = data
        .get(str_start as usize..str_end as usize)
        .unwrap_or(&[]);
    let bad_strings = |reason| BtfError::BadStringSection {
        offset: str_start,
        size: str_len,
        reason,
    };
    match (strings.first(), strings.last()) {
        // A split BTF may add no strings at all.
        (None, _) if split => {}
        (None, _) => return Err(bad_strings("empty (it must hold at least the empty name)")),
        // Only a base string table starts with the empty name at offset 0.
        (Some(&first), _) if first != 0 && !split => {
            return Err(bad_strings("does not start with NUL"))
        }
        (_, Some(&last)) if last != 0 => return Err(bad_strings("does not end with NUL")),
        _ => {}
    }
    Ok(Layout {
        hdr_len: hdr_len as usize,
        type_start: type_start as usize,
        type_len: type_len as usize,
        str_start: str_start as usize,
        str_len: str_len as usize,
    })
}

/// One pass over the type section: the offset of every type header,
/// checking that each type's trailing records fit.
fn index_types(types: &[u8], first_id: u32) -> Result<Vec<u32>, BtfError> {
    // vmlinux averages ~25 bytes per type; overestimating the count a little
    // avoids regrowing (and copying) the index.
    let mut offsets = Vec::with_capacity(types.len() / 20 + 1);
    let mut off = 0usize;
    while off < types.len() {
        let available = types.len() - off;
        // Computed only for errors: the id the type at `off` would have.
        let id = || first_id.wrapping_add(offsets.len() as u32);
        let Some(info) = read_u32(types, off + 4) else {
            return Err(BtfError::TypeHeaderTruncated {
                id: id(),
                offset: off as u32,
                available: available as u32,
            });
        };
        let (kind, vlen) = (info_kind(info), info_vlen(info));
        let Some(trailing) = trailing_len(kind, vlen) else {
            return Err(BtfError::UnknownKind {
                id: id(),
                offset: off as u32,
                kind,
            });
        };
        let size = TYPE_HEADER_LEN + trailing;
        if size > available {
            return Err(BtfError::TypeTruncated {
                id: id(),
                kind: Kind::from_raw(kind).unwrap_or(Kind::Void),
                vlen,
                offset: off as u32,
                needed: size as u64,
                available: available as u32,
            });
        }
        offsets.push(off as u32);
        off += size;
    }
    // At most type_len / 12 types, but a split BTF's ids start after its base's.
    if u64::from(first_id) + offsets.len() as u64 >= u64::from(u32::MAX) {
        return Err(BtfError::TooManyTypes { id: u32::MAX });
    }
    Ok(offsets)
}

impl Btf {
    /// Parses BTF from a borrowed buffer (copies it).
    pub fn parse(bytes: &[u8]) -> Result<Btf, BtfError> {
        Btf::from_vec(bytes.to_vec())
    }

    /// Parses BTF, taking ownership of the buffer (no copy).
    pub fn from_vec(bytes: Vec<u8>) -> Result<Btf, BtfError> {
        Btf::build(bytes.into(), None)
    }

    /// Reads and parses the running kernel's BTF, `/sys/kernel/btf/vmlinux`.
    pub fn from_vmlinux() -> Result<Btf, BtfError> {
        Btf::from_file(VMLINUX_BTF_PATH)
    }

    /// Reads and parses a raw BTF file (not an ELF object). The kernel's
    /// own files under `/sys/kernel/btf/` are mapped rather than copied
    /// where the kernel allows it (vmlinux, 6.16 and later).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Btf, BtfError> {
        let path = path.as_ref();
        let bytes = super::bytes::read_file(path).map_err(|source| BtfError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Btf::build(bytes, None)
    }

    /// Parses split BTF (a kernel module's `/sys/kernel/btf/<module>`) on top
    /// of `base`: its type ids start at `base.len()` and its string offsets
    /// at the end of the base's strings.
    pub fn parse_split(bytes: &[u8], base: Arc<Btf>) -> Result<Btf, BtfError> {
        Btf::build(bytes.to_vec().into(), Some(base))
    }

    fn build(data: Bytes, base: Option<Arc<Btf>>) -> Result<Btf, BtfError> {
        let layout = parse_header(&data, base.is_some())?;
        let (first_id, str_base) = match &base {
            Some(b) => (b.len(), b.str_base.saturating_add(b.str_len as u32)),
            None => (1, 0),
        };
        let types = data
            .get(layout.type_start..layout.type_start + layout.type_len)
            .unwrap_or(&[]);
        let offsets = index_types(types, first_id)?;
        Ok(Btf {
            hdr_len: layout.hdr_len,
            type_start: layout.type_start,
            type_len: layout.type_len,
            str_start: layout.str_start,
            str_len: layout.str_len,
            offsets,
            first_id,
            str_base,
            base,
            names: OnceLock::new(),
            data,
        })
    }

    /// Number of type ids, including void (id 0) and, for split BTF, the
    /// base's types: valid ids are `0..len()`.
    pub fn len(&self) -> u32 {
        // Cannot overflow: index_types stops at u32::MAX ids.
        self.first_id.saturating_add(self.offsets.len() as u32)
    }

    /// Whether there are no types besides void (and the base's, for split BTF).
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// The first id of this BTF's own types: 1, or `base.len()` for split BTF.
    pub fn first_own_id(&self) -> u32 {
        self.first_id
    }

    /// The base BTF of a split BTF.
    pub fn base(&self) -> Option<&Arc<Btf>> {
        self.base.as_ref()
    }

    /// The current bytes: header, types and strings, with any fixups applied.
    /// For split BTF, only its own part (what the kernel expects to load).
    pub fn raw(&self) -> &[u8] {
        &self.data
    }

    /// The string section (own strings only, for split BTF).
    pub fn strings(&self) -> &[u8] {
        self.data
            .get(self.str_start..self.str_start + self.str_len)
            .unwrap_or(&[])
    }

    /// The type section.
    pub(crate) fn type_section(&self) -> &[u8] {
        self.data
            .get(self.type_start..self.type_start + self.type_len)
            .unwrap_or(&[])
    }

    /// Offset of own type `id` from the start of the type section.
    #[inline]
    pub(crate) fn own_offset(&self, id: u32) -> Option<u32> {
        let idx = id.checked_sub(self.first_id)?;
        self.offsets.get(idx as usize).copied()
    }

    pub(crate) fn bad_id(&self, id: u32, referenced_from: Option<u32>) -> BtfError {
        BtfError::BadTypeId {
            id,
            len: self.len(),
            referenced_from,
        }
    }

    /// The type with this id; id 0 is [`TypeKind::Void`].
    pub fn type_by_id(&self, id: u32) -> Result<Type<'_>, BtfError> {
        self.type_from(id, None)
    }

    /// [`Btf::type_by_id`], naming the referring type in the error.
    pub(crate) fn type_from(&self, id: u32, from: Option<u32>) -> Result<Type<'_>, BtfError> {
        if id == 0 {
            return Ok(Type {
                id: 0,
                name_off: 0,
                kind: TypeKind::Void,
            });
        }
        if id < self.first_id {
            if let Some(base) = &self.base {
                return base.type_from(id, from);
            }
        }
        match self.own_offset(id) {
            Some(off) => self.decode(id, off),
            None => Err(self.bad_id(id, from)),
        }
    }

    /// The header words of own type `id` (`name_off`, `info`, `size`/`type`)
    /// and its offset, or the base's for a base id.
    pub(crate) fn header(&self, id: u32) -> Result<[u32; 3], BtfError> {
        if id < self.first_id {
            if let Some(base) = &self.base {
                return base.header(id);
            }
            if id == 0 {
                return Ok([0; 3]);
            }
        }
        let off = self.own_offset(id).ok_or_else(|| self.bad_id(id, None))?;
        let types = self.type_section();
        let word = |i| read_u32(types, off as usize + i);
        match (word(0), word(4), word(8)) {
            (Some(a), Some(b), Some(c)) => Ok([a, b, c]),
            _ => Err(self.truncated_type(id, off)),
        }
    }

    fn truncated_type(&self, id: u32, off: u32) -> BtfError {
        // Unreachable after parsing and the patchers' checks; an error, not a panic.
        BtfError::TypeOutOfSection {
            id,
            offset: off,
            type_len: self.type_len,
        }
    }

    fn decode(&self, id: u32, off: u32) -> Result<Type<'_>, BtfError> {
        let types = self.type_section();
        let off = off as usize;
        let word = |i: usize| read_u32(types, off + i);
        let (Some(name_off), Some(info), Some(sot)) = (word(0), word(4), word(8)) else {
            return Err(self.truncated_type(id, off as u32));
        };
        let (kind_raw, vlen) = (info_kind(info), info_vlen(info));
        let kflag = info >> 31 == 1;
        let unknown = || BtfError::UnknownKind {
            id,
            offset: off as u32,
            kind: kind_raw,
        };
        let trailing = trailing_len(kind_raw, vlen).ok_or_else(unknown)?;
        let start = off + TYPE_HEADER_LEN;
        let rec = types
            .get(start..start + trailing)
            .ok_or_else(|| self.truncated_type(id, off as u32))?;
        let extra = || read_u32(rec, 0).unwrap_or(0);
        let kind = match Kind::from_raw(kind_raw).ok_or_else(unknown)? {
            Kind::Void => return Err(unknown()),
            Kind::Int => {
                let enc = extra();
                TypeKind::Int(Int {
                    size: sot,
                    signed: enc & (1 << 24) != 0,
                    char: enc & (2 << 24) != 0,
                    bool: enc & (4 << 24) != 0,
                    offset: (enc >> 16) as u8,
                    bits: enc as u8,
                })
            }
            Kind::Ptr => TypeKind::Ptr(sot),
            Kind::Array => TypeKind::Array(Array {
                elem_type: read_u32(rec, 0).unwrap_or(0),
                index_type: read_u32(rec, 4).unwrap_or(0),
                nelems: read_u32(rec, 8).unwrap_or(0),
            }),
            Kind::Struct => TypeKind::Struct(Composite::new(sot, kflag, rec)),
            Kind::Union => TypeKind::Union(Composite::new(sot, kflag, rec)),
            Kind::Enum => TypeKind::Enum(Enum::new(sot, kflag, rec)),
            Kind::Enum64 => TypeKind::Enum64(Enum64::new(sot, kflag, rec)),
            Kind::Fwd => TypeKind::Fwd { is_union: kflag },
            Kind::Typedef => TypeKind::Typedef(sot),
            Kind::Volatile => TypeKind::Volatile(sot),
            Kind::Const => TypeKind::Const(sot),
            Kind::Restrict => TypeKind::Restrict(sot),
            Kind::TypeTag => TypeKind::TypeTag(sot),
            Kind::Func => TypeKind::Func {
                proto: sot,
                linkage: FuncLinkage::from_raw(vlen),
            },
            Kind::FuncProto => TypeKind::FuncProto(FuncProto::new(sot, rec)),
            Kind::Var => TypeKind::Var {
                ty: sot,
                linkage: VarLinkage::from_raw(extra()),
            },
            Kind::Datasec => TypeKind::Datasec(Datasec::new(sot, rec)),
            Kind::Float => TypeKind::Float { size: sot },
            Kind::DeclTag => TypeKind::DeclTag {
                target: sot,
                component_idx: extra() as i32,
            },
        };
        Ok(Type { id, name_off, kind })
    }

    /// This BTF's own types, ids `first_own_id()..len()` (1.. for base BTF).
    pub fn types(&self) -> impl Iterator<Item = Result<Type<'_>, BtfError>> + '_ {
        (self.first_id..self.len()).map(move |id| self.type_by_id(id))
    }

    /// This BTF's own types of one of `kinds`, in id order: a scan that
    /// reads each type's header and decodes only those that match (the
    /// passes over an object's BTF that look for DATASECs or FUNCs decoded
    /// every type, a seventh of a small object's open and load).
    pub(crate) fn types_of_kind<'a>(
        &'a self,
        kinds: &'a [Kind],
    ) -> impl Iterator<Item = Result<Type<'a>, BtfError>> + 'a {
        (self.first_id..self.len()).filter_map(move |id| match self.kind_of(id) {
            Ok(kind) if kinds.contains(&kind) => Some(self.type_by_id(id)),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
    }

    /// The kind of type `id`, reading only its header.
    pub fn kind_of(&self, id: u32) -> Result<Kind, BtfError> {
        if id == 0 {
            return Ok(Kind::Void);
        }
        let [_, info, _] = self.header(id)?;
        match Kind::from_raw(info_kind(info)) {
            Some(k) if k != Kind::Void => Ok(k),
            _ => Err(BtfError::UnknownKind {
                id,
                offset: self.own_offset(id).unwrap_or(0),
                kind: info_kind(info),
            }),
        }
    }

    /// The NUL-terminated bytes at `name_off`, without the NUL.
    pub(crate) fn name_bytes(&self, name_off: u32) -> Result<&[u8], BtfError> {
        if name_off < self.str_base {
            if let Some(base) = &self.base {
                return base.name_bytes(name_off);
            }
        }
        let local = name_off.checked_sub(self.str_base).unwrap_or(u32::MAX) as usize;
        let tail = match self.strings().get(local..) {
            Some(t) if !t.is_empty() => t,
            _ => {
                return Err(BtfError::StringOutOfRange {
                    offset: name_off,
                    len: self.str_base.saturating_add(self.str_len as u32),
                })
            }
        };
        CStr::from_bytes_until_nul(tail)
            .map(CStr::to_bytes)
            .map_err(|_| BtfError::UnterminatedString { offset: name_off })
    }

    /// The string at `name_off` in the string table (base strings first, for
    /// split BTF): bounds-checked, NUL-terminated, UTF-8.
    pub fn name(&self, name_off: u32) -> Result<&str, BtfError> {
        let bytes = self.name_bytes(name_off)?;
        std::str::from_utf8(bytes).map_err(|_| BtfError::InvalidUtf8 { offset: name_off })
    }

    /// The name of type `id`; `""` for anonymous types and void.
    pub fn type_name(&self, id: u32) -> Result<&str, BtfError> {
        let [name_off, _, _] = self.header(id)?;
        self.name(name_off)
    }
}

/// The name index's view of a BTF (see `names`).
impl NameSource for Btf {
    fn collect_names(&self, keys: &mut Vec<u64>) {
        if let Some(base) = &self.base {
            base.collect_names(keys);
        }
        let types = self.type_section();
        let strings = self.strings();
        for (id, &off) in (self.first_id..).zip(&self.offsets) {
            let name_off = read_u32(types, off as usize).unwrap_or(0);
            if name_off == 0 {
                continue;
            }
            let hash = match name_off.checked_sub(self.str_base) {
                Some(local) => strings.get(local as usize..).and_then(hash_c_string),
                // A split type named by a base string.
                None => self.name_bytes(name_off).ok().map(hash_name),
            };
            // Unreadable names are skipped: they can never equal a &str.
            if let Some(hash) = hash {
                keys.push((u64::from(hash) << 32) | u64::from(id));
            }
        }
    }

    fn name_of(&self, id: u32) -> &[u8] {
        self.header(id)
            .ok()
            .and_then(|[off, _, _]| self.name_bytes(off).ok())
            .unwrap_or(&[])
    }

    fn name_off_of(&self, id: u32) -> Option<u32> {
        self.header(id).map(|[off, _, _]| off).ok()
    }
}

/// Lookups by name, through the lazy index.
impl Btf {
    fn name_index(&self) -> &NameIndex {
        self.names
            .get_or_init(|| NameIndex::build(self, self.len() as usize))
    }

    /// Builds the name index now rather than on the first lookup by name.
    pub fn build_name_index(&self) {
        self.name_index();
    }

    /// Every type id named `name`, in id order (base types included, for
    /// split BTF). Empty for `""` and for unknown names.
    pub fn find_by_name(&self, name: &str) -> &[u32] {
        if name.is_empty() {
            return &[];
        }
        self.name_index().find(self, name)
    }

    /// The first type id named `name` of kind `kind`.
    pub fn find_by_name_kind(&self, name: &str, kind: Kind) -> Option<u32> {
        self.find_by_name(name)
            .iter()
            .copied()
            .find(|&id| self.kind_of(id).ok() == Some(kind))
    }
}
