//! A tiny crate whose skeleton is the `skelgen` CLI's output, committed as
//! `src/skel.rs` (build-time benchmark; skelgen-bench regenerates it).

mod skel;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut open = skel::VfsstatBpf::open()?;
    open.progs.fentry_vfs_read.set_autoload(false);
    let skel = open.load()?;
    let stats: [u64; 5] = skel.bss().stats()?;
    println!("{stats:?}");
    Ok(())
}
