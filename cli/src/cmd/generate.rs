//! `skelgen OBJ`: the skeleton of a BPF object, to standard output or a file.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;

/// Arguments of skeleton generation (the command without a subcommand).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The BPF object compiled by clang (e.g. vfsstat.bpf.o)
    #[arg(required = true)]
    object: Option<PathBuf>,
    /// Write the skeleton to FILE instead of standard output
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Object name (default: from the file name, `vfsstat.bpf.o` -> `vfsstat_bpf`)
    #[arg(long)]
    name: Option<String>,
    /// Generate a library's subskeleton (as bpftool gen subskeleton): its maps, programs and variables inside a final linked object
    #[arg(long)]
    subskeleton: bool,
    /// Generate only the types reachable from maps and global data, not every named type of the object's BTF (smaller, faster to compile)
    #[arg(long)]
    reachable_types_only: bool,
}

/// Generates the skeleton and writes it.
pub fn run(args: Args) -> anyhow::Result<()> {
    let Some(object) = args.object else {
        anyhow::bail!("no object given");
    };
    let bytes = super::read(&object)?;
    let path = object.to_string_lossy();
    let name = args.name.unwrap_or_else(|| skelgen::default_name(&path));
    let opts = skelgen::Options::new()
        .name(name)
        .reachable_types_only(args.reachable_types_only);
    let code = if args.subskeleton {
        skelgen::generate_subskeleton(&bytes, &opts)
            .with_context(|| format!("{path}: cannot generate a subskeleton"))?
    } else {
        let generated = skelgen::generate_with_warnings(&bytes, &opts)
            .with_context(|| format!("{path}: cannot generate a skeleton"))?;
        for w in &generated.warnings {
            eprintln!("skelgen: warning: {path}: {w}");
        }
        generated.code
    };
    match args.output {
        Some(out) => skelgen::write_if_changed(&out, code.as_bytes())
            .with_context(|| format!("cannot write {}", out.display()))?,
        None => std::io::stdout().write_all(code.as_bytes())?,
    }
    Ok(())
}
