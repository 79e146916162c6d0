//! The object's BTF made acceptable to the kernel, then `BPF_BTF_LOAD`.
//!
//! The kernel accepts only static and allocated VARs, FUNCs of static or
//! global linkage, and DATASECs whose entries are VARs with a non-zero size.
//! Externs break all three, so, as libbpf does: `.kconfig` variables become
//! allocated (the `.kconfig` map really holds them); `.ksyms` entries become
//! 4-byte `int` VARs laid out one after another (the programs never reach
//! them through BTF); extern FUNCs (kfunc declarations) become typedefs of
//! their prototype. A kernel that still refuses the BTF is not fatal: the
//! programs load without it unless they need it (kernel-side CO-RE,
//! BTF-typed attach targets).

use std::os::fd::OwnedFd;

use log::{debug, warn};

use super::LoadError;
use crate::btf::{Btf, BtfError, FuncLinkage, Kind, TypeKind, VarLinkage, VarSecInfo};
use crate::obj::Object;
use crate::sys;

const KIND_SHIFT: u32 = 24;

fn btf_err(what: &'static str) -> impl FnOnce(BtfError) -> LoadError {
    move |source| LoadError::Btf { what, source }
}

/// An `int` (4 bytes, signed) type id, appended if the BTF has none.
fn int_type(btf: &mut Btf) -> Result<u32, LoadError> {
    for t in btf.types_of_kind(&[Kind::Int]) {
        let t = t.map_err(btf_err("looking for an int type"))?;
        if let TypeKind::Int(i) = t.kind {
            if i.size == 4 && i.signed && i.bits == 32 {
                return Ok(t.id);
            }
        }
    }
    let name = btf.append_string("int");
    // INT: info kind 1, size 4, encoding SIGNED (1 << 24), 32 bits.
    btf.append_type_raw(&[name, 1 << KIND_SHIFT, 4, (1 << 24) | 32])
        .map_err(btf_err("adding an int type"))
}

pub(crate) fn sanitize(btf: &mut Btf) -> Result<(), LoadError> {
    let mut extern_funcs = Vec::new();
    let mut secs = Vec::new();
    let mut qmark_secs = Vec::new();
    for t in btf.types_of_kind(&[Kind::Func, Kind::Datasec]) {
        let t = t.map_err(btf_err("reading types"))?;
        match t.kind {
            TypeKind::Func {
                linkage: FuncLinkage::Extern,
                proto,
            } => extern_funcs.push((t.id, t.name_off, proto)),
            TypeKind::Datasec(ds) => {
                let name = btf.name(t.name_off).map_err(btf_err("reading names"))?;
                if name == ".kconfig" || name == ".ksyms" {
                    secs.push((t.id, name.to_string()));
                }
                if let Some(rest) = name.strip_prefix('?') {
                    qmark_secs.push((t.id, format!("_{rest}"), ds.len() as u32, ds.size));
                }
            }
            _ => {}
        }
    }
    for (id, name) in secs {
        let vars: Vec<VarSecInfo> = match btf
            .type_by_id(id)
            .map_err(btf_err("reading a DATASEC"))?
            .kind
        {
            TypeKind::Datasec(ds) => ds.vars().collect(),
            _ => continue,
        };
        if name == ".kconfig" {
            for v in &vars {
                if btf.kind_of(v.ty).map_err(btf_err("reading .kconfig"))? == Kind::Var {
                    btf.set_var_linkage(v.ty, VarLinkage::GlobalAllocated)
                        .map_err(btf_err("fixing .kconfig linkage"))?;
                }
            }
            continue;
        }
        let int = int_type(btf)?;
        let mut dummy = None;
        let mut out = Vec::with_capacity(vars.len());
        for (i, v) in vars.iter().enumerate() {
            let t = btf.type_by_id(v.ty).map_err(btf_err("reading .ksyms"))?;
            let ty = match t.kind {
                TypeKind::Var { .. } => {
                    let info = (Kind::Var as u32) << KIND_SHIFT;
                    btf.set_type_raw(v.ty, t.name_off, info, int)
                        .map_err(btf_err("retyping a ksym"))?;
                    btf.set_var_linkage(v.ty, VarLinkage::GlobalAllocated)
                        .map_err(btf_err("fixing ksym linkage"))?;
                    v.ty
                }
                _ => match dummy {
                    Some(d) => d,
                    None => {
                        let name = btf.append_string("__skelgen_dummy_ksym");
                        let d = btf
                            .append_type_raw(&[name, (Kind::Var as u32) << KIND_SHIFT, int, 1])
                            .map_err(btf_err("adding the dummy ksym"))?;
                        dummy = Some(d);
                        d
                    }
                },
            };
            out.push(VarSecInfo {
                ty,
                offset: (i as u32) * 4,
                size: 4,
            });
        }
        btf.set_datasec_vars(id, &out)
            .map_err(btf_err("laying out .ksyms"))?;
        btf.set_datasec_size(id, (out.len() as u32) * 4)
            .map_err(btf_err("sizing .ksyms"))?;
    }
    // `SEC("?.struct_ops")` gives a DATASEC named `?.struct_ops`, a name
    // older kernels refuse; as libbpf does where the kernel needs it,
    // the `?` becomes `_` (nothing looks DATASECs up by name in the kernel).
    for (id, name, vlen, size) in qmark_secs {
        let name_off = btf.append_string(&name);
        btf.set_type_raw(
            id,
            name_off,
            ((Kind::Datasec as u32) << KIND_SHIFT) | vlen,
            size,
        )
        .map_err(btf_err("renaming a ?-prefixed DATASEC"))?;
    }
    for (id, name_off, proto) in extern_funcs {
        btf.set_type_raw(id, name_off, (Kind::Typedef as u32) << KIND_SHIFT, proto)
            .map_err(btf_err("turning an extern FUNC into a typedef"))?;
    }
    Ok(())
}

/// Hidden global functions (`__hidden`, e.g. usdt.bpf.h's helpers) become
/// static in BTF: the verifier then checks them with their callers' types
/// instead of as independent global functions, as libbpf arranges.
fn hidden_funcs_static(
    btf: &mut Btf,
    obj_programs: &[crate::obj::Program],
) -> Result<(), LoadError> {
    for p in obj_programs.iter().filter(|p| p.global && p.hidden) {
        if let Some(id) = btf.find_by_name_kind(&p.name, Kind::Func) {
            btf.set_func_linkage(id, FuncLinkage::Static)
                .map_err(btf_err("making a hidden function static"))?;
            debug!(
                "prog '{}': hidden global function marked static in BTF",
                p.name
            );
        }
    }
    Ok(())
}

/// Sanitises and loads the object's BTF; `None` if there is none or the
/// kernel refuses it (with a warning holding the kernel's log).
pub(crate) fn load_btf(obj: &mut Object) -> Result<Option<OwnedFd>, LoadError> {
    let Some(btf) = obj.btf.as_mut() else {
        return Ok(None);
    };
    sanitize(btf)?;
    hidden_funcs_static(btf, &obj.programs)?;
    match sys::btf_load(btf.raw(), 0) {
        Ok(fd) => {
            debug!(
                "object '{}': BTF loaded ({} bytes)",
                obj.name,
                btf.raw().len()
            );
            Ok(Some(fd))
        }
        Err(e) => {
            let log = sys::btf_load(btf.raw(), 1)
                .err()
                .and_then(|e| e.verifier_log().map(str::to_string))
                .unwrap_or_default();
            warn!(
                "object '{}': the kernel refused the BTF ({e}); continuing without it.\n{log}",
                obj.name
            );
            Ok(None)
        }
    }
}
