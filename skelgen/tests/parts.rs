//! A skeleton names exactly the loader parts and attach kinds its object
//! uses, so that a binary links no others (the release-size benchmark's
//! lever): no part for an object without struct_ops, externs or CO-RE, and
//! each part where the object has that feature.

use skelgen::Options;

fn generate(fixture: &str) -> String {
    let bytes = std::fs::read(skelgen_test_support::fixture_path(fixture)).unwrap();
    let opts = Options::new().name(format!("{fixture}_bpf"));
    // One line per statement is enough to find calls; whitespace differs
    // between prettyplease versions, so compare without it.
    skelgen::generate(&bytes, &opts)
        .unwrap()
        .split_whitespace()
        .collect()
}

fn parts_of(code: &str) -> Vec<&str> {
    let start = code
        .find("LoaderParts::NONE")
        .expect("open_parts with LoaderParts::NONE");
    let rest = &code[start + "LoaderParts::NONE".len()..];
    let end = rest.find(")?").expect("end of the parts expression");
    rest[..end]
        .trim_end_matches(',')
        .split(".with_")
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches("()"))
        .collect()
}

#[test]
fn each_object_gets_the_parts_it_uses_and_no_other() {
    for (fixture, parts) in [
        ("vfsstat", &[][..]),
        ("xdp_counter", &[]),
        ("struct_ops", &["struct_ops", "user_core"]),
        // Its kfuncs are `.ksyms` externs, and bpf_ksym_exists() a CO-RE
        // relocation.
        ("kconfig", &["kconfig", "ksyms", "user_core"]),
        ("ksym_typed", &["ksyms"]),
        ("core", &["user_core"]),
    ] {
        let code = generate(fixture);
        assert!(code.contains("OpenObject::open_parts("), "{fixture}");
        assert_eq!(parts_of(&code), parts, "{fixture}");
    }
}

#[test]
fn attach_calls_the_kind_of_each_section_only() {
    // vfsstat: fentry/* and kprobe/* programs.
    let code = generate("vfsstat");
    assert!(code.contains("attach::auto::btf_section("));
    assert!(code.contains("attach::auto::kprobe_section("));
    for other in [
        "auto_attach_with(",
        "usdt_section(",
        "uprobe_section(",
        "kprobe_multi_section(",
        "tracepoint_section(",
    ] {
        assert!(!code.contains(other), "vfsstat's skeleton calls {other}");
    }
    // xdp: attached by an explicit call, so attach() has no call at all.
    let code = generate("xdp_counter");
    assert!(!code.contains("attach::auto::"), "xdp needs no auto-attach");
    assert!(!code.contains("auto_attach_with("));
}
