//! BTF errors.

/// An error reading BTF: says where (byte offset, type id) and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    /// Placeholder until the reader lands.
    #[error("invalid BTF: {0}")]
    Invalid(String),
}
