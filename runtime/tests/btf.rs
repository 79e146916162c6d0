//! BTF and .BTF.ext reader tests: the running kernel's BTF, BTF that clang
//! emits, hand-built BTF covering every kind, broken input, and random
//! mutations that must never panic.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use proptest::prelude::*;
use skelgen_runtime::btf::ext::{BtfExt, CoreReloKind};
use skelgen_runtime::btf::{Btf, BtfError, FuncLinkage, Kind, TypeKind, VarLinkage};
use skelgen_test_support::{have_tool, require};

// ---------------------------------------------------------------------------
// A tiny BTF builder: types as raw words, strings appended as named.
// ---------------------------------------------------------------------------

const INT_SIGNED: u32 = 1 << 24;

#[derive(Clone)]
struct Builder {
    words: Vec<u32>,
    strings: Vec<u8>,
    next_id: u32,
}

impl Builder {
    fn new() -> Self {
        Builder {
            words: Vec::new(),
            strings: vec![0],
            next_id: 1,
        }
    }

    /// A builder for split BTF on top of `base` (ids and strings continue).
    fn split(base: &Btf) -> Self {
        Builder {
            words: Vec::new(),
            strings: Vec::new(),
            next_id: base.len(),
        }
    }

    fn s(&mut self, name: &str) -> u32 {
        if name.is_empty() {
            return 0;
        }
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(name.as_bytes());
        self.strings.push(0);
        off
    }

    fn raw(
        &mut self,
        name: &str,
        kind: u32,
        vlen: u32,
        kflag: bool,
        sot: u32,
        extra: &[u32],
    ) -> u32 {
        let name_off = self.s(name);
        let info = (u32::from(kflag) << 31) | (kind << 24) | vlen;
        self.words.extend_from_slice(&[name_off, info, sot]);
        self.words.extend_from_slice(extra);
        self.next_id += 1;
        self.next_id - 1
    }

    fn int(&mut self, name: &str, size: u32, enc: u32, bits: u32) -> u32 {
        self.raw(name, 1, 0, false, size, &[enc | bits])
    }
    fn ptr(&mut self, to: u32) -> u32 {
        self.raw("", 2, 0, false, to, &[])
    }
    fn array(&mut self, elem: u32, index: u32, n: u32) -> u32 {
        self.raw("", 3, 0, false, 0, &[elem, index, n])
    }
    /// Members as (name, type, bit offset, bitfield size).
    fn composite(
        &mut self,
        kind: u32,
        name: &str,
        size: u32,
        members: &[(&str, u32, u32, u32)],
    ) -> u32 {
        let kflag = members.iter().any(|m| m.3 != 0);
        let mut extra = Vec::new();
        for &(n, ty, off, bits) in members {
            let n = self.s(n);
            extra.extend_from_slice(&[n, ty, if kflag { (bits << 24) | off } else { off }]);
        }
        self.raw(name, kind, members.len() as u32, kflag, size, &extra)
    }
    fn strukt(&mut self, name: &str, size: u32, members: &[(&str, u32, u32, u32)]) -> u32 {
        self.composite(4, name, size, members)
    }
    fn union(&mut self, name: &str, size: u32, members: &[(&str, u32, u32, u32)]) -> u32 {
        self.composite(5, name, size, members)
    }
    fn enum32(&mut self, name: &str, size: u32, signed: bool, values: &[(&str, i32)]) -> u32 {
        let mut extra = Vec::new();
        for &(n, v) in values {
            let n = self.s(n);
            extra.extend_from_slice(&[n, v as u32]);
        }
        self.raw(name, 6, values.len() as u32, signed, size, &extra)
    }
    fn enum64(&mut self, name: &str, size: u32, values: &[(&str, u64)]) -> u32 {
        let mut extra = Vec::new();
        for &(n, v) in values {
            let n = self.s(n);
            extra.extend_from_slice(&[n, v as u32, (v >> 32) as u32]);
        }
        self.raw(name, 19, values.len() as u32, false, size, &extra)
    }
    fn reference(&mut self, kind: u32, name: &str, to: u32) -> u32 {
        self.raw(name, kind, 0, false, to, &[])
    }
    fn func_proto(&mut self, ret: u32, params: &[(&str, u32)]) -> u32 {
        let mut extra = Vec::new();
        for &(n, t) in params {
            let n = self.s(n);
            extra.extend_from_slice(&[n, t]);
        }
        self.raw("", 13, params.len() as u32, false, ret, &extra)
    }
    fn func(&mut self, name: &str, proto: u32, linkage: u32) -> u32 {
        self.raw(name, 12, linkage, false, proto, &[])
    }
    fn var(&mut self, name: &str, ty: u32, linkage: u32) -> u32 {
        self.raw(name, 14, 0, false, ty, &[linkage])
    }
    fn datasec(&mut self, name: &str, size: u32, vars: &[(u32, u32, u32)]) -> u32 {
        let extra: Vec<u32> = vars.iter().flat_map(|&(t, o, s)| [t, o, s]).collect();
        self.raw(name, 15, vars.len() as u32, false, size, &extra)
    }
    fn float(&mut self, name: &str, size: u32) -> u32 {
        self.raw(name, 16, 0, false, size, &[])
    }
    fn decl_tag(&mut self, name: &str, target: u32, component: i32) -> u32 {
        self.raw(name, 17, 0, false, target, &[component as u32])
    }

    fn type_bytes(&self) -> Vec<u8> {
        self.words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    /// Header | types | strings.
    fn build(&self) -> Vec<u8> {
        let types = self.type_bytes();
        let mut out = header(
            0,
            types.len() as u32,
            types.len() as u32,
            self.strings.len() as u32,
        );
        out.extend_from_slice(&types);
        out.extend_from_slice(&self.strings);
        out
    }
}

fn header(type_off: u32, type_len: u32, str_off: u32, str_len: u32) -> Vec<u8> {
    let mut h = vec![0x9f, 0xeb, 1, 0];
    for w in [24, type_off, type_len, str_off, str_len] {
        h.extend_from_slice(&u32::to_le_bytes(w));
    }
    h
}

/// Ids of the sample BTF below.
struct Sample {
    bytes: Vec<u8>,
    int: u32,
    ptr: u32,
    array: u32,
    s: u32,
    u: u32,
    e: u32,
    fwd: u32,
    typedef: u32,
    volatile: u32,
    konst: u32,
    restrict: u32,
    proto: u32,
    func: u32,
    var: u32,
    datasec: u32,
    float: u32,
    decl_tag: u32,
    type_tag: u32,
    e64: u32,
    tagged_ptr: u32,
    packed: u32,
    chr: u32,
    int128: u32,
    arr2d: u32,
}

/// Every kind at least once, plus bitfields, a packed struct and a 2-D array.
fn sample() -> Sample {
    let mut b = Builder::new();
    let int = b.int("int", 4, INT_SIGNED, 32);
    let ptr = b.ptr(int);
    let array = b.array(int, int, 10);
    let s = b.strukt(
        "s",
        16,
        &[("a", int, 0, 0), ("b", int, 32, 3), ("c", ptr, 64, 0)],
    );
    let u = b.union("u", 8, &[("x", int, 0, 0), ("y", ptr, 0, 0)]);
    let e = b.enum32("e", 4, true, &[("A", 0), ("B", -1)]);
    let fwd = b.raw("fwd_s", 7, 0, false, 0, &[]);
    let typedef = b.reference(8, "int_t", int);
    let volatile = b.reference(9, "", int);
    let konst = b.reference(10, "", volatile);
    let restrict = b.reference(11, "", ptr);
    let proto = b.func_proto(int, &[("a", int), ("", 0)]);
    let func = b.func("f", proto, 1);
    let var = b.var("v", s, 1);
    let datasec = b.datasec(".data", 0, &[(var, 0, 16)]);
    let float = b.float("double", 8);
    let decl_tag = b.decl_tag("tag", s, 1);
    let type_tag = b.reference(18, "user", int);
    let e64 = b.enum64("e64", 8, &[("BIG", 1 << 32), ("SMALL", 1)]);
    let tagged_ptr = b.ptr(type_tag);
    let chr = b.int("char", 1, 2 << 24, 8);
    let packed = b.strukt("packed", 5, &[("c", chr, 0, 0), ("i", int, 8, 0)]);
    let int128 = b.int("__int128", 16, INT_SIGNED, 128);
    let row = b.array(int, int, 3);
    let arr2d = b.array(row, int, 4);
    Sample {
        bytes: b.build(),
        int,
        ptr,
        array,
        s,
        u,
        e,
        fwd,
        typedef,
        volatile,
        konst,
        restrict,
        proto,
        func,
        var,
        datasec,
        float,
        decl_tag,
        type_tag,
        e64,
        tagged_ptr,
        packed,
        chr,
        int128,
        arr2d,
    }
}

/// Walks every type the way a consumer would; errors are fine, panics are not.
fn walk(btf: &Btf) {
    for id in 0..btf.len().min(10_000) {
        let Ok(t) = btf.type_by_id(id) else { continue };
        let _ = btf.type_name(id);
        let _ = btf.size_of(id);
        let _ = btf.align_of(id);
        let _ = btf.skip_mods_and_typedefs(id);
        let _ = btf.kind_of(id);
        if let Ok(name) = btf.name(t.name_off) {
            let name = name.to_string();
            let _ = btf.find_by_name(&name);
        }
        match t.kind {
            TypeKind::Struct(c) | TypeKind::Union(c) => {
                for m in c.members() {
                    let _ = btf.name(m.name_off);
                    let _ = btf.size_of(m.ty);
                }
            }
            TypeKind::Enum(e) => e.values().for_each(|v| drop(btf.name(v.name_off))),
            TypeKind::Enum64(e) => e.values().for_each(|v| drop(btf.name(v.name_off))),
            TypeKind::FuncProto(p) => p.params().for_each(|p| drop(btf.type_by_id(p.ty))),
            TypeKind::Datasec(d) => d.vars().for_each(|v| drop(btf.type_by_id(v.ty))),
            _ => {}
        }
    }
}

/// An error message must say where: an offset or a type id.
fn assert_located(err: &BtfError) {
    let msg = err.to_string();
    assert!(
        msg.contains("offset") || msg.contains("type id") || msg.contains("big-endian"),
        "error does not say where: {msg}"
    );
}

fn set_u32(bytes: &mut [u8], at: usize, v: u32) {
    bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

// ---------------------------------------------------------------------------
// Hand-built BTF: every kind.
// ---------------------------------------------------------------------------

#[test]
fn every_kind_decodes() {
    let s = sample();
    let btf = Btf::parse(&s.bytes).unwrap();
    assert_eq!(btf.len(), s.arr2d + 1);
    assert_eq!(btf.types().count() as u32, s.arr2d);
    assert!(btf.types().all(|t| t.is_ok()));

    let kinds = [
        (0, Kind::Void),
        (s.int, Kind::Int),
        (s.ptr, Kind::Ptr),
        (s.array, Kind::Array),
        (s.s, Kind::Struct),
        (s.u, Kind::Union),
        (s.e, Kind::Enum),
        (s.fwd, Kind::Fwd),
        (s.typedef, Kind::Typedef),
        (s.volatile, Kind::Volatile),
        (s.konst, Kind::Const),
        (s.restrict, Kind::Restrict),
        (s.proto, Kind::FuncProto),
        (s.func, Kind::Func),
        (s.var, Kind::Var),
        (s.datasec, Kind::Datasec),
        (s.float, Kind::Float),
        (s.decl_tag, Kind::DeclTag),
        (s.type_tag, Kind::TypeTag),
        (s.e64, Kind::Enum64),
    ];
    for (id, kind) in kinds {
        assert_eq!(btf.type_by_id(id).unwrap().kind(), kind, "id {id}");
        assert_eq!(btf.kind_of(id).unwrap(), kind, "id {id}");
    }

    let TypeKind::Int(i) = btf.type_by_id(s.int).unwrap().kind else {
        panic!()
    };
    assert!(i.signed && !i.char && !i.bool && i.bits == 32 && i.size == 4);
    let TypeKind::Int(c) = btf.type_by_id(s.chr).unwrap().kind else {
        panic!()
    };
    assert!(c.char && !c.signed);

    let TypeKind::Struct(st) = btf.type_by_id(s.s).unwrap().kind else {
        panic!()
    };
    assert!(st.kflag);
    let m: Vec<_> = st.members().collect();
    assert_eq!(m.len(), 3);
    assert_eq!(btf.name(m[1].name_off).unwrap(), "b");
    assert_eq!((m[1].bit_offset, m[1].bitfield_size), (32, 3));
    assert_eq!(
        (m[2].bit_offset, m[2].bitfield_size, m[2].ty),
        (64, 0, s.ptr)
    );

    let TypeKind::Enum(e) = btf.type_by_id(s.e).unwrap().kind else {
        panic!()
    };
    let vals: Vec<_> = e.values().map(|v| v.value as i64).collect();
    assert_eq!(vals, [0, -1]);
    let TypeKind::Enum64(e) = btf.type_by_id(s.e64).unwrap().kind else {
        panic!()
    };
    let vals: Vec<_> = e.values().map(|v| v.value).collect();
    assert_eq!(vals, [1 << 32, 1]);

    let TypeKind::FuncProto(p) = btf.type_by_id(s.proto).unwrap().kind else {
        panic!()
    };
    let params: Vec<_> = p.params().collect();
    assert_eq!((p.ret, params.len(), params[1].ty), (s.int, 2, 0));
    let TypeKind::Func { proto, linkage } = btf.type_by_id(s.func).unwrap().kind else {
        panic!()
    };
    assert_eq!((proto, linkage), (s.proto, FuncLinkage::Global));
    let TypeKind::Var { ty, linkage } = btf.type_by_id(s.var).unwrap().kind else {
        panic!()
    };
    assert_eq!((ty, linkage), (s.s, VarLinkage::GlobalAllocated));
    let TypeKind::Datasec(d) = btf.type_by_id(s.datasec).unwrap().kind else {
        panic!()
    };
    let v: Vec<_> = d.vars().collect();
    assert_eq!((v[0].ty, v[0].offset, v[0].size), (s.var, 0, 16));
    let TypeKind::DeclTag {
        target,
        component_idx,
    } = btf.type_by_id(s.decl_tag).unwrap().kind
    else {
        panic!()
    };
    assert_eq!((target, component_idx), (s.s, 1));
    let TypeKind::Fwd { is_union } = btf.type_by_id(s.fwd).unwrap().kind else {
        panic!()
    };
    assert!(!is_union);
    let TypeKind::Array(a) = btf.type_by_id(s.array).unwrap().kind else {
        panic!()
    };
    assert_eq!((a.elem_type, a.nelems), (s.int, 10));

    assert_eq!(btf.type_name(s.s).unwrap(), "s");
    assert_eq!(btf.type_name(s.ptr).unwrap(), "");
    assert_eq!(btf.type_name(0).unwrap(), "");
    assert_eq!(btf.type_name(s.datasec).unwrap(), ".data");
}

#[test]
fn sizes_and_alignments() {
    let s = sample();
    let btf = Btf::parse(&s.bytes).unwrap();
    let sizes = [
        (s.int, 4),
        (s.ptr, 8),
        (s.array, 40),
        (s.s, 16),
        (s.u, 8),
        (s.e, 4),
        (s.typedef, 4),
        (s.konst, 4),
        (s.restrict, 8),
        (s.var, 16),
        (s.float, 8),
        (s.type_tag, 4),
        (s.e64, 8),
        (s.tagged_ptr, 8),
        (s.packed, 5),
        (s.int128, 16),
        (s.arr2d, 48),
    ];
    for (id, size) in sizes {
        assert_eq!(btf.size_of(id).unwrap(), size, "size_of({id})");
    }
    for id in [0, s.func, s.proto, s.fwd, s.decl_tag] {
        let err = btf.size_of(id).unwrap_err();
        assert!(matches!(err, BtfError::NotSized { .. }), "{err}");
        assert!(err.to_string().contains(&format!("type id {id}")), "{err}");
    }
    let aligns = [
        (s.int, 4),
        (s.ptr, 8),
        (s.array, 4),
        (s.s, 8),
        (s.u, 8),
        (s.chr, 1),
        (s.packed, 1),
        (s.int128, 16),
        (s.arr2d, 4),
        (s.konst, 4),
        (s.e64, 8),
        (s.var, 8),
    ];
    for (id, align) in aligns {
        assert_eq!(btf.align_of(id).unwrap(), align, "align_of({id})");
    }
    assert!(btf.align_of(s.fwd).is_err());
    assert_eq!(btf.skip_mods(s.konst).unwrap(), s.int);
    assert_eq!(btf.skip_mods(s.typedef).unwrap(), s.typedef);
    assert_eq!(btf.skip_mods_and_typedefs(s.typedef).unwrap(), s.int);
    assert_eq!(btf.skip_mods(s.type_tag).unwrap(), s.int);
}

#[test]
fn name_index() {
    let mut b = Builder::new();
    let int = b.int("int", 4, INT_SIGNED, 32);
    let st = b.strukt("dup", 4, &[("x", int, 0, 0)]);
    let td = b.reference(8, "dup", st);
    let fwd = b.raw("dup", 7, 0, false, 0, &[]);
    let btf = Btf::parse(&b.build()).unwrap();
    btf.build_name_index();
    assert_eq!(btf.find_by_name("dup"), &[st, td, fwd]);
    assert_eq!(btf.find_by_name("int"), &[int]);
    assert!(btf.find_by_name("missing").is_empty());
    assert!(btf.find_by_name("").is_empty());
    assert_eq!(btf.find_by_name_kind("dup", Kind::Typedef), Some(td));
    assert_eq!(btf.find_by_name_kind("dup", Kind::Fwd), Some(fwd));
    assert_eq!(btf.find_by_name_kind("dup", Kind::Union), None);
}

#[test]
fn split_btf_continues_ids_and_strings() {
    let mut b = Builder::new();
    let int = b.int("int", 4, INT_SIGNED, 32);
    let base = Arc::new(Btf::parse(&b.build()).unwrap());
    let base_str_len = base.strings().len() as u32;

    let mut sb = Builder::split(&base);
    // The split's string offsets start after the base's.
    let name = |sb: &mut Builder, n: &str| sb.s(n) + base_str_len;
    let mod_name = name(&mut sb, "mod_s");
    let member = name(&mut sb, "m");
    let info = (4 << 24) | 1;
    sb.words
        .extend_from_slice(&[mod_name, info, 4, member, int, 0]);
    let ptr_words = [0, 2 << 24, base.len()];
    sb.words.extend_from_slice(&ptr_words);
    let split = Btf::parse_split(&sb.build(), base.clone()).unwrap();

    let mod_id = base.len();
    assert_eq!(split.len(), base.len() + 2);
    assert_eq!(split.first_own_id(), mod_id);
    assert_eq!(split.types().count(), 2);
    assert_eq!(split.type_name(mod_id).unwrap(), "mod_s");
    assert_eq!(split.type_name(int).unwrap(), "int");
    assert_eq!(split.size_of(mod_id + 1).unwrap(), 8);
    assert_eq!(split.size_of(mod_id).unwrap(), 4);
    let TypeKind::Struct(c) = split.type_by_id(mod_id).unwrap().kind else {
        panic!()
    };
    let m = c.member(0).unwrap();
    assert_eq!((split.name(m.name_off).unwrap(), m.ty), ("m", int));
    assert_eq!(split.find_by_name("int"), &[int]);
    assert_eq!(split.find_by_name("mod_s"), &[mod_id]);
    assert!(matches!(
        split.type_by_id(split.len()),
        Err(BtfError::BadTypeId { .. })
    ));
}

#[test]
fn fixups_patch_in_place() {
    let s = sample();
    let mut btf = Btf::parse(&s.bytes).unwrap();
    btf.set_datasec_size(s.datasec, 32).unwrap();
    btf.set_datasec_var(s.datasec, 0, 8, 16).unwrap();
    btf.set_var_linkage(s.var, VarLinkage::Static).unwrap();
    btf.set_func_linkage(s.func, FuncLinkage::Static).unwrap();

    // Wrong kinds, indexes and ids are errors that name the type.
    let err = btf.set_datasec_size(s.var, 1).unwrap_err();
    assert!(matches!(err, BtfError::WrongKind { .. }) && err.to_string().contains("type id"));
    assert!(matches!(
        btf.set_datasec_var(s.datasec, 1, 0, 0),
        Err(BtfError::RecordIndex {
            index: 1,
            len: 1,
            ..
        })
    ));
    assert!(btf.set_var_linkage(999, VarLinkage::Static).is_err());
    assert!(btf
        .set_func_linkage(s.func, FuncLinkage::Other(1 << 16))
        .is_err());

    // Sanitise: DATASEC -> STRUCT keeps vlen and record size; FLOAT -> empty STRUCT.
    let name = btf.append_string("sanitized");
    btf.set_type_raw(s.datasec, name, (4 << 24) | 1, 32)
        .unwrap();
    btf.set_type_raw(s.float, 0, 4 << 24, 8).unwrap();
    // A header implying a different record size would move later types.
    let err = btf.set_type_raw(s.s, 0, (4 << 24) | 2, 16).unwrap_err();
    assert!(matches!(err, BtfError::RecordSizeChange { .. }), "{err}");
    assert!(btf.set_type_raw(s.s, 0, 25 << 24, 16).is_err());

    let long = btf.append_string("long");
    let new_int = btf
        .append_type_raw(&[long, 1 << 24, 8, INT_SIGNED | 64])
        .unwrap();
    assert_eq!(new_int, s.arr2d + 1);
    assert!(btf.append_type_raw(&[0, 1 << 24, 8]).is_err());
    assert!(btf.append_type_raw(&[0, 4 << 24 | 1, 8]).is_err());
    assert!(btf.append_type_raw(&[0]).is_err());

    let check = |btf: &Btf| {
        assert_eq!(btf.len(), new_int + 1);
        assert_eq!(btf.kind_of(s.datasec).unwrap(), Kind::Struct);
        assert_eq!(btf.type_name(s.datasec).unwrap(), "sanitized");
        assert_eq!(btf.size_of(s.datasec).unwrap(), 32);
        let TypeKind::Struct(c) = btf.type_by_id(s.datasec).unwrap().kind else {
            panic!()
        };
        // The var_secinfo (type, offset, size) now reads as a member
        // (name_off, type, offset): only the header changed.
        let m = c.member(0).unwrap();
        assert_eq!((m.name_off, m.ty, m.bit_offset), (s.var, 8, 16));
        let TypeKind::Var { linkage, .. } = btf.type_by_id(s.var).unwrap().kind else {
            panic!()
        };
        assert_eq!(linkage, VarLinkage::Static);
        let TypeKind::Func { linkage, .. } = btf.type_by_id(s.func).unwrap().kind else {
            panic!()
        };
        assert_eq!(linkage, FuncLinkage::Static);
        assert_eq!(btf.kind_of(s.float).unwrap(), Kind::Struct);
        assert_eq!(btf.type_name(new_int).unwrap(), "long");
        assert_eq!(btf.size_of(new_int).unwrap(), 8);
        assert_eq!(btf.find_by_name_kind("long", Kind::Int), Some(new_int));
        assert!(btf.find_by_name(".data").is_empty());
        assert_eq!(btf.size_of(s.arr2d).unwrap(), 48);
    };
    check(&btf);
    // The patched bytes parse back to the same thing.
    let again = Btf::parse(btf.raw()).unwrap();
    check(&again);
}

#[test]
fn fixups_normalize_unusual_layouts() {
    // Strings before types, with a gap: appending must still work.
    let mut b = Builder::new();
    let int = b.int("int", 4, INT_SIGNED, 32);
    let types = b.type_bytes();
    let strs = b.strings.clone();
    let gap = 8 - strs.len() % 4;
    let type_off = (strs.len() + gap) as u32;
    let mut bytes = header(type_off, types.len() as u32, 0, strs.len() as u32);
    bytes.extend_from_slice(&strs);
    bytes.extend(std::iter::repeat_n(0xaa, gap));
    bytes.extend_from_slice(&types);
    let mut btf = Btf::parse(&bytes).unwrap();
    assert_eq!(btf.type_name(int).unwrap(), "int");
    let off = btf.append_string("x");
    let ptr = btf.append_type_raw(&[off, 2 << 24, int]).unwrap();
    let again = Btf::parse(btf.raw()).unwrap();
    assert_eq!(again.type_name(ptr).unwrap(), "x");
    assert_eq!(again.type_name(int).unwrap(), "int");
    assert_eq!(again.size_of(ptr).unwrap(), 8);
}

#[test]
fn btf_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Btf>();
    check::<BtfExt>();
}

// ---------------------------------------------------------------------------
// Broken BTF: errors, never panics, each saying where.
// ---------------------------------------------------------------------------

#[test]
fn truncated_at_every_length() {
    let s = sample();
    for n in 0..s.bytes.len() {
        let err = Btf::parse(&s.bytes[..n]).unwrap_err();
        assert_located(&err);
    }
    // Types cut off inside the type section (header lengths consistent).
    let mut b = Builder::new();
    let int = b.int("int", 4, INT_SIGNED, 32);
    b.strukt("s", 4, &[("a", int, 0, 0), ("b", int, 0, 0)]);
    let types = b.type_bytes();
    for cut in (1..types.len()).filter(|c| *c != 16) {
        let mut bytes = header(0, cut as u32, cut as u32, b.strings.len() as u32);
        bytes.extend_from_slice(&types[..cut]);
        bytes.extend_from_slice(&b.strings);
        let err = Btf::parse(&bytes).unwrap_err();
        assert_located(&err);
        assert!(err.to_string().contains("type id"), "{err}");
    }
}

#[test]
fn bad_magic_version_and_header() {
    let s = sample();
    let mut bytes = s.bytes.clone();
    bytes[0] = 0x00;
    let err = Btf::parse(&bytes).unwrap_err();
    assert!(
        matches!(err, BtfError::BadMagic { magic: 0xeb00, .. }),
        "{err}"
    );

    let mut bytes = s.bytes.clone();
    bytes.swap(0, 1);
    let err = Btf::parse(&bytes).unwrap_err();
    assert!(
        err.to_string().contains("big-endian BTF is not supported"),
        "{err}"
    );

    let mut bytes = s.bytes.clone();
    bytes[2] = 2;
    assert!(matches!(
        Btf::parse(&bytes),
        Err(BtfError::BadVersion { version: 2, .. })
    ));

    for hdr_len in [0, 23, u32::MAX] {
        let mut bytes = s.bytes.clone();
        set_u32(&mut bytes, 4, hdr_len);
        assert!(matches!(
            Btf::parse(&bytes),
            Err(BtfError::BadHeaderLen { .. })
        ));
    }
    // Sections out of bounds (u32 overflow on purpose) and overlapping.
    for (at, v) in [
        (8, u32::MAX),
        (12, u32::MAX),
        (16, u32::MAX - 3),
        (20, 1 << 30),
        (8, 2),
    ] {
        let mut bytes = s.bytes.clone();
        set_u32(&mut bytes, at, v);
        let err = Btf::parse(&bytes).unwrap_err();
        assert_located(&err);
    }
    let mut bytes = s.bytes.clone();
    set_u32(&mut bytes, 16, 4); // strings start inside the types
    assert!(matches!(
        Btf::parse(&bytes),
        Err(BtfError::SectionsOverlap { .. })
    ));
}

#[test]
fn bad_strings() {
    let mut b = Builder::new();
    b.int("int", 4, INT_SIGNED, 32);
    // String section without the final NUL.
    let mut bytes = b.build();
    let last = bytes.len() - 1;
    bytes[last] = b'x';
    let err = Btf::parse(&bytes).unwrap_err();
    assert!(err.to_string().contains("does not end with NUL"), "{err}");
    // ... or the leading one.
    let mut bytes = b.build();
    bytes[24 + b.words.len() * 4] = b'x';
    assert!(matches!(
        Btf::parse(&bytes),
        Err(BtfError::BadStringSection { .. })
    ));
    // Empty string section.
    let mut bytes = header(0, 16, 16, 0);
    bytes.extend_from_slice(&b.type_bytes());
    assert!(matches!(
        Btf::parse(&bytes),
        Err(BtfError::BadStringSection { .. })
    ));

    // A name offset past the strings, and invalid UTF-8.
    let mut b = Builder::new();
    b.raw("", 1, 0, false, 4, &[32]);
    b.words[0] = 1000;
    b.strings.extend_from_slice(&[0xff, 0xfe, 0]);
    let btf = Btf::parse(&b.build()).unwrap();
    let err = btf.type_name(1).unwrap_err();
    assert!(
        matches!(err, BtfError::StringOutOfRange { offset: 1000, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("1000"));
    assert!(matches!(
        btf.name(1),
        Err(BtfError::InvalidUtf8 { offset: 1 })
    ));
    assert!(matches!(
        btf.name(u32::MAX),
        Err(BtfError::StringOutOfRange { .. })
    ));
    assert_eq!(btf.name(3).unwrap(), "");
    walk(&btf);
}

#[test]
fn bad_type_ids_and_kinds() {
    let mut b = Builder::new();
    let int = b.int("int", 4, INT_SIGNED, 32);
    let konst = b.reference(10, "", 999);
    let arr = b.array(777, int, 2);
    let btf = Btf::parse(&b.build()).unwrap();
    for id in [btf.len(), u32::MAX] {
        let err = btf.type_by_id(id).unwrap_err();
        assert!(err.to_string().contains(&format!("type id {id}")), "{err}");
    }
    let err = btf.skip_mods(konst).unwrap_err();
    assert!(
        matches!(err, BtfError::BadTypeId { id: 999, referenced_from: Some(r), .. } if r == konst),
        "{err}"
    );
    assert!(
        err.to_string().contains("referenced from type id 2"),
        "{err}"
    );
    let err = btf.size_of(arr).unwrap_err();
    assert!(err.to_string().contains("777"), "{err}");
    assert!(btf.align_of(arr).is_err());

    // Unknown kinds: 0 (UNKN) and 20+.
    for kind in [0, 20, 31] {
        let mut b = Builder::new();
        b.int("int", 4, INT_SIGNED, 32);
        b.raw("x", kind, 0, false, 0, &[]);
        let err = Btf::parse(&b.build()).unwrap_err();
        assert!(
            matches!(err, BtfError::UnknownKind { id: 2, offset: 16, kind: k } if k == kind),
            "{err}"
        );
        assert!(err.to_string().contains("type id 2") && err.to_string().contains("offset 16"));
    }
}

#[test]
fn vlen_too_large_for_the_section() {
    for kind in [4, 5, 6, 13, 15, 19] {
        let mut b = Builder::new();
        let int = b.int("int", 4, INT_SIGNED, 32);
        b.raw("big", kind, 0xffff, false, 4, &[1, int, 0]);
        let err = Btf::parse(&b.build()).unwrap_err();
        assert!(
            matches!(
                err,
                BtfError::TypeTruncated {
                    id: 2,
                    vlen: 0xffff,
                    offset: 16,
                    ..
                }
            ),
            "{err}"
        );
        assert_located(&err);
    }
}

#[test]
fn cycles_end_in_errors() {
    let mut b = Builder::new();
    // typedef A -> typedef B -> typedef A.
    let a = b.reference(8, "A", 2);
    let _b = b.reference(8, "B", 1);
    // const -> volatile -> const.
    let c = b.reference(10, "", 4);
    b.reference(9, "", 3);
    // A struct containing itself by value, and an array of itself.
    let s = b.strukt("self", 4, &[("me", 5, 0, 0)]);
    let arr = b.array(6, 6, 2);
    let btf = Btf::parse(&b.build()).unwrap();
    for result in [
        btf.size_of(a),
        btf.align_of(a),
        btf.skip_mods_and_typedefs(a),
        btf.skip_mods(c),
        btf.size_of(c),
        btf.align_of(s),
        btf.size_of(arr),
        btf.align_of(arr),
    ] {
        let err = result.unwrap_err();
        assert!(matches!(err, BtfError::Cycle { .. }), "{err}");
        assert!(err.to_string().contains("type id"), "{err}");
    }
    // Size of the self-containing struct is just its declared size.
    assert_eq!(btf.size_of(s).unwrap(), 4);
    walk(&btf);
}

#[test]
fn huge_arrays_overflow_cleanly() {
    let mut b = Builder::new();
    let int = b.int("int", 4, INT_SIGNED, 32);
    let big = b.array(int, int, u32::MAX);
    let zero = b.strukt("empty", 0, &[]);
    let many_zero = b.array(zero, int, u32::MAX);
    let nested = b.array(many_zero, int, u32::MAX);
    let btf = Btf::parse(&b.build()).unwrap();
    let err = btf.size_of(big).unwrap_err();
    assert!(
        matches!(err, BtfError::SizeOverflow { id } if id == big),
        "{err}"
    );
    assert_eq!(btf.size_of(nested).unwrap(), 0);
}

// ---------------------------------------------------------------------------
// .BTF.ext
// ---------------------------------------------------------------------------

/// A .BTF.ext with one block per subsection.
fn ext_bytes(core: bool, func_rec: u32, num_func: u32) -> Vec<u8> {
    let mut func = vec![func_rec, 7, num_func];
    for i in 0..num_func {
        func.extend_from_slice(&[i * 8, 3]);
        func.extend(std::iter::repeat_n(
            0,
            (func_rec as usize).saturating_sub(8) / 4,
        ));
    }
    let line = [16, 7, 2, 0, 1, 2, (12 << 10) | 5, 8, 1, 2, (13 << 10) | 1];
    let relo = [16, 7, 2, 8, 4, 9, 0, 16, 5, 11, 12];
    let words = |v: &[u32]| v.iter().flat_map(|w| w.to_le_bytes()).collect::<Vec<u8>>();
    let (func, line, relo) = (words(&func), words(&line), words(&relo));
    let hdr_len: u32 = if core { 32 } else { 24 };
    let mut out = vec![0x9f, 0xeb, 1, 0];
    let mut fields = vec![
        hdr_len,
        0,
        func.len() as u32,
        func.len() as u32,
        line.len() as u32,
    ];
    if core {
        fields.extend([(func.len() + line.len()) as u32, relo.len() as u32]);
    }
    for w in fields {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out.extend_from_slice(&func);
    out.extend_from_slice(&line);
    if core {
        out.extend_from_slice(&relo);
    }
    out
}

#[test]
fn ext_parses_all_subsections() {
    let ext = BtfExt::parse(&ext_bytes(true, 8, 2)).unwrap();
    assert_eq!(
        (
            ext.func_info_rec_size,
            ext.line_info_rec_size,
            ext.core_relo_rec_size
        ),
        (8, 16, 16)
    );
    assert_eq!(ext.func_info.len(), 1);
    assert_eq!(ext.func_info[0].sec_name_off, 7);
    assert_eq!(ext.func_info[0].records[1].insn_off, 8);
    let l = &ext.line_info[0].records;
    assert_eq!((l[0].line(), l[0].column(), l[1].insn_off), (12, 5, 8));
    let r = &ext.core_relos[0].records;
    assert_eq!(
        (r[0].insn_off, r[0].type_id, r[0].access_str_off),
        (8, 4, 9)
    );
    assert_eq!(r[0].kind, CoreReloKind::FieldByteOffset);
    assert_eq!(r[1].kind, CoreReloKind::TypeMatches);
    assert!(ext.func_info_for(7).is_some() && ext.core_relos_for(8).is_none());

    // A header without core_relo, and longer records than this reader knows.
    let ext = BtfExt::parse(&ext_bytes(false, 16, 3)).unwrap();
    assert!(ext.core_relos.is_empty());
    assert_eq!(ext.core_relo_rec_size, 0);
    assert_eq!(ext.func_info_rec_size, 16);
    assert_eq!(ext.func_info[0].records[2].insn_off, 16);
}

#[test]
fn ext_bad_input() {
    let good = ext_bytes(true, 8, 2);
    for n in 0..good.len() {
        let err = BtfExt::parse(&good[..n]).unwrap_err();
        assert_located(&err);
    }
    for rec in [0, 4, 6, 9] {
        let err = BtfExt::parse(&ext_bytes(true, rec, 2)).unwrap_err();
        assert!(
            matches!(
                err,
                BtfError::ExtRecordSize {
                    section: "func_info",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("offset 32"), "{err}");
    }
    // num_info so large that num_info * rec_size overflows 32 bits.
    let mut bytes = good.clone();
    set_u32(&mut bytes, 32 + 8, u32::MAX);
    let err = BtfExt::parse(&bytes).unwrap_err();
    assert!(
        matches!(
            err,
            BtfError::ExtBadCount {
                num_info: u32::MAX,
                ..
            }
        ),
        "{err}"
    );
    assert_located(&err);
    // Zero records in a block.
    let mut bytes = good.clone();
    set_u32(&mut bytes, 32 + 8, 0);
    assert!(matches!(
        BtfExt::parse(&bytes),
        Err(BtfError::ExtEmptyBlock { .. })
    ));
    // Unknown CO-RE relocation kind: names the block and record.
    let mut bytes = good.clone();
    let last = bytes.len() - 4;
    set_u32(&mut bytes, last, 13);
    let err = BtfExt::parse(&bytes).unwrap_err();
    assert!(
        matches!(
            err,
            BtfError::UnknownCoreReloKind {
                block: 0,
                record: 1,
                kind: 13,
                ..
            }
        ),
        "{err}"
    );
    // Magic, byte order, version, header length, subsection bounds.
    let mut bytes = good.clone();
    bytes.swap(0, 1);
    assert!(matches!(
        BtfExt::parse(&bytes),
        Err(BtfError::BigEndian { .. })
    ));
    let mut bytes = good.clone();
    bytes[0] = 0;
    assert!(matches!(
        BtfExt::parse(&bytes),
        Err(BtfError::BadMagic { .. })
    ));
    let mut bytes = good.clone();
    bytes[2] = 9;
    assert!(matches!(
        BtfExt::parse(&bytes),
        Err(BtfError::BadVersion { .. })
    ));
    for (at, v) in [
        (4, 8),
        (4, 4096),
        (8, u32::MAX),
        (12, u32::MAX),
        (24, 2),
        (28, 1 << 20),
    ] {
        let mut bytes = good.clone();
        set_u32(&mut bytes, at, v);
        let err = BtfExt::parse(&bytes).unwrap_err();
        assert_located(&err);
    }
}

// ---------------------------------------------------------------------------
// Real data: the running kernel, and what clang emits.
// ---------------------------------------------------------------------------

#[test]
fn vmlinux_task_struct() {
    if !require(
        Path::new("/sys/kernel/btf/vmlinux").exists(),
        "/sys/kernel/btf/vmlinux is absent",
    ) {
        return;
    }
    let btf = Btf::from_vmlinux().unwrap();
    assert!(btf.len() > 1000);
    let task = btf
        .find_by_name_kind("task_struct", Kind::Struct)
        .expect("task_struct");
    let TypeKind::Struct(c) = btf.type_by_id(task).unwrap().kind else {
        panic!()
    };
    let member = |name: &str| {
        c.members()
            .find(|m| btf.name(m.name_off).unwrap() == name)
            .unwrap_or_else(|| panic!("task_struct.{name}"))
    };
    let pid = member("pid");
    assert_eq!(btf.size_of(pid.ty).unwrap(), 4);
    assert_eq!(btf.size_of(member("tgid").ty).unwrap(), 4);
    let parent = btf
        .skip_mods_and_typedefs(member("real_parent").ty)
        .unwrap();
    let TypeKind::Ptr(to) = btf.type_by_id(parent).unwrap().kind else {
        panic!("real_parent is not a pointer")
    };
    assert_eq!(btf.skip_mods_and_typedefs(to).unwrap(), task);
    assert!(btf.size_of(task).unwrap() > 1000);
    assert!(btf.align_of(task).unwrap() >= 8);
    // Every type decodes and every name resolves.
    for t in btf.types() {
        let t = t.unwrap();
        btf.name(t.name_off).unwrap();
    }
}

const CLANG_SOURCE: &str = r#"
#define __tag(x) __attribute__((btf_decl_tag(x)))
#define __user __attribute__((btf_type_tag("user")))
typedef unsigned long long u64;
enum color { RED, GREEN = 5 };
enum big { HUGE = 0x100000000ULL };
union num { int i; float f; double d; };
struct flags {
    unsigned int a : 3;
    unsigned int b : 5;
    int c;
    char name[16];
    struct flags *next;
    const volatile u64 *restrict p;
    int __user *uptr;
    enum color color;
    enum big big;
    union num num;
} __tag("flags_tag");
struct flags g_flags __attribute__((section(".data"))) = { .c = 1 };
int g_counter = 0;
const volatile int g_rodata = 42;
static __attribute__((noinline)) int helper(struct flags *f __tag("arg")) { return f->c + f->b; }
__attribute__((section("tracepoint/syscalls/sys_enter_getppid")))
int prog(void *ctx) {
    g_counter += helper(&g_flags) + g_rodata;
    return __builtin_preserve_access_index(g_flags.c);
}
char LICENSE[] __attribute__((section("license"))) = "GPL";
"#;

/// Compiles `CLANG_SOURCE` and returns (.BTF, .BTF.ext), or None if clang is missing.
fn compile_with_clang() -> Option<(Vec<u8>, Vec<u8>)> {
    use object::{Object, ObjectSection};
    if !require(have_tool("clang"), "clang is not installed") {
        return None;
    }
    let dir = std::env::temp_dir().join(format!("skelgen-btf-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src: PathBuf = dir.join("kinds.bpf.c");
    let obj = dir.join("kinds.bpf.o");
    std::fs::write(&src, CLANG_SOURCE).unwrap();
    let out = Command::new("clang")
        .args(["-target", "bpf", "-g", "-O2", "-c"])
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .output()
        .expect("run clang");
    assert!(
        out.status.success(),
        "clang failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let data = std::fs::read(&obj).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let file = object::File::parse(&*data).unwrap();
    let section = |name| file.section_by_name(name).unwrap().data().unwrap().to_vec();
    Some((section(".BTF"), section(".BTF.ext")))
}

#[test]
fn clang_object_btf() {
    let Some((btf_bytes, ext_bytes)) = compile_with_clang() else {
        return;
    };
    let btf = Btf::parse(&btf_bytes).unwrap();
    walk(&btf);
    let flags = btf.find_by_name_kind("flags", Kind::Struct).unwrap();
    let TypeKind::Struct(c) = btf.type_by_id(flags).unwrap().kind else {
        panic!()
    };
    assert!(c.kflag, "bitfields set kind_flag");
    let m: Vec<_> = c.members().collect();
    assert_eq!(
        (m[0].bitfield_size, m[1].bitfield_size, m[1].bit_offset),
        (3, 5, 3)
    );
    let offset_of = |name: &str| {
        let m = c
            .members()
            .find(|m| btf.name(m.name_off).unwrap() == name)
            .unwrap();
        (
            m.bit_offset / 8,
            btf.size_of(m.ty).unwrap(),
            btf.align_of(m.ty).unwrap(),
        )
    };
    assert_eq!(offset_of("c"), (4, 4, 4));
    assert_eq!(offset_of("name"), (8, 16, 1));
    assert_eq!(offset_of("next"), (24, 8, 8));
    assert_eq!(offset_of("num"), (64, 8, 8));
    assert_eq!(btf.size_of(flags).unwrap(), 72);
    assert_eq!(btf.align_of(flags).unwrap(), 8);
    // The type tag sits between the pointer and int.
    let uptr = c
        .members()
        .find(|m| btf.name(m.name_off).unwrap() == "uptr")
        .unwrap();
    let TypeKind::Ptr(tagged) = btf.type_by_id(uptr.ty).unwrap().kind else {
        panic!()
    };
    assert_eq!(btf.kind_of(tagged).unwrap(), Kind::TypeTag);
    assert_eq!(btf.type_name(tagged).unwrap(), "user");
    assert_eq!(
        btf.kind_of(btf.skip_mods(tagged).unwrap()).unwrap(),
        Kind::Int
    );

    assert!(btf.types().any(|t| t.unwrap().kind() == Kind::DeclTag));
    assert!(btf.find_by_name_kind("float", Kind::Float).is_some());
    assert!(btf.find_by_name_kind("color", Kind::Enum).is_some());
    let big = btf.find_by_name("big");
    assert!(!big.is_empty());
    assert_eq!(btf.size_of(big[0]).unwrap(), 8);
    assert!(btf.find_by_name_kind("prog", Kind::Func).is_some());
    assert!(btf.find_by_name_kind("helper", Kind::Func).is_some());
    let data = btf.find_by_name_kind(".data", Kind::Datasec).unwrap();
    let TypeKind::Datasec(d) = btf.type_by_id(data).unwrap().kind else {
        panic!()
    };
    assert_eq!(d.len(), 1);
    assert!(btf.find_by_name_kind(".rodata", Kind::Datasec).is_some());

    let ext = BtfExt::parse(&ext_bytes).unwrap();
    assert!(ext.func_info_rec_size >= 8 && ext.line_info_rec_size >= 16);
    let sec = |off| btf.name(off).unwrap().to_string();
    let names: Vec<_> = ext.func_info.iter().map(|s| sec(s.sec_name_off)).collect();
    assert!(
        names.contains(&"tracepoint/syscalls/sys_enter_getppid".to_string()),
        "{names:?}"
    );
    for s in &ext.func_info {
        for f in &s.records {
            assert_eq!(btf.kind_of(f.type_id).unwrap(), Kind::Func);
        }
    }
    for s in &ext.line_info {
        for l in &s.records {
            assert!(btf.name(l.file_name_off).unwrap().ends_with("kinds.bpf.c"));
        }
    }
    let relos: Vec<_> = ext.core_relos.iter().flat_map(|s| &s.records).collect();
    assert!(
        !relos.is_empty(),
        "__builtin_preserve_access_index emits a CO-RE relocation"
    );
    assert!(relos
        .iter()
        .all(|r| r.kind == CoreReloKind::FieldByteOffset));
    assert_eq!(btf.name(relos[0].access_str_off).unwrap(), "0:2");
}

// ---------------------------------------------------------------------------
// Random mutations: never a panic.
// ---------------------------------------------------------------------------

fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8)], cut: Option<usize>) -> Vec<u8> {
    let len = bytes.len();
    for &(at, v) in edits {
        bytes[at % len] = v;
    }
    if let Some(cut) = cut {
        bytes.truncate(cut % (len + 1));
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn mutated_btf_never_panics(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in proptest::option::weighted(0.1, any::<usize>()),
    ) {
        let bytes = mutate(sample().bytes, &edits, cut);
        if let Ok(mut btf) = Btf::parse(&bytes) {
            walk(&btf);
            let last = btf.len().saturating_sub(1);
            let _ = btf.set_type_raw(last, 1, 4 << 24, 8);
            let _ = btf.set_datasec_var(last, 0, 1, 2);
            let name = btf.append_string("n");
            let _ = btf.append_type_raw(&[name, 2 << 24, last]);
            walk(&btf);
            let again = Btf::parse(btf.raw());
            prop_assert!(again.is_ok(), "patched BTF no longer parses: {:?}", again.err());
        }
    }

    #[test]
    fn mutated_btf_ext_never_panics(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in proptest::option::weighted(0.1, any::<usize>()),
    ) {
        let bytes = mutate(ext_bytes(true, 8, 3), &edits, cut);
        if let Ok(ext) = BtfExt::parse(&bytes) {
            let total: usize = ext.func_info.iter().map(|s| s.records.len()).sum();
            prop_assert!(total * 8 <= bytes.len());
        }
    }
}
