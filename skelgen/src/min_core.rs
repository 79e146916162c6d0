//! The smallest BTF a set of objects needs for CO-RE against one kernel:
//! `bpftool gen min_core_btf SRC DST OBJ...`, the BTFHub use case (ship a
//! few kilobytes per kernel instead of its whole BTF, for kernels without
//! `/sys/kernel/btf/vmlinux`; load with `OpenOptions::btf_custom_path`).
//!
//! Every CO-RE relocation of every object is resolved against the source
//! BTF by the runtime's own engine ([`skelgen_runtime::co_re::target_use`]),
//! and what it used is kept:
//!
//! - field relocations: the root type and, along the access path, each
//!   struct/union crossed with only the member taken, and that member's
//!   type (pointers in it point to `void` unless something else keeps
//!   their target);
//! - type relocations (`exists`, `size`, `id`): the type and everything it
//!   reaches, through pointers too, structs and unions without members
//!   (their size is kept); `TYPE_MATCHES` keeps whole structs, recursively
//!   except behind pointers, since matching compares every member;
//! - enum value relocations: the whole enum.
//!
//! The kept types are written in source id order, each struct with only
//! its kept members at their original offsets, type ids renumbered and
//! strings deduplicated. That is bpftool's algorithm, so the result has
//! the same types as bpftool's and is byte for byte the same size or smaller.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use skelgen_runtime::btf::ext::{BtfExt, CoreRelo, CoreReloKind};
use skelgen_runtime::btf::{Btf, BtfError, Kind, TypeKind};
use skelgen_runtime::co_re::{target_use, CoreTarget, ReloError, TargetUse};

/// Deepest type chain followed while marking (hostile BTF may loop).
const MAX_DEPTH: u32 = 256;

/// An error computing a minimal BTF.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MinCoreError {
    /// The source BTF could not be read at this type.
    #[error("source BTF, type {id}")]
    Source {
        /// The type being read.
        id: u32,
        /// What the reader found.
        #[source]
        source: BtfError,
    },
    /// The source is split BTF (a module's): its ids continue a base.
    #[error("the source BTF is split BTF (a kernel module's); give the base (vmlinux) BTF")]
    SplitSource,
    /// An object is not an ELF file, or its .BTF/.BTF.ext cannot be read.
    #[error("{object}: {reason}")]
    Object {
        /// The object's name.
        object: String,
        /// What is wrong.
        reason: String,
    },
    /// An object's .BTF or .BTF.ext is invalid.
    #[error("{object}: invalid {section}")]
    ObjectBtf {
        /// The object's name.
        object: String,
        /// `.BTF` or `.BTF.ext`.
        section: &'static str,
        /// What the reader found.
        #[source]
        source: BtfError,
    },
    /// An object has no BTF (so no CO-RE relocations to satisfy).
    #[error("{object}: the object has no .BTF section")]
    NoBtf {
        /// The object's name.
        object: String,
    },
    /// A relocation that cannot be resolved against the source BTF.
    #[error(
        "{object}: section {section}, CO-RE relocation #{index} ({kind}, local type {type_id})"
    )]
    Relocation {
        /// The object's name.
        object: String,
        /// The ELF section of the program.
        section: String,
        /// Index of the record in that section's list.
        index: usize,
        /// Its kind.
        kind: CoreReloKind,
        /// Its local type id.
        type_id: u32,
        /// What went wrong (boxed: CO-RE errors are large).
        #[source]
        source: Box<ReloError>,
    },
    /// A path of a relocation that does not fit the source BTF.
    #[error("source BTF, type {id}: {reason}")]
    BadPath {
        /// The type where the path broke.
        id: u32,
        /// What was expected.
        reason: String,
    },
    /// A chain of types deeper than the limit (a cycle?).
    #[error("source BTF, type {id}: references nest deeper than {limit} levels (a cycle?)")]
    TooDeep {
        /// Where the walk gave up.
        id: u32,
        /// The limit.
        limit: u32,
    },
    /// Writing the result failed (more than 4 GiB, or a writer bug).
    #[error("writing the minimal BTF")]
    Write(#[source] BtfError),
}

/// What is kept of the source BTF.
struct Marks<'a> {
    btf: &'a Btf,
    types: Vec<bool>,
    /// (struct or union id, member index).
    members: HashSet<(u32, u32)>,
    /// Types whose references have been marked, with or without following
    /// pointers (so each is walked at most twice).
    walked: HashSet<(u32, bool)>,
    /// The same for [`Marks::mark_match`] (by whether behind a pointer).
    matched: HashSet<(u32, bool)>,
}

impl<'a> Marks<'a> {
    fn new(btf: &'a Btf) -> Self {
        Marks {
            btf,
            types: vec![false; btf.len() as usize],
            members: HashSet::new(),
            walked: HashSet::new(),
            matched: HashSet::new(),
        }
    }

    fn ty(&self, id: u32) -> Result<skelgen_runtime::btf::Type<'a>, MinCoreError> {
        self.btf
            .type_by_id(id)
            .map_err(|source| MinCoreError::Source { id, source })
    }

    fn set(&mut self, id: u32) {
        if let Some(m) = self.types.get_mut(id as usize) {
            *m = true;
        }
    }

    /// Keeps `id` and the types it needs to be complete: what modifiers,
    /// typedefs, arrays and prototypes name, and pointer targets only if
    /// `follow_ptrs`. Structs and unions keep no members here.
    fn mark_type(&mut self, id: u32, follow_ptrs: bool, depth: u32) -> Result<(), MinCoreError> {
        if id == 0 || !self.walked.insert((id, follow_ptrs)) {
            return Ok(());
        }
        if depth > MAX_DEPTH {
            return Err(MinCoreError::TooDeep {
                id,
                limit: MAX_DEPTH,
            });
        }
        let t = self.ty(id)?;
        self.set(id);
        match t.kind {
            TypeKind::Ptr(to) if follow_ptrs => self.mark_type(to, follow_ptrs, depth + 1)?,
            TypeKind::Const(to)
            | TypeKind::Volatile(to)
            | TypeKind::Restrict(to)
            | TypeKind::TypeTag(to)
            | TypeKind::Typedef(to) => self.mark_type(to, follow_ptrs, depth + 1)?,
            TypeKind::Array(a) => {
                self.mark_type(a.elem_type, follow_ptrs, depth + 1)?;
                self.mark_type(a.index_type, follow_ptrs, depth + 1)?;
            }
            TypeKind::FuncProto(p) => {
                self.mark_type(p.ret, follow_ptrs, depth + 1)?;
                for param in p.params() {
                    self.mark_type(param.ty, follow_ptrs, depth + 1)?;
                }
            }
            TypeKind::Func { .. }
            | TypeKind::Var { .. }
            | TypeKind::Datasec(_)
            | TypeKind::DeclTag { .. } => {
                return Err(MinCoreError::BadPath {
                    id,
                    reason: format!("a {} cannot be part of a CO-RE relocation", t.kind()),
                })
            }
            _ => {}
        }
        Ok(())
    }

    /// Keeps `id` whole for `TYPE_MATCHES`: every member of every struct
    /// reached by value.
    fn mark_match(&mut self, id: u32, behind_ptr: bool, depth: u32) -> Result<(), MinCoreError> {
        if id == 0 || !self.matched.insert((id, behind_ptr)) {
            return Ok(());
        }
        if depth > MAX_DEPTH {
            return Err(MinCoreError::TooDeep {
                id,
                limit: MAX_DEPTH,
            });
        }
        let t = self.ty(id)?;
        self.set(id);
        match t.kind {
            TypeKind::Struct(c) | TypeKind::Union(c) if !behind_ptr => {
                for (i, m) in (0u32..).zip(c.members()) {
                    self.members.insert((id, i));
                    self.mark_match(m.ty, false, depth + 1)?;
                }
            }
            TypeKind::Const(to)
            | TypeKind::Volatile(to)
            | TypeKind::Restrict(to)
            | TypeKind::TypeTag(to)
            | TypeKind::Typedef(to) => self.mark_match(to, behind_ptr, depth + 1)?,
            TypeKind::Ptr(to) => self.mark_match(to, true, depth + 1)?,
            TypeKind::Array(a) => {
                self.mark_match(a.elem_type, false, depth + 1)?;
                self.mark_match(a.index_type, false, depth + 1)?;
            }
            TypeKind::FuncProto(p) => {
                self.mark_match(p.ret, false, depth + 1)?;
                for param in p.params() {
                    self.mark_match(param.ty, false, depth + 1)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Keeps what a field relocation walks: the root, then per step the
    /// member taken and its type.
    fn mark_field(&mut self, used: &TargetUse) -> Result<(), MinCoreError> {
        let mut id = used.root_type_id;
        self.mark_type(id, false, 0)?;
        for &idx in used.path.iter().skip(1) {
            id = self
                .btf
                .skip_mods_and_typedefs(id)
                .map_err(|source| MinCoreError::Source { id, source })?;
            match self.ty(id)?.kind {
                TypeKind::Struct(c) | TypeKind::Union(c) => {
                    let m = c
                        .member(idx as usize)
                        .ok_or_else(|| MinCoreError::BadPath {
                            id,
                            reason: format!("no member #{idx} (it has {})", c.len()),
                        })?;
                    self.members.insert((id, idx));
                    id = m.ty;
                    self.mark_type(id, false, 0)?;
                }
                TypeKind::Array(a) => id = a.elem_type,
                k => {
                    return Err(MinCoreError::BadPath {
                        id,
                        reason: format!("a {} cannot be indexed by an access path", k.kind()),
                    })
                }
            }
        }
        Ok(())
    }

    fn record(&mut self, used: &TargetUse) -> Result<(), MinCoreError> {
        use CoreReloKind::*;
        match used.kind {
            FieldByteOffset | FieldByteSize | FieldExists | FieldSigned | FieldLShiftU64
            | FieldRShiftU64 => self.mark_field(used),
            TypeIdLocal => Ok(()),
            TypeIdTarget | TypeExists | TypeSize => self.mark_type(used.root_type_id, true, 0),
            TypeMatches => self.mark_match(used.root_type_id, false, 0),
            EnumvalExists | EnumvalValue => self.mark_type(used.root_type_id, false, 0),
        }
    }
}

/// Raw BTF with only the types (and struct members) the CO-RE relocations
/// of `objects` use in `source`. `objects` are (name for errors, bytes).
pub fn min_core_btf(source: Arc<Btf>, objects: &[(&str, &[u8])]) -> Result<Vec<u8>, MinCoreError> {
    if source.base().is_some() {
        return Err(MinCoreError::SplitSource);
    }
    let target = CoreTarget::new(Arc::clone(&source));
    let mut marks = Marks::new(&source);
    for &(name, bytes) in objects {
        // Only .BTF and .BTF.ext matter (as for bpftool): objects the loader
        // would refuse for other reasons still have their relocations.
        let (local, ext) = object_btf(name, bytes)?;
        let Some(ext) = ext else {
            continue;
        };
        let local = &local;
        for sec in &ext.core_relos {
            for (index, relo) in sec.records.iter().enumerate() {
                let used =
                    resolve(local, &target, relo).map_err(|source| MinCoreError::Relocation {
                        object: name.to_string(),
                        section: local.name(sec.sec_name_off).unwrap_or("?").to_string(),
                        index,
                        kind: relo.kind,
                        type_id: relo.type_id,
                        source: Box::new(source),
                    })?;
                if let Some(used) = used {
                    marks.record(&used)?;
                }
            }
        }
    }
    write(&source, &marks)
}

/// The `.BTF` and (if any) `.BTF.ext` of an ELF object.
fn object_btf(name: &str, bytes: &[u8]) -> Result<(Btf, Option<BtfExt>), MinCoreError> {
    use object::{Object as _, ObjectSection as _};
    let bad = |reason: String| MinCoreError::Object {
        object: name.to_string(),
        reason,
    };
    let file = object::File::parse(bytes).map_err(|e| bad(format!("not an ELF object: {e}")))?;
    let data = |sec: &str| -> Result<Option<&[u8]>, MinCoreError> {
        match file.section_by_name(sec) {
            Some(s) => s
                .data()
                .map(Some)
                .map_err(|e| bad(format!("cannot read {sec}: {e}"))),
            None => Ok(None),
        }
    };
    let Some(btf) = data(".BTF")? else {
        return Err(MinCoreError::NoBtf {
            object: name.to_string(),
        });
    };
    let btf = Btf::parse(btf).map_err(|source| MinCoreError::ObjectBtf {
        object: name.to_string(),
        section: ".BTF",
        source,
    })?;
    let ext = match data(".BTF.ext")? {
        Some(e) => Some(BtfExt::parse(e).map_err(|source| MinCoreError::ObjectBtf {
            object: name.to_string(),
            section: ".BTF.ext",
            source,
        })?),
        None => None,
    };
    Ok((btf, ext))
}

fn resolve(
    local: &Btf,
    target: &CoreTarget,
    relo: &CoreRelo,
) -> Result<Option<TargetUse>, ReloError> {
    if relo.kind == CoreReloKind::TypeIdLocal {
        return Ok(None);
    }
    target_use(local, target, relo)
}

/// The kept types, renumbered, as raw BTF (built with the runtime's BTF
/// patcher, which checks each appended type).
fn write(src: &Btf, marks: &Marks<'_>) -> Result<Vec<u8>, MinCoreError> {
    let kept: Vec<u32> = (1..src.len())
        .filter(|&id| marks.types.get(id as usize).copied().unwrap_or(false))
        .collect();
    let new_ids: HashMap<u32, u32> = (1u32..)
        .zip(kept.iter().copied())
        .map(|(n, o)| (o, n))
        .collect();
    let remap = |id: u32| new_ids.get(&id).copied().unwrap_or(0);

    // An empty BTF: header, no types, the empty string.
    let mut empty = Vec::with_capacity(25);
    // magic 0xeb9f, version 1, flags 0; hdr_len; type off/len; string off/len.
    for w in [0x0001_eb9f_u32, 24, 0, 0, 0, 1] {
        empty.extend_from_slice(&w.to_le_bytes());
    }
    empty.push(0);
    let mut out = Btf::from_vec(empty).map_err(MinCoreError::Write)?;
    let mut strings: HashMap<String, u32> = HashMap::new();
    let mut string = |out: &mut Btf, id: u32, off: u32| -> Result<u32, MinCoreError> {
        let s = src
            .name(off)
            .map_err(|source| MinCoreError::Source { id, source })?;
        if let Some(&o) = strings.get(s) {
            return Ok(o);
        }
        let o = out.append_string(s);
        strings.insert(s.to_string(), o);
        Ok(o)
    };
    for &id in &kept {
        let t = src
            .type_by_id(id)
            .map_err(|source| MinCoreError::Source { id, source })?;
        let name = string(&mut out, id, t.name_off)?;
        let words = match t.kind {
            TypeKind::Struct(c) | TypeKind::Union(c) => {
                let kind = if t.kind() == Kind::Struct { 4 } else { 5 };
                let mut members = Vec::new();
                for (i, m) in (0u32..).zip(c.members()) {
                    if !marks.members.contains(&(id, i)) {
                        continue;
                    }
                    let off = if c.kflag {
                        (m.bitfield_size << 24) | m.bit_offset
                    } else {
                        m.bit_offset
                    };
                    members.extend([string(&mut out, id, m.name_off)?, remap(m.ty), off]);
                }
                let vlen = (members.len() / 3) as u32;
                let mut w = vec![
                    name,
                    (kind << 24) | (u32::from(c.kflag) << 31) | vlen,
                    c.size,
                ];
                w.extend(members);
                w
            }
            TypeKind::Int(i) => {
                let enc = u32::from(i.signed) | (u32::from(i.char) << 1) | (u32::from(i.bool) << 2);
                vec![
                    name,
                    1 << 24,
                    i.size,
                    (enc << 24) | (u32::from(i.offset) << 16) | u32::from(i.bits),
                ]
            }
            TypeKind::Float { size } => vec![name, 16 << 24, size],
            TypeKind::Ptr(to) => vec![name, 2 << 24, remap(to)],
            TypeKind::Const(to) => vec![name, 10 << 24, remap(to)],
            TypeKind::Volatile(to) => vec![name, 9 << 24, remap(to)],
            TypeKind::Restrict(to) => vec![name, 11 << 24, remap(to)],
            TypeKind::TypeTag(to) => vec![name, 18 << 24, remap(to)],
            TypeKind::Typedef(to) => vec![name, 8 << 24, remap(to)],
            TypeKind::Fwd { is_union } => vec![name, (7 << 24) | (u32::from(is_union) << 31), 0],
            TypeKind::Array(a) => vec![
                name,
                3 << 24,
                0,
                remap(a.elem_type),
                remap(a.index_type),
                a.nelems,
            ],
            TypeKind::Enum(e) => {
                let mut w = vec![
                    name,
                    (6 << 24) | (u32::from(e.signed) << 31) | e.len() as u32,
                    e.size,
                ];
                for v in e.values() {
                    w.extend([string(&mut out, id, v.name_off)?, v.value as u32]);
                }
                w
            }
            TypeKind::Enum64(e) => {
                let mut w = vec![
                    name,
                    (19 << 24) | (u32::from(e.signed) << 31) | e.len() as u32,
                    e.size,
                ];
                for v in e.values() {
                    w.extend([
                        string(&mut out, id, v.name_off)?,
                        v.value as u32,
                        (v.value >> 32) as u32,
                    ]);
                }
                w
            }
            TypeKind::FuncProto(p) => {
                let params: Vec<_> = p.params().collect();
                let mut w = vec![name, (13 << 24) | params.len() as u32, remap(p.ret)];
                for param in params {
                    w.extend([string(&mut out, id, param.name_off)?, remap(param.ty)]);
                }
                w
            }
            k => {
                return Err(MinCoreError::BadPath {
                    id,
                    reason: format!("a {} cannot be kept for CO-RE", k.kind()),
                })
            }
        };
        out.append_type_raw(&words).map_err(MinCoreError::Write)?;
    }
    Ok(out.raw().to_vec())
}
