//! BTF deduplication: merging types that describe the same C type, as
//! libbpf's `btf__dedup` does after a static link (each object brings its
//! own copy of `__u32`, `struct xdp_md`, the map definition structs...).
//!
//! The kernel/libbpf algorithm walks the type graph pairwise with a
//! "hypothetical map" to decide whether two structs are equivalent; the
//! result it aims at is the coarsest equivalence under which two types are
//! equal when their own fields (kind, name, size, encoding, member names and
//! offsets...) are equal and the types they refer to are equivalent,
//! member by member. That is a bisimulation, and here it is computed
//! directly by partition refinement (Moore's DFA minimisation):
//!
//! 1. types start in classes by their shallow fields (type ids zeroed);
//! 2. each round splits classes whose members refer to different classes;
//!    when no class splits, equivalent types share a class, cycles included
//!    (a `struct list { struct list *next; }` in two objects merges);
//! 3. a FWD whose name names exactly one struct (union) class after a first
//!    refinement is resolved to it: references to the FWD are redirected and
//!    the refinement runs again, so `struct foo *` via a forward declaration
//!    in one object and the full `struct foo` in another become one type;
//! 4. each class keeps its lowest id (libbpf's canonical choice: the first
//!    occurrence), the rest are dropped and ids are renumbered in order.
//!
//! VAR and DATASEC are never merged (libbpf leaves them alone too).
//!
//! Not covered, compared with libbpf: an ENUM forward declaration (`vlen`
//! 0) is not merged into the full ENUM, ENUM vs ENUM64 of equal values are
//! not merged, and an ambiguous FWD (two different structs of its name)
//! stays a FWD, as libbpf leaves it. A struct that differs from another only
//! in a member typed by a FWD in one and by the full struct in the other is
//! merged only when the FWD resolves (step 3); libbpf's hypothetical map
//! does the same for unambiguous names.

use std::collections::HashMap;

use skelgen_runtime::btf::Kind;

use super::types::{RawType, TypeList};

/// Rounds of refinement are bounded by the number of types; this bounds the
/// work a hostile input can cause beyond that.
const MAX_TYPES: usize = 1 << 20;

/// Class of every type id (index = id, 0 = void keeps class 0).
fn refine(types: &TypeList, redirect: &[u32]) -> Vec<u32> {
    let n = types.types.len();
    let target = |id: u32| -> u32 { redirect.get(id as usize).copied().unwrap_or(id) };
    // Initial classes from the shallow fields; VAR/DATASEC are their own.
    let mut class = vec![0u32; n + 1];
    let mut keys: HashMap<(RawType, u32), u32> = HashMap::new();
    for (i, t) in types.types.iter().enumerate() {
        let id = i as u32 + 1;
        let unique = if matches!(t.kind, Kind::Var | Kind::Datasec) {
            id
        } else {
            0
        };
        let next = keys.len() as u32 + 1;
        class[id as usize] = *keys.entry((t.shallow(), unique)).or_insert(next);
    }
    let mut count = keys.len();
    drop(keys);
    // Out-of-range references keep their own number (plus an offset that
    // cannot collide with a class), so they only ever equal themselves.
    let class_of = |class: &[u32], id: u32| -> u64 {
        let id = target(id);
        match class.get(id as usize) {
            Some(&c) => u64::from(c),
            None => (1u64 << 32) + u64::from(id),
        }
    };
    loop {
        let mut keys: HashMap<(u32, Vec<u64>), u32> = HashMap::with_capacity(count);
        let mut next = vec![0u32; n + 1];
        for (i, t) in types.types.iter().enumerate() {
            let id = i + 1;
            let refs: Vec<u64> = t.refs().into_iter().map(|r| class_of(&class, r)).collect();
            let fresh = keys.len() as u32 + 1;
            next[id] = *keys.entry((class[id], refs)).or_insert(fresh);
        }
        let new_count = keys.len();
        class = next;
        if new_count == count {
            return class;
        }
        count = new_count;
    }
}

/// Deduplicates `types` in place and returns the map from old id to new
/// id (index = old id; void stays 0). Inputs beyond [`MAX_TYPES`] are left
/// as they are (identity map).
pub(crate) fn dedup(types: &mut TypeList) -> Vec<u32> {
    let n = types.types.len();
    if n > MAX_TYPES {
        return (0..=n as u32).collect();
    }
    let identity: Vec<u32> = (0..=n as u32).collect();
    let first = refine(types, &identity);

    // FWD resolution: a FWD names exactly one struct (union) class.
    let mut by_name: HashMap<(&str, bool), Vec<u32>> = HashMap::new();
    for (i, t) in types.types.iter().enumerate() {
        let is_union = match t.kind {
            Kind::Struct => false,
            Kind::Union => true,
            _ => continue,
        };
        if t.name.is_empty() {
            continue;
        }
        let entry = by_name.entry((t.name.as_str(), is_union)).or_default();
        let c = first[i + 1];
        if !entry.iter().any(|&id| first[id as usize] == c) {
            entry.push(i as u32 + 1);
        }
    }
    let mut redirect = identity.clone();
    let mut any = false;
    for (i, t) in types.types.iter().enumerate() {
        if t.kind != Kind::Fwd {
            continue;
        }
        if let Some(&[only]) = by_name.get(&(t.name.as_str(), t.kflag)).map(Vec::as_slice) {
            redirect[i + 1] = only;
            any = true;
        }
    }
    drop(by_name);
    let class = if any { refine(types, &redirect) } else { first };

    // Canonical = lowest id of each class; resolved FWDs map to their
    // struct's canonical.
    let mut canon_of_class: HashMap<u32, u32> = HashMap::new();
    for id in 1..=n as u32 {
        canon_of_class.entry(class[id as usize]).or_insert(id);
    }
    let canon = |id: u32| -> u32 {
        let id = redirect.get(id as usize).copied().unwrap_or(id);
        match class.get(id as usize) {
            Some(&c) if id != 0 => canon_of_class.get(&c).copied().unwrap_or(id),
            _ => id,
        }
    };
    let mut new_id = vec![0u32; n + 1];
    let mut kept = Vec::new();
    for id in 1..=n as u32 {
        if canon(id) == id {
            kept.push(id);
            new_id[id as usize] = kept.len() as u32;
        }
    }
    let mut map = vec![0u32; n + 1];
    for id in 1..=n as u32 {
        map[id as usize] = new_id[canon(id) as usize];
    }
    let old = std::mem::take(&mut types.types);
    for id in kept {
        let mut t = old[id as usize - 1].clone();
        // Out-of-range ids stay as they were (the writer's parse reports them).
        t.map_refs(|r| map.get(r as usize).copied().unwrap_or(r));
        types.types.push(t);
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(kind: Kind, name: &str, sot: u32, words: Vec<u32>, rec_names: &[&str]) -> RawType {
        let vlen = match kind {
            Kind::Struct | Kind::Union => words.len() as u32 / 3,
            Kind::FuncProto => words.len() as u32 / 2,
            _ => 0,
        };
        RawType {
            kind,
            name: name.into(),
            kflag: false,
            vlen,
            sot,
            words,
            rec_names: rec_names.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn int(name: &str) -> RawType {
        t(Kind::Int, name, 4, vec![32], &[])
    }

    /// `struct list { struct list *next; int v; }`, its pointer at `base+1`.
    fn list(base: u32, int_id: u32) -> Vec<RawType> {
        vec![
            t(
                Kind::Struct,
                "list",
                16,
                vec![0, base + 1, 0, 0, int_id, 64],
                &["next", "v"],
            ),
            t(Kind::Ptr, "", base, vec![], &[]),
        ]
    }

    #[test]
    fn cyclic_structs_from_two_objects_merge() {
        let mut l = TypeList::default();
        l.push(int("int")); // 1
        for x in list(2, 1) {
            l.push(x); // 2, 3
        }
        l.push(int("int")); // 4
        for x in list(5, 4) {
            l.push(x); // 5, 6
        }
        let map = dedup(&mut l);
        assert_eq!(map, vec![0, 1, 2, 3, 1, 2, 3]);
        assert_eq!(l.types.len(), 3);
        assert_eq!(l.types[0].refs(), Vec::<u32>::new());
        assert_eq!(l.types[1].refs(), vec![3, 1]);
    }

    #[test]
    fn different_structs_of_one_name_stay_apart_and_keep_the_fwd() {
        let mut l = TypeList::default();
        l.push(int("int")); // 1
        l.push(t(Kind::Struct, "s", 4, vec![0, 1, 0], &["a"])); // 2
        l.push(t(Kind::Struct, "s", 4, vec![0, 1, 0], &["b"])); // 3
        l.push(t(Kind::Fwd, "s", 0, vec![], &[])); // 4
        let map = dedup(&mut l);
        assert_eq!(map, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn unambiguous_fwd_resolves_to_its_struct() {
        let mut l = TypeList::default();
        l.push(int("int")); // 1
        l.push(t(Kind::Fwd, "s", 0, vec![], &[])); // 2
        l.push(t(Kind::Ptr, "", 2, vec![], &[])); // 3: struct s * via the fwd
        l.push(t(Kind::Struct, "s", 4, vec![0, 1, 0], &["a"])); // 4
        l.push(t(Kind::Ptr, "", 4, vec![], &[])); // 5: struct s *
        let map = dedup(&mut l);
        // The fwd goes, both pointers are one, the struct keeps its place.
        assert_eq!(map, vec![0, 1, 3, 2, 3, 2]);
        assert_eq!(l.types.len(), 3);
        assert_eq!(l.types[1].refs(), vec![3]);
        assert_eq!(l.types[2].kind, Kind::Struct);
    }

    #[test]
    fn vars_are_never_merged() {
        let mut l = TypeList::default();
        l.push(int("int"));
        l.push(t(Kind::Var, "x", 1, vec![1], &[]));
        l.push(t(Kind::Var, "x", 1, vec![1], &[]));
        assert_eq!(dedup(&mut l), vec![0, 1, 2, 3]);
    }
}
