//! BTF from a file, as bpftool's `btf dump file F` takes it: raw BTF
//! (`/sys/kernel/btf/vmlinux`, a BTFHub file), an ELF file's `.BTF`
//! section (an object, a vmlinux image with BTF), or split BTF (a kernel
//! module's) on top of a base.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use skelgen_runtime::btf::{Btf, BtfError, VMLINUX_BTF_PATH};

/// An error reading BTF from a file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BtfFileError {
    /// The file could not be read.
    #[error("cannot read {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not valid BTF.
    #[error("{}: invalid BTF", path.display())]
    Btf {
        /// The file.
        path: PathBuf,
        /// What the reader found.
        #[source]
        source: BtfError,
    },
    /// An ELF file whose `.BTF` could not be read.
    #[error("{}: {reason}", path.display())]
    Elf {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// Reads the BTF in `path`. `base` is the BTF that split BTF continues; when
/// it is `None` and `path` is a module's file under `/sys/kernel/btf/`, the
/// running kernel's vmlinux BTF is the base (as bpftool does).
pub fn read_btf(path: &Path, base: Option<&Path>) -> Result<Arc<Btf>, BtfFileError> {
    let bytes = std::fs::read(path).map_err(|source| BtfFileError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let default_base = PathBuf::from(VMLINUX_BTF_PATH);
    let base = match base {
        Some(b) => Some(b.to_path_buf()),
        None => {
            let in_sysfs = path.parent() == default_base.parent();
            (in_sysfs && path != default_base).then_some(default_base)
        }
    };
    let base = match base {
        Some(b) => Some(read_btf(&b, None)?),
        None => None,
    };
    // The BTF bytes: the file itself, or the .BTF section of an ELF file.
    let raw = if bytes.starts_with(b"\x7fELF") {
        skelgen_runtime::btf::elf_btf_section(&bytes)
            .map_err(|reason| BtfFileError::Elf {
                path: path.to_path_buf(),
                reason,
            })?
            .to_vec()
    } else {
        bytes
    };
    let parsed = match base {
        Some(base) => Btf::parse_split(&raw, base),
        None => Btf::from_vec(raw),
    };
    parsed.map(Arc::new).map_err(|source| BtfFileError::Btf {
        path: path.to_path_buf(),
        source,
    })
}
