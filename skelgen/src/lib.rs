//! skelgen: typed Rust skeletons for BPF objects.
//!
//! One generator, [`generate`], serves three front ends: the `skelgen` CLI,
//! the build-script [`Builder`], and the `include_bpf!` proc-macro.
#![warn(missing_docs)]

pub mod builder;
pub mod inspect;
pub mod strip;
pub mod types;

pub use builder::{build, BuildError, Builder};

use std::path::{Path, PathBuf};

/// Options of [`generate`].
#[derive(Debug, Clone, Default)]
pub struct Options {
    name: Option<String>,
    embed_path: Option<PathBuf>,
}

impl Options {
    /// Default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// The object name (`vfsstat_bpf`), from which the Rust names derive.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Embed the object with `include_bytes!("<path>")` instead of inlining
    /// its bytes, so rustc rebuilds when the file changes. `path` should be
    /// absolute (the macro and the Builder pass absolute paths) and hold the
    /// object the skeleton is generated from; the generator does not read it.
    pub fn embed_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.embed_path = Some(path.into());
        self
    }

    /// The path set by [`Options::embed_path`], if any.
    pub fn embedded_path(&self) -> Option<&Path> {
        self.embed_path.as_deref()
    }
}

/// An error generating a skeleton.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object could not be understood.
    #[error("invalid BPF object")]
    Object(#[from] skelgen_runtime::obj::ObjError),
    /// The generated source is not valid Rust (a generator bug).
    #[error("generated code does not parse as Rust: {reason}")]
    Syntax {
        /// syn's message.
        reason: String,
    },
}

/// bpftool's object name for a path: the file name without `.o`, with
/// every character that is not alphanumeric replaced by `_`
/// (`vfsstat.bpf.o` -> `vfsstat_bpf`).
pub fn default_name(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let stem = base.strip_suffix(".o").unwrap_or(base);
    stem.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Generates the skeleton source for a BPF object.
pub fn generate(bytes: &[u8], options: &Options) -> Result<String, Error> {
    let name = options.name.clone().unwrap_or_else(|| "obj".into());
    let obj = skelgen_runtime::obj::Object::parse(bytes, &name)?;
    Ok(format!("// {} programs\n", obj.programs.len()))
}

/// Writes `contents` to `path` unless the file already holds exactly that,
/// so that cargo and editors do not see a change where there is none.
pub fn write_if_changed(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    if std::fs::read(path).is_ok_and(|old| old == contents) {
        return Ok(());
    }
    std::fs::write(path, contents)
}

/// [`generate`], as tokens (for the `include_bpf!` macro).
pub fn generate_tokens(bytes: &[u8], options: &Options) -> Result<proc_macro2::TokenStream, Error> {
    let source = generate(bytes, options)?;
    let file = syn::parse_file(&source).map_err(|e| Error::Syntax {
        reason: e.to_string(),
    })?;
    Ok(quote::quote!(#file))
}
