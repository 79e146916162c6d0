//! Internal maps backing global data: one array map of a single value per
//! `.data*`, `.rodata*` and `.bss*` section, and one for the `.kconfig`
//! externs, named and flagged as libbpf names and flags them.

use log::debug;
use object::elf;

use super::{
    DataKind, Map, MapDef, MapKind, MapType, BPF_F_MMAPABLE, BPF_F_RDONLY_PROG, BPF_OBJ_NAME_LEN,
};
use crate::btf::{Btf, TypeKind, VarLinkage};
use crate::obj::elf::Elf;
use crate::obj::externs::{Extern, ExternKind};
use crate::obj::ObjError;

/// The kernel name of an internal map, following libbpf's rule: a custom
/// section (`.data.foo`) keeps its own name; the standard ones get as much of
/// the object name as fits before the section name (at least 7 characters
/// of suffix are reserved), characters the kernel refuses become `_`.
pub fn internal_map_name(obj_name: &str, sec_name: &str) -> String {
    let max = BPF_OBJ_NAME_LEN - 1;
    let sfx_len = sec_name.len().max(7).min(max);
    let custom = sec_name.get(1..).is_some_and(|s| s.contains('.'));
    let pfx_len = if custom {
        0
    } else {
        (max - sfx_len).min(obj_name.len())
    };
    let mut name: String = obj_name
        .chars()
        .take(pfx_len)
        .chain(sec_name.chars().take(sfx_len))
        .collect();
    name.truncate(
        name.char_indices()
            .map(|(i, c)| i + c.len_utf8())
            .take_while(|&e| e <= max)
            .last()
            .unwrap_or(0),
    );
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn data_kind_of(sec_name: &str) -> Option<DataKind> {
    let is = |base: &str| {
        sec_name == base
            || sec_name
                .strip_prefix(base)
                .is_some_and(|rest| rest.starts_with('.'))
    };
    if is(".data") {
        Some(DataKind::Data)
    } else if is(".rodata") {
        Some(DataKind::Rodata)
    } else if is(".bss") {
        Some(DataKind::Bss)
    } else {
        None
    }
}

/// Largest global-data map (`.data*`, `.rodata*`, `.bss*`, `.kconfig`)
/// accepted: the verifier rejects map-value offsets from `1 << 29`
/// (`BPF_MAX_VAR_OFF`) on, so no program can reach past it, and each map
/// holds its zero-filled or copied image in memory (a `.bss` header
/// claiming 4 GiB would otherwise allocate 4 GiB).
pub const MAX_DATA_MAP_SIZE: u32 = 1 << 29;

/// [`ObjError::Limit`] unless `size` fits [`MAX_DATA_MAP_SIZE`].
fn check_data_map_size(what: impl FnOnce() -> String, size: u64) -> Result<(), ObjError> {
    if size > u64::from(MAX_DATA_MAP_SIZE) {
        return Err(ObjError::Limit {
            what: what(),
            value: size,
            limit_name: "MAX_DATA_MAP_SIZE",
            limit: u64::from(MAX_DATA_MAP_SIZE),
        });
    }
    Ok(())
}

/// Internal maps for `.data*`, `.rodata*` and `.bss*`.
pub(crate) fn collect_data_maps(
    elf: &Elf<'_>,
    btf: Option<&Btf>,
    obj_name: &str,
    maps: &mut Vec<Map>,
) -> Result<(), ObjError> {
    for sec in &elf.sections {
        let Some(kind) = data_kind_of(sec.name) else {
            continue;
        };
        let progbits = sec.sh_type == elf::SHT_PROGBITS;
        let nobits = sec.sh_type == elf::SHT_NOBITS;
        if !(progbits && kind != DataKind::Bss || nobits && kind == DataKind::Bss) {
            continue;
        }
        if sec.size == 0 {
            continue;
        }
        check_data_map_size(
            || format!("section {} '{}': size", sec.index, sec.name),
            sec.size,
        )?;
        let value_size = u32::try_from(sec.size).map_err(|_| ObjError::Section {
            index: sec.index,
            name: sec.name.into(),
            reason: format!("size {} too large for a map value", sec.size),
        })?;
        let mut def = MapDef::empty();
        def.map_type = MapType::ARRAY;
        def.key_size = 4;
        def.value_size = value_size;
        def.max_entries = 1;
        let mut mmapable = true;
        if let Some(btf) = btf {
            if let Some(id) = btf.find_by_name_kind(sec.name, crate::btf::Kind::Datasec) {
                def.btf_value_type_id = id;
                // libbpf: a section holding only static variables is not
                // exposed to user space, so it is not mmapable.
                if let TypeKind::Datasec(ds) = btf.type_by_id(id).map_err(ObjError::btf)?.kind {
                    mmapable = false;
                    for v in ds.vars() {
                        if let TypeKind::Var { linkage, .. } =
                            btf.type_by_id(v.ty).map_err(ObjError::btf)?.kind
                        {
                            if linkage != VarLinkage::Static {
                                mmapable = true;
                            }
                        }
                    }
                }
            }
        }
        if kind == DataKind::Rodata {
            def.map_flags |= BPF_F_RDONLY_PROG;
        }
        if mmapable {
            def.map_flags |= BPF_F_MMAPABLE;
        }
        let image = if kind == DataKind::Bss {
            vec![0; value_size as usize]
        } else {
            sec.data.to_vec()
        };
        let kernel_name = internal_map_name(obj_name, sec.name);
        debug!(
            "map '{}' ({}): created for section '{}' ({} bytes), flags {:#x}",
            kernel_name, sec.name, sec.name, value_size, def.map_flags
        );
        maps.push(Map {
            name: sec.name.to_string(),
            kernel_name,
            kind: MapKind::Data(kind),
            def,
            inner: None,
            init_slots: Vec::new(),
            section_index: sec.index,
            image,
        });
    }
    Ok(())
}

/// The `.kconfig` map, sized to hold every kconfig extern.
pub(crate) fn kconfig_map(
    externs: &[Extern],
    btf: Option<&Btf>,
    obj_name: &str,
) -> Result<Option<Map>, ObjError> {
    let Some(end) = externs
        .iter()
        .filter_map(|e| match e.kind {
            ExternKind::Kconfig { offset, size, .. } => Some(u64::from(offset) + u64::from(size)),
            _ => None,
        })
        .max()
    else {
        return Ok(None);
    };
    check_data_map_size(|| "the .kconfig map's size (its externs' end)".into(), end)?;
    // Fits: at most MAX_DATA_MAP_SIZE.
    let end = end as u32;
    let mut def = MapDef::empty();
    def.map_type = MapType::ARRAY;
    def.key_size = 4;
    def.value_size = end;
    def.max_entries = 1;
    def.map_flags = BPF_F_RDONLY_PROG | BPF_F_MMAPABLE;
    def.btf_value_type_id = btf
        .and_then(|b| b.find_by_name_kind(".kconfig", crate::btf::Kind::Datasec))
        .unwrap_or(0);
    Ok(Some(Map {
        name: ".kconfig".into(),
        kernel_name: internal_map_name(obj_name, ".kconfig"),
        kind: MapKind::Data(DataKind::Kconfig),
        def,
        inner: None,
        init_slots: Vec::new(),
        section_index: usize::MAX,
        image: vec![0; end as usize],
    }))
}

#[cfg(test)]
mod tests {
    use super::internal_map_name;

    #[test]
    fn kconfig_map_past_the_size_limit_is_an_error() {
        use super::{kconfig_map, MAX_DATA_MAP_SIZE};
        use crate::obj::{Extern, ExternKind, KconfigType, ObjError};
        // `extern char CONFIG_HUGE[1 << 29] __kconfig;` after an 8-byte one.
        let huge = |offset| Extern {
            name: "CONFIG_HUGE".into(),
            kind: ExternKind::Kconfig {
                ty: KconfigType::CharArray,
                size: MAX_DATA_MAP_SIZE,
                align: 1,
                offset,
            },
            weak: true,
            btf_id: 1,
            sec_entry: None,
        };
        let m = kconfig_map(&[huge(0)], None, "o").expect("exactly the limit");
        assert_eq!(m.map(|m| m.def.value_size), Some(MAX_DATA_MAP_SIZE));
        let e = kconfig_map(&[huge(8)], None, "o").unwrap_err();
        assert!(
            matches!(e, ObjError::Limit { value, limit_name: "MAX_DATA_MAP_SIZE", .. }
                if value == u64::from(MAX_DATA_MAP_SIZE) + 8),
            "{e}"
        );
        assert!(e.to_string().contains(".kconfig"), "{e}");
    }

    #[test]
    fn internal_names_follow_libbpf() {
        assert_eq!(internal_map_name("vfsstat", ".bss"), "vfsstat.bss");
        assert_eq!(internal_map_name("vfsstat", ".rodata"), "vfsstat.rodata");
        assert_eq!(
            internal_map_name("tp_ringbuf", ".rodata"),
            "tp_ringb.rodata"
        );
        assert_eq!(
            internal_map_name("tp_ringbuf", ".kconfig"),
            "tp_ring.kconfig"
        );
        assert_eq!(internal_map_name("xdp_counter", ".data.foo"), ".data.foo");
        assert_eq!(internal_map_name("x", ".rodata.str1.1"), ".rodata.str1.1");
        assert_eq!(internal_map_name("a-b", ".bss"), "a_b.bss");
        assert_eq!(
            internal_map_name("o", ".data.a_very_long_section_name"),
            ".data.a_very_lo"
        );
    }
}
