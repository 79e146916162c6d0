//! What the `btf_dedup` and `link` fuzz targets do with one input, shared
//! by the cargo-fuzz targets and `skelgen/tests/link_fuzz_regressions.rs`
//! (included with `#[path]`), so that a saved crasher replays exactly.

/// `btf_dedup`: raw `.BTF` in; an error, or BTF that reads back, whose
/// dedup is a fixed point (deduplicating it again changes nothing).
pub fn btf_dedup(data: &[u8]) {
    let Ok(once) = skelgen::link::dedup_btf(data) else {
        return;
    };
    let parsed = match skelgen_runtime::btf::Btf::parse(&once) {
        Ok(b) => b,
        Err(e) => panic!("deduplicated BTF does not parse: {e}"),
    };
    for id in 1..parsed.len() {
        if let Err(e) = parsed.type_by_id(id) {
            panic!("deduplicated BTF: type {id}: {e}");
        }
    }
    match skelgen::link::dedup_btf(&once) {
        Ok(twice) if twice == once => {}
        Ok(_) => panic!("dedup is not idempotent"),
        Err(e) => panic!("deduplicated BTF is refused by dedup: {e}"),
    }
}

const MAIN: &[u8] = include_bytes!("../../tests/fixtures/link/main.bpf.o");
const LIB: &[u8] = include_bytes!("../../tests/fixtures/link/lib.bpf.o");

/// `link`: the first byte picks the partners of the fuzzed object (alone,
/// after main.bpf.o, before lib.bpf.o, or split in two at its middle); an
/// error, or an object that links again on its own.
pub fn link(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (a, b) = rest.split_at(rest.len() / 2);
    let inputs: Vec<(&str, &[u8])> = match mode % 4 {
        0 => vec![("fuzz.o", rest)],
        1 => vec![("main.bpf.o", MAIN), ("fuzz.o", rest)],
        2 => vec![("fuzz.o", rest), ("lib.bpf.o", LIB)],
        _ => vec![("a.o", a), ("b.o", b)],
    };
    let Ok(out) = skelgen::link::link(&inputs) else {
        return;
    };
    if let Err(e) = skelgen::link::link(&[("linked.o", &out)]) {
        panic!("the linked object does not link again: {e}");
    }
}
