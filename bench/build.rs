//! Builds the two C pieces of the benchmark:
//!
//! - `c/bpf_time.c` into a static library linked into `skelgen-bench`, so
//!   that its `syscall()` counts the time every in-process library (skelgen
//!   runtime, libbpf-rs's libbpf, aya) spends inside bpf();
//! - `c/harness.c` + `c/bpf_time.c` into the `libbpf-harness` executable
//!   against the system libbpf (`pkg-config libbpf`), whose path the runner
//!   gets through `BENCH_LIBBPF_HARNESS`.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=c/bpf_time.c");
    println!("cargo:rerun-if-changed=c/harness.c");
    cc::Build::new()
        .file("c/bpf_time.c")
        .opt_level(2)
        .compile("bpf_time");
    println!("cargo:rustc-link-lib=dylib=dl");

    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let harness = out.join("libbpf-harness");
    let pkg = Command::new("pkg-config")
        .args(["--cflags", "--libs", "libbpf"])
        .output()
        .expect("pkg-config is needed to find the system libbpf (apt-get install pkg-config libbpf-dev)");
    assert!(
        pkg.status.success(),
        "pkg-config libbpf failed: {}",
        String::from_utf8_lossy(&pkg.stderr)
    );
    let pkg_flags = String::from_utf8_lossy(&pkg.stdout).into_owned();
    let status = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args([
            "-O2",
            "-g0",
            "-Wall",
            "-rdynamic",
            "c/harness.c",
            "c/bpf_time.c",
            "-o",
        ])
        .arg(&harness)
        .args(pkg_flags.split_whitespace())
        .args(["-lelf", "-lz", "-ldl"])
        .status()
        .expect("cannot run the C compiler");
    assert!(status.success(), "building c/harness.c failed");
    println!("cargo:rustc-env=BENCH_LIBBPF_HARNESS={}", harness.display());
}
