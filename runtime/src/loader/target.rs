//! Where a BTF-attached program (tp_btf, fentry, fexit, fmod_ret, lsm, iter,
//! freplace) attaches, resolved at load into the `attach_btf_id` of
//! `BPF_PROG_LOAD` and the object that id lives in: vmlinux (no fd), a
//! module's BTF (`attach_btf_obj_fd`) or another loaded program
//! (`attach_prog_fd`, whose own BTF holds the function).
//!
//! Kernel targets are looked up as libbpf does: `module:func` searches only
//! that module (`vmlinux:func` only vmlinux); a bare name searches vmlinux,
//! then every loaded module's BTF in BTF object id order.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use super::LoadError;
use crate::btf::{Btf, Kind};
use crate::section::{BtfTargetKind, Match, ProgType, SecFlags};
use crate::sys;

/// The resolved target of one program.
pub(super) struct AttachTarget {
    /// `attach_btf_id`.
    pub btf_id: u32,
    /// `attach_btf_obj_fd`: the module BTF holding `btf_id` (none for vmlinux).
    pub btf_obj: Option<OwnedFd>,
}

fn program_error(prog: &str, reason: String) -> LoadError {
    LoadError::Program {
        prog: prog.into(),
        reason,
    }
}

fn kernel_error(what: String, source: impl std::error::Error + Send + Sync + 'static) -> LoadError {
    LoadError::Kernel {
        what,
        source: Box::new(source),
    }
}

/// The target of program `prog` of section match `m`: `name` overrides the
/// section's function, `target_prog` makes it a function of that program
/// (required for freplace). `Ok(None)` for programs that take no BTF target.
pub(super) fn resolve(
    m: &Match<'_>,
    name: Option<&str>,
    target_prog: Option<BorrowedFd<'_>>,
    prog: &str,
) -> Result<Option<AttachTarget>, LoadError> {
    if !m.def.flags.contains(SecFlags::ATTACH_BTF) {
        return Ok(None);
    }
    let is_ext = m.def.prog_type == ProgType::Ext;
    let (prefix, kind) = match m.def.expected_attach_type {
        Some(attach) => attach.btf_target_naming(),
        None if is_ext => ("", BtfTargetKind::Func),
        None => return Ok(None),
    };
    let Some(name) = name.or(m.target) else {
        return Err(program_error(
            prog,
            "no attach target: give one in the section name or with set_attach_target".into(),
        ));
    };
    let kind = match kind {
        BtfTargetKind::Typedef => Kind::Typedef,
        _ => Kind::Func,
    };
    match target_prog {
        Some(fd) => in_program(fd, name, prog).map(Some),
        None if is_ext => Err(program_error(
            prog,
            format!(
                "freplace program replacing '{name}' needs the program that holds it: \
                 set_attach_target(Some(target_prog_fd), \"{name}\") before load"
            ),
        )),
        None => in_kernel(prefix, name, kind, prog).map(Some),
    }
}

/// Function `func` in the BTF of loaded program `fd` (freplace, or fentry
/// and fexit on a BPF program).
fn in_program(fd: BorrowedFd<'_>, func: &str, prog: &str) -> Result<AttachTarget, LoadError> {
    let info = sys::prog_info(fd).map_err(|e| {
        kernel_error(
            format!("program '{prog}': reading the info of its target program"),
            e,
        )
    })?;
    let target_name = info.name();
    if info.btf_id == 0 {
        return Err(program_error(
            prog,
            format!(
                "target program '{target_name}' (id {}) was loaded without BTF: \
                 its function '{func}' cannot be found",
                info.id
            ),
        ));
    }
    let btf_fd = sys::get_fd_by_id(sys::ObjKind::Btf, info.btf_id, 0).map_err(|e| {
        kernel_error(
            format!(
                "program '{prog}': opening BTF object {} of target program '{target_name}'",
                info.btf_id
            ),
            e,
        )
    })?;
    let (_, data) = sys::btf_name_and_data(&btf_fd).map_err(|e| {
        kernel_error(
            format!("program '{prog}': reading the BTF of target program '{target_name}'"),
            e,
        )
    })?;
    let btf = Btf::parse(&data).map_err(|e| {
        kernel_error(
            format!(
                "program '{prog}': BTF object {} of target program '{target_name}'",
                info.btf_id
            ),
            e,
        )
    })?;
    let btf_id = btf.find_by_name_kind(func, Kind::Func).ok_or_else(|| {
        program_error(
            prog,
            format!(
                "function '{func}' not found in the BTF of target program '{target_name}' \
                 (id {}): only global functions of a program can be replaced or traced",
                info.id
            ),
        )
    })?;
    Ok(AttachTarget {
        btf_id,
        btf_obj: None,
    })
}

fn in_kernel(prefix: &str, name: &str, kind: Kind, prog: &str) -> Result<AttachTarget, LoadError> {
    let (module, func) = match name.split_once(':') {
        Some((module, func)) => (Some(module), func),
        None => (None, name),
    };
    let full = format!("{prefix}{func}");
    let vmlinux = crate::kernel::vmlinux_btf().map_err(|e| {
        kernel_error(
            format!("program '{prog}': kernel BTF is needed to find '{full}'"),
            e,
        )
    })?;
    if matches!(module, None | Some("vmlinux")) {
        if let Some(btf_id) = vmlinux.find_by_name_kind(&full, kind) {
            return Ok(AttachTarget {
                btf_id,
                btf_obj: None,
            });
        }
        if module.is_some() {
            return Err(program_error(
                prog,
                format!("attach target '{full}' ({kind}) not found in vmlinux BTF"),
            ));
        }
    }
    let modules = crate::kernel::module_btfs().map_err(|e| {
        kernel_error(
            format!("program '{prog}': searching module BTFs for '{full}'"),
            e,
        )
    })?;
    let found = modules
        .iter()
        .filter(|m| module.is_none_or(|want| m.name == want))
        .find_map(|m| own_type(&m.btf, &full, kind).map(|id| (m, id)));
    let Some((m, btf_id)) = found else {
        let searched = match module {
            Some(want) if !modules.iter().any(|m| m.name == want) => format!(
                "module '{want}' has no BTF loaded ({} module BTFs: is the module loaded, \
                 and does the kernel have CONFIG_DEBUG_INFO_BTF_MODULES?)",
                modules.len()
            ),
            Some(want) => format!("module '{want}' BTF"),
            None => format!("vmlinux BTF nor in {} module BTFs", modules.len()),
        };
        return Err(program_error(
            prog,
            format!("attach target '{full}' ({kind}) not found in {searched}"),
        ));
    };
    let fd = sys::get_fd_by_id(sys::ObjKind::Btf, m.obj_id, 0).map_err(|e| {
        kernel_error(
            format!(
                "program '{prog}': opening the BTF of module '{}' (object id {}) for '{full}'",
                m.name, m.obj_id
            ),
            e,
        )
    })?;
    Ok(AttachTarget {
        btf_id,
        btf_obj: Some(fd),
    })
}

/// `name` of `kind` among a module's own types, not its vmlinux base (a
/// module BTF is split over vmlinux and its name index covers both).
fn own_type(module: &Arc<Btf>, name: &str, kind: Kind) -> Option<u32> {
    let first = module.first_own_id();
    module
        .find_by_name(name)
        .iter()
        .copied()
        .find(|&id| id >= first && module.kind_of(id).ok() == Some(kind))
}

/// The fd a program's target holds open, for [`sys::ProgLoad`].
pub(super) fn btf_obj_fd(t: &AttachTarget) -> Option<BorrowedFd<'_>> {
    t.btf_obj.as_ref().map(|f| f.as_fd())
}

/// The BTF id of global function `func` in loaded program `fd`'s BTF, for
/// attaching an freplace program to a target other than its load-time one;
/// `Err` says why not, with its causes.
pub(crate) fn program_func_btf_id(fd: BorrowedFd<'_>, func: &str) -> Result<u32, String> {
    in_program(fd, func, "freplace")
        .map(|t| t.btf_id)
        .map_err(|e| {
            let mut msg = e.to_string();
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                msg.push_str(": ");
                msg.push_str(&c.to_string());
                cause = c.source();
            }
            msg
        })
}
