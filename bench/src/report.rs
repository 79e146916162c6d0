//! The markdown report: environment, one table per measurement, and a
//! one-line summary against the targets.

use std::fmt::Write as _;
use std::process::Command;

use crate::artifacts;
use crate::load::LoadSample;
use crate::measure::{geomean, median, ms, ratio, ratio_cell};
use crate::suite::{repo_root, Config, Results, Series, LOAD_LIBS};

/// Where and with what the numbers were taken.
#[derive(Debug, Clone)]
pub struct Environment {
    pub date: String,
    pub cpus: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub load_start: String,
    pub load_end: String,
    pub versions: Vec<(String, String)>,
}

fn first_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(|l| l.trim().to_string())
        })
        .unwrap_or_else(|| "?".into())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// `version` of package `name` in bench/Cargo.lock.
fn locked(name: &str) -> String {
    let lock = std::fs::read_to_string(repo_root().join("bench/Cargo.lock")).unwrap_or_default();
    let needle = format!("name = \"{name}\"\nversion = \"");
    lock.find(&needle)
        .and_then(|i| lock.get(i + needle.len()..))
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("?")
        .to_string()
}

impl Environment {
    pub fn collect(cfg: &Config) -> Environment {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, m)| m.trim().to_string())
            })
            .unwrap_or_else(|| "?".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "?".into());
        let root = repo_root();
        let root_s = root.to_string_lossy().into_owned();
        let git = first_line("git", &["-C", &root_s, "rev-parse", "--short", "HEAD"]);
        let bpftool = Command::new("bpftool")
            .arg("version")
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .take(2)
                    .map(str::trim)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_else(|_| "?".into());
        let versions = vec![
            (
                "skelgen".into(),
                format!(
                    "{} (git {git}, working tree as built)",
                    first_line(&cfg.skelgen, &["--version"])
                ),
            ),
            ("bpftool".into(), bpftool),
            (
                "libbpf (C harness)".into(),
                format!(
                    "system libbpf {} (Debian libbpf-dev)",
                    first_line("pkg-config", &["--modversion", "libbpf"])
                ),
            ),
            (
                "libbpf-rs".into(),
                format!(
                    "{} on libbpf-sys {} (vendored libbpf, static)",
                    locked("libbpf-rs"),
                    locked("libbpf-sys")
                ),
            ),
            (
                "aya".into(),
                format!("{} (aya-obj {})", locked("aya"), locked("aya-obj")),
            ),
            ("rustc".into(), first_line("rustc", &["--version"])),
            ("clang".into(), first_line("clang", &["--version"])),
        ];
        Environment {
            date: first_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model,
            kernel,
            load_start: loadavg(),
            load_end: String::new(),
            versions,
        }
    }

    pub fn finish(&mut self) {
        self.load_end = loadavg();
    }
}

fn med_of<T>(v: &[T], f: impl Fn(&T) -> u64) -> Option<u64> {
    median(&v.iter().map(f).collect::<Vec<_>>())
}

fn cell(v: Option<u64>) -> String {
    v.map_or_else(|| "–".into(), ms)
}

/// A target line: measured ratio, the goal, met or not.
struct Target {
    what: &'static str,
    value: Option<f64>,
    goal: f64,
    /// `true` when lower is better.
    lower: bool,
}

impl Target {
    fn met(&self) -> Option<bool> {
        self.value.map(|v| {
            if self.lower {
                v <= self.goal
            } else {
                v >= self.goal
            }
        })
    }

    fn summary(&self) -> String {
        let mark = match self.met() {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "not measured",
        };
        format!(
            "{} {} (target {}{:.2}x, {mark})",
            self.what,
            ratio_cell(self.value),
            if self.lower { "<= " } else { ">= " },
            self.goal
        )
    }
}

pub fn render(cfg: &Config, r: &Results) -> String {
    let mut md = String::new();
    let e = &r.env;
    let _ = writeln!(md, "# skelgen benchmarks\n");
    let _ = writeln!(
        md,
        "Taken {} on {} CPUs ({}), kernel {}; load average {} at the start, {} at the end \
         (other people were compiling on this machine: expect noise).{}\n",
        e.date,
        e.cpus,
        e.cpu_model,
        e.kernel,
        e.load_start,
        e.load_end,
        if cfg.quick {
            " **Quick run** (`--quick`): few repetitions."
        } else {
            ""
        }
    );
    let _ = writeln!(md, "| compared | version |\n| --- | --- |");
    for (k, v) in &e.versions {
        let _ = writeln!(md, "| {k} | {v} |");
    }
    let mut targets = Vec::new();

    // 1. generation
    let _ = writeln!(
        md,
        "\n## 1. Skeleton generation\n\nWhole process (`skelgen OBJ` vs `bpftool gen skeleton OBJ`, \
         output to /dev/null), median of {} runs, ms.\n",
        cfg.reps.max(11)
    );
    let _ = writeln!(
        md,
        "| object | skelgen | bpftool | skelgen / bpftool |\n| --- | ---: | ---: | ---: |"
    );
    let mut gen_ratios = Vec::new();
    for g in &r.generation {
        let s = g.skelgen.as_ref().ok().and_then(|v| median(v));
        let b = g.bpftool.as_ref().ok().and_then(|v| median(v));
        let rt = s.zip(b).and_then(|(s, b)| ratio(s, b));
        if let Some(x) = rt {
            gen_ratios.push(x);
        }
        let sc = match &g.skelgen {
            Err(err) => format!("fails: {}", short(err)),
            Ok(_) => cell(s),
        };
        let bc = match &g.bpftool {
            Err(err) => format!("fails: {}", short(err)),
            Ok(_) => cell(b),
        };
        let _ = writeln!(md, "| {} | {sc} | {bc} | {} |", g.object, ratio_cell(rt));
    }
    let gen_gm = geomean(&gen_ratios);
    let _ = writeln!(
        md,
        "| **geometric mean** | | | **{}** |",
        ratio_cell(gen_gm)
    );
    targets.push(Target {
        what: "generation",
        value: gen_gm,
        goal: 1.5,
        lower: true,
    });
    let mut g_ratio = None;
    for g in &r.generation_g {
        let s = g.skelgen.as_ref().ok().and_then(|v| median(v));
        let b = g.bpftool.as_ref().ok().and_then(|v| median(v));
        g_ratio = s.zip(b).and_then(|(s, b)| ratio(s, b));
        let _ = writeln!(
            md,
            "\nA libbpf-tools-style object built with `-g` against a full `vmlinux.h` (`bpftool btf \
             dump file /sys/kernel/btf/vmlinux format c`; source `skelgen/tests/data/exec_vmlinux.bpf.c`, \
             built by run.sh), whose DWARF describes every kernel type it reads: `{}` skelgen {} ms, \
             bpftool {} ms, **{}**.",
            g.object,
            cell(s),
            cell(b),
            ratio_cell(g_ratio)
        );
    }
    targets.push(Target {
        what: "generation, -g vmlinux.h object",
        value: g_ratio,
        goal: 0.7,
        lower: true,
    });

    // 2. loads
    render_loads(&mut md, cfg, r, &mut targets);

    // 3. BTF + CO-RE
    let _ = writeln!(
        md,
        "\n## 3. Kernel BTF\n\n`/sys/kernel/btf/vmlinux`: read + parse, name index, then \
         looking up the {} struct names of `core_many` (by kind STRUCT). First iteration in a \
         fresh process, median of {} processes, ms. libbpf: `btf__load_vmlinux_btf` (no \
         index; `btf__find_by_name_kind` is a linear scan), the system's libbpf 1.1 (which \
         reads the file; the target's reference) and libbpf-rs's vendored 1.7 (which maps it, \
         as skelgen does on kernels that allow it, 6.16+); aya: `Btf::from_sys_fs` and \
         `id_by_type_name_kind`; skelgen: `Btf::from_file` + `build_name_index` + \
         `find_by_name_kind`.\n",
        crate::kbtf::STRUCT_NAMES.len(),
        cfg.reps
    );
    let _ = writeln!(
        md,
        "| library | read + parse | name index | lookups | parse + index | parse + index + lookups | vs libbpf (parse + index) | later iterations: parse + index |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    let libbpf_pi = r
        .btf
        .iter()
        .find(|b| b.lib == "libbpf")
        .and_then(|b| med_of(&b.series.cold, |v| v[0] + v[1]));
    let mut btf_ratio = None;
    for b in &r.btf {
        if let Some(err) = &b.series.error {
            let _ = writeln!(md, "| {} | fails: {} | | | | | | |", b.lib, short(err));
            continue;
        }
        let c = &b.series.cold;
        let pi = med_of(c, |v| v[0] + v[1]);
        let rt = pi.zip(libbpf_pi).and_then(|(a, l)| ratio(a, l));
        if b.lib == "skelgen" {
            btf_ratio = rt;
        }
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            b.lib,
            cell(med_of(c, |v| v[0])),
            if b.lib == "skelgen" {
                cell(med_of(c, |v| v[1]))
            } else {
                "–".into()
            },
            cell(med_of(c, |v| v[2])),
            cell(pi),
            cell(med_of(c, |v| v[0] + v[1] + v[2])),
            ratio_cell(rt),
            cell(med_of(&b.series.warm, |v| v[0] + v[1])),
        );
    }
    targets.push(Target {
        what: "vmlinux BTF parse + index",
        value: btf_ratio,
        goal: 1.0,
        lower: true,
    });
    render_core(&mut md, cfg, r);

    // 4. ring buffer and perf buffer
    render_consumers(&mut md, r, &mut targets);

    // 5. sizes and build times
    let _ = writeln!(
        md,
        "\n## 5. Release binary size and build time\n\nThe same vfsstat tool \
         (`bench/tools/vfsstat-*`), stripped with `strip`: with the default release \
         profile (the target's row), and both again with a size profile (`opt-level = \"s\"`, \
         `lto = true`, `codegen-units = 1`, `panic = \"abort\"`), what a user who cares about \
         size sets.\n"
    );
    let mut size_ratio = None;
    match &r.sizes {
        Err(err) => {
            let _ = writeln!(md, "Not measured: {err}\n");
        }
        Ok(sizes) => {
            let _ = writeln!(
                md,
                "| binary | profile | unstripped bytes | stripped bytes | shared libraries beyond libc |\n| --- | --- | ---: | ---: | --- |"
            );
            for s in sizes {
                let libs = if s.extra_libs.is_empty() {
                    "none".to_string()
                } else {
                    s.extra_libs
                        .iter()
                        .map(|(n, b)| format!("{n} ({b} bytes)"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {libs} |",
                    s.binary, s.profile, s.unstripped, s.stripped
                );
            }
            // What a user ships: the binary plus the shared libraries it
            // needs beyond libc (libbpf-rs's libelf and libz).
            let shipped = |x: &artifacts::Size| {
                x.stripped + x.extra_libs.iter().map(|(_, b)| *b).sum::<u64>()
            };
            for profile in ["release", "size"] {
                let find = |b: &str| sizes.iter().find(|s| s.binary == b && s.profile == profile);
                let (Some(sk), Some(lr)) = (find("vfsstat-skelgen"), find("vfsstat-libbpf-rs"))
                else {
                    continue;
                };
                let shipped_ratio = ratio(shipped(sk), shipped(lr));
                let (label, bold) = match profile {
                    "release" => ("default release profile", "**"),
                    _ => ("size profile", ""),
                };
                if profile == "release" {
                    size_ratio = shipped_ratio;
                }
                let _ = writeln!(
                    md,
                    "\n{label}: stripped skelgen / libbpf-rs {}; counting the shared libraries \
                     each needs beyond libc (what a user ships): {bold}{}{bold}.",
                    ratio_cell(ratio(sk.stripped, lr.stripped)),
                    ratio_cell(shipped_ratio)
                );
            }
        }
    }
    targets.push(Target {
        what: "release binary",
        value: size_ratio,
        goal: 0.8,
        lower: true,
    });
    match &r.builds {
        None => {
            let _ = writeln!(
                md,
                "\nBuild times: not measured (`--quick` or `--no-build-time`)."
            );
        }
        Some(Err(err)) => {
            let _ = writeln!(md, "\nBuild times: failed: {err}");
        }
        Some(Ok(b)) => {
            let _ = writeln!(
                md,
                "\n`cargo build --release --offline` of two tiny crates (`bench/buildtime/*`: \
                 open, load, read `.bss`) from an empty target dir, then again after touching \
                 `src/main.rs`; one run each, s.\n"
            );
            let _ = writeln!(md, "| crate | skeleton from | clean build | rebuild after touch |\n| --- | --- | ---: | ---: |");
            for x in b {
                let _ = writeln!(
                    md,
                    "| {} | {} | {:.1} | {:.2} |",
                    x.krate,
                    x.how,
                    x.clean_ns as f64 / 1e9,
                    x.rebuild_ns as f64 / 1e9
                );
            }
        }
    }

    // Summary
    let _ = writeln!(md, "\n## Summary\n");
    let line = targets
        .iter()
        .map(Target::summary)
        .collect::<Vec<_>>()
        .join("; ");
    let missed = targets.iter().filter(|t| t.met() == Some(false)).count();
    let _ = writeln!(
        md,
        "**{} of {} targets met.** {line}.",
        targets.iter().filter(|t| t.met() == Some(true)).count(),
        targets.len()
    );
    let _ = missed;
    md
}

/// Section 4: one row per consumer, ratios against libbpf's consumer of the
/// same buffer kind (and the tokio consumer against the sync one).
fn render_consumers(md: &mut String, r: &Results, targets: &mut Vec<Target>) {
    let _ = writeln!(
        md,
        "\n## 4. Ring buffer and perf buffer consumption\n\n`ringbuf_flood` (ring buffer) and \
         `perfbuf` (perf buffer) run by BPF_PROG_TEST_RUN with repeat {} (perf buffer: {}, its \
         producer is slow) into buffers sized to hold every sample (32 bytes each in either), \
         then consumed with `poll` until all are \
         seen (the callback reads each sample's sequence number). Only consumption is timed; \
         median of 9 rounds (3 processes x 3), of the consuming thread's CPU time \
         (`CLOCK_THREAD_CPUTIME_ID`; the consumer never sleeps, as every sample is in the buffer \
         before its clock starts, so on a quiet machine this is its wall time, and on a busy one \
         it leaves out the time it was descheduled). skelgen's ring buffer three ways: \
         `RingBuffer::new` (the walk compiled for the closure), `RingBuffer::builder()` (a \
         boxed closure per map), `AsyncRingBuffer` (tokio current-thread runtime, \
         `next_batch().await`).\n",
        r.samples, r.perf_samples
    );
    let _ = writeln!(
        md,
        "| consumer | median consume, CPU (ms) | wall (ms) | samples/s (CPU) | vs libbpf |\n| --- | ---: | ---: | ---: | ---: |"
    );
    let med = |lib: &str| {
        r.ring
            .iter()
            .find(|x| x.lib == lib && x.error.is_none())
            .and_then(|x| med_of(&x.rounds, |v| v.get(2).copied().unwrap_or(v[1])))
    };
    let wall = |lib: &str| {
        r.ring
            .iter()
            .find(|x| x.lib == lib && x.error.is_none())
            .and_then(|x| med_of(&x.rounds, |v| v[1]))
    };
    // Throughput ratio: their time / our time.
    let vs = |ours: &str, theirs: &str| med(ours).zip(med(theirs)).and_then(|(o, t)| ratio(t, o));
    for x in &r.ring {
        let title = match x.lib {
            "libbpf" => "libbpf `ring_buffer__poll`",
            "skelgen" => "skelgen `RingBuffer::new` + `poll`",
            "skelgen-boxed" => "skelgen `RingBuffer::builder` + `poll`",
            "skelgen-tokio" => "skelgen `AsyncRingBuffer::next_batch`",
            "libbpf-perf" => "libbpf `perf_buffer__poll`",
            "skelgen-perf" => "skelgen `PerfBuffer::poll`",
            other => other,
        };
        if let Some(err) = &x.error {
            let _ = writeln!(md, "| {title} | fails: {} | | | |", short(err));
            continue;
        }
        let m = med(x.lib);
        let n = if x.lib.ends_with("-perf") {
            r.perf_samples
        } else {
            r.samples
        };
        let rate = m.map(|ns| n as f64 / (ns as f64 / 1e9));
        let base = if x.lib.ends_with("-perf") {
            "libbpf-perf"
        } else {
            "libbpf"
        };
        let _ = writeln!(
            md,
            "| {title} | {} | {} | {} | {} |",
            cell(m),
            cell(wall(x.lib)),
            rate.map_or_else(|| "–".into(), |r| format!("{:.1} M", r / 1e6)),
            ratio_cell(vs(x.lib, base))
        );
    }
    let tokio = vs("skelgen-tokio", "skelgen");
    let _ = writeln!(
        md,
        "\ntokio consumer / sync consumer (`RingBuffer::new`), throughput: **{}**.",
        ratio_cell(tokio)
    );
    targets.push(Target {
        what: "ring buffer throughput",
        value: vs("skelgen", "libbpf"),
        goal: 1.2,
        lower: false,
    });
    targets.push(Target {
        what: "perf buffer throughput",
        value: vs("skelgen-perf", "libbpf-perf"),
        goal: 1.0,
        lower: false,
    });
    targets.push(Target {
        what: "tokio ring buffer / sync",
        value: tokio,
        goal: 0.8,
        lower: false,
    });
}

fn short(s: &str) -> String {
    let s = s.replace('|', "/");
    if s.len() > 140 {
        let mut cut = 140;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}…", &s[..cut])
    } else {
        s
    }
}

fn lib_title(lib: &str) -> &str {
    match lib {
        "skelgen-auto" => "skelgen, Auto CO-RE",
        "libbpf" => "libbpf (C)",
        "skelgen-kernel" => "skelgen, kernel CO-RE",
        "skelgen-user" => "skelgen, user CO-RE",
        other => other,
    }
}

fn render_loads(md: &mut String, cfg: &Config, r: &Results, targets: &mut Vec<Target>) {
    let _ = writeln!(
        md,
        "\n## 2. Open + load + attach + destroy\n\n\
         Each sample is a fresh process (so the first load pays for reading kernel BTF, as a \
         tool does); {} processes per object and library, interleaved. A cell is \
         `wall / outside bpf()` in ms: outside bpf() = wall minus the time inside the bpf() and \
         perf_event_open() syscalls, counted exactly by a `syscall()` wrapper linked into every \
         measured process (`bench/c/bpf_time.c`), i.e. the library's own user-space work plus its \
         other syscalls (file reads, mmap, close). libbpf always relocates CO-RE in user space; \
         skelgen is shown with CO-RE done by the kernel at BPF_PROG_LOAD and in user space. aya \
         has no separate open step. Objects libbpf cannot load on this kernel are listed but not \
         measured.\n",
        cfg.reps
    );
    let header = |md: &mut String, extra: &str| {
        let mut h = String::from("| object |");
        let mut a = String::from("| --- |");
        for lib in LOAD_LIBS {
            let _ = write!(h, " {} |", lib_title(lib));
            a.push_str(" ---: |");
        }
        let _ = writeln!(
            md,
            "{h}{extra}\n{a}{}",
            " ---: |".repeat(extra.matches('|').count())
        );
    };
    let libbpf = 0;
    let sk_kernel = 3;

    // 2a: open + load, cold.
    let _ = writeln!(
        md,
        "### 2a. open + load, first in process (wall / outside bpf())\n"
    );
    header(
        md,
        " outside bpf(): skelgen-k / libbpf | wall: skelgen-k / libbpf |",
    );
    let mut user_ratios = Vec::new();
    let mut errors = Vec::new();
    for row in &r.loads {
        let mut line = format!("| {} |", row.object);
        for (i, s) in row.libs.iter().enumerate() {
            let c = match &s.error {
                Some(err) => {
                    errors.push(format!("{} / {}: {}", row.object, LOAD_LIBS[i], short(err)));
                    "fails".to_string()
                }
                None => format!(
                    "{} / {}",
                    cell(med_of(&s.cold, LoadSample::open_load)),
                    cell(med_of(&s.cold, LoadSample::open_load_user))
                ),
            };
            let _ = write!(line, " {c} |");
        }
        let (l, k) = (&row.libs[libbpf], &row.libs[sk_kernel]);
        let ok = l.error.is_none() && k.error.is_none();
        let ru = ok
            .then(|| {
                med_of(&k.cold, LoadSample::open_load_user)
                    .zip(med_of(&l.cold, LoadSample::open_load_user))
                    .and_then(|(a, b)| ratio(a, b))
            })
            .flatten();
        let rw = ok
            .then(|| {
                med_of(&k.cold, LoadSample::open_load)
                    .zip(med_of(&l.cold, LoadSample::open_load))
                    .and_then(|(a, b)| ratio(a, b))
            })
            .flatten();
        if let Some(x) = ru {
            user_ratios.push(x);
        }
        let _ = writeln!(md, "{line} {} | {} |", ratio_cell(ru), ratio_cell(rw));
    }
    let user_gm = geomean(&user_ratios);
    let _ = writeln!(
        md,
        "\nGeometric mean, outside bpf(), skelgen (kernel CO-RE) / libbpf: **{}**.\n",
        ratio_cell(user_gm)
    );
    targets.push(Target {
        what: "open+load user-space",
        value: user_gm,
        goal: 0.4,
        lower: true,
    });
    // core_many with the default CoreMode::Auto, wall.
    let core_many = r
        .loads
        .iter()
        .find(|x| x.object == "core_many.bpf.o")
        .and_then(|row| {
            let (l, a) = (&row.libs[libbpf], &row.libs[5]);
            (l.error.is_none() && a.error.is_none())
                .then(|| {
                    med_of(&a.cold, LoadSample::open_load)
                        .zip(med_of(&l.cold, LoadSample::open_load))
                        .and_then(|(a, b)| ratio(a, b))
                })
                .flatten()
        });
    let _ = writeln!(
        md,
        "`core_many` open + load wall, skelgen with the default `CoreMode::Auto` / libbpf: **{}**.\n",
        ratio_cell(core_many)
    );
    targets.push(Target {
        what: "core_many open+load wall (CoreMode::Auto)",
        value: core_many,
        goal: 0.35,
        lower: true,
    });

    // 2b: total.
    let _ = writeln!(
        md,
        "### 2b. open + load + attach + destroy, first in process (wall ms; links attached)\n"
    );
    header(md, " skelgen-k / libbpf |");
    let mut total_ratios = Vec::new();
    for row in &r.loads {
        let mut line = format!("| {} |", row.object);
        for s in &row.libs {
            let c = match &s.error {
                Some(_) => "fails".to_string(),
                None => format!(
                    "{} ({})",
                    cell(med_of(&s.cold, LoadSample::total)),
                    med_of(&s.cold, |x| x.links).unwrap_or(0)
                ),
            };
            let _ = write!(line, " {c} |");
        }
        let (l, k) = (&row.libs[libbpf], &row.libs[sk_kernel]);
        let rt = (l.error.is_none() && k.error.is_none())
            .then(|| {
                med_of(&k.cold, LoadSample::total)
                    .zip(med_of(&l.cold, LoadSample::total))
                    .and_then(|(a, b)| ratio(a, b))
            })
            .flatten();
        if let Some(x) = rt {
            total_ratios.push(x);
        }
        let _ = writeln!(md, "{line} {} |", ratio_cell(rt));
    }
    let total_gm = geomean(&total_ratios);
    let _ = writeln!(
        md,
        "\nGeometric mean, total wall, skelgen (kernel CO-RE) / libbpf: **{}**. Where the \
         phases go (medians, ms, libbpf -> skelgen kernel CO-RE): {}\n",
        ratio_cell(total_gm),
        phase_split(r)
    );
    targets.push(Target {
        what: "open+load+attach+destroy wall",
        value: total_gm,
        goal: 0.9,
        lower: true,
    });

    // 2c: warm.
    let _ = writeln!(
        md,
        "### 2c. open + load, later loads in the same process (wall / outside bpf())\n\n\
         skelgen keeps the parsed kernel BTF for the process; libbpf, libbpf-rs and aya \
         read it again for every object that needs it.\n"
    );
    header(md, " outside bpf(): skelgen-k / libbpf |");
    let mut warm_ratios = Vec::new();
    for row in &r.loads {
        let mut line = format!("| {} |", row.object);
        for s in &row.libs {
            let c = match &s.error {
                Some(_) => "fails".to_string(),
                None => format!(
                    "{} / {}",
                    cell(med_of(&s.warm, LoadSample::open_load)),
                    cell(med_of(&s.warm, LoadSample::open_load_user))
                ),
            };
            let _ = write!(line, " {c} |");
        }
        let (l, k) = (&row.libs[libbpf], &row.libs[sk_kernel]);
        let rt = (l.error.is_none() && k.error.is_none())
            .then(|| {
                med_of(&k.warm, LoadSample::open_load_user)
                    .zip(med_of(&l.warm, LoadSample::open_load_user))
                    .and_then(|(a, b)| ratio(a, b))
            })
            .flatten();
        if let Some(x) = rt {
            warm_ratios.push(x);
        }
        let _ = writeln!(md, "{line} {} |", ratio_cell(rt));
    }
    let warm_gm = geomean(&warm_ratios);
    let _ = writeln!(
        md,
        "\nGeometric mean, later loads, outside bpf(), skelgen (kernel CO-RE) / libbpf: **{}**.",
        ratio_cell(warm_gm)
    );
    targets.push(Target {
        what: "open+load user-space, later loads",
        value: warm_gm,
        goal: 0.3,
        lower: true,
    });
    // Destroy of the tracepoint-heavy object.
    let destroy = r
        .loads
        .iter()
        .find(|x| x.object == "tp_many.bpf.o")
        .and_then(|row| {
            let (l, k) = (&row.libs[libbpf], &row.libs[sk_kernel]);
            let d = |s: &Series<LoadSample>| med_of(&s.cold, |x| x.destroy);
            let (ld, kd) = (d(l), d(k));
            let _ = writeln!(
                md,
                "\nDestroy of `tp_many.bpf.o` (16 tracepoint links): libbpf {} ms, skelgen {} ms \
                 (links released together: `attach::release_all`).",
                cell(ld),
                cell(kd)
            );
            kd.zip(ld).and_then(|(a, b)| ratio(a, b))
        });
    targets.push(Target {
        what: "tracepoint-heavy destroy",
        value: destroy,
        goal: 0.5,
        lower: true,
    });
    if !errors.is_empty() {
        let _ = writeln!(md, "\nNot measured (first error of each):\n");
        for e in errors {
            let _ = writeln!(md, "- {e}");
        }
    }
}

/// Median phase times summed over the objects both libbpf and skelgen load.
fn phase_split(r: &Results) -> String {
    let mut sums = [[0u64; 4]; 2];
    for row in &r.loads {
        let (l, k) = (&row.libs[0], &row.libs[3]);
        if l.error.is_some() || k.error.is_some() {
            continue;
        }
        for (i, s) in [l, k].iter().enumerate() {
            let phases: [fn(&LoadSample) -> u64; 4] =
                [|x| x.open, |x| x.load, |x| x.attach, |x| x.destroy];
            for (j, f) in phases.iter().enumerate() {
                sums[i][j] += med_of(&s.cold, f).unwrap_or(0);
            }
        }
    }
    let names = ["open", "load", "attach", "destroy"];
    names
        .iter()
        .enumerate()
        .map(|(j, n)| format!("{n} {} -> {}", ms(sums[0][j]), ms(sums[1][j])))
        .collect::<Vec<_>>()
        .join(", ")
}

fn render_core(md: &mut String, cfg: &Config, r: &Results) {
    let _ = writeln!(
        md,
        "\n### CO-RE relocation, many kernel types\n\n`bench/objects/core_many.bpf.o`: one \
         program, {} kernel structs, {} relocations (a field offset and a type size each). \
         The whole load is in section 2 (row `core_many.bpf.o`); here skelgen's \
         `relocate_program` alone, with a fresh `CoreTarget` (empty candidate cache) each \
         time, {} processes x 3 iterations, ms.\n",
        crate::kbtf::STRUCT_NAMES.len(),
        r.core
            .cold
            .first()
            .and_then(|v| v.get(3))
            .copied()
            .unwrap_or(0),
        cfg.reps
    );
    if let Some(err) = &r.core.error {
        let _ = writeln!(md, "Not measured: {}", short(err));
        return;
    }
    let _ = writeln!(
        md,
        "| | kernel BTF read + parse | name index | relocate |\n| --- | ---: | ---: | ---: |"
    );
    let _ = writeln!(
        md,
        "| first in process | {} | {} | {} |",
        cell(med_of(&r.core.cold, |v| v[0])),
        cell(med_of(&r.core.cold, |v| v[1])),
        cell(med_of(&r.core.cold, |v| v[2]))
    );
    let _ = writeln!(
        md,
        "| later (BTF kept) | – | – | {} |",
        cell(med_of(&r.core.warm, |v| v[2]))
    );
    let row = r.loads.iter().find(|x| x.object == "core_many.bpf.o");
    if let Some(row) = row {
        let get = |i: usize| -> String {
            let s: &Series<LoadSample> = &row.libs[i];
            if s.error.is_some() {
                return "fails".into();
            }
            cell(med_of(&s.cold, LoadSample::open_load_user))
        };
        let _ = writeln!(
            md,
            "\nWhole open + load of `core_many` outside bpf() (first in process): libbpf {}, \
             libbpf-rs {}, aya {}, skelgen user CO-RE {}, skelgen kernel CO-RE {} ms.",
            get(0),
            get(1),
            get(2),
            get(4),
            get(3)
        );
    }
}
