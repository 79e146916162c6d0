//! One open + load + attach + destroy cycle per library, in-process.
//!
//! Each worker prints, per iteration, the line the C harness prints:
//! `ok OPEN LOAD ATTACH DESTROY KERNEL_OPEN_LOAD KERNEL_ALL LINKS` (ns; the
//! KERNEL columns are time inside bpf()/perf_event_open()). "attach" means
//! what a skeleton's attach() does: every program whose section names its
//! target is attached; the rest (xdp, tc, bare uprobe, ...) are skipped.

use std::collections::HashMap;
use std::os::fd::AsFd as _;
use std::time::Instant;

use anyhow::{bail, Context as _};

use crate::measure::{kernel_ns, since};

/// One iteration's numbers.
#[derive(Debug, Default, Clone, Copy)]
pub struct LoadSample {
    pub open: u64,
    pub load: u64,
    pub attach: u64,
    pub destroy: u64,
    pub kernel_open_load: u64,
    pub kernel_all: u64,
    pub links: u64,
}

impl LoadSample {
    pub fn print(&self) {
        println!(
            "ok {} {} {} {} {} {} {}",
            self.open,
            self.load,
            self.attach,
            self.destroy,
            self.kernel_open_load,
            self.kernel_all,
            self.links
        );
    }

    pub fn from_row(row: &[u64]) -> Option<Self> {
        match *row {
            [open, load, attach, destroy, kernel_open_load, kernel_all, links] => {
                Some(LoadSample {
                    open,
                    load,
                    attach,
                    destroy,
                    kernel_open_load,
                    kernel_all,
                    links,
                })
            }
            _ => None,
        }
    }

    pub fn open_load(&self) -> u64 {
        self.open + self.load
    }

    /// open + load time outside bpf()/perf_event_open(): the library's own work.
    pub fn open_load_user(&self) -> u64 {
        self.open_load().saturating_sub(self.kernel_open_load)
    }

    pub fn total(&self) -> u64 {
        self.open + self.load + self.attach + self.destroy
    }
}

/// The libraries measured in-process by this binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lib {
    SkelgenKernelCore,
    SkelgenUserCore,
    SkelgenAutoCore,
    LibbpfRs,
    Aya,
}

impl Lib {
    pub fn parse(s: &str) -> anyhow::Result<Lib> {
        Ok(match s {
            "skelgen-kernel" => Lib::SkelgenKernelCore,
            "skelgen-user" => Lib::SkelgenUserCore,
            "skelgen-auto" => Lib::SkelgenAutoCore,
            "libbpf-rs" => Lib::LibbpfRs,
            "aya" => Lib::Aya,
            _ => bail!("unknown library {s}"),
        })
    }
}

/// `worker load LIB OBJ ITERS`.
pub fn worker(lib: Lib, path: &str, iters: usize) -> anyhow::Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {path}"))?;
    let name = skelgen_runtime::obj::object_name_from_path(path);
    // Section names for aya, which attaches by explicit calls (parsed once,
    // outside the timing). Only for aya: parsing here would warm skelgen's
    // code and allocator before its "first in process" sample.
    let sections = if lib == Lib::Aya {
        sections(&bytes, &name)?
    } else {
        HashMap::new()
    };
    if lib == Lib::LibbpfRs {
        libbpf_rs::set_print(None);
    }
    for _ in 0..iters {
        let s = match lib {
            Lib::SkelgenKernelCore => {
                skelgen(&bytes, &name, skelgen_runtime::loader::CoreMode::Kernel)
            }
            Lib::SkelgenUserCore => skelgen(&bytes, &name, skelgen_runtime::loader::CoreMode::User),
            Lib::SkelgenAutoCore => skelgen(&bytes, &name, skelgen_runtime::loader::CoreMode::Auto),
            Lib::LibbpfRs => libbpf_rs_cycle(&bytes, &name),
            Lib::Aya => aya_cycle(&bytes, &sections),
        };
        match s {
            Ok(s) => s.print(),
            Err(e) => {
                println!("error {}", one_line(&e));
                std::process::exit(2);
            }
        }
    }
    Ok(())
}

/// An error and its causes on one line.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut s = String::new();
    for (i, c) in e.chain().enumerate() {
        if i > 0 {
            s.push_str(": ");
        }
        s.push_str(&c.to_string().replace('\n', " "));
    }
    s
}

fn sections(bytes: &[u8], name: &str) -> anyhow::Result<HashMap<String, String>> {
    let obj = skelgen_runtime::obj::Object::parse(bytes, name).context("parsing the object")?;
    Ok(obj
        .programs
        .iter()
        .map(|p| (p.name.clone(), p.section.clone()))
        .collect())
}

fn skelgen(
    bytes: &[u8],
    name: &str,
    core: skelgen_runtime::loader::CoreMode,
) -> anyhow::Result<LoadSample> {
    use skelgen_runtime::loader::{OpenObject, OpenOptions};

    let k0 = kernel_ns();
    let t0 = Instant::now();
    let opts = OpenOptions {
        core,
        ..OpenOptions::default()
    };
    let open = OpenObject::open(bytes, name, opts).context("open")?;
    let open_ns = since(t0);
    let t1 = Instant::now();
    let loaded = open.load().context("load")?;
    let load_ns = since(t1);
    let kernel_open_load = kernel_ns() - k0;
    let t2 = Instant::now();
    let mut links = Vec::new();
    for (i, p) in loaded.object().programs.iter().enumerate() {
        let Some(fd) = loaded.prog_fd(i) else {
            continue;
        };
        if let Some(link) = skelgen_runtime::attach::auto_attach(fd.as_fd(), &p.name, &p.section)
            .with_context(|| format!("attach {}", p.name))?
        {
            links.push(link);
        }
    }
    let attach_ns = since(t2);
    let n = links.len() as u64;
    let t3 = Instant::now();
    // What a generated skeleton's links do on drop.
    skelgen_runtime::attach::release_all(links);
    drop(loaded);
    let destroy_ns = since(t3);
    Ok(LoadSample {
        open: open_ns,
        load: load_ns,
        attach: attach_ns,
        destroy: destroy_ns,
        kernel_open_load,
        kernel_all: kernel_ns() - k0,
        links: n,
    })
}

fn libbpf_rs_cycle(bytes: &[u8], name: &str) -> anyhow::Result<LoadSample> {
    let k0 = kernel_ns();
    let t0 = Instant::now();
    let mut builder = libbpf_rs::ObjectBuilder::default();
    builder.name(name).context("object name")?;
    let open = builder.open_memory(bytes).context("open")?;
    let open_ns = since(t0);
    let t1 = Instant::now();
    let obj = open.load().context("load")?;
    let load_ns = since(t1);
    let kernel_open_load = kernel_ns() - k0;
    let t2 = Instant::now();
    let mut links = Vec::new();
    for prog in obj.progs_mut() {
        if !prog.autoload() {
            continue;
        }
        match prog.attach() {
            Ok(link) => links.push(link),
            // No auto-attach for this section (libbpf's EOPNOTSUPP).
            Err(e) if e.kind() == libbpf_rs::ErrorKind::Unsupported => {}
            Err(e) => return Err(e).context("attach"),
        }
    }
    let attach_ns = since(t2);
    let n = links.len() as u64;
    let t3 = Instant::now();
    drop(links);
    drop(obj);
    let destroy_ns = since(t3);
    Ok(LoadSample {
        open: open_ns,
        load: load_ns,
        attach: attach_ns,
        destroy: destroy_ns,
        kernel_open_load,
        kernel_all: kernel_ns() - k0,
        links: n,
    })
}

/// aya has no separate open step and no auto-attach: `EbpfLoader::load`
/// (which reads the kernel BTF) plus a typed `load()` per program count as
/// "load"; attach covers the sections that name their target (tracepoint,
/// raw_tp, tp_btf), which is what the other libraries auto-attach here.
fn aya_cycle(bytes: &[u8], sections: &HashMap<String, String>) -> anyhow::Result<LoadSample> {
    use aya::programs::Program;

    let k0 = kernel_ns();
    let t1 = Instant::now();
    let mut ebpf = aya::EbpfLoader::new()
        .load(bytes)
        .context("EbpfLoader::load")?;
    let mut vmlinux: Option<aya::Btf> = None;
    for (name, prog) in ebpf.programs_mut() {
        let section = sections.get(name).map(String::as_str).unwrap_or("");
        let r = match prog {
            Program::Xdp(p) => p.load(),
            Program::TracePoint(p) => p.load(),
            Program::RawTracePoint(p) => p.load(),
            Program::SchedClassifier(p) => p.load(),
            Program::CgroupSkb(p) => p.load(),
            Program::CgroupSock(p) => p.load(),
            Program::SocketFilter(p) => p.load(),
            Program::PerfEvent(p) => p.load(),
            Program::UProbe(p) => p.load(),
            Program::KProbe(p) => p.load(),
            Program::BtfTracePoint(p) => {
                let target = section.strip_prefix("tp_btf/").unwrap_or(name);
                if vmlinux.is_none() {
                    vmlinux = Some(aya::Btf::from_sys_fs().context("aya Btf::from_sys_fs")?);
                }
                match vmlinux.as_ref() {
                    Some(btf) => p.load(target, btf),
                    None => bail!("no kernel BTF"),
                }
            }
            other => bail!(
                "program {name}: type {:?} is not covered by this benchmark",
                other.prog_type()
            ),
        };
        r.with_context(|| format!("load program {name} (sec {section})"))?;
    }
    let load_ns = since(t1);
    let kernel_open_load = kernel_ns() - k0;
    let t2 = Instant::now();
    let mut n = 0u64;
    for (name, prog) in ebpf.programs_mut() {
        let section = sections.get(name).map(String::as_str).unwrap_or("");
        let tp = section
            .strip_prefix("tracepoint/")
            .or_else(|| section.strip_prefix("tp/"))
            .and_then(|t| t.split_once('/'));
        let raw = section
            .strip_prefix("raw_tp/")
            .or_else(|| section.strip_prefix("raw_tracepoint/"));
        match prog {
            Program::TracePoint(p) => {
                if let Some((category, event)) = tp {
                    p.attach(category, event)
                        .with_context(|| format!("attach {name}"))?;
                    n += 1;
                }
            }
            Program::RawTracePoint(p) => {
                if let Some(event) = raw {
                    p.attach(event).with_context(|| format!("attach {name}"))?;
                    n += 1;
                }
            }
            Program::BtfTracePoint(p) => {
                p.attach().with_context(|| format!("attach {name}"))?;
                n += 1;
            }
            _ => {}
        }
    }
    let attach_ns = since(t2);
    let t3 = Instant::now();
    drop(ebpf);
    drop(vmlinux);
    let destroy_ns = since(t3);
    Ok(LoadSample {
        open: 0,
        load: load_ns,
        attach: attach_ns,
        destroy: destroy_ns,
        kernel_open_load,
        kernel_all: kernel_ns() - k0,
        links: n,
    })
}
