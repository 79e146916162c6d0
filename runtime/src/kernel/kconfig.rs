//! Kernel config (`CONFIG_*`) sources: text, files, overrides, in layers;
//! [`super::fill_kconfig`] turns their values into `.kconfig` extern values.
//!
//! The rules are libbpf's:
//!
//! - a config is lines of `CONFIG_NAME=value`; lines not starting with
//!   `CONFIG_` (comments, `# CONFIG_X is not set`, blanks) name no value. A
//!   `CONFIG_` line without `=` or with nothing after it is an error whatever
//!   option it names; a value that does not fit an extern is an error only
//!   for options an extern asks for; the first line naming an option wins;
//! - `# CONFIG_X is not set` gives no value (libbpf skips the line): a weak
//!   extern becomes 0, a strong one is unresolved. It is kept here only to
//!   say so in the error;
//! - the value's first character picks the class: `y`/`n`/`m` a tristate
//!   letter, `"` a string, anything else an integer (`strtoull` base 0:
//!   decimal, `0x` hex, leading-`0` octal, a leading `-` wraps);
//! - sources in precedence order: overrides, user text, then the system's
//!   config: `/boot/config-$(uname -r)` if it exists, else `/proc/config.gz`
//!   (each may be gzip or plain text).

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use log::debug;

use super::version::{kernel_version, OSRELEASE_PATH};
use super::KernelError;
use crate::obj::{Extern, ExternKind};

/// The compressed config the kernel exposes with `CONFIG_IKCONFIG_PROC`.
pub const PROC_CONFIG_GZ: &str = "/proc/config.gz";

/// Decompressed configs larger than this are refused (a real one is ~300 KiB).
const MAX_CONFIG_LEN: u64 = 64 << 20;

/// One option as a config source gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigEntry {
    /// The text after `=`; `None` for `# CONFIG_X is not set`.
    pub value: Option<String>,
    /// 1-based line number in its source (0 for overrides).
    pub line: usize,
}

/// One source of options: a parsed config file or text, or overrides.
#[derive(Clone, Debug, Default)]
struct Layer {
    origin: String,
    entries: HashMap<String, ConfigEntry>,
}

/// A kernel config: one or more sources of `CONFIG_*` values in precedence
/// order, plus the facts behind the virtual `LINUX_*` externs.
#[derive(Clone, Debug, Default)]
pub struct KernelConfig {
    layers: Vec<Layer>,
    /// Values of `LINUX_KERNEL_VERSION`, `LINUX_HAS_BPF_COOKIE`,
    /// `LINUX_HAS_SYSCALL_WRAPPER`.
    pub linux: LinuxFacts,
}

/// A value found by [`KernelConfig::lookup`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigValue<'a> {
    /// The text after `=`.
    pub value: &'a str,
    /// The source's name (a path, `"user kconfig"` or `"override"`).
    pub origin: &'a str,
    /// 1-based line number in the source (0 for overrides).
    pub line: usize,
}

/// The facts behind libbpf's virtual `LINUX_*` kconfig externs; `None` means
/// unknown, and an extern that asks for an unknown fact is an error.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinuxFacts {
    /// `LINUX_KERNEL_VERSION` (see [`super::kernel_version`]).
    pub kernel_version: Option<u32>,
    /// `LINUX_HAS_BPF_COOKIE`: `bpf_get_attach_cookie()` is available.
    pub has_bpf_cookie: Option<bool>,
    /// `LINUX_HAS_SYSCALL_WRAPPER`: syscalls are entered through
    /// `__<arch>_sys_*` wrappers (`CONFIG_ARCH_HAS_SYSCALL_WRAPPER`).
    pub has_syscall_wrapper: Option<bool>,
}

impl LinuxFacts {
    /// Computes the facts that `externs` ask for, and only those: the kernel
    /// version from uname, the cookie by a feature probe (a program load), the
    /// syscall wrapper from kallsyms.
    ///
    /// libbpf probes the wrapper by opening a kprobe on `__<arch>_sys_bpf`;
    /// this looks the same symbol up in `/proc/kallsyms` instead, which gives
    /// the same answer on kernels without kprobes.
    pub fn detect_for(externs: &[Extern]) -> Result<LinuxFacts, KernelError> {
        let wants = |name: &str| {
            externs
                .iter()
                .any(|e| e.name == name && matches!(e.kind, ExternKind::Kconfig { .. }))
        };
        let mut facts = LinuxFacts::default();
        if wants("LINUX_KERNEL_VERSION") {
            facts.kernel_version = Some(kernel_version()?);
        }
        if wants("LINUX_HAS_BPF_COOKIE") {
            facts.has_bpf_cookie = Some(crate::sys::probe::bpf_cookie());
        }
        if wants("LINUX_HAS_SYSCALL_WRAPPER") {
            facts.has_syscall_wrapper = Some(super::kallsyms::has_syscall_wrapper()?);
        }
        Ok(facts)
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary.
pub(super) fn clip(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default().to_string()
}

impl Layer {
    fn parse(text: &str, origin: &str) -> Result<Layer, KernelError> {
        let mut entries: HashMap<String, ConfigEntry> = HashMap::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            if let Some(name) = raw
                .strip_prefix("# ")
                .and_then(|r| r.strip_suffix(" is not set"))
                .filter(|n| n.starts_with("CONFIG_"))
            {
                entries
                    .entry(name.to_string())
                    .or_insert(ConfigEntry { value: None, line });
                continue;
            }
            if !raw.starts_with("CONFIG_") {
                continue;
            }
            let bad = |reason| KernelError::ConfigLine {
                origin: origin.to_string(),
                line,
                text: clip(raw, 200),
                reason,
            };
            let (name, value) = raw.split_once('=').ok_or_else(|| bad("no '=' separator"))?;
            if value.is_empty() {
                return Err(bad("no value after '='"));
            }
            let entry = entries
                .entry(name.to_string())
                .or_insert(ConfigEntry { value: None, line });
            // The first value wins; a value after "is not set" replaces it.
            if entry.value.is_none() {
                *entry = ConfigEntry {
                    value: Some(value.to_string()),
                    line,
                };
            }
        }
        Ok(Layer {
            origin: origin.to_string(),
            entries,
        })
    }
}

/// Reads `path`, decompressing it if it starts with the gzip magic.
fn read_maybe_gzip(path: &Path) -> Result<String, KernelError> {
    let bytes = std::fs::read(path).map_err(|e| KernelError::io(path, e))?;
    let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes.as_slice())
            .take(MAX_CONFIG_LEN)
            .read_to_end(&mut out)
            .map_err(|source| KernelError::Gzip {
                path: path.to_path_buf(),
                source,
            })?;
        out
    } else {
        bytes
    };
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The paths of the system config, in the order libbpf tries them.
pub fn system_config_paths() -> Result<Vec<PathBuf>, KernelError> {
    let release =
        std::fs::read_to_string(OSRELEASE_PATH).map_err(|e| KernelError::io(OSRELEASE_PATH, e))?;
    Ok(vec![
        PathBuf::from(format!("/boot/config-{}", release.trim_end())),
        PathBuf::from(PROC_CONFIG_GZ),
    ])
}

impl KernelConfig {
    /// An empty config: every `CONFIG_*` is missing.
    pub fn new() -> KernelConfig {
        KernelConfig::default()
    }

    /// Parses config text; `origin` names it in errors (a path, `"user kconfig"`).
    /// Fails on a `CONFIG_` line without `=` or without a value.
    pub fn parse(text: &str, origin: &str) -> Result<KernelConfig, KernelError> {
        Ok(KernelConfig {
            layers: vec![Layer::parse(text, origin)?],
            linux: LinuxFacts::default(),
        })
    }

    /// Reads a config file, plain or gzip.
    pub fn read_file(path: impl AsRef<Path>) -> Result<KernelConfig, KernelError> {
        let path = path.as_ref();
        let text = read_maybe_gzip(path)?;
        KernelConfig::parse(&text, &path.display().to_string())
    }

    /// Reads the running kernel's config: the first of
    /// [`system_config_paths`] that exists.
    pub fn read_system() -> Result<KernelConfig, KernelError> {
        let paths = system_config_paths()?;
        for path in &paths {
            match KernelConfig::read_file(path) {
                Ok(config) => {
                    debug!("kernel config read from {}", path.display());
                    return Ok(config);
                }
                Err(KernelError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    continue
                }
                Err(e) => return Err(e),
            }
        }
        Err(KernelError::NoKernelConfig { tried: paths })
    }

    /// Puts `overrides` (option name -> value text, as after `=`) above every
    /// other source.
    pub fn with_overrides(mut self, overrides: &HashMap<String, String>) -> KernelConfig {
        let entries = overrides
            .iter()
            .map(|(name, value)| {
                (
                    name.clone(),
                    ConfigEntry {
                        value: Some(value.clone()),
                        line: 0,
                    },
                )
            })
            .collect();
        self.layers.insert(
            0,
            Layer {
                origin: "override".into(),
                entries,
            },
        );
        self
    }

    /// Adds `lower`'s sources below this config's (used where this has no value).
    pub fn then(mut self, lower: KernelConfig) -> KernelConfig {
        self.layers.extend(lower.layers);
        self
    }

    /// Sets the facts behind the `LINUX_*` externs.
    pub fn with_linux_facts(mut self, linux: LinuxFacts) -> KernelConfig {
        self.linux = linux;
        self
    }

    /// The value of option `name` from the first source that gives one.
    pub fn lookup(&self, name: &str) -> Option<ConfigValue<'_>> {
        self.layers.iter().find_map(|layer| {
            let entry = layer.entries.get(name)?;
            Some(ConfigValue {
                value: entry.value.as_deref()?,
                origin: &layer.origin,
                line: entry.line,
            })
        })
    }

    /// Where option `name` is written as `# CONFIG_X is not set`, if it is and
    /// no source gives it a value.
    pub fn not_set_at(&self, name: &str) -> Option<(&str, usize)> {
        if self.lookup(name).is_some() {
            return None;
        }
        self.layers.iter().find_map(|layer| {
            let entry = layer.entries.get(name)?;
            entry
                .value
                .is_none()
                .then_some((layer.origin.as_str(), entry.line))
        })
    }

    /// Whether some source gives `name` a value.
    pub fn contains(&self, name: &str) -> bool {
        self.lookup(name).is_some()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(crate) const SAMPLE: &str = "\
#
# Automatically generated file; DO NOT EDIT.
#
CONFIG_CC_VERSION_TEXT=\"gcc (GCC) 15.3.0\"
CONFIG_BPF_SYSCALL=y
CONFIG_HZ=250
CONFIG_TUN=m
# CONFIG_KPROBES is not set
CONFIG_LOG_BUF_SHIFT=0x11
CONFIG_NEG=-5
CONFIG_OCT=010
CONFIG_HZ=100
";

    #[test]
    fn parses_values_first_wins() {
        let c = KernelConfig::parse(SAMPLE, "sample").unwrap();
        let hz = c.lookup("CONFIG_HZ").unwrap();
        assert_eq!((hz.value, hz.line), ("250", 6));
        assert_eq!(c.lookup("CONFIG_KPROBES"), None);
        assert_eq!(c.not_set_at("CONFIG_KPROBES"), Some(("sample", 8)));
        assert_eq!(
            c.lookup("CONFIG_CC_VERSION_TEXT").unwrap().value,
            "\"gcc (GCC) 15.3.0\""
        );
    }

    #[test]
    fn malformed_lines_name_the_line() {
        let err = KernelConfig::parse("# ok\nCONFIG_A=y\nCONFIG_B\n", "t").unwrap_err();
        assert!(
            matches!(err, KernelError::ConfigLine { line: 3, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("t:3"), "{err}");
        let err = KernelConfig::parse("CONFIG_A=\n", "t").unwrap_err();
        assert!(
            matches!(err, KernelError::ConfigLine { line: 1, .. }),
            "{err}"
        );
        // Not CONFIG_-prefixed lines are ignored, whatever they hold.
        assert!(KernelConfig::parse(" CONFIG_X\nfoo\n\u{0}\n", "t").is_ok());
    }

    #[test]
    fn overrides_and_layers() {
        let user = KernelConfig::parse("CONFIG_HZ=1000\n", "user kconfig").unwrap();
        let system = KernelConfig::parse(SAMPLE, "system").unwrap();
        let mut overrides = HashMap::new();
        overrides.insert("CONFIG_TUN".to_string(), "n".to_string());
        let config = user.then(system).with_overrides(&overrides);
        assert_eq!(config.lookup("CONFIG_HZ").unwrap().value, "1000");
        assert_eq!(config.lookup("CONFIG_TUN").unwrap().origin, "override");
        assert_eq!(
            config.lookup("CONFIG_BPF_SYSCALL").unwrap().origin,
            "system"
        );
    }
}
