//! Subskeletons: a BPF library's maps, programs and global variables,
//! typed, inside the final object it was statically linked into (the Rust
//! counterpart of `bpftool gen subskeleton`).
//!
//! The library does not know where the linker put its parts, so a
//! generated subskeleton finds them by name when it is created: maps and
//! programs by their names, variables by their names in the final object's
//! BTF DATASEC of the section they were defined in (which gives the offset),
//! checking that the sizes are the library's. Variables are read and
//! written through their own mapping of the data map (volatile accesses, as
//! the skeleton's accessors), or through map syscalls when it is not
//! mmapable; `.rodata` is frozen at load, so its variables can only be read.

use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd};

use crate::btf::TypeKind;
use crate::loader::LoadedObject;
use crate::plain::Plain;
use crate::sys::{Access, MapFd, Mmap, SysError};

/// An error finding a library's part in the final object, or using it.
#[derive(Debug, thiserror::Error)]
pub enum SubskelError {
    /// No map of that name (was the library linked into this object?).
    #[error("the final object has no map '{0}' (was the library linked into it?)")]
    NoMap(String),
    /// A map whose key or value size differs from the library's.
    #[error(
        "map '{map}': key {key} / value {value} bytes in the final object, the library's are \
         {want_key} / {want_value}"
    )]
    MapLayout {
        /// The map.
        map: String,
        /// Key size found.
        key: u32,
        /// Value size found.
        value: u32,
        /// The library's key size.
        want_key: usize,
        /// The library's value size.
        want_value: usize,
    },
    /// No program of that name, or it was not loaded.
    #[error("the final object has no loaded program '{0}'")]
    NoProgram(String),
    /// The variable is not in the final object's BTF DATASEC of its section.
    #[error("the final object has no variable '{var}' in section '{section}'")]
    NoVar {
        /// The section (`.bss`, `.data`, `.rodata`...).
        section: String,
        /// The variable.
        var: String,
    },
    /// The variable's size differs from the library's.
    #[error("variable '{var}' is {found} bytes in the final object, the library's is {expected}")]
    VarSize {
        /// The variable.
        var: String,
        /// Size in the final object.
        found: u32,
        /// Size in the library.
        expected: usize,
    },
    /// A write to a read-only variable (`.rodata` after load).
    #[error("variable '{0}' is read-only (its section is frozen)")]
    ReadOnly(String),
    /// A syscall failed.
    #[error("'{what}'")]
    Sys {
        /// The map or variable.
        what: String,
        /// The cause.
        #[source]
        source: SysError,
    },
}

fn sys(what: &str) -> impl FnOnce(SysError) -> SubskelError + '_ {
    move |source| SubskelError::Sys {
        what: what.to_string(),
        source,
    }
}

/// A map of the library, with the library's key and value types.
#[derive(Debug)]
pub struct SubskelMap<'a, K, V> {
    fd: &'a MapFd,
    name: &'static str,
    _kv: PhantomData<fn() -> (K, V)>,
}

impl<K: Plain, V: Plain> SubskelMap<'_, K, V> {
    /// The value at `key`, if any.
    pub fn lookup(&self, key: &K) -> Result<Option<V>, SubskelError> {
        let mut v = V::zeroed();
        let found = self
            .fd
            .lookup(key.as_bytes(), v.as_bytes_mut(), 0)
            .map_err(sys(self.name))?;
        Ok(found.then_some(v))
    }

    /// Sets `key` to `value` (`flags`: `BPF_ANY` 0, `BPF_NOEXIST` 1, `BPF_EXIST` 2).
    pub fn update(&self, key: &K, value: &V, flags: u64) -> Result<(), SubskelError> {
        self.fd
            .update(key.as_bytes(), value.as_bytes(), flags)
            .map_err(sys(self.name))
    }

    /// The map's file descriptor.
    pub fn fd(&self) -> &MapFd {
        self.fd
    }
}

/// Finds map `name` of the final object, checking the library's layout.
pub fn map<'a, K: Plain, V: Plain>(
    obj: &'a LoadedObject,
    name: &'static str,
) -> Result<SubskelMap<'a, K, V>, SubskelError> {
    let index = obj
        .object()
        .maps
        .iter()
        .position(|m| m.name == name)
        .ok_or_else(|| SubskelError::NoMap(name.into()))?;
    let fd = &obj
        .map(index)
        .ok_or_else(|| SubskelError::NoMap(name.into()))?
        .fd;
    let (want_key, want_value) = (size_of::<K>(), size_of::<V>());
    if fd.key_size() as usize != want_key || fd.value_size() as usize != want_value {
        return Err(SubskelError::MapLayout {
            map: name.into(),
            key: fd.key_size(),
            value: fd.value_size(),
            want_key,
            want_value,
        });
    }
    Ok(SubskelMap {
        fd,
        name,
        _kv: PhantomData,
    })
}

/// Finds loaded program `name` of the final object.
pub fn program<'a>(obj: &'a LoadedObject, name: &str) -> Result<BorrowedFd<'a>, SubskelError> {
    let index = obj
        .object()
        .programs
        .iter()
        .position(|p| p.name == name)
        .ok_or_else(|| SubskelError::NoProgram(name.into()))?;
    obj.prog_fd(index)
        .map(AsFd::as_fd)
        .ok_or_else(|| SubskelError::NoProgram(name.into()))
}

/// A global variable of the library, at the place the linker gave it.
#[derive(Debug)]
pub struct SubskelVar<'a, T> {
    fd: &'a MapFd,
    mmap: Option<Mmap>,
    offset: usize,
    name: &'static str,
    _t: PhantomData<fn() -> T>,
}

impl<T: Plain> SubskelVar<'_, T> {
    /// A volatile copy of the variable.
    pub fn read(&self) -> Result<T, SubskelError> {
        let mut v = T::zeroed();
        match &self.mmap {
            Some(m) => m
                .read_volatile(self.offset, v.as_bytes_mut())
                .map_err(sys(self.name))?,
            None => {
                let mut all = vec![0u8; self.fd.value_size() as usize];
                self.fd
                    .lookup(&0u32.to_le_bytes(), &mut all, 0)
                    .map_err(sys(self.name))?;
                let bytes = all
                    .get(self.offset..self.offset + size_of::<T>())
                    .ok_or_else(|| SubskelError::NoVar {
                        section: String::new(),
                        var: self.name.into(),
                    })?;
                v.as_bytes_mut().copy_from_slice(bytes);
            }
        }
        Ok(v)
    }

    /// Writes the variable (volatile, through the mapping; programs see it
    /// at once). Variables of sections that are not writable mappings
    /// (`.rodata` after load) are refused.
    pub fn write(&mut self, value: &T) -> Result<(), SubskelError> {
        match &mut self.mmap {
            Some(m) if m.access() == Access::ReadWrite => m
                .write_volatile(self.offset, value.as_bytes())
                .map_err(sys(self.name)),
            _ => Err(SubskelError::ReadOnly(self.name.into())),
        }
    }
}

/// Finds variable `name` of `section` in the final object's BTF and maps
/// its data map.
pub fn var<'a, T: Plain>(
    obj: &'a LoadedObject,
    section: &str,
    name: &'static str,
) -> Result<SubskelVar<'a, T>, SubskelError> {
    let missing = || SubskelError::NoVar {
        section: section.into(),
        var: name.into(),
    };
    let btf = obj.object().btf.as_ref().ok_or_else(missing)?;
    let mut place = None;
    for t in btf.types().flatten() {
        let TypeKind::Datasec(d) = t.kind else {
            continue;
        };
        if btf.name(t.name_off).ok() != Some(section) {
            continue;
        }
        place = d
            .vars()
            .find(|v| btf.type_name(v.ty).ok() == Some(name))
            .map(|v| (v.offset, v.size));
        break;
    }
    let (offset, size) = place.ok_or_else(missing)?;
    if size as usize != size_of::<T>() {
        return Err(SubskelError::VarSize {
            var: name.into(),
            found: size,
            expected: size_of::<T>(),
        });
    }
    let index = obj
        .object()
        .maps
        .iter()
        .position(|m| m.name == section)
        .ok_or_else(missing)?;
    let loaded = obj.map(index).ok_or_else(missing)?;
    let len = loaded.fd.value_size() as usize;
    if offset as usize + size as usize > len {
        return Err(missing());
    }
    let mmap = if loaded.mmap.is_some() {
        let mapped = match Mmap::new(loaded.fd.as_fd(), len, 0, Access::ReadWrite) {
            // Frozen (.rodata): read-only mapping.
            Err(e) if matches!(e.errno(), Some(libc::EPERM | libc::EACCES)) => {
                Mmap::new(loaded.fd.as_fd(), len, 0, Access::Read)
            }
            other => other,
        };
        Some(mapped.map_err(sys(name))?)
    } else {
        None
    };
    Ok(SubskelVar {
        fd: &loaded.fd,
        mmap,
        offset: offset as usize,
        name,
        _t: PhantomData,
    })
}
