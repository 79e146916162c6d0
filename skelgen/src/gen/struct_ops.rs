//! The skeleton's struct_ops parts, as libbpf's skeleton has them: each
//! struct_ops map's data is a typed field of the open skeleton
//! (`open.struct_ops.<map>`, the object's C struct, whose data members such
//! as `name` and `flags` users may change before load), the loaded map is
//! `skel.maps.<map>` (`None` if not created), and `attach()` registers it,
//! keeping the registration in `skel.links.<map>`.

use proc_macro2::{Ident, Literal, TokenStream};
use quote::{format_ident, quote};
use skelgen_runtime::obj::Object;

use super::Fields;
use crate::types::TypeGen;
use crate::Error;

/// Token pieces the skeleton template splices in.
#[derive(Default)]
pub(super) struct StructOpsParts {
    /// Items at the skeleton's top level (the open struct_ops struct).
    pub items: Vec<TokenStream>,
    /// The open skeleton's field (`pub struct_ops: OpenXxxStructOps`).
    pub open_field: Option<TokenStream>,
    /// Its name, for the template's field shorthand and destructuring.
    pub open_name: Option<Ident>,
    /// Statement in `open_with` building it.
    pub open_init: Option<TokenStream>,
    /// Statements in `load` writing it back as the maps' initial values.
    pub open_stores: Vec<TokenStream>,
    /// Fields of the loaded maps struct, and their initialisers.
    pub map_fields: Vec<TokenStream>,
    /// Initialisers of `map_fields`.
    pub map_inits: Vec<TokenStream>,
    /// Fields of the links struct.
    pub link_fields: Vec<TokenStream>,
    /// Statements of `attach()`.
    pub attach_calls: Vec<TokenStream>,
}

/// The struct_ops parts of the skeleton named `base` (`StructOps` in
/// `OpenStructOpsBpf`).
pub(super) fn generate(
    rt: &TokenStream,
    obj: &Object,
    tg: &mut TypeGen<'_>,
    base: &str,
) -> Result<StructOpsParts, Error> {
    let mut parts = StructOpsParts::default();
    let mut fields = Fields::new();
    let mut open_fields = Vec::new();
    let mut open_inits = Vec::new();
    for (i, m) in obj.maps.iter().enumerate() {
        let Some(st) = m.struct_ops() else { continue };
        let f = fields.add(&m.name);
        let idx = Literal::usize_unsuffixed(i);
        let name = m.name.as_str();
        let ty = tg.type_ref(st.type_id).map_err(|e| Error::Generate {
            reason: format!("struct_ops map '{name}': type id {}: {e}", st.type_id),
        })?;
        let how = if st.link {
            "`.struct_ops.link`: registered through a BPF link"
        } else {
            "`.struct_ops`: registered by a map update"
        };
        let doc = doc!(
            " struct_ops map `{name}` (struct {}; {how}). Its data members are copied by name \
             into the kernel's struct at load; function pointers are set to the object's programs \
             (their fields here must stay 0).",
            st.type_name
        );
        open_fields.push(quote!(#[doc = #doc] pub #f: #ty));
        open_inits.push(quote!(#f: *#rt::skel::__image::<#ty>(&obj, #idx, #name)?));
        parts
            .open_stores
            .push(quote!(#rt::skel::__store_image(&mut obj, #idx, &struct_ops.#f);));
        let doc = doc!(
            " struct_ops map `{name}` (struct {}), registered by `attach()`; `None` if it was not created (autocreate off).",
            st.type_name
        );
        parts.map_fields.push(quote!(
            #[doc = #doc]
            pub #f: ::core::option::Option<#rt::map::StructOpsMap>
        ));
        parts
            .map_inits
            .push(quote!(#f: match loaded.take_map(#idx) {
                ::core::option::Option::Some(lm) => ::core::option::Option::Some(
                    #rt::map::StructOpsMap::new(lm.fd, #name, loaded.struct_ops_value(#idx))
                        .map_err(#rt::skel::__map_err)?,
                ),
                ::core::option::Option::None => ::core::option::Option::None,
            }));
        let doc = doc!(" The registration of struct_ops map `{name}`: dropping it unregisters.");
        parts
            .link_fields
            .push(quote!(#[doc = #doc] pub #f: ::core::option::Option<#rt::attach::Link>));
        parts.attach_calls.push(quote! {
            if let ::core::option::Option::Some(m) = &self.maps.#f {
                if self.links.#f.is_none() {
                    self.links.#f = ::core::option::Option::Some(m.register()?);
                }
            }
        });
    }
    if open_fields.is_empty() {
        return Ok(parts);
    }
    let ty = format_ident!("Open{}StructOps", base);
    let field = format_ident!("struct_ops");
    parts.items.push(quote! {
        /// The open object's struct_ops maps: each one's C struct, writable until load.
        #[allow(non_snake_case)]
        pub struct #ty { #(#open_fields,)* }
    });
    parts.open_field = Some(quote!(
        /// struct_ops maps' data (`name`, `flags`, ...), applied at load.
        pub #field: #ty
    ));
    parts.open_init = Some(quote!(let #field = #ty { #(#open_inits,)* };));
    parts.open_name = Some(field);
    Ok(parts)
}
