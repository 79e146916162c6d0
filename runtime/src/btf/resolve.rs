//! Following type references: modifiers, typedefs, sizes and alignments.
//!
//! Every chain is bounded ([`MAX_RESOLVE_DEPTH`] hops, as libbpf bounds
//! its own), so a reference cycle in untrusted BTF ends in
//! [`BtfError::Cycle`] naming the type where the walk gave up.

use std::collections::HashMap;

use super::{Btf, BtfError, Kind, TypeKind};

/// Longest chain of references followed before giving up.
pub const MAX_RESOLVE_DEPTH: u32 = 32;

/// Largest natural alignment on a 64-bit target (`__int128`, `long double`).
const MAX_ALIGN: u32 = 16;

impl Btf {
    /// Follows `const`, `volatile`, `restrict` and type tags from `id` to the
    /// first type that is none of them.
    pub fn skip_mods(&self, id: u32) -> Result<u32, BtfError> {
        self.skip(id, false)
    }

    /// Follows modifiers, type tags and typedefs from `id`.
    pub fn skip_mods_and_typedefs(&self, id: u32) -> Result<u32, BtfError> {
        self.skip(id, true)
    }

    fn skip(&self, start: u32, typedefs: bool) -> Result<u32, BtfError> {
        let (mut cur, mut from) = (start, None);
        for _ in 0..=MAX_RESOLVE_DEPTH {
            let next = match self.type_from(cur, from)?.kind {
                TypeKind::Const(n)
                | TypeKind::Volatile(n)
                | TypeKind::Restrict(n)
                | TypeKind::TypeTag(n) => n,
                TypeKind::Typedef(n) if typedefs => n,
                _ => return Ok(cur),
            };
            (from, cur) = (Some(cur), next);
        }
        Err(BtfError::Cycle {
            id: cur,
            start,
            hops: MAX_RESOLVE_DEPTH,
        })
    }

    /// Size in bytes of type `id`: ints, floats, pointers (8), structs,
    /// unions, enums and datasecs directly; arrays as element size times
    /// element count (checked); typedefs, modifiers and vars through what
    /// they name. Void, functions, prototypes, forward declarations and decl
    /// tags have no size.
    pub fn size_of(&self, id: u32) -> Result<u32, BtfError> {
        let (mut cur, mut from) = (id, None);
        // Product of the array lengths crossed so far; u64 saturating so that
        // a huge count of zero-sized elements is still 0, not an overflow.
        let mut count: u64 = 1;
        for _ in 0..=MAX_RESOLVE_DEPTH {
            let t = self.type_from(cur, from)?;
            let size = match t.kind {
                TypeKind::Int(i) => i.size,
                TypeKind::Float { size } => size,
                TypeKind::Ptr(_) => 8,
                TypeKind::Struct(c) | TypeKind::Union(c) => c.size,
                TypeKind::Enum(e) => e.size,
                TypeKind::Enum64(e) => e.size,
                TypeKind::Datasec(d) => d.size,
                TypeKind::Typedef(n)
                | TypeKind::Volatile(n)
                | TypeKind::Const(n)
                | TypeKind::Restrict(n)
                | TypeKind::TypeTag(n)
                | TypeKind::Var { ty: n, .. } => {
                    (from, cur) = (Some(cur), n);
                    continue;
                }
                TypeKind::Array(a) => {
                    count = count.saturating_mul(u64::from(a.nelems));
                    (from, cur) = (Some(cur), a.elem_type);
                    continue;
                }
                TypeKind::Void
                | TypeKind::Func { .. }
                | TypeKind::FuncProto(_)
                | TypeKind::Fwd { .. }
                | TypeKind::DeclTag { .. } => {
                    return Err(BtfError::NotSized {
                        id: cur,
                        kind: t.kind(),
                    })
                }
            };
            return u64::from(size)
                .checked_mul(count)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or(BtfError::SizeOverflow { id });
        }
        Err(BtfError::Cycle {
            id: cur,
            start: id,
            hops: MAX_RESOLVE_DEPTH,
        })
    }

    /// Alignment in bytes of type `id` as a C compiler for a 64-bit target
    /// lays it out: scalars by their size (up to 16), pointers 8, arrays by
    /// their element, structs and unions by their most aligned member, and 1
    /// for a packed struct (a member offset that is not a multiple of its
    /// alignment, or a size that is not a multiple of the struct's).
    pub fn align_of(&self, id: u32) -> Result<u32, BtfError> {
        let mut memo = HashMap::new();
        self.align_inner(id, id, None, 0, &mut memo)
    }

    /// `memo` holds composites already computed in this call: a struct
    /// reached along many paths (a DAG) is walked once, so the work stays
    /// linear in the number of members even for hostile BTF.
    fn align_inner(
        &self,
        start: u32,
        id: u32,
        from: Option<u32>,
        depth: u32,
        memo: &mut HashMap<u32, u32>,
    ) -> Result<u32, BtfError> {
        let (mut cur, mut from) = (id, from);
        for _ in 0..=MAX_RESOLVE_DEPTH {
            let t = self.type_from(cur, from)?;
            let scalar = |size: u32| {
                natural_align(size).ok_or(BtfError::NoAlignment {
                    id: cur,
                    kind: t.kind(),
                })
            };
            return match t.kind {
                TypeKind::Int(i) => scalar(i.size),
                TypeKind::Float { size } => scalar(size),
                TypeKind::Enum(e) => scalar(e.size),
                TypeKind::Enum64(e) => scalar(e.size),
                TypeKind::Ptr(_) => Ok(8),
                TypeKind::Typedef(n)
                | TypeKind::Volatile(n)
                | TypeKind::Const(n)
                | TypeKind::Restrict(n)
                | TypeKind::TypeTag(n)
                | TypeKind::Var { ty: n, .. } => {
                    (from, cur) = (Some(cur), n);
                    continue;
                }
                TypeKind::Array(a) => {
                    (from, cur) = (Some(cur), a.elem_type);
                    continue;
                }
                TypeKind::Struct(c) | TypeKind::Union(c) => {
                    if let Some(&a) = memo.get(&cur) {
                        return Ok(a);
                    }
                    if depth >= MAX_RESOLVE_DEPTH {
                        return Err(BtfError::Cycle {
                            id: cur,
                            start,
                            hops: MAX_RESOLVE_DEPTH,
                        });
                    }
                    let mut max_align = 1;
                    let mut packed = false;
                    for m in c.members() {
                        let a = self.align_inner(start, m.ty, Some(cur), depth + 1, memo)?;
                        max_align = max_align.max(a);
                        // A plain member off its natural alignment: packed.
                        if m.bitfield_size == 0 && u64::from(m.bit_offset) % (8 * u64::from(a)) != 0
                        {
                            packed = true;
                        }
                    }
                    let align = if packed || c.size % max_align != 0 {
                        1
                    } else {
                        max_align
                    };
                    memo.insert(cur, align);
                    Ok(align)
                }
                TypeKind::Void
                | TypeKind::Func { .. }
                | TypeKind::FuncProto(_)
                | TypeKind::Fwd { .. }
                | TypeKind::Datasec(_)
                | TypeKind::DeclTag { .. } => Err(BtfError::NoAlignment {
                    id: cur,
                    kind: t.kind(),
                }),
            };
        }
        Err(BtfError::Cycle {
            id: cur,
            start,
            hops: MAX_RESOLVE_DEPTH,
        })
    }

    /// Whether type `id`, after modifiers and typedefs, is of kind `kind`.
    pub fn resolves_to(&self, id: u32, kind: Kind) -> Result<bool, BtfError> {
        let id = self.skip_mods_and_typedefs(id)?;
        Ok(self.kind_of(id)? == kind)
    }
}

/// The natural alignment of a scalar of `size` bytes: its largest power-of-two
/// divisor, capped at 16. `None` for size 0.
fn natural_align(size: u32) -> Option<u32> {
    if size == 0 {
        return None;
    }
    Some((1u32 << size.trailing_zeros()).min(MAX_ALIGN))
}
