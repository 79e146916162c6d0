//! `skelgen min-core-btf SRC_BTF DST_BTF OBJ...`: the smallest BTF the
//! objects need for CO-RE against SRC_BTF (as `bpftool gen min_core_btf`),
//! for loading with `OpenOptions::btf_custom_path` on kernels without
//! `/sys/kernel/btf/vmlinux`.

use std::path::PathBuf;

use anyhow::Context as _;

/// Arguments of `skelgen min-core-btf`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The kernel's full BTF (raw, or an ELF file with .BTF)
    src_btf: PathBuf,
    /// Where to write the minimal raw BTF
    dst_btf: PathBuf,
    /// The BPF objects whose CO-RE relocations it must satisfy
    #[arg(required = true)]
    objects: Vec<PathBuf>,
}

/// Writes the minimal BTF.
pub fn run(args: Args) -> anyhow::Result<()> {
    let src = skelgen::btf_file::read_btf(&args.src_btf, None)?;
    let mut objects = Vec::new();
    for p in &args.objects {
        objects.push((p.display().to_string(), super::read(p)?));
    }
    let refs: Vec<(&str, &[u8])> = objects
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    let out = skelgen::min_core::min_core_btf(src, &refs).with_context(|| {
        format!(
            "cannot compute the minimal BTF of {}",
            args.src_btf.display()
        )
    })?;
    std::fs::write(&args.dst_btf, out)
        .with_context(|| format!("cannot write {}", args.dst_btf.display()))
}
