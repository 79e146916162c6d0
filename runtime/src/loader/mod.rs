//! The loader: what libbpf does between `bpf_object__open` and the end of
//! `bpf_object__load`, with our own syscalls.
//!
//! [`OpenObject::open`] parses the object and holds the settings users may
//! change before load (autoload, attach targets, map sizes and types, global
//! data images). [`OpenObject::load`] creates maps, fills and freezes global
//! data, links and relocates each program (CO-RE in the kernel or in user
//! space) and loads it. Every kernel object is an owned fd: on any error,
//! what was created so far is closed as the partial state drops.

mod btf;
mod core_mode;
mod externs;
mod link;
mod maps;
mod parts;
mod struct_ops;
mod target;

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::Arc;

use log::debug;

use crate::btf::{Btf, BtfError};
use crate::image::AlignedBuf;
use crate::insn::Insn;
use crate::obj::{DataKind, MapKind, MapType, ObjError, Object, SlotTarget};
use crate::sys::{self, Mmap, SysError};

pub use link::POISON_HELPER;
pub use parts::LoaderParts;
pub use struct_ops::StructOpsValue;
pub(crate) use target::program_func_btf_id;

/// How CO-RE relocations are applied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CoreMode {
    /// In the kernel when it supports CO-RE records at `BPF_PROG_LOAD`
    /// (Linux 5.17+, probed once) and no custom BTF is given, unless the
    /// object relocates more types than the kernel's candidate cache holds,
    /// where user space is measurably cheaper (see `loader/core_mode.rs` for
    /// the numbers); else in user space.
    #[default]
    Auto,
    /// Always hand the records to the kernel.
    Kernel,
    /// Always relocate in user space against the target BTF.
    User,
}

/// Options of [`OpenObject::open`].
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    /// Target BTF for CO-RE instead of `/sys/kernel/btf/vmlinux` (BTFHub).
    pub btf_custom_path: Option<PathBuf>,
    /// Kernel config text to use instead of `/boot/config-*` or `/proc/config.gz`.
    pub kconfig: Option<String>,
    /// CO-RE mode.
    pub core: CoreMode,
    /// Root under which maps with `LIBBPF_PIN_BY_NAME` are pinned (default `/sys/fs/bpf`).
    pub pin_root: Option<PathBuf>,
}

impl OpenOptions {
    /// Default options.
    pub fn new() -> Self {
        Self::default()
    }
}

/// An error opening or loading an object. Each variant names what failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The object could not be understood.
    #[error("invalid object")]
    Object(#[from] ObjError),
    /// BTF handling failed.
    #[error("BTF: {what}")]
    Btf {
        /// What was being done.
        what: &'static str,
        /// The cause.
        #[source]
        source: BtfError,
    },
    /// A map could not be created or initialised.
    #[error("map '{map}': {what}")]
    Map {
        /// Map name.
        map: String,
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: Box<SysError>,
    },
    /// The object needs a part of the loader it was opened without (see
    /// [`LoaderParts`]).
    #[error(
        "{what} needs the loader's {part} part, which this object was opened without (LoaderParts)"
    )]
    MissingPart {
        /// The part (`struct_ops`, `kconfig`, `ksyms`, `user-space CO-RE`).
        part: String,
        /// What needs it.
        what: String,
    },
    /// A map setting is invalid.
    #[error("map '{map}': {reason}")]
    MapSetting {
        /// Map name.
        map: String,
        /// What is wrong.
        reason: String,
    },
    /// The kernel refused a program; the error holds the verifier log.
    #[error("program '{prog}' (sec '{section}'): load failed")]
    ProgLoad {
        /// Program name.
        prog: String,
        /// Section.
        section: String,
        /// The kernel's error, with the verifier log where there is one.
        #[source]
        source: Box<SysError>,
    },
    /// A program cannot be loaded as declared.
    #[error("program '{prog}': {reason}")]
    Program {
        /// Program name.
        prog: String,
        /// What is wrong.
        reason: String,
    },
    /// A relocation could not be applied.
    #[error("program '{prog}' insn {insn}: {reason}")]
    Relocation {
        /// Program name.
        prog: String,
        /// Instruction index in the linked program.
        insn: usize,
        /// What is wrong.
        reason: String,
    },
    /// CO-RE relocation in user space failed.
    #[error("program '{prog}': CO-RE relocation failed")]
    Core {
        /// Program name.
        prog: String,
        /// The cause.
        #[source]
        source: Box<crate::co_re::CoreError>,
    },
    /// An extern could not be resolved.
    #[error("extern '{name}': {reason}")]
    Extern {
        /// Extern name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The kernel or a kernel file could not provide something needed.
    #[error("{what}")]
    Kernel {
        /// What was needed.
        what: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Pre-load settings of one map.
#[derive(Clone, Debug)]
pub struct MapSettings {
    /// Map type (libbpf-tools switch ring buffers to perf buffers on old kernels).
    pub map_type: MapType,
    /// Key size.
    pub key_size: u32,
    /// Value size.
    pub value_size: u32,
    /// Capacity (0 for a perf event array: one slot per possible CPU).
    pub max_entries: u32,
    /// `BPF_F_*` flags.
    pub map_flags: u32,
    /// NUMA node.
    pub numa_node: u32,
    /// Pin path: the map is reused from there if it exists and is compatible,
    /// else created and pinned there.
    pub pin_path: Option<PathBuf>,
    /// Whether the map is created at all.
    pub autocreate: bool,
}

/// Pre-load settings of one program.
#[derive(Clone, Debug)]
pub struct ProgSettings {
    /// Whether `load()` loads it.
    pub autoload: bool,
    /// Attach target function for fentry/fexit/tp_btf/lsm/freplace, overriding the section's.
    pub attach_target: Option<String>,
    /// The loaded program whose function `attach_target` names (freplace,
    /// or fentry/fexit on a BPF program): `attach_prog_fd` at load.
    pub attach_prog: Option<Arc<OwnedFd>>,
}

/// An object opened and not yet loaded.
pub struct OpenObject {
    obj: Object,
    maps: Vec<MapSettings>,
    progs: Vec<ProgSettings>,
    images: Vec<Option<AlignedBuf>>,
    opts: OpenOptions,
    parts: LoaderParts,
}

impl std::fmt::Debug for OpenObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenObject")
            .field("name", &self.obj.name)
            .field("maps", &self.maps.len())
            .field("progs", &self.progs.len())
            .finish()
    }
}

impl OpenObject {
    /// Parses `bytes` (object name `name`) and prepares the default settings.
    pub fn open(bytes: &[u8], name: &str, opts: OpenOptions) -> Result<Self, LoadError> {
        OpenObject::open_parts(bytes, name, opts, LoaderParts::ALL)
    }

    /// [`OpenObject::open`] with only the loader `parts` the object needs
    /// (what generated skeletons call, so that their binaries link only
    /// those): an object needing a part it is not given fails at open or
    /// load with [`LoadError::MissingPart`].
    pub fn open_parts(
        bytes: &[u8],
        name: &str,
        opts: OpenOptions,
        parts: LoaderParts,
    ) -> Result<Self, LoadError> {
        let collect = parts.struct_ops.map(|p| p.collect);
        let obj = Object::parse_parts(bytes, name, collect)?;
        let pin_root = opts
            .pin_root
            .clone()
            .unwrap_or_else(|| PathBuf::from("/sys/fs/bpf"));
        let maps = obj
            .maps
            .iter()
            .map(|m| MapSettings {
                map_type: m.def.map_type,
                key_size: m.def.key_size,
                value_size: m.def.value_size,
                max_entries: m.def.max_entries,
                map_flags: m.def.map_flags,
                numa_node: m.def.numa_node,
                pin_path: (m.def.pinning == crate::obj::PinningType::ByName)
                    .then(|| pin_root.join(&m.name)),
                autocreate: m.struct_ops().is_none_or(|s| s.autocreate),
            })
            .collect();
        let progs = obj
            .programs
            .iter()
            .map(|p| ProgSettings {
                autoload: p.autoload && !p.subprog,
                attach_target: None,
                attach_prog: None,
            })
            .collect();
        let images = obj
            .maps
            .iter()
            .map(|m| {
                (m.data_kind().is_some() || m.struct_ops().is_some())
                    .then(|| AlignedBuf::from_bytes(&m.image))
            })
            .collect();
        Ok(OpenObject {
            obj,
            maps,
            progs,
            images,
            opts,
            parts,
        })
    }

    /// The object model.
    pub fn object(&self) -> &Object {
        &self.obj
    }

    /// Settings of map `index` (index into `object().maps`).
    pub fn map_settings_mut(&mut self, index: usize) -> Option<&mut MapSettings> {
        self.maps.get_mut(index)
    }

    /// Settings of map `index`.
    pub fn map_settings(&self, index: usize) -> Option<&MapSettings> {
        self.maps.get(index)
    }

    /// Settings of program `index` (index into `object().programs`).
    pub fn prog_settings_mut(&mut self, index: usize) -> Option<&mut ProgSettings> {
        self.progs.get_mut(index)
    }

    /// Settings of program `index`.
    pub fn prog_settings(&self, index: usize) -> Option<&ProgSettings> {
        self.progs.get(index)
    }

    /// The initial image of global-data map `index`, writable before load.
    pub fn data_image_mut(&mut self, index: usize) -> Option<&mut AlignedBuf> {
        self.images.get_mut(index).and_then(Option::as_mut)
    }

    /// The initial image of global-data map `index`.
    pub fn data_image(&self, index: usize) -> Option<&AlignedBuf> {
        self.images.get(index).and_then(Option::as_ref)
    }

    /// Loads everything into the kernel.
    pub fn load(self) -> Result<LoadedObject, LoadError> {
        load(self)
    }
}

/// A map created by the loader.
#[derive(Debug)]
pub struct LoadedMap {
    /// The map.
    pub fd: sys::MapFd,
    /// The value mapped into memory (global data with `BPF_F_MMAPABLE`).
    pub mmap: Option<Mmap>,
}

/// A loaded object: every fd it created.
#[derive(Debug)]
pub struct LoadedObject {
    obj: Object,
    maps: Vec<Option<LoadedMap>>,
    progs: Vec<Option<OwnedFd>>,
    btf_fd: Option<OwnedFd>,
    struct_ops: std::collections::HashMap<usize, StructOpsValue>,
}

impl LoadedObject {
    /// The object model.
    pub fn object(&self) -> &Object {
        &self.obj
    }

    /// Map `index`, if it was created.
    pub fn map(&self, index: usize) -> Option<&LoadedMap> {
        self.maps.get(index).and_then(Option::as_ref)
    }

    /// Takes ownership of map `index` (for a typed handle).
    pub fn take_map(&mut self, index: usize) -> Option<LoadedMap> {
        self.maps.get_mut(index).and_then(Option::take)
    }

    /// Program `index`'s fd, if it was loaded.
    pub fn prog_fd(&self, index: usize) -> Option<&OwnedFd> {
        self.progs.get(index).and_then(Option::as_ref)
    }

    /// Takes ownership of program `index`'s fd.
    pub fn take_prog(&mut self, index: usize) -> Option<OwnedFd> {
        self.progs.get_mut(index).and_then(Option::take)
    }

    /// The loaded BTF object, if the kernel accepted it.
    pub fn btf_fd(&self) -> Option<&OwnedFd> {
        self.btf_fd.as_ref()
    }
}

const BPF_F_SLEEPABLE: u32 = 1 << 4;
const BPF_F_XDP_HAS_FRAGS: u32 = 1 << 5;

fn load(open: OpenObject) -> Result<LoadedObject, LoadError> {
    let OpenObject {
        mut obj,
        maps: map_settings,
        progs: mut prog_settings,
        mut images,
        opts,
        parts,
    } = open;
    // Old kernels charge BPF memory to RLIMIT_MEMLOCK: raise it once per
    // process (newer ones account it to the cgroup and ignore the limit).
    static MEMLOCK: std::sync::Once = std::sync::Once::new();
    MEMLOCK.call_once(|| {
        let _ = sys::bump_memlock_rlimit();
    });

    // Externs: kconfig values into the .kconfig image; ksyms resolved.
    let ext_values = externs::resolve(&obj, &opts, &mut images, &parts)?;

    // BTF, sanitised for the kernel, then loaded.
    let btf_fd = btf::load_btf(&mut obj)?;

    // struct_ops: the kernel's side of each struct_ops map, before maps
    // and programs are made from it.
    let st_ops = match parts.struct_ops {
        Some(p) => (p.prepare)(&obj, &map_settings, &mut prog_settings, &images)?,
        None => struct_ops::Prepared::default(),
    };

    // Maps.
    let mut maps: Vec<Option<LoadedMap>> = Vec::with_capacity(obj.maps.len());
    for (i, m) in obj.maps.iter().enumerate() {
        let settings = &map_settings[i];
        if !settings.autocreate {
            maps.push(None);
            continue;
        }
        let image = images.get(i).and_then(Option::as_ref);
        if let Some(p) = parts.struct_ops {
            if let Some(created) = (p.create_map)(&st_ops, i, m, settings, btf_fd.as_ref())? {
                maps.push(Some(created));
                continue;
            }
        }
        maps.push(Some(maps::create(m, settings, image, btf_fd.as_ref())?));
    }
    let map_fds: Vec<Option<RawFd>> = maps
        .iter()
        .map(|m| m.as_ref().map(|m| m.fd.as_fd().as_raw_fd()))
        .collect();

    // Programs.
    let ext_index = link::ExtIndex::new(obj.btf.as_ref(), obj.btf_ext.as_ref())?;
    let resolved = link::Resolved {
        map_fds: &map_fds,
        externs: &ext_values.values,
    };
    let core_mode = core_mode::resolve(&opts, &obj);
    let mut core_target: Option<crate::co_re::CoreTarget> = None;
    let mut progs: Vec<Option<OwnedFd>> = Vec::with_capacity(obj.programs.len());
    for (i, p) in obj.programs.iter().enumerate() {
        if p.subprog || !prog_settings[i].autoload {
            progs.push(None);
            continue;
        }
        let m = p.section_match().ok_or_else(|| LoadError::Program {
            prog: p.name.clone(),
            reason: format!(
                "section '{}' matches no SEC() definition: cannot tell the program type",
                p.section
            ),
        })?;
        let mut linked = link::link_program(&obj, i, &ext_index, &resolved)?;
        let mut pass_core = false;
        if !linked.core_records.is_empty() {
            match core_mode {
                CoreMode::Kernel => pass_core = true,
                _ => {
                    let user_core = parts.user_core.ok_or_else(|| {
                        parts::missing(
                            "user-space CO-RE",
                            &format!("program '{}' with CO-RE relocations", p.name),
                        )
                    })?;
                    user_core(
                        &obj,
                        &opts,
                        &mut core_target,
                        p,
                        &mut linked.insns,
                        &linked.core_records,
                    )?;
                }
            }
        }
        let bytes = Insn::to_bytes(&linked.insns);
        let mut flags = 0;
        if m.def.is_sleepable() {
            flags |= BPF_F_SLEEPABLE;
        }
        if m.def.flags.contains(crate::section::SecFlags::XDP_FRAGS) {
            flags |= BPF_F_XDP_HAS_FRAGS;
        }
        let mut load = sys::ProgLoad::new(m.def.prog_type.as_u32(), &bytes, &obj.license)
            .name(&p.name)
            .kern_version(obj.kern_version)
            .prog_flags(flags)
            .expected_attach_type(m.def.expected_attach_type_raw());
        let settings = &prog_settings[i];
        let target_prog = settings.attach_prog.as_deref().map(|f| f.as_fd());
        let attach = target::resolve(&m, settings.attach_target.as_deref(), target_prog, &p.name)?;
        if let Some(t) = &attach {
            load = load.attach_btf_id(t.btf_id);
            if let Some(fd) = target::btf_obj_fd(t) {
                load = load.attach_btf_obj(fd);
            }
            if let Some(fd) = target_prog {
                load = load.attach_prog(fd);
            }
        }
        if let (Some(fd), Some(ext)) = (btf_fd.as_ref(), obj.btf_ext.as_ref()) {
            load = load.prog_btf(fd.as_fd());
            if !linked.func_info.is_empty() {
                load = load.func_info(&linked.func_info, 8);
            }
            if !linked.line_info.is_empty() {
                load = load.line_info(&linked.line_info, 16);
            }
            if pass_core {
                load = load.core_relos(&linked.core_relos, 16);
            }
            let _ = ext;
        } else if pass_core {
            return Err(LoadError::Program {
                prog: p.name.clone(),
                reason: "kernel-side CO-RE needs the object's BTF, which the kernel refused".into(),
            });
        }
        if let Some(t) = st_ops.prog_target(i) {
            load = load.attach_btf_id(t.btf_id).expected_attach_type(t.member);
        }
        let fds = ext_values.fd_array();
        if !fds.is_empty() {
            load = load.fd_array(&fds);
        }
        debug!(
            "prog '{}': loading {} insns ({} CO-RE relocations {})",
            p.name,
            linked.insns.len(),
            linked.core_records.len(),
            if pass_core {
                "in the kernel"
            } else {
                "done in user space"
            }
        );
        let loaded = load.load().map_err(|source| LoadError::ProgLoad {
            prog: p.name.clone(),
            section: p.section.clone(),
            source: Box::new(source),
        })?;
        progs.push(Some(loaded.fd));
    }

    let struct_ops = match parts.struct_ops {
        Some(p) => (p.finish)(st_ops, &obj, &progs)?,
        None => Default::default(),
    };

    // Static initialisers of prog arrays and map-in-map.
    for (i, m) in obj.maps.iter().enumerate() {
        let Some(Some(lm)) = maps.get(i) else {
            continue;
        };
        for slot in &m.init_slots {
            let fd = match &slot.target {
                SlotTarget::Prog(name) => obj
                    .programs
                    .iter()
                    .position(|p| &p.name == name)
                    .and_then(|pi| progs.get(pi).and_then(Option::as_ref))
                    .map(|f| f.as_raw_fd()),
                SlotTarget::Map(mi) => maps
                    .get(*mi)
                    .and_then(Option::as_ref)
                    .map(|t| t.fd.as_fd().as_raw_fd()),
            };
            let Some(fd) = fd else {
                debug!(
                    "map '{}': slot {} target not loaded, left empty",
                    m.name, slot.index
                );
                continue;
            };
            let key = slot.index.to_le_bytes();
            let value = (fd as u32).to_le_bytes();
            lm.fd
                .update(&key, &value, 0)
                .map_err(|source| LoadError::Map {
                    map: m.name.clone(),
                    what: format!("filling static slot {}", slot.index),
                    source: Box::new(source),
                })?;
        }
    }
    let _ = MapKind::Data(DataKind::Bss);
    Ok(LoadedObject {
        obj,
        maps,
        progs,
        btf_fd,
        struct_ops,
    })
}

/// The user-space CO-RE part (see [`LoaderParts::with_user_core`]).
fn user_core_part(
    obj: &Object,
    opts: &OpenOptions,
    core_target: &mut Option<crate::co_re::CoreTarget>,
    p: &crate::obj::Program,
    insns: &mut [Insn],
    records: &[crate::btf::ext::CoreRelo],
) -> Result<(), LoadError> {
    let target = match core_target {
        Some(t) => t,
        None => core_target.insert(crate::co_re::CoreTarget::new(target_btf(opts)?)),
    };
    let Some(local) = obj.btf.as_ref() else {
        return Err(LoadError::Program {
            prog: p.name.clone(),
            reason: "CO-RE relocations but the object has no BTF".into(),
        });
    };
    crate::co_re::relocate_program(local, target, &p.name, insns, records)
        .map(drop)
        .map_err(|source| LoadError::Core {
            prog: p.name.clone(),
            source: Box::new(source),
        })
}

/// The BTF CO-RE relocates against in user space.
fn target_btf(opts: &OpenOptions) -> Result<Arc<Btf>, LoadError> {
    match &opts.btf_custom_path {
        Some(path) => Btf::from_file(path)
            .map(Arc::new)
            .map_err(|e| LoadError::Kernel {
                what: format!("cannot read custom BTF {}", path.display()),
                source: Box::new(e),
            }),
        None => crate::kernel::vmlinux_btf().map_err(|e| LoadError::Kernel {
            what: "cannot read the kernel's BTF".into(),
            source: Box::new(e),
        }),
    }
}
