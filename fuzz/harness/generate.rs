//! What the `generate` fuzz target does with one input, shared by the
//! cargo-fuzz target and `skelgen/tests/fuzz_regressions.rs` (included with
//! `#[path]`), so that a saved crasher replays exactly what found it.

/// Target 5: an error, or code that `syn::parse_file` accepts.
pub fn generate(data: &[u8]) {
    let opts = skelgen::Options::new().name("fuzz_bpf");
    if let Ok(code) = skelgen::generate(data, &opts) {
        if let Err(e) = syn::parse_file(&code) {
            panic!("generated code does not parse: {e}");
        }
    }
}
