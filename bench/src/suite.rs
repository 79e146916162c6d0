//! The whole run: every measurement, in order, then the report.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

use crate::load::LoadSample;
use crate::measure::{run_worker, time_process, Rows};
use crate::{artifacts, kbtf, report};

/// The repository root (bench/..).
pub fn repo_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The C harness built by build.rs against the system libbpf.
pub const HARNESS: &str = env!("BENCH_LIBBPF_HARNESS");

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Fewer repetitions and samples, no build-time measurement.
    pub quick: bool,
    /// The `skelgen` binary (release build).
    pub skelgen: String,
    /// Where to write the report (besides stdout).
    pub results: Option<PathBuf>,
    /// Whether to time the two tiny crates' clean builds.
    pub build_time: bool,
    /// Objects to measure.
    pub objects: Vec<PathBuf>,
    /// Processes per measurement (generation: runs per object).
    pub reps: usize,
    /// A libbpf-tools-style object built with -g against a full vmlinux.h
    /// (run.sh builds it): measured for generation only.
    pub g_object: Option<PathBuf>,
}

impl Config {
    pub fn from_args(args: &[String]) -> anyhow::Result<Config> {
        let mut cfg = Config {
            quick: false,
            skelgen: "skelgen".into(),
            results: None,
            build_time: true,
            objects: Vec::new(),
            reps: 11,
            g_object: None,
        };
        let mut extra = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--quick" => {
                    cfg.quick = true;
                    cfg.build_time = false;
                    cfg.reps = 3;
                }
                "--no-build-time" => cfg.build_time = false,
                "--g-object" => {
                    cfg.g_object = Some(it.next().context("--g-object needs a path")?.into())
                }
                "--skelgen" => cfg.skelgen = it.next().context("--skelgen needs a path")?.clone(),
                "--results" => {
                    cfg.results = Some(it.next().context("--results needs a path")?.into())
                }
                "--reps" => {
                    cfg.reps = it
                        .next()
                        .context("--reps needs a number")?
                        .parse()
                        .context("--reps")?
                }
                s if s.starts_with('-') => bail!("unknown option {s}"),
                s => extra.push(PathBuf::from(s)),
            }
        }
        let root = repo_root();
        let mut dirs = vec![root.join("tests/fixtures"), root.join("bench/objects")];
        let mut files = Vec::new();
        for p in extra {
            if p.is_dir() {
                dirs.push(p);
            } else {
                files.push(p);
            }
        }
        for d in dirs {
            files.extend(objects_in(&d)?);
        }
        cfg.objects = files;
        Ok(cfg)
    }
}

fn objects_in(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".bpf.o"))
        .collect();
    v.sort();
    Ok(v)
}

pub fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

fn self_exe() -> anyhow::Result<String> {
    Ok(std::env::current_exe()
        .context("cannot find this executable")?
        .to_string_lossy()
        .into_owned())
}

fn progress(msg: &str) {
    eprintln!("[bench] {msg}");
}

/// Medians of cold and warm samples of one series.
#[derive(Debug, Clone, Default)]
pub struct Series<T> {
    /// First iteration of each process.
    pub cold: Vec<T>,
    /// Later iterations.
    pub warm: Vec<T>,
    /// Why it could not be measured.
    pub error: Option<String>,
}

impl<T> Series<T> {
    fn add(&mut self, rows: Vec<T>) {
        let mut it = rows.into_iter();
        if let Some(first) = it.next() {
            self.cold.push(first);
        }
        self.warm.extend(it);
    }
}

// ---- 1. generation ----

#[derive(Debug, Clone)]
pub struct GenRow {
    pub object: String,
    pub skelgen: Result<Vec<u64>, String>,
    pub bpftool: Result<Vec<u64>, String>,
}

fn generation(cfg: &Config, objects: &[PathBuf]) -> Vec<GenRow> {
    let mut rows = Vec::new();
    for obj in objects {
        let o = obj.to_string_lossy().into_owned();
        progress(&format!("generation: {}", file_name(obj)));
        let mut sk: Result<Vec<u64>, String> = Ok(Vec::new());
        let mut bt: Result<Vec<u64>, String> = Ok(Vec::new());
        // Interleaved, so that load changes hit both tools alike.
        for _ in 0..cfg.reps.max(11) {
            if let Ok(v) = &mut sk {
                match time_process(&cfg.skelgen, std::slice::from_ref(&o)) {
                    Ok(ns) => v.push(ns),
                    Err(e) => sk = Err(e.to_string()),
                }
            }
            if let Ok(v) = &mut bt {
                let args = ["gen".to_string(), "skeleton".to_string(), o.clone()];
                match time_process("bpftool", &args) {
                    Ok(ns) => v.push(ns),
                    Err(e) => bt = Err(e.to_string()),
                }
            }
        }
        rows.push(GenRow {
            object: file_name(obj),
            skelgen: sk,
            bpftool: bt,
        });
    }
    rows
}

// ---- 2. open + load + attach + destroy ----

/// The load columns, in report order.
pub const LOAD_LIBS: [&str; 6] = [
    "libbpf",
    "libbpf-rs",
    "aya",
    "skelgen-kernel",
    "skelgen-user",
    "skelgen-auto",
];

#[derive(Debug, Clone)]
pub struct LoadRow {
    pub object: String,
    /// One series per `LOAD_LIBS` entry.
    pub libs: Vec<Series<LoadSample>>,
}

fn load_worker(lib: &str, obj: &str, iters: usize) -> anyhow::Result<Rows> {
    let iters = iters.to_string();
    if lib == "libbpf" {
        run_worker(HARNESS, &["load".into(), obj.into(), iters])
    } else {
        let args = ["worker", "load", lib, obj, &iters].map(String::from);
        run_worker(&self_exe()?, &args)
    }
}

fn loads(cfg: &Config) -> Vec<LoadRow> {
    let iters = 3;
    let mut rows = Vec::new();
    for obj in &cfg.objects {
        let o = obj.to_string_lossy().into_owned();
        progress(&format!("open+load+attach+destroy: {}", file_name(obj)));
        let mut libs: Vec<Series<LoadSample>> = vec![Series::default(); LOAD_LIBS.len()];
        for _ in 0..cfg.reps {
            for (lib, series) in LOAD_LIBS.iter().zip(libs.iter_mut()) {
                if series.error.is_some() {
                    continue;
                }
                match load_worker(lib, &o, iters) {
                    Ok(Rows(r)) => {
                        series.add(r.iter().filter_map(|r| LoadSample::from_row(r)).collect())
                    }
                    Err(e) => series.error = Some(e.to_string()),
                }
            }
            // An object libbpf cannot load on this kernel is not measured.
            if libs.first().is_some_and(|s| s.error.is_some()) {
                break;
            }
        }
        rows.push(LoadRow {
            object: file_name(obj),
            libs,
        });
    }
    rows
}

// ---- 3. kernel BTF and CO-RE ----

/// `[parse, index, lookup, found]` per iteration.
#[derive(Debug, Clone)]
pub struct BtfRow {
    pub lib: &'static str,
    pub series: Series<Vec<u64>>,
}

fn kernel_btf(cfg: &Config) -> anyhow::Result<Vec<BtfRow>> {
    progress("kernel BTF parse + index");
    let libs = ["libbpf", "libbpf-1.7", "aya", "skelgen"];
    let mut rows: Vec<BtfRow> = libs
        .iter()
        .map(|lib| BtfRow {
            lib,
            series: Series::default(),
        })
        .collect();
    let iters = "3".to_string();
    for _ in 0..cfg.reps {
        for row in rows.iter_mut() {
            if row.series.error.is_some() {
                continue;
            }
            let r = if row.lib == "libbpf" {
                let mut args = vec!["btf".to_string(), iters.clone()];
                args.extend(kbtf::STRUCT_NAMES.iter().map(|s| s.to_string()));
                // libbpf has no index: its lookup column is the linear search.
                run_worker(HARNESS, &args).map(|Rows(r)| {
                    r.into_iter()
                        .map(|v| match v.as_slice() {
                            [parse, lookup, found] => vec![*parse, 0, *lookup, *found],
                            _ => v,
                        })
                        .collect::<Vec<_>>()
                })
            } else {
                let args = ["worker", "btf", row.lib, &iters].map(String::from);
                run_worker(&self_exe()?, &args).map(|Rows(r)| r)
            };
            match r {
                Ok(r) => row.series.add(r),
                Err(e) => row.series.error = Some(e.to_string()),
            }
        }
    }
    Ok(rows)
}

/// `[parse, index, relocate, relos]` per iteration.
fn core_relocation(cfg: &Config) -> anyhow::Result<Series<Vec<u64>>> {
    progress("CO-RE relocation (core_many)");
    let obj = repo_root().join("bench/objects/core_many.bpf.o");
    let mut s = Series::default();
    for _ in 0..cfg.reps {
        let args = [
            "worker".into(),
            "core".into(),
            obj.to_string_lossy().into_owned(),
            "read_many".into(),
            "3".into(),
        ];
        match run_worker(&self_exe()?, &args) {
            Ok(Rows(r)) => s.add(r),
            Err(e) => {
                s.error = Some(e.to_string());
                break;
            }
        }
    }
    Ok(s)
}

// ---- 4. ring buffer ----

#[derive(Debug, Clone)]
pub struct RingRow {
    pub lib: &'static str,
    /// `[samples, consume_ns]` per round, all rounds.
    pub rounds: Vec<Vec<u64>>,
    pub error: Option<String>,
}

pub fn ring_samples(cfg: &Config) -> u64 {
    if cfg.quick {
        100_000
    } else {
        1_000_000
    }
}

/// The consumers measured, in report order: (row name, harness or worker
/// arguments before OBJ SAMPLES ROUNDS, fixture). Perf buffer rows use a
/// quarter of the samples ([`perf_samples`]).
const CONSUMERS: [(&str, &[&str], &str); 6] = [
    ("libbpf", &["ringbuf"], "ringbuf_flood"),
    (
        "skelgen",
        &["worker", "ringbuf", "generic"],
        "ringbuf_flood",
    ),
    (
        "skelgen-boxed",
        &["worker", "ringbuf", "boxed"],
        "ringbuf_flood",
    ),
    (
        "skelgen-tokio",
        &["worker", "ringbuf", "tokio"],
        "ringbuf_flood",
    ),
    ("libbpf-perf", &["perfbuf"], "perfbuf"),
    ("skelgen-perf", &["worker", "perfbuf"], "perfbuf"),
];

/// Perf buffer samples per round: a quarter of the ring buffer's, because
/// the producer is slow (every `bpf_perf_event_output` with a wake-up per
/// sample queues irq work: ~8 s per million here), not the consumer.
pub fn perf_samples(cfg: &Config) -> u64 {
    ring_samples(cfg) / 4
}

fn ring_buffer(cfg: &Config) -> anyhow::Result<Vec<RingRow>> {
    progress("ring buffer and perf buffer throughput");
    let mut rows: Vec<RingRow> = CONSUMERS
        .iter()
        .map(|(lib, _, _)| RingRow {
            lib,
            rounds: Vec::new(),
            error: None,
        })
        .collect();
    for _ in 0..3 {
        for (row, (lib, args, fixture)) in rows.iter_mut().zip(CONSUMERS) {
            if row.error.is_some() {
                continue;
            }
            let obj = repo_root()
                .join(format!("tests/fixtures/{fixture}.bpf.o"))
                .to_string_lossy()
                .into_owned();
            let mut argv: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            let n = if fixture == "perfbuf" {
                perf_samples(cfg)
            } else {
                ring_samples(cfg)
            };
            argv.extend([obj, n.to_string(), "3".into()]);
            let r = if lib.starts_with("libbpf") {
                run_worker(HARNESS, &argv)
            } else {
                run_worker(&self_exe()?, &argv)
            };
            match r {
                Ok(Rows(r)) => row.rounds.extend(r),
                Err(e) => row.error = Some(e.to_string()),
            }
        }
    }
    Ok(rows)
}

/// Everything the report shows.
#[derive(Debug)]
pub struct Results {
    pub env: report::Environment,
    pub generation: Vec<GenRow>,
    /// The -g vmlinux.h object (`--g-object`), if given.
    pub generation_g: Vec<GenRow>,
    pub loads: Vec<LoadRow>,
    pub btf: Vec<BtfRow>,
    pub core: Series<Vec<u64>>,
    pub ring: Vec<RingRow>,
    pub sizes: Result<Vec<artifacts::Size>, String>,
    pub builds: Option<Result<Vec<artifacts::BuildTime>, String>>,
    pub samples: u64,
    pub perf_samples: u64,
}

pub fn run(cfg: Config) -> anyhow::Result<()> {
    if cfg.objects.is_empty() {
        bail!("no .bpf.o objects found");
    }
    let mut env = report::Environment::collect(&cfg);
    let generation_g = generation(&cfg, cfg.g_object.as_slice());
    let generation = generation(&cfg, &cfg.objects);
    let loads = loads(&cfg);
    let btf = kernel_btf(&cfg)?;
    let core = core_relocation(&cfg)?;
    let ring = ring_buffer(&cfg)?;
    progress("binary sizes");
    let sizes = artifacts::sizes().map_err(|e| crate::load::one_line(&e));
    let builds = cfg.build_time.then(|| {
        progress("build times (two clean cargo builds)");
        artifacts::build_times(&cfg).map_err(|e| crate::load::one_line(&e))
    });
    env.finish();
    let results = Results {
        env,
        generation,
        generation_g,
        loads,
        btf,
        core,
        ring,
        sizes,
        builds,
        samples: ring_samples(&cfg),
        perf_samples: perf_samples(&cfg),
    };
    let md = report::render(&cfg, &results);
    print!("{md}");
    if let Some(path) = &cfg.results {
        let previous = std::fs::read_to_string(path).unwrap_or_default();
        std::fs::write(path, splice(&previous, &md))
            .with_context(|| format!("cannot write {}", path.display()))?;
        progress(&format!("wrote {}", path.display()));
    }
    Ok(())
}

const BEGIN: &str = "<!-- BEGIN GENERATED by bench/run.sh: do not edit between these markers -->";
const END: &str = "<!-- END GENERATED -->";

/// `previous` with the text between the markers replaced by `md` (the
/// hand-written analysis around them is kept); the markers and `md` alone
/// when `previous` has none.
fn splice(previous: &str, md: &str) -> String {
    let generated = format!("{BEGIN}\n{md}{END}\n");
    match (previous.find(BEGIN), previous.find(END)) {
        (Some(b), Some(e)) if b < e => {
            let after = previous.get(e + END.len()..).unwrap_or("");
            let after = after.strip_prefix('\n').unwrap_or(after);
            format!("{}{generated}{after}", previous.get(..b).unwrap_or(""))
        }
        _ => generated,
    }
}
