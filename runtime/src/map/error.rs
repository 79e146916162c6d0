//! [`MapError`]: what went wrong with which map.

use crate::sys::SysError;

/// An error from a map handle. Every variant names the map; syscall failures
/// keep the [`SysError`] (and through it the errno) as their `#[source]`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MapError {
    /// The kernel (or the syscall layer's argument checks) refused `op`.
    #[error("map `{map}`: {op} failed")]
    Sys {
        /// The map name.
        map: String,
        /// The handle operation, e.g. `"lookup"` or `"update_batch"`.
        op: &'static str,
        /// The syscall-layer error.
        #[source]
        source: SysError,
    },
    /// The Rust key or value type does not have the size the kernel uses.
    #[error(
        "map `{map}`: the {handle} types have key {rust_key} B and value {rust_value} B, \
         but the map has key_size {key_size} B and value_size {value_size} B"
    )]
    SizeMismatch {
        /// The map name.
        map: String,
        /// The handle type, e.g. `"Map"`.
        handle: &'static str,
        /// `size_of::<K>()` (0 for handles without a typed key).
        rust_key: usize,
        /// `size_of::<V>()`, or the value size the handle needs.
        rust_value: usize,
        /// The map's `key_size`.
        key_size: u32,
        /// The map's `value_size`.
        value_size: u32,
    },
    /// The map is not of a type this handle serves.
    #[error("map `{map}` is a {actual} map, but {handle} needs {expected}")]
    WrongType {
        /// The map name.
        map: String,
        /// The handle type, e.g. `"PerCpuMap"`.
        handle: &'static str,
        /// The map type's name (or `type N` when unknown).
        actual: String,
        /// What the handle accepts (and, when known, which handle fits instead).
        expected: &'static str,
    },
    /// A byte range of a global-data value lies outside it.
    #[error("map `{map}`: {op} of {len} B at offset {offset} is outside the {size}-byte value")]
    OutOfBounds {
        /// The map name.
        map: String,
        /// `"read_at"` or `"write_at"`.
        op: &'static str,
        /// Byte offset asked for.
        offset: usize,
        /// Bytes asked for.
        len: usize,
        /// Size of the value.
        size: usize,
    },
    /// An argument was refused before any syscall.
    #[error("map `{map}`: invalid argument to {op}: {reason}")]
    InvalidArgument {
        /// The map name.
        map: String,
        /// The handle operation.
        op: &'static str,
        /// What was wrong and what was expected.
        reason: String,
    },
}

impl MapError {
    /// The map the error is about.
    pub fn map(&self) -> &str {
        match self {
            MapError::Sys { map, .. }
            | MapError::SizeMismatch { map, .. }
            | MapError::WrongType { map, .. }
            | MapError::OutOfBounds { map, .. }
            | MapError::InvalidArgument { map, .. } => map,
        }
    }

    /// The errno the kernel returned, if the error came from a syscall.
    pub fn errno(&self) -> Option<i32> {
        match self {
            MapError::Sys { source, .. } => source.errno(),
            _ => None,
        }
    }

    /// The syscall-layer error, if there is one.
    pub fn sys_error(&self) -> Option<&SysError> {
        match self {
            MapError::Sys { source, .. } => Some(source),
            _ => None,
        }
    }
}
