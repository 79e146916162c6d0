//! A tiny crate whose skeleton comes from `include_bpf!` (build-time benchmark).

mod skel {
    skelgen_macro::include_bpf!("../../../tests/fixtures/vfsstat.bpf.o");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut open = skel::VfsstatBpf::open()?;
    open.progs.fentry_vfs_read.set_autoload(false);
    let skel = open.load()?;
    let stats: [u64; 5] = skel.bss().stats()?;
    println!("{stats:?}");
    Ok(())
}
