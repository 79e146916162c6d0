//! `.ksyms` externs: typed variables and kfuncs found in kernel BTF, typeless
//! variables found in kallsyms.
//!
//! As libbpf: a name is looked up in vmlinux BTF first, then in each loaded
//! module's own types (in BTF object id order); a `___flavor` suffix is
//! dropped first (`bpf_foo___v2` looks up `bpf_foo`). The type check is
//! libbpf's CO-RE compatibility rule (see [`types_are_compat`]).

use std::collections::HashMap;
use std::sync::Arc;

use super::kallsyms::Kallsyms;
use super::kernel_btf::{module_btfs, vmlinux_btf, ModuleBtf};
use super::KernelError;
use crate::btf::{Btf, Kind, TypeKind, MAX_RESOLVE_DEPTH};
use crate::obj::{Extern, ExternKind};

/// What kind of BTF type a ksym is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KsymKind {
    /// A variable (`BTF_KIND_VAR`).
    Var,
    /// A function (`BTF_KIND_FUNC`).
    Func,
}

impl KsymKind {
    fn btf_kind(self) -> Kind {
        match self {
            KsymKind::Var => Kind::Var,
            KsymKind::Func => Kind::Func,
        }
    }
}

/// Where a ksym lives in kernel BTF.
#[derive(Clone, Debug)]
pub struct KsymBtf {
    /// The BTF object id: 0 for vmlinux, the module's BTF object id otherwise.
    pub btf_obj_id: u32,
    /// The VAR or FUNC type id in that BTF.
    pub type_id: u32,
    /// `"vmlinux"` or the module name.
    pub btf_name: String,
    /// The BTF it was found in.
    pub btf: Arc<Btf>,
}

/// `name` without a `___flavor` suffix, as libbpf's "essential name": cut at
/// the last `X___Y` where neither X nor Y is `_`.
pub fn essential_name(name: &str) -> &str {
    let b = name.as_bytes();
    let n = b.len();
    if n < 5 {
        return name;
    }
    for i in (0..=n - 5).rev() {
        if let Some(&[x, b'_', b'_', b'_', y]) = b.get(i..i + 5) {
            if x != b'_' && y != b'_' {
                return name.get(..=i).unwrap_or(name);
            }
        }
    }
    name
}

/// Finds `name` of `kind` in `vmlinux`, else in the modules' own types, in
/// order. Pure: the caller supplies the BTFs.
pub fn find_ksym_in(
    vmlinux: &Arc<Btf>,
    modules: &[ModuleBtf],
    name: &str,
    kind: KsymKind,
) -> Option<KsymBtf> {
    let name = essential_name(name);
    if let Some(id) = vmlinux.find_by_name_kind(name, kind.btf_kind()) {
        return Some(KsymBtf {
            btf_obj_id: 0,
            type_id: id,
            btf_name: "vmlinux".into(),
            btf: vmlinux.clone(),
        });
    }
    modules.iter().find_map(|m| {
        let own = m.btf.first_own_id();
        m.btf
            .find_by_name(name)
            .iter()
            .copied()
            .find(|&id| id >= own && m.btf.kind_of(id).ok() == Some(kind.btf_kind()))
            .map(|id| KsymBtf {
                btf_obj_id: m.obj_id,
                type_id: id,
                btf_name: m.name.clone(),
                btf: m.btf.clone(),
            })
    })
}

/// Finds ksym `name` in the running kernel's BTF: vmlinux, then (only if
/// absent there) every loaded module, enumerated with bpf() (root needed).
pub fn find_ksym_btf(name: &str, kind: KsymKind) -> Result<Option<KsymBtf>, KernelError> {
    let vmlinux = vmlinux_btf()?;
    if let Some(found) = find_ksym_in(&vmlinux, &[], name, kind) {
        return Ok(Some(found));
    }
    let modules = module_btfs()?;
    Ok(find_ksym_in(&vmlinux, &modules, name, kind))
}

/// Whether local type `local_id` (in `local`) is compatible with `target_id`
/// (in `target`) by libbpf's CO-RE rule (`bpf_core_types_are_compat`),
/// after skipping modifiers and typedefs on both sides:
///
/// - the kinds must match (an enum and an enum64 match each other);
/// - structs, unions, enums and forward declarations match by kind alone
///   (the names were matched by the caller, and layouts are CO-RE's concern);
/// - integers match unless either is a bitfield-like integer (bit offset
///   not 0); sizes are not compared, as in libbpf;
/// - pointers and arrays match if their element types do;
/// - function prototypes match if they have the same parameter count, each
///   parameter matches, and the return types match.
///
/// `Err` says what differs.
pub fn types_are_compat(
    local: &Btf,
    local_id: u32,
    target: &Btf,
    target_id: u32,
) -> Result<(), String> {
    compat(local, local_id, target, target_id, MAX_RESOLVE_DEPTH)
}

fn compat(local: &Btf, mut lid: u32, target: &Btf, mut tid: u32, level: u32) -> Result<(), String> {
    for _ in 0..=MAX_RESOLVE_DEPTH {
        lid = local
            .skip_mods_and_typedefs(lid)
            .map_err(|e| e.to_string())?;
        tid = target
            .skip_mods_and_typedefs(tid)
            .map_err(|e| e.to_string())?;
        let lt = local.type_by_id(lid).map_err(|e| e.to_string())?;
        let tt = target.type_by_id(tid).map_err(|e| e.to_string())?;
        let (lk, tk) = (lt.kind(), tt.kind());
        let enums = |k| matches!(k, Kind::Enum | Kind::Enum64);
        if lk != tk && !(enums(lk) && enums(tk)) {
            return Err(format!("local [{lid}] is {lk}, target [{tid}] is {tk}"));
        }
        match (lt.kind, tt.kind) {
            (TypeKind::Void, _)
            | (TypeKind::Struct(_) | TypeKind::Union(_), _)
            | (TypeKind::Enum(_) | TypeKind::Enum64(_), _)
            | (TypeKind::Fwd { .. }, _) => return Ok(()),
            (TypeKind::Int(l), TypeKind::Int(t)) => {
                return if l.offset == 0 && t.offset == 0 {
                    Ok(())
                } else {
                    Err(format!(
                        "bitfield-like integer (local [{lid}] or target [{tid}])"
                    ))
                };
            }
            (TypeKind::Ptr(l), TypeKind::Ptr(t)) => (lid, tid) = (l, t),
            (TypeKind::Array(l), TypeKind::Array(t)) => (lid, tid) = (l.elem_type, t.elem_type),
            (TypeKind::FuncProto(l), TypeKind::FuncProto(t)) => {
                let (lp, tp) = (l.params(), t.params());
                if lp.len() != tp.len() {
                    return Err(format!(
                        "local prototype [{lid}] has {} parameters, target [{tid}] has {}",
                        lp.len(),
                        tp.len()
                    ));
                }
                let Some(level) = level.checked_sub(1) else {
                    return Err(format!(
                        "prototypes nest deeper than {MAX_RESOLVE_DEPTH} levels"
                    ));
                };
                for (i, (a, b)) in lp.zip(tp).enumerate() {
                    compat(local, a.ty, target, b.ty, level)
                        .map_err(|e| format!("parameter {i}: {e}"))?;
                }
                (lid, tid) = (l.ret, t.ret);
            }
            _ => {
                return Err(format!(
                    "unexpected kind {lk} (local [{lid}], target [{tid}])"
                ))
            }
        }
    }
    Err(format!(
        "reference chain longer than {MAX_RESOLVE_DEPTH} (local [{lid}], target [{tid}])"
    ))
}

fn incompatible(
    ext: &Extern,
    local_id: u32,
    found: &KsymBtf,
    target_id: u32,
    reason: String,
) -> KernelError {
    KernelError::KsymIncompatible {
        name: ext.name.clone(),
        local_id,
        btf_name: found.btf_name.clone(),
        target_id,
        reason,
    }
}

/// Resolves a typed `.ksyms` variable (`Ksym { target_type: Some(_) }`) of an
/// object whose BTF is `local`: the kernel VAR with its name, checked with
/// [`types_are_compat`] against the VAR's type. `Ok(None)` for a weak extern
/// that does not exist; an incompatible type is an error even when weak (as
/// libbpf). `find` looks names up (normally [`find_ksym_btf`]).
pub fn resolve_typed_ksym(
    local: &Btf,
    ext: &Extern,
    find: impl FnOnce(&str, KsymKind) -> Result<Option<KsymBtf>, KernelError>,
) -> Result<Option<KsymBtf>, KernelError> {
    let ExternKind::Ksym {
        target_type: Some(local_type),
    } = ext.kind
    else {
        return Err(KernelError::Unresolved {
            name: ext.name.clone(),
            detail: "not a typed .ksyms variable".into(),
        });
    };
    let Some(found) = find(&ext.name, KsymKind::Var)? else {
        return if ext.weak {
            Ok(None)
        } else {
            Err(KernelError::Unresolved {
                name: ext.name.clone(),
                detail: "no VAR of that name in kernel BTF".into(),
            })
        };
    };
    let var_type = match found.btf.type_by_id(found.type_id).map(|t| t.kind) {
        Ok(TypeKind::Var { ty, .. }) => ty,
        _ => {
            return Err(incompatible(
                ext,
                local_type,
                &found,
                found.type_id,
                "target is not a VAR".into(),
            ))
        }
    };
    types_are_compat(local, local_type, &found.btf, var_type)
        .map_err(|reason| incompatible(ext, local_type, &found, var_type, reason))?;
    Ok(Some(found))
}

/// Resolves a kfunc (`Kfunc { proto }`) of an object whose BTF is `local`: the
/// kernel FUNC with its name, whose FUNC_PROTO must match the local one by
/// [`types_are_compat`] (same parameter count, compatible parameters and
/// return). A weak kfunc that is missing or incompatible is `Ok(None)` (as
/// libbpf: the call is then poisoned by the loader).
pub fn resolve_kfunc(
    local: &Btf,
    ext: &Extern,
    find: impl FnOnce(&str, KsymKind) -> Result<Option<KsymBtf>, KernelError>,
) -> Result<Option<KsymBtf>, KernelError> {
    let ExternKind::Kfunc { proto } = ext.kind else {
        return Err(KernelError::Unresolved {
            name: ext.name.clone(),
            detail: "not a kfunc".into(),
        });
    };
    let Some(found) = find(&ext.name, KsymKind::Func)? else {
        return if ext.weak {
            Ok(None)
        } else {
            Err(KernelError::Unresolved {
                name: ext.name.clone(),
                detail: "not found in kernel or module BTFs".into(),
            })
        };
    };
    let target_proto = match found.btf.type_by_id(found.type_id).map(|t| t.kind) {
        Ok(TypeKind::Func { proto, .. }) => proto,
        _ => {
            return Err(incompatible(
                ext,
                proto,
                &found,
                found.type_id,
                "target is not a FUNC".into(),
            ))
        }
    };
    match types_are_compat(local, proto, &found.btf, target_proto) {
        Ok(()) => Ok(Some(found)),
        Err(_) if ext.weak => Ok(None),
        Err(reason) => Err(incompatible(ext, proto, &found, target_proto, reason)),
    }
}

/// Addresses of the typeless `.ksyms` externs (`Ksym { target_type: None }`)
/// from `kallsyms`, by name; weak ones that are absent get 0, strong ones
/// that are absent are an error.
pub fn resolve_typeless_ksyms(
    externs: &[Extern],
    kallsyms: &Kallsyms,
) -> Result<HashMap<String, u64>, KernelError> {
    let names: Vec<&str> = externs
        .iter()
        .filter(|e| matches!(e.kind, ExternKind::Ksym { target_type: None }))
        .map(|e| e.name.as_str())
        .collect();
    let mut found = kallsyms.resolve(&names)?;
    for e in externs {
        if !matches!(e.kind, ExternKind::Ksym { target_type: None }) || found.contains_key(&e.name)
        {
            continue;
        }
        if !e.weak {
            return Err(KernelError::Unresolved {
                name: e.name.clone(),
                detail: "not in /proc/kallsyms".into(),
            });
        }
        found.insert(e.name.clone(), 0);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn essential_names() {
        assert_eq!(essential_name("bpf_foo___v2"), "bpf_foo");
        assert_eq!(essential_name("a___b___c"), "a___b");
        assert_eq!(essential_name("bpf_foo"), "bpf_foo");
        assert_eq!(essential_name("__x64_sys_bpf"), "__x64_sys_bpf");
        assert_eq!(essential_name("a____b"), "a____b");
        assert_eq!(essential_name("a___"), "a___");
        assert_eq!(essential_name(""), "");
    }
}
