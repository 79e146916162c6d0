//! Global data: [`DataMap`] for `.bss`/`.data` (written by BPF programs while
//! user space reads them) and [`FrozenData`] for frozen `.rodata`/`.kconfig`.
//!
//! See [`DataMap`] for why neither hands out a reference into the map.

use std::marker::PhantomData;
use std::ops::Deref;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use super::{Handle, MapError};
use crate::sys::{map_flags, map_type, Access, MapFd, MapInfo, Mmap};
use crate::Plain;

/// The only key of a global-data map.
const KEY: u32 = 0;

/// Check that `fd` is an array whose element 0 is a `T`.
fn data_handle<T>(fd: MapFd, name: &str, which: &'static str) -> Result<Handle, MapError> {
    let handle = Handle::new(fd, name);
    if handle.fd().map_type() != map_type::ARRAY || handle.fd().max_entries() == 0 {
        return Err(handle.wrong_type(which, "an ARRAY map with at least one element"));
    }
    // A generated section struct is the section size rounded up to the
    // struct's alignment (as C's sizeof would be): accept that too.
    let value = handle.fd().value_size() as usize;
    let rounded = value.next_multiple_of(std::mem::align_of::<T>());
    if size_of::<T>() != value && size_of::<T>() == rounded {
        return handle.check_sizes(which, 4, value);
    }
    handle.check_sizes(which, 4, size_of::<T>())
}

/// Check that `size_of::<U>()` bytes at `offset` lie inside a `T`.
fn check_range<T, U>(handle: &Handle, op: &'static str, offset: usize) -> Result<(), MapError> {
    let (len, size) = (size_of::<U>(), size_of::<T>());
    if offset.checked_add(len).is_some_and(|end| end <= size) {
        return Ok(());
    }
    Err(MapError::OutOfBounds {
        map: handle.name().to_string(),
        op,
        offset,
        len,
        size,
    })
}

/// Element 0 through `BPF_MAP_LOOKUP_ELEM`.
fn lookup_value<T: Plain>(handle: &Handle, op: &'static str) -> Result<T, MapError> {
    let mut value = T::zeroed();
    // The map's value may be shorter than T by T's tail padding.
    let len = (handle.fd().value_size() as usize).min(size_of::<T>());
    let found = handle
        .fd()
        .lookup(KEY.as_bytes(), &mut value.as_bytes_mut()[..len], 0)
        .map_err(handle.sys(op))?;
    if !found {
        return Err(handle.invalid(op, "the kernel has no element 0 in the array"));
    }
    Ok(value)
}

/// The value of a global-data map (`.bss`, `.data`, `.data.*`): element 0 of
/// an array, read and written as whole copies or field by field at byte
/// offsets, never as `&T`/`&mut T` (see below).
///
/// With a shared mapping (maps created with `BPF_F_MMAPABLE`) accesses are
/// volatile copies through it; without one, `BPF_MAP_LOOKUP_ELEM` and
/// `BPF_MAP_UPDATE_ELEM` of key 0.
///
/// # Why copies, not references
///
/// The value of a `.bss` or `.data` map is memory that BPF programs write at
/// any moment, on any CPU, without any lock Rust knows of. A `&T` into it would
/// promise the compiler that the bytes do not change while the reference
/// lives, and a `&mut T` that nothing else reads or writes them; both promises
/// are false, so either reference is undefined behaviour (a data race), however
/// briefly it is held, even if the code "only reads". libbpf-rs hands out
/// exactly such a `&mut`. Here every access is a bounds-checked volatile copy
/// (through the mapping) or a `BPF_MAP_LOOKUP_ELEM`/`UPDATE_ELEM` (without one),
/// and a field read is a copy of that field's bytes. A copy of a value being
/// written concurrently may mix old and new bytes, as the same read would in C;
/// it is never undefined behaviour.
///
/// [`FrozenData`] can lend `&T` because the `&T` points at its own copy: the
/// map is frozen (user space can no longer write it) and `BPF_F_RDONLY_PROG`
/// (programs never could), so a copy made after freezing is the value forever.
#[derive(Debug)]
pub struct DataMap<T> {
    handle: Handle,
    mmap: Option<Mmap>,
    // No T is stored: Send + Sync do not depend on it.
    _value: PhantomData<fn() -> T>,
}

impl<T: Plain> DataMap<T> {
    /// Wrap `fd` of an array whose element is a `T`, mapping it if the map is
    /// `BPF_F_MMAPABLE`: read-write, or read-only where the kernel refuses a
    /// writable mapping (frozen or `BPF_F_RDONLY_PROG` maps), in which case
    /// writes go through `BPF_MAP_UPDATE_ELEM`.
    pub fn new(fd: MapFd, name: &str) -> Result<Self, MapError> {
        let handle = data_handle::<T>(fd, name, "DataMap")?;
        let mmap = if handle.fd().flags() & map_flags::MMAPABLE != 0 {
            let len = size_of::<T>();
            let mapped = match Mmap::new(handle.fd(), len, 0, Access::ReadWrite) {
                // EPERM: frozen; EACCES: BPF_F_RDONLY_PROG.
                Err(e) if matches!(e.errno(), Some(libc::EPERM | libc::EACCES)) => {
                    Mmap::new(handle.fd(), len, 0, Access::Read)
                }
                other => other,
            };
            Some(mapped.map_err(handle.sys("mmap"))?)
        } else {
            None
        };
        Ok(DataMap {
            handle,
            mmap,
            _value: PhantomData,
        })
    }

    /// Wrap `fd` with a mapping the loader already made (or `None` to go
    /// through syscalls); the mapping must cover a whole `T`.
    pub fn with_mmap(fd: MapFd, name: &str, mmap: Option<Mmap>) -> Result<Self, MapError> {
        let handle = data_handle::<T>(fd, name, "DataMap")?;
        if let Some(m) = &mmap {
            if m.len() < size_of::<T>() {
                return Err(handle.invalid(
                    "with_mmap",
                    format!(
                        "the mapping is {} bytes, the value {} bytes",
                        m.len(),
                        size_of::<T>()
                    ),
                ));
            }
        }
        Ok(DataMap {
            handle,
            mmap,
            _value: PhantomData,
        })
    }

    /// The map's name.
    pub fn name(&self) -> &str {
        self.handle.name()
    }

    /// The map fd.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.handle.borrowed()
    }

    /// The map fd with its geometry.
    pub fn map_fd(&self) -> &MapFd {
        self.handle.fd()
    }

    /// What the kernel says about the map.
    pub fn info(&self) -> Result<MapInfo, MapError> {
        self.handle.info()
    }

    /// Whether accesses go through a shared mapping (rather than syscalls).
    pub fn is_mapped(&self) -> bool {
        self.mmap.is_some()
    }

    /// A copy of the whole value.
    pub fn read(&self) -> Result<T, MapError> {
        self.read_at::<T>(0)
    }

    /// Replace the whole value.
    pub fn write(&mut self, value: &T) -> Result<(), MapError> {
        self.write_at(0, value)
    }

    /// A copy of the `U` at byte `offset` of the value (a field).
    /// `offset + size_of::<U>()` must not exceed `size_of::<T>()`.
    pub fn read_at<U: Plain>(&self, offset: usize) -> Result<U, MapError> {
        let op = "read_at";
        check_range::<T, U>(&self.handle, op, offset)?;
        let mut out = U::zeroed();
        match &self.mmap {
            Some(m) => m
                .read_volatile(offset, out.as_bytes_mut())
                .map_err(self.handle.sys(op))?,
            None => {
                let whole = lookup_value::<T>(&self.handle, op)?;
                let field = offset
                    .checked_add(size_of::<U>())
                    .and_then(|end| whole.as_bytes().get(offset..end));
                if let Some(field) = field {
                    out.as_bytes_mut().copy_from_slice(field);
                }
            }
        }
        Ok(out)
    }

    /// Write `value` at byte `offset` of the value (a field).
    /// `offset + size_of::<U>()` must not exceed `size_of::<T>()`.
    ///
    /// Without a writable mapping this is a lookup, a change and an update of
    /// the whole value: a BPF program writing other bytes in between loses its
    /// write.
    pub fn write_at<U: Plain>(&mut self, offset: usize, value: &U) -> Result<(), MapError> {
        let op = "write_at";
        check_range::<T, U>(&self.handle, op, offset)?;
        match self
            .mmap
            .as_mut()
            .filter(|m| m.access() == Access::ReadWrite)
        {
            Some(m) => m
                .write_volatile(offset, value.as_bytes())
                .map_err(self.handle.sys(op)),
            None => {
                let mut whole = if size_of::<U>() == size_of::<T>() {
                    T::zeroed()
                } else {
                    lookup_value::<T>(&self.handle, op)?
                };
                let field = offset
                    .checked_add(size_of::<U>())
                    .and_then(|end| whole.as_bytes_mut().get_mut(offset..end));
                if let Some(field) = field {
                    field.copy_from_slice(value.as_bytes());
                }
                let len = (self.handle.fd().value_size() as usize).min(size_of::<T>());
                self.handle
                    .fd()
                    .update(KEY.as_bytes(), &whole.as_bytes()[..len], 0)
                    .map_err(self.handle.sys(op))
            }
        }
    }
}

/// The value of a frozen, program-read-only map (`.rodata`, `.kconfig` after
/// load): a copy taken once, lent as `&T` (through `Deref`) or copied with
/// [`FrozenData::get`].
///
/// [`FrozenData::new`] makes sure the copy can never go stale: it requires
/// `BPF_F_RDONLY_PROG` (BPF programs cannot write the map) and freezes the
/// map (user space cannot either) before copying.
#[derive(Debug)]
pub struct FrozenData<T> {
    handle: Handle,
    value: T,
}

impl<T: Plain> FrozenData<T> {
    /// Wrap `fd` of a `BPF_F_RDONLY_PROG` array whose element is a `T`,
    /// freezing it if it is not frozen yet, and copy its value.
    pub fn new(fd: MapFd, name: &str) -> Result<Self, MapError> {
        let handle = data_handle::<T>(fd, name, "FrozenData")?;
        if handle.fd().flags() & map_flags::RDONLY_PROG == 0 {
            return Err(handle.wrong_type(
                "FrozenData",
                "a map created with BPF_F_RDONLY_PROG (BPF programs may write this one; \
                 use DataMap)",
            ));
        }
        match handle.fd().freeze() {
            Ok(()) => {}
            // Freezing a frozen map fails: EPERM on current kernels (a frozen
            // map is no longer writable), EBUSY on older ones. EBUSY also means
            // a writable mapping, which would make the copy stale, but the
            // kernel never maps a BPF_F_RDONLY_PROG map writable. The fd's
            // fdinfo says whether it is frozen.
            Err(e)
                if matches!(e.errno(), Some(libc::EBUSY | libc::EPERM))
                    && is_frozen(handle.borrowed()) => {}
            Err(e) => return Err(handle.sys("freeze")(e)),
        }
        let value = lookup_value::<T>(&handle, "read")?;
        Ok(FrozenData { handle, value })
    }

    /// A copy of the value.
    pub fn get(&self) -> T {
        self.value
    }

    /// The map's name.
    pub fn name(&self) -> &str {
        self.handle.name()
    }

    /// The map fd.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.handle.borrowed()
    }

    /// The map fd with its geometry.
    pub fn map_fd(&self) -> &MapFd {
        self.handle.fd()
    }

    /// What the kernel says about the map.
    pub fn info(&self) -> Result<MapInfo, MapError> {
        self.handle.info()
    }
}

impl<T> Deref for FrozenData<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> AsRef<T> for FrozenData<T> {
    fn as_ref(&self) -> &T {
        &self.value
    }
}

/// Whether the kernel reports the map behind `fd` as frozen (`frozen: 1` in
/// `/proc/self/fdinfo/<fd>`, kernel 5.2+); false when it cannot tell.
fn is_frozen(fd: BorrowedFd<'_>) -> bool {
    let path = format!("/proc/self/fdinfo/{}", fd.as_fd().as_raw_fd());
    let Ok(text) = std::fs::read_to_string(&path) else {
        return false;
    };
    text.lines()
        .filter_map(|line| line.strip_prefix("frozen:"))
        .any(|v| v.trim() == "1")
}
