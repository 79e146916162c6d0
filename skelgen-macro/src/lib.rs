//! `include_bpf!`: a typed skeleton from a BPF object at compile time.
//!
//! ```ignore
//! skelgen_macro::include_bpf!("src/bpf/vfsstat.bpf.o");
//! skelgen_macro::include_bpf!("src/bpf/vfsstat.bpf.o", name = "vfs_bpf");
//! // Several objects are statically linked first (as `bpftool gen object`);
//! // the skeleton is named after the first one.
//! skelgen_macro::include_bpf!("src/bpf/app.bpf.o", "src/bpf/lib.bpf.o");
//! // A library's subskeleton (`bpftool gen subskeleton`), used against the
//! // loaded final object: `LibBpfSubskel::new(&loaded)`.
//! skelgen_macro::include_bpf!("src/bpf/lib.bpf.o", subskeleton);
//!
//! let mut open = VfsstatBpf::open()?;
//! ```
//!
//! The path is relative to the calling crate's `CARGO_MANIFEST_DIR` (an
//! absolute path is used as is). The macro reads the object, runs the same
//! generator as the `skelgen` CLI and the build.rs `Builder`, and expands to
//! the skeleton's items. The object is embedded inline, stripped of DWARF
//! (as the `Builder` and the CLI embed it), and the file is also named in an
//! unused `include_bytes!("<absolute path>")`, so rustc rebuilds the crate
//! when the object changes.
//!
//! Every problem becomes a `compile_error!` pointing at the path literal:
//! an unreadable file (`cannot read <path>: <io error>`), an object the
//! generator rejects (`<path>: <error>: <cause>: ...`), or a malformed
//! argument list.
//!
//! # Dependencies
//!
//! The generated code names `::skelgen_runtime`, so a crate using the macro
//! depends on both:
//!
//! ```toml
//! [dependencies]
//! skelgen-runtime = "0.1"
//! skelgen-macro = "0.1"
//! ```
//!
//! The runtime cannot re-export this macro: `skelgen-macro` depends on
//! `skelgen` (the generator), which depends on `skelgen-runtime` (the
//! object model), so a runtime -> macro dependency would be a cycle, and a
//! proc-macro crate cannot re-export the runtime either. Two lines is the
//! honest cost of keeping one object parser for build time and run time.
#![warn(missing_docs)]

use std::path::{Path, PathBuf};

use proc_macro::TokenStream;
use quote::quote_spanned;
use syn::parse::{Parse, ParseStream};
use syn::{LitStr, Token};

/// Expands to the typed skeleton of a BPF object:
/// `include_bpf!("path/to/x.bpf.o")` or
/// `include_bpf!("path/to/x.bpf.o", name = "x_bpf")`.
///
/// See the [crate documentation](crate).
#[proc_macro]
pub fn include_bpf(input: TokenStream) -> TokenStream {
    let args = match syn::parse2::<Args>(input.into()) {
        Ok(args) => args,
        Err(e) => return e.to_compile_error().into(),
    };
    match expand(&args) {
        Ok(tokens) => tokens.into(),
        Err(message) => {
            let span = args.path.span();
            quote_spanned!(span=> ::core::compile_error!(#message);).into()
        }
    }
}

/// `"path" [, "path"]... [, name = "x"] [,]`
struct Args {
    path: LitStr,
    /// Further objects to link after `path`.
    more: Vec<LitStr>,
    name: Option<LitStr>,
    /// `subskeleton`: the library's subskeleton instead of a skeleton.
    subskeleton: bool,
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.is_empty() {
            return Err(
                input.error("expected the path of a BPF object: include_bpf!(\"path/to/x.bpf.o\")")
            );
        }
        let path: LitStr = input.parse().map_err(|e| {
            syn::Error::new(
                e.span(),
                "expected a string literal: include_bpf!(\"path/to/x.bpf.o\")",
            )
        })?;
        let mut name = None;
        let mut more = Vec::new();
        let mut subskeleton = false;
        while !input.is_empty() {
            input.parse::<Token![,]>()?;
            if input.is_empty() {
                break;
            }
            if input.peek(LitStr) {
                let next: LitStr = input.parse()?;
                if name.is_some() {
                    return Err(syn::Error::new(
                        next.span(),
                        "object paths come before `name = \"...\"`",
                    ));
                }
                more.push(next);
                continue;
            }
            let key: syn::Ident = input.parse().map_err(|e| {
                syn::Error::new(e.span(), "expected `name = \"...\"` after the path")
            })?;
            if key == "subskeleton" {
                subskeleton = true;
                continue;
            }
            if key != "name" {
                return Err(syn::Error::new(
                    key.span(),
                    format!(
                        "unknown argument `{key}`: the options are `name = \"...\"` and \
                         `subskeleton`"
                    ),
                ));
            }
            if name.is_some() {
                return Err(syn::Error::new(key.span(), "`name` given twice"));
            }
            input.parse::<Token![=]>()?;
            let value: LitStr = input.parse().map_err(|e| {
                syn::Error::new(e.span(), "expected a string literal: name = \"x_bpf\"")
            })?;
            name = Some(value);
        }
        Ok(Args {
            path,
            more,
            name,
            subskeleton,
        })
    }
}

fn expand(args: &Args) -> Result<proc_macro2::TokenStream, String> {
    let written = args.path.value();
    let path = resolve(Path::new(&written))?;
    let mut bytes = std::fs::read(&path).map_err(|e| format!("cannot read {written}: {e}"))?;
    // Further objects: read, linked after the first, and tracked so that
    // rustc rebuilds when any of them changes.
    let mut tracked = Vec::new();
    if !args.more.is_empty() {
        let mut inputs = vec![(written.clone(), std::mem::take(&mut bytes))];
        for lit in &args.more {
            let w = lit.value();
            let p = resolve(Path::new(&w))?;
            let b = std::fs::read(&p).map_err(|e| format!("cannot read {w}: {e}"))?;
            tracked.push(p.to_string_lossy().into_owned());
            inputs.push((w, b));
        }
        bytes = skelgen::link::link(&inputs).map_err(|e| format!("cannot link: {e}"))?;
    }

    let file_name = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = args
        .name
        .as_ref()
        .map_or_else(|| skelgen::default_name(&file_name), LitStr::value);
    let options = skelgen::Options::new().name(name).track_path(&path);
    let generated = if args.subskeleton {
        skelgen::generate_subskeleton_tokens(&bytes, &options)
    } else {
        skelgen::generate_tokens(&bytes, &options)
    };
    let tokens = generated.map_err(|e| {
        let mut message = format!("{written}: {e}");
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            message += &format!(": {cause}");
            source = cause.source();
        }
        message
    })?;
    Ok(quote::quote! {
        #tokens
        #(const _: &[u8] = ::core::include_bytes!(#tracked);)*
    })
}

/// The path relative to the calling crate's manifest directory.
fn resolve(written: &Path) -> Result<PathBuf, String> {
    if written.is_absolute() {
        return Ok(written.to_path_buf());
    }
    let dir = std::env::var_os("CARGO_MANIFEST_DIR").ok_or_else(|| {
        format!(
            "cannot resolve {}: CARGO_MANIFEST_DIR is not set (build with cargo or give an absolute path)",
            written.display()
        )
    })?;
    Ok(Path::new(&dir).join(written))
}
