//! Static initialisers of prog arrays and map-in-map (`.values = { [2] =
//! &prog }`): relocations in `.rel.maps` against the `values` member of a
//! BTF-defined map.

use crate::fast::HashSet;

use log::debug;
use object::elf;

use super::{InitSlot, Map, MapType, SlotTarget};
use crate::obj::elf::Elf;
use crate::obj::ObjError;

/// Where one BTF-defined map lies in `.maps`, and where its `values` member is.
#[derive(Clone, Copy, Debug)]
pub(super) struct MapExtent {
    /// Offset of the map's variable in `.maps`.
    pub start: u64,
    /// Size of the variable.
    pub size: u64,
    /// Offset of `values` in the definition, if it has one.
    pub values_off: Option<u32>,
}

/// Records each relocation of `.rel.maps` (section `maps_index`) as an
/// [`InitSlot`] of the map it falls in; `maps[i]` is described by
/// `extents[i]`. A program slot must name an entry program (one of
/// `entry_programs`).
pub(super) fn collect(
    elf: &Elf<'_>,
    maps_index: usize,
    maps: &mut [Map],
    extents: &[MapExtent],
    entry_programs: &HashSet<&str>,
) -> Result<(), ObjError> {
    // Static initialisers of `values` live in `.rel.maps`.
    for r in elf.rels_for(maps_index) {
        let target_sym = elf
            .symbols
            .get(r.sym as usize)
            .ok_or_else(|| ObjError::Reloc {
                section: ".maps".into(),
                offset: r.offset,
                reason: format!("unknown symbol {}", r.sym),
            })?;
        let (
            idx,
            MapExtent {
                start, values_off, ..
            },
        ) = extents
            .iter()
            .enumerate()
            .find(|(_, e)| r.offset >= e.start && r.offset < e.start.saturating_add(e.size))
            .map(|(i, e)| (i, *e))
            .ok_or_else(|| ObjError::Reloc {
                section: ".maps".into(),
                offset: r.offset,
                reason: format!(
                    "relocation against '{}' is outside every map",
                    target_sym.name
                ),
            })?;
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
            .checked_sub(start.saturating_add(u64::from(values_off)))
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
            if !entry_programs.contains(target_sym.name) {
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
            if usize::from(target_sym.shndx) != maps_index {
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
    Ok(())
}
