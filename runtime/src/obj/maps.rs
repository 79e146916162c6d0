//! Maps: BTF-defined maps of `SEC(".maps")` and the internal maps that back
//! global data (`.data*`, `.rodata*`, `.bss*`, `.kconfig`).

use log::debug;
use object::elf;

use super::elf::Elf;
use super::externs::{Extern, ExternKind};
use super::programs::Program;
use super::ObjError;
use crate::btf::{Btf, TypeKind, VarLinkage};

/// `enum bpf_map_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MapType(pub u32);

macro_rules! map_types {
    ($($konst:ident = $val:expr, $short:expr;)*) => {
        impl MapType {
            $(
                #[allow(missing_docs)]
                pub const $konst: MapType = MapType($val);
            )*

            /// The short name bpftool prints (`hash`, `ringbuf`), or `None`
            /// for a value this table does not know.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($val => Some($short),)*
                    _ => None,
                }
            }

            /// The uapi name (`BPF_MAP_TYPE_HASH`).
            pub fn uapi_name(self) -> Option<&'static str> {
                match self.0 {
                    $($val => Some(concat!("BPF_MAP_TYPE_", stringify!($konst))),)*
                    _ => None,
                }
            }
        }
    };
}

map_types! {
    UNSPEC = 0, "unspec";
    HASH = 1, "hash";
    ARRAY = 2, "array";
    PROG_ARRAY = 3, "prog_array";
    PERF_EVENT_ARRAY = 4, "perf_event_array";
    PERCPU_HASH = 5, "percpu_hash";
    PERCPU_ARRAY = 6, "percpu_array";
    STACK_TRACE = 7, "stack_trace";
    CGROUP_ARRAY = 8, "cgroup_array";
    LRU_HASH = 9, "lru_hash";
    LRU_PERCPU_HASH = 10, "lru_percpu_hash";
    LPM_TRIE = 11, "lpm_trie";
    ARRAY_OF_MAPS = 12, "array_of_maps";
    HASH_OF_MAPS = 13, "hash_of_maps";
    DEVMAP = 14, "devmap";
    SOCKMAP = 15, "sockmap";
    CPUMAP = 16, "cpumap";
    XSKMAP = 17, "xskmap";
    SOCKHASH = 18, "sockhash";
    CGROUP_STORAGE = 19, "cgroup_storage";
    REUSEPORT_SOCKARRAY = 20, "reuseport_sockarray";
    PERCPU_CGROUP_STORAGE = 21, "percpu_cgroup_storage";
    QUEUE = 22, "queue";
    STACK = 23, "stack";
    SK_STORAGE = 24, "sk_storage";
    DEVMAP_HASH = 25, "devmap_hash";
    STRUCT_OPS = 26, "struct_ops";
    RINGBUF = 27, "ringbuf";
    INODE_STORAGE = 28, "inode_storage";
    TASK_STORAGE = 29, "task_storage";
    BLOOM_FILTER = 30, "bloom_filter";
    USER_RINGBUF = 31, "user_ringbuf";
    CGRP_STORAGE = 32, "cgrp_storage";
    ARENA = 33, "arena";
}

impl MapType {
    /// Map-in-map types, whose values are inner maps.
    pub fn is_map_in_map(self) -> bool {
        matches!(self, MapType::ARRAY_OF_MAPS | MapType::HASH_OF_MAPS)
    }

    /// Per-CPU value types (lookup returns one value per possible CPU).
    pub fn is_percpu(self) -> bool {
        matches!(
            self,
            MapType::PERCPU_HASH
                | MapType::PERCPU_ARRAY
                | MapType::LRU_PERCPU_HASH
                | MapType::PERCPU_CGROUP_STORAGE
        )
    }
}

impl std::fmt::Display for MapType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "type {}", self.0),
        }
    }
}

/// `LIBBPF_PIN_*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinningType {
    /// Not pinned.
    None,
    /// Pinned under the pin root by the map's name.
    ByName,
}

/// The attributes passed to `BPF_MAP_CREATE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapDef {
    /// Map type.
    pub map_type: MapType,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Capacity (0 for a perf event array: sized to the possible CPUs at load).
    pub max_entries: u32,
    /// `BPF_F_*` flags.
    pub map_flags: u32,
    /// NUMA node (with `BPF_F_NUMA_NODE`).
    pub numa_node: u32,
    /// `map_extra` (bloom filter hashes, arena address).
    pub map_extra: u64,
    /// Pinning.
    pub pinning: PinningType,
    /// BTF type id of the key, 0 if none.
    pub btf_key_type_id: u32,
    /// BTF type id of the value (the DATASEC for data maps), 0 if none.
    pub btf_value_type_id: u32,
}

impl MapDef {
    fn empty() -> Self {
        MapDef {
            map_type: MapType::UNSPEC,
            key_size: 0,
            value_size: 0,
            max_entries: 0,
            map_flags: 0,
            numa_node: 0,
            map_extra: 0,
            pinning: PinningType::None,
            btf_key_type_id: 0,
            btf_value_type_id: 0,
        }
    }
}

/// Which global-data section an internal map backs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataKind {
    /// `.data` or `.data.*`.
    Data,
    /// `.rodata` or `.rodata.*`: frozen after load, read-only to programs.
    Rodata,
    /// `.bss` or `.bss.*`: zero-initialised.
    Bss,
    /// `.kconfig`: extern values libbpf fills in.
    Kconfig,
}

/// Where a map comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapKind {
    /// A BTF-defined map in `SEC(".maps")`.
    Btf {
        /// Offset of the map's variable in `.maps`.
        sec_offset: u64,
    },
    /// An internal map backing a global-data section.
    Data(DataKind),
}

/// The target of a statically initialised slot of a prog array or map-in-map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlotTarget {
    /// A map, by index into [`super::Object::maps`].
    Map(usize),
    /// A program, by name.
    Prog(String),
}

/// One statically initialised slot (`.values = { [2] = &x }`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitSlot {
    /// Slot index (the map key).
    pub index: u32,
    /// What goes there.
    pub target: SlotTarget,
}

/// A map the object declares.
#[derive(Clone, Debug)]
pub struct Map {
    /// The C name (`.maps`) or the section name (`.bss`, `.data.foo`).
    pub name: String,
    /// The name given to the kernel (at most 15 bytes; internal maps carry
    /// the object name as prefix, as libbpf names them).
    pub kernel_name: String,
    /// Origin.
    pub kind: MapKind,
    /// Creation attributes.
    pub def: MapDef,
    /// Inner map template of a map-in-map.
    pub inner: Option<Box<Map>>,
    /// Statically initialised slots.
    pub init_slots: Vec<InitSlot>,
    /// ELF section index (`.maps` or the data section; `usize::MAX` for `.kconfig`).
    pub section_index: usize,
    /// Initial value of a data map (`value_size` bytes; zeros for `.bss`).
    pub image: Vec<u8>,
}

impl Map {
    /// The global-data kind, if an internal map.
    pub fn data_kind(&self) -> Option<DataKind> {
        match self.kind {
            MapKind::Data(k) => Some(k),
            MapKind::Btf { .. } => None,
        }
    }
}

/// `BPF_F_RDONLY_PROG`.
pub const BPF_F_RDONLY_PROG: u32 = 1 << 7;
/// `BPF_F_MMAPABLE`.
pub const BPF_F_MMAPABLE: u32 = 1 << 10;
const BPF_OBJ_NAME_LEN: usize = 16;

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

/// BTF-defined maps: one per `STT_OBJECT` symbol of `.maps`.
pub(crate) fn collect_btf_maps(
    elf: &Elf<'_>,
    btf: Option<&Btf>,
    programs: &[Program],
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
    let mut values_info = Vec::new();
    // `.maps` symbols by name, indexed once rather than searched per map.
    let mut symbols = std::collections::HashMap::new();
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
                kernel_name: internal_map_name("", &inner_name)
                    .chars()
                    .take(15)
                    .collect(),
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
        values_info.push((sym.value, sym.size, values.map(|(o, _)| o)));
        maps.push(Map {
            kernel_name: name.chars().take(BPF_OBJ_NAME_LEN - 1).collect(),
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
    for r in elf.rels_for(sec.index) {
        let target_sym = elf
            .symbols
            .get(r.sym as usize)
            .ok_or_else(|| ObjError::Reloc {
                section: ".maps".into(),
                offset: r.offset,
                reason: format!("unknown symbol {}", r.sym),
            })?;
        let (idx, (start, size, values_off)) = values_info
            .iter()
            .enumerate()
            .find(|(_, (s, z, _))| r.offset >= *s && r.offset < s.saturating_add(*z))
            .map(|(i, v)| (i, *v))
            .ok_or_else(|| ObjError::Reloc {
                section: ".maps".into(),
                offset: r.offset,
                reason: format!(
                    "relocation against '{}' is outside every map",
                    target_sym.name
                ),
            })?;
        let _ = size;
        let map_name = maps[idx].name.clone();
        let values_off = values_off.ok_or_else(|| {
            ObjError::map(
                &map_name,
                format!(
                    "relocation at .maps+{} but the map has no 'values'",
                    r.offset
                ),
            )
        })?;
        let moff = r
            .offset
            .checked_sub(start + u64::from(values_off))
            .ok_or_else(|| {
                ObjError::map(
                    &map_name,
                    format!("relocation at .maps+{} before 'values'", r.offset),
                )
            })?;
        if moff % 8 != 0 {
            return Err(ObjError::map(
                &map_name,
                format!("relocation at .maps+{} is not on a pointer slot", r.offset),
            ));
        }
        let index =
            u32::try_from(moff / 8).map_err(|_| ObjError::map(&map_name, "slot index overflow"))?;
        let target = if maps[idx].def.map_type == MapType::PROG_ARRAY {
            if target_sym.kind != elf::STT_FUNC {
                return Err(ObjError::map(
                    &map_name,
                    format!("slot {index}: '{}' is not a program", target_sym.name),
                ));
            }
            if !programs
                .iter()
                .any(|p| p.name == target_sym.name && !p.subprog)
            {
                return Err(ObjError::map(
                    &map_name,
                    format!(
                        "slot {index}: '{}' is not an entry program",
                        target_sym.name
                    ),
                ));
            }
            SlotTarget::Prog(target_sym.name.to_string())
        } else {
            if usize::from(target_sym.shndx) != sec.index {
                return Err(ObjError::map(
                    &map_name,
                    format!("slot {index}: '{}' is not a map in .maps", target_sym.name),
                ));
            }
            let mi = maps
                .iter()
                .position(|m| m.name == target_sym.name)
                .ok_or_else(|| {
                    ObjError::map(
                        &map_name,
                        format!("slot {index}: unknown map '{}'", target_sym.name),
                    )
                })?;
            SlotTarget::Map(mi)
        };
        debug!("map '{map_name}': slot {index} initialised with {target:?}");
        let m = &mut maps[idx];
        if index >= m.def.max_entries {
            return Err(ObjError::map(
                &map_name,
                format!(
                    "slot {index} initialised but max_entries is {}",
                    m.def.max_entries
                ),
            ));
        }
        m.init_slots.push(InitSlot { index, target });
    }
    Ok(maps)
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
