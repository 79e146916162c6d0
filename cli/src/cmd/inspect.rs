//! `skelgen inspect OBJ`: what the object model understood, as text or JSON.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;

use crate::inspect;

/// Arguments of `skelgen inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The BPF object
    object: PathBuf,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
    /// Also print each program's instructions in the verifier's syntax
    #[arg(long)]
    disasm: bool,
}

/// Prints the report.
pub fn run(args: Args) -> anyhow::Result<()> {
    let bytes = super::read(&args.object)?;
    let path = args.object.to_string_lossy();
    let obj = skelgen_runtime::obj::Object::parse(
        &bytes,
        &skelgen_runtime::obj::object_name_from_path(&path),
    )
    .with_context(|| format!("{path}: cannot understand the BPF object"))?;
    let report = inspect::report(&obj);
    let mut out = if args.json {
        let mut s = serde_json::to_string_pretty(&report)?;
        s.push('\n');
        s
    } else {
        inspect::render_text(&report)
    };
    if args.disasm {
        out.push_str(&inspect::render_disasm(&obj));
    }
    std::io::stdout().write_all(out.as_bytes())?;
    Ok(())
}
