//! The error type of attachment and links.

use std::fmt;
use std::io;
use std::os::fd::BorrowedFd;
use std::path::PathBuf;

use crate::section::SectionError;
use crate::sys::{self, SysError};

/// An error attaching a program or handling a [`Link`](super::Link).
///
/// Attach errors name the program, its section (when known: explicit attach
/// calls only know the program, whose name is then read from the kernel) and
/// the target; the cause is the `#[source]`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttachError {
    /// The kernel refused a call while attaching.
    #[error("{who}: cannot attach to {target}")]
    Kernel {
        /// The program and its section.
        who: Box<Who>,
        /// The attach target (`tracepoint syscalls:sys_enter_getppid`, ...).
        target: String,
        /// The kernel's error.
        #[source]
        source: Box<SysError>,
    },
    /// The running kernel (or its configuration) cannot make this attachment.
    #[error("{who}: cannot attach to {target}: {reason}")]
    Unsupported {
        /// The program and its section.
        who: Box<Who>,
        /// The attach target.
        target: String,
        /// What is missing and, where it helps, what to do about it.
        reason: String,
    },
    /// The target does not exist or is malformed (unknown tracepoint, symbol
    /// not found in the binary, library not found, ...).
    #[error("{who}: cannot attach to {target}: {reason}")]
    Target {
        /// The program and its section.
        who: Box<Who>,
        /// The attach target.
        target: String,
        /// What was looked for and where.
        reason: String,
    },
    /// A file needed to attach could not be read or written.
    #[error("{who}: cannot attach to {target}: {what} {path}", path = path.display())]
    Io {
        /// The program and its section.
        who: Box<Who>,
        /// The attach target.
        target: String,
        /// What was being done (`reading`, `writing to`).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A struct_ops map could not be registered.
    #[error("struct_ops map '{map}': cannot register struct {type_name} ({op})")]
    StructOps {
        /// The map name.
        map: String,
        /// The kernel struct (`tcp_congestion_ops`).
        type_name: String,
        /// The step that failed.
        op: &'static str,
        /// The kernel's error.
        #[source]
        source: Box<SysError>,
    },
    /// The section name does not say how to attach.
    #[error("{who}: invalid section name")]
    Section {
        /// The program and its section.
        who: Box<Who>,
        /// The problem with the section name.
        #[source]
        source: SectionError,
    },
    /// Pinning a link failed.
    #[error("cannot pin link at {path}", path = path.display())]
    Pin {
        /// The bpffs path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: Box<SysError>,
    },
    /// A link of this kind cannot be pinned (only BPF links can).
    #[error("cannot pin link at {path}: a {kind} is not a BPF link", path = path.display())]
    NotPinnable {
        /// The bpffs path.
        path: PathBuf,
        /// The kind of attachment.
        kind: &'static str,
    },
    /// Removing a link's pin failed.
    #[error("cannot unpin link at {path}", path = path.display())]
    Unpin {
        /// The bpffs path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Detaching a link failed (the program may still be attached).
    #[error("cannot detach {kind}")]
    Detach {
        /// The kind of attachment.
        kind: &'static str,
        /// The kernel's error.
        #[source]
        source: Box<SysError>,
    },
    /// Removing a legacy tracefs probe event failed.
    #[error("cannot remove tracefs probe event {event} (write to {path})", path = path.display())]
    RemoveProbe {
        /// The event, `kprobes/<name>` or `uprobes/<name>`.
        event: String,
        /// The tracefs file written.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// The program an error is about: its name and section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Who {
    /// The program name (from the object, or the kernel's 15-character name).
    pub prog: String,
    /// The section name, when known.
    pub section: Option<String>,
}

impl fmt::Display for Who {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "program '{}'", self.prog)?;
        if let Some(section) = &self.section {
            write!(f, " (sec '{section}')")?;
        }
        Ok(())
    }
}

/// The program being attached, for error messages: the names are read from the
/// kernel only when an error needs them.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub prog: BorrowedFd<'a>,
    pub name: Option<&'a str>,
    pub section: Option<&'a str>,
}

impl<'a> Ctx<'a> {
    pub fn explicit(prog: BorrowedFd<'a>) -> Self {
        Ctx {
            prog,
            name: None,
            section: None,
        }
    }

    pub fn who(&self) -> Box<Who> {
        let prog = match self.name {
            Some(name) => name.to_owned(),
            None => match sys::prog_info(self.prog) {
                Ok(info) if !info.name().is_empty() => info.name(),
                Ok(info) => format!("id {}", info.id),
                Err(_) => "<unknown>".to_owned(),
            },
        };
        Box::new(Who {
            prog,
            section: self.section.map(str::to_owned),
        })
    }

    pub fn kernel(&self, target: impl Into<String>, source: SysError) -> AttachError {
        AttachError::Kernel {
            who: self.who(),
            target: target.into(),
            source: Box::new(source),
        }
    }

    pub fn unsupported(&self, target: impl Into<String>, reason: impl Into<String>) -> AttachError {
        AttachError::Unsupported {
            who: self.who(),
            target: target.into(),
            reason: reason.into(),
        }
    }

    pub fn target(&self, target: impl Into<String>, reason: impl Into<String>) -> AttachError {
        AttachError::Target {
            who: self.who(),
            target: target.into(),
            reason: reason.into(),
        }
    }

    pub fn io(
        &self,
        target: impl Into<String>,
        what: &'static str,
        path: impl Into<PathBuf>,
        source: io::Error,
    ) -> AttachError {
        AttachError::Io {
            who: self.who(),
            target: target.into(),
            what,
            path: path.into(),
            source,
        }
    }
}
