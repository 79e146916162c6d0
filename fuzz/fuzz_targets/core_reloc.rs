//! Fuzz target `core_reloc`: see `fuzz/harness/runtime.rs`.
#![no_main]

#[path = "../harness/runtime.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::core_reloc(data));
