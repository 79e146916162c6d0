//! DATASEC fixups: clang leaves a DATASEC's size (and, depending on the
//! version, its variables' offsets) as zero; the ELF section and symbols hold
//! the truth. Globals with hidden visibility become static, so that the
//! kernel and the skeleton treat them as private to the object.

use crate::fast::map_with_capacity;

use log::debug;
use object::elf;

use super::elf::Elf;
use super::ObjError;
use crate::btf::{Btf, Kind, TypeKind, VarLinkage};

pub(crate) fn fixup(elf: &Elf<'_>, btf: &mut Btf) -> Result<(), ObjError> {
    let mut secs = Vec::new();
    for ty in btf.types_of_kind(&[Kind::Datasec]) {
        let ty = ty.map_err(ObjError::btf)?;
        if let TypeKind::Datasec(ds) = ty.kind {
            secs.push((ty.id, ty.name_off, ds.size));
        }
    }
    // Sections and object symbols by name, each indexed once: a search per
    // DATASEC and per variable is quadratic in a crafted object.
    let mut sections = map_with_capacity(elf.sections.len());
    for sec in &elf.sections {
        sections.entry(sec.name).or_insert(sec);
    }
    let mut objects = map_with_capacity(elf.symbols.len());
    for s in elf.symbols.iter().filter(|s| s.kind == elf::STT_OBJECT) {
        if let Some(sec) = elf.section(usize::from(s.shndx)) {
            objects.entry((sec.name, s.name)).or_insert(s);
        }
    }
    for (id, name_off, size) in secs {
        let sec_name = btf.name(name_off).map_err(ObjError::btf)?.to_string();
        if sec_name == ".kconfig" || sec_name == ".ksyms" {
            continue; // laid out by the externs pass
        }
        let mut fix_offsets = false;
        if size == 0 {
            let sec = sections
                .get(sec_name.as_str())
                .ok_or_else(|| ObjError::Elf {
                    reason: format!(
                        "BTF DATASEC '{sec_name}' (type id {id}) has no ELF section to size it"
                    ),
                })?;
            let sz = u32::try_from(sec.size).map_err(|_| ObjError::Section {
                index: sec.index,
                name: sec.name.to_string(),
                reason: format!("size {} does not fit a DATASEC", sec.size),
            })?;
            btf.set_datasec_size(id, sz).map_err(ObjError::btf)?;
            fix_offsets = true;
            debug!("sec '{sec_name}': DATASEC size fixed up to {sz}");
        }
        let vars: Vec<_> = match btf.type_by_id(id).map_err(ObjError::btf)?.kind {
            TypeKind::Datasec(ds) => ds.vars().collect(),
            _ => Vec::new(),
        };
        for (index, v) in vars.iter().enumerate() {
            let var = btf.type_by_id(v.ty).map_err(ObjError::btf)?;
            let TypeKind::Var { linkage, .. } = var.kind else {
                return Err(ObjError::Elf {
                    reason: format!(
                        "BTF DATASEC '{sec_name}' entry {index} is type id {} of kind {}, expected VAR",
                        v.ty,
                        var.kind()
                    ),
                });
            };
            if linkage == VarLinkage::GlobalExtern {
                continue;
            }
            let var_name = btf.name(var.name_off).map_err(ObjError::btf)?.to_string();
            let sym = objects
                .get(&(sec_name.as_str(), var_name.as_str()))
                .copied();
            // A static variable may have no symbol of its own (clang can
            // address it through the section symbol): keep clang's offset.
            let sym = match (sym, linkage) {
                (Some(sym), _) => sym,
                (None, VarLinkage::Static) => continue,
                (None, _) => {
                    return Err(ObjError::Elf {
                        reason: format!(
                            "BTF variable '{var_name}' of DATASEC '{sec_name}' has no ELF symbol"
                        ),
                    })
                }
            };
            if fix_offsets {
                let off = u32::try_from(sym.value).map_err(|_| ObjError::Elf {
                    reason: format!("symbol '{var_name}' offset {} too large", sym.value),
                })?;
                btf.set_datasec_var(id, index, off, v.size)
                    .map_err(ObjError::btf)?;
            }
            if linkage != VarLinkage::Static && sym.is_hidden() {
                btf.set_var_linkage(v.ty, VarLinkage::Static)
                    .map_err(ObjError::btf)?;
                debug!("sec '{sec_name}': hidden variable '{var_name}' made static");
            }
        }
        check_sorted(btf, id, &sec_name)?;
    }
    Ok(())
}

/// The kernel requires DATASEC variables in ascending, non-overlapping offset
/// order: sort them (as libbpf does), then check they do not overlap.
fn check_sorted(btf: &mut Btf, id: u32, sec_name: &str) -> Result<(), ObjError> {
    let ty = btf.type_by_id(id).map_err(ObjError::btf)?;
    let TypeKind::Datasec(ds) = ty.kind else {
        return Ok(());
    };
    let size = ds.size;
    let mut vars: Vec<_> = ds.vars().collect();
    if vars.windows(2).any(|w| w[0].offset > w[1].offset) {
        crate::sort::stable_sort_by_u64(&mut vars, |v| u64::from(v.offset));
        btf.set_datasec_vars(id, &vars).map_err(ObjError::btf)?;
    }
    let mut end = 0u64;
    for v in vars {
        if u64::from(v.offset) < end {
            return Err(ObjError::Elf {
                reason: format!(
                    "BTF DATASEC '{sec_name}': variable (type id {}) at offset {} overlaps the previous one ending at {end}",
                    v.ty, v.offset
                ),
            });
        }
        end = u64::from(v.offset) + u64::from(v.size);
        if end > u64::from(size) {
            return Err(ObjError::Elf {
                reason: format!(
                    "BTF DATASEC '{sec_name}': variable (type id {}) at {}+{} runs past the section size {}",
                    v.ty, v.offset, v.size, size
                ),
            });
        }
    }
    Ok(())
}
