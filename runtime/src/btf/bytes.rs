//! Where a [`Btf`](super::Btf)'s bytes live: an owned buffer, or (for the
//! kernel's own BTF, with the `loader` feature) a read-only mapping of
//! `/sys/kernel/btf/vmlinux` that is copied only if a patcher writes to it.

use std::ops::Deref;
#[cfg(feature = "loader")]
use std::sync::Arc;

/// The raw bytes of a BTF: header, type section, string section.
#[derive(Clone, Default)]
pub(crate) struct Bytes {
    owned: Vec<u8>,
    /// When set, the bytes (and `owned` is empty); shared by clones, as the
    /// mapping is immutable.
    #[cfg(feature = "loader")]
    mapped: Option<Arc<crate::sys::KernelFileMap>>,
}

impl Bytes {
    /// The bytes as a growable buffer, copying a mapping first.
    pub(crate) fn to_mut(&mut self) -> &mut Vec<u8> {
        #[cfg(feature = "loader")]
        if let Some(map) = self.mapped.take() {
            self.owned = map.bytes().to_vec();
        }
        &mut self.owned
    }

    /// Whether the bytes are a mapping of the kernel's file.
    #[cfg(all(test, feature = "loader"))]
    pub(crate) fn is_mapped(&self) -> bool {
        self.mapped.is_some()
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(owned: Vec<u8>) -> Bytes {
        Bytes {
            owned,
            #[cfg(feature = "loader")]
            mapped: None,
        }
    }
}

impl Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        #[cfg(feature = "loader")]
        if let Some(map) = &self.mapped {
            return map.bytes();
        }
        &self.owned
    }
}

/// Reads the BTF file at `path`: mapped when it is one of the kernel's
/// (`/sys/kernel/btf/*`, on kernels that allow mapping it: 6.16 and later
/// for vmlinux), read into memory otherwise.
pub(crate) fn read_file(path: &std::path::Path) -> std::io::Result<Bytes> {
    #[cfg(feature = "loader")]
    if path.starts_with("/sys/kernel/btf/") {
        match crate::sys::KernelFileMap::sysfs_btf(path) {
            Ok(map) => {
                return Ok(Bytes {
                    owned: Vec::new(),
                    mapped: Some(Arc::new(map)),
                })
            }
            Err(e) => log::debug!("reading {} instead of mapping it: {e}", path.display()),
        }
    }
    std::fs::read(path).map(Bytes::from)
}

#[cfg(all(test, feature = "loader"))]
mod tests {
    use super::*;
    use crate::btf::{Btf, VMLINUX_BTF_PATH};

    #[test]
    fn kernel_btf_mapped_or_read_is_the_file() {
        let path = std::path::Path::new(VMLINUX_BTF_PATH);
        let file = std::fs::read(path).expect("every kernel of the matrix has vmlinux BTF");
        let bytes = read_file(path).expect("read_file");
        assert_eq!(&*bytes, &file[..]);
        // 6.16 added mmap of vmlinux BTF; Debian's kernels carry the
        // `.BTF` section page-aligned, which the kernel requires.
        let version = crate::kernel::kernel_version().expect("kernel version");
        assert_eq!(
            bytes.is_mapped(),
            version >= (6 << 16) | (16 << 8),
            "mapped on kernel {:#x}",
            version
        );
        // A writer gets its own copy; the mapping is never written.
        let mut copy = bytes.clone();
        copy.to_mut().push(0);
        assert!(!copy.is_mapped());
        assert_eq!(copy.len(), file.len() + 1);
        assert_eq!(&*bytes, &file[..]);
        // And the parsed BTF is the same either way.
        let mapped = Btf::from_file(path).expect("from_file");
        let read = Btf::from_vec(file).expect("from_vec");
        assert_eq!(mapped.len(), read.len());
        assert_eq!(
            mapped.find_by_name("task_struct"),
            read.find_by_name("task_struct")
        );
    }
}
