//! The error type of the kernel-facts layer.

use std::io;
use std::path::PathBuf;

use crate::btf::BtfError;
use crate::sys::SysError;

/// An error while reading the kernel's config, version, symbols or BTF, or
/// while giving an extern its value from them.
///
/// Messages name the extern, file and line involved; the cause (an I/O
/// error, a BTF error, a syscall error) is the `#[source]` and is not
/// repeated in the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KernelError {
    /// A kernel file could not be read.
    #[error("cannot read {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// `/proc/config.gz` (or another gzip file) is not valid gzip.
    #[error("cannot decompress {}", path.display())]
    Gzip {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// No kernel config file exists, but a `CONFIG_*` extern needs one.
    #[error(
        "no kernel config found (tried {}); pass the config text or override the \
         options the object asks for",
        tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    NoKernelConfig {
        /// The paths tried, in order.
        tried: Vec<PathBuf>,
    },
    /// A `CONFIG_` line of a kernel config is malformed (as libbpf, such a
    /// line is an error whatever option it names).
    #[error("{origin}:{line}: malformed config line '{text}': {reason}")]
    ConfigLine {
        /// Where the text came from (a path, or `"user kconfig"`).
        origin: String,
        /// 1-based line number.
        line: usize,
        /// The line, cut to 200 bytes.
        text: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A config value does not fit the extern's type.
    #[error("extern (kconfig) '{name}': value '{value}' ({origin}:{line}) {reason}")]
    KconfigValue {
        /// The extern.
        name: String,
        /// The value as written.
        value: String,
        /// Where the value came from.
        origin: String,
        /// 1-based line number (0 for overrides).
        line: usize,
        /// Why it does not fit.
        reason: String,
    },
    /// A `LINUX_*` extern that is not one of the virtual values libbpf knows.
    #[error(
        "extern (kconfig) '{name}': unrecognized virtual extern (known: LINUX_KERNEL_VERSION, \
         LINUX_HAS_BPF_COOKIE, LINUX_HAS_SYSCALL_WRAPPER; unknown ones may only be __weak)"
    )]
    UnknownVirtual {
        /// The extern.
        name: String,
    },
    /// A `.kconfig` extern whose name starts with neither `CONFIG_` nor `LINUX_`.
    #[error("extern (kconfig) '{name}': only CONFIG_* and LINUX_* names can be __kconfig externs")]
    UnsupportedKconfigName {
        /// The extern.
        name: String,
    },
    /// A virtual `LINUX_*` extern that the caller's [`super::LinuxFacts`] left unknown.
    #[error("extern (kconfig) '{name}': its value was not provided (LinuxFacts::{field} is None)")]
    MissingFact {
        /// The extern.
        name: String,
        /// The [`super::LinuxFacts`] field.
        field: &'static str,
    },
    /// A strong extern got no value.
    #[error("extern '{name}' (strong): not resolved{}", if detail.is_empty() { String::new() } else { format!(" ({detail})") })]
    Unresolved {
        /// The extern.
        name: String,
        /// Extra context (e.g. "'# CONFIG_X is not set' in /proc/config.gz").
        detail: String,
    },
    /// The `.kconfig` image is too small for an extern's slot.
    #[error(
        "extern (kconfig) '{name}': slot at offset {offset} size {size} is outside the \
         .kconfig image ({image_len} bytes)"
    )]
    ImageTooSmall {
        /// The extern.
        name: String,
        /// Slot offset.
        offset: u32,
        /// Slot size.
        size: u32,
        /// Image length.
        image_len: usize,
    },
    /// The running kernel's version could not be determined.
    #[error("cannot determine the kernel version: {reason}")]
    KernelVersion {
        /// What was read and why it does not parse.
        reason: String,
    },
    /// A `/proc/kallsyms` line is malformed.
    #[error("{origin}:{line}: malformed kallsyms line: {reason}")]
    KallsymsLine {
        /// Where the text came from.
        origin: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// Every kallsyms address reads as zero: `kernel.kptr_restrict` hides them
    /// from this process.
    #[error(
        "kallsyms addresses are hidden (all read as 0) while resolving '{name}': \
         kernel.kptr_restrict hides them; run as root with kptr_restrict <= 1 \
         (or set it to 0), or with CAP_SYSLOG"
    )]
    KallsymsHidden {
        /// The symbol asked for.
        name: String,
    },
    /// A symbol appears in kallsyms at two different addresses.
    #[error("extern (ksym) '{name}': resolution is ambiguous: {first:#x} or {second:#x}")]
    KsymAmbiguous {
        /// The symbol.
        name: String,
        /// The first address.
        first: u64,
        /// The other address.
        second: u64,
    },
    /// Kernel (or custom) BTF could not be read or parsed.
    #[error("cannot load {what}")]
    Btf {
        /// Which BTF (`"vmlinux BTF"`, `"module 'x' BTF"`, a path).
        what: String,
        /// The cause.
        #[source]
        source: BtfError,
    },
    /// A module name that cannot name a file in `/sys/kernel/btf`.
    #[error("'{name}' is not a valid kernel module name")]
    BadModuleName {
        /// The name.
        name: String,
    },
    /// A custom BTF file is an ELF object without a `.BTF` section, or an
    /// unreadable ELF.
    #[error("{}: {reason}", path.display())]
    BadBtfFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A bpf() call needed to enumerate kernel BTF objects failed.
    #[error("cannot enumerate kernel BTF objects")]
    Sys {
        /// The cause.
        #[source]
        source: SysError,
    },
    /// A typed ksym or kfunc exists in kernel BTF with an incompatible type.
    #[error(
        "extern (ksym) '{name}': local type [{local_id}] is incompatible with {btf_name} \
         type [{target_id}]: {reason}"
    )]
    KsymIncompatible {
        /// The extern.
        name: String,
        /// Type id in the object's BTF.
        local_id: u32,
        /// `"vmlinux"` or the module name.
        btf_name: String,
        /// Type id in the kernel BTF.
        target_id: u32,
        /// What differs.
        reason: String,
    },
    /// The object's own BTF could not be read while checking an extern.
    #[error("extern '{name}': bad object BTF")]
    LocalBtf {
        /// The extern.
        name: String,
        /// The cause.
        #[source]
        source: BtfError,
    },
}

impl KernelError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> KernelError {
        KernelError::Io {
            path: path.into(),
            source,
        }
    }
}
