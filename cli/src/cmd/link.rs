//! `skelgen link OUT IN...`: static linking of BPF objects into one, as
//! `bpftool gen object` does.

use std::path::PathBuf;

use anyhow::Context as _;

/// Arguments of `skelgen link`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The linked object to write
    output: PathBuf,
    /// The objects to link, in this order (the first one's sections come first)
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
}

/// Links the inputs and writes the result.
pub fn run(args: Args) -> anyhow::Result<()> {
    let inputs = args
        .inputs
        .iter()
        .map(|p| Ok((p.to_string_lossy().into_owned(), super::read(p)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let linked = skelgen::link::link(&inputs).context("cannot link")?;
    std::fs::write(&args.output, linked)
        .with_context(|| format!("cannot write {}", args.output.display()))
}
