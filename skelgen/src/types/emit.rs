//! The items of the `types` module: structs (with padding and bitfield
//! accessors), unions (bytes plus safe accessors), enums (newtypes with
//! associated constants), typedefs, opaque types and DATASEC structs, each
//! followed by its layout assertions and its `Plain` impl.

use std::collections::HashSet;

use proc_macro2::{Ident, Literal, TokenStream};
use quote::{format_ident, quote};
use skelgen_runtime::btf::{Kind, TypeKind};

use super::layout::{BitValue, CompInfo, MemberPlan};
use super::{enum_prim, ident, sanitize, unique, DatasecField, GenError, TypeGen};

/// One field of a generated struct.
struct Field {
    ident: Ident,
    ty: TokenStream,
    offset: u32,
    size: u32,
    /// `pub` (members, variables, padding) or private (bitfield storage).
    public: bool,
    /// The name shown by `Debug`; `None` for padding and storage.
    label: Option<String>,
}

/// A bitfield member: C name, bit offset, width, value type.
type BitMember = (String, u32, u32, BitValue);

/// Everything one struct item is made of.
struct StructSpec {
    doc: crate::gen::Doc,
    name: Ident,
    fields: Vec<Field>,
    methods: Vec<TokenStream>,
    /// `Debug` entries for getters (bitfields, union members).
    debug_getters: Vec<(String, Ident)>,
    size: u32,
    align: u32,
    /// `packed`, `align(N)` or nothing.
    repr: TokenStream,
}

fn lit(n: u32) -> Literal {
    Literal::usize_unsuffixed(n as usize)
}

fn btf_err(id: u32) -> impl FnOnce(skelgen_runtime::btf::BtfError) -> GenError {
    move |source| GenError::Btf { id, source }
}

/// The item(s) for registered type `id`.
pub(super) fn item(g: &mut TypeGen<'_>, id: u32) -> Result<TokenStream, GenError> {
    let btf = g.btf;
    let t = btf.type_by_id(id).map_err(btf_err(id))?;
    let c_name = btf.name(t.name_off).map_err(btf_err(id))?;
    let name = ident(g.names.get(&id).map(String::as_str).unwrap_or("__unnamed"));
    match t.kind {
        TypeKind::Struct(_) | TypeKind::Union(_) => {
            let info = g.layouts.composite(id, 0)?.clone();
            let what = if info.is_union { "union" } else { "struct" };
            let doc = if c_name.is_empty() {
                doc!(
                    " Anonymous C {what} (BTF type id {id}, {} bytes).",
                    info.size
                )
            } else {
                doc!(
                    " C `{what} {c_name}` (BTF type id {id}, {} bytes).",
                    info.size
                )
            };
            let spec = if info.is_union {
                union_spec(g, id, name, doc, &info)?
            } else {
                struct_spec(g, id, name, doc, &info)?
            };
            Ok(struct_item(g, spec))
        }
        TypeKind::Enum(_) | TypeKind::Enum64(_) => enum_item(g, id, name, c_name),
        TypeKind::Typedef(target) => {
            let ty = g.ty(target, false)?;
            let doc = doc!(" C `typedef {c_name}` (BTF type id {id}).");
            Ok(quote! {
                #[doc = #doc]
                pub type #name = #ty;
            })
        }
        TypeKind::Fwd { is_union } => {
            let what = if is_union { "union" } else { "struct" };
            let u8t = g.prim("u8", false);
            let spec = StructSpec {
                doc: doc!(
                    " C `{what} {c_name}`, only declared (BTF type id {id}): opaque, zero-sized."
                ),
                name,
                fields: vec![Field {
                    ident: format_ident!("_opaque"),
                    ty: quote!([#u8t; 0]),
                    offset: 0,
                    size: 0,
                    public: false,
                    label: None,
                }],
                methods: Vec::new(),
                debug_getters: Vec::new(),
                size: 0,
                align: 1,
                repr: TokenStream::new(),
            };
            Ok(struct_item(g, spec))
        }
        _ => Err(GenError::NotByValue {
            id,
            kind: t.kind().as_str(),
        }),
    }
}

/// Getter and setter of a bitfield `width` bits wide at `bit` bits into
/// the byte-array field `storage`.
fn bitfield_methods(
    g: &TypeGen<'_>,
    getter: &Ident,
    setter: &Ident,
    storage: &Ident,
    bit: u32,
    width: u32,
    value: BitValue,
) -> Result<TokenStream, GenError> {
    let rt = &g.rt;
    let (bit, width) = (Literal::u32_unsuffixed(bit), Literal::u32_unsuffixed(width));
    let read = |signed: bool| {
        if signed {
            quote!(#rt::plain::bits_get_signed(&self.#storage, #bit, #width))
        } else {
            quote!(#rt::plain::bits_get(&self.#storage, #bit, #width))
        }
    };
    let write = |v: TokenStream| quote!(#rt::plain::bits_set(&mut self.#storage, #bit, #width, #v));
    let (ty, get, set) = match value {
        // A computed `bool` (any non-zero bit is true), never the stored
        // byte reinterpreted.
        BitValue::Bool => (
            quote!(::core::primitive::bool),
            {
                let r = read(false);
                quote!(#r != 0)
            },
            write(quote!(v as ::core::primitive::u64)),
        ),
        BitValue::Int { size, signed } => {
            let ty = g.prim(
                &format!("{}{}", if signed { 'i' } else { 'u' }, size * 8),
                false,
            );
            let r = read(signed);
            (
                ty.clone(),
                quote!(#r as #ty),
                write(quote!(v as ::core::primitive::u64)),
            )
        }
        BitValue::Enum { id, size, .. } => {
            let signed = g.enum_signed(id);
            let inner = g.prim(enum_prim(id, size, signed)?, false);
            let ty = g.item_path(id, false);
            let r = read(signed);
            (
                ty.clone(),
                quote!(#ty(#r as #inner)),
                write(quote!(v.0 as ::core::primitive::u64)),
            )
        }
    };
    Ok(quote! {
        #[inline]
        pub fn #getter(&self) -> #ty {
            #get
        }
        #[inline]
        pub fn #setter(&mut self, v: #ty) {
            #set
        }
    })
}

/// Getter/setter names for member `name` (sanitized), unique in `methods`.
fn accessor_names(methods: &mut HashSet<String>, name: &str) -> (Ident, Ident) {
    let get = unique(methods, name);
    let set = unique(methods, &format!("set_{}", get.trim_start_matches("r#")));
    (ident(&get), ident(&set))
}

/// The field/getter name of a member: its name, or `__anon_N`.
fn member_name(m: &MemberPlan, unnamed: &mut u32) -> String {
    if m.name.is_empty() {
        let n = format!("__anon_{unnamed}");
        *unnamed += 1;
        n
    } else {
        sanitize(&m.name)
    }
}

fn struct_spec(
    g: &mut TypeGen<'_>,
    id: u32,
    name: Ident,
    doc: crate::gen::Doc,
    info: &CompInfo,
) -> Result<StructSpec, GenError> {
    let mut used = HashSet::new();
    let mut methods_used = HashSet::new();
    let mut fields = Vec::new();
    let mut methods = Vec::new();
    let mut debug_getters = Vec::new();
    // Bitfield storage runs: (first byte, end byte, [(member, bit, width, value)]).
    let mut runs: Vec<(u32, u32, Vec<BitMember>)> = Vec::new();
    let mut unnamed = 0;
    for m in &info.members {
        match m.bits {
            Some((bit, width, value)) => {
                if m.name.is_empty() {
                    continue; // unnamed padding bitfield
                }
                let end = m.offset + m.size;
                match runs.last_mut() {
                    Some(run) if m.offset < run.1 && m.offset >= run.0 => {
                        run.1 = run.1.max(end);
                        run.2.push((m.name.clone(), bit, width, value));
                    }
                    _ => runs.push((m.offset, end, vec![(m.name.clone(), bit, width, value)])),
                }
            }
            None => {
                let fname = unique(&mut used, &member_name(m, &mut unnamed));
                fields.push(Field {
                    ident: ident(&fname),
                    ty: g.ty(m.ty, false)?,
                    offset: m.offset,
                    size: m.size,
                    public: true,
                    label: Some(if m.name.is_empty() {
                        fname
                    } else {
                        m.name.clone()
                    }),
                });
            }
        }
    }
    let u8t = g.prim("u8", false);
    for (n, (start, end, members)) in runs.into_iter().enumerate() {
        let storage = ident(&unique(&mut used, &format!("__bf_{n}")));
        for (c_name, bit, width, value) in members {
            let (get, set) = accessor_names(&mut methods_used, &sanitize(&c_name));
            methods.push(bitfield_methods(
                g,
                &get,
                &set,
                &storage,
                bit - 8 * start,
                width,
                value,
            )?);
            debug_getters.push((c_name, get));
        }
        let len = lit(end - start);
        fields.push(Field {
            ident: storage,
            ty: quote!([#u8t; #len]),
            offset: start,
            size: end - start,
            public: false,
            label: None,
        });
    }
    fields.sort_by_key(|f| f.offset);
    let fields = with_padding(g, id, fields, info.size, &mut used)?;
    let repr = if info.packed && info.r_nat > 1 {
        quote!(packed)
    } else if info.c_align > info.r_nat {
        let a = lit(info.c_align);
        quote!(align(#a))
    } else {
        TokenStream::new()
    };
    Ok(StructSpec {
        doc,
        name,
        fields,
        methods,
        debug_getters,
        size: info.size,
        align: info.c_align,
        repr,
    })
}

/// `fields` (sorted by offset) with `__pad_N` fields in every gap and up to
/// `size`.
fn with_padding(
    g: &TypeGen<'_>,
    id: u32,
    fields: Vec<Field>,
    size: u32,
    used: &mut HashSet<String>,
) -> Result<Vec<Field>, GenError> {
    let u8t = g.prim("u8", false);
    let mut out = Vec::with_capacity(fields.len() * 2 + 1);
    let mut cursor: u64 = 0;
    let mut pads = 0;
    let mut pad = |out: &mut Vec<Field>, offset: u64, len: u64| {
        let ident = ident(&unique(used, &format!("__pad_{pads}")));
        pads += 1;
        let n = Literal::u64_unsuffixed(len);
        out.push(Field {
            ident,
            ty: quote!([#u8t; #n]),
            offset: offset as u32,
            size: len as u32,
            public: true,
            label: None,
        });
    };
    for f in fields {
        let offset = u64::from(f.offset);
        if offset < cursor {
            return Err(GenError::Overlap {
                id,
                member: f.label.clone().unwrap_or_else(|| f.ident.to_string()),
                offset: f.offset,
                end: cursor,
            });
        }
        if offset > cursor {
            pad(&mut out, cursor, offset - cursor);
        }
        cursor = offset + u64::from(f.size);
        out.push(f);
    }
    if cursor > u64::from(size) {
        return Err(GenError::TooSmall {
            id,
            size,
            end: cursor,
        });
    }
    if cursor < u64::from(size) {
        pad(&mut out, cursor, u64::from(size) - cursor);
    }
    Ok(out)
}

fn union_spec(
    g: &mut TypeGen<'_>,
    _id: u32,
    name: Ident,
    doc: crate::gen::Doc,
    info: &CompInfo,
) -> Result<StructSpec, GenError> {
    let rt = g.rt.clone();
    let bytes = format_ident!("__bytes");
    let mut methods_used = HashSet::new();
    let mut methods = Vec::new();
    let mut debug_getters = Vec::new();
    let mut unnamed = 0;
    for m in &info.members {
        if m.name.is_empty() && m.bits.is_some() {
            continue;
        }
        let base = member_name(m, &mut unnamed);
        let (get, set) = accessor_names(&mut methods_used, &base);
        match m.bits {
            Some((bit, width, value)) => {
                methods.push(bitfield_methods(g, &get, &set, &bytes, bit, width, value)?);
            }
            None => {
                let ty = g.ty(m.ty, false)?;
                let off = lit(m.offset);
                methods.push(quote! {
                    #[inline]
                    pub fn #get(&self) -> #ty {
                        #rt::plain::load_at(&self.#bytes, #off)
                    }
                    #[inline]
                    pub fn #set(&mut self, v: #ty) {
                        #rt::plain::store_at(&mut self.#bytes, #off, &v)
                    }
                });
            }
        }
        let label = if m.name.is_empty() {
            base
        } else {
            m.name.clone()
        };
        debug_getters.push((label, get));
    }
    let u8t = g.prim("u8", false);
    let len = lit(info.size);
    let repr = if info.c_align > 1 {
        let a = lit(info.c_align);
        quote!(align(#a))
    } else {
        TokenStream::new()
    };
    Ok(StructSpec {
        doc,
        name,
        fields: vec![Field {
            ident: bytes,
            ty: quote!([#u8t; #len]),
            offset: 0,
            size: info.size,
            public: false,
            label: None,
        }],
        methods,
        debug_getters,
        size: info.size,
        align: info.c_align,
        repr,
    })
}

/// The struct, its impls and its layout assertions.
fn struct_item(g: &TypeGen<'_>, s: StructSpec) -> TokenStream {
    let rt = &g.rt;
    let StructSpec {
        doc,
        name,
        fields,
        methods,
        debug_getters,
        size,
        align,
        repr,
    } = s;
    let repr = if repr.is_empty() {
        quote!(#[repr(C)])
    } else {
        quote!(#[repr(C, #repr)])
    };
    let decls = fields.iter().map(|f| {
        let (i, ty) = (&f.ident, &f.ty);
        match (f.public, &f.label) {
            (true, Some(_)) => quote!(pub #i: #ty,),
            (true, None) => quote!(#[doc(hidden)] pub #i: #ty,),
            (false, _) => quote!(#i: #ty,),
        }
    });
    let name_str = name.to_string();
    let name_str = name_str.trim_start_matches("r#");
    let mut debug = Vec::new();
    for f in &fields {
        if let Some(label) = &f.label {
            let i = &f.ident;
            debug.push(quote!(.field(#label, &{ self.#i })));
        }
    }
    for (label, get) in &debug_getters {
        debug.push(quote!(.field(#label, &self.#get())));
    }
    let offsets = fields.iter().map(|f| {
        let (i, off) = (&f.ident, lit(f.offset));
        quote!(
            const _: () = ::core::assert!(::core::mem::offset_of!(#name, #i) == #off);
        )
    });
    let (size, align) = (lit(size), lit(align));
    let methods = if methods.is_empty() {
        TokenStream::new()
    } else {
        quote!(impl #name { #(#methods)* })
    };
    quote! {
        #[doc = #doc]
        #repr
        #[derive(::core::clone::Clone, ::core::marker::Copy, ::core::cmp::PartialEq)]
        pub struct #name {
            #(#decls)*
        }
        #methods
        impl ::core::fmt::Debug for #name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(#name_str) #(#debug)* .finish()
            }
        }
        impl ::core::default::Default for #name {
            fn default() -> Self {
                <Self as #rt::Plain>::zeroed()
            }
        }
        unsafe impl #rt::Plain for #name {}
        const _: () = ::core::assert!(::core::mem::size_of::<#name>() == #size);
        const _: () = ::core::assert!(::core::mem::align_of::<#name>() == #align);
        #(#offsets)*
    }
}

/// A literal for the enumerator `raw` of an enum of `size` bytes: masked to
/// the size, and negative (as `-N`) when signed.
fn enum_value(raw: u64, size: u32, signed: bool) -> TokenStream {
    let bits = size * 8;
    let masked = if bits >= 64 {
        raw
    } else {
        raw & ((1u64 << bits) - 1)
    };
    if signed {
        let shift = 64 - bits.min(64);
        let v = ((masked << shift) as i64) >> shift;
        let abs = Literal::u64_unsuffixed(v.unsigned_abs());
        if v < 0 {
            quote!(-#abs)
        } else {
            quote!(#abs)
        }
    } else {
        let v = Literal::u64_unsuffixed(masked);
        quote!(#v)
    }
}

fn enum_item(g: &TypeGen<'_>, id: u32, name: Ident, c_name: &str) -> Result<TokenStream, GenError> {
    let btf = g.btf;
    let rt = &g.rt;
    let t = btf.type_by_id(id).map_err(btf_err(id))?;
    let (size, values): (u32, Vec<(u32, u64)>) = match t.kind {
        TypeKind::Enum(e) => (e.size, e.values().map(|v| (v.name_off, v.value)).collect()),
        TypeKind::Enum64(e) => (e.size, e.values().map(|v| (v.name_off, v.value)).collect()),
        _ => {
            return Err(GenError::NotByValue {
                id,
                kind: t.kind().as_str(),
            })
        }
    };
    let signed = g.enum_signed(id);
    let inner = g.prim(enum_prim(id, size, signed)?, false);
    let mut used = HashSet::new();
    let mut seen_values = HashSet::new();
    let mut consts = Vec::new();
    let mut arms = Vec::new();
    for (name_off, raw) in values {
        let c = btf.name(name_off).map_err(btf_err(id))?;
        let cname = ident(&unique(&mut used, &sanitize(c)));
        let v = enum_value(raw, size, signed);
        consts.push(quote!(pub const #cname: Self = Self(#v);));
        if seen_values.insert(v.to_string()) {
            arms.push(quote!(#v => f.write_str(#c),));
        }
    }
    let what = if c_name.is_empty() {
        "anonymous C enum".to_string()
    } else {
        format!("C `enum {c_name}`")
    };
    let doc = doc!(
        " {what} (BTF type id {id}, {size} bytes): the raw value, with a constant per enumerator."
    );
    let name_str = name.to_string();
    let name_str = name_str.trim_start_matches("r#");
    let size_lit = lit(size);
    Ok(quote! {
        #[doc = #doc]
        #[repr(transparent)]
        #[derive(
            ::core::clone::Clone,
            ::core::marker::Copy,
            ::core::cmp::PartialEq,
            ::core::cmp::Eq,
            ::core::hash::Hash,
            ::core::cmp::PartialOrd,
            ::core::cmp::Ord,
            ::core::default::Default
        )]
        pub struct #name(pub #inner);
        impl #name {
            #(#consts)*
        }
        impl ::core::fmt::Debug for #name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                match self.0 {
                    #(#arms)*
                    v => f.debug_tuple(#name_str).field(&v).finish(),
                }
            }
        }
        unsafe impl #rt::Plain for #name {}
        const _: () = ::core::assert!(::core::mem::size_of::<#name>() == #size_lit);
    })
}

/// [`TypeGen::datasec`].
pub(super) fn datasec(
    g: &mut TypeGen<'_>,
    datasec_id: u32,
    rust_name: &str,
) -> Result<(TokenStream, Vec<DatasecField>), GenError> {
    let btf = g.btf;
    let t = btf.type_by_id(datasec_id).map_err(btf_err(datasec_id))?;
    let TypeKind::Datasec(ds) = t.kind else {
        return Err(GenError::NotDatasec {
            id: datasec_id,
            kind: t.kind().as_str(),
        });
    };
    let sec_name = btf
        .name(t.name_off)
        .map_err(btf_err(datasec_id))?
        .to_string();
    let struct_name = unique(&mut g.taken, &sanitize(rust_name));
    let mut vars = Vec::new();
    for vsi in ds.vars() {
        let v = btf.type_by_id(vsi.ty).map_err(btf_err(vsi.ty))?;
        let TypeKind::Var { ty, .. } = v.kind else {
            continue;
        };
        // A typeless extern (`extern const void sym __ksym`) has no bytes.
        let resolved = btf.skip_mods_and_typedefs(ty).map_err(btf_err(ty))?;
        if btf.kind_of(resolved).map_err(btf_err(resolved))? == Kind::Void {
            continue;
        }
        let var_name = btf.name(v.name_off).map_err(btf_err(vsi.ty))?.to_string();
        vars.push((vsi.offset, var_name, ty));
    }
    vars.sort_by_key(|v| v.0);
    let mut used = HashSet::new();
    let mut fields = Vec::new();
    let mut out = Vec::new();
    let (mut r_nat, mut misaligned, mut end) = (1u32, false, 0u64);
    for (offset, var_name, ty) in vars {
        let fname = unique(&mut used, &sanitize(&var_name));
        if let Some(anon) = g.anonymous_target(ty) {
            let n = unique(&mut g.taken, &format!("{struct_name}__{fname}"));
            g.names.insert(anon, n);
        }
        g.register(ty)?;
        let size = g.layouts.size(ty)?;
        let (_, r) = g.layouts.align(ty, 0)?;
        r_nat = r_nat.max(r);
        misaligned |= offset % r != 0;
        end = end.max(u64::from(offset) + u64::from(size));
        let ident = ident(&fname);
        out.push(DatasecField {
            ident: ident.clone(),
            var_name: var_name.clone(),
            offset,
            size,
            ty: g.ty(ty, true)?,
        });
        fields.push(Field {
            ident,
            ty: g.ty(ty, false)?,
            offset,
            size,
            public: true,
            label: Some(var_name),
        });
    }
    let size = if ds.size == 0 { end as u32 } else { ds.size };
    // As C's sizeof for bpftool's skeleton structs: the section size rounded
    // up to the struct's alignment (packed only for a misaligned variable:
    // packing would forbid references to fields and over-aligned members).
    let (repr, align, rust_size) = if misaligned {
        let repr = if r_nat > 1 {
            quote!(packed)
        } else {
            TokenStream::new()
        };
        (repr, 1, size)
    } else {
        let rounded = u64::from(size).div_ceil(u64::from(r_nat)) * u64::from(r_nat);
        let rounded = u32::try_from(rounded).map_err(|_| GenError::TooSmall {
            id: datasec_id,
            size,
            end: rounded,
        })?;
        (TokenStream::new(), r_nat, rounded)
    };
    let fields = with_padding(g, datasec_id, fields, rust_size, &mut used)?;
    let section_size = lit(size);
    let methods = vec![quote! {
        /// Size of the section in the object; `size_of::<Self>()` may be larger
        /// by the tail padding up to the struct's alignment.
        pub const SECTION_SIZE: usize = #section_size;
    }];
    let spec = StructSpec {
        doc: doc!(" The variables of section `{sec_name}` (BTF DATASEC type id {datasec_id}, {size} bytes)."),
        name: ident(&struct_name),
        fields,
        methods,
        debug_getters: Vec::new(),
        size: rust_size,
        align,
        repr,
    };
    let item = struct_item(g, spec);
    let n = g.datasecs.len();
    g.datasecs.insert((datasec_id, n), item);
    let m = &g.module;
    let i = ident(&struct_name);
    Ok((quote!(#m::#i), out))
}
