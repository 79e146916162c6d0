//! The `skelgen` command: generate a skeleton, or inspect an object.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

/// Typed Rust skeletons for BPF objects.
#[derive(Debug, Parser)]
#[command(
    name = "skelgen",
    version,
    about = "Generate a typed Rust skeleton from a BPF object (the Rust `bpftool gen skeleton`)",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// The BPF object compiled by clang (e.g. vfsstat.bpf.o)
    #[arg(required = true)]
    object: Option<PathBuf>,
    /// Write the skeleton to FILE instead of standard output
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Object name (default: from the file name, `vfsstat.bpf.o` -> `vfsstat_bpf`)
    #[arg(long)]
    name: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show what skelgen understood of an object: maps, programs, datasecs, externs, relocations
    Inspect {
        /// The BPF object
        object: PathBuf,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
        /// Also print each program's instructions in the verifier's syntax
        #[arg(long)]
        disasm: bool,
    },
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Command::Inspect {
            object,
            json,
            disasm,
        }) => {
            let bytes = read(&object)?;
            let path = object.to_string_lossy();
            let obj = skelgen_runtime::obj::Object::parse(
                &bytes,
                &skelgen_runtime::obj::object_name_from_path(&path),
            )
            .with_context(|| format!("{path}: cannot understand the BPF object"))?;
            let report = skelgen::inspect::report(&obj);
            let mut out = if json {
                let mut s = serde_json::to_string_pretty(&report)?;
                s.push('\n');
                s
            } else {
                skelgen::inspect::render_text(&report)
            };
            if disasm {
                out.push_str(&skelgen::inspect::render_disasm(&obj));
            }
            std::io::stdout().write_all(out.as_bytes())?;
        }
        None => {
            let Some(object) = cli.object else {
                anyhow::bail!("no object given");
            };
            let bytes = read(&object)?;
            let path = object.to_string_lossy();
            let mut opts = skelgen::Options::new();
            if let Some(name) = cli.name {
                opts = opts.name(name);
            } else {
                opts = opts.name(skelgen::default_name(&path));
            }
            let generated = skelgen::generate_with_warnings(&bytes, &opts)
                .with_context(|| format!("{path}: cannot generate a skeleton"))?;
            for w in &generated.warnings {
                eprintln!("skelgen: warning: {path}: {w}");
            }
            let code = generated.code;
            match cli.output {
                Some(out) => skelgen::write_if_changed(&out, code.as_bytes())
                    .with_context(|| format!("cannot write {}", out.display()))?,
                None => std::io::stdout().write_all(code.as_bytes())?,
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp(None)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut msg = format!("skelgen: {e}");
            for cause in e.chain().skip(1) {
                msg.push_str(&format!(": {cause}"));
            }
            eprintln!("{msg}");
            ExitCode::FAILURE
        }
    }
}
