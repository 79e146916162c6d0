//! Compile-fail cases of `include_bpf!`, checked against their `.stderr`
//! (regenerate with `TRYBUILD=overwrite` and review the diff).

use std::path::Path;

#[test]
fn ui() {
    link_test_files_into_trybuild_project();
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
}

/// trybuild compiles the cases in its own package under
/// `<target>/tests/trybuild/skelgen-macro`, so the `CARGO_MANIFEST_DIR` the
/// macro resolves paths against is that directory, not this crate's. A
/// `tests` link there makes `include_bpf!("tests/ui/fail/x")` find the same
/// file as it would in this crate, and keeps absolute target paths out of
/// the expected messages.
fn link_test_files_into_trybuild_project() {
    let Some(target) = Path::new(env!("CARGO_TARGET_TMPDIR")).parent() else {
        return;
    };
    let project = target.join("tests/trybuild/skelgen-macro");
    std::fs::create_dir_all(&project).expect("trybuild project dir");
    let link = project.join("tests");
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    if std::fs::read_link(&link).is_ok_and(|t| t == here) {
        return;
    }
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&here, &link).expect("link tests/ into the trybuild project");
}
