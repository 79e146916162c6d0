//! Matching a local spec against one target candidate, and the type
//! compatibility rules behind it (libbpf's `bpf_core_spec_match`,
//! `bpf_core_fields_are_compat`, `bpf_core_types_are_compat` and the
//! stricter `bpf_core_types_match` of `TYPE_MATCHES`).
//!
//! Every walk is bounded twice: by depth ([`MAX_LEVELS`] nested
//! recursions, [`MAX_CHAIN`] hops along pointer/array chains) and by a
//! step budget per relocation, so that BTF built to branch (a struct whose
//! anonymous members share one deeply nested type) ends in an error rather
//! than an exponential walk.

use crate::btf::ext::CoreReloKind;
use crate::btf::{Btf, Kind, Type, TypeKind};

use super::error::ReloError;
use super::names::essential_name;
use super::spec::{class_of, enumerators, is_flex_array, Accessor, KindClass, Spec};

/// Recursion levels (nested function prototypes, struct members, anonymous
/// members) before matching gives up, as libbpf's limit of 32.
pub(crate) const MAX_LEVELS: u32 = 32;

/// Hops along one chain of pointers, arrays and return types.
const MAX_CHAIN: u32 = 32;

/// Steps of work per relocation (all candidates together).
pub(crate) const MAX_STEPS: u32 = 1 << 22;

/// Whether two kinds can correspond across BTFs: equal, or both enums.
pub(crate) fn kinds_compatible(a: Kind, b: Kind) -> bool {
    a == b || (is_enum(a) && is_enum(b))
}

fn is_enum(k: Kind) -> bool {
    matches!(k, Kind::Enum | Kind::Enum64)
}

fn is_composite(k: Kind) -> bool {
    matches!(k, Kind::Struct | Kind::Union)
}

/// One relocation's matching state: the two BTFs and the remaining budget.
pub(crate) struct Matcher<'a> {
    pub local: &'a Btf,
    pub target: &'a Btf,
    steps: u32,
}

type R<T> = Result<T, ReloError>;

impl<'a> Matcher<'a> {
    pub(crate) fn new(local: &'a Btf, target: &'a Btf) -> Self {
        Matcher {
            local,
            target,
            steps: MAX_STEPS,
        }
    }

    fn step(&mut self) -> R<()> {
        self.steps = self.steps.checked_sub(1).ok_or(ReloError::TooComplex {
            what: "steps",
            limit: MAX_STEPS,
        })?;
        Ok(())
    }

    // Local and target lookups, each error tagged with its side.
    fn lt(&self, id: u32) -> R<Type<'a>> {
        self.local.type_by_id(id).map_err(ReloError::local)
    }
    fn tt(&self, id: u32) -> R<Type<'a>> {
        self.target.type_by_id(id).map_err(ReloError::target)
    }
    fn lskip(&self, id: u32) -> R<u32> {
        self.local
            .skip_mods_and_typedefs(id)
            .map_err(ReloError::local)
    }
    fn tskip(&self, id: u32) -> R<u32> {
        self.target
            .skip_mods_and_typedefs(id)
            .map_err(ReloError::target)
    }
    fn lname(&self, off: u32) -> R<&'a str> {
        self.local.name(off).map_err(ReloError::local)
    }
    fn tname(&self, off: u32) -> R<&'a str> {
        self.target.name(off).map_err(ReloError::target)
    }

    /// Matches `local` against the candidate `targ_id`: `Some(target spec)`
    /// when the candidate has the field / type / enumerator.
    pub(crate) fn spec_match(
        &mut self,
        local: &Spec<'a>,
        kind: CoreReloKind,
        targ_id: u32,
    ) -> R<Option<Spec<'a>>> {
        let mut targ = Spec::new(self.target, targ_id);
        match class_of(kind) {
            KindClass::Type => {
                let ok = if kind == CoreReloKind::TypeMatches {
                    self.types_match(local.root_type_id, targ_id, false, MAX_LEVELS)?
                } else {
                    self.types_are_compat(local.root_type_id, targ_id, MAX_LEVELS)?
                };
                Ok(ok.then_some(targ))
            }
            KindClass::Enumval => self.enumval_match(local, targ, targ_id),
            KindClass::Field => {
                let mut targ_id = targ_id;
                for (i, lacc) in local.accessors.iter().enumerate() {
                    self.step()?;
                    targ_id = self.tskip(targ_id)?;
                    if lacc.name.is_some() {
                        match self.match_member(lacc, targ_id, &mut targ, 0)? {
                            Some(next) => targ_id = next,
                            None => return Ok(None),
                        }
                        continue;
                    }
                    // The root step indexes the candidate itself; later
                    // unnamed steps index an array.
                    if i > 0 {
                        let TypeKind::Array(a) = self.tt(targ_id)?.kind else {
                            return Ok(None);
                        };
                        let flex = is_flex_array(self.target, targ.accessors.last(), &a)
                            .map_err(ReloError::target)?;
                        if !flex && lacc.idx >= a.nelems {
                            return Ok(None);
                        }
                        targ_id = self.tskip(a.elem_type)?;
                    }
                    targ.push_raw(lacc.idx)?;
                    targ.accessors.push(Accessor {
                        type_id: targ_id,
                        idx: lacc.idx,
                        name: None,
                    });
                    let size = self.target.size_of(targ_id).map_err(ReloError::target)?;
                    targ.add_elements(lacc.idx, size)?;
                }
                Ok(Some(targ))
            }
        }
    }

    fn enumval_match(
        &mut self,
        local: &Spec<'a>,
        mut targ: Spec<'a>,
        targ_id: u32,
    ) -> R<Option<Spec<'a>>> {
        let Some(lname) = local.accessors.first().and_then(|a| a.name) else {
            return Ok(None);
        };
        let want = essential_name(lname);
        let targ_id = self.tskip(targ_id)?;
        let t = self.tt(targ_id)?;
        let Some(values) = enumerators(&t.kind) else {
            return Ok(None);
        };
        for (i, &(name_off, _)) in (0u32..).zip(values.iter()) {
            self.step()?;
            let name = self.tname(name_off)?;
            if essential_name(name) == want {
                targ.accessors.push(Accessor {
                    type_id: targ_id,
                    idx: i,
                    name: Some(name),
                });
                targ.raw.push(i);
                return Ok(Some(targ));
            }
        }
        Ok(None)
    }

    /// Finds the member named as `lacc` in the target composite `targ_id`,
    /// descending into anonymous members. On success the target spec has
    /// the member's accessor and offset, and the member's type is returned.
    fn match_member(
        &mut self,
        lacc: &Accessor<'a>,
        targ_id: u32,
        targ: &mut Spec<'a>,
        depth: u32,
    ) -> R<Option<u32>> {
        self.step()?;
        if depth > MAX_LEVELS {
            return Err(ReloError::TooComplex {
                what: "levels",
                limit: MAX_LEVELS,
            });
        }
        let targ_id = self.tskip(targ_id)?;
        let comp = match self.tt(targ_id)?.kind {
            TypeKind::Struct(c) | TypeKind::Union(c) => c,
            _ => return Ok(None),
        };
        let local_member = match self.lt(lacc.type_id)?.kind {
            TypeKind::Struct(c) | TypeKind::Union(c) => c.member(lacc.idx as usize),
            _ => None,
        };
        let (Some(local_member), Some(lname)) = (local_member, lacc.name) else {
            return Ok(None);
        };
        for (i, m) in comp.members().enumerate() {
            self.step()?;
            let before = targ.bit_offset;
            targ.add_bits(u64::from(m.bit_offset))?;
            targ.push_raw(i as u32)?;
            let tname = self.tname(m.name_off)?;
            if tname.is_empty() {
                if let Some(next) = self.match_member(lacc, m.ty, targ, depth + 1)? {
                    return Ok(Some(next));
                }
            } else if tname == lname {
                targ.accessors.push(Accessor {
                    type_id: targ_id,
                    idx: i as u32,
                    name: Some(tname),
                });
                if self.fields_are_compat(local_member.ty, m.ty)? {
                    return Ok(Some(m.ty));
                }
                targ.accessors.pop();
                return Ok(None);
            }
            targ.bit_offset = before;
            targ.raw.pop();
        }
        Ok(None)
    }

    /// Whether a local field of type `lid` can be read as a target field of
    /// type `tid`: composites with composites, same-kind scalars, pointers
    /// with pointers, enums/forwards by essential name, arrays by element.
    fn fields_are_compat(&mut self, mut lid: u32, mut tid: u32) -> R<bool> {
        for _ in 0..MAX_CHAIN {
            self.step()?;
            lid = self.lskip(lid)?;
            tid = self.tskip(tid)?;
            let (lt, tt) = (self.lt(lid)?, self.tt(tid)?);
            if is_composite(lt.kind()) && is_composite(tt.kind()) {
                return Ok(true);
            }
            if !kinds_compatible(lt.kind(), tt.kind()) {
                return Ok(false);
            }
            return Ok(match (lt.kind, tt.kind) {
                (TypeKind::Ptr(_), _) | (TypeKind::Float { .. }, _) => true,
                (TypeKind::Fwd { .. } | TypeKind::Enum(_) | TypeKind::Enum64(_), _) => {
                    let l = essential_name(self.lname(lt.name_off)?);
                    let t = essential_name(self.tname(tt.name_off)?);
                    l.is_empty() || t.is_empty() || l == t
                }
                (TypeKind::Int(l), TypeKind::Int(t)) => l.offset == 0 && t.offset == 0,
                (TypeKind::Array(l), TypeKind::Array(t)) => {
                    (lid, tid) = (l.elem_type, t.elem_type);
                    continue;
                }
                _ => false,
            });
        }
        Err(ReloError::TooComplex {
            what: "levels",
            limit: MAX_CHAIN,
        })
    }

    /// libbpf's "compatible" for type-based relocations: same kind after
    /// typedefs and modifiers; pointers, arrays and prototypes recursively;
    /// composites and enums by kind only (their names were matched already).
    pub(crate) fn types_are_compat(&mut self, lid: u32, tid: u32, level: u32) -> R<bool> {
        if !kinds_compatible(self.lt(lid)?.kind(), self.tt(tid)?.kind()) {
            return Ok(false);
        }
        let (mut lid, mut tid) = (lid, tid);
        for _ in 0..MAX_CHAIN {
            self.step()?;
            lid = self.lskip(lid)?;
            tid = self.tskip(tid)?;
            let (lt, tt) = (self.lt(lid)?, self.tt(tid)?);
            if !kinds_compatible(lt.kind(), tt.kind()) {
                return Ok(false);
            }
            match (lt.kind, tt.kind) {
                (
                    TypeKind::Void
                    | TypeKind::Struct(_)
                    | TypeKind::Union(_)
                    | TypeKind::Enum(_)
                    | TypeKind::Enum64(_)
                    | TypeKind::Fwd { .. },
                    _,
                ) => return Ok(true),
                (TypeKind::Int(l), TypeKind::Int(t)) => return Ok(l.offset == 0 && t.offset == 0),
                (TypeKind::Ptr(l), TypeKind::Ptr(t)) => (lid, tid) = (l, t),
                (TypeKind::Array(l), TypeKind::Array(t)) => (lid, tid) = (l.elem_type, t.elem_type),
                (TypeKind::FuncProto(l), TypeKind::FuncProto(t)) => {
                    if l.params().len() != t.params().len() {
                        return Ok(false);
                    }
                    for (lp, tp) in l.params().zip(t.params()) {
                        let next = level.checked_sub(1).ok_or(ReloError::TooComplex {
                            what: "levels",
                            limit: MAX_LEVELS,
                        })?;
                        let (lp, tp) = (self.lskip(lp.ty)?, self.tskip(tp.ty)?);
                        if !self.types_are_compat(lp, tp, next)? {
                            return Ok(false);
                        }
                    }
                    (lid, tid) = (l.ret, t.ret);
                }
                _ => return Ok(false),
            }
        }
        Err(ReloError::TooComplex {
            what: "levels",
            limit: MAX_CHAIN,
        })
    }

    /// Whether two names agree for `TYPE_MATCHES`: either is anonymous, or
    /// their essential names are equal.
    fn names_match(&self, lname_off: u32, tname_off: u32) -> R<bool> {
        let l = self.lname(lname_off)?;
        let t = self.tname(tname_off)?;
        Ok(l.is_empty() || t.is_empty() || essential_name(l) == essential_name(t))
    }

    /// libbpf's `TYPE_MATCHES` rules: names (flavors ignored) at every
    /// level, integers by size and signedness, arrays by length, enums by
    /// size and enumerator names, composites member by member (each local
    /// member must match a same-named target member); behind a pointer a
    /// struct/union also matches a forward declaration of the same kind.
    pub(crate) fn types_match(
        &mut self,
        lid: u32,
        tid: u32,
        mut behind_ptr: bool,
        level: u32,
    ) -> R<bool> {
        if level == 0 {
            return Err(ReloError::TooComplex {
                what: "levels",
                limit: MAX_LEVELS,
            });
        }
        let (mut lid, mut tid) = (lid, tid);
        for _ in 0..MAX_CHAIN {
            self.step()?;
            lid = self.lskip(lid)?;
            tid = self.tskip(tid)?;
            let (lt, tt) = (self.lt(lid)?, self.tt(tid)?);
            if !self.names_match(lt.name_off, tt.name_off)? {
                return Ok(false);
            }
            let (lk, tk) = (lt.kind(), tt.kind());
            match (lt.kind, tt.kind) {
                (TypeKind::Void, _) => return Ok(tk == Kind::Void),
                (TypeKind::Fwd { is_union: lf }, _) => {
                    return Ok(match tt.kind {
                        TypeKind::Fwd { is_union: tf } => lf == tf,
                        TypeKind::Struct(_) if behind_ptr => !lf,
                        TypeKind::Union(_) if behind_ptr => lf,
                        _ => false,
                    })
                }
                (TypeKind::Enum(_) | TypeKind::Enum64(_), _) => {
                    return if is_enum(tk) {
                        self.enums_match(&lt, &tt)
                    } else {
                        Ok(false)
                    }
                }
                (TypeKind::Struct(lc) | TypeKind::Union(lc), _) => {
                    if behind_ptr {
                        return Ok(match tt.kind {
                            _ if lk == tk => true,
                            TypeKind::Fwd { is_union } => (lk == Kind::Union) == is_union,
                            _ => false,
                        });
                    }
                    let tc = match tt.kind {
                        TypeKind::Struct(c) | TypeKind::Union(c) if lk == tk => c,
                        _ => return Ok(false),
                    };
                    if lc.len() > tc.len() {
                        return Ok(false);
                    }
                    for lm in lc.members() {
                        let mut matched = false;
                        for tm in tc.members() {
                            self.step()?;
                            if !self.names_match(lm.name_off, tm.name_off)? {
                                continue;
                            }
                            if self.types_match(lm.ty, tm.ty, behind_ptr, level - 1)? {
                                matched = true;
                                break;
                            }
                        }
                        if !matched {
                            return Ok(false);
                        }
                    }
                    return Ok(true);
                }
                (TypeKind::Int(l), TypeKind::Int(t)) => {
                    return Ok(l.size == t.size && l.signed == t.signed)
                }
                (TypeKind::Ptr(l), TypeKind::Ptr(t)) => {
                    behind_ptr = true;
                    (lid, tid) = (l, t);
                }
                (TypeKind::Array(l), TypeKind::Array(t)) => {
                    if l.nelems != t.nelems {
                        return Ok(false);
                    }
                    (lid, tid) = (l.elem_type, t.elem_type);
                }
                (TypeKind::FuncProto(l), TypeKind::FuncProto(t)) => {
                    if l.params().len() != t.params().len() {
                        return Ok(false);
                    }
                    for (lp, tp) in l.params().zip(t.params()) {
                        if !self.types_match(lp.ty, tp.ty, behind_ptr, level - 1)? {
                            return Ok(false);
                        }
                    }
                    (lid, tid) = (l.ret, t.ret);
                }
                _ => return Ok(false),
            }
        }
        Err(ReloError::TooComplex {
            what: "levels",
            limit: MAX_CHAIN,
        })
    }

    /// Same size, and every local enumerator's name has a match in the target.
    fn enums_match(&mut self, lt: &Type<'a>, tt: &Type<'a>) -> R<bool> {
        let size = |t: &Type<'_>| match t.kind {
            TypeKind::Enum(e) => e.size,
            TypeKind::Enum64(e) => e.size,
            _ => 0,
        };
        if size(lt) != size(tt) {
            return Ok(false);
        }
        let (Some(lvals), Some(tvals)) = (enumerators(&lt.kind), enumerators(&tt.kind)) else {
            return Ok(false);
        };
        if lvals.len() > tvals.len() {
            return Ok(false);
        }
        for &(lname_off, _) in &lvals {
            let mut matched = false;
            for &(tname_off, _) in &tvals {
                self.step()?;
                if self.names_match(lname_off, tname_off)? {
                    matched = true;
                    break;
                }
            }
            if !matched {
                return Ok(false);
            }
        }
        Ok(true)
    }
}
