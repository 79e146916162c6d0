//! skelgen: typed Rust skeletons for BPF objects.
//!
//! One generator, [`generate`], serves three front ends: the `skelgen` CLI,
//! the build-script [`Builder`], and the `include_bpf!` proc-macro.
#![warn(missing_docs)]

pub mod inspect;
pub mod types;

use std::path::Path;

/// Options of [`generate`].
#[derive(Debug, Clone, Default)]
pub struct Options {
    name: Option<String>,
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
}

/// An error generating a skeleton.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object could not be understood.
    #[error("invalid BPF object")]
    Object(#[from] skelgen_runtime::obj::ObjError),
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
