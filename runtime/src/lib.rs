//! skelgen-runtime: a pure-Rust BPF object model and loader.
//!
//! - [`obj`]: the object model (ELF, programs, maps, global data, externs,
//!   relocations), making no syscalls; shared by the skelgen generator at
//!   build time and the loader at run time.
//! - [`btf`]: BTF and BTF.ext reader, fixups.
//! - [`section`]: libbpf's table of `SEC()` names.
//! - [`insn`]: BPF instructions and their disassembly in the verifier's syntax.
//! - `sys`: the only module with `unsafe`: bpf(), mmap, perf_event_open.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod attach;
pub mod btf;
pub mod co_re;
pub mod image;
pub mod insn;
pub mod kernel;
pub mod loader;
pub mod map;
pub mod obj;
pub mod perfbuf;
#[allow(unsafe_code)]
pub mod plain;
pub mod ringbuf;
pub mod section;
pub mod skel;
pub mod subskel;
#[allow(unsafe_code)]
pub mod sys;

pub use plain::Plain;
