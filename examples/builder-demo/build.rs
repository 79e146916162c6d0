//! Compiles `src/bpf/demo.bpf.c` and writes `OUT_DIR/demo.skel.rs`.

fn main() {
    if let Err(e) = skelgen::Builder::new().source("src/bpf/demo.bpf.c").build() {
        // Display, not Debug: clang's stderr is shown as clang printed it.
        eprintln!("error: {e}");
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            eprintln!("caused by: {cause}");
            source = cause.source();
        }
        std::process::exit(1);
    }
}
