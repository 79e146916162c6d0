//! The `skelgen` command: generate a skeleton, inspect an object, start a
//! project.
//!
//! Each subcommand lives in its own module under `cmd/` with its arguments
//! (a clap `Args` struct) and its `run`; adding one is a module, a variant
//! of [`Command`] and an arm in [`run`].

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod arena;
mod cmd;
mod inspect;

/// A bump arena: the process runs one job and exits (see `arena`).
#[global_allocator]
static ALLOC: arena::Arena = arena::Arena::new();

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
    /// Without a subcommand: generate a skeleton.
    #[command(flatten)]
    generate: cmd::generate::Args,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show what skelgen understood of an object: maps, programs, datasecs, externs, relocations
    Inspect(cmd::inspect::Args),
    /// Link several BPF objects into one (as bpftool gen object)
    Link(cmd::link::Args),
    /// Work with BTF files: dump them as C (vmlinux.h) or Rust types
    Btf(cmd::btf::Args),
    /// Write the minimal BTF a set of objects needs for CO-RE (as bpftool gen min_core_btf)
    MinCoreBtf(cmd::min_core_btf::Args),
    /// Create a ready BPF tool crate: build.rs with skelgen's Builder, a tracepoint + ring buffer program, main.rs
    New(cmd::new::Args),
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Command::Inspect(args)) => cmd::inspect::run(args),
        Some(Command::New(args)) => cmd::new::run(args),
        Some(Command::Link(args)) => cmd::link::run(args),
        Some(Command::Btf(args)) => cmd::btf::run(args),
        Some(Command::MinCoreBtf(args)) => cmd::min_core_btf::run(args),
        None => cmd::generate::run(cli.generate),
    }
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
