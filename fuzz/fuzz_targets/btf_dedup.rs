//! Fuzz target `btf_dedup`: see `fuzz/harness/link.rs`.
#![no_main]

#[path = "../harness/link.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::btf_dedup(data));
