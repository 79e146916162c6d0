//! Inputs the `btf_dedup` and `link` fuzz targets (`fuzz/`) found, replayed
//! through the harness they ran (`fuzz/harness/link.rs`), plus the seeds
//! (every fixture's BTF, the link fixtures in each mode) so the harness's
//! invariants are checked in the default test suite too. Saved inputs live
//! in `tests/fuzz-corpus/regressions/{btf_dedup,link}/`.

#[path = "../../fuzz/harness/link.rs"]
mod harness;

use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<_> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

fn regressions(target: &str) -> Vec<PathBuf> {
    files(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fuzz-corpus/regressions")
            .join(target),
    )
}

fn btf_of(obj: &[u8]) -> Option<Vec<u8>> {
    use object::{Object as _, ObjectSection as _};
    let f = object::File::parse(obj).ok()?;
    Some(f.section_by_name(".BTF")?.data().ok()?.to_vec())
}

#[test]
fn btf_dedup_regressions_and_seeds() {
    for p in regressions("btf_dedup") {
        harness::btf_dedup(&std::fs::read(&p).unwrap());
    }
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
    let mut n = 0;
    for dir in [fixtures.clone(), fixtures.join("link")] {
        for p in files(&dir) {
            if p.extension().is_some_and(|e| e == "o") {
                if let Some(btf) = btf_of(&std::fs::read(&p).unwrap()) {
                    harness::btf_dedup(&btf);
                    n += 1;
                }
            }
        }
    }
    assert!(n > 10);
}

#[test]
fn link_regressions_and_seeds() {
    for p in regressions("link") {
        harness::link(&std::fs::read(&p).unwrap());
    }
    let link = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/link");
    for p in files(&link) {
        if p.extension().is_some_and(|e| e == "o") {
            let obj = std::fs::read(&p).unwrap();
            for mode in 0..3u8 {
                let mut input = vec![mode];
                input.extend_from_slice(&obj);
                harness::link(&input);
            }
        }
    }
}
