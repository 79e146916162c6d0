//! An owned, editable BTF type list: what the linker merges objects' BTF
//! into and what dedup rewrites, before it is written out through the
//! runtime's BTF writer ([`Btf::append_string`] / [`Btf::append_type_raw`]).
//!
//! The runtime's [`Btf`] is a zero-copy reader with in-place patchers; the
//! linker needs to renumber every type and drop duplicates, so types live
//! here as words with their names as owned strings (string offsets differ
//! per input) and are encoded once at the end.

use std::collections::HashMap;

use skelgen_runtime::btf::{Btf, BtfError, Kind, TypeKind};

/// One BTF type. `words` are the kind-specific trailing words exactly as in
/// the format, except that the name words of records are 0 and the names
/// live in `rec_names` (one per record for STRUCT, UNION, ENUM, ENUM64 and
/// FUNC_PROTO; empty for the other kinds).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct RawType {
    pub kind: Kind,
    pub name: String,
    pub kflag: bool,
    /// The `vlen` bits (a FUNC's linkage).
    pub vlen: u32,
    /// The `size` / `type` word.
    pub sot: u32,
    pub words: Vec<u32>,
    pub rec_names: Vec<String>,
}

/// Words per record, for the kinds with records.
fn rec_words(kind: Kind) -> usize {
    match kind {
        Kind::Struct | Kind::Union | Kind::Enum64 | Kind::Datasec => 3,
        Kind::Enum | Kind::FuncProto => 2,
        _ => 0,
    }
}

/// Whether records of this kind start with a name.
fn has_rec_names(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Struct | Kind::Union | Kind::Enum | Kind::Enum64 | Kind::FuncProto
    )
}

impl RawType {
    /// Whether the `size`/`type` word is a type id.
    pub fn sot_is_ref(&self) -> bool {
        matches!(
            self.kind,
            Kind::Ptr
                | Kind::Typedef
                | Kind::Volatile
                | Kind::Const
                | Kind::Restrict
                | Kind::TypeTag
                | Kind::Func
                | Kind::FuncProto
                | Kind::Var
                | Kind::DeclTag
        )
    }

    /// Indexes into `words` that hold type ids.
    pub fn word_refs(&self) -> Vec<usize> {
        let n = self.words.len();
        match self.kind {
            Kind::Array => vec![0, 1],
            Kind::Struct | Kind::Union => (0..n / 3).map(|i| 3 * i + 1).collect(),
            Kind::FuncProto => (0..n / 2).map(|i| 2 * i + 1).collect(),
            Kind::Datasec => (0..n / 3).map(|i| 3 * i).collect(),
            _ => Vec::new(),
        }
    }

    /// Every type id this type refers to, in order.
    pub fn refs(&self) -> Vec<u32> {
        let mut out = Vec::new();
        if self.sot_is_ref() {
            out.push(self.sot);
        }
        for i in self.word_refs() {
            out.push(self.words.get(i).copied().unwrap_or(0));
        }
        out
    }

    /// Rewrites every type id through `f`.
    pub fn map_refs(&mut self, mut f: impl FnMut(u32) -> u32) {
        if self.sot_is_ref() {
            self.sot = f(self.sot);
        }
        for i in self.word_refs() {
            if let Some(w) = self.words.get_mut(i) {
                *w = f(*w);
            }
        }
    }

    /// The type with its type ids zeroed: what must be equal, besides the
    /// referenced types, for two types to be the same.
    pub fn shallow(&self) -> RawType {
        let mut t = self.clone();
        t.map_refs(|_| 0);
        t
    }

    fn info(&self) -> u32 {
        (u32::from(self.kflag) << 31) | ((self.kind as u32) << 24) | (self.vlen & 0xffff)
    }

    /// Decodes type `id` of `btf`.
    pub fn from_btf(btf: &Btf, id: u32) -> Result<RawType, BtfError> {
        let t = btf.type_by_id(id)?;
        let name = btf.name(t.name_off)?.to_string();
        let mut r = RawType {
            kind: t.kind(),
            name,
            kflag: false,
            vlen: 0,
            sot: 0,
            words: Vec::new(),
            rec_names: Vec::new(),
        };
        match t.kind {
            TypeKind::Void => {}
            TypeKind::Int(i) => {
                let flags = u32::from(i.signed) | u32::from(i.char) << 1 | u32::from(i.bool) << 2;
                r.sot = i.size;
                r.words = vec![flags << 24 | u32::from(i.offset) << 16 | u32::from(i.bits)];
            }
            TypeKind::Ptr(x)
            | TypeKind::Typedef(x)
            | TypeKind::Volatile(x)
            | TypeKind::Const(x)
            | TypeKind::Restrict(x)
            | TypeKind::TypeTag(x) => r.sot = x,
            TypeKind::Array(a) => r.words = vec![a.elem_type, a.index_type, a.nelems],
            TypeKind::Struct(c) | TypeKind::Union(c) => {
                r.sot = c.size;
                r.kflag = c.kflag;
                for m in c.members() {
                    let off = if c.kflag {
                        m.bitfield_size << 24 | (m.bit_offset & 0x00ff_ffff)
                    } else {
                        m.bit_offset
                    };
                    r.words.extend([0, m.ty, off]);
                    r.rec_names.push(btf.name(m.name_off)?.to_string());
                }
            }
            TypeKind::Enum(e) => {
                r.sot = e.size;
                r.kflag = e.signed;
                for v in e.values() {
                    r.words.extend([0, v.value as u32]);
                    r.rec_names.push(btf.name(v.name_off)?.to_string());
                }
            }
            TypeKind::Enum64(e) => {
                r.sot = e.size;
                r.kflag = e.signed;
                for v in e.values() {
                    r.words.extend([0, v.value as u32, (v.value >> 32) as u32]);
                    r.rec_names.push(btf.name(v.name_off)?.to_string());
                }
            }
            TypeKind::Fwd { is_union } => r.kflag = is_union,
            TypeKind::Func { proto, linkage } => {
                r.sot = proto;
                r.vlen = linkage.to_raw() & 0xffff;
            }
            TypeKind::FuncProto(p) => {
                r.sot = p.ret;
                for prm in p.params() {
                    r.words.extend([0, prm.ty]);
                    r.rec_names.push(btf.name(prm.name_off)?.to_string());
                }
            }
            TypeKind::Var { ty, linkage } => {
                r.sot = ty;
                r.words = vec![linkage.to_raw()];
            }
            TypeKind::Datasec(d) => {
                r.sot = d.size;
                for v in d.vars() {
                    r.words.extend([v.ty, v.offset, v.size]);
                }
            }
            TypeKind::Float { size } => r.sot = size,
            TypeKind::DeclTag {
                target,
                component_idx,
            } => {
                r.sot = target;
                r.words = vec![component_idx as u32];
            }
        }
        if let Some(records) = r.words.len().checked_div(rec_words(r.kind)) {
            r.vlen = records as u32;
        }
        Ok(r)
    }
}

/// Types 1.. (index 0 of `types` is type id 1).
#[derive(Clone, Debug, Default)]
pub(crate) struct TypeList {
    pub types: Vec<RawType>,
}

/// A string table being built: each distinct string once.
#[derive(Debug, Default)]
pub(crate) struct Strings {
    order: Vec<String>,
    index: HashMap<String, usize>,
}

impl Strings {
    pub fn add(&mut self, s: &str) {
        if !s.is_empty() && !self.index.contains_key(s) {
            self.index.insert(s.to_string(), self.order.len());
            self.order.push(s.to_string());
        }
    }
}

/// The offsets strings got in a written BTF.
#[derive(Debug, Default)]
pub(crate) struct StringOffsets(HashMap<String, u32>);

impl StringOffsets {
    pub fn get(&self, s: &str) -> u32 {
        if s.is_empty() {
            return 0;
        }
        self.0.get(s).copied().unwrap_or(0)
    }
}

impl TypeList {
    /// The type with this id (1-based); `None` for void and out of range.
    pub fn get(&self, id: u32) -> Option<&RawType> {
        self.types.get((id as usize).checked_sub(1)?)
    }

    pub fn get_mut(&mut self, id: u32) -> Option<&mut RawType> {
        self.types.get_mut((id as usize).checked_sub(1)?)
    }

    /// Appends a type, returning its id.
    pub fn push(&mut self, t: RawType) -> u32 {
        self.types.push(t);
        self.types.len() as u32
    }

    /// Number of ids including void.
    pub fn len(&self) -> u32 {
        self.types.len() as u32 + 1
    }

    /// Encodes the types, with `extra` strings (names .BTF.ext refers to)
    /// added to the string table, through the runtime's BTF writer; returns
    /// the bytes and where each string went.
    pub fn encode(&self, extra: &Strings) -> Result<(Vec<u8>, StringOffsets), BtfError> {
        let mut strings = Strings::default();
        for t in &self.types {
            strings.add(&t.name);
            for n in &t.rec_names {
                strings.add(n);
            }
        }
        for s in &extra.order {
            strings.add(s);
        }
        // An empty BTF: header, no types, the one empty string.
        let mut empty = Vec::with_capacity(25);
        empty.extend_from_slice(&0xeb9fu16.to_le_bytes());
        empty.extend_from_slice(&[1, 0]);
        for w in [24u32, 0, 0, 0, 1] {
            empty.extend_from_slice(&w.to_le_bytes());
        }
        empty.push(0);
        let mut btf = Btf::from_vec(empty)?;
        let mut offsets = StringOffsets::default();
        for s in &strings.order {
            let off = btf.append_string(s);
            if off == u32::MAX {
                return Err(BtfError::BadNewType {
                    words: 0,
                    reason: "the string section would exceed 4 GiB".into(),
                });
            }
            offsets.0.insert(s.clone(), off);
        }
        let mut words = Vec::new();
        for t in &self.types {
            words.clear();
            words.extend([offsets.get(&t.name), t.info(), t.sot]);
            let per = rec_words(t.kind);
            let named = has_rec_names(t.kind);
            for (i, w) in t.words.iter().enumerate() {
                let name_word = named && per > 0 && i % per == 0;
                match t.rec_names.get(i / per.max(1)) {
                    Some(n) if name_word => words.push(offsets.get(n)),
                    _ => words.push(*w),
                }
            }
            btf.append_type_raw(&words)?;
        }
        Ok((btf.raw().to_vec(), offsets))
    }
}
