//! skelgen-bench: skelgen side by side with what users would pick instead
//! (bpftool gen skeleton + libbpf, libbpf-rs, aya), measured in one run.
//!
//! ```text
//! skelgen-bench [--quick] [--skelgen PATH] [--results FILE] [--no-build-time] [OBJ|DIR ...]
//! skelgen-bench worker load skelgen-kernel|skelgen-user|libbpf-rs|aya OBJ ITERS
//! skelgen-bench worker btf skelgen|aya ITERS
//! skelgen-bench worker core OBJ PROG ITERS
//! skelgen-bench worker ringbuf generic|boxed|tokio OBJ SAMPLES ROUNDS
//! skelgen-bench worker perfbuf OBJ SAMPLES ROUNDS
//! ```
//!
//! The first form runs everything (see `bench/README.md`) and prints a
//! markdown report; `worker` runs one measurement in a fresh process, which
//! is how the first form takes cold (first-in-process) numbers.

mod artifacts;
mod kbtf;
mod load;
mod measure;
mod report;
mod ringbuf;
mod suite;

use anyhow::{bail, Context as _};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = if args.first().map(String::as_str) == Some("worker") {
        worker(&args[1..])
    } else {
        suite::Config::from_args(&args).and_then(suite::run)
    };
    if let Err(e) = result {
        if args.first().map(String::as_str) == Some("worker") {
            println!("error {}", load::one_line(&e));
            std::process::exit(2);
        }
        eprintln!("skelgen-bench: {}", load::one_line(&e));
        std::process::exit(1);
    }
}

fn worker(args: &[String]) -> anyhow::Result<()> {
    let arg = |i: usize| -> anyhow::Result<&str> {
        args.get(i)
            .map(String::as_str)
            .with_context(|| format!("worker: missing argument {i}"))
    };
    let num = |i: usize| -> anyhow::Result<usize> {
        arg(i)?
            .parse()
            .with_context(|| format!("worker: argument {i} is not a number"))
    };
    match arg(0)? {
        "load" => load::worker(load::Lib::parse(arg(1)?)?, arg(2)?, num(3)?),
        "btf" => kbtf::worker(arg(1)?, num(2)?),
        "core" => kbtf::core_worker(arg(1)?, arg(2)?, num(3)?),
        "ringbuf" => ringbuf::worker(
            ringbuf::Consumer::parse(arg(1)?)?,
            arg(2)?,
            num(3)? as u64,
            num(4)?,
        ),
        "perfbuf" => ringbuf::perf_worker(arg(1)?, num(2)? as u64, num(3)?),
        other => bail!("unknown worker {other}"),
    }
}
