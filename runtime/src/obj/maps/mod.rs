//! Maps: what a map declaration means, independent of where it came from.
//!
//! The model (map types, creation attributes, origins, static slots) lives
//! here; each origin has its own parser: [`defs`] for the BTF-defined maps
//! of `SEC(".maps")` (with [`slots`] for their static initialisers in
//! `.rel.maps`), [`data`] for the internal maps that back global data
//! (`.data*`, `.rodata*`, `.bss*`, `.kconfig`), and `super::struct_ops` for
//! `SEC(".struct_ops")` maps.

mod data;
mod defs;
mod slots;
mod struct_ops;

pub use data::MAX_DATA_MAP_SIZE;
pub(crate) use data::{collect_data_maps, kconfig_map};
pub(crate) use defs::collect_btf_maps;
pub use struct_ops::BPF_F_LINK;
pub(crate) use struct_ops::{
    collect_struct_ops_maps, EntryProg, EntryProgs, SECTIONS as STRUCT_OPS_SECTIONS,
};

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
    /// A struct_ops map: a variable of `SEC(".struct_ops")` or
    /// `SEC(".struct_ops.link")`.
    StructOps(Box<StructOps>),
}

/// What a struct_ops map holds, from the object's side: the local struct,
/// its members and the programs bound to its function pointers. The initial
/// value (the variable's bytes) is [`Map::image`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StructOps {
    /// Local BTF type id of the struct (modifiers and typedefs skipped).
    pub type_id: u32,
    /// The struct's name, without a `___flavour` suffix: the kernel struct
    /// of that name is the one registered (`tcp_congestion_ops`).
    pub type_name: String,
    /// Offset of the variable in its section.
    pub sec_offset: u64,
    /// From `.struct_ops.link`: registered through a BPF link (`BPF_F_LINK`).
    pub link: bool,
    /// `false` for a `SEC("?.struct_ops")` section: not created by default.
    pub autocreate: bool,
    /// The local struct's members, in order.
    pub members: Vec<StructOpsMember>,
}

/// One member of a struct_ops map's local struct.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StructOpsMember {
    /// Member name: the kernel's member of the same name receives it.
    pub name: String,
    /// Byte offset in the local struct.
    pub offset: u32,
    /// Size in bytes.
    pub size: u32,
    /// A function pointer (filled with a program, or left null).
    pub func: bool,
    /// A bitfield (which struct_ops cannot carry over, as in libbpf).
    pub bitfield: bool,
    /// The program the object binds to this function pointer.
    pub prog: Option<String>,
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
    /// Initial value of a data map (`value_size` bytes; zeros for `.bss`) or
    /// of a struct_ops map (the variable's bytes, in the local layout).
    pub image: Vec<u8>,
}

impl Map {
    /// The global-data kind, if an internal map.
    pub fn data_kind(&self) -> Option<DataKind> {
        match self.kind {
            MapKind::Data(k) => Some(k),
            MapKind::Btf { .. } | MapKind::StructOps(_) => None,
        }
    }

    /// The struct_ops side, if a struct_ops map.
    pub fn struct_ops(&self) -> Option<&StructOps> {
        match &self.kind {
            MapKind::StructOps(s) => Some(s),
            _ => None,
        }
    }
}

/// `BPF_F_RDONLY_PROG`.
pub const BPF_F_RDONLY_PROG: u32 = 1 << 7;
/// `BPF_F_MMAPABLE`.
pub const BPF_F_MMAPABLE: u32 = 1 << 10;
const BPF_OBJ_NAME_LEN: usize = 16;
