//! Layout analysis: what a C compiler for the BPF target did with each
//! struct and union, inferred from BTF (which records sizes and member
//! offsets, but neither packing nor alignment).
//!
//! For each composite this finds, from its members:
//!
//! - `c_nat`: the largest natural alignment among its members (a bitfield
//!   counts with its declared type, as in C);
//! - packed: a plain member whose offset is not a multiple of its alignment,
//!   or a size that is not a multiple of `c_nat` => alignment 1;
//! - over-aligned: a size larger than the members' end rounded up to `c_nat`
//!   => the smallest power of two `A` (up to 4096) for which rounding the end
//!   up to `A` gives the size exactly; if there is none, the tail is just
//!   padding and the alignment stays `c_nat`.
//!
//! What BTF cannot show stays undetected: a packed struct whose members all
//! happen to be aligned has the same bytes as an unpacked one, and an
//! `aligned(N)` struct whose size is already a multiple of `N` looks natural.
//! Either way sizes and offsets (what the generated code asserts) are right.

use std::collections::HashMap;

use skelgen_runtime::btf::{Btf, BtfError, TypeKind};

use super::GenError;

/// Deepest nesting of composites by value (and of type references) that is
/// followed before giving up on (probably cyclic) BTF.
pub(crate) const MAX_DEPTH: u32 = 64;

/// Largest alignment inferred for an over-aligned composite.
const MAX_INFERRED_ALIGN: u32 = 4096;

/// How a bitfield's value is typed in its getter and setter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BitValue {
    /// An integer of this many bytes (1, 2, 4, 8), signed or not.
    Int { size: u32, signed: bool },
    /// A `bool` bitfield: read as a Rust `bool` (any non-zero bit is true).
    Bool,
    /// An enum (type id after modifiers and typedefs) of this representation.
    Enum { id: u32, size: u32, signed: bool },
}

/// One member, as the layout analysis saw it.
#[derive(Clone, Debug)]
pub(crate) struct MemberPlan {
    /// The C name; empty for an anonymous member.
    pub name: String,
    /// The member's type id.
    pub ty: u32,
    /// Byte offset (of the first byte touched, for a bitfield).
    pub offset: u32,
    /// Size in bytes (of the bytes touched, for a bitfield).
    pub size: u32,
    /// For a bitfield: absolute bit offset, width and value type.
    pub bits: Option<(u32, u32, BitValue)>,
}

/// A struct or union, analysed.
#[derive(Clone, Debug)]
pub(crate) struct CompInfo {
    /// A union rather than a struct.
    pub is_union: bool,
    /// Size in bytes (BTF).
    pub size: u32,
    /// The alignment C gave it (inferred; 1 when packed).
    pub c_align: u32,
    /// Largest alignment among the Rust fields that will be generated for
    /// the plain members (bitfield storage and padding are byte arrays).
    pub r_nat: u32,
    /// Whether it was laid out packed.
    pub packed: bool,
    /// Members in BTF order.
    pub members: Vec<MemberPlan>,
}

/// Memoised analysis over one BTF.
pub(crate) struct Layouts<'a> {
    btf: &'a Btf,
    memo: HashMap<u32, CompInfo>,
}

/// `x` rounded up to a multiple of `a` (a power of two), in u64.
fn round_up(x: u64, a: u32) -> u64 {
    let a = u64::from(a.max(1));
    x.div_ceil(a) * a
}

/// Natural alignment of a scalar: its largest power-of-two divisor, capped
/// at 16 (x86-64 and BPF give `__int128` 16).
pub(crate) fn natural_align(size: u32) -> u32 {
    if size == 0 {
        1
    } else {
        (1u32 << size.trailing_zeros()).min(16)
    }
}

/// Whether an integer of this size is generated as a Rust primitive (rather
/// than a byte array).
pub(crate) fn is_prim_size(size: u32) -> bool {
    matches!(size, 1 | 2 | 4 | 8 | 16)
}

impl<'a> Layouts<'a> {
    pub(crate) fn new(btf: &'a Btf) -> Self {
        Layouts {
            btf,
            memo: HashMap::new(),
        }
    }

    fn btf_err(id: u32) -> impl FnOnce(BtfError) -> GenError {
        move |source| GenError::Btf { id, source }
    }

    /// `(C alignment, alignment of the generated Rust type)` of a type used
    /// by value.
    pub(crate) fn align(&mut self, id: u32, depth: u32) -> Result<(u32, u32), GenError> {
        if depth > MAX_DEPTH {
            return Err(GenError::TooDeep {
                id,
                limit: MAX_DEPTH,
            });
        }
        let btf = self.btf;
        let t = btf.type_by_id(id).map_err(Self::btf_err(id))?;
        Ok(match t.kind {
            TypeKind::Int(i) => {
                let c = natural_align(i.size);
                (c, if is_prim_size(i.size) { c } else { 1 })
            }
            TypeKind::Float { size } => {
                let c = natural_align(size);
                (c, if matches!(size, 4 | 8) { c } else { 1 })
            }
            TypeKind::Enum(e) => (natural_align(e.size), natural_align(e.size)),
            TypeKind::Enum64(e) => (natural_align(e.size), natural_align(e.size)),
            TypeKind::Ptr(_) => (8, 8),
            TypeKind::Typedef(n)
            | TypeKind::Const(n)
            | TypeKind::Volatile(n)
            | TypeKind::Restrict(n)
            | TypeKind::TypeTag(n)
            | TypeKind::Var { ty: n, .. } => self.align(n, depth + 1)?,
            TypeKind::Array(a) => self.align(a.elem_type, depth + 1)?,
            TypeKind::Struct(_) | TypeKind::Union(_) => {
                let c = self.composite(id, depth + 1)?.c_align;
                (c, c)
            }
            _ => {
                return Err(GenError::NotByValue {
                    id,
                    kind: t.kind().as_str(),
                })
            }
        })
    }

    /// Size in bytes of a type used by value.
    pub(crate) fn size(&self, id: u32) -> Result<u32, GenError> {
        self.btf.size_of(id).map_err(|source| match source {
            BtfError::NotSized { id, kind } => GenError::NotByValue {
                id,
                kind: kind.as_str(),
            },
            source => GenError::Btf { id, source },
        })
    }

    /// How a bitfield of type `id` is read and written.
    fn bit_value(&self, id: u32) -> Result<BitValue, GenError> {
        let btf = self.btf;
        let r = btf.skip_mods_and_typedefs(id).map_err(Self::btf_err(id))?;
        let t = btf.type_by_id(r).map_err(Self::btf_err(r))?;
        let fits = |size: u32| matches!(size, 1 | 2 | 4 | 8);
        match t.kind {
            TypeKind::Int(i) if i.bool => Ok(BitValue::Bool),
            TypeKind::Int(i) if fits(i.size) => Ok(BitValue::Int {
                size: i.size,
                signed: i.signed,
            }),
            TypeKind::Enum(e) if fits(e.size) => Ok(BitValue::Enum {
                id: r,
                size: e.size,
                signed: false,
            }),
            TypeKind::Enum64(e) if fits(e.size) => Ok(BitValue::Enum {
                id: r,
                size: e.size,
                signed: e.signed,
            }),
            _ => Err(GenError::BadBitfieldType {
                id: r,
                kind: t.kind().as_str(),
            }),
        }
    }

    /// The analysis of struct or union `id` (memoised).
    pub(crate) fn composite(&mut self, id: u32, depth: u32) -> Result<&CompInfo, GenError> {
        if !self.memo.contains_key(&id) {
            let info = self.analyse(id, depth)?;
            self.memo.insert(id, info);
        }
        self.memo.get(&id).ok_or(GenError::TooDeep {
            id,
            limit: MAX_DEPTH,
        })
    }

    fn analyse(&mut self, id: u32, depth: u32) -> Result<CompInfo, GenError> {
        if depth > MAX_DEPTH {
            return Err(GenError::TooDeep {
                id,
                limit: MAX_DEPTH,
            });
        }
        let btf = self.btf;
        let t = btf.type_by_id(id).map_err(Self::btf_err(id))?;
        let (c, is_union) = match t.kind {
            TypeKind::Struct(c) => (c, false),
            TypeKind::Union(c) => (c, true),
            _ => {
                return Err(GenError::NotByValue {
                    id,
                    kind: t.kind().as_str(),
                })
            }
        };
        let (mut c_nat, mut r_nat, mut end, mut misaligned) = (1u32, 1u32, 0u64, false);
        let mut members = Vec::with_capacity(c.len());
        for (index, m) in c.members().enumerate() {
            let name = btf.name(m.name_off).map_err(Self::btf_err(id))?.to_string();
            // Without kind_flag, a bitfield is encoded in its INT type instead.
            let mut bitfield = (m.bitfield_size > 0).then_some((m.bit_offset, m.bitfield_size));
            if bitfield.is_none() {
                let r = btf
                    .skip_mods_and_typedefs(m.ty)
                    .map_err(Self::btf_err(m.ty))?;
                if let Ok(TypeKind::Int(i)) = btf.type_by_id(r).map(|t| t.kind) {
                    if u32::from(i.bits) != i.size.saturating_mul(8) || i.offset != 0 {
                        let bit = m.bit_offset.saturating_add(u32::from(i.offset));
                        bitfield = Some((bit, u32::from(i.bits)));
                    }
                }
            }
            let (ca, ra) = self.align(m.ty, depth + 1)?;
            c_nat = c_nat.max(ca);
            let plan = match bitfield {
                Some((bit, width)) => {
                    if width > 64 {
                        return Err(GenError::BadMember {
                            id,
                            index,
                            member: name,
                            reason: format!("bitfield width {width} exceeds 64 bits"),
                        });
                    }
                    let value = self.bit_value(m.ty)?;
                    let first = bit / 8;
                    let last = (u64::from(bit) + u64::from(width)).div_ceil(8);
                    end = end.max(last);
                    MemberPlan {
                        name,
                        ty: m.ty,
                        offset: first,
                        size: (last - u64::from(first)) as u32,
                        bits: Some((bit, width, value)),
                    }
                }
                None => {
                    if m.bit_offset % 8 != 0 {
                        return Err(GenError::BadMember {
                            id,
                            index,
                            member: name,
                            reason: format!(
                                "bit offset {} of a non-bitfield member is not a multiple of 8",
                                m.bit_offset
                            ),
                        });
                    }
                    let offset = m.bit_offset / 8;
                    let size = self.size(m.ty)?;
                    r_nat = r_nat.max(ra);
                    if offset % ca != 0 {
                        misaligned = true;
                    }
                    end = end.max(u64::from(offset) + u64::from(size));
                    MemberPlan {
                        name,
                        ty: m.ty,
                        offset,
                        size,
                        bits: None,
                    }
                }
            };
            members.push(plan);
        }
        if !is_union {
            check_overlaps(id, &members)?;
        }
        let size = c.size;
        if end > u64::from(size) {
            return Err(GenError::TooSmall { id, size, end });
        }
        let packed = misaligned || size % c_nat != 0;
        let c_align = if packed {
            1
        } else if round_up(end, c_nat) == u64::from(size) {
            c_nat
        } else {
            let mut a = c_nat.saturating_mul(2);
            loop {
                if a > MAX_INFERRED_ALIGN {
                    break c_nat;
                }
                if round_up(end, a) == u64::from(size) {
                    break a;
                }
                a *= 2;
            }
        };
        Ok(CompInfo {
            is_union,
            size,
            c_align,
            r_nat: if is_union { 1 } else { r_nat },
            packed,
            members,
        })
    }
}

/// Plain members of a struct may not overlap anything; bitfields may share
/// bytes with each other (they then share one storage field).
fn check_overlaps(id: u32, members: &[MemberPlan]) -> Result<(), GenError> {
    let mut order: Vec<&MemberPlan> = members.iter().collect();
    order.sort_by_key(|m| m.offset);
    let (mut max_end, mut plain_end) = (0u64, 0u64);
    for m in order {
        let (start, end) = (u64::from(m.offset), u64::from(m.offset) + u64::from(m.size));
        let limit = if m.bits.is_some() { plain_end } else { max_end };
        if start < limit {
            return Err(GenError::Overlap {
                id,
                member: m.name.clone(),
                offset: m.offset,
                end: limit,
            });
        }
        max_end = max_end.max(end);
        if m.bits.is_none() {
            plain_end = plain_end.max(end);
        }
    }
    Ok(())
}
