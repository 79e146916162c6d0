//! skelgen: typed Rust skeletons for BPF objects, the Rust counterpart of
//! `bpftool gen skeleton`.
//!
//! One generator, [`generate`], serves three front ends: the `skelgen` CLI
//! (package `skelgen-cli`), the build-script [`Builder`], and the
//! `include_bpf!` proc-macro (package `skelgen-macro`). The skeleton it
//! writes runs on `skelgen-runtime` alone.
//!
//! # A tool in two files
//!
//! `build.rs` compiles the C with clang and writes the skeleton into
//! `OUT_DIR` (`skelgen` is a build-dependency, `skelgen-runtime` a
//! dependency; `skelgen new NAME` writes such a crate):
//!
//! ```no_run
//! // build.rs
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     skelgen::Builder::new()
//!         .source("src/bpf/tp_ringbuf.bpf.c")
//!         .build()?;
//!     Ok(())
//! }
//! ```
//!
//! `src/main.rs` includes it and walks open -> load -> attach -> maps ->
//! events:
//!
//! ```no_run
//! mod skel {
//! #   skelgen_macro::include_bpf!("../tests/fixtures/tp_ringbuf.bpf.o");
//! #   /*
//!     include!(concat!(env!("OUT_DIR"), "/tp_ringbuf.skel.rs"));
//! #   */
//! }
//! use std::time::Duration;
//!
//! use skelgen_runtime::ringbuf::RingBuffer;
//! use skelgen_runtime::Plain;
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // Open: the embedded object, parsed; settings before load.
//!     let mut open = skel::TpRingbufBpf::open()?;
//!     open.rodata_mut().targ_tgid = std::process::id() as i32; // const volatile
//!     open.rodata_mut().use_ringbuf = true.into(); // a C bool: CBool
//!     open.maps.counts.set_max_entries(4096)?;
//!     // Load (maps, relocations, CO-RE, the verifier), then attach.
//!     let mut skel = open.load()?;
//!     skel.attach()?;
//!     // Maps and global data, with the types from the object's BTF.
//!     let hits: u64 = skel.bss().tp_hits()?;
//!     let mine: Option<u64> = skel.maps.counts.lookup(&std::process::id())?;
//!     println!("{hits} hits, {mine:?} from this process");
//!     // Events: `struct event` as the C program sent it.
//!     let mut events = RingBuffer::builder()
//!         .add(&skel.maps.events, |sample| {
//!             if let Some(e) = skel::types::event::read_from_prefix(sample) {
//!                 println!("pid {}", e.pid);
//!             }
//!             0
//!         })
//!         .build()?;
//!     events.poll(Duration::from_millis(100))?;
//!     Ok(())
//! }
//! ```
//!
//! # Generating directly
//!
//! [`generate`] is pure (bytes in, source out), for tools of your own:
//!
//! ```
//! let object = std::fs::read("../tests/fixtures/tp_ringbuf.bpf.o")?;
//! let code = skelgen::generate(&object, &skelgen::Options::new().name("tp_ringbuf_bpf"))?;
//! assert!(code.contains("pub struct TpRingbufBpf"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! What each C type becomes is in [`types`]; the skeleton's shape (fields,
//! handles, what `attach()` does) in the README of the repository.
#![warn(missing_docs)]

/// A doc attribute's text, built as `format!` builds a string and escaped
/// so that it prints as a `///` comment that still lexes
/// ([`gen::Doc`]): docs quote names from the object.
macro_rules! doc {
    ($($arg:tt)*) => {
        $crate::gen::Doc::new(&format!($($arg)*))
    };
}

pub mod btf_c;
pub mod btf_file;
pub mod builder;
mod gen;
pub mod kernel_types;
pub mod link;
pub mod min_core;
#[cfg(feature = "format")]
mod render;
pub mod strip;
mod subskel;
pub mod types;

pub use builder::{build, BuildError, Builder};
pub use subskel::{generate_subskeleton, generate_subskeleton_tokens};

use std::path::{Path, PathBuf};

/// Options of [`generate`].
#[derive(Debug, Clone, Default)]
pub struct Options {
    name: Option<String>,
    embed_path: Option<PathBuf>,
    track_path: Option<PathBuf>,
    reachable_types_only: bool,
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

    /// Inline the object (stripped of DWARF) and also name `path` in an
    /// unused `include_bytes!`, so rustc rebuilds when the file changes
    /// while the binary carries only the stripped copy. What `include_bpf!`
    /// uses. `path` should be absolute.
    pub fn track_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.track_path = Some(path.into());
        self
    }

    /// Generate only the types reachable from the maps' keys and values and
    /// the global-data sections (what the skeleton's own API names), rather
    /// than every named type of the object's BTF. An object built against a
    /// full vmlinux.h carries the kernel types its CO-RE accesses touch
    /// (`task_struct` and all it contains): libbpf-tools' opensnoop goes
    /// from 8,800 generated lines to 510, and its crate recompiles about 3x
    /// faster. A type only the C code uses (a `struct event` sent through a
    /// perf buffer without a `__type` or a global variable naming it) is
    /// then left out; keep it reachable with a global such as
    /// `struct event *unused_event __attribute__((unused));`.
    pub fn reachable_types_only(mut self, on: bool) -> Self {
        self.reachable_types_only = on;
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
    /// The object holds something the generator cannot express.
    #[error("{reason}")]
    Generate {
        /// What went wrong.
        reason: String,
    },
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

/// Generates the skeleton source for a BPF object: pure (no I/O, no
/// environment), deterministic, formatted with prettyplease.
pub fn generate(bytes: &[u8], options: &Options) -> Result<String, Error> {
    generate_with_warnings(bytes, options).map(|g| g.code)
}

/// A generated skeleton and what the user should know about it.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The skeleton's source.
    pub code: String,
    /// Warnings: e.g. the BTF comes from a clang too old to record enum
    /// signedness or 64-bit enumerators, so some constants are guesses.
    pub warnings: Vec<String>,
}

/// The first lines of a generated skeleton.
const HEADER: &str = "// Generated by skelgen. Do not edit.\n\n";

/// [`generate`], also returning the warnings for the front end to show.
pub fn generate_with_warnings(bytes: &[u8], options: &Options) -> Result<Generated, Error> {
    let mut warnings = Vec::new();
    let prepared = Prepared::new(bytes, options)?;
    #[cfg(feature = "format")]
    let code = render::skeleton_text(HEADER, &prepared, options, &mut warnings)?;
    #[cfg(not(feature = "format"))]
    let code = render(
        HEADER,
        prepared.skeleton(options, &mut warnings)?.into_tokens(),
    )
    .map_err(|reason| Error::Syntax { reason })?;
    Ok(Generated { code, warnings })
}

/// `header` and the source of `tokens`: formatted by prettyplease with the
/// `format` feature (the default), else as the token stream prints (one
/// line: valid Rust, for the compiler rather than a reader), so that
/// `include_bpf!` users, who never see the text, do not build prettyplease
/// and syn's full parser.
pub(crate) fn render(header: &str, tokens: proc_macro2::TokenStream) -> Result<String, String> {
    let mut code = String::from(header);
    #[cfg(feature = "format")]
    {
        let file = syn::parse2::<syn::File>(tokens).map_err(|e| e.to_string())?;
        code.push_str(&prettyplease::unparse(&file));
    }
    #[cfg(not(feature = "format"))]
    {
        code.push_str(&tokens.to_string());
        code.push('\n');
    }
    Ok(code)
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
    tokens_and_warnings(bytes, options, &mut Vec::new())
}

fn tokens_and_warnings(
    bytes: &[u8],
    options: &Options,
    warnings: &mut Vec<String>,
) -> Result<proc_macro2::TokenStream, Error> {
    Ok(Prepared::new(bytes, options)?
        .skeleton(options, warnings)?
        .into_tokens())
}

/// A checked object and the bytes its skeleton embeds: what generating
/// needs, shared by the threads that format it (see `render`).
pub(crate) struct Prepared {
    /// The object the skeleton's indices come from.
    pub(crate) obj: skelgen_runtime::obj::Object,
    /// The bytes embedded: stripped of DWARF when inlined, the file itself
    /// when included by path.
    pub(crate) embedded: Vec<u8>,
}

impl Prepared {
    fn new(bytes: &[u8], options: &Options) -> Result<Self, Error> {
        let name = skelgen_runtime::obj::object_name_from_path(
            &options.name.clone().unwrap_or_else(|| "obj".into()),
        );
        let obj_name = options
            .name
            .as_deref()
            .and_then(|n| n.strip_suffix("_bpf"))
            .map_or(name, str::to_string);
        // The object as given is checked first, so errors speak of it rather
        // than of the stripped copy.
        let obj = skelgen_runtime::obj::Object::parse(bytes, &obj_name)?;
        let (obj, embedded) = match options.embed_path {
            Some(_) => (obj, bytes.to_vec()),
            None => {
                let stripped = strip::strip_debug(bytes).map_err(|e| Error::Generate {
                    reason: format!("cannot strip debug sections: {e}"),
                })?;
                (
                    skelgen_runtime::obj::Object::parse(&stripped, &obj_name)?,
                    stripped,
                )
            }
        };
        Ok(Prepared { obj, embedded })
    }

    /// The skeleton's tokens, in parts.
    pub(crate) fn skeleton(
        &self,
        options: &Options,
        warnings: &mut Vec<String>,
    ) -> Result<gen::Skeleton, Error> {
        gen::skeleton(&self.obj, &self.embedded, options, warnings)
    }
}
