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

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../tests/fixtures/{name}.bpf.o",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Found by `generate` (crash-cr-in-section-name): a CR in a section name
/// went verbatim into a `///` doc comment, which no longer lexes ("bare CR
/// not allowed in doc-comment"). Control characters and the bidirectional
/// text controls rustc rejects in comments are now escaped in every doc.
#[test]
fn control_characters_in_names_are_escaped_in_docs() {
    for (replacement, escaped) in [
        ("\r", "\\r"),
        ("\n", "\\n"),
        ("\u{7f}", "\\u{7f}"),
        ("\u{202e}", "\\u{202e}"),
    ] {
        let mut elf = fixture("vfsstat");
        // The linker tail-merges "fentry/vfs_fsync" into ".relfentry/...".
        let old = b".relfentry/vfs_fsync\0";
        let at = elf
            .windows(old.len())
            .position(|w| w == old)
            .expect("section name in .strtab");
        // Same length: the replacement overwrites the start of "vfs_fsync".
        let new = replacement.as_bytes();
        elf[at + 11..at + 11 + new.len()].copy_from_slice(new);
        harness::generate(&elf);
        let code = skelgen::generate(&elf, &skelgen::Options::new().name("fuzz_bpf"))
            .unwrap_or_else(|e| panic!("{replacement:?}: {e}"));
        assert!(
            code.contains(&format!("SEC(\"fentry/{escaped}")),
            "{replacement:?} not escaped as {escaped}"
        );
    }
}
