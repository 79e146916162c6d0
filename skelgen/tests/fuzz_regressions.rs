//! Every input the `generate` fuzz target (`fuzz/`) found to crash, hang or
//! exhaust memory, replayed through the harness it ran
//! (`fuzz/harness/generate.rs`: an error, or code that `syn` parses), plus a
//! direct test of each limit added for them. The saved inputs live in
//! `tests/fuzz-corpus/regressions/generate/`.

#[path = "../../fuzz/harness/generate.rs"]
mod harness;

use std::path::PathBuf;

fn regressions(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "tests",
        "fuzz-corpus",
        "regressions",
        target,
    ]
    .iter()
    .collect();
    // A target with no finding yet has no directory.
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.display().to_string(), bytes)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn generate_regressions() {
    for (path, bytes) in regressions("generate") {
        eprintln!("replaying {path}");
        harness::generate(&bytes);
    }
}

/// The generate target also runs every object that `obj_parse` found: the
/// generator must survive what the object model survives.
#[test]
fn obj_parse_regressions_through_the_generator() {
    for (path, bytes) in regressions("obj_parse") {
        eprintln!("replaying {path}");
        harness::generate(&bytes);
    }
}
