//! What generated skeletons are made of: the pre-load handles
//! ([`OpenMap`], [`OpenProgram`]), the loaded [`Program`], and the glue the
//! generated `open()`/`load()` call. Users reach these through their
//! skeleton's typed fields; nothing here is looked up by name at run time.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

pub use crate::loader::{CoreMode, LoadError, LoadedObject, LoaderParts, OpenObject, OpenOptions};
use crate::loader::{MapSettings, ProgSettings};
use crate::map::MapError;
pub use crate::obj::MapType;
use crate::sys::SysError;
pub use crate::sys::{TestRun, TestRunOutput};
use crate::Plain;

/// The embedded object, 8-byte aligned as the ELF reader expects.
#[repr(C, align(8))]
pub struct Aligned<T: ?Sized>(pub T);

/// A map before load: its settings, applied when the skeleton loads.
#[derive(Debug, Clone)]
pub struct OpenMap {
    index: usize,
    name: &'static str,
    settings: MapSettings,
}

/// An error in a pre-load setting.
#[derive(Debug, thiserror::Error)]
#[error("map '{map}': {reason}")]
pub struct SettingError {
    map: String,
    reason: String,
}

impl OpenMap {
    #[doc(hidden)]
    pub fn __new(obj: &OpenObject, index: usize, name: &'static str) -> Result<Self, LoadError> {
        let settings = obj
            .map_settings(index)
            .cloned()
            .ok_or_else(|| LoadError::MapSetting {
                map: name.into(),
                reason: format!("the embedded object has no map #{index}"),
            })?;
        Ok(OpenMap {
            index,
            name,
            settings,
        })
    }

    #[doc(hidden)]
    pub fn __apply(self, obj: &mut OpenObject) {
        if let Some(s) = obj.map_settings_mut(self.index) {
            *s = self.settings;
        }
    }

    /// The map's name.
    pub fn name(&self) -> &str {
        self.name
    }

    /// Capacity.
    pub fn max_entries(&self) -> u32 {
        self.settings.max_entries
    }

    /// Sets the capacity (for a ring buffer: its size in bytes, rounded up
    /// to a power-of-two number of pages at load).
    pub fn set_max_entries(&mut self, n: u32) -> Result<(), SettingError> {
        if n == 0 && self.settings.map_type != MapType::PERF_EVENT_ARRAY {
            return Err(SettingError {
                map: self.name.into(),
                reason: "max_entries 0 is only valid for a perf event array".into(),
            });
        }
        self.settings.max_entries = n;
        Ok(())
    }

    /// Value size in bytes.
    pub fn value_size(&self) -> u32 {
        self.settings.value_size
    }

    /// Sets the value size (the map's BTF value type is then dropped).
    pub fn set_value_size(&mut self, n: u32) -> Result<(), SettingError> {
        if n == 0
            && !matches!(
                self.settings.map_type,
                MapType::RINGBUF | MapType::USER_RINGBUF
            )
        {
            return Err(SettingError {
                map: self.name.into(),
                reason: "value size 0".into(),
            });
        }
        self.settings.value_size = n;
        Ok(())
    }

    /// The map type.
    pub fn map_type(&self) -> MapType {
        self.settings.map_type
    }

    /// Changes the map type (libbpf-tools turn a ring buffer into a perf
    /// event array on kernels without ring buffers).
    pub fn set_type(&mut self, t: MapType) {
        if t == MapType::PERF_EVENT_ARRAY && self.settings.map_type == MapType::RINGBUF {
            self.settings.max_entries = 0;
            self.settings.key_size = 4;
            self.settings.value_size = 4;
        }
        self.settings.map_type = t;
    }

    /// `BPF_F_*` flags.
    pub fn map_flags(&self) -> u32 {
        self.settings.map_flags
    }

    /// Sets the `BPF_F_*` flags.
    pub fn set_map_flags(&mut self, flags: u32) {
        self.settings.map_flags = flags;
    }

    /// Whether `load()` creates the map (`false` for a map of a
    /// `SEC("?.struct_ops")` section).
    pub fn autocreate(&self) -> bool {
        self.settings.autocreate
    }

    /// Turns creation of the map on or off, as libbpf's
    /// `bpf_map__set_autocreate`: a struct_ops map left out also leaves out
    /// the programs only it uses, and its `skel.maps` field is `None`. The
    /// other maps have a handle in the loaded skeleton, whose `load()` then
    /// fails naming the map that was not created.
    pub fn set_autocreate(&mut self, on: bool) {
        self.settings.autocreate = on;
    }

    /// Pins the map at `path` (reused from there when compatible).
    pub fn set_pin_path(&mut self, path: impl Into<PathBuf>) {
        self.settings.pin_path = Some(path.into());
    }

    /// The pin path, if any.
    pub fn pin_path(&self) -> Option<&std::path::Path> {
        self.settings.pin_path.as_deref()
    }
}

/// A program before load.
#[derive(Debug, Clone)]
pub struct OpenProgram {
    index: usize,
    name: &'static str,
    settings: ProgSettings,
}

impl OpenProgram {
    #[doc(hidden)]
    pub fn __new(obj: &OpenObject, index: usize, name: &'static str) -> Result<Self, LoadError> {
        let settings = obj
            .prog_settings(index)
            .cloned()
            .ok_or_else(|| LoadError::Program {
                prog: name.into(),
                reason: format!("the embedded object has no program #{index}"),
            })?;
        Ok(OpenProgram {
            index,
            name,
            settings,
        })
    }

    #[doc(hidden)]
    pub fn __apply(self, obj: &mut OpenObject) {
        if let Some(s) = obj.prog_settings_mut(self.index) {
            *s = self.settings;
        }
    }

    /// The program's name.
    pub fn name(&self) -> &str {
        self.name
    }

    /// Whether `load()` loads it.
    pub fn autoload(&self) -> bool {
        self.settings.autoload
    }

    /// Turns loading of this program on or off.
    pub fn set_autoload(&mut self, on: bool) {
        self.settings.autoload = on;
    }

    /// Sets what the program attaches to, overriding its section, as
    /// libbpf's `bpf_program__set_attach_target`: with `target_prog` `None`,
    /// `func` is a kernel function (fentry/fexit/fmod_ret), LSM hook or
    /// tracepoint (tp_btf), found in vmlinux or, as `module:func` or when
    /// vmlinux lacks it, in a loaded module's BTF; with `Some(fd)`, `func` is
    /// a global function of that loaded program (freplace needs this; fentry
    /// and fexit may trace a BPF program so). The fd is duplicated: the
    /// caller may close its own.
    pub fn set_attach_target(
        &mut self,
        target_prog: Option<BorrowedFd<'_>>,
        func: impl Into<String>,
    ) -> Result<(), ProgramError> {
        let prog = match target_prog {
            Some(fd) => Some(std::sync::Arc::new(fd.try_clone_to_owned().map_err(
                |source| ProgramError::TargetFd {
                    prog: self.name.into(),
                    source,
                },
            )?)),
            None => None,
        };
        self.settings.attach_target = Some(func.into());
        self.settings.attach_prog = prog;
        Ok(())
    }
}

/// A program after load (absent if its autoload was off).
#[derive(Debug)]
pub struct Program {
    name: &'static str,
    section: &'static str,
    fd: Option<OwnedFd>,
}

/// An error using a loaded program.
#[derive(Debug, thiserror::Error)]
pub enum ProgramError {
    /// Autoload was off.
    #[error("program '{0}' was not loaded (autoload off)")]
    NotLoaded(String),
    /// The target program's fd given to `set_attach_target` could not be
    /// duplicated.
    #[error("program '{prog}': cannot duplicate the attach target's program fd")]
    TargetFd {
        /// Program.
        prog: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A syscall failed.
    #[error("program '{prog}': {op}")]
    Sys {
        /// Program.
        prog: String,
        /// Operation.
        op: &'static str,
        /// Cause.
        #[source]
        source: SysError,
    },
}

impl Program {
    #[doc(hidden)]
    pub fn __new(
        loaded: &mut LoadedObject,
        index: usize,
        name: &'static str,
        section: &'static str,
    ) -> Self {
        Program {
            name,
            section,
            fd: loaded.take_prog(index),
        }
    }

    /// The program's name.
    pub fn name(&self) -> &str {
        self.name
    }

    /// Its section.
    pub fn section(&self) -> &str {
        self.section
    }

    /// Whether it was loaded.
    pub fn is_loaded(&self) -> bool {
        self.fd.is_some()
    }

    /// The program fd.
    pub fn fd(&self) -> Result<BorrowedFd<'_>, ProgramError> {
        self.fd
            .as_ref()
            .map(|f| f.as_fd())
            .ok_or_else(|| ProgramError::NotLoaded(self.name.into()))
    }

    /// Runs the program once (or `repeat` times) with `BPF_PROG_TEST_RUN`.
    pub fn test_run(&self, run: TestRun<'_>) -> Result<TestRunOutput, ProgramError> {
        let fd = self.fd()?;
        run.run(fd).map_err(|source| ProgramError::Sys {
            prog: self.name.into(),
            op: "BPF_PROG_TEST_RUN",
            source,
        })
    }
}

/// Copies the initial image of global-data map `index` into a `T`.
#[doc(hidden)]
pub fn __image<T: Plain>(obj: &OpenObject, index: usize, name: &str) -> Result<Box<T>, LoadError> {
    let img = obj.data_image(index).ok_or_else(|| LoadError::MapSetting {
        map: name.into(),
        reason: "no initial image".into(),
    })?;
    let mut value = Box::new(T::zeroed());
    let bytes = value.as_bytes_mut();
    let n = img.len().min(bytes.len());
    bytes[..n].copy_from_slice(&img.as_bytes()[..n]);
    Ok(value)
}

/// Writes a `T` back as the initial image of global-data map `index`.
#[doc(hidden)]
pub fn __store_image<T: Plain>(obj: &mut OpenObject, index: usize, value: &T) {
    if let Some(img) = obj.data_image_mut(index) {
        let dst = img.as_bytes_mut();
        let n = dst.len().min(value.as_bytes().len());
        dst[..n].copy_from_slice(&value.as_bytes()[..n]);
    }
}

/// Takes map `index` out of the loaded object for a typed handle.
#[doc(hidden)]
pub fn __take_map(
    loaded: &mut LoadedObject,
    index: usize,
    name: &str,
) -> Result<crate::loader::LoadedMap, LoadError> {
    loaded.take_map(index).ok_or_else(|| LoadError::MapSetting {
        map: name.into(),
        reason: "was not created".into(),
    })
}

/// Turns a map handle construction error into a load error.
#[doc(hidden)]
pub fn __map_err(e: MapError) -> LoadError {
    LoadError::Kernel {
        what: "typed map handle".into(),
        source: Box::new(e),
    }
}
