//! struct_ops at load: the object's struct (its local layout) meets the
//! kernel's.
//!
//! For each struct_ops map, the kernel struct of the same name
//! (`tcp_congestion_ops`) and its wrapper (`bpf_struct_ops_tcp_congestion_ops`,
//! the map's value type: a header, then the struct as member `data`) are
//! found in the kernel's BTF. The map is created with the wrapper as its
//! `btf_vmlinux_value_type_id`; each bound program is loaded with the
//! kernel struct as `attach_btf_id` and the kernel's member index as
//! `expected_attach_type`; the value is built in the kernel's layout: data
//! members copied by name (sizes checked), function pointers set to the
//! program fds once they are loaded. Registering (the map update, or a link)
//! is left to the skeleton's `attach()`, as libbpf's skeleton does it.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;

use log::debug;

use super::{LoadError, LoadedMap, LoadedObject, MapSettings, ProgSettings};
use crate::btf::{Btf, Kind, TypeKind};
use crate::image::AlignedBuf;
use crate::obj::{Map, Object, StructOps, BPF_F_LINK};
use crate::section::ProgType;
use crate::sys::MapCreate;

/// Prefix of the kernel's map value type of a struct_ops struct.
const VALUE_PREFIX: &str = "bpf_struct_ops_";

/// What a struct_ops program is loaded with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ProgTarget {
    /// The kernel struct's type id (`attach_btf_id`).
    pub btf_id: u32,
    /// The member's index in the kernel struct (`expected_attach_type`).
    pub member: u32,
}

/// A struct_ops map's value as the kernel wants it, ready to register.
#[derive(Clone, Debug)]
pub struct StructOpsValue {
    /// The kernel struct's name (`tcp_congestion_ops`).
    pub type_name: String,
    /// Registered through a BPF link (`.struct_ops.link`).
    pub link: bool,
    /// The value: the kernel's wrapper struct, header zeroed, data members
    /// copied, function pointers holding program fds.
    pub value: Vec<u8>,
    /// Offsets in `value` of the function pointers and the program index
    /// whose fd goes there.
    slots: Vec<(usize, usize)>,
    /// The kernel's wrapper type id.
    vtype_id: u32,
}

/// The struct_ops part of one load.
#[derive(Debug, Default)]
pub(crate) struct Prepared {
    /// Per map index.
    maps: HashMap<usize, StructOpsValue>,
    /// Per program index.
    progs: HashMap<usize, ProgTarget>,
}

fn setting(map: &str, reason: impl Into<String>) -> LoadError {
    LoadError::MapSetting {
        map: map.to_string(),
        reason: reason.into(),
    }
}

/// Finds the kernel side of every struct_ops map to be created and decides
/// which struct_ops programs load.
pub(crate) fn prepare(
    obj: &Object,
    maps: &[MapSettings],
    progs: &mut [ProgSettings],
    images: &[Option<AlignedBuf>],
) -> Result<Prepared, LoadError> {
    let mut out = Prepared::default();
    if !obj.maps.iter().any(|m| m.struct_ops().is_some()) {
        // No struct_ops map: only the check below applies, to programs
        // whose section can name a struct_ops program at all.
        unbound_programs(obj, progs, &out)?;
        return Ok(out);
    }
    let mut used_by = HashMap::<usize, bool>::new();
    let mut kernel: Option<Arc<Btf>> = None;
    // Program indexes by name, built once: members name their programs.
    let prog_index: HashMap<&str, usize> = obj
        .programs
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name.as_str(), i))
        .collect();
    for (i, m) in obj.maps.iter().enumerate() {
        let Some(st) = m.struct_ops() else { continue };
        let create = maps.get(i).is_some_and(|s| s.autocreate);
        for member in &st.members {
            if let Some(&p) = member.prog.as_deref().and_then(|n| prog_index.get(n)) {
                *used_by.entry(p).or_default() |= create;
            }
        }
        if !create {
            continue;
        }
        let btf = match &kernel {
            Some(b) => b.clone(),
            None => {
                let b = crate::kernel::vmlinux_btf().map_err(|e| LoadError::Kernel {
                    what: format!(
                        "struct_ops map '{}': the kernel's BTF is needed to find struct {}",
                        m.name, st.type_name
                    ),
                    source: Box::new(e),
                })?;
                kernel = Some(b.clone());
                b
            }
        };
        let image = images
            .get(i)
            .and_then(Option::as_ref)
            .map_or(m.image.as_slice(), AlignedBuf::as_bytes);
        let local = obj
            .btf
            .as_ref()
            .ok_or_else(|| setting(&m.name, "a struct_ops map needs the object's BTF"))?;
        let value = kernel_value(local, &btf, m, st, image, &prog_index, &mut out.progs)?;
        out.maps.insert(i, value);
    }
    // As libbpf: a program some struct_ops map uses loads exactly when one
    // of those maps is created, whatever its own autoload (so `?` on its
    // section changes nothing).
    for (p, any_created) in used_by {
        if let Some(s) = progs.get_mut(p) {
            s.autoload = any_created;
        }
    }
    unbound_programs(obj, progs, &out)?;
    Ok(out)
}

/// A struct_ops program no map binds cannot be loaded: the kernel needs the
/// struct and member it implements.
fn unbound_programs(obj: &Object, progs: &[ProgSettings], out: &Prepared) -> Result<(), LoadError> {
    for (i, p) in obj.programs.iter().enumerate() {
        let loads = progs.get(i).is_some_and(|s| s.autoload);
        // Every section-table row of the struct_ops program type starts
        // with `struct_ops`: the prefix spares the table lookup.
        let is_st_ops = loads
            && p.section.starts_with("struct_ops")
            && p.section_match()
                .is_some_and(|m| m.def.prog_type == ProgType::StructOps);
        if loads && is_st_ops && !out.progs.contains_key(&i) {
            return Err(LoadError::Program {
                prog: p.name.clone(),
                reason: format!(
                    "SEC(\"{}\") program is the function pointer of no struct_ops map: \
                     set it in a SEC(\".struct_ops\") variable, or turn its autoload off",
                    p.section
                ),
            });
        }
    }
    Ok(())
}

/// Builds the kernel value of struct_ops map `m` from its local `image`,
/// recording each bound program's target in `targets`.
fn kernel_value(
    local: &Btf,
    kernel: &Btf,
    m: &Map,
    st: &StructOps,
    image: &[u8],
    prog_index: &HashMap<&str, usize>,
    targets: &mut HashMap<usize, ProgTarget>,
) -> Result<StructOpsValue, LoadError> {
    let name = &st.type_name;
    let wrapper = format!("{VALUE_PREFIX}{name}");
    let vtype_id = kernel
        .find_by_name_kind(&wrapper, Kind::Struct)
        .ok_or_else(|| {
            setting(
                &m.name,
                format!(
                    "struct {wrapper} is not in the kernel's BTF (vmlinux): this kernel has no struct_ops type '{name}' \
                     (struct_ops types of modules are not looked up)"
                ),
            )
        })?;
    let kern_type_id = kernel
        .find_by_name_kind(name, Kind::Struct)
        .ok_or_else(|| setting(&m.name, format!("struct {name} is not in the kernel's BTF")))?;
    let kbad = |e: crate::btf::BtfError| setting(&m.name, format!("kernel BTF: {e}"));
    let TypeKind::Struct(vtype) = kernel.type_by_id(vtype_id).map_err(kbad)?.kind else {
        return Err(setting(
            &m.name,
            format!("kernel {wrapper} is not a struct"),
        ));
    };
    let TypeKind::Struct(ktype) = kernel.type_by_id(kern_type_id).map_err(kbad)?.kind else {
        return Err(setting(&m.name, format!("kernel {name} is not a struct")));
    };
    let mut data_off = None;
    for vm in vtype.members() {
        if kernel.skip_mods_and_typedefs(vm.ty).map_err(kbad)? == kern_type_id {
            data_off = Some(vm.bit_offset as usize / 8);
        }
    }
    let data_off = data_off.ok_or_else(|| {
        setting(
            &m.name,
            format!("kernel {wrapper} has no member of type struct {name}"),
        )
    })?;
    let mut value = vec![0u8; vtype.size as usize];
    let mut slots = Vec::new();
    for lm in &st.members {
        let mbad = |reason: String| setting(&m.name, format!("member '{}': {reason}", lm.name));
        let start = lm.offset as usize;
        let bytes = image
            .get(start..start + lm.size as usize)
            .ok_or_else(|| mbad("outside the map's initial value".into()))?;
        let nonzero = bytes.iter().any(|&b| b != 0);
        if lm.func && nonzero {
            // The ELF holds zeros there (a relocation names the program):
            // only user space can have written it, through the skeleton's
            // struct, whose function pointers are plain integers.
            return Err(mbad(
                "a function pointer holds a value written before load: function pointers \
                 are set only by the object's programs"
                    .into(),
            ));
        }
        let set = lm.prog.is_some() || nonzero;
        let found = ktype.members().enumerate().find(|(_, km)| {
            kernel
                .name(km.name_off)
                .is_ok_and(|n| n == lm.name.as_str())
        });
        let Some((kidx, km)) = found else {
            if set {
                return Err(mbad(format!(
                    "the kernel's struct {name} has no such member, and it is set (libbpf skips only members left zero)"
                )));
            }
            debug!(
                "struct_ops map '{}': member '{}' not in the kernel's struct {name}, left out (zero)",
                m.name, lm.name
            );
            continue;
        };
        if lm.bitfield || km.bitfield_size != 0 || km.bit_offset % 8 != 0 {
            return Err(mbad(
                "bitfields are not supported in struct_ops maps".into(),
            ));
        }
        let kt = kernel.skip_mods_and_typedefs(km.ty).map_err(kbad)?;
        let kkind = kernel.type_by_id(kt).map_err(kbad)?.kind;
        let lt = local
            .skip_mods_and_typedefs(
                local_member_type(local, st.type_id, &lm.name)
                    .ok_or_else(|| mbad("not in the local struct's BTF".into()))?,
            )
            .map_err(|e| mbad(e.to_string()))?;
        let lkind = local.type_by_id(lt).map_err(|e| mbad(e.to_string()))?.kind;
        if lkind.kind() != kkind.kind() {
            return Err(mbad(format!(
                "local type is {}, the kernel's is {}",
                lkind.kind(),
                kkind.kind()
            )));
        }
        let koff = data_off + km.bit_offset as usize / 8;
        if lm.func {
            let kfunc = match kkind {
                TypeKind::Ptr(t) => {
                    let t = kernel.skip_mods_and_typedefs(t).map_err(kbad)?;
                    matches!(
                        kernel.type_by_id(t).map_err(kbad)?.kind,
                        TypeKind::FuncProto(_)
                    )
                }
                _ => false,
            };
            if !kfunc {
                return Err(mbad(format!(
                    "a function pointer here, but not in the kernel's struct {name}"
                )));
            }
            let Some(prog_name) = &lm.prog else {
                continue;
            };
            let p = *prog_index
                .get(prog_name.as_str())
                .ok_or_else(|| mbad(format!("program '{prog_name}' is not in the object")))?;
            let target = ProgTarget {
                btf_id: kern_type_id,
                member: kidx as u32,
            };
            match targets.get(&p) {
                Some(t) if *t != target => {
                    return Err(mbad(format!(
                        "program '{prog_name}' is already member #{} of kernel type {}; one program implements one member of one struct",
                        t.member, t.btf_id
                    )))
                }
                _ => {
                    targets.insert(p, target);
                }
            }
            if koff + 8 > value.len() {
                return Err(mbad("function pointer outside the kernel's value".into()));
            }
            slots.push((koff, p));
            debug!(
                "struct_ops map '{}': {}.{} (member #{kidx}) = program '{prog_name}'",
                m.name, name, lm.name
            );
            continue;
        }
        let ksize = kernel.size_of(kt).map_err(kbad)?;
        if ksize != lm.size {
            return Err(mbad(format!(
                "{} bytes here, {ksize} in the kernel's struct {name}",
                lm.size
            )));
        }
        let dst = value
            .get_mut(koff..koff + ksize as usize)
            .ok_or_else(|| mbad("outside the kernel's value".into()))?;
        dst.copy_from_slice(bytes);
    }
    debug!(
        "struct_ops map '{}': kernel struct {name} (id {kern_type_id}), value {wrapper} (id {vtype_id}, {} bytes, data at {data_off})",
        m.name,
        value.len()
    );
    Ok(StructOpsValue {
        type_name: name.clone(),
        link: st.link,
        value,
        slots,
        vtype_id,
    })
}

/// The type id of member `name` of local struct `type_id`.
fn local_member_type(btf: &Btf, type_id: u32, name: &str) -> Option<u32> {
    let TypeKind::Struct(st) = btf.type_by_id(type_id).ok()?.kind else {
        return None;
    };
    st.members()
        .find(|m| btf.name(m.name_off).is_ok_and(|n| n == name))
        .map(|m| m.ty)
}

impl Prepared {
    /// `attach_btf_id` and `expected_attach_type` of program `index`, if a
    /// struct_ops map binds it.
    pub(crate) fn prog_target(&self, index: usize) -> Option<ProgTarget> {
        self.progs.get(&index).copied()
    }

    /// Creates struct_ops map `index`, or `None` if it is not one to create.
    pub(crate) fn create_map(
        &self,
        index: usize,
        m: &Map,
        s: &MapSettings,
        btf: Option<&OwnedFd>,
    ) -> Result<Option<LoadedMap>, LoadError> {
        let Some(v) = self.maps.get(&index) else {
            return Ok(None);
        };
        // The kernel resolves the value type in vmlinux but still wants the
        // object's BTF (it checks the fd), with no key or value type ids.
        let btf = btf.ok_or_else(|| {
            setting(
                &m.name,
                "struct_ops maps need the object's BTF loaded in the kernel, which refused it",
            )
        })?;
        let size =
            u32::try_from(v.value.len()).map_err(|_| setting(&m.name, "kernel value too large"))?;
        let create = |flags: u32| {
            MapCreate::new(m.def.map_type.0, 4, size, 1)
                .flags(flags)
                .name(&m.kernel_name)
                .btf(btf.as_fd(), 0, 0)
                .btf_vmlinux_value_type_id(v.vtype_id)
                .create()
        };
        let fd = match create(s.map_flags) {
            Ok(fd) => fd,
            Err(source) => {
                // Before struct_ops links (6.4) the kernel refuses any map
                // flag with EINVAL: tell that apart from other refusals by
                // asking again without BPF_F_LINK.
                let no_links = s.map_flags & BPF_F_LINK != 0
                    && source.errno() == Some(libc::EINVAL)
                    && create(s.map_flags & !BPF_F_LINK).is_ok();
                let what = if no_links {
                    format!(
                        "this kernel has no struct_ops links (BPF_F_LINK struct_ops maps, Linux 6.4+):                          a SEC(\".struct_ops.link\") map cannot be created here; declare it in                          SEC(\".struct_ops\") to register struct {} with a map update",
                        v.type_name
                    )
                } else {
                    format!(
                        "BPF_MAP_CREATE (struct_ops of struct {}, value type {VALUE_PREFIX}{})",
                        v.type_name, v.type_name
                    )
                };
                return Err(LoadError::Map {
                    map: m.name.clone(),
                    what,
                    source: Box::new(source),
                });
            }
        };
        debug!(
            "struct_ops map '{}': created ({} bytes, flags {:#x})",
            m.name, size, s.map_flags
        );
        Ok(Some(LoadedMap { fd, mmap: None }))
    }

    /// Writes each loaded program's fd into the function pointers bound to
    /// it, and hands the values to `loaded`.
    pub(crate) fn finish(
        self,
        obj: &Object,
        progs: &[Option<OwnedFd>],
    ) -> Result<HashMap<usize, StructOpsValue>, LoadError> {
        let mut maps = self.maps;
        for (&mi, v) in maps.iter_mut() {
            for &(off, p) in &v.slots {
                let fd = progs.get(p).and_then(Option::as_ref).ok_or_else(|| {
                    let map = obj.maps.get(mi).map_or("?", |m| m.name.as_str());
                    let prog = obj.programs.get(p).map_or("?", |p| p.name.as_str());
                    setting(
                        map,
                        format!("its program '{prog}' was not loaded (autoload off?)"),
                    )
                })?;
                let raw = fd.as_raw_fd() as u64;
                if let Some(dst) = v.value.get_mut(off..off + 8) {
                    dst.copy_from_slice(&raw.to_le_bytes());
                }
            }
        }
        Ok(maps)
    }
}

impl LoadedObject {
    /// The kernel value of struct_ops map `index`, prepared at load (program
    /// fds in place), to register with a map update.
    pub fn struct_ops_value(&self, index: usize) -> Option<&StructOpsValue> {
        self.struct_ops.get(&index)
    }
}

#[cfg(test)]
mod tests {
    use crate::section::{ProgType, SECTION_DEFS};

    /// `unbound_programs` skips the table lookup for sections that do not
    /// start with `struct_ops`: true only while every struct_ops row does.
    #[test]
    fn every_struct_ops_row_starts_with_struct_ops() {
        let rows: Vec<_> = SECTION_DEFS
            .iter()
            .filter(|d| d.prog_type == ProgType::StructOps)
            .collect();
        assert!(!rows.is_empty());
        for d in rows {
            assert!(d.prefix.starts_with("struct_ops"), "{}", d.prefix);
        }
    }
}
