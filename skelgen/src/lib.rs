//! skelgen: typed Rust skeletons for BPF objects.
#![warn(missing_docs)]
