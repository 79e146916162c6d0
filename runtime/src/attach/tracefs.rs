//! tracefs: where it is mounted, tracepoint ids, and legacy kprobe/uprobe
//! events (`kprobe_events`, `uprobe_events`) for kernels without the
//! kprobe/uprobe PMUs.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use super::error::AttachError;
use crate::sys::TRACEFS_ROOTS;

/// The command that mounts tracefs, quoted in errors.
pub(crate) const MOUNT_HINT: &str = "mount it with `mount -t tracefs nodev /sys/kernel/tracing`";

/// The first of [`TRACEFS_ROOTS`] where tracefs is mounted (it has an
/// `events` directory), `None` if neither is.
pub(crate) fn root() -> Option<&'static Path> {
    TRACEFS_ROOTS
        .iter()
        .map(Path::new)
        .find(|root| root.join("events").is_dir())
}

/// The probe kinds with a legacy tracefs interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProbeKind {
    Kprobe,
    Uprobe,
}

impl ProbeKind {
    /// The tracefs control file (`kprobe_events`).
    pub fn events_file(self) -> &'static str {
        match self {
            ProbeKind::Kprobe => "kprobe_events",
            ProbeKind::Uprobe => "uprobe_events",
        }
    }

    /// The default event group (`kprobes`).
    pub fn group(self) -> &'static str {
        match self {
            ProbeKind::Kprobe => "kprobes",
            ProbeKind::Uprobe => "uprobes",
        }
    }

    /// The PMU name (`kprobe`).
    pub fn pmu(self) -> &'static str {
        match self {
            ProbeKind::Kprobe => "kprobe",
            ProbeKind::Uprobe => "uprobe",
        }
    }
}

/// A probe event this process added to `kprobe_events`/`uprobe_events`; it
/// must be removed (after the perf event using it is closed).
#[derive(Debug)]
pub(crate) struct LegacyProbe {
    kind: ProbeKind,
    control: PathBuf,
    name: String,
}

/// Tells apart the probes of one process on one function.
static NEXT_PROBE: AtomicU32 = AtomicU32::new(0);

/// The kernel's limit on event names (`MAX_EVENT_NAME_LEN`) minus room for
/// the NUL.
const MAX_EVENT_NAME: usize = 63;

/// `skelgen_<pid>_<what>_<n>`, with every character the kernel would refuse
/// replaced by `_`.
pub(crate) fn event_name(what: &str) -> String {
    let n = NEXT_PROBE.fetch_add(1, Ordering::Relaxed);
    let suffix = format!("_{n}");
    let mut name = format!("skelgen_{}_", std::process::id());
    name.extend(what.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        }
    }));
    name.truncate(MAX_EVENT_NAME.saturating_sub(suffix.len()));
    name.push_str(&suffix);
    name
}

impl LegacyProbe {
    /// Add the probe: `p:<group>/<name> <location>` (or `r:` for a return
    /// probe, `r<maxactive>:` with a maxactive) appended to the control
    /// file. Returns the probe and its tracepoint id.
    pub fn add(
        kind: ProbeKind,
        root: &Path,
        name: String,
        retprobe: bool,
        maxactive: u32,
        location: &str,
    ) -> Result<(LegacyProbe, u64), LegacyError> {
        let control = root.join(kind.events_file());
        let command = match (retprobe, maxactive) {
            (false, _) => "p".to_owned(),
            (true, 0) => "r".to_owned(),
            (true, n) => format!("r{n}"),
        };
        let line = format!("{}:{}/{} {}\n", command, kind.group(), name, location);
        append(&control, &line).map_err(|source| LegacyError::Write {
            path: control.clone(),
            source,
        })?;
        let probe = LegacyProbe {
            kind,
            control,
            name,
        };
        let id_path = root
            .join("events")
            .join(kind.group())
            .join(&probe.name)
            .join("id");
        let text = match std::fs::read_to_string(&id_path) {
            Ok(text) => text,
            Err(source) => {
                let _ = probe.remove();
                return Err(LegacyError::Read {
                    path: id_path,
                    source,
                });
            }
        };
        match text.trim().parse() {
            Ok(id) => Ok((probe, id)),
            Err(_) => {
                let _ = probe.remove();
                Err(LegacyError::Parse {
                    path: id_path,
                    text: text.trim().to_owned(),
                })
            }
        }
    }

    /// `<group>/<name>`.
    pub fn event(&self) -> String {
        format!("{}/{}", self.kind.group(), self.name)
    }

    /// Remove the event: `-:<group>/<name>` appended to the control file.
    pub fn remove(self) -> Result<(), AttachError> {
        let event = self.event();
        append(&self.control, &format!("-:{event}\n")).map_err(|source| AttachError::RemoveProbe {
            event,
            path: self.control.clone(),
            source,
        })
    }
}

/// Append one line to a tracefs control file: opened write-only *without*
/// truncation, which would delete every probe event of the system.
fn append(path: &Path, line: &str) -> io::Result<()> {
    let mut file = std::fs::OpenOptions::new().append(true).open(path)?;
    file.write_all(line.as_bytes())
}

/// Why adding a legacy probe failed.
#[derive(Debug)]
pub(crate) enum LegacyError {
    Write { path: PathBuf, source: io::Error },
    Read { path: PathBuf, source: io::Error },
    Parse { path: PathBuf, text: String },
}
