//! Extern values: `.kconfig` variables written into the `.kconfig` image,
//! `.ksyms` variables and kfuncs resolved against `/proc/kallsyms` and the
//! kernel's BTF. Weak externs the kernel lacks resolve to zero (a poisoned
//! call for kfuncs); strong ones are errors that name them.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use log::debug;

use super::link::ExternValue;
use super::parts::missing;
use super::{LoadError, LoaderParts, OpenOptions};
use crate::image::AlignedBuf;
use crate::kernel;
use crate::obj::{DataKind, ExternKind, Object};
use crate::sys;

/// Resolved extern values, and the module BTF fds kfunc calls index.
pub(crate) struct Externs {
    pub values: Vec<ExternValue>,
    /// `fd_array` for `BPF_PROG_LOAD`: slot 0 is unused (vmlinux), then one
    /// fd per module BTF a kfunc lives in.
    module_fds: Vec<OwnedFd>,
}

impl Externs {
    /// The `fd_array` to pass with programs that call module kfuncs.
    pub fn fd_array(&self) -> Vec<BorrowedFd<'_>> {
        if self.module_fds.is_empty() {
            return Vec::new();
        }
        // Slot 0 must be a valid fd too: repeat the first module's.
        let mut v = vec![self.module_fds[0].as_fd()];
        v.extend(self.module_fds.iter().map(|f| f.as_fd()));
        v
    }
}

fn kernel_err(what: &str) -> impl FnOnce(kernel::KernelError) -> LoadError + '_ {
    move |e| LoadError::Kernel {
        what: what.to_string(),
        source: Box::new(e),
    }
}

fn ext_err(name: &str, reason: impl Into<String>) -> LoadError {
    LoadError::Extern {
        name: name.to_string(),
        reason: reason.into(),
    }
}

pub(crate) fn resolve(
    obj: &Object,
    opts: &OpenOptions,
    images: &mut [Option<AlignedBuf>],
    parts: &LoaderParts,
) -> Result<Externs, LoadError> {
    let mut values = vec![ExternValue::Missing; obj.externs.len()];
    let mut module_fds: Vec<OwnedFd> = Vec::new();
    if obj.externs.is_empty() {
        return Ok(Externs { values, module_fds });
    }

    // .kconfig
    let kconfig_map = obj
        .maps
        .iter()
        .position(|m| m.data_kind() == Some(DataKind::Kconfig));
    if let Some(mi) = kconfig_map {
        let image = images
            .get_mut(mi)
            .and_then(Option::as_mut)
            .ok_or_else(|| ext_err(".kconfig", "no .kconfig image"))?;
        let kconfig = parts
            .kconfig
            .ok_or_else(|| missing("kconfig", ".kconfig externs"))?;
        kconfig(&obj.externs, opts.kconfig.as_deref(), image.as_bytes_mut())
            .map_err(kernel_err("cannot give .kconfig externs their values"))?;
        for (i, e) in obj.externs.iter().enumerate() {
            if let ExternKind::Kconfig { offset, .. } = e.kind {
                values[i] = ExternValue::Kconfig { map: mi, offset };
            }
        }
    }

    if obj
        .externs
        .iter()
        .any(|e| matches!(e.kind, ExternKind::Ksym { .. } | ExternKind::Kfunc { .. }))
    {
        let ksyms = parts
            .ksyms
            .ok_or_else(|| missing("ksyms", ".ksyms externs"))?;
        ksyms(obj, &mut values, &mut module_fds)?;
    }
    Ok(Externs { values, module_fds })
}

/// The `.kconfig` part (see [`LoaderParts::with_kconfig`]).
pub(crate) fn kconfig_part(
    externs: &[crate::obj::Extern],
    user_text: Option<&str>,
    image: &mut [u8],
) -> Result<(), kernel::KernelError> {
    kernel::resolve_kconfig(externs, user_text, &Default::default(), image)
}

/// The `.ksyms` part (see [`LoaderParts::with_ksyms`]): typeless ksyms from
/// `/proc/kallsyms`, typed ksyms and kfuncs by kernel BTF id.
pub(crate) fn ksyms_part(
    obj: &Object,
    values: &mut [ExternValue],
    module_fds: &mut Vec<OwnedFd>,
) -> Result<(), LoadError> {
    // Typeless ksyms from /proc/kallsyms.
    if obj
        .externs
        .iter()
        .any(|e| matches!(e.kind, ExternKind::Ksym { target_type: None }))
    {
        let kallsyms =
            kernel::Kallsyms::read().map_err(kernel_err("cannot read /proc/kallsyms"))?;
        let addrs = kernel::resolve_typeless_ksyms(&obj.externs, &kallsyms)
            .map_err(kernel_err("cannot resolve typeless ksyms"))?;
        for (i, e) in obj.externs.iter().enumerate() {
            if let ExternKind::Ksym { target_type: None } = e.kind {
                values[i] = match addrs.get(&e.name) {
                    Some(0) | None => ExternValue::Missing,
                    Some(&a) => ExternValue::Addr(a),
                };
            }
        }
    }

    // Typed ksyms and kfuncs by kernel BTF id.
    let mut module_ids: Vec<u32> = Vec::new();
    for (i, e) in obj.externs.iter().enumerate() {
        let found = match e.kind {
            ExternKind::Ksym {
                target_type: Some(_),
            }
            | ExternKind::Kfunc { .. } => {
                let local = obj
                    .btf
                    .as_ref()
                    .ok_or_else(|| ext_err(&e.name, "the object has no BTF"))?;
                let r = if matches!(e.kind, ExternKind::Kfunc { .. }) {
                    kernel::resolve_kfunc(local, e, kernel::find_ksym_btf)
                } else {
                    kernel::resolve_typed_ksym(local, e, kernel::find_ksym_btf)
                };
                r.map_err(kernel_err(&format!("extern '{}'", e.name)))?
            }
            _ => continue,
        };
        values[i] = match found {
            None => ExternValue::Missing,
            Some(k) if k.btf_obj_id == 0 => ExternValue::Btf {
                id: k.type_id,
                obj_fd: 0,
                fd_index: 0,
            },
            Some(k) => {
                let slot = match module_ids.iter().position(|&m| m == k.btf_obj_id) {
                    Some(s) => s,
                    None => {
                        let fd = sys::get_fd_by_id(sys::ObjKind::Btf, k.btf_obj_id, 0).map_err(
                            |source| LoadError::Kernel {
                                what: format!(
                                    "extern '{}': cannot open the BTF of module {}",
                                    e.name, k.btf_name
                                ),
                                source: Box::new(source),
                            },
                        )?;
                        module_ids.push(k.btf_obj_id);
                        module_fds.push(fd);
                        module_fds.len() - 1
                    }
                };
                ExternValue::Btf {
                    id: k.type_id,
                    obj_fd: module_fds[slot].as_raw_fd(),
                    fd_index: i16::try_from(slot + 1)
                        .map_err(|_| ext_err(&e.name, "too many modules"))?,
                }
            }
        };
        debug!("extern '{}': resolved to {:?}", e.name, values[i]);
    }
    Ok(())
}
