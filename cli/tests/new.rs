//! `skelgen new demo`: the crate it writes builds (clang through the
//! Builder), passes clippy with warnings denied, and, as root, runs on the
//! kernel and prints the execs this test makes.
//!
//! The generated crate is built in a target dir kept under this test's
//! `CARGO_TARGET_TMPDIR`, so that later runs rebuild only the demo crate,
//! and with the workspace's Cargo.lock, so that it uses the versions (and
//! the offline registry cache) the workspace does.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

fn cargo(dir: &Path, args: &[&str]) -> std::process::Output {
    // --offline right after the subcommand: what follows `--` is clippy's.
    let (sub, rest) = args.split_first().expect("a cargo subcommand");
    Command::new(env!("CARGO"))
        .arg(sub)
        .arg("--offline")
        .args(rest)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir())
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run cargo")
}

fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("skelgen-new-target")
}

/// Writes a fresh `demo` crate and returns its directory.
fn new_demo(name: &str) -> PathBuf {
    let parent = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("skelgen-new-{name}"));
    let _ = std::fs::remove_dir_all(&parent);
    std::fs::create_dir_all(&parent).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_skelgen"))
        .args(["new", name, "--path-deps"])
        .arg(workspace())
        .current_dir(&parent)
        .output()
        .expect("run skelgen new");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = parent.join(name);
    std::fs::copy(workspace().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    dir
}

fn ok(out: &std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn new_writes_every_file_and_refuses_to_overwrite() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("skelgen-new-files");
    let _ = std::fs::remove_dir_all(&dir);
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_skelgen"))
            .args(args)
            .output()
            .unwrap()
    };
    let d = dir.to_str().unwrap();
    let out = run(&["new", "my-tool", "--dir", d, "--crates-io"]);
    ok(&out, "skelgen new");
    let root = dir.join("my-tool");
    for f in [
        "Cargo.toml",
        "build.rs",
        "src/main.rs",
        "src/bpf/my_tool.bpf.c",
        ".gitignore",
        "README.md",
    ] {
        let text = std::fs::read_to_string(root.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(!text.contains("{{"), "{f}: unreplaced placeholder");
    }
    let toml = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        toml.contains(&format!("skelgen-runtime = \"{version}\"")),
        "{toml}"
    );
    assert!(toml.contains("name = \"my-tool\""), "{toml}");
    let main = std::fs::read_to_string(root.join("src/main.rs")).unwrap();
    assert!(main.contains("MyToolBpf::open()"), "{main}");
    // A second run must not touch the crate.
    let again = run(&["new", "my-tool", "--dir", d]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert_eq!(run(&["new", "9lives", "--dir", d]).status.code(), Some(1));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn demo_builds_passes_clippy_and_prints_execs() {
    if !skelgen_test_support::require(
        skelgen_test_support::have_tool("clang"),
        "clang missing: the demo's build.rs compiles its BPF C",
    ) {
        return;
    }
    let dir = new_demo("demo");
    ok(
        &cargo(&dir, &["build", "--quiet"]),
        "cargo build of the demo crate",
    );
    ok(
        &cargo(&dir, &["clippy", "--quiet", "--", "-D", "warnings"]),
        "cargo clippy -D warnings of the demo crate",
    );
    let Some(_serial) = skelgen_test_support::kernel_serial() else {
        return;
    };
    let bin = target_dir().join("debug/demo");
    let mut child = Command::new(&bin)
        .args(["--duration", "4"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the demo");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let header = lines.next().expect("a header line").unwrap();
    assert!(header.starts_with("PID"), "{header}");
    // Attached (the header comes after attach): exec a few processes.
    let mut pids = Vec::new();
    for _ in 0..3 {
        let mut c = Command::new("true").spawn().unwrap();
        pids.push(c.id());
        c.wait().unwrap();
    }
    let start = Instant::now();
    let mut seen = Vec::new();
    for line in lines {
        let line = line.unwrap();
        let mut f = line.split_whitespace();
        let (Some(pid), Some(_uid), Some(comm)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if comm == "true" && pid.parse().is_ok_and(|p: u32| pids.contains(&p)) {
            seen.push(line);
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "demo did not stop"
        );
    }
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success(), "demo failed: {err}");
    assert_eq!(
        seen.len(),
        pids.len(),
        "expected an event per exec of {pids:?}, saw {seen:?}"
    );
}
