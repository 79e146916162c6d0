//! `Options::reachable_types_only`: the types the skeleton's API names stay
//! (map values, global data, a ring buffer event kept by a global), the
//! types only the C code touches go.

use skelgen::Options;

fn generate(all: bool) -> String {
    let path = skelgen_test_support::fixture_path("tp_ringbuf");
    let bytes = std::fs::read(&path).unwrap();
    let opts = Options::new()
        .name("tp_ringbuf_bpf")
        .reachable_types_only(!all);
    skelgen::generate(&bytes, &opts).unwrap()
}

#[test]
fn reachable_only_keeps_what_the_api_names_and_drops_the_rest() {
    let all = generate(true);
    let reachable = generate(false);
    for kept in [
        "pub struct event {",
        "pub struct rodata {",
        "pub struct bss {",
    ] {
        assert!(all.contains(kept), "{kept} missing from the full skeleton");
        assert!(reachable.contains(kept), "{kept} dropped:\n{reachable}");
    }
    // The tracepoint context type is only the program's argument.
    let ctx = "pub struct trace_event_raw_sys_enter {";
    assert!(all.contains(ctx), "the full skeleton has every named type");
    assert!(
        !reachable.contains(ctx),
        "unreachable type kept:\n{reachable}"
    );
    assert!(reachable.lines().count() < all.lines().count());
}
