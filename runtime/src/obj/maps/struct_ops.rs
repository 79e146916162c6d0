//! struct_ops maps: each variable of `SEC(".struct_ops")` or
//! `SEC(".struct_ops.link")` is one `BPF_MAP_TYPE_STRUCT_OPS` map whose
//! value is a kernel struct of function pointers (`tcp_congestion_ops`,
//! `sched_ext_ops`, ...). The variable's BTF type is the object's own copy of
//! that struct; `.rel.struct_ops[.link]` binds its function-pointer members
//! to programs of `SEC("struct_ops/...")` sections; its other members (a
//! name, flags) are data that the loader copies, member by member, into the
//! kernel's layout at load.

use std::collections::HashMap;

use log::debug;
use object::elf;

use super::{Map, MapDef, MapKind, MapType, StructOps, StructOpsMember, BPF_OBJ_NAME_LEN};
use crate::btf::{Btf, Kind, TypeKind};
use crate::obj::elf::Elf;
use crate::obj::ObjError;

/// `BPF_F_LINK`: the map is registered through a BPF link (`.struct_ops.link`).
pub const BPF_F_LINK: u32 = 1 << 13;

/// The two section names, without the `?` that turns autocreate off.
/// The sections whose variables are struct_ops maps (each may carry a
/// leading `?`: not created by default).
pub(crate) const SECTIONS: [&str; 2] = [".struct_ops", ".struct_ops.link"];

/// What the struct_ops parser needs to know of an entry program: its name
/// and whether its section makes it a `BPF_PROG_TYPE_STRUCT_OPS` program.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EntryProg<'a> {
    /// Function name.
    pub name: &'a str,
    /// In a `struct_ops/` or `struct_ops.s/` section.
    pub is_struct_ops: bool,
}

/// Entry programs by (ELF section index, byte offset in the section), the
/// key a relocation's symbol gives.
pub(crate) type EntryProgs<'a> = HashMap<(usize, u64), EntryProg<'a>>;

/// libbpf's "essential" name: a `___flavour` suffix (`tcp_congestion_ops___v2`)
/// is dropped, so that several local variants map onto one kernel struct.
pub(crate) fn essential_name(name: &str) -> &str {
    name.find("___").map_or(name, |i| &name[..i])
}

/// Every struct_ops map of the object, appended to `maps`.
pub(crate) fn collect_struct_ops_maps(
    elf: &Elf<'_>,
    btf: Option<&Btf>,
    progs: &EntryProgs<'_>,
    maps: &mut Vec<Map>,
) -> Result<(), ObjError> {
    for sec in &elf.sections {
        let (base, autocreate) = match sec.name.strip_prefix('?') {
            Some(rest) => (rest, false),
            None => (sec.name, true),
        };
        if !SECTIONS.contains(&base) {
            continue;
        }
        let btf = btf.ok_or(ObjError::MissingBtf {
            what: "a .struct_ops section",
        })?;
        let sec_err = |reason: String| ObjError::Section {
            index: sec.index,
            name: sec.name.to_string(),
            reason,
        };
        // clang names the DATASEC after the section as written, `?` included.
        let ds_id = btf
            .find_by_name_kind(sec.name, Kind::Datasec)
            .ok_or_else(|| sec_err("no BTF DATASEC describes it".into()))?;
        let TypeKind::Datasec(ds) = btf.type_by_id(ds_id).map_err(ObjError::btf)?.kind else {
            return Err(sec_err(format!("BTF type id {ds_id} is not a DATASEC")));
        };
        let first = maps.len();
        for v in ds.vars() {
            let var = btf.type_by_id(v.ty).map_err(ObjError::btf)?;
            let TypeKind::Var { ty, .. } = var.kind else {
                return Err(sec_err(format!(
                    "DATASEC entry type id {} is {}, expected VAR",
                    v.ty,
                    var.kind()
                )));
            };
            let name = btf.name(var.name_off).map_err(ObjError::btf)?.to_string();
            let map = one_map(btf, sec.data, &name, ty, v.offset, base, autocreate)
                .map_err(|reason| ObjError::map(&name, format!("{} {reason}", sec.name)))?;
            debug!(
                "struct_ops map '{name}': struct {} (type id {ty}) at {}+{}, {} bytes",
                map.struct_ops().map_or("", |s| s.type_name.as_str()),
                sec.name,
                v.offset,
                map.image.len()
            );
            maps.push(Map {
                section_index: sec.index,
                ..map
            });
        }
        bind_programs(elf, sec.index, sec.name, progs, &mut maps[first..])?;
    }
    Ok(())
}

/// The map for variable `name` of struct type `ty` at `offset` in a section
/// holding `data`.
fn one_map(
    btf: &Btf,
    data: &[u8],
    name: &str,
    ty: u32,
    offset: u32,
    section: &str,
    autocreate: bool,
) -> Result<Map, String> {
    let type_id = btf.skip_mods_and_typedefs(ty).map_err(|e| e.to_string())?;
    let t = btf.type_by_id(type_id).map_err(|e| e.to_string())?;
    let TypeKind::Struct(st) = t.kind else {
        return Err(format!(
            "variable's type (id {type_id}) is {}, expected a struct",
            t.kind()
        ));
    };
    let type_name = btf.name(t.name_off).map_err(|e| e.to_string())?;
    if type_name.is_empty() {
        return Err(format!(
            "variable's struct (type id {type_id}) is anonymous: the kernel struct is found by name"
        ));
    }
    let start = offset as usize;
    let image = start
        .checked_add(st.size as usize)
        .and_then(|end| data.get(start..end))
        .ok_or_else(|| {
            format!(
                "variable at offset {offset} of {} bytes runs past the section's {} bytes",
                st.size,
                data.len()
            )
        })?
        .to_vec();
    let mut members = Vec::with_capacity(st.len());
    for m in st.members() {
        let mname = btf.name(m.name_off).map_err(|e| e.to_string())?;
        let size = btf
            .size_of(m.ty)
            .map_err(|e| format!("member '{mname}': no size: {e}"))?;
        let func = is_func_ptr(btf, m.ty).map_err(|e| format!("member '{mname}': {e}"))?;
        members.push(StructOpsMember {
            name: mname.to_string(),
            offset: m.bit_offset / 8,
            size,
            func,
            bitfield: m.bitfield_size != 0 || m.bit_offset % 8 != 0,
            prog: None,
        });
    }
    let link = section == ".struct_ops.link";
    Ok(Map {
        name: name.to_string(),
        kernel_name: name.chars().take(BPF_OBJ_NAME_LEN - 1).collect(),
        kind: MapKind::StructOps(Box::new(StructOps {
            type_id,
            type_name: essential_name(type_name).to_string(),
            sec_offset: u64::from(offset),
            link,
            autocreate,
            members,
        })),
        def: MapDef {
            map_type: MapType::STRUCT_OPS,
            key_size: 4,
            value_size: st.size,
            max_entries: 1,
            map_flags: if link { BPF_F_LINK } else { 0 },
            ..MapDef::empty()
        },
        inner: None,
        init_slots: Vec::new(),
        section_index: 0,
        image,
    })
}

/// Whether `ty` is a pointer to a function prototype.
fn is_func_ptr(btf: &Btf, ty: u32) -> Result<bool, crate::btf::BtfError> {
    let t = btf.skip_mods_and_typedefs(ty)?;
    let TypeKind::Ptr(target) = btf.type_by_id(t)?.kind else {
        return Ok(false);
    };
    let target = btf.skip_mods_and_typedefs(target)?;
    Ok(matches!(
        btf.type_by_id(target)?.kind,
        TypeKind::FuncProto(_)
    ))
}

/// Applies `.rel.struct_ops[.link]`: each relocation names a program and
/// falls on a function-pointer member of one of `maps` (those of section
/// `sec_index`).
fn bind_programs(
    elf: &Elf<'_>,
    sec_index: usize,
    sec_name: &str,
    progs: &EntryProgs<'_>,
    maps: &mut [Map],
) -> Result<(), ObjError> {
    for r in elf.rels_for(sec_index) {
        let err = |reason: String| ObjError::Reloc {
            section: sec_name.to_string(),
            offset: r.offset,
            reason,
        };
        let sym = elf
            .symbols
            .get(r.sym as usize)
            .ok_or_else(|| err(format!("unknown symbol {}", r.sym)))?;
        let map = maps
            .iter_mut()
            .find(|m| {
                m.struct_ops().is_some_and(|s| {
                    r.offset >= s.sec_offset
                        && r.offset - s.sec_offset < u64::from(m.def.value_size)
                })
            })
            .ok_or_else(|| err("relocation outside every struct_ops variable".into()))?;
        let map_name = map.name.clone();
        let MapKind::StructOps(st) = &mut map.kind else {
            continue;
        };
        let moff = r.offset - st.sec_offset;
        let member = st
            .members
            .iter_mut()
            .find(|m| u64::from(m.offset) == moff && !m.bitfield)
            .ok_or_else(|| {
                err(format!(
                    "map '{map_name}': no member of struct {} starts at offset {moff}",
                    st.type_name
                ))
            })?;
        if !member.func {
            return Err(err(format!(
                "map '{map_name}': member '{}' is not a function pointer, but a relocation sets it",
                member.name
            )));
        }
        if sym.kind != elf::STT_FUNC || sym.shndx >= elf::SHN_LORESERVE {
            return Err(err(format!(
                "map '{map_name}': member '{}' set to '{}', which is not a BPF program",
                member.name, sym.name
            )));
        }
        let prog = progs
            .get(&(usize::from(sym.shndx), sym.value))
            .ok_or_else(|| {
                err(format!(
                    "map '{map_name}': member '{}' set to '{}', which is not an entry program",
                    member.name, sym.name
                ))
            })?;
        if !prog.is_struct_ops {
            return Err(err(format!(
                "map '{map_name}': member '{}' set to program '{}', which is not in a SEC(\"struct_ops/...\") section",
                member.name, prog.name
            )));
        }
        debug!(
            "struct_ops map '{map_name}': member '{}' (offset {moff}) -> program '{}'",
            member.name, prog.name
        );
        member.prog = Some(prog.name.to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn flavours_are_dropped_from_the_struct_name() {
        use super::essential_name;
        assert_eq!(essential_name("tcp_congestion_ops"), "tcp_congestion_ops");
        assert_eq!(
            essential_name("tcp_congestion_ops___v2"),
            "tcp_congestion_ops"
        );
        assert_eq!(essential_name("a___b___c"), "a");
    }
}
