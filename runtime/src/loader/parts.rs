//! The optional parts of the loader, chosen per object so that a binary
//! links only what its object uses.
//!
//! [`OpenObject::open`](super::OpenObject::open) and
//! [`load`](super::OpenObject::load) handle any object, so a binary that
//! calls them carries every part: struct_ops, `.kconfig` (with its gzip
//! reader of `/proc/config.gz`), `.ksyms` and kfuncs (kallsyms, module BTF),
//! and user-space CO-RE. A generated skeleton knows its object, so it opens
//! it with [`OpenObject::open_parts`](super::OpenObject::open_parts) and
//! exactly the parts the object needs; a part left out is a function the
//! linker never sees referenced. An object that needs a part it was not
//! given fails with an error naming the part, never silently.

use std::collections::HashMap;
use std::os::fd::OwnedFd;

use super::struct_ops::{self, Prepared};
use super::{LoadError, LoadedMap, MapSettings, OpenOptions, ProgSettings, StructOpsValue};
use crate::image::AlignedBuf;
use crate::obj::{Extern, Map, Object};

pub(crate) type CollectStructOps = crate::obj::CollectStructOps;

/// Finds the kernel side of every struct_ops map and decides which
/// struct_ops programs load.
type PrepareFn = fn(
    &Object,
    &[MapSettings],
    &mut [ProgSettings],
    &[Option<AlignedBuf>],
) -> Result<Prepared, LoadError>;

/// Creates struct_ops map `index`, or `None` if it is not one.
type CreateMapFn = fn(&Prepared, usize, &Map, &MapSettings, Option<&OwnedFd>) -> MapResult;
type MapResult = Result<Option<LoadedMap>, LoadError>;

/// Writes program fds into the values; the values by map index.
type FinishFn = fn(Prepared, &Object, &[Option<OwnedFd>]) -> FinishResult;
type FinishResult = Result<HashMap<usize, StructOpsValue>, LoadError>;

/// What the loader does for struct_ops maps.
#[derive(Clone, Copy)]
pub(crate) struct StructOpsPart {
    pub collect: CollectStructOps,
    pub prepare: PrepareFn,
    pub create_map: CreateMapFn,
    pub finish: FinishFn,
}

/// Gives `.kconfig` externs their values in the `.kconfig` image.
pub(crate) type KconfigFn =
    fn(&[Extern], Option<&str>, &mut [u8]) -> Result<(), crate::kernel::KernelError>;

/// Resolves `.ksyms` variables and kfuncs into `values`, opening the module
/// BTFs they live in.
pub(crate) type KsymsFn =
    fn(&Object, &mut [super::link::ExternValue], &mut Vec<OwnedFd>) -> Result<(), LoadError>;

/// Applies a program's CO-RE relocations in user space.
pub(crate) type UserCoreFn = fn(
    &Object,
    &OpenOptions,
    &mut Option<crate::co_re::CoreTarget>,
    &crate::obj::Program,
    &mut [crate::insn::Insn],
    &[crate::btf::ext::CoreRelo],
) -> Result<(), LoadError>;

/// The optional parts a load may use (see the module docs). Start from
/// [`LoaderParts::NONE`] and add what the object needs, or take
/// [`LoaderParts::ALL`].
#[derive(Clone, Copy)]
pub struct LoaderParts {
    pub(crate) struct_ops: Option<StructOpsPart>,
    pub(crate) kconfig: Option<KconfigFn>,
    pub(crate) ksyms: Option<KsymsFn>,
    pub(crate) user_core: Option<UserCoreFn>,
}

impl std::fmt::Debug for LoaderParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoaderParts")
            .field("struct_ops", &self.struct_ops.is_some())
            .field("kconfig", &self.kconfig.is_some())
            .field("ksyms", &self.ksyms.is_some())
            .field("user_core", &self.user_core.is_some())
            .finish()
    }
}

impl LoaderParts {
    /// No optional part: maps, global data, programs, BTF, attach targets
    /// and kernel-side CO-RE only.
    pub const NONE: LoaderParts = LoaderParts {
        struct_ops: None,
        kconfig: None,
        ksyms: None,
        user_core: None,
    };

    /// Every part: what [`OpenObject::open`](super::OpenObject::open) uses.
    pub const ALL: LoaderParts = LoaderParts::NONE
        .with_struct_ops()
        .with_kconfig()
        .with_ksyms()
        .with_user_core();

    /// `SEC(".struct_ops")` / `SEC(".struct_ops.link")` maps.
    pub const fn with_struct_ops(mut self) -> Self {
        self.struct_ops = Some(StructOpsPart {
            collect: crate::obj::collect_struct_ops_maps,
            prepare: struct_ops::prepare,
            create_map: Prepared::create_map,
            finish: Prepared::finish,
        });
        self
    }

    /// `.kconfig` externs (`CONFIG_*`, `LINUX_KERNEL_VERSION`, ...).
    pub const fn with_kconfig(mut self) -> Self {
        self.kconfig = Some(super::externs::kconfig_part);
        self
    }

    /// `.ksyms` externs: kernel variables and kfuncs.
    pub const fn with_ksyms(mut self) -> Self {
        self.ksyms = Some(super::externs::ksyms_part);
        self
    }

    /// CO-RE relocations applied in user space ([`CoreMode::User`], and
    /// what [`CoreMode::Auto`] picks on kernels without kernel-side CO-RE
    /// or for objects relocating many types).
    ///
    /// [`CoreMode::User`]: super::CoreMode::User
    /// [`CoreMode::Auto`]: super::CoreMode::Auto
    pub const fn with_user_core(mut self) -> Self {
        self.user_core = Some(super::user_core_part);
        self
    }
}

impl Default for LoaderParts {
    fn default() -> Self {
        LoaderParts::ALL
    }
}

/// The error for an object that needs a part it was not given.
pub(crate) fn missing(part: &str, what: &str) -> LoadError {
    LoadError::MissingPart {
        part: part.to_string(),
        what: what.to_string(),
    }
}
