//! The `types` generator: names, padding, bitfields, packed/aligned
//! inference and enums on hand-made BTF; then every fixture's types compiled
//! in one scratch crate (with `deny(warnings)`), whose own test decodes
//! `layout.bpf.o`'s `.data` with the generated types.

use std::path::{Path, PathBuf};
use std::process::Command;

use proc_macro2::TokenStream;
use quote::quote;
use skelgen::types::{sanitize, DatasecField, GenError, TypeGen};
use skelgen_runtime::btf::{Btf, TypeKind};
use skelgen_runtime::obj::Object;
use skelgen_test_support::fixtures_dir;

// ---------------------------------------------------------------------------
// Hand-made BTF.

/// A BTF under construction, through the runtime's own appenders.
struct B(Btf);

fn info(kind: u32, vlen: u32, kflag: bool) -> u32 {
    (u32::from(kflag) << 31) | (kind << 24) | vlen
}

impl B {
    fn new() -> B {
        let mut hdr = Vec::new();
        hdr.extend_from_slice(&0xeb9fu16.to_le_bytes());
        hdr.extend_from_slice(&[1, 0]);
        for w in [24u32, 0, 0, 0, 1] {
            hdr.extend_from_slice(&w.to_le_bytes());
        }
        hdr.push(0);
        B(Btf::parse(&hdr).expect("empty BTF"))
    }
    fn s(&mut self, s: &str) -> u32 {
        self.0.append_string(s)
    }
    fn add(&mut self, words: &[u32]) -> u32 {
        self.0.append_type_raw(words).expect("valid type")
    }
    /// INT: `signed` sets BTF_INT_SIGNED; `enc` ORs extra encoding bits.
    fn int(&mut self, name: &str, size: u32, signed: bool, enc: u32) -> u32 {
        let n = self.s(name);
        let e = (u32::from(signed) | enc) << 24 | (size * 8);
        self.add(&[n, info(1, 0, false), size, e])
    }
    fn ptr(&mut self, to: u32) -> u32 {
        self.add(&[0, info(2, 0, false), to])
    }
    fn array(&mut self, elem: u32, index: u32, n: u32) -> u32 {
        self.add(&[0, info(3, 0, false), 0, elem, index, n])
    }
    /// STRUCT (or UNION) with members (name, type, bit offset, bitfield size).
    fn composite(
        &mut self,
        union: bool,
        name: &str,
        size: u32,
        members: &[(&str, u32, u32, u32)],
    ) -> u32 {
        let kflag = members.iter().any(|m| m.3 != 0);
        let n = self.s(name);
        let mut w = vec![
            n,
            info(if union { 5 } else { 4 }, members.len() as u32, kflag),
            size,
        ];
        for &(mn, ty, off, bits) in members {
            let mn = self.s(mn);
            w.extend([mn, ty, if kflag { bits << 24 | off } else { off }]);
        }
        self.add(&w)
    }
    fn st(&mut self, name: &str, size: u32, members: &[(&str, u32, u32, u32)]) -> u32 {
        self.composite(false, name, size, members)
    }
    fn enum32(&mut self, name: &str, signed: bool, values: &[(&str, u32)]) -> u32 {
        let n = self.s(name);
        let mut w = vec![n, info(6, values.len() as u32, signed), 4];
        for &(vn, v) in values {
            let vn = self.s(vn);
            w.extend([vn, v]);
        }
        self.add(&w)
    }
    fn enum64(&mut self, name: &str, signed: bool, values: &[(&str, u64)]) -> u32 {
        let n = self.s(name);
        let mut w = vec![n, info(19, values.len() as u32, signed), 8];
        for &(vn, v) in values {
            let vn = self.s(vn);
            w.extend([vn, v as u32, (v >> 32) as u32]);
        }
        self.add(&w)
    }
    fn typedef(&mut self, name: &str, to: u32) -> u32 {
        let n = self.s(name);
        self.add(&[n, info(8, 0, false), to])
    }
    fn fwd(&mut self, name: &str) -> u32 {
        let n = self.s(name);
        self.add(&[n, info(7, 0, false), 0])
    }
    fn var(&mut self, name: &str, ty: u32, linkage: u32) -> u32 {
        let n = self.s(name);
        self.add(&[n, info(14, 0, false), ty, linkage])
    }
    fn datasec(&mut self, name: &str, size: u32, vars: &[(u32, u32, u32)]) -> u32 {
        let n = self.s(name);
        let mut w = vec![n, info(15, vars.len() as u32, false), size];
        for &(v, off, sz) in vars {
            w.extend([v, off, sz]);
        }
        self.add(&w)
    }
}

fn rt() -> TokenStream {
    quote!(::skelgen_runtime)
}

/// The module's items for all named types (plus `extra` refs), formatted.
fn gen_text(btf: &Btf, refs: &[u32]) -> Result<String, GenError> {
    let mut g = TypeGen::new(btf, rt());
    for &id in refs {
        g.type_ref(id)?;
    }
    g.add_all_named()?;
    format_module(g.finish()?)
}

fn format_module(contents: TokenStream) -> Result<String, GenError> {
    let file: syn::File = syn::parse2(quote!(pub mod types { #contents }))
        .unwrap_or_else(|e| panic!("generated tokens do not parse: {e}"));
    Ok(prettyplease::unparse(&file))
}

/// Whitespace-insensitive containment (prettyplease may wrap lines).
fn has(text: &str, needle: &str) -> bool {
    let squash = |s: &str| {
        s.split_whitespace()
            .collect::<String>()
            .replace(",)", ")")
            .replace(",]", "]")
    };
    squash(text).contains(&squash(needle))
}

#[track_caller]
fn assert_has(text: &str, needle: &str) {
    assert!(has(text, needle), "`{needle}` not in:\n{text}");
}

// ---------------------------------------------------------------------------
// Unit tests on hand-made BTF.

#[test]
fn sanitize_escapes_keywords_and_odd_names() {
    assert_eq!(sanitize("event"), "event");
    assert_eq!(sanitize("self"), "self_");
    assert_eq!(sanitize("Self"), "Self_");
    assert_eq!(sanitize("crate"), "crate_");
    assert_eq!(sanitize("_"), "__");
    assert_eq!(sanitize("a.b$c"), "a_b_c");
    assert_eq!(sanitize("1x"), "_1x");
    assert_eq!(skelgen::types::ident("type").to_string(), "r#type");
    assert_eq!(skelgen::types::ident("match").to_string(), "r#match");
    assert_eq!(skelgen::types::ident("event").to_string(), "event");
}

#[test]
fn names_keywords_collisions_aliases_and_anonymous_members() {
    let mut b = B::new();
    let int = b.int("int", 4, true, 0);
    let u32_ = b.int("unsigned int", 4, false, 0);
    let kw = b.st("type", 4, &[("match", int, 0, 0)]);
    let selfy = b.st("self", 4, &[("self", int, 0, 0)]);
    let foo = b.st("foo", 4, &[("x", int, 0, 0)]);
    let _foo_td = b.typedef("foo", foo); // same name: elided
    let _other = b.typedef("bar", int);
    let bar_st = b.st("bar", 4, &[("y", int, 0, 0)]); // collides with typedef bar
    let anon_pt = b.st("", 8, &[("x", int, 0, 0), ("y", int, 32, 0)]);
    let _pt = b.typedef("point_t", anon_pt);
    let au = b.composite(true, "", 4, &[("i", int, 0, 0), ("u", u32_, 0, 0)]);
    let an = b.st("", 4, &[("q", int, 0, 0)]);
    let named_anon = b.st("", 4, &[("r", int, 0, 0)]);
    let outer = b.st(
        "outer",
        16,
        &[
            ("kind", int, 0, 0),
            ("", au, 32, 0),
            ("", an, 64, 0),
            ("inner", named_anon, 96, 0),
        ],
    );
    let _u32_td = b.typedef("u32", u32_);
    let c_bool = b.int("_Bool", 1, false, 4);
    let bool_td = b.typedef("bool", c_bool);
    let option_st = b.st("Option", 4, &[("some", bool_td, 0, 0)]);
    let uses_u32 = b.st("uses", 8, &[("v", _u32_td, 0, 0), ("o", option_st, 32, 0)]);
    let btf = b.0;
    let text = gen_text(&btf, &[kw, selfy, bar_st, outer, uses_u32]).expect("generates");
    assert_has(&text, "pub struct r#type { pub r#match: i32, }");
    assert_has(&text, "pub struct self_ { pub self_: i32, }");
    assert_has(&text, "pub struct foo {");
    assert!(
        !has(&text, "pub type foo"),
        "same-name typedef is elided:\n{text}"
    );
    assert_has(&text, "pub type bar = i32;");
    assert_has(&text, "pub struct bar_1 {");
    assert_has(&text, "pub struct point_t { pub x: i32, pub y: i32, }");
    assert_has(&text, "pub __anon_0: outer__anon_0,");
    assert_has(&text, "pub __anon_1: outer__anon_1,");
    assert_has(&text, "pub inner: outer__inner,");
    assert_has(&text, "pub struct outer__anon_0 {");
    assert_has(&text, "pub fn set_u(&mut self, v: u32)");
    // No generated type shadows a primitive or prelude name: typedefs of
    // such names are written as what they alias, other types get a `_`.
    assert!(!has(&text, "pub type u32"), "typedef u32 emitted:\n{text}");
    assert!(
        !has(&text, "pub type bool"),
        "typedef bool emitted:\n{text}"
    );
    assert_has(
        &text,
        "pub struct Option_ { pub some: ::skelgen_runtime::CBool,",
    );
    assert_has(&text, "pub struct uses { pub v: u32, pub o: Option_, }");
    // Deterministic.
    assert_eq!(
        text,
        gen_text(&btf, &[kw, selfy, bar_st, outer, uses_u32]).expect("again")
    );
    // From outside the module.
    let mut g = TypeGen::new(&btf, rt());
    assert_eq!(g.type_ref(kw).expect("ref").to_string(), "types :: r#type");
    assert_eq!(
        g.type_ref(uses_u32).expect("ref").to_string(),
        "types :: uses"
    );
}

#[test]
fn explicit_padding_and_scalar_mapping() {
    let mut b = B::new();
    let u8_ = b.int("unsigned char", 1, false, 0);
    let char_ = b.int("char", 1, true, 0);
    let boolean = b.int("_Bool", 1, false, 4);
    let u64_ = b.int("unsigned long long", 8, false, 0);
    let idx = b.int("__ARRAY_SIZE_TYPE__", 4, false, 0);
    let void_ptr = b.ptr(0);
    let name = b.array(char_, idx, 5);
    let grid = b.array(u8_, idx, 3);
    let grid2 = b.array(grid, idx, 2);
    let flex = b.array(u64_, idx, 0);
    let s = b.st(
        "ev",
        40,
        &[
            ("a", u8_, 0, 0),
            ("b", u64_, 64, 0),
            ("flag", boolean, 128, 0),
            ("name", name, 136, 0),
            ("p", void_ptr, 192, 0),
            ("g", grid2, 256, 0),
            ("rest", flex, 320, 0),
        ],
    );
    let btf = b.0;
    let text = gen_text(&btf, &[s]).expect("generates");
    assert_has(&text, "#[repr(C)]");
    assert_has(
        &text,
        "pub a: u8, #[doc(hidden)] pub __pad_0: [u8; 7], pub b: u64, pub flag: ::skelgen_runtime::CBool, \
         pub name: [::core::ffi::c_char; 5], #[doc(hidden)] pub __pad_1: [u8; 2], pub p: u64, \
         pub g: [[u8; 3]; 2], #[doc(hidden)] pub __pad_2: [u8; 2], pub rest: [u64; 0], }",
    );
    assert_has(&text, "::core::mem::size_of::<ev>() == 40");
    assert_has(&text, "::core::mem::offset_of!(ev, rest) == 40");
    assert_has(&text, "unsafe impl ::skelgen_runtime::Plain for ev {}");
}

#[test]
fn packed_and_aligned_are_inferred() {
    let mut b = B::new();
    let u8_ = b.int("unsigned char", 1, false, 0);
    let u32_ = b.int("unsigned int", 4, false, 0);
    let pk = b.st("pk", 5, &[("a", u8_, 0, 0), ("b", u32_, 8, 0)]);
    let tail = b.st("tail_pk", 5, &[("b", u32_, 0, 0), ("a", u8_, 32, 0)]);
    let al = b.st("al", 16, &[("x", u32_, 0, 0)]);
    let holder = b.st("holder", 32, &[("a", u8_, 0, 0), ("al", al, 128, 0)]);
    let un = b.composite(true, "un", 16, &[("x", u32_, 0, 0)]);
    let btf = b.0;
    let text = gen_text(&btf, &[pk, tail, holder, un]).expect("generates");
    assert_has(&text, "#[repr(C, packed)] #[derive(::core::clone::Clone, ::core::marker::Copy, ::core::cmp::PartialEq)] pub struct pk");
    assert_has(&text, "#[repr(C, packed)] #[derive(::core::clone::Clone, ::core::marker::Copy, ::core::cmp::PartialEq)] pub struct tail_pk");
    assert_has(&text, "#[repr(C, align(16))] #[derive(::core::clone::Clone, ::core::marker::Copy, ::core::cmp::PartialEq)] pub struct al");
    assert_has(&text, "::core::mem::align_of::<al>() == 16");
    assert_has(&text, "::core::mem::align_of::<holder>() == 16");
    assert_has(
        &text,
        "pub a: u8, #[doc(hidden)] pub __pad_0: [u8; 15], pub al: al,",
    );
    assert_has(&text, "#[repr(C, align(16))] #[derive(::core::clone::Clone, ::core::marker::Copy, ::core::cmp::PartialEq)] pub struct un { __bytes: [u8; 16], }");
}

#[test]
fn bitfields_get_accessors_with_sign_extension() {
    let mut b = B::new();
    let u32_ = b.int("unsigned int", 4, false, 0);
    let i32_ = b.int("int", 4, true, 0);
    let u64_ = b.int("unsigned long long", 8, false, 0);
    let u8_ = b.int("unsigned char", 1, false, 0);
    let col = b.enum32("color", false, &[("RED", 1)]);
    let s = b.st(
        "bits",
        16,
        &[
            ("a", u32_, 0, 3),
            ("b", i32_, 3, 5),
            ("c", u64_, 27, 33),
            ("mode", col, 60, 2),
            ("tail", u8_, 88, 0),
            ("z", i32_, 96, 4),
        ],
    );
    let btf = b.0;
    let text = gen_text(&btf, &[s]).expect("generates");
    // Runs of bitfields sharing bytes share a storage field; a gap splits runs.
    assert_has(
        &text,
        "__bf_0: [u8; 1], #[doc(hidden)] pub __pad_0: [u8; 2], __bf_1: [u8; 5],",
    );
    assert_has(
        &text,
        "pub fn a(&self) -> u32 { ::skelgen_runtime::plain::bits_get(&self.__bf_0, 0, 3) as u32 }",
    );
    assert_has(&text, "pub fn b(&self) -> i32 { ::skelgen_runtime::plain::bits_get_signed(&self.__bf_0, 3, 5) as i32 }");
    assert_has(&text, "pub fn set_b(&mut self, v: i32) { ::skelgen_runtime::plain::bits_set(&mut self.__bf_0, 3, 5, v as ::core::primitive::u64) }");
    assert_has(
        &text,
        "pub fn c(&self) -> u64 { ::skelgen_runtime::plain::bits_get(&self.__bf_1, 3, 33) as u64 }",
    );
    assert_has(&text, "pub fn mode(&self) -> color { color(::skelgen_runtime::plain::bits_get(&self.__bf_1, 36, 2) as u32) }");
    // A run after a plain member, relative to its own storage.
    assert_has(&text, "pub fn z(&self) -> i32 { ::skelgen_runtime::plain::bits_get_signed(&self.__bf_2, 0, 4) as i32 }");
    assert_has(&text, "::core::mem::offset_of!(bits, __bf_2) == 12");
    // C aligns the struct as its u64 bitfield: the byte-array storage does not, so align(8).
    assert_has(&text, "#[repr(C, align(8))]");
    assert_has(&text, "::core::mem::offset_of!(bits, tail) == 11");
}

#[test]
fn enums_newtypes_and_the_old_clang_heuristic() {
    let mut b = B::new();
    let col = b.enum32(
        "color",
        false,
        &[("RED", 1), ("NEG", (-5i32) as u32), ("ALSO_RED", 1)],
    );
    let flags = b.enum32("flags", false, &[("HIGH", 0x8000_0000)]);
    let btf = b.0;
    let mut g = TypeGen::new(&btf, rt());
    g.add_all_named().expect("named");
    assert_eq!(g.warnings().len(), 2, "{:?}", g.warnings());
    assert!(g.warnings()[0].contains("i32"), "{:?}", g.warnings());
    assert!(g.warnings()[1].contains("u32"), "{:?}", g.warnings());
    let text = format_module(g.finish().expect("finish")).expect("format");
    assert_has(&text, "#[repr(transparent)]");
    assert_has(&text, "pub struct color(pub i32);");
    assert_has(&text, "pub const NEG: Self = Self(-5);");
    assert_has(&text, "pub struct flags(pub u32);");
    assert_has(&text, "pub const HIGH: Self = Self(2147483648);");
    let _ = (col, flags);

    // With signedness recorded (an ENUM64 exists): no guess, no warning.
    let mut b = B::new();
    let _ = b.enum32("color", true, &[("NEG", (-5i32) as u32)]);
    let _ = b.enum64("big", false, &[("HUGE", 0x11_2233_4455)]);
    let _ = b.enum64("sbig", true, &[("MIN", i64::MIN as u64)]);
    let btf = b.0;
    let mut g = TypeGen::new(&btf, rt());
    g.add_all_named().expect("named");
    assert!(g.warnings().is_empty(), "{:?}", g.warnings());
    let text = format_module(g.finish().expect("finish")).expect("format");
    assert_has(&text, "pub struct color(pub i32);");
    assert_has(&text, "pub struct big(pub u64);");
    assert_has(&text, "pub const HUGE: Self = Self(73588229205);");
    assert_has(&text, "pub struct sbig(pub i64);");
    assert_has(&text, "pub const MIN: Self = Self(-9223372036854775808);");
}

#[test]
fn datasec_struct_with_padding_and_static_vars() {
    let mut b = B::new();
    let u8_ = b.int("unsigned char", 1, false, 0);
    let u64_ = b.int("unsigned long long", 8, false, 0);
    let anon = b.st("", 2, &[("lo", u8_, 0, 0), ("hi", u8_, 8, 0)]);
    let v1 = b.var("type", u8_, 1);
    let v2 = b.var("count", u64_, 0); // static
    let v3 = b.var("cfg", anon, 1);
    let v4 = b.var("count", u8_, 0); // same name: deduplicated
    let ds = b.datasec(
        ".data",
        24,
        &[(v1, 0, 1), (v2, 8, 8), (v3, 16, 2), (v4, 18, 1)],
    );
    let odd = b.var("odd", u64_, 1);
    let odd_tail = b.var("tail", u8_, 1);
    let ds2 = b.datasec(".rodata", 9, &[(odd, 0, 8), (odd_tail, 8, 1)]);
    let btf = b.0;
    let mut g = TypeGen::new(&btf, rt());
    let (path, fields) = g.datasec(ds, "data").expect("datasec");
    assert_eq!(path.to_string(), "types :: data");
    let summary: Vec<(String, String, u32, u32, String)> = fields
        .iter()
        .map(|f: &DatasecField| {
            (
                f.ident.to_string(),
                f.var_name.clone(),
                f.offset,
                f.size,
                f.ty.to_string(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("r#type".into(), "type".into(), 0, 1, "u8".into()),
            ("count".into(), "count".into(), 8, 8, "u64".into()),
            (
                "cfg".into(),
                "cfg".into(),
                16,
                2,
                "types :: data__cfg".into()
            ),
            ("count_1".into(), "count".into(), 18, 1, "u8".into()),
        ]
    );
    let (path2, _) = g.datasec(ds2, "rodata").expect("datasec");
    assert_eq!(path2.to_string(), "types :: rodata");
    assert!(matches!(
        g.datasec(v1, "x"),
        Err(GenError::NotDatasec { .. })
    ));
    let text = format_module(g.finish().expect("finish")).expect("format");
    assert_has(
        &text,
        "pub struct data { pub r#type: u8, #[doc(hidden)] pub __pad_0: [u8; 7], pub count: u64, \
         pub cfg: data__cfg, pub count_1: u8, #[doc(hidden)] pub __pad_1: [u8; 5], }",
    );
    assert_has(&text, "pub struct data__cfg {");
    // 9 bytes with a u64 inside: rounded up to 16 as C's sizeof would.
    assert_has(&text, "::core::mem::size_of::<rodata>() == 16");
    assert_has(&text, "pub const SECTION_SIZE: usize = 9;");
}

#[test]
fn bad_btf_is_an_error_not_a_panic() {
    let mut b = B::new();
    let int = b.int("int", 4, true, 0);
    let opaque = b.fwd("opaque");
    let by_value = b.st("holds_fwd", 4, &[("o", opaque, 0, 0)]);
    let overlap = b.st("overlap", 4, &[("a", int, 0, 0), ("b", int, 16, 0)]);
    let too_small = b.st("small", 2, &[("a", int, 0, 0)]);
    let odd_bits = b.st("odd", 4, &[("a", int, 3, 0)]);
    let opaque_td = b.typedef("opaque_t", opaque);
    // A struct containing itself by value (id known in advance).
    let next = btf_len(&b);
    let cyclic = b.st("cyclic", 4, &[("me", next, 0, 0)]);
    assert_eq!(cyclic, next);
    let dangling = b.st("dangling", 4, &[("x", 999, 0, 0)]);
    let btf = b.0;
    let mut g = TypeGen::new(&btf, rt());
    assert!(matches!(
        g.type_ref(by_value),
        Err(GenError::NotByValue { kind: "FWD", .. })
    ));
    assert!(matches!(g.type_ref(overlap), Err(GenError::Overlap { .. })));
    assert!(matches!(
        g.type_ref(too_small),
        Err(GenError::TooSmall { .. })
    ));
    assert!(matches!(
        g.type_ref(odd_bits),
        Err(GenError::BadMember { .. })
    ));
    assert!(matches!(g.type_ref(cyclic), Err(GenError::TooDeep { .. })));
    assert!(matches!(g.type_ref(dangling), Err(GenError::Btf { .. })));
    // A typedef of a forward declaration is an opaque zero-sized type.
    assert_eq!(
        g.type_ref(opaque_td).expect("opaque").to_string(),
        "types :: opaque_t"
    );
    // add_all_named skips what cannot be generated, with a warning each.
    g.add_all_named().expect("named");
    assert!(
        g.warnings().iter().any(|w| w.contains("holds_fwd")),
        "{:?}",
        g.warnings()
    );
    assert!(
        g.warnings().iter().any(|w| w.contains("overlap")),
        "{:?}",
        g.warnings()
    );
    let text = format_module(g.finish().expect("the rest generates")).expect("format");
    assert_has(&text, "pub struct opaque { _opaque: [u8; 0], }");
    assert!(!has(&text, "holds_fwd"), "{text}");
    let _ = int;
}

fn btf_len(b: &B) -> u32 {
    b.0.len()
}

// ---------------------------------------------------------------------------
// Every fixture, compiled.

/// A generated DATASEC struct: section name, Rust path, fields.
type Datasec = (String, TokenStream, Vec<DatasecField>);

/// `pub mod types { .. }` for every named type and DATASEC of `path`, and the
/// datasec struct names (section name -> Rust path, fields).
fn fixture_module(path: &Path) -> (String, Vec<Datasec>, Vec<String>) {
    let bytes = std::fs::read(path).expect("read fixture");
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("obj");
    let obj = Object::parse(&bytes, &skelgen_runtime::obj::object_name_from_path(name))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let btf = obj.btf.as_ref().expect("fixture has BTF");
    let mut g = TypeGen::new(btf, rt());
    g.add_all_named().expect("add_all_named");
    let mut secs = Vec::new();
    for t in btf.types() {
        let t = t.expect("type");
        if let TypeKind::Datasec(_) = t.kind {
            let sec = btf.name(t.name_off).expect("name").to_string();
            let rust = sanitize(sec.trim_start_matches('.'));
            let (p, fields) = g
                .datasec(t.id, &rust)
                .unwrap_or_else(|e| panic!("{}: datasec {sec}: {e}", path.display()));
            secs.push((sec, p, fields));
        }
    }
    let warnings = g.warnings().to_vec();
    let text = format_module(
        g.finish()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .expect("format");
    (text, secs, warnings)
}

/// The scratch crate's `tests/decode.rs`: `layout.bpf.o`'s `.data` and
/// `.rodata` decoded with the generated datasec structs, every field checked
/// against the C initialisers listed in `layout.bpf.c`.
const DECODE_LAYOUT: &str = r#"
use fixtures::layout::types;
use skelgen_runtime::Plain;

#[test]
fn layout_data_decodes_to_the_c_initialisers() {
    let image = include_bytes!("../layout.data.bin");
    assert_eq!(types::data::SECTION_SIZE, image.len());
    let mut data = types::data::default();
    data.as_bytes_mut()[..image.len()].copy_from_slice(image);
    let b = data.bits;
    assert_eq!((b.a(), b.b(), b.c(), b.d()), (5, 0x55, -7, 0xabc));
    assert_eq!((b.e(), b.f(), b.g(), b.tail), (0x1_2345_6789, -12345, 1, 0xee));
    assert_eq!(data.num.u(), 0x3fc0_0000);
    assert_eq!(data.num.f(), 1.5);
    assert_eq!(data.num.bytes(), [0, 0, 0xc0, 0x3f]);
    let a = data.anon;
    assert_eq!(a.tag, 7);
    assert_eq!(a.__anon_0.as_u32(), 0xaabb_ccdd);
    assert_eq!(a.__anon_0.as_u16(), [0xccdd, 0xaabb]);
    assert_eq!((a.__anon_1.lo, a.__anon_1.hi, a.after), (0x11, 0x22, -2));
    let p = data.packed;
    assert_eq!(({ p.a }, { p.b }, { p.c }), (1, 0x0203_0405, 0x0607));
    assert_eq!(core::mem::align_of::<types::packed_s>(), 1);
    assert_eq!((data.aligned.a, data.aligned.b), (0x0a, 0x0b0c_0d0e));
    assert_eq!(core::mem::align_of::<types::aligned_s>(), 16);
    assert_eq!(data.grid, [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]);
    assert_eq!(data.cube, [[[1, 2], [3, 4]], [[5, 6], [7, 8]]]);
    assert_eq!(data.name.map(|c| c as u8), *b"layout\0\0");
    assert_eq!(data.raw.map(|c| c as u8), *b"abcd");
    assert_eq!(data.flag, true);
    assert_eq!(data.flag.raw(), 1);
    assert_eq!((data.f32, data.f64), (1.5, -2.25));
    assert_eq!(data.t32, 0xdead_beef);
    let pt: types::point_t = data.pt;
    assert_eq!((pt.x, pt.y), (3, -4));
    assert_eq!((data.pt2.x, data.pt2.y), (-1, 1));
    assert_eq!(data.col, types::color::COLOR_NEG);
    assert_eq!(data.col.0, -5);
    assert_eq!(format!("{:?}", data.col), "COLOR_NEG");
    // clang 14 truncated BIG_HUGE in BTF; the bytes hold the full value.
    assert_eq!(data.bigv.0, 0x11_2233_4455);
    assert_eq!((data.ptr.p, data.ptr.s, data.ptr.next), (0x1000, 0x2000, 0x3000));
    assert_eq!(data.ptrs, [0x10, 0x20]);
    let n = data.nest;
    assert_eq!((n.pts[0].x, n.pts[0].y, n.pts[1].x, n.pts[1].y), (1, 2, 3, 4));
    assert_eq!((n.small, n.big), (-128, u64::MAX));
    assert_eq!((data.i8, data.u16v, data.i64), (-1, 0xbeef, -0x1_2345_6789));
    // Round trip, and the setters write back the same bits.
    assert_eq!(&data.as_bytes()[..image.len()], &image[..]);
    let mut bits = types::bits::default();
    bits.set_a(5); bits.set_b(0x55); bits.set_c(-7); bits.set_d(0xabc);
    bits.set_e(0x1_2345_6789); bits.set_f(-12345); bits.set_g(1); bits.tail = 0xee;
    assert_eq!(bits, data.bits);
    let dbg = format!("{:?}", data.bits);
    assert!(dbg.contains("c: -7"), "{dbg}");
    let mut num = types::num::default();
    num.set_f(1.5);
    assert_eq!(num, data.num);

    let ro = types::rodata::read_from(include_bytes!("../layout.rodata.bin")).expect(".rodata size");
    assert_eq!((ro.ro_limits.lo, ro.ro_limits.hi), (-1000, 1000));
    assert_eq!(types::bss::default().touched, 0);
}
"#;

#[test]
fn every_fixture_compiles_and_layout_decodes() {
    let mut fixtures: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_str().is_some_and(|s| s.ends_with(".bpf.o")))
        .collect();
    fixtures.sort();
    assert!(!fixtures.is_empty());

    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let krate = target.join("skelgen-types-check");
    std::fs::create_dir_all(krate.join("src")).expect("mkdir");
    std::fs::create_dir_all(krate.join("tests")).expect("mkdir");
    let runtime = Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime");
    let runtime = runtime.canonicalize().expect("runtime path");
    let manifest = format!(
        "[package]\nname = \"fixtures\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
         [dependencies]\nskelgen-runtime = {{ path = {:?} }}\n\n[workspace]\n",
        runtime.to_str().expect("utf-8 path")
    );
    write_if_changed(&krate.join("Cargo.toml"), &manifest);
    let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock");
    if let Ok(l) = std::fs::read(&lock) {
        if !krate.join("Cargo.lock").exists() {
            std::fs::write(krate.join("Cargo.lock"), l).expect("lock");
        }
    }

    let mut lib = String::from(
        "//! Generated by skelgen's tests/types.rs: every fixture's types.\n\
         #![deny(warnings, missing_docs, rust_2018_idioms, unsafe_op_in_unsafe_fn)]\n",
    );
    let mut all_warnings = Vec::new();
    let mut has_layout = false;
    for f in &fixtures {
        let file = f.file_name().and_then(|n| n.to_str()).expect("name");
        let module = sanitize(file.trim_end_matches(".bpf.o"));
        let (text, secs, warnings) = fixture_module(f);
        assert_eq!(
            text,
            fixture_module(f).0,
            "{file}: generating twice differs"
        );
        for w in warnings {
            all_warnings.push(format!("{file}: {w}"));
        }
        lib.push_str(&format!(
            "/// Types of `{file}`.\npub mod {module} {{\n{text}}}\n"
        ));
        // Every datasec field's type path resolves from the parent module.
        let mut uses = String::new();
        for (sec, p, fields) in &secs {
            for fl in fields {
                uses.push_str(&format!(
                    "    let _: {} = {}::default().{};\n",
                    fl.ty, p, fl.ident
                ));
            }
            let _ = sec;
        }
        lib.push_str(&format!(
            "#[allow(dead_code, unused_parens, clippy::all)]\nfn {module}_uses() {{\n    use {module}::types;\n{uses}}}\n"
        ));
        if module == "layout" {
            has_layout = true;
            let bytes = std::fs::read(f).expect("read");
            let obj = Object::parse(&bytes, "layout").expect("parse");
            for (sec, out) in [
                (".data", "layout.data.bin"),
                (".rodata", "layout.rodata.bin"),
            ] {
                let map = obj
                    .map(sec)
                    .unwrap_or_else(|| panic!("layout has no {sec} map"));
                if std::fs::read(krate.join(out)).ok().as_deref() != Some(&map.image[..]) {
                    std::fs::write(krate.join(out), &map.image).expect("write image");
                }
            }
        }
    }
    // A scratch fn per fixture: uses are inside `fn`s, so `types::` must be in
    // scope there; the `use` above does it.
    write_if_changed(&krate.join("src/lib.rs"), &lib);
    let decode = if has_layout { DECODE_LAYOUT } else { "" };
    write_if_changed(&krate.join("tests/decode.rs"), decode);
    eprintln!("generator warnings:\n  {}", all_warnings.join("\n  "));

    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .arg("test")
        .arg("--offline")
        .arg("--quiet")
        .current_dir(&krate)
        .env("CARGO_TARGET_DIR", krate.join("target"))
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "the generated types do not build or their decode test fails (crate at {}):\n{}\n{}",
        krate.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(has_layout, "tests/fixtures/layout.bpf.o is missing");
}

fn write_if_changed(path: &Path, contents: &str) {
    if std::fs::read(path).is_ok_and(|old| old == contents.as_bytes()) {
        return;
    }
    std::fs::write(path, contents).expect("write");
}
