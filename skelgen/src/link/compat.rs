//! Whether two objects' BTF types for one global symbol describe the same
//! thing: an extern resolved to a definition, a weak definition beaten by a
//! strong one, a map declared in two objects. Structural, across two BTFs:
//! same kinds, names, sizes, encodings, member names and offsets, array
//! lengths; parameter names are ignored (extern prototypes have none); a FWD
//! matches the struct or union of its name.

use std::collections::HashSet;

use skelgen_runtime::btf::{Btf, TypeKind};

/// How deep the comparison follows references before calling the types
/// different (bounds the stack on hostile BTF).
const MAX_DEPTH: u32 = 64;

/// A one-line description of type `id` for error messages
/// (`TYPEDEF '__u64' (8 bytes)`).
pub(crate) fn describe(btf: &Btf, id: u32) -> String {
    describe_at(btf, id, 0)
}

/// [`describe`], `depth` references deep: hostile BTF can make a prototype
/// its own parameter or a VAR its own type (found by the `link` fuzz
/// target: a stack overflow), so past a few levels types are elided.
fn describe_at(btf: &Btf, id: u32, depth: u32) -> String {
    if depth > 4 {
        return "...".into();
    }
    let Ok(t) = btf.type_by_id(id) else {
        return format!("invalid type id {id}");
    };
    let name = btf.name(t.name_off).unwrap_or("?");
    let d = depth + 1;
    let base = match t.kind {
        TypeKind::Var { ty, .. } => return describe_at(btf, ty, d),
        TypeKind::Func { proto, .. } => {
            return format!("FUNC '{name}' of {}", describe_at(btf, proto, d));
        }
        TypeKind::FuncProto(p) => {
            let params: Vec<String> = p.params().map(|x| describe_at(btf, x.ty, d)).collect();
            return format!(
                "FUNC_PROTO ({}) -> {}",
                params.join(", "),
                describe_at(btf, p.ret, d)
            );
        }
        _ if name.is_empty() => format!("{} (anon)", t.kind()),
        _ => format!("{} '{name}'", t.kind()),
    };
    match size(btf, id, 0) {
        Some(s) => format!("{base} ({s} bytes)"),
        None => base,
    }
}

fn size(btf: &Btf, id: u32, depth: u32) -> Option<u64> {
    if depth > MAX_DEPTH {
        return None;
    }
    let t = btf.type_by_id(id).ok()?;
    match t.kind {
        TypeKind::Int(i) => Some(u64::from(i.size)),
        TypeKind::Struct(c) | TypeKind::Union(c) => Some(u64::from(c.size)),
        TypeKind::Enum(e) => Some(u64::from(e.size)),
        TypeKind::Enum64(e) => Some(u64::from(e.size)),
        TypeKind::Float { size } => Some(u64::from(size)),
        TypeKind::Ptr(_) => Some(8),
        TypeKind::Array(a) => size(btf, a.elem_type, depth + 1)?.checked_mul(u64::from(a.nelems)),
        TypeKind::Typedef(x)
        | TypeKind::Const(x)
        | TypeKind::Volatile(x)
        | TypeKind::Restrict(x)
        | TypeKind::TypeTag(x) => size(btf, x, depth + 1),
        _ => None,
    }
}

/// Whether type `a` of `ab` and type `b` of `bb` match.
pub(crate) fn types_match(ab: &Btf, a: u32, bb: &Btf, b: u32) -> bool {
    Matcher {
        ab,
        bb,
        seen: HashSet::new(),
    }
    .eq(a, b, 0)
}

struct Matcher<'a> {
    ab: &'a Btf,
    bb: &'a Btf,
    /// Pairs assumed equal while comparing them (cycles through pointers).
    seen: HashSet<(u32, u32)>,
}

impl Matcher<'_> {
    fn eq(&mut self, a: u32, b: u32, depth: u32) -> bool {
        if depth > MAX_DEPTH {
            return false;
        }
        if !self.seen.insert((a, b)) {
            return true;
        }
        let (Ok(ta), Ok(tb)) = (self.ab.type_by_id(a), self.bb.type_by_id(b)) else {
            return false;
        };
        let (Ok(na), Ok(nb)) = (self.ab.name(ta.name_off), self.bb.name(tb.name_off)) else {
            return false;
        };
        let d = depth + 1;
        use TypeKind as K;
        match (ta.kind, tb.kind) {
            (K::Void, K::Void) => true,
            (K::Fwd { is_union }, K::Struct(_)) | (K::Struct(_), K::Fwd { is_union }) => {
                !is_union && na == nb
            }
            (K::Fwd { is_union }, K::Union(_)) | (K::Union(_), K::Fwd { is_union }) => {
                is_union && na == nb
            }
            (K::Fwd { is_union: x }, K::Fwd { is_union: y }) => x == y && na == nb,
            (K::Int(x), K::Int(y)) => na == nb && x == y,
            (K::Float { size: x }, K::Float { size: y }) => na == nb && x == y,
            (K::Ptr(x), K::Ptr(y))
            | (K::Const(x), K::Const(y))
            | (K::Volatile(x), K::Volatile(y))
            | (K::Restrict(x), K::Restrict(y)) => self.eq(x, y, d),
            (K::TypeTag(x), K::TypeTag(y)) | (K::Typedef(x), K::Typedef(y)) => {
                na == nb && self.eq(x, y, d)
            }
            (K::Array(x), K::Array(y)) => {
                x.nelems == y.nelems && self.eq(x.elem_type, y.elem_type, d)
            }
            (K::Struct(x), K::Struct(y)) | (K::Union(x), K::Union(y)) => {
                if na != nb || x.size != y.size || x.len() != y.len() {
                    return false;
                }
                x.members().zip(y.members()).all(|(ma, mb)| {
                    let names = matches!(
                        (self.ab.name(ma.name_off), self.bb.name(mb.name_off)),
                        (Ok(p), Ok(q)) if p == q
                    );
                    names
                        && ma.bit_offset == mb.bit_offset
                        && ma.bitfield_size == mb.bitfield_size
                        && self.eq(ma.ty, mb.ty, d)
                })
            }
            (K::Enum(x), K::Enum(y)) => {
                na == nb
                    && x.size == y.size
                    && x.len() == y.len()
                    && x.values().zip(y.values()).all(|(p, q)| p.value == q.value)
            }
            (K::Enum64(x), K::Enum64(y)) => {
                na == nb
                    && x.size == y.size
                    && x.len() == y.len()
                    && x.values().zip(y.values()).all(|(p, q)| p.value == q.value)
            }
            (K::FuncProto(x), K::FuncProto(y)) => {
                let (pa, pb): (Vec<_>, Vec<_>) = (x.params().collect(), y.params().collect());
                pa.len() == pb.len()
                    && self.eq(x.ret, y.ret, d)
                    && pa.iter().zip(&pb).all(|(p, q)| self.eq(p.ty, q.ty, d))
            }
            (K::Func { proto: x, .. }, K::Func { proto: y, .. }) => na == nb && self.eq(x, y, d),
            (K::Var { ty: x, .. }, K::Var { ty: y, .. }) => na == nb && self.eq(x, y, d),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::types::{RawType, Strings, TypeList};
    use skelgen_runtime::btf::Kind;

    #[test]
    fn self_referencing_types_are_described_without_recursing_forever() {
        let mut l = TypeList::default();
        // 1: FUNC_PROTO (itself) -> void; 2: VAR v of type 2 (itself).
        l.push(RawType {
            kind: Kind::FuncProto,
            name: String::new(),
            kflag: false,
            vlen: 1,
            sot: 0,
            words: vec![0, 1],
            rec_names: vec![String::new()],
        });
        l.push(RawType {
            kind: Kind::Var,
            name: "v".into(),
            kflag: false,
            vlen: 0,
            sot: 2,
            words: vec![1],
            rec_names: Vec::new(),
        });
        let (bytes, _) = l.encode(&Strings::default()).unwrap();
        let btf = Btf::parse(&bytes).unwrap();
        assert!(describe(&btf, 1).contains("..."));
        assert_eq!(describe(&btf, 2), "...");
        assert!(types_match(&btf, 1, &btf, 1));
    }
}
