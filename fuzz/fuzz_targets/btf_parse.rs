//! Fuzz target `btf_parse`: see `fuzz/harness/runtime.rs`.
#![no_main]

#[path = "../harness/runtime.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::btf_parse(data));
