//! Fuzz target `generate`: see `fuzz/harness/generate.rs`.
#![no_main]

#[path = "../harness/generate.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::generate(data));
