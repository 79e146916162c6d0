//! The skeleton generator: the object model in, tokens out.
//!
//! For an object named `vfsstat_bpf` it emits `mod types` (Rust types from
//! BTF), the embedded object, `OpenVfsstatBpf` (pre-load settings and
//! global-data images) and `VfsstatBpf` (typed map handles, programs,
//! links, global data). Handles are fields of the skeleton, which
//! implements `Drop`, so none can be moved out of it: each is used by
//! reference and cannot outlive the skeleton.

use std::collections::HashSet;

use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::{format_ident, quote, ToTokens};
use skelgen_runtime::obj::{DataKind, Map, MapKind, MapType, Object};

use crate::types::{ident, sanitize, TypeGen};
use crate::{Error, Options};

mod struct_ops;

/// Rust names derived from the object name.
struct Names {
    skel: Ident,
    open: Ident,
}

fn camel(name: &str) -> String {
    let mut out = String::new();
    let mut up = true;
    for c in name.chars() {
        if c == '_' || !c.is_ascii_alphanumeric() {
            up = true;
        } else if up {
            out.push(c.to_ascii_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'X');
    }
    out
}

/// Field names, unique within one struct, from C names.
struct Fields(HashSet<String>);

impl Fields {
    fn new() -> Self {
        Fields(HashSet::new())
    }

    fn add(&mut self, c_name: &str) -> Ident {
        let base = sanitize(c_name);
        let mut name = base.clone();
        let mut n = 1;
        while !self.0.insert(name.clone()) {
            name = format!("{base}_{n}");
            n += 1;
        }
        ident(&name)
    }
}

/// The accessor name of a global-data section: `.rodata` -> `rodata`,
/// `.data.foo` -> `data_foo`.
fn datasec_name(sec: &str) -> String {
    sec.trim_start_matches('.')
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

struct DataSec {
    map_index: usize,
    accessor: String,
    kind: DataKind,
    ty: TokenStream,
    fields: Vec<crate::types::DatasecField>,
}

fn lit_usize(n: usize) -> Literal {
    Literal::usize_unsuffixed(n)
}

/// The typed handle for a map after load, and how to build it from a
/// `LoadedMap` named `lm`.
fn map_handle(
    rt: &TokenStream,
    m: &Map,
    tg: &mut TypeGen<'_>,
) -> Result<(TokenStream, TokenStream), Error> {
    let ty_or_bytes = |tg: &mut TypeGen<'_>, id: u32, size: u32| -> Result<TokenStream, Error> {
        if id != 0 {
            if let Ok(t) = tg.type_ref(id) {
                return Ok(t);
            }
        }
        let n = lit_usize(size as usize);
        Ok(quote!([u8; #n]))
    };
    let name = m.name.as_str();
    let t = m.def.map_type;
    let (ty, ctor) = match t {
        MapType::RINGBUF | MapType::USER_RINGBUF => (
            quote!(#rt::map::RingBufMap),
            quote!(#rt::map::RingBufMap::new(lm.fd, #name)),
        ),
        MapType::PERF_EVENT_ARRAY => (
            quote!(#rt::map::PerfEventArrayMap),
            quote!(#rt::map::PerfEventArrayMap::new(lm.fd, #name)),
        ),
        MapType::PROG_ARRAY => (
            quote!(#rt::map::ProgArray),
            quote!(#rt::map::ProgArray::new(lm.fd, #name)),
        ),
        MapType::ARRAY_OF_MAPS | MapType::HASH_OF_MAPS => {
            let k = ty_or_bytes(tg, m.def.btf_key_type_id, m.def.key_size)?;
            (
                quote!(#rt::map::MapOfMaps<#k>),
                quote!(#rt::map::MapOfMaps::new(lm.fd, #name)),
            )
        }
        MapType::QUEUE | MapType::STACK => {
            let v = ty_or_bytes(tg, m.def.btf_value_type_id, m.def.value_size)?;
            let h = if t == MapType::QUEUE {
                quote!(Queue)
            } else {
                quote!(Stack)
            };
            (
                quote!(#rt::map::#h<#v>),
                quote!(#rt::map::#h::new(lm.fd, #name)),
            )
        }
        MapType::BLOOM_FILTER => {
            let v = ty_or_bytes(tg, m.def.btf_value_type_id, m.def.value_size)?;
            (
                quote!(#rt::map::BloomFilter<#v>),
                quote!(#rt::map::BloomFilter::new(lm.fd, #name)),
            )
        }
        MapType::STACK_TRACE => (
            quote!(#rt::map::StackTraceMap),
            quote!(#rt::map::StackTraceMap::new(lm.fd, #name)),
        ),
        t if t.is_percpu() => {
            let k = ty_or_bytes(tg, m.def.btf_key_type_id, m.def.key_size)?;
            let v = ty_or_bytes(tg, m.def.btf_value_type_id, m.def.value_size)?;
            (
                quote!(#rt::map::PerCpuMap<#k, #v>),
                quote!(#rt::map::PerCpuMap::new(lm.fd, #name)),
            )
        }
        MapType::HASH | MapType::ARRAY | MapType::LRU_HASH | MapType::LPM_TRIE => {
            let k = ty_or_bytes(tg, m.def.btf_key_type_id, m.def.key_size)?;
            let v = ty_or_bytes(tg, m.def.btf_value_type_id, m.def.value_size)?;
            (
                quote!(#rt::map::Map<#k, #v>),
                quote!(#rt::map::Map::new(lm.fd, #name)),
            )
        }
        _ => (
            quote!(#rt::map::UntypedMap),
            quote!(::core::result::Result::<_, #rt::map::MapError>::Ok(
                #rt::map::UntypedMap::new(lm.fd, #name)
            )),
        ),
    };
    Ok((ty, ctor))
}

/// Generates the skeleton for `obj` (parsed from `embedded`, the bytes the
/// skeleton embeds).
pub(crate) fn skeleton(
    obj: &Object,
    embedded: &[u8],
    opts: &Options,
    warnings: &mut Vec<String>,
) -> Result<Skeleton, Error> {
    let rt: TokenStream = quote!(::skelgen_runtime);
    let obj_name = opts
        .name
        .clone()
        .unwrap_or_else(|| format!("{}_bpf", obj.name));
    let base = camel(&obj_name);
    let names = Names {
        skel: format_ident!("{}", base),
        open: format_ident!("Open{}", base),
    };
    let Names { skel, open } = &names;
    let maps_ty = format_ident!("{}Maps", base);
    let open_maps_ty = format_ident!("Open{}Maps", base);
    let progs_ty = format_ident!("{}Progs", base);
    let open_progs_ty = format_ident!("Open{}Progs", base);
    let links_ty = format_ident!("{}Links", base);

    let empty = skelgen_runtime::btf::Btf::parse(&empty_btf()).map_err(|e| Error::Generate {
        reason: e.to_string(),
    })?;
    let btf = obj.btf.as_ref().unwrap_or(&empty);
    let mut tg = TypeGen::new(btf, rt.clone());
    if !opts.reachable_types_only {
        tg.add_all_named().map_err(|e| Error::Generate {
            reason: e.to_string(),
        })?;
    }

    // Global data sections with at least one variable.
    let mut datasecs = Vec::new();
    let mut accessors = Fields::new();
    for (i, m) in obj.maps.iter().enumerate() {
        let MapKind::Data(kind) = m.kind else {
            continue;
        };
        if m.def.btf_value_type_id == 0 {
            continue;
        }
        let accessor = accessors.add(&datasec_name(&m.name)).to_string();
        let accessor = accessor.trim_start_matches("r#").to_string();
        let (ty, fields) = tg
            .datasec(m.def.btf_value_type_id, &accessor)
            .map_err(|e| Error::Generate {
                reason: format!("datasec '{}': {e}", m.name),
            })?;
        if fields.is_empty() {
            continue;
        }
        datasecs.push(DataSec {
            map_index: i,
            accessor,
            kind,
            ty,
            fields,
        });
    }

    // Maps: every map is an OpenMap before load; BTF-defined maps get a
    // typed handle after load.
    let mut open_map_fields = Vec::new();
    let mut open_map_inits = Vec::new();
    let mut open_map_applies = Vec::new();
    let mut map_fields = Vec::new();
    let mut map_inits = Vec::new();
    let mut open_names = Fields::new();
    let mut loaded_names = Fields::new();
    for (i, m) in obj.maps.iter().enumerate() {
        let field_name = match m.kind {
            MapKind::Btf { .. } | MapKind::StructOps(_) => m.name.clone(),
            MapKind::Data(_) => datasec_name(&m.name),
        };
        let f = open_names.add(&field_name);
        let idx = lit_usize(i);
        let name = m.name.as_str();
        let doc = doc!(" Map `{}` ({}).", m.name, m.def.map_type);
        open_map_fields.push(quote!(#[doc = #doc] pub #f: #rt::skel::OpenMap));
        open_map_inits.push(quote!(#f: #rt::skel::OpenMap::__new(&obj, #idx, #name)?));
        open_map_applies.push(quote!(maps.#f.__apply(&mut obj);));
        if let MapKind::Btf { .. } = m.kind {
            let f = loaded_names.add(&m.name);
            let (ty, ctor) = map_handle(&rt, m, &mut tg)?;
            map_fields.push(quote!(#[doc = #doc] pub #f: #ty));
            map_inits.push(quote!(#f: {
                let lm = #rt::skel::__take_map(&mut loaded, #idx, #name)?;
                #ctor.map_err(#rt::skel::__map_err)?
            }));
        }
    }

    // Programs.
    let mut open_prog_fields = Vec::new();
    let mut open_prog_inits = Vec::new();
    let mut open_prog_applies = Vec::new();
    let mut prog_fields = Vec::new();
    let mut prog_inits = Vec::new();
    let mut link_fields = Vec::new();
    let mut prog_links = Vec::new();
    let mut attach_calls = Vec::new();
    let mut prog_names = Fields::new();
    for (i, p) in obj.programs.iter().enumerate() {
        if p.subprog {
            continue;
        }
        let f = prog_names.add(&p.name);
        let idx = lit_usize(i);
        let name = p.name.as_str();
        let section = p.section.as_str();
        let doc = doc!(" Program `{}` (`SEC(\"{}\")`).", p.name, p.section);
        open_prog_fields.push(quote!(#[doc = #doc] pub #f: #rt::skel::OpenProgram));
        open_prog_inits.push(quote!(#f: #rt::skel::OpenProgram::__new(&obj, #idx, #name)?));
        open_prog_applies.push(quote!(progs.#f.__apply(&mut obj);));
        prog_fields.push(quote!(#[doc = #doc] pub #f: #rt::skel::Program));
        prog_inits.push(quote!(#f: #rt::skel::Program::__new(&mut loaded, #idx, #name, #section)));
        link_fields.push(quote!(#[doc = #doc] pub #f: ::core::option::Option<#rt::attach::Link>));
        prog_links.push(f.clone());
        // Sections with nothing to attach get no call; the others call their
        // kind's function, so the binary links only the kinds it uses.
        let Some((call, ctx_arg)) = auto_attach_call(&rt, section) else {
            continue;
        };
        attach_calls.push(quote! {
            if let ::core::result::Result::Ok(fd) = self.progs.#f.fd() {
                if self.links.#f.is_none() {
                    self.links.#f = #call(fd, #name, #section #ctx_arg)?;
                }
            }
        });
    }

    // struct_ops maps: typed data before load, registered by attach().
    let st_ops = struct_ops::generate(&rt, obj, &mut tg, &base)?;
    map_fields.extend(st_ops.map_fields);
    map_inits.extend(st_ops.map_inits);
    link_fields.extend(st_ops.link_fields);
    attach_calls.extend(st_ops.attach_calls);

    // USDT programs read their argument specs from the maps usdt.bpf.h
    // declares; attach() hands them to the runtime.
    let usdt_map = |c_name: &str| {
        obj.maps
            .iter()
            .any(|m| m.name == c_name && matches!(m.kind, MapKind::Btf { .. }))
            .then(|| ident(&sanitize(c_name)))
    };
    let usdt_specs = match usdt_map("__bpf_usdt_specs") {
        Some(f) => quote!(::core::option::Option::Some(self.maps.#f.map_fd())),
        None => quote!(::core::option::Option::None),
    };
    let usdt_ip = match usdt_map("__bpf_usdt_ip_to_spec_id") {
        Some(f) => quote!(::core::option::Option::Some(self.maps.#f.map_fd())),
        None => quote!(::core::option::Option::None),
    };

    // The loader parts this object needs, so that the binary links no
    // other (see LoaderParts).
    let loader_parts = loader_parts(&rt, obj);

    // Global data: images before load, views after.
    let mut open_data_fields = Vec::new();
    let mut open_data_inits = Vec::new();
    let mut open_data_stores = Vec::new();
    let mut open_data_methods = Vec::new();
    let mut data_fields = Vec::new();
    let mut data_inits = Vec::new();
    let mut data_methods = Vec::new();
    let mut data_items = Vec::new();
    for d in &datasecs {
        let acc = format_ident!("{}", d.accessor);
        let acc_mut = format_ident!("{}_mut", d.accessor);
        let ty = &d.ty;
        let idx = lit_usize(d.map_index);
        let map_name = obj.maps[d.map_index].name.as_str();
        let user_writable = !matches!(d.kind, DataKind::Kconfig);
        open_data_fields.push(quote!(#acc: ::std::boxed::Box<#ty>));
        open_data_inits.push(quote!(let #acc = #rt::skel::__image::<#ty>(&obj, #idx, #map_name)?;));
        open_data_stores.push(quote!(#rt::skel::__store_image(&mut obj, #idx, &*#acc);));
        let doc = doc!(" The initial `{map_name}`, as the programs will see it.");
        open_data_methods.push(quote! {
            #[doc = #doc]
            pub fn #acc(&self) -> &#ty { &self.#acc }
        });
        if user_writable {
            let doc = doc!(" The initial `{map_name}`, writable until load.");
            open_data_methods.push(quote! {
                #[doc = #doc]
                pub fn #acc_mut(&mut self) -> &mut #ty { &mut self.#acc }
            });
        }
        let frozen = matches!(d.kind, DataKind::Rodata | DataKind::Kconfig);
        if frozen {
            data_fields.push(quote!(#acc: #rt::map::FrozenData<#ty>));
            data_inits.push(quote!(let #acc = {
                let lm = #rt::skel::__take_map(&mut loaded, #idx, #map_name)?;
                #rt::map::FrozenData::new(lm.fd, #map_name).map_err(#rt::skel::__map_err)?
            };));
            let doc = doc!(
                " `{map_name}`: frozen at load, so a copy is the truth (no BPF program or process can change it)."
            );
            data_methods.push(quote! {
                #[doc = #doc]
                pub fn #acc(&self) -> #ty { self.#acc.get() }
            });
        } else {
            let view = format_ident!("{}{}", base, camel(&d.accessor));
            let view_mut = format_ident!("{}{}Mut", base, camel(&d.accessor));
            data_fields.push(quote!(#acc: #rt::map::DataMap<#ty>));
            data_inits.push(quote!(let #acc = {
                let lm = #rt::skel::__take_map(&mut loaded, #idx, #map_name)?;
                #rt::map::DataMap::with_mmap(lm.fd, #map_name, lm.mmap).map_err(#rt::skel::__map_err)?
            };));
            let doc =
                doc!(" `{map_name}`: volatile reads of memory BPF programs write concurrently.");
            let doc_mut = doc!(" `{map_name}`: volatile reads and writes.");
            data_methods.push(quote! {
                #[doc = #doc]
                pub fn #acc(&self) -> #view<'_> { #view { map: &self.#acc } }
                #[doc = #doc_mut]
                pub fn #acc_mut(&mut self) -> #view_mut<'_> { #view_mut { map: &mut self.#acc } }
            });
            let mut getters = Vec::new();
            let mut setters = Vec::new();
            for f in &d.fields {
                let fname = sanitize(&f.var_name);
                let get = ident(&fname);
                let set = format_ident!("set_{}", fname.trim_start_matches("r#"));
                let fty = &f.ty;
                let off = lit_usize(f.offset as usize);
                let gdoc = doc!(" `{}` (offset {}, {} bytes).", f.var_name, f.offset, f.size);
                getters.push(quote! {
                    #[doc = #gdoc]
                    pub fn #get(&self) -> ::core::result::Result<#fty, #rt::map::MapError> {
                        self.map.read_at::<#fty>(#off)
                    }
                });
                setters.push(quote! {
                    #[doc = #gdoc]
                    pub fn #set(&mut self, value: &#fty) -> ::core::result::Result<(), #rt::map::MapError> {
                        self.map.write_at::<#fty>(#off, value)
                    }
                });
            }
            let vdoc = doc!(" Field-level, volatile access to `{map_name}`.");
            data_items.push(quote! {
                #[doc = #vdoc]
                pub struct #view<'a> { map: &'a #rt::map::DataMap<#ty> }
                // Accessors keep the C variable names.
                #[allow(non_snake_case)]
                impl #view<'_> {
                    /// A volatile copy of the whole section.
                    pub fn read(&self) -> ::core::result::Result<#ty, #rt::map::MapError> { self.map.read() }
                    #(#getters)*
                }
                #[doc = #vdoc]
                pub struct #view_mut<'a> { map: &'a mut #rt::map::DataMap<#ty> }
                #[allow(non_snake_case)]
                impl #view_mut<'_> {
                    /// A volatile copy of the whole section.
                    pub fn read(&self) -> ::core::result::Result<#ty, #rt::map::MapError> { self.map.read() }
                    /// Writes the whole section.
                    pub fn write(&mut self, value: &#ty) -> ::core::result::Result<(), #rt::map::MapError> { self.map.write(value) }
                    #(#getters)*
                    #(#setters)*
                }
            });
        }
    }
    let open_data_names: Vec<Ident> = datasecs
        .iter()
        .map(|d| format_ident!("{}", d.accessor))
        .collect();
    let loaded_data_names: Vec<Ident> = datasecs
        .iter()
        .map(|d| format_ident!("{}", d.accessor))
        .collect();
    open_data_fields.extend(st_ops.open_field);
    open_data_inits.extend(st_ops.open_init);
    open_data_stores.extend(st_ops.open_stores);
    data_items.extend(st_ops.items);
    let open_data_names: Vec<Ident> = open_data_names
        .into_iter()
        .chain(st_ops.open_name)
        .collect();

    warnings.extend(tg.warnings().iter().cloned());
    let (inner, units) = tg.finish_units().map_err(|e| Error::Generate {
        reason: e.to_string(),
    })?;

    let object_name = obj.name.as_str();
    let len = lit_usize(embedded.len());
    let bytes = match &opts.embed_path {
        Some(path) => {
            let p = path.to_string_lossy().into_owned();
            quote!(*::core::include_bytes!(#p))
        }
        None => {
            let lit = Literal::byte_string(embedded);
            quote!(*#lit)
        }
    };
    let track = opts.track_path.as_ref().map(|path| {
        let p = path.to_string_lossy().into_owned();
        quote! {
            // Makes rustc rebuild when the object changes; never used.
            const _: &[u8] = ::core::include_bytes!(#p);
        }
    });
    let skel_doc = doc!(
        " The loaded `{object_name}` BPF object: typed maps, programs, links and global data."
    );
    let open_doc = doc!(" The `{object_name}` BPF object, opened and not yet loaded.");
    let _ = Span::call_site();

    let rest = quote! {
        static OBJECT: #rt::skel::Aligned<[u8; #len]> = #rt::skel::Aligned(#bytes);
        #track

        /// Maps of the open object.
        #[allow(non_snake_case)]
        pub struct #open_maps_ty { #(#open_map_fields,)* }
        /// Programs of the open object.
        #[allow(non_snake_case)]
        pub struct #open_progs_ty { #(#open_prog_fields,)* }

        #[doc = #open_doc]
        pub struct #open {
            obj: #rt::skel::OpenObject,
            /// Map settings, applied at load.
            pub maps: #open_maps_ty,
            /// Program settings, applied at load.
            pub progs: #open_progs_ty,
            #(#open_data_fields,)*
        }

        /// Maps of the loaded object (global data is reached through accessors).
        #[allow(non_snake_case)]
        pub struct #maps_ty { #(#map_fields,)* }
        /// Programs of the loaded object.
        #[allow(non_snake_case)]
        pub struct #progs_ty { #(#prog_fields,)* }
        /// Links made by `attach()`: dropping one detaches its program.
        #[allow(non_snake_case)]
        #[derive(Default)]
        pub struct #links_ty { #(#link_fields,)* }

        impl ::core::ops::Drop for #links_ty {
            /// Program links are released together: the kernel's waits when
            /// many tracepoint links close overlap (see
            /// `skelgen_runtime::attach::release_all`).
            fn drop(&mut self) {
                #rt::attach::release_all(
                    [#(self.#prog_links.take(),)*].into_iter().flatten(),
                );
            }
        }

        #[doc = #skel_doc]
        pub struct #skel {
            /// Links, dropped (detached) first.
            pub links: #links_ty,
            /// Programs.
            pub progs: #progs_ty,
            /// Maps.
            pub maps: #maps_ty,
            #(#data_fields,)*
            _obj: #rt::skel::LoadedObject,
        }

        // Handles are used through the skeleton, never moved out of it:
        // a type with Drop cannot be destructured or partially moved.
        impl ::core::ops::Drop for #skel {
            fn drop(&mut self) {}
        }

        #(#data_items)*

        #[allow(non_snake_case)]
        impl #skel {
            /// Parses the embedded object.
            pub fn open() -> ::core::result::Result<#open, #rt::skel::LoadError> {
                Self::open_with(#rt::skel::OpenOptions::default())
            }

            /// Parses the embedded object with options.
            pub fn open_with(opts: #rt::skel::OpenOptions) -> ::core::result::Result<#open, #rt::skel::LoadError> {
                let obj = #rt::skel::OpenObject::open_parts(&OBJECT.0, #object_name, opts, #loader_parts)?;
                #(#open_data_inits)*
                ::core::result::Result::Ok(#open {
                    maps: #open_maps_ty { #(#open_map_inits,)* },
                    progs: #open_progs_ty { #(#open_prog_inits,)* },
                    #(#open_data_names,)*
                    obj,
                })
            }

            /// Attaches every program whose section names its target
            /// (tracepoints, raw tracepoints, BTF-typed tracing, ...).
            pub fn attach(&mut self) -> ::core::result::Result<(), #rt::attach::AttachError> {
                let ctx = #rt::attach::AttachContext {
                    usdt_specs: #usdt_specs,
                    usdt_ip_to_id: #usdt_ip,
                };
                #(#attach_calls)*
                let _ = &ctx;
                ::core::result::Result::Ok(())
            }

            #(#data_methods)*
        }

        #[allow(non_snake_case)]
        impl #open {
            /// Creates the maps, loads the programs, fills global data.
            pub fn load(self) -> ::core::result::Result<#skel, #rt::skel::LoadError> {
                let #open { mut obj, maps, progs, #(#open_data_names,)* } = self;
                #(#open_map_applies)*
                #(#open_prog_applies)*
                #(#open_data_stores)*
                let mut loaded = obj.load()?;
                #(#data_inits)*
                ::core::result::Result::Ok(#skel {
                    links: ::core::default::Default::default(),
                    progs: #progs_ty { #(#prog_inits,)* },
                    maps: #maps_ty { #(#map_inits,)* },
                    #(#loaded_data_names,)*
                    _obj: loaded,
                })
            }

            /// The parsed object.
            pub fn object(&self) -> &#rt::obj::Object {
                self.obj.object()
            }

            #(#open_data_methods)*
        }
    };
    Ok(Skeleton { inner, units, rest })
}

/// A skeleton's tokens in parts: `mod types` (its inner attributes and its
/// units, one per type) apart from the rest, so that the module's units can
/// be formatted apart (see `render`).
pub(crate) struct Skeleton {
    /// The inner attributes of `mod types`.
    pub(crate) inner: TokenStream,
    /// The items of `mod types`, one stream per type.
    pub(crate) units: Vec<TokenStream>,
    /// Everything after `mod types`.
    pub(crate) rest: TokenStream,
}

impl Skeleton {
    /// `mod types` with its attributes, holding `units`.
    pub(crate) fn types_module(inner: &TokenStream, units: &[TokenStream]) -> TokenStream {
        quote! {
            /// Rust types for the object's BTF types and global-data sections.
            #[allow(non_camel_case_types, non_snake_case, non_upper_case_globals, dead_code, clippy::all)]
            pub mod types {
                #inner
                #(#units)*
            }
        }
    }

    /// The whole skeleton as one stream.
    pub(crate) fn into_tokens(self) -> TokenStream {
        let mut tokens = Self::types_module(&self.inner, &self.units);
        tokens.extend(self.rest);
        tokens
    }
}

/// The text of a `#[doc = ...]` attribute, escaped by [`doc_text`] so
/// that it prints as a `///` comment that still lexes and compiles: docs
/// quote names from the object, and the generate fuzz target found a
/// section name holding a CR, which prettyplease printed into a comment
/// that no longer parsed ("bare CR not allowed in doc-comment"). Built by
/// the `doc!` macro; escaping where the text is made spares a pass over
/// the whole token tree.
pub(crate) struct Doc(String);

impl Doc {
    /// `text`, escaped.
    pub(crate) fn new(text: &str) -> Self {
        Self(doc_text(text))
    }
}

impl ToTokens for Doc {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        self.0.to_tokens(tokens);
    }
}

/// Control characters (which end or break a `///` line) and the
/// bidirectional-text controls (rejected in comments by rustc's
/// `text_direction_codepoint_in_comment` lint) written as escapes.
fn doc_text(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            c if c.is_control() => c.escape_default().to_string(),
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => c.escape_unicode().to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// A valid empty BTF blob (header only, one NUL string), for objects
/// without BTF.
fn empty_btf() -> Vec<u8> {
    let mut v = Vec::new();
    v.extend(0xeb9fu16.to_le_bytes());
    v.push(1); // version
    v.push(0); // flags
    for w in [24u32, 0, 0, 0, 1] {
        v.extend(w.to_le_bytes());
    }
    v.push(0);
    v
}

/// The runtime function a skeleton's `attach()` calls for a program of
/// `section`, and the arguments after `(fd, name, section)`; `None` when the
/// section names nothing to attach (the link stays `None`, as
/// `auto_attach_with` would leave it). Sections the runtime would refuse
/// (unknown, bad target, tracing multi links) go through `auto_attach_with`
/// so that `attach()` reports them as before.
fn auto_attach_call(rt: &TokenStream, section: &str) -> Option<(TokenStream, TokenStream)> {
    use skelgen_runtime::section::{lookup, parse_target, AttachTarget as T};
    let generic = || Some((quote!(#rt::attach::auto_attach_with), quote!(, &ctx)));
    let Some(m) = lookup(section) else {
        return generic();
    };
    let Ok(target) = parse_target(&m) else {
        return generic();
    };
    let f = match target {
        T::Manual => return None,
        T::Tracepoint { .. } => "tracepoint_section",
        T::RawTracepoint { .. } => "raw_tracepoint_section",
        T::Btf { .. } => "btf_section",
        T::Kprobe { .. } => "kprobe_section",
        T::Ksyscall { .. } => "ksyscall_section",
        T::Uprobe { .. } => "uprobe_section",
        T::Usdt { .. } => {
            return Some((quote!(#rt::attach::auto::usdt_section), quote!(, &ctx)));
        }
        T::KprobeMulti { .. } => "kprobe_multi_section",
        T::UprobeMulti { .. } => "uprobe_multi_section",
        T::TracingMulti { .. } => return generic(),
    };
    let f = format_ident!("{}", f);
    Some((quote!(#rt::attach::auto::#f), TokenStream::new()))
}

/// The `LoaderParts` expression for `obj`: the parts its
/// [`loader_needs`](Object::loader_needs) name, and no other.
fn loader_parts(rt: &TokenStream, obj: &Object) -> TokenStream {
    let needs = obj.loader_needs();
    let mut parts = quote!(#rt::skel::LoaderParts::NONE);
    for (needed, with) in [
        (needs.struct_ops, "with_struct_ops"),
        (needs.kconfig, "with_kconfig"),
        (needs.ksyms, "with_ksyms"),
        (needs.user_core, "with_user_core"),
    ] {
        if needed {
            let with = format_ident!("{}", with);
            parts = quote!(#parts.#with());
        }
    }
    parts
}
