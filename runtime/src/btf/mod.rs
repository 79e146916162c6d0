//! BTF: the BPF Type Format.
//!
//! [`Btf`] is a zero-copy reader over the raw bytes of a `.BTF` section or of
//! `/sys/kernel/btf/vmlinux`: parsing validates the header and builds one
//! offset per type (type id -> byte offset); every later access is bounds
//! checked and returns [`BtfError`] rather than panicking. Names are resolved
//! from the string table on demand and a name index is built lazily, on the
//! first lookup by name.
//!
//! [`ext`] reads `.BTF.ext` (func_info, line_info, core_relo), and
//! [`Btf`]'s in-place patchers do the fixups libbpf applies before
//! `BPF_BTF_LOAD` (DATASEC sizes and offsets, hidden globals made static).

mod bytes;
mod error;
pub mod ext;
mod names;
mod patch;
mod reader;
mod resolve;
mod types;

pub use error::BtfError;
pub use reader::{Btf, VMLINUX_BTF_PATH};
pub use resolve::MAX_RESOLVE_DEPTH;
pub use types::*;

/// The `.BTF` section of an ELF file (a BPF object, a vmlinux image, a
/// module), or why there is none: what a BTF file given by path holds when
/// it is not raw BTF.
pub fn elf_btf_section(elf: &[u8]) -> Result<&[u8], String> {
    use object::{Object as _, ObjectSection as _};
    let file = object::File::parse(elf).map_err(|e| format!("bad ELF: {e}"))?;
    let section = file
        .section_by_name(".BTF")
        .ok_or("ELF file has no .BTF section")?;
    section
        .data()
        .map_err(|e| format!("cannot read the .BTF section: {e}"))
}
