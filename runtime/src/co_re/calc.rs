//! Values: what a relocation kind computes from a spec, in the local BTF
//! (the value the compiler put in the instruction) and in the target (the
//! value to patch in).

use crate::btf::ext::CoreReloKind;
use crate::btf::{Btf, TypeKind};

use super::error::ReloError;
use super::spec::{class_of, enumerators, KindClass, Spec};

/// The outcome for one relocation, ready to be patched in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ReloResult {
    /// The value the local BTF gives (what the instruction should hold).
    pub orig_val: u64,
    /// The value the target gives.
    pub new_val: u64,
    /// Replace the instruction by an invalid helper call instead.
    pub poison: bool,
    /// Whether the instruction must hold `orig_val` (off for bitfields and
    /// type ids, which the compiler or linker may have chosen differently).
    pub validate: bool,
    /// The field sizes differ in a way a load cannot be resized for.
    pub fail_memsz_adjust: bool,
    /// Local field size, for resizing loads (0: not a plain field offset).
    pub orig_sz: u32,
    /// Target field size.
    pub new_sz: u32,
}

impl ReloResult {
    /// A result that patches `val` in without checking the instruction.
    pub(crate) fn unchecked(val: u64) -> Self {
        ReloResult {
            orig_val: val,
            new_val: val,
            poison: false,
            validate: false,
            fail_memsz_adjust: false,
            orig_sz: 0,
            new_sz: 0,
        }
    }

    /// The result as text, for ambiguity errors.
    pub(crate) fn describe(&self) -> String {
        if self.poison {
            "poison".to_owned()
        } else {
            self.new_val.to_string()
        }
    }
}

/// A field-based value.
struct FieldValue {
    val: u64,
    /// Size of the field as loaded (0 unless a plain byte offset).
    size: u32,
    /// Its type (modifiers skipped), with `size`.
    type_id: u32,
    validate: bool,
}

/// Maps BTF errors to the side a spec belongs to.
fn side(is_local: bool) -> fn(crate::btf::BtfError) -> ReloError {
    if is_local {
        ReloError::local
    } else {
        ReloError::target
    }
}

/// The value of a field-based kind; `None` asks for poisoning (the field
/// is missing in the target).
fn field_value(
    kind: CoreReloKind,
    spec: Option<&Spec<'_>>,
    is_local: bool,
) -> Result<Option<FieldValue>, ReloError> {
    if kind == CoreReloKind::FieldExists {
        return Ok(Some(FieldValue {
            val: u64::from(spec.is_some()),
            size: 0,
            type_id: 0,
            validate: true,
        }));
    }
    let Some(spec) = spec else { return Ok(None) };
    let err = side(is_local);
    let btf: &Btf = spec.btf;
    let acc = spec.accessors.last().ok_or(ReloError::AccessString {
        reason: "it is empty",
    })?;

    // An array element (or the root object): no member, no bitfield.
    let Some(_) = acc.name else {
        let size = btf.size_of(acc.type_id).map_err(&err)?;
        return Ok(Some(match kind {
            CoreReloKind::FieldByteOffset => FieldValue {
                val: spec.bit_offset / 8,
                size,
                type_id: acc.type_id,
                validate: true,
            },
            CoreReloKind::FieldByteSize => FieldValue {
                val: u64::from(size),
                size: 0,
                type_id: 0,
                validate: true,
            },
            _ => {
                return Err(ReloError::KindNotApplicable {
                    kind,
                    what: "an array element",
                })
            }
        }));
    };

    let member = match btf.type_by_id(acc.type_id).map_err(&err)?.kind {
        TypeKind::Struct(c) | TypeKind::Union(c) => c.member(acc.idx as usize),
        _ => None,
    }
    .ok_or(ReloError::MemberIndex {
        position: spec.accessors.len().saturating_sub(1),
        index: acc.idx,
        type_id: acc.type_id,
        vlen: 0,
    })?;
    let field_type_id = btf.skip_mods_and_typedefs(member.ty).map_err(&err)?;
    let field_type = btf.type_by_id(field_type_id).map_err(&err)?;
    let bit_off = spec.bit_offset;
    let mut bit_sz = member.bitfield_size;
    let bitfield = bit_sz > 0;

    let (byte_off, byte_sz) = if bitfield {
        let storage = btf.size_of(field_type_id).map_err(&err)?;
        let too_wide = ReloError::BitfieldTooWide {
            bit_offset: bit_off,
            bit_size: bit_sz,
            byte_size: storage,
        };
        if storage == 0 {
            return Err(too_wide);
        }
        // The smallest aligned load of at least the storage size that
        // covers every bit of the field.
        let mut byte_sz = u64::from(storage);
        let mut byte_off = bit_off / 8 / byte_sz * byte_sz;
        while (bit_off - byte_off * 8) + u64::from(bit_sz) > byte_sz * 8 {
            if byte_sz >= 8 {
                return Err(too_wide);
            }
            byte_sz *= 2;
            byte_off = bit_off / 8 / byte_sz * byte_sz;
        }
        (byte_off, byte_sz)
    } else {
        let size = btf.size_of(field_type_id).map_err(&err)?;
        bit_sz = size.saturating_mul(8);
        (bit_off / 8, u64::from(size))
    };

    let mut validate = !bitfield;
    let (val, size, type_id) = match kind {
        CoreReloKind::FieldByteOffset if bitfield => (byte_off, 0, 0),
        CoreReloKind::FieldByteOffset => (byte_off, byte_sz as u32, field_type_id),
        CoreReloKind::FieldByteSize => (byte_sz, 0, 0),
        CoreReloKind::FieldSigned => {
            validate = true;
            let signed = match field_type.kind {
                TypeKind::Int(i) => i.signed,
                TypeKind::Enum(e) => e.signed,
                TypeKind::Enum64(e) => e.signed,
                _ => false,
            };
            (u64::from(signed), 0, 0)
        }
        CoreReloKind::FieldLShiftU64 => {
            // Little-endian: the field's top bit goes to bit 63.
            let end = (bit_off - byte_off * 8) + u64::from(bit_sz);
            let shift = 64u64.checked_sub(end).ok_or(ReloError::BitfieldTooWide {
                bit_offset: bit_off,
                bit_size: bit_sz,
                byte_size: byte_sz as u32,
            })?;
            (shift, 0, 0)
        }
        CoreReloKind::FieldRShiftU64 => {
            validate = true;
            let shift = 64u64
                .checked_sub(u64::from(bit_sz))
                .ok_or(ReloError::BitfieldTooWide {
                    bit_offset: bit_off,
                    bit_size: bit_sz,
                    byte_size: byte_sz as u32,
                })?;
            (shift, 0, 0)
        }
        _ => {
            return Err(ReloError::KindNotApplicable {
                kind,
                what: "a field",
            })
        }
    };
    Ok(Some(FieldValue {
        val,
        size,
        type_id,
        validate,
    }))
}

/// The value of a type-based kind (not `TYPE_ID_LOCAL`, handled before
/// matching); a missing target type gives 0, never poison.
fn type_value(
    kind: CoreReloKind,
    spec: Option<&Spec<'_>>,
    is_local: bool,
) -> Result<u64, ReloError> {
    let Some(spec) = spec else { return Ok(0) };
    Ok(match kind {
        CoreReloKind::TypeIdTarget => u64::from(spec.root_type_id),
        CoreReloKind::TypeExists | CoreReloKind::TypeMatches => 1,
        CoreReloKind::TypeSize => u64::from(
            spec.btf
                .size_of(spec.root_type_id)
                .map_err(side(is_local))?,
        ),
        _ => {
            return Err(ReloError::KindNotApplicable {
                kind,
                what: "a type",
            })
        }
    })
}

/// The value of an enum value kind; `None` asks for poisoning.
fn enumval_value(
    kind: CoreReloKind,
    spec: Option<&Spec<'_>>,
    is_local: bool,
) -> Result<Option<u64>, ReloError> {
    match kind {
        CoreReloKind::EnumvalExists => Ok(Some(u64::from(spec.is_some()))),
        CoreReloKind::EnumvalValue => {
            let Some(spec) = spec else { return Ok(None) };
            let acc = spec.accessors.first().ok_or(ReloError::AccessString {
                reason: "it is empty",
            })?;
            let t = spec.btf.type_by_id(acc.type_id).map_err(side(is_local))?;
            let values = enumerators(&t.kind).ok_or(ReloError::NotEnum {
                type_id: acc.type_id,
                kind: t.kind(),
            })?;
            let &(_, v) = values.get(acc.idx as usize).ok_or(ReloError::EnumIndex {
                index: acc.idx,
                type_id: acc.type_id,
                len: values.len(),
            })?;
            Ok(Some(v))
        }
        _ => Err(ReloError::KindNotApplicable {
            kind,
            what: "an enumerator",
        }),
    }
}

/// The result of `kind` for the local spec and a target spec (`None`: no
/// candidate matched).
pub(crate) fn calc_relo(
    kind: CoreReloKind,
    local: &Spec<'_>,
    targ: Option<&Spec<'_>>,
) -> Result<ReloResult, ReloError> {
    let mut res = ReloResult {
        orig_val: 0,
        new_val: 0,
        poison: false,
        validate: true,
        fail_memsz_adjust: false,
        orig_sz: 0,
        new_sz: 0,
    };
    match class_of(kind) {
        KindClass::Field => {
            let orig = field_value(kind, Some(local), true)?.ok_or(ReloError::AccessString {
                reason: "it designates no local field",
            })?;
            res.orig_val = orig.val;
            res.orig_sz = orig.size;
            res.validate = orig.validate;
            let Some(new) = field_value(kind, targ, false)? else {
                res.poison = true;
                return Ok(res);
            };
            res.new_val = new.val;
            res.new_sz = new.size;
            if res.orig_sz != res.new_sz {
                // A load may only be resized where zero extension keeps the
                // value: pointers (32-bit kernels) and unsigned integers.
                let orig_t = local
                    .btf
                    .type_by_id(orig.type_id)
                    .map_err(ReloError::local)?;
                let new_t = match targ {
                    Some(t) => t.btf.type_by_id(new.type_id).map_err(ReloError::target)?,
                    None => return Ok(res),
                };
                let resizable = match (orig_t.kind, new_t.kind) {
                    (TypeKind::Ptr(_), TypeKind::Ptr(_)) => true,
                    (TypeKind::Int(a), TypeKind::Int(b)) => !a.signed && !b.signed,
                    _ => false,
                };
                res.fail_memsz_adjust = !resizable;
            }
        }
        KindClass::Type => {
            res.orig_val = type_value(kind, Some(local), true)?;
            res.validate = kind != CoreReloKind::TypeIdTarget;
            res.new_val = type_value(kind, targ, false)?;
        }
        KindClass::Enumval => {
            res.orig_val =
                enumval_value(kind, Some(local), true)?.ok_or(ReloError::AccessString {
                    reason: "it designates no local enumerator",
                })?;
            match enumval_value(kind, targ, false)? {
                Some(v) => res.new_val = v,
                None => res.poison = true,
            }
        }
    }
    Ok(res)
}
