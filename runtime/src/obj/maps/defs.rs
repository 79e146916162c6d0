//! BTF-defined maps: the `struct { __uint(type, ...); ... } name SEC(".maps")`
//! declarations, one map per `STT_OBJECT` symbol of `.maps`, read from the
//! BTF of each definition struct as libbpf reads them.

use crate::fast::HashSet;

use log::debug;
use object::elf;

use super::data::internal_map_name;
use super::slots::{self, MapExtent};
use super::{Map, MapDef, MapKind, MapType, PinningType, BPF_OBJ_NAME_LEN};
use crate::btf::{Btf, TypeKind, VarLinkage};
use crate::obj::elf::Elf;
use crate::obj::ObjError;

/// Reads `int (*name)[N]` (the `__uint` macro) or an enum constant (the
/// `__ulong` macro) from a map definition member.
fn int_field(btf: &Btf, map: &str, field: &str, ty: u32) -> Result<u64, ObjError> {
    let bad = |what: String| ObjError::map(map, format!("field '{field}': {what}"));
    let t = btf
        .skip_mods_and_typedefs(ty)
        .map_err(|e| bad(e.to_string()))?;
    match btf.type_by_id(t).map_err(|e| bad(e.to_string()))?.kind {
        TypeKind::Ptr(target) => {
            let arr = btf
                .skip_mods_and_typedefs(target)
                .map_err(|e| bad(e.to_string()))?;
            match btf.type_by_id(arr).map_err(|e| bad(e.to_string()))?.kind {
                TypeKind::Array(a) => Ok(u64::from(a.nelems)),
                other => Err(bad(format!(
                    "expected a pointer to an array (__uint), found a pointer to {} (type id {arr})",
                    other.kind()
                ))),
            }
        }
        TypeKind::Enum(e) if e.len() == 1 => Ok(e.values().next().map_or(0, |v| v.value)),
        TypeKind::Enum64(e) if e.len() == 1 => Ok(e.values().next().map_or(0, |v| v.value)),
        other => Err(bad(format!(
            "expected __uint or __ulong (pointer to array, or one-value enum), found {} (type id {t})",
            other.kind()
        ))),
    }
}

fn to_u32(map: &str, field: &str, v: u64) -> Result<u32, ObjError> {
    u32::try_from(v)
        .map_err(|_| ObjError::map(map, format!("field '{field}': {v} does not fit 32 bits")))
}

/// Parses one BTF map definition struct (type id `def_ty`).
/// The `values` member of a prog array or map-in-map: its byte offset in the
/// definition, and the inner map definition's type id (`None` for programs).
type ValuesMember = (u32, Option<u32>);

/// Returns the definition and, for map-in-map and prog arrays, the
/// `values` member.
fn parse_def(
    btf: &Btf,
    name: &str,
    def_ty: u32,
    is_inner: bool,
) -> Result<(MapDef, Option<ValuesMember>), ObjError> {
    let t = btf
        .skip_mods_and_typedefs(def_ty)
        .map_err(|e| ObjError::map(name, e))?;
    let ty = btf.type_by_id(t).map_err(|e| ObjError::map(name, e))?;
    let TypeKind::Struct(st) = ty.kind else {
        return Err(ObjError::map(
            name,
            format!(
                "definition is {} (type id {t}), expected a struct",
                ty.kind()
            ),
        ));
    };
    let mut def = MapDef::empty();
    let mut values = None;
    let mut key_ty = None;
    let mut value_ty = None;
    for m in st.members() {
        let field = btf.name(m.name_off).map_err(|e| ObjError::map(name, e))?;
        match field {
            "type" => {
                def.map_type = MapType(to_u32(name, field, int_field(btf, name, field, m.ty)?)?)
            }
            "max_entries" => {
                def.max_entries = to_u32(name, field, int_field(btf, name, field, m.ty)?)?
            }
            "map_flags" => def.map_flags = to_u32(name, field, int_field(btf, name, field, m.ty)?)?,
            "numa_node" => def.numa_node = to_u32(name, field, int_field(btf, name, field, m.ty)?)?,
            "map_extra" => def.map_extra = int_field(btf, name, field, m.ty)?,
            "key_size" | "value_size" => {
                let v = to_u32(name, field, int_field(btf, name, field, m.ty)?)?;
                let slot = if field == "key_size" {
                    &mut def.key_size
                } else {
                    &mut def.value_size
                };
                if *slot != 0 && *slot != v {
                    return Err(ObjError::map(
                        name,
                        format!(
                            "{field} {v} conflicts with the size of the declared type ({slot})"
                        ),
                    ));
                }
                *slot = v;
            }
            "key" | "value" => {
                let pt = btf
                    .skip_mods_and_typedefs(m.ty)
                    .map_err(|e| ObjError::map(name, e))?;
                let TypeKind::Ptr(target) =
                    btf.type_by_id(pt).map_err(|e| ObjError::map(name, e))?.kind
                else {
                    return Err(ObjError::map(
                        name,
                        format!("field '{field}' (type id {pt}) must be a pointer (__type)"),
                    ));
                };
                let size = btf.size_of(target).map_err(|e| {
                    ObjError::map(
                        name,
                        format!("field '{field}': type id {target} has no size: {e}"),
                    )
                })?;
                let slot = if field == "key" {
                    key_ty = Some(target);
                    &mut def.key_size
                } else {
                    value_ty = Some(target);
                    &mut def.value_size
                };
                if *slot != 0 && *slot != size {
                    return Err(ObjError::map(
                        name,
                        format!("{field} type size {size} conflicts with {field}_size {slot}"),
                    ));
                }
                *slot = size;
            }
            "values" => {
                if is_inner {
                    return Err(ObjError::map(
                        name,
                        "an inner map cannot have 'values' itself",
                    ));
                }
                let at = btf
                    .skip_mods_and_typedefs(m.ty)
                    .map_err(|e| ObjError::map(name, e))?;
                let TypeKind::Array(arr) =
                    btf.type_by_id(at).map_err(|e| ObjError::map(name, e))?.kind
                else {
                    return Err(ObjError::map(
                        name,
                        format!("'values' (type id {at}) must be an array (__array)"),
                    ));
                };
                let pt = btf
                    .skip_mods_and_typedefs(arr.elem_type)
                    .map_err(|e| ObjError::map(name, e))?;
                let TypeKind::Ptr(target) =
                    btf.type_by_id(pt).map_err(|e| ObjError::map(name, e))?.kind
                else {
                    return Err(ObjError::map(
                        name,
                        format!("'values' elements (type id {pt}) must be pointers"),
                    ));
                };
                let target = btf
                    .skip_mods_and_typedefs(target)
                    .map_err(|e| ObjError::map(name, e))?;
                let inner = match btf.type_by_id(target).map_err(|e| ObjError::map(name, e))?.kind {
                    TypeKind::Struct(_) => Some(target),
                    TypeKind::FuncProto(_) => None,
                    other => {
                        return Err(ObjError::map(
                            name,
                            format!(
                                "'values' must point to a map definition struct or a function prototype, found {} (type id {target})",
                                other.kind()
                            ),
                        ))
                    }
                };
                if m.bit_offset % 8 != 0 {
                    return Err(ObjError::map(name, "'values' is not byte aligned"));
                }
                values = Some((m.bit_offset / 8, inner));
                // Each slot holds a pointer; the value is a 4-byte fd or id.
                def.value_size = 4;
            }
            "pinning" => {
                def.pinning = match int_field(btf, name, field, m.ty)? {
                    0 => PinningType::None,
                    1 => PinningType::ByName,
                    v => {
                        return Err(ObjError::map(
                            name,
                            format!(
                                "pinning {v} is not LIBBPF_PIN_NONE (0) or LIBBPF_PIN_BY_NAME (1)"
                            ),
                        ))
                    }
                }
            }
            other => {
                return Err(ObjError::map(
                    name,
                    format!("unknown field '{other}' in the map definition (type id {t})"),
                ))
            }
        }
    }
    if def.map_type == MapType::UNSPEC {
        return Err(ObjError::map(name, "no 'type' given"));
    }
    if let Some(k) = key_ty {
        def.btf_key_type_id = k;
    }
    if let Some(v) = value_ty {
        def.btf_value_type_id = v;
    }
    if values.is_some() && (def.map_type.is_map_in_map() || def.map_type == MapType::PROG_ARRAY) {
        // key is the slot index
        if def.key_size == 0 {
            def.key_size = 4;
        }
    } else if let Some((_, inner)) = values {
        let _ = inner;
        return Err(ObjError::map(
            name,
            format!(
                "'values' is only valid for prog arrays and map-in-map, not {}",
                def.map_type
            ),
        ));
    }
    Ok((def, values))
}

/// BTF-defined maps: one per `STT_OBJECT` symbol of `.maps`. Static
/// program slots must name one of `entry_programs`.
pub(crate) fn collect_btf_maps(
    elf: &Elf<'_>,
    btf: Option<&Btf>,
    entry_programs: &HashSet<&str>,
) -> Result<Vec<Map>, ObjError> {
    let Some(sec) = elf.section_by_name(".maps") else {
        return Ok(Vec::new());
    };
    let btf = btf.ok_or(ObjError::MissingBtf {
        what: "a .maps section",
    })?;
    let ds_id = btf
        .find_by_name_kind(".maps", crate::btf::Kind::Datasec)
        .ok_or_else(|| ObjError::Section {
            index: sec.index,
            name: sec.name.into(),
            reason: "no BTF DATASEC '.maps' describes it".into(),
        })?;
    let TypeKind::Datasec(ds) = btf.type_by_id(ds_id).map_err(ObjError::btf)?.kind else {
        return Err(ObjError::Section {
            index: sec.index,
            name: sec.name.into(),
            reason: format!("BTF type id {ds_id} named '.maps' is not a DATASEC"),
        });
    };

    let mut maps = Vec::new();
    let mut extents = Vec::new();
    // `.maps` symbols by name, indexed once rather than searched per map.
    let mut symbols = crate::fast::HashMap::default();
    for s in elf
        .symbols
        .iter()
        .filter(|s| usize::from(s.shndx) == sec.index)
    {
        symbols.entry(s.name).or_insert(s);
    }
    for v in ds.vars() {
        let var = btf.type_by_id(v.ty).map_err(ObjError::btf)?;
        let TypeKind::Var { ty, linkage } = var.kind else {
            return Err(ObjError::Section {
                index: sec.index,
                name: sec.name.into(),
                reason: format!(
                    "DATASEC entry type id {} is {}, expected VAR",
                    v.ty,
                    var.kind()
                ),
            });
        };
        let name = btf.name(var.name_off).map_err(ObjError::btf)?.to_string();
        if matches!(linkage, VarLinkage::Other(_)) {
            return Err(ObjError::map(
                &name,
                format!("unsupported linkage {linkage:?}"),
            ));
        }
        let sym = symbols
            .get(name.as_str())
            .ok_or_else(|| ObjError::map(&name, "BTF variable in .maps has no ELF symbol"))?;
        if sym.kind != elf::STT_OBJECT {
            return Err(ObjError::map(
                &name,
                "the .maps symbol is not an object (STT_OBJECT)",
            ));
        }
        let (mut def, values) = parse_def(btf, &name, ty, false)?;
        let mut inner = None;
        if let Some((_, Some(inner_ty))) = values {
            if !def.map_type.is_map_in_map() {
                return Err(ObjError::map(
                    &name,
                    "'values' holds maps but the map is not a map-in-map",
                ));
            }
            let inner_name = format!("{name}.inner");
            let (idef, _) = parse_def(btf, &inner_name, inner_ty, true)?;
            inner = Some(Box::new(Map {
                kernel_name: first_chars(&internal_map_name("", &inner_name), 15).to_string(),
                name: inner_name,
                kind: MapKind::Btf { sec_offset: 0 },
                def: idef,
                inner: None,
                init_slots: Vec::new(),
                section_index: sec.index,
                image: Vec::new(),
            }));
        } else if let Some((_, None)) = values {
            if def.map_type != MapType::PROG_ARRAY {
                return Err(ObjError::map(
                    &name,
                    "'values' holds programs but the map is not a prog array",
                ));
            }
        }
        if def.map_type.is_map_in_map() && inner.is_none() {
            return Err(ObjError::map(
                &name,
                "map-in-map needs its inner map declared with __array(values, struct ...)",
            ));
        }
        if def.map_type == MapType::PERF_EVENT_ARRAY {
            if def.key_size == 0 {
                def.key_size = 4;
            }
            if def.value_size == 0 {
                def.value_size = 4;
            }
        }
        debug!(
            "map '{name}': at sec_idx {}, offset {}: type {}, key {} bytes, value {} bytes, max_entries {}, flags {:#x}",
            sec.index, sym.value, def.map_type, def.key_size, def.value_size, def.max_entries, def.map_flags
        );
        extents.push(MapExtent {
            start: sym.value,
            size: sym.size,
            values_off: values.map(|(o, _)| o),
        });
        maps.push(Map {
            kernel_name: first_chars(&name, BPF_OBJ_NAME_LEN - 1).to_string(),
            name,
            kind: MapKind::Btf {
                sec_offset: sym.value,
            },
            def,
            inner,
            init_slots: Vec::new(),
            section_index: sec.index,
            image: Vec::new(),
        });
    }

    // Static initialisers of `values` live in `.rel.maps`.
    slots::collect(elf, sec.index, &mut maps, &extents, entry_programs)?;
    Ok(maps)
}

/// The first `n` characters of `s` (all of it if shorter): a slice, so that a
/// map's kernel name is one copy rather than a `String` grown a character
/// at a time.
fn first_chars(s: &str, n: usize) -> &str {
    let end = s.char_indices().nth(n).map_or(s.len(), |(i, _)| i);
    &s[..end]
}
