//! `skelgen btf dump FILE [--format c|rust] [--type NAME ...]`: a BTF file as
//! a C header (`vmlinux.h`, as `bpftool btf dump file F format c`) or as Rust
//! types for chosen kernel types.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;

/// Arguments of `skelgen btf`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Print the types of a BTF file as C (vmlinux.h) or Rust
    Dump(DumpArgs),
}

/// Output language of `skelgen btf dump`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// A C header that compiles with clang, as bpftool's `format c`
    C,
    /// Rust types with layout assertions (needs --type)
    Rust,
}

#[derive(Debug, clap::Args)]
struct DumpArgs {
    /// BTF file: /sys/kernel/btf/vmlinux, a module's BTF, raw BTF, or an ELF file with .BTF
    file: PathBuf,
    /// Output language
    #[arg(long, value_enum, default_value_t = Format::C)]
    format: Format,
    /// Only this type and what it needs (repeatable; required for --format rust)
    #[arg(long = "type", value_name = "NAME")]
    types: Vec<String>,
    /// Base BTF of a split (module) BTF file (default for /sys/kernel/btf/<module>: vmlinux)
    #[arg(short = 'B', long, value_name = "FILE")]
    base: Option<PathBuf>,
    /// Leave out the kfunc prototypes at the end of a whole C dump
    #[arg(long)]
    no_kfuncs: bool,
    /// Order a whole C dump by kind and name (bpftool 7.5's default) instead of by type id
    #[arg(long)]
    sort: bool,
    /// Write to FILE instead of standard output
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Runs `skelgen btf ...`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Dump(d) => dump(d),
    }
}

fn dump(args: DumpArgs) -> anyhow::Result<()> {
    let path = args.file.display().to_string();
    let btf = skelgen::btf_file::read_btf(&args.file, args.base.as_deref())?;
    let text = match args.format {
        Format::C => {
            let mut opts = skelgen::btf_c::DumpOptions::new();
            for t in &args.types {
                opts = opts.root(t.clone());
            }
            if args.no_kfuncs {
                opts = opts.without_kfuncs();
            }
            if args.sort {
                opts = opts.sorted();
            }
            skelgen::btf_c::dump_c(&btf, &opts)
                .with_context(|| format!("{path}: cannot dump the BTF as C"))?
        }
        Format::Rust => {
            let names: Vec<&str> = args.types.iter().map(String::as_str).collect();
            let generated = skelgen::kernel_types::kernel_types(&btf, &names, None)
                .with_context(|| format!("{path}: cannot generate Rust types"))?;
            for w in &generated.warnings {
                eprintln!("skelgen: warning: {path}: {w}");
            }
            generated.code
        }
    };
    match args.output {
        Some(out) => skelgen::write_if_changed(&out, text.as_bytes())
            .with_context(|| format!("cannot write {}", out.display()))?,
        None => std::io::stdout().write_all(text.as_bytes())?,
    }
    Ok(())
}
