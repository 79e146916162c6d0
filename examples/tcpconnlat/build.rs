//! Compiles `src/bpf/tcpconnlat.bpf.c` and writes `OUT_DIR/tcpconnlat.skel.rs`.

fn main() {
    if let Err(e) = skelgen::Builder::new()
        .source("src/bpf/tcpconnlat.bpf.c")
        .build()
    {
        eprintln!("error: {e}");
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            eprintln!("caused by: {cause}");
            source = cause.source();
        }
        std::process::exit(1);
    }
}
