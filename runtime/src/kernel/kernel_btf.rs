//! The running kernel's BTF: vmlinux (read once per process) and module BTF
//! (split over vmlinux, read lazily), plus custom target BTF files
//! (libbpf's `btf_custom_path`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use log::debug;

use super::KernelError;
use crate::btf::{Btf, VMLINUX_BTF_PATH};
use crate::sys::{btf_info, btf_name_and_data, get_fd_by_id, get_next_id, ObjKind, SysError};

/// Where the kernel exposes vmlinux and module BTF.
pub const SYS_KERNEL_BTF_DIR: &str = "/sys/kernel/btf";

static VMLINUX: OnceLock<Arc<Btf>> = OnceLock::new();

/// Whether [`vmlinux_btf`] has already parsed the kernel's BTF in this
/// process, so that using it costs nothing more.
pub fn vmlinux_btf_parsed() -> bool {
    VMLINUX.get().is_some()
}

/// The kernel's BTF, parsed once per process and shared. A failed read is not
/// cached: the next call tries again.
pub fn vmlinux_btf() -> Result<Arc<Btf>, KernelError> {
    if let Some(btf) = VMLINUX.get() {
        return Ok(btf.clone());
    }
    let btf = Btf::from_file(VMLINUX_BTF_PATH).map_err(|source| KernelError::Btf {
        what: "vmlinux BTF".into(),
        source,
    })?;
    // Two threads may both parse; one result wins and both return it.
    Ok(VMLINUX.get_or_init(|| Arc::new(btf)).clone())
}

/// Loads a BTF file given instead of the kernel's (libbpf's
/// `btf_custom_path`, used as the CO-RE target): raw BTF, or an ELF file
/// whose `.BTF` section is read. Not cached.
pub fn btf_from_path(path: impl AsRef<Path>) -> Result<Arc<Btf>, KernelError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| KernelError::io(path, e))?;
    let btf_error = |source| KernelError::Btf {
        what: path.display().to_string(),
        source,
    };
    if !bytes.starts_with(b"\x7fELF") {
        return Btf::from_vec(bytes).map(Arc::new).map_err(btf_error);
    }
    let data = crate::btf::elf_btf_section(&bytes).map_err(|reason| KernelError::BadBtfFile {
        path: path.to_path_buf(),
        reason,
    })?;
    Btf::parse(data).map(Arc::new).map_err(btf_error)
}

/// The BTF to relocate against: `custom` if given, else [`vmlinux_btf`].
pub fn target_btf(custom: Option<&Path>) -> Result<Arc<Btf>, KernelError> {
    match custom {
        Some(path) => btf_from_path(path),
        None => vmlinux_btf(),
    }
}

fn check_module_name(name: &str) -> Result<(), KernelError> {
    let ok = !name.is_empty()
        && name != "vmlinux"
        && name != "."
        && name != ".."
        && !name.contains(['/', '\0']);
    if ok {
        Ok(())
    } else {
        Err(KernelError::BadModuleName { name: name.into() })
    }
}

/// The BTF of kernel module `name`, `/sys/kernel/btf/<name>` parsed as split
/// BTF over vmlinux; read on first use, then cached for the process.
pub fn module_btf(name: &str) -> Result<Arc<Btf>, KernelError> {
    static MODULES: OnceLock<Mutex<HashMap<String, Arc<Btf>>>> = OnceLock::new();
    check_module_name(name)?;
    let cache = MODULES.get_or_init(Default::default);
    // A panic elsewhere while holding the lock leaves a map that is still valid.
    if let Some(btf) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(name) {
        return Ok(btf.clone());
    }
    let vmlinux = vmlinux_btf()?;
    let path = Path::new(SYS_KERNEL_BTF_DIR).join(name);
    let bytes = std::fs::read(&path).map_err(|e| KernelError::io(&path, e))?;
    let btf = Arc::new(
        Btf::parse_split(&bytes, vmlinux).map_err(|source| KernelError::Btf {
            what: format!("module '{name}' BTF"),
            source,
        })?,
    );
    let mut map = cache.lock().unwrap_or_else(|p| p.into_inner());
    Ok(map.entry(name.to_string()).or_insert(btf).clone())
}

/// Names of the modules with BTF (`/sys/kernel/btf` without `vmlinux`), sorted.
pub fn module_names() -> Result<Vec<String>, KernelError> {
    let dir = std::fs::read_dir(SYS_KERNEL_BTF_DIR)
        .map_err(|e| KernelError::io(SYS_KERNEL_BTF_DIR, e))?;
    let mut names = Vec::new();
    for entry in dir {
        let entry = entry.map_err(|e| KernelError::io(SYS_KERNEL_BTF_DIR, e))?;
        if let Some(name) = entry.file_name().to_str() {
            if name != "vmlinux" {
                names.push(name.to_string());
            }
        }
    }
    names.sort_unstable();
    Ok(names)
}

/// A loaded module's BTF object, as the bpf() BTF id walk finds it.
#[derive(Clone, Debug)]
pub struct ModuleBtf {
    /// The module name.
    pub name: String,
    /// The kernel's id of the BTF object (what `BPF_BTF_GET_FD_BY_ID` takes,
    /// and what a module kfunc call or typed ksym refers to).
    pub obj_id: u32,
    /// Its types, split over vmlinux.
    pub btf: Arc<Btf>,
}

fn sys_error(source: SysError) -> KernelError {
    KernelError::Sys { source }
}

/// Walks the kernel's BTF objects (`BPF_BTF_GET_NEXT_ID`), keeping the module
/// ones (kernel BTF other than vmlinux) in id order, as libbpf loads them.
/// Needs `CAP_SYS_ADMIN`.
fn enumerate_module_btfs(vmlinux: &Arc<Btf>) -> Result<Vec<ModuleBtf>, KernelError> {
    let mut out = Vec::new();
    let mut id = 0;
    while let Some(next) = get_next_id(ObjKind::Btf, id).map_err(sys_error)? {
        id = next;
        let fd = match get_fd_by_id(ObjKind::Btf, id, 0) {
            Ok(fd) => fd,
            // Freed between the two calls (a module unloaded, a program closed).
            Err(e) if e.errno() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(sys_error(e)),
        };
        if btf_info(&fd).map_err(sys_error)?.kernel_btf == 0 {
            continue;
        }
        let (name, data) = btf_name_and_data(&fd).map_err(sys_error)?;
        if name == "vmlinux" {
            continue;
        }
        let btf = Btf::parse_split(&data, vmlinux.clone()).map_err(|source| KernelError::Btf {
            what: format!("module '{name}' BTF (object id {id})"),
            source,
        })?;
        debug!("module BTF '{name}': object id {id}, {} types", btf.len());
        out.push(ModuleBtf {
            name,
            obj_id: id,
            btf: Arc::new(btf),
        });
    }
    Ok(out)
}

/// Every loaded module's BTF with its object id, enumerated on first use and
/// then cached for the process (a failed walk is not cached).
pub fn module_btfs() -> Result<Arc<[ModuleBtf]>, KernelError> {
    static ALL: OnceLock<Arc<[ModuleBtf]>> = OnceLock::new();
    if let Some(all) = ALL.get() {
        return Ok(all.clone());
    }
    let vmlinux = vmlinux_btf()?;
    let all: Arc<[ModuleBtf]> = enumerate_module_btfs(&vmlinux)?.into();
    Ok(ALL.get_or_init(|| all).clone())
}
