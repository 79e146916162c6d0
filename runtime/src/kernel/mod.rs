//! Facts about the running kernel that give externs their values, as libbpf
//! finds them:
//!
//! - [`KernelConfig`]: `CONFIG_*` from user text, overrides,
//!   `/boot/config-$(uname -r)` or `/proc/config.gz`; [`fill_kconfig`]
//!   writes `.kconfig` externs into the `.kconfig` map image;
//! - [`kernel_version`]: `LINUX_KERNEL_VERSION`, with the Ubuntu and
//!   Debian quirks;
//! - [`Kallsyms`]: `/proc/kallsyms`, for typeless `.ksyms` variables;
//! - [`vmlinux_btf`] and [`module_btf`]: the kernel's BTF, read once per
//!   process; [`find_ksym_btf`], [`resolve_typed_ksym`] and
//!   [`resolve_kfunc`] for typed ksyms and kfuncs.
//!
//! Parsing is pure and tested on sample text; the readers are thin wrappers
//! over files (and, for module BTF object ids, bpf() calls in `sys`).

mod error;
pub mod features;
mod fill;
mod kallsyms;
mod kconfig;
mod kernel_btf;
mod ksym;
mod version;

pub use error::KernelError;
pub use fill::{fill_kconfig, parse_kconfig_int, resolve_kconfig};
pub use kallsyms::{
    has_syscall_wrapper, parse_kallsyms_line, syscall_wrapper_prefix, Kallsyms, KallsymsEntry,
    KALLSYMS_PATH,
};
pub use kconfig::{
    system_config_paths, ConfigEntry, ConfigValue, KernelConfig, LinuxFacts, PROC_CONFIG_GZ,
};
pub use kernel_btf::{
    btf_from_path, module_btf, module_btfs, module_names, target_btf, vmlinux_btf,
    vmlinux_btf_parsed, ModuleBtf, SYS_KERNEL_BTF_DIR,
};
pub use ksym::{
    essential_name, find_ksym_btf, find_ksym_in, resolve_kfunc, resolve_typed_ksym,
    resolve_typeless_ksyms, types_are_compat, KsymBtf, KsymKind,
};
pub use version::{
    kernel_version, kernel_version_code, kernel_version_from, parse_debian_version, parse_release,
    parse_ubuntu_signature, parse_version_triple, OSRELEASE_PATH, UBUNTU_VERSION_SIGNATURE,
    UTS_VERSION_PATH,
};
