//! Fuzz target `obj_parse`: see `fuzz/harness/runtime.rs`.
#![no_main]

#[path = "../harness/runtime.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::obj_parse(data));
