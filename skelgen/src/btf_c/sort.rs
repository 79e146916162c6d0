//! The order of a sorted dump (what `bpftool btf dump ... format c` does
//! by default since bpftool 7.5, for headers that diff well across
//! kernels): roots by rank (named enums, then base types, named structs,
//! function prototypes...), then by name, then by a hash of names that
//! tells same-named types apart, then by id. Dependencies still come out
//! before the types that need them.

use skelgen_runtime::btf::{Btf, TypeKind};

const MAX_RANK: u32 = 10;

/// Type ids `1..btf.len()` in sorted-dump order.
pub(super) fn sorted_ids(btf: &Btf) -> Vec<u32> {
    let mut keys: Vec<(u32, &str, &str, u64, u32)> = (1..btf.len())
        .map(|id| {
            let own = btf.type_name(id).unwrap_or("");
            (
                rank(btf, id, false, 0),
                sort_name(btf, id, false, 0),
                own,
                disambig_hash(btf, id, true, 0),
                id,
            )
        })
        .collect();
    keys.sort_unstable();
    keys.into_iter().map(|k| k.4).collect()
}

fn rank(btf: &Btf, id: u32, has_name: bool, depth: u32) -> u32 {
    let Ok(t) = btf.type_by_id(id) else {
        return MAX_RANK;
    };
    let has_name = has_name || t.name_off != 0;
    if depth > super::MAX_DEPTH {
        return MAX_RANK;
    }
    match t.kind {
        TypeKind::Enum(_) | TypeKind::Enum64(_) => u32::from(has_name),
        TypeKind::Int(_) | TypeKind::Float { .. } => 2,
        TypeKind::Struct(_) | TypeKind::Union(_) if has_name => 3,
        TypeKind::FuncProto(_) if has_name => 4,
        TypeKind::Array(a) if has_name => rank(btf, a.elem_type, true, depth + 1),
        TypeKind::TypeTag(to)
        | TypeKind::Const(to)
        | TypeKind::Ptr(to)
        | TypeKind::Volatile(to)
        | TypeKind::Restrict(to)
        | TypeKind::Typedef(to)
        | TypeKind::DeclTag { target: to, .. }
            if has_name =>
        {
            rank(btf, to, true, depth + 1)
        }
        _ => MAX_RANK,
    }
}

/// The name a type sorts under: its own, or (for references) the name of
/// what it refers to; an anonymous enum sorts under its first enumerator.
fn sort_name(btf: &Btf, id: u32, from_ref: bool, depth: u32) -> &str {
    let Ok(t) = btf.type_by_id(id) else {
        return "";
    };
    if depth > super::MAX_DEPTH {
        return "";
    }
    let name = |off| btf.name(off).unwrap_or("");
    match t.kind {
        TypeKind::Enum(e) if !from_ref && t.name_off == 0 => {
            e.values().next().map_or("", |v| name(v.name_off))
        }
        TypeKind::Enum64(e) if !from_ref && t.name_off == 0 => {
            e.values().next().map_or("", |v| name(v.name_off))
        }
        TypeKind::Array(a) => sort_name(btf, a.elem_type, true, depth + 1),
        TypeKind::TypeTag(to)
        | TypeKind::Const(to)
        | TypeKind::Ptr(to)
        | TypeKind::Volatile(to)
        | TypeKind::Restrict(to)
        | TypeKind::Typedef(to)
        | TypeKind::DeclTag { target: to, .. } => sort_name(btf, to, true, depth + 1),
        _ => name(t.name_off),
    }
}

fn mix(h: u64, v: u64) -> u64 {
    h.wrapping_mul(31).wrapping_add(v)
}

fn str_hash(s: &str) -> u64 {
    s.bytes().fold(0u64, |h, b| mix(h, u64::from(b)))
}

fn name_hash(h: u64, btf: &Btf, off: u32) -> u64 {
    if off == 0 {
        return h;
    }
    mix(h, str_hash(btf.name(off).unwrap_or("")))
}

/// Names of members and enumerators, hashed: same-named types differ here.
fn disambig_hash(btf: &Btf, id: u32, members: bool, depth: u32) -> u64 {
    let Ok(t) = btf.type_by_id(id) else {
        return 0;
    };
    let mut h = name_hash(0, btf, t.name_off);
    if depth > super::MAX_DEPTH {
        return h;
    }
    match t.kind {
        TypeKind::Enum(e) => e.values().for_each(|v| h = name_hash(h, btf, v.name_off)),
        TypeKind::Enum64(e) => e.values().for_each(|v| h = name_hash(h, btf, v.name_off)),
        TypeKind::Struct(c) | TypeKind::Union(c) if members => {
            for m in c.members() {
                h = name_hash(h, btf, m.name_off);
                h = mix(h, disambig_hash(btf, m.ty, false, depth + 1));
            }
        }
        TypeKind::TypeTag(to)
        | TypeKind::Const(to)
        | TypeKind::Ptr(to)
        | TypeKind::Volatile(to)
        | TypeKind::Restrict(to)
        | TypeKind::Typedef(to)
        | TypeKind::DeclTag { target: to, .. } => {
            h = mix(h, disambig_hash(btf, to, members, depth + 1));
        }
        TypeKind::Array(a) => {
            h = mix(h, u64::from(a.nelems));
            h = mix(h, disambig_hash(btf, a.elem_type, members, depth + 1));
        }
        _ => {}
    }
    h
}
