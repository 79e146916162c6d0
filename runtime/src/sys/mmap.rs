//! Shared mappings of map fds (mmapable arrays, ring buffers, perf buffers).
//!
//! The memory is shared with the kernel and BPF programs, which write it at any
//! time, so it is never exposed as `&[u8]`/`&mut [u8]`: reads and writes are
//! volatile copies of bounds-checked byte ranges, and ring positions are
//! acquire/release atomics.

use std::os::fd::{AsFd, AsRawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use super::SysError;

/// Access of a mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `PROT_READ`.
    Read,
    /// `PROT_READ | PROT_WRITE`.
    ReadWrite,
}

/// A `MAP_SHARED` mapping, unmapped on drop.
#[derive(Debug)]
pub struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
    access: Access,
}

// SAFETY: the mapping is plain shared memory with no thread affinity; all access
// goes through volatile or atomic operations, writes need `&mut self`.
unsafe impl Send for Mmap {}
// SAFETY: `&self` methods only read (volatile or atomic loads) or perform atomic
// stores, which are sound to do concurrently.
unsafe impl Sync for Mmap {}

const OP: &str = "mmap";

impl Mmap {
    /// Map `len` bytes of `fd` from `offset` (a multiple of the page size).
    pub fn new(fd: impl AsFd, len: usize, offset: u64, access: Access) -> Result<Self, SysError> {
        if len == 0 {
            return Err(SysError::invalid(OP, "length is 0"));
        }
        let page = super::host::page_size() as u64;
        if offset % page != 0 {
            return Err(SysError::invalid(
                OP,
                format!("offset {offset} is not a multiple of the page size {page}"),
            ));
        }
        let offset = libc::off_t::try_from(offset)
            .map_err(|_| SysError::invalid(OP, format!("offset {offset} too large")))?;
        let prot = match access {
            Access::Read => libc::PROT_READ,
            Access::ReadWrite => libc::PROT_READ | libc::PROT_WRITE,
        };
        // SAFETY: a fresh mapping at an address the kernel chooses cannot alias any
        // Rust object; the fd is borrowed and valid for the call.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                fd.as_fd().as_raw_fd(),
                offset,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(SysError::from_errno(
                OP,
                std::io::Error::last_os_error(),
                Some(format!("{len} bytes at offset {offset}")),
            ));
        }
        let ptr = NonNull::new(addr.cast::<u8>())
            .ok_or_else(|| SysError::invalid(OP, "kernel returned NULL"))?;
        Ok(Mmap { ptr, len, access })
    }

    /// Start of the mapping.
    #[inline]
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    /// Start of the mapping, for writes.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: empty mappings are refused.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The access it was mapped with.
    pub fn access(&self) -> Access {
        self.access
    }

    fn check(&self, offset: usize, len: usize, align: usize) -> Result<(), SysError> {
        let end = offset.checked_add(len);
        if end.is_none_or(|end| end > self.len) {
            return Err(SysError::invalid(
                OP,
                format!(
                    "range {offset}+{len} is outside the {}-byte mapping",
                    self.len
                ),
            ));
        }
        if offset % align != 0 {
            return Err(SysError::invalid(
                OP,
                format!("offset {offset} is not {align}-byte aligned"),
            ));
        }
        Ok(())
    }

    /// Copy `out.len()` bytes from `offset` with volatile reads, each as
    /// wide as the alignment allows (8, 4, 2 or 1 bytes): a naturally aligned
    /// scalar that a BPF program updates (an atomic counter in `.bss`) is
    /// read in one load, never torn into bytes from before and after the
    /// update. (Byte-wise reads made a counter read in a loop go backwards
    /// under qemu on 6.1.)
    pub fn read_volatile(&self, offset: usize, out: &mut [u8]) -> Result<(), SysError> {
        self.check(offset, out.len(), 1)?;
        let mut i = 0;
        while i < out.len() {
            let at = offset + i;
            let width = access_width(self.ptr.as_ptr() as usize + at, out.len() - i);
            let dst = &mut out[i..i + width];
            // SAFETY: `at + width <= offset + out.len() <= len` (checked above),
            // the mapping is live and readable for the lifetime of `self`, and
            // `access_width` picked a width the address is aligned to.
            unsafe {
                let src = self.ptr.as_ptr().add(at);
                match width {
                    8 => dst.copy_from_slice(&src.cast::<u64>().read_volatile().to_ne_bytes()),
                    4 => dst.copy_from_slice(&src.cast::<u32>().read_volatile().to_ne_bytes()),
                    2 => dst.copy_from_slice(&src.cast::<u16>().read_volatile().to_ne_bytes()),
                    _ => dst[0] = src.read_volatile(),
                }
            }
            i += width;
        }
        Ok(())
    }

    /// Copy `data` to `offset` with volatile writes, each as wide as the
    /// alignment allows (see [`Mmap::read_volatile`]).
    pub fn write_volatile(&mut self, offset: usize, data: &[u8]) -> Result<(), SysError> {
        if self.access != Access::ReadWrite {
            return Err(SysError::invalid(OP, "mapping is read-only"));
        }
        self.check(offset, data.len(), 1)?;
        let mut i = 0;
        while i < data.len() {
            let at = offset + i;
            let width = access_width(self.ptr.as_ptr() as usize + at, data.len() - i);
            let src = &data[i..i + width];
            let mut word = [0u8; 8];
            word[..width].copy_from_slice(src);
            let [b0, b1, b2, b3, ..] = word;
            // SAFETY: `at + width <= offset + data.len() <= len` (checked above);
            // the mapping is live and writable (checked `access`); `&mut self`
            // excludes other Rust writers; the address is aligned to `width`.
            unsafe {
                let dst = self.ptr.as_ptr().add(at);
                match width {
                    8 => dst.cast::<u64>().write_volatile(u64::from_ne_bytes(word)),
                    4 => dst
                        .cast::<u32>()
                        .write_volatile(u32::from_ne_bytes([b0, b1, b2, b3])),
                    2 => dst
                        .cast::<u16>()
                        .write_volatile(u16::from_ne_bytes([b0, b1])),
                    _ => dst.write_volatile(b0),
                }
            }
            i += width;
        }
        Ok(())
    }

    fn atomic_u64(&self, offset: usize) -> Result<&AtomicU64, SysError> {
        self.check(offset, 8, 8)?;
        // SAFETY: the 8 bytes at `offset` are in bounds and 8-aligned (the mapping
        // is page-aligned), live as long as `&self`, and only ever accessed
        // atomically or volatilely from this side.
        Ok(unsafe { AtomicU64::from_ptr(self.ptr.as_ptr().add(offset).cast::<u64>()) })
    }

    /// Acquire-load the `u64` at `offset` (8-aligned): ring buffer and perf buffer
    /// positions written by the kernel.
    pub fn load_acquire_u64(&self, offset: usize) -> Result<u64, SysError> {
        Ok(self.atomic_u64(offset)?.load(Ordering::Acquire))
    }

    /// Release-store `value` at `offset` (8-aligned): the consumer position.
    pub fn store_release_u64(&self, offset: usize, value: u64) -> Result<(), SysError> {
        if self.access != Access::ReadWrite {
            return Err(SysError::invalid(OP, "mapping is read-only"));
        }
        self.atomic_u64(offset)?.store(value, Ordering::Release);
        Ok(())
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned; nothing borrowed from
        // the mapping outlives `self`.
        let ret = unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
        if ret != 0 {
            log::warn!(
                "munmap of {} bytes failed: {}",
                self.len,
                std::io::Error::last_os_error()
            );
        }
    }
}

/// The widest access (8, 4, 2 or 1 bytes) that `addr` is aligned to and that
/// fits in `remaining` bytes.
fn access_width(addr: usize, remaining: usize) -> usize {
    [8, 4, 2]
        .into_iter()
        .find(|&w| addr % w == 0 && remaining >= w)
        .unwrap_or(1)
}

/// A private read-only mapping of a kernel file whose contents never change
/// (`/sys/kernel/btf/vmlinux`: the kernel image's own `.BTF`, read-only
/// after boot), exposed as a byte slice. Unmapped on drop.
///
/// Mapping it rather than reading it saves the copy and, since the kernel
/// maps its pages when the mapping is made, every page fault of a fresh
/// 5 MB buffer. Only for files that are immutable kernel memory: a slice
/// over a file someone may truncate or write would be unsound.
#[derive(Debug)]
pub struct KernelFileMap {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: read-only memory that nothing writes; no thread affinity.
unsafe impl Send for KernelFileMap {}
// SAFETY: shared access is reads of immutable bytes.
unsafe impl Sync for KernelFileMap {}

impl KernelFileMap {
    /// Maps all of the file at `path`, which must be one of the kernel's
    /// immutable sysfs files under `/sys/kernel/btf/`. Fails (and the
    /// caller reads the file instead) on kernels that cannot map it.
    pub fn sysfs_btf(path: &std::path::Path) -> Result<Self, SysError> {
        const MAP: &str = "mmap of kernel BTF";
        if !path.starts_with("/sys/kernel/btf/") {
            return Err(SysError::invalid(
                MAP,
                format!("{} is not a kernel BTF file", path.display()),
            ));
        }
        let file = std::fs::File::open(path)
            .map_err(|e| SysError::from_errno(MAP, e, Some(path.display().to_string())))?;
        let len = file
            .metadata()
            .map_err(|e| SysError::from_errno(MAP, e, Some(path.display().to_string())))?
            .len();
        let len = usize::try_from(len)
            .ok()
            .filter(|&l| l > 0)
            .ok_or_else(|| SysError::invalid(MAP, format!("{} has size {len}", path.display())))?;
        // A fresh mapping at an address the kernel chooses cannot alias any
        // Rust object; the fd is valid for the call (the mapping outlives
        // it, as mappings do).
        // SAFETY: see above.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(SysError::from_errno(
                MAP,
                std::io::Error::last_os_error(),
                Some(path.display().to_string()),
            ));
        }
        let ptr = NonNull::new(addr.cast::<u8>())
            .ok_or_else(|| SysError::invalid(MAP, "kernel returned NULL"))?;
        Ok(KernelFileMap { ptr, len })
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        // `len` readable bytes at `ptr` for the life of `self`; the kernel
        // never changes them (see the type's docs) and `self` hands out no
        // mutable access.
        // SAFETY: see above.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for KernelFileMap {
    fn drop(&mut self) {
        // Unmaps exactly the mapping made in `sysfs_btf`; no slice from
        // `bytes` outlives `self`.
        // SAFETY: see above.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::access_width;

    #[test]
    fn access_width_follows_alignment_and_length() {
        assert_eq!(access_width(0x1000, 8), 8);
        assert_eq!(access_width(0x1000, 16), 8);
        assert_eq!(access_width(0x1000, 7), 4);
        assert_eq!(access_width(0x1004, 8), 4);
        assert_eq!(access_width(0x1002, 8), 2);
        assert_eq!(access_width(0x1001, 8), 1);
        assert_eq!(access_width(0x1000, 1), 1);
        // A u64 field at an 8-aligned offset is one access.
        let mut at = 0x2000;
        let mut left = 8;
        let mut accesses = 0;
        while left > 0 {
            let w = access_width(at, left);
            at += w;
            left -= w;
            accesses += 1;
        }
        assert_eq!(accesses, 1);
    }
}
