//! `LoaderParts`: an object opened without a part it needs fails with an
//! error naming the part (never a silent skip), and with the parts it needs
//! it loads as with all of them.

use skelgen_runtime::loader::{CoreMode, LoadError, LoaderParts, OpenObject, OpenOptions};
use skelgen_test_support::matrix::{has, Feature};
use skelgen_test_support::{error_chain, fixture, kernel as kernel_or_skip};

fn open(name: &str, opts: OpenOptions, parts: LoaderParts) -> Result<OpenObject, LoadError> {
    OpenObject::open_parts(&fixture(name), name, opts, parts)
}

fn missing_part(e: &LoadError) -> &str {
    match e {
        LoadError::MissingPart { part, .. } => part,
        other => panic!("expected MissingPart, got {}", error_chain(other)),
    }
}

#[test]
fn struct_ops_without_its_part_is_refused_at_open() {
    let e = open("struct_ops", OpenOptions::default(), LoaderParts::NONE).unwrap_err();
    let msg = error_chain(&e);
    assert!(msg.contains(".struct_ops"), "{msg}");
    assert!(msg.contains("struct_ops part"), "{msg}");
}

#[test]
fn externs_without_their_parts_are_refused_at_load() {
    if !kernel_or_skip() {
        return;
    }
    // kconfig.bpf.o has .kconfig externs, kfuncs and a CO-RE relocation.
    let e = open(
        "kconfig",
        OpenOptions::default(),
        LoaderParts::NONE.with_ksyms().with_user_core(),
    )
    .unwrap()
    .load()
    .unwrap_err();
    assert_eq!(missing_part(&e), "kconfig");
    assert!(error_chain(&e).contains(".kconfig externs"));
    let e = open("ksym_typed", OpenOptions::default(), LoaderParts::NONE)
        .unwrap()
        .load()
        .unwrap_err();
    assert_eq!(missing_part(&e), "ksyms");
}

#[test]
fn user_space_core_without_its_part_is_refused_at_load() {
    if !kernel_or_skip() {
        return;
    }
    let opts = OpenOptions {
        core: CoreMode::User,
        ..OpenOptions::default()
    };
    let e = open("core", opts, LoaderParts::NONE)
        .unwrap()
        .load()
        .unwrap_err();
    assert_eq!(missing_part(&e), "user-space CO-RE");
    assert!(error_chain(&e).contains("with CO-RE relocations"));
}

#[test]
fn objects_load_with_exactly_their_parts() {
    if !kernel_or_skip() {
        return;
    }
    // The parts the generator picks for these objects (skelgen's
    // tests/parts.rs checks that choice). ksym_typed.bpf.o is left out:
    // its load depends on the kernel (tests/loader.rs covers it).
    for (name, parts) in [
        ("xdp_counter", LoaderParts::NONE),
        (
            "kconfig",
            LoaderParts::NONE
                .with_kconfig()
                .with_ksyms()
                .with_user_core(),
        ),
        ("core", LoaderParts::NONE.with_user_core()),
    ] {
        let loaded = open(name, OpenOptions::default(), parts).unwrap().load();
        // kconfig.bpf.o calls bpf_task_from_pid (6.2+); the matrix table
        // says which kernels lack it, as in tests/loader.rs.
        if name == "kconfig" && !has(Feature::TaskKfuncs) {
            let msg = error_chain(&loaded.unwrap_err());
            assert!(msg.contains("bpf_task_from_pid"), "{name}: {msg}");
            continue;
        }
        let loaded = loaded.unwrap_or_else(|e| panic!("{name}: {}", error_chain(&e)));
        assert!(
            (0..loaded.object().programs.len()).any(|i| loaded.prog_fd(i).is_some()),
            "{name}: no program loaded"
        );
    }
}
