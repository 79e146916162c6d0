//! trybuild cases of `include_bpf!` skeletons: `pass/` uses them as users
//! do (and runs them on the kernel when `SKELGEN_UI_RUN` is set); `fail/`
//! proves the API rules and the macro's errors, checked against `.stderr`
//! files (regenerate with `TRYBUILD=overwrite` and review the diff).

use std::path::Path;

#[test]
fn ui() {
    link_test_files_into_trybuild_project();
    // As root the pass cases also load and run their skeletons.
    let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .is_some_and(|l| l.split_whitespace().nth(1) == Some("0"))
    });
    if root {
        std::env::set_var("SKELGEN_UI_RUN", "1");
    }
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
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
