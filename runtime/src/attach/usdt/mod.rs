//! USDT (user statically defined tracing) probes, compatible with libbpf's
//! `<bpf/usdt.bpf.h>`: the BPF side reads its arguments through
//! `bpf_usdt_arg()`, which finds a `struct __bpf_usdt_spec` in the
//! `__bpf_usdt_specs` array map by a spec id — the BPF cookie of the probe,
//! or on kernels without cookies the `__bpf_usdt_ip_to_spec_id` entry of the
//! probe's address. This module fills those maps and attaches one uprobe per
//! probe site.
//!
//! The steps, each public so that tools can list probes:
//! [`parse_usdt_notes`] reads the `.note.stapsdt` notes of a binary (probe
//! address and file offset, semaphore, argument string);
//! [`UsdtSpec::parse`] turns an x86-64 argument string (`-4@%edi
//! 8@-8(%rbp) -4@$5`) into what `bpf_usdt_arg()` reads, and
//! [`UsdtSpec::to_bytes`] lays it out as the 208-byte map value;
//! [`attach_usdt`] does it all and returns one [`Link`] for every site.
//!
//! A USDT link is a multi-probe [`Link`] ([`Link::parts`] lists the uprobe
//! of each site). Dropping it detaches every uprobe, then frees its spec ids
//! (ids are allocated per specs map, process-wide) and removes its
//! `ip_to_spec_id` entries; the spec values stay in the map.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use log::warn;

use super::error::{AttachError, Ctx};
use super::link::{Inner, Link};
use super::tracefs::ProbeKind;
use super::{resolve_binary, ProbeMode};
use crate::sys::{self, attach_type, elem_flags, map_type, LinkCreate, LinkExtra, LinkTarget};
use crate::sys::{MapFd, PerfEventAttr};

mod notes;
mod spec;

pub use notes::{parse_usdt_notes, UsdtNote, UsdtNotes};
pub use spec::{UsdtArg, UsdtArgLocation, UsdtSpec};

/// `BPF_USDT_MAX_ARG_CNT` of `<bpf/usdt.bpf.h>`.
pub const USDT_MAX_ARGS: usize = 12;
/// `sizeof(struct __bpf_usdt_spec)`: the value size of `__bpf_usdt_specs`.
pub const USDT_SPEC_SIZE: usize = 208;

/// An error reading USDT notes or argument specs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsdtError {
    /// The file is not an ELF file the notes can be read from.
    #[error("malformed ELF: {reason}")]
    Elf {
        /// What is wrong.
        reason: String,
    },
    /// A `.note.stapsdt` note is malformed.
    #[error(".note.stapsdt note at section offset {offset:#x}: {reason}")]
    Note {
        /// Byte offset of the note in `.note.stapsdt`.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// An address of a note lies in no `PT_LOAD` segment that can hold it.
    #[error("USDT {provider}:{name}: {what} address {addr:#x} {reason}")]
    Address {
        /// Provider of the probe.
        provider: String,
        /// Name of the probe.
        name: String,
        /// `probe` or `semaphore`.
        what: &'static str,
        /// The address.
        addr: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// An argument of an argument string cannot be understood.
    #[error("USDT argument #{index} {arg:?}: {reason}")]
    Arg {
        /// 0-based position in the argument string.
        index: usize,
        /// The argument as written in the note (cut to 64 bytes).
        arg: String,
        /// What was expected.
        reason: String,
    },
    /// More arguments than `<bpf/usdt.bpf.h>` can hold.
    #[error("USDT argument string has {count} arguments, at most {USDT_MAX_ARGS} are supported")]
    TooManyArgs {
        /// How many there are.
        count: usize,
    },
    /// Argument specs of this machine are not supported.
    #[error("USDT arguments of ELF machine {machine} are not supported (only x86-64)")]
    Machine {
        /// `e_machine`.
        machine: u16,
    },
}
// ---------------------------------------------------------------------------
// spec ids

/// The spec ids in use, per specs map (by kernel map id), process-wide.
static SPEC_IDS: Mutex<BTreeMap<u32, BTreeSet<u32>>> = Mutex::new(BTreeMap::new());

/// The spec ids and `ip_to_spec_id` entries of one USDT link, given back when
/// it is dropped (after its uprobes are gone).
#[derive(Debug)]
struct SpecLease {
    map_id: u32,
    ids: Vec<u32>,
    ip_map: Option<MapFd>,
    ips: Vec<u64>,
}

impl SpecLease {
    /// `count` free ids below `max_entries` of specs map `map_id`.
    fn allocate(map_id: u32, count: usize, max_entries: u32) -> Option<SpecLease> {
        let mut all = SPEC_IDS.lock().unwrap_or_else(|e| e.into_inner());
        let used = all.entry(map_id).or_default();
        let ids: Vec<u32> = (0..max_entries)
            .filter(|id| !used.contains(id))
            .take(count)
            .collect();
        if ids.len() < count {
            return None;
        }
        used.extend(ids.iter().copied());
        Some(SpecLease {
            map_id,
            ids,
            ip_map: None,
            ips: Vec::new(),
        })
    }
}

impl Drop for SpecLease {
    fn drop(&mut self) {
        if let Some(map) = &self.ip_map {
            for ip in &self.ips {
                if let Err(e) = map.delete(&ip.to_ne_bytes()) {
                    warn!("USDT: removing ip_to_spec_id entry {ip:#x}: {e}");
                }
            }
        }
        let mut all = SPEC_IDS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(used) = all.get_mut(&self.map_id) {
            for id in &self.ids {
                used.remove(id);
            }
            if used.is_empty() {
                all.remove(&self.map_id);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// attaching

/// The maps of `<bpf/usdt.bpf.h>` a skeleton passes to
/// [`auto_attach_with`](super::auto_attach_with) for its `usdt/...` programs.
#[derive(Debug, Clone, Copy, Default)]
pub struct AttachContext<'a> {
    /// The object's `__bpf_usdt_specs` map.
    pub usdt_specs: Option<&'a MapFd>,
    /// The object's `__bpf_usdt_ip_to_spec_id` map (needed only on kernels
    /// without BPF cookies, before 5.15).
    pub usdt_ip_to_id: Option<&'a MapFd>,
}

/// Attach a USDT program (`SEC("usdt")`, using `<bpf/usdt.bpf.h>`) to every
/// probe site `provider:name` of `binary` (a path, or a name searched as
/// [`resolve_binary`] does), for process `pid` or every process.
///
/// `specs` is the object's `__bpf_usdt_specs` map and `ip_to_id` its
/// `__bpf_usdt_ip_to_spec_id` map; `cookie` is what `bpf_usdt_cookie()`
/// returns. Each site gets a spec (identical ones share an id) and a uprobe
/// (with the semaphore as `ref_ctr_offset`) whose BPF cookie is the spec id;
/// kernels without BPF cookies get `ip_to_id` entries instead, which for a
/// position-independent binary needs `pid`.
#[allow(clippy::too_many_arguments)]
pub fn attach_usdt(
    prog: BorrowedFd<'_>,
    pid: Option<i32>,
    binary: &str,
    provider: &str,
    name: &str,
    cookie: u64,
    specs: &MapFd,
    ip_to_id: Option<&MapFd>,
) -> Result<Link, AttachError> {
    usdt(
        Ctx::explicit(prog),
        pid,
        binary,
        provider,
        name,
        cookie,
        Some(specs),
        ip_to_id,
    )
}

#[allow(clippy::too_many_arguments)]
pub(super) fn usdt(
    ctx: Ctx<'_>,
    pid: Option<i32>,
    binary: &str,
    provider: &str,
    name: &str,
    cookie: u64,
    specs: Option<&MapFd>,
    ip_to_id: Option<&MapFd>,
) -> Result<Link, AttachError> {
    let mut target = format!("usdt {binary}:{provider}:{name}");
    let Some(specs) = specs else {
        return Err(ctx.target(
            &target,
            "USDT programs need the object's __bpf_usdt_specs map (and \
             __bpf_usdt_ip_to_spec_id on kernels without BPF cookies): attach through the \
             skeleton, or with auto_attach_with and an AttachContext",
        ));
    };
    if !cfg!(target_arch = "x86_64") {
        return Err(ctx.unsupported(
            &target,
            "USDT argument specs are only implemented for x86-64",
        ));
    }
    check_map(
        ctx,
        &target,
        "__bpf_usdt_specs",
        specs,
        map_type::ARRAY,
        4,
        USDT_SPEC_SIZE,
    )?;
    if let Some(map) = ip_to_id {
        check_map(
            ctx,
            &target,
            "__bpf_usdt_ip_to_spec_id",
            map,
            map_type::HASH,
            8,
            4,
        )?;
    }

    let path: PathBuf = resolve_binary(binary).map_err(|reason| ctx.target(&target, reason))?;
    target = format!("usdt {}:{provider}:{name}", path.display());
    let data = std::fs::read(&path).map_err(|e| ctx.io(&target, "reading", &path, e))?;
    let parsed = parse_usdt_notes(&data)
        .map_err(|e| ctx.target(&target, format!("{}: {e}", path.display())))?;
    let sites: Vec<&UsdtNote> = parsed
        .notes
        .iter()
        .filter(|n| n.provider == provider && n.name == name)
        .collect();
    if sites.is_empty() {
        return Err(ctx.target(
            &target,
            format!(
                "{} has no USDT probe {provider}:{name} ({} probes in .note.stapsdt{})",
                path.display(),
                parsed.notes.len(),
                list_probes(&parsed.notes)
            ),
        ));
    }

    // Specs, deduplicated; site i uses spec spec_of[i].
    let mut unique: Vec<UsdtSpec> = Vec::new();
    let mut index: HashMap<UsdtSpec, usize> = HashMap::new();
    let mut spec_of = Vec::with_capacity(sites.len());
    for site in &sites {
        let spec = UsdtSpec::parse(parsed.machine, &site.args, cookie).map_err(|e| {
            ctx.target(
                &target,
                format!("{}: probe at {:#x}: {e}", path.display(), site.addr),
            )
        })?;
        let next = unique.len();
        let i = *index.entry(spec.clone()).or_insert(next);
        if i == next {
            unique.push(spec);
        }
        spec_of.push(i);
    }

    let cookies = sys::probe::bpf_cookie();
    if cookies && !sys::probe::perf_link() {
        return Err(ctx.unsupported(
            &target,
            "the kernel has BPF cookies but no perf links to set them with",
        ));
    }

    let map_id = sys::map_info(specs.as_fd())
        .map_err(|e| ctx.kernel(&target, e))?
        .id;
    let mut lease =
        SpecLease::allocate(map_id, unique.len(), specs.max_entries()).ok_or_else(|| {
            ctx.target(
                &target,
                format!(
                    "__bpf_usdt_specs is full: {} spec ids needed, its {} entries are in use \
                     (raise BPF_USDT_MAX_SPEC_CNT)",
                    unique.len(),
                    specs.max_entries()
                ),
            )
        })?;
    for (id, spec) in lease.ids.iter().zip(&unique) {
        specs
            .update(&id.to_ne_bytes(), &spec.to_bytes(), elem_flags::ANY)
            .map_err(|e| ctx.kernel(&target, e))?;
    }

    if !cookies {
        let Some(ip_map) = ip_to_id else {
            return Err(ctx.unsupported(
                &target,
                "the kernel has no BPF cookies (before 5.15): the object's \
                 __bpf_usdt_ip_to_spec_id map is needed",
            ));
        };
        let owned = ip_map.as_fd().try_clone_to_owned().map_err(|e| {
            ctx.io(
                &target,
                "duplicating the fd of",
                "__bpf_usdt_ip_to_spec_id",
                e,
            )
        })?;
        lease.ip_map = Some(MapFd::from_fd(owned).map_err(|e| ctx.kernel(&target, e))?);
        for (site, &spec) in sites.iter().zip(&spec_of) {
            let ip = runtime_ip(parsed.position_independent, site, &path, pid)
                .map_err(|reason| ctx.target(&target, reason))?;
            let id = lease.ids.get(spec).copied().unwrap_or_default();
            ip_map
                .update(&ip.to_ne_bytes(), &id.to_ne_bytes(), elem_flags::NOEXIST)
                .map_err(|e| {
                    if e.errno() == Some(libc::EEXIST) {
                        ctx.target(
                            &target,
                            format!(
                                "address {ip:#x} already has a USDT spec: without BPF cookies \
                                 one probe site can be attached once per object"
                            ),
                        )
                    } else {
                        ctx.kernel(&target, e)
                    }
                })?;
            lease.ips.push(ip);
        }
    }

    let path_str = path
        .to_str()
        .ok_or_else(|| ctx.target(&target, "path is not UTF-8"))?;
    let path_c =
        CString::new(path_str).map_err(|_| ctx.target(&target, "path contains a NUL byte"))?;
    let mut links = Vec::with_capacity(sites.len());
    for (site, &spec) in sites.iter().zip(&spec_of) {
        let id = lease.ids.get(spec).copied().unwrap_or_default();
        let site_target = format!("{target} (offset {:#x})", site.file_offset);
        links.push(site_probe(
            ctx,
            &site_target,
            &path_c,
            path_str,
            site,
            pid,
            cookies.then_some(u64::from(id)),
        )?);
    }
    Ok(Link::multi(links, Box::new(lease)))
}

/// `: provider:name, ...` for an error message, at most 8 names.
fn list_probes(notes: &[UsdtNote]) -> String {
    let mut seen = BTreeSet::new();
    let mut names: Vec<String> = notes
        .iter()
        .map(|n| format!("{}:{}", n.provider, n.name))
        .filter(|name| seen.insert(name.clone()))
        .collect();
    if names.is_empty() {
        return String::new();
    }
    let more = names.len().saturating_sub(8);
    names.truncate(8);
    let mut text = format!(": {}", names.join(", "));
    if more > 0 {
        text += &format!(", and {more} more");
    }
    text
}

fn check_map(
    ctx: Ctx<'_>,
    target: &str,
    what: &str,
    map: &MapFd,
    want_type: u32,
    key: u32,
    value: usize,
) -> Result<(), AttachError> {
    if map.map_type() != want_type || map.key_size() != key || map.value_size() as usize != value {
        return Err(ctx.target(
            target,
            format!(
                "the map given as {what} has type {}, key {} B, value {} B; expected type {}, \
                 key {key} B, value {value} B (as <bpf/usdt.bpf.h> declares it)",
                map.map_type(),
                map.key_size(),
                map.value_size(),
                want_type
            ),
        ));
    }
    Ok(())
}

/// The uprobe of one site, with the spec id as BPF cookie when the kernel
/// has cookies.
fn site_probe(
    ctx: Ctx<'_>,
    target: &str,
    path_c: &CString,
    path_str: &str,
    site: &UsdtNote,
    pid: Option<i32>,
    cookie: Option<u64>,
) -> Result<Link, AttachError> {
    let offset = site.file_offset;
    let ref_ctr = site.semaphore_offset;
    if ref_ctr >= 1 << 32 {
        return Err(ctx.target(
            target,
            format!("semaphore file offset {ref_ctr:#x} does not fit the uprobe PMU's 32 bits"),
        ));
    }
    let label = format!(
        "usdt_{}_{offset:x}",
        Path::new(path_str)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("bin")
    );
    let (perf, legacy) = super::probe_event(
        ctx,
        target,
        ProbeKind::Uprobe,
        ProbeMode::Auto,
        &|pmu_type, bit| PerfEventAttr::uprobe(pmu_type, path_c, offset, ref_ctr, bit),
        &|| {
            if path_str.chars().any(char::is_whitespace) {
                return Err(ctx.target(
                    target,
                    "the legacy uprobe_events interface cannot take a path with whitespace",
                ));
            }
            Ok(if ref_ctr != 0 {
                format!("{path_str}:{offset:#x}({ref_ctr:#x})")
            } else {
                format!("{path_str}:{offset:#x}")
            })
        },
        &label,
        false,
        pid.unwrap_or(-1),
    )?;
    let Some(cookie) = cookie else {
        return super::attach_perf(ctx, target, perf, legacy);
    };
    let attached = LinkCreate::new(
        ctx.prog,
        LinkTarget::Fd(perf.as_fd()),
        attach_type::PERF_EVENT,
    )
    .extra(LinkExtra::PerfEventCookie(cookie))
    .create()
    .and_then(|link| sys::perf_event_enable(&perf).map(|()| link));
    match attached {
        Ok(link) => Ok(Link::new(Inner::Perf {
            link: Some(link),
            perf,
            legacy,
        })),
        Err(source) => {
            drop(perf);
            if let Some(probe) = legacy {
                let _ = probe.remove();
            }
            Err(ctx.kernel(target, source))
        }
    }
}

/// The address of a probe in the running process, for `ip_to_spec_id`: the
/// note's address for a fixed-address executable; for a position-independent
/// binary, where `pid` maps it (from `/proc/<pid>/maps`).
fn runtime_ip(
    position_independent: bool,
    site: &UsdtNote,
    path: &Path,
    pid: Option<i32>,
) -> Result<u64, String> {
    if !position_independent {
        return Ok(site.addr);
    }
    let Some(pid) = pid else {
        return Err(format!(
            "{} is position-independent: without BPF cookies its probes can only be \
             attached for one process (give a pid)",
            path.display()
        ));
    };
    let maps_path = format!("/proc/{pid}/maps");
    let text =
        std::fs::read_to_string(&maps_path).map_err(|e| format!("cannot read {maps_path}: {e}"))?;
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    mapped_address(&text, &canonical, site.file_offset).ok_or_else(|| {
        format!(
            "{} is not mapped at file offset {:#x} in process {pid} ({maps_path})",
            canonical.display(),
            site.file_offset
        )
    })
}

/// Where file offset `offset` of `path` is mapped executable, from the text
/// of a `/proc/<pid>/maps` file (`start-end perms offset dev inode path`).
fn mapped_address(maps: &str, path: &Path, offset: u64) -> Option<u64> {
    maps.lines().find_map(|line| {
        // Five fields, then the path: the rest of the line (it may hold
        // spaces).
        let mut rest = line;
        let mut fields = [""; 5];
        for field in &mut fields {
            rest = rest.trim_start();
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let (head, tail) = rest.split_at_checked(end)?;
            *field = head;
            rest = tail;
        }
        let [range, perms, file_off, _dev, _inode] = fields;
        let file_off = u64::from_str_radix(file_off, 16).ok()?;
        let mapped = rest.trim();
        let (start, end) = range.split_once('-')?;
        let start = u64::from_str_radix(start, 16).ok()?;
        let end = u64::from_str_radix(end, 16).ok()?;
        let len = end.checked_sub(start)?;
        let inside = offset >= file_off && offset - file_off < len;
        (perms.contains('x') && Path::new(mapped) == path && inside)
            .then(|| start.checked_add(offset - file_off))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines() {
        let maps = "\
55d0c0a00000-55d0c0a01000 r--p 00000000 fd:01 123 /usr/bin/prog
55d0c0a01000-55d0c0a02000 r-xp 00001000 fd:01 123 /usr/bin/prog
7f0000000000-7f0000001000 r-xp 00001000 fd:01 124 /usr/lib/with space.so
";
        let prog = Path::new("/usr/bin/prog");
        assert_eq!(mapped_address(maps, prog, 0x1234), Some(0x55d0c0a01234));
        assert_eq!(mapped_address(maps, prog, 0x234), None);
        assert_eq!(mapped_address(maps, prog, 0x2000), None);
        let spaced = Path::new("/usr/lib/with space.so");
        assert_eq!(mapped_address(maps, spaced, 0x1010), Some(0x7f0000000010));
        assert_eq!(mapped_address("garbage\n- - -", prog, 0), None);
    }
}
