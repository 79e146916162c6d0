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

// API outline (filled in by the BTF implementation):
//
// pub struct Btf { data: Vec<u8> (or Arc<[u8]>), offsets: Vec<u32>, names: OnceLock<...> }
// impl Btf {
//     pub fn parse(bytes: &[u8]) -> Result<Btf, BtfError>;          // copies
//     pub fn from_vec(bytes: Vec<u8>) -> Result<Btf, BtfError>;     // no copy
//     pub fn parse_split(bytes, base: Arc<Btf>) -> Result<Btf, BtfError>; // module BTF
//     pub fn len(&self) -> u32;                    // number of type ids incl. void (id 0)
//     pub fn type_by_id(&self, id: u32) -> Result<Type<'_>, BtfError>;
//     pub fn name(&self, name_off: u32) -> Result<&str, BtfError>;
//     pub fn type_name(&self, id: u32) -> Result<&str, BtfError>;
//     pub fn find_by_name(&self, name: &str) -> &[u32];          // all ids with that name (lazy index)
//     pub fn find_by_name_kind(&self, name: &str, kind: Kind) -> Option<u32>;
//     pub fn skip_mods(&self, id: u32) -> Result<u32, BtfError>;          // const/volatile/restrict/type_tag
//     pub fn skip_mods_and_typedefs(&self, id: u32) -> Result<u32, BtfError>;
//     pub fn size_of(&self, id: u32) -> Result<u32, BtfError>;   // resolves arrays, typedefs; cycle-safe
//     pub fn align_of(&self, id: u32) -> Result<u32, BtfError>;
//     pub fn raw(&self) -> &[u8];
//     pub fn set_datasec_size(&mut self, id: u32, size: u32) -> Result<(), BtfError>;
//     pub fn set_datasec_var_offset(&mut self, id: u32, index: usize, offset: u32) -> Result<(), BtfError>;
//     pub fn set_var_linkage(&mut self, id: u32, linkage: VarLinkage) -> Result<(), BtfError>;
// }

mod error;
pub mod ext;
mod reader;
mod types;

pub use error::BtfError;
pub use reader::Btf;
pub use types::*;
