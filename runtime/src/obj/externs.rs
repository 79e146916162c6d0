//! Externs: `.kconfig` variables (filled from the kernel config), `.ksyms`
//! variables and kfuncs (resolved against the kernel's symbols and BTF).

use crate::fast::HashMap;

use log::debug;
use object::elf;

use super::elf::Elf;
use super::ObjError;
use crate::btf::{Btf, FuncLinkage, Kind, TypeKind, VarLinkage, VarSecInfo};

/// How a `.kconfig` value is stored, as libbpf classifies it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KconfigType {
    /// `bool`: `y`/`n`.
    Bool,
    /// `enum libbpf_tristate`: `y`/`n`/`m`.
    Tristate,
    /// `char`: the option's first character.
    Char,
    /// An integer of the extern's size.
    Int {
        /// Whether it is signed.
        signed: bool,
    },
    /// `char[N]`: a string value.
    CharArray,
}

/// What an extern refers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExternKind {
    /// A `.kconfig` variable, stored at `offset` in the `.kconfig` map.
    Kconfig {
        /// Value class.
        ty: KconfigType,
        /// Size in bytes.
        size: u32,
        /// Alignment in bytes.
        align: u32,
        /// Offset in the `.kconfig` map.
        offset: u32,
    },
    /// A `.ksyms` variable: typeless (`const void`, resolved through
    /// `/proc/kallsyms`) when `target_type` is `None`, else typed (resolved by
    /// BTF id).
    Ksym {
        /// BTF id (in the object's BTF) of the variable's type, modifiers skipped.
        target_type: Option<u32>,
    },
    /// A kernel function called from BPF.
    Kfunc {
        /// The FUNC_PROTO in the object's BTF.
        proto: u32,
    },
}

/// One extern declared by the object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extern {
    /// Symbol name.
    pub name: String,
    /// Kind and layout.
    pub kind: ExternKind,
    /// `__weak`: a missing value is zero instead of an error.
    pub weak: bool,
    /// The VAR or FUNC type id in the object's BTF.
    pub btf_id: u32,
    /// Index of the `.kconfig`/`.ksyms` DATASEC entry, for fixups.
    pub(crate) sec_entry: Option<SecEntry>,
}

fn classify_kconfig(btf: &Btf, ty: u32) -> Option<KconfigType> {
    let t = btf.skip_mods_and_typedefs(ty).ok()?;
    let tt = btf.type_by_id(t).ok()?;
    match tt.kind {
        TypeKind::Int(i) => {
            if i.bool && i.size == 1 {
                Some(KconfigType::Bool)
            } else if i.char && i.size == 1 {
                Some(KconfigType::Char)
            } else if matches!(i.size, 1 | 2 | 4 | 8) && u32::from(i.bits) == i.size * 8 {
                Some(KconfigType::Int { signed: i.signed })
            } else {
                None
            }
        }
        TypeKind::Enum(e) if e.size == 4 => {
            (btf.name(tt.name_off).ok()? == "libbpf_tristate").then_some(KconfigType::Tristate)
        }
        TypeKind::Array(a) => {
            let elem = btf.skip_mods_and_typedefs(a.elem_type).ok()?;
            match btf.type_by_id(elem).ok()?.kind {
                TypeKind::Int(i) if i.size == 1 && (i.char || i.bits == 8) => {
                    Some(KconfigType::CharArray)
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// A DATASEC type id and the index of an entry in it.
type SecEntry = (u32, usize);

/// Where each type id is first listed in a DATASEC, in id order: built
/// once, so that finding the entries of `n` externs costs one pass over the
/// types rather than `n` (an object with 8000 kfunc externs took 15 s).
fn datasec_entries(btf: &Btf) -> Result<HashMap<u32, SecEntry>, ObjError> {
    let mut entries = HashMap::default();
    for t in btf.types_of_kind(&[Kind::Datasec]) {
        let t = t.map_err(ObjError::btf)?;
        if let TypeKind::Datasec(ds) = t.kind {
            for (i, v) in ds.vars().enumerate() {
                entries.entry(v.ty).or_insert((t.id, i));
            }
        }
    }
    Ok(entries)
}

/// Finds the VAR or FUNC with extern linkage named `name`, and the DATASEC
/// (and entry index) that lists it; `entries` is [`datasec_entries`],
/// computed on first use.
fn find_btf(
    btf: &Btf,
    name: &str,
    entries: &mut Option<HashMap<u32, SecEntry>>,
) -> Result<Option<(u32, Option<SecEntry>)>, ObjError> {
    let mut found = None;
    for &id in btf.find_by_name(name) {
        let t = btf.type_by_id(id).map_err(ObjError::btf)?;
        match t.kind {
            TypeKind::Var {
                linkage: VarLinkage::GlobalExtern,
                ..
            }
            | TypeKind::Func {
                linkage: FuncLinkage::Extern,
                ..
            } => {
                found = Some(id);
                break;
            }
            _ => {}
        }
    }
    let Some(id) = found else { return Ok(None) };
    let entries = match entries {
        Some(e) => e,
        None => entries.insert(datasec_entries(btf)?),
    };
    Ok(Some((id, entries.get(&id).copied())))
}

pub(crate) fn collect(elf: &Elf<'_>, btf: Option<&mut Btf>) -> Result<Vec<Extern>, ObjError> {
    let mut externs = Vec::new();
    let mut entries = None;
    for sym in &elf.symbols {
        if !(sym.is_undefined() && sym.is_global_or_weak() && sym.kind == elf::STT_NOTYPE) {
            continue;
        }
        if sym.name.is_empty() {
            continue;
        }
        let err = |reason: String| ObjError::Extern {
            name: sym.name.to_string(),
            reason,
        };
        let Some(btf) = btf.as_deref() else {
            return Err(ObjError::MissingBtf { what: "externs" });
        };
        let (id, sec) = find_btf(btf, sym.name, &mut entries)?
            .ok_or_else(|| err("no BTF VAR or FUNC with extern linkage describes it".into()))?;
        let sec_name = match sec {
            Some((ds, _)) => btf.type_name(ds).map_err(ObjError::btf)?.to_string(),
            None => String::new(),
        };
        let t = btf.type_by_id(id).map_err(ObjError::btf)?;
        let kind = match (sec_name.as_str(), t.kind) {
            (".kconfig", TypeKind::Var { ty, .. }) => {
                let class = classify_kconfig(btf, ty).ok_or_else(|| {
                    err(format!(
                        "type id {ty} is not a supported kconfig type (bool, char, integer, char array, enum libbpf_tristate)"
                    ))
                })?;
                let size = btf.size_of(ty).map_err(ObjError::btf)?;
                let align = btf.align_of(ty).map_err(ObjError::btf)?.max(1);
                ExternKind::Kconfig {
                    ty: class,
                    size,
                    align,
                    offset: 0,
                }
            }
            (".kconfig", _) => return Err(err("functions cannot be .kconfig externs".into())),
            (".ksyms", TypeKind::Var { ty, .. }) => {
                let target = btf.skip_mods_and_typedefs(ty).map_err(ObjError::btf)?;
                ExternKind::Ksym {
                    target_type: (target != 0).then_some(target),
                }
            }
            (".ksyms", TypeKind::Func { proto, .. }) => ExternKind::Kfunc { proto },
            ("", TypeKind::Func { proto, .. }) => ExternKind::Kfunc { proto },
            (other, _) => {
                return Err(err(format!(
                    "extern in unsupported section '{other}': use __kconfig or __ksym"
                )))
            }
        };
        debug!(
            "extern (sec '{sec_name}') #{}: '{}', type id {id}, {:?}, {}",
            externs.len(),
            sym.name,
            kind,
            if sym.bind == elf::STB_WEAK {
                "weak"
            } else {
                "strong"
            }
        );
        externs.push(Extern {
            name: sym.name.to_string(),
            kind,
            weak: sym.bind == elf::STB_WEAK,
            btf_id: id,
            sec_entry: sec,
        });
    }

    // libbpf's order: kconfig first (by descending alignment, then ascending
    // size, then name), then ksyms and kfuncs by name.
    let rank = |e: &Extern| match e.kind {
        ExternKind::Kconfig { .. } => 0,
        _ => 1,
    };
    externs.sort_by(|a, b| {
        rank(a)
            .cmp(&rank(b))
            .then_with(|| match (&a.kind, &b.kind) {
                (
                    ExternKind::Kconfig {
                        align: aa,
                        size: sa,
                        ..
                    },
                    ExternKind::Kconfig {
                        align: ab,
                        size: sb,
                        ..
                    },
                ) => ab
                    .cmp(aa)
                    .then(sa.cmp(sb))
                    .then_with(|| a.name.cmp(&b.name)),
                _ => a.name.cmp(&b.name),
            })
    });
    let mut off = 0u32;
    for e in &mut externs {
        if let ExternKind::Kconfig {
            size,
            align,
            offset,
            ..
        } = &mut e.kind
        {
            off = off
                .div_ceil(*align)
                .checked_mul(*align)
                .ok_or_else(|| ObjError::Extern {
                    name: e.name.clone(),
                    reason: "kconfig layout overflows".into(),
                })?;
            *offset = off;
            off = off.checked_add(*size).ok_or_else(|| ObjError::Extern {
                name: e.name.clone(),
                reason: "kconfig layout overflows".into(),
            })?;
        }
    }

    // The `.kconfig` DATASEC describes the map the externs now live in.
    if let Some(btf) = btf {
        if let Some(ds) = btf.find_by_name_kind(".kconfig", Kind::Datasec) {
            btf.set_datasec_size(ds, off).map_err(ObjError::btf)?;
            let mut entries: Vec<VarSecInfo> = Vec::new();
            for e in &externs {
                if let (ExternKind::Kconfig { offset, size, .. }, Some((sec, _))) =
                    (&e.kind, e.sec_entry)
                {
                    if sec == ds {
                        entries.push(VarSecInfo {
                            ty: e.btf_id,
                            offset: *offset,
                            size: *size,
                        });
                    }
                }
            }
            crate::sort::stable_sort_by_u64(&mut entries, |e| u64::from(e.offset));
            btf.set_datasec_vars(ds, &entries).map_err(ObjError::btf)?;
        }
    }
    Ok(externs)
}
