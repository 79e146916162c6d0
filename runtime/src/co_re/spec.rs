//! Access specs: what a relocation designates in the local BTF (parsed from
//! its access string) or in a target candidate (built while matching).
//!
//! An access string is `idx0:idx1:...`. The first index steps over whole
//! objects of the root type (`p[idx0]`); each later one picks a member of a
//! struct/union or an element of an array. Anonymous members are crossed
//! without an accessor of their own, so that matching can find the named
//! member in a target where the anonymous nesting differs.

use crate::btf::ext::{CoreRelo, CoreReloKind};
use crate::btf::{Array, Btf, TypeKind};

use super::error::ReloError;

/// Longest access path, as libbpf's `BPF_CORE_SPEC_MAX_LEN`.
pub(crate) const MAX_SPEC_LEN: usize = 64;

/// What a relocation kind computes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KindClass {
    /// A field reached by an access path.
    Field,
    /// A whole type (access string `0`).
    Type,
    /// One enumerator.
    Enumval,
}

pub(crate) fn class_of(kind: CoreReloKind) -> KindClass {
    use CoreReloKind::*;
    match kind {
        FieldByteOffset | FieldByteSize | FieldExists | FieldSigned | FieldLShiftU64
        | FieldRShiftU64 => KindClass::Field,
        TypeIdLocal | TypeIdTarget | TypeExists | TypeSize | TypeMatches => KindClass::Type,
        EnumvalExists | EnumvalValue => KindClass::Enumval,
    }
}

/// One step of an access path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Accessor<'a> {
    /// For a named member: the struct/union holding it. For an array step
    /// (and the root step): the element type, modifiers and typedefs skipped.
    /// For an enumerator: the enum.
    pub type_id: u32,
    /// Member, element or enumerator index.
    pub idx: u32,
    /// Member or enumerator name; `None` for array and root steps.
    pub name: Option<&'a str>,
}

/// A resolved access path in one BTF.
#[derive(Clone, Debug)]
pub(crate) struct Spec<'a> {
    pub btf: &'a Btf,
    /// The type the path starts from (the relocation's type id, or the
    /// candidate's id).
    pub root_type_id: u32,
    /// Named and array steps (anonymous members are not listed).
    pub accessors: Vec<Accessor<'a>>,
    /// Every index crossed, anonymous members included.
    pub raw: Vec<u32>,
    /// Bit offset of the designated field from the start of the root.
    pub bit_offset: u64,
}

impl<'a> Spec<'a> {
    pub(crate) fn new(btf: &'a Btf, root_type_id: u32) -> Self {
        Spec {
            btf,
            root_type_id,
            accessors: Vec::new(),
            raw: Vec::new(),
            bit_offset: 0,
        }
    }

    /// Adds `idx` elements of `elem_size` bytes to the bit offset.
    pub(crate) fn add_elements(&mut self, idx: u32, elem_size: u32) -> Result<(), ReloError> {
        let bits = u64::from(idx)
            .checked_mul(u64::from(elem_size))
            .and_then(|b| b.checked_mul(8))
            .ok_or(ReloError::Overflow {
                what: "array element bit offset",
            })?;
        self.add_bits(bits)
    }

    pub(crate) fn add_bits(&mut self, bits: u64) -> Result<(), ReloError> {
        self.bit_offset = self
            .bit_offset
            .checked_add(bits)
            .ok_or(ReloError::Overflow {
                what: "field bit offset",
            })?;
        Ok(())
    }

    /// Records one more raw index, within the length limit.
    pub(crate) fn push_raw(&mut self, idx: u32) -> Result<(), ReloError> {
        if self.raw.len() >= MAX_SPEC_LEN {
            return Err(ReloError::AccessTooLong {
                len: self.raw.len() + 1,
                max: MAX_SPEC_LEN,
            });
        }
        self.raw.push(idx);
        Ok(())
    }
}

/// Splits `0:1:2` into indexes: non-empty runs of ASCII digits, each a u32.
pub(crate) fn parse_access(access: &str) -> Result<Vec<u32>, ReloError> {
    if access.is_empty() {
        return Err(ReloError::AccessString {
            reason: "it is empty",
        });
    }
    let mut out = Vec::new();
    for part in access.split(':') {
        if part.is_empty() {
            return Err(ReloError::AccessString {
                reason: "an index is missing (leading, trailing or doubled ':')",
            });
        }
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ReloError::AccessString {
                reason: "an index is not a decimal number",
            });
        }
        if out.len() >= MAX_SPEC_LEN {
            return Err(ReloError::AccessTooLong {
                len: access.split(':').count(),
                max: MAX_SPEC_LEN,
            });
        }
        let idx = part.parse::<u32>().map_err(|_| ReloError::AccessString {
            reason: "an index does not fit in 32 bits",
        })?;
        out.push(idx);
    }
    Ok(out)
}

/// Whether `arr`, reached through the named member `prev`, is a flexible
/// array member: zero elements and the last member of its struct.
pub(crate) fn is_flex_array(
    btf: &Btf,
    prev: Option<&Accessor<'_>>,
    arr: &Array,
) -> Result<bool, crate::btf::BtfError> {
    let Some(prev) = prev else { return Ok(false) };
    if prev.name.is_none() || arr.nelems > 0 {
        return Ok(false);
    }
    let vlen = match btf.type_by_id(prev.type_id)?.kind {
        TypeKind::Struct(c) | TypeKind::Union(c) => c.len(),
        _ => return Ok(false),
    };
    Ok(prev.idx as usize + 1 == vlen)
}

/// The enumerators of an ENUM or ENUM64 type as (name offset, value),
/// 32-bit values sign-extended as libbpf reads them; `None` for other kinds.
pub(crate) fn enumerators(kind: &TypeKind<'_>) -> Option<Vec<(u32, u64)>> {
    match kind {
        TypeKind::Enum(e) => Some(
            e.values()
                .map(|v| (v.name_off, v.value as u32 as i32 as i64 as u64))
                .collect(),
        ),
        TypeKind::Enum64(e) => Some(e.values().map(|v| (v.name_off, v.value)).collect()),
        _ => None,
    }
}

/// Parses the local spec of `relo` whose access string is `access`.
pub(crate) fn parse_local<'a>(
    btf: &'a Btf,
    relo: &CoreRelo,
    access: &str,
) -> Result<Spec<'a>, ReloError> {
    let mut spec = Spec::new(btf, relo.type_id);
    let class = class_of(relo.kind);
    if class == KindClass::Type {
        if access != "0" {
            return Err(ReloError::AccessString {
                reason: "a type-based relocation takes the access string \"0\"",
            });
        }
        // The type must exist even though no path is walked.
        btf.type_by_id(relo.type_id).map_err(ReloError::local)?;
        return Ok(spec);
    }
    let raw = parse_access(access)?;
    let first = *raw.first().ok_or(ReloError::AccessString {
        reason: "it is empty",
    })?;
    let mut id = btf
        .skip_mods_and_typedefs(relo.type_id)
        .map_err(ReloError::local)?;
    spec.accessors.push(Accessor {
        type_id: id,
        idx: first,
        name: None,
    });
    spec.raw.push(first);

    if class == KindClass::Enumval {
        let t = btf.type_by_id(id).map_err(ReloError::local)?;
        let values = enumerators(&t.kind).ok_or(ReloError::NotEnum {
            type_id: id,
            kind: t.kind(),
        })?;
        if raw.len() > 1 {
            return Err(ReloError::AccessString {
                reason: "an enum value relocation takes exactly one index",
            });
        }
        let &(name_off, _) = values.get(first as usize).ok_or(ReloError::EnumIndex {
            index: first,
            type_id: id,
            len: values.len(),
        })?;
        let name = btf.name(name_off).map_err(ReloError::local)?;
        if let Some(acc) = spec.accessors.first_mut() {
            acc.name = Some(name);
        }
        return Ok(spec);
    }

    let size = btf.size_of(id).map_err(ReloError::local)?;
    spec.add_elements(first, size)?;
    for (position, &idx) in raw.iter().enumerate().skip(1) {
        id = btf.skip_mods_and_typedefs(id).map_err(ReloError::local)?;
        let t = btf.type_by_id(id).map_err(ReloError::local)?;
        match t.kind {
            TypeKind::Struct(c) | TypeKind::Union(c) => {
                let m = c.member(idx as usize).ok_or(ReloError::MemberIndex {
                    position,
                    index: idx,
                    type_id: id,
                    vlen: c.len(),
                })?;
                spec.add_bits(u64::from(m.bit_offset))?;
                spec.raw.push(idx);
                if m.name_off != 0 {
                    let name = btf.name(m.name_off).map_err(ReloError::local)?;
                    if name.is_empty() {
                        return Err(ReloError::EmptyMemberName {
                            type_id: id,
                            index: idx,
                        });
                    }
                    spec.accessors.push(Accessor {
                        type_id: id,
                        idx,
                        name: Some(name),
                    });
                }
                id = m.ty;
            }
            TypeKind::Array(a) => {
                let elem = btf
                    .skip_mods_and_typedefs(a.elem_type)
                    .map_err(ReloError::local)?;
                let flex =
                    is_flex_array(btf, spec.accessors.last(), &a).map_err(ReloError::local)?;
                if !flex && idx >= a.nelems {
                    return Err(ReloError::ArrayIndex {
                        position,
                        index: idx,
                        type_id: id,
                        nelems: a.nelems,
                    });
                }
                spec.raw.push(idx);
                spec.accessors.push(Accessor {
                    type_id: elem,
                    idx,
                    name: None,
                });
                let size = btf.size_of(elem).map_err(ReloError::local)?;
                spec.add_elements(idx, size)?;
                id = elem;
            }
            _ => {
                return Err(ReloError::NotIndexable {
                    position,
                    type_id: id,
                    kind: t.kind(),
                })
            }
        }
    }
    Ok(spec)
}
