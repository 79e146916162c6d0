//! BTF reader.
/// Parsed BTF (placeholder).
pub struct Btf;
