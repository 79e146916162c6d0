//! Merging the inputs' `.BTF`: types appended with renumbered ids, global
//! VARs/FUNCs kept once per symbol, DATASECs rebuilt from the output
//! sections and final symbols, then [`super::dedup`].

use std::collections::HashMap;

use skelgen_runtime::btf::{Btf, BtfError, FuncLinkage, Kind, TypeKind, VarLinkage};

use super::compat::{describe, types_match};
use super::ext::ExtMerge;
use super::input::{Input, SHT_NOBITS};
use super::types::{RawType, TypeList};
use super::write::{OutSection, OutSymbol, FIRST_SECTION};
use super::{dedup, Global, LinkError, Placed};

/// Inputs beyond this many types are refused (bounds the merge's memory).
const MAX_TYPES: u32 = 1 << 20;

#[derive(Debug, Default)]
pub(crate) struct BtfMerge {
    pub list: TypeList,
    /// Per input: output id of each of its type ids (index = source id).
    maps: Vec<Vec<u32>>,
    any: bool,
}

/// The BTF id of global symbol `name` in `btf`: a non-static VAR or FUNC.
fn global_type(btf: &Btf, name: &str) -> Option<u32> {
    (1..btf.len()).find(|&id| {
        let Ok(t) = btf.type_by_id(id) else {
            return false;
        };
        let global = match t.kind {
            TypeKind::Var { linkage, .. } => linkage != VarLinkage::Static,
            TypeKind::Func { linkage, .. } => linkage != FuncLinkage::Static,
            _ => false,
        };
        global && btf.name(t.name_off).is_ok_and(|n| n == name)
    })
}

/// Checks that global `name` has matching BTF types in `a` and `b` (when
/// both describe it).
pub(crate) fn check_match(
    name: &str,
    a: &Input,
    a_section: &str,
    b: &Input,
    b_section: &str,
) -> Result<(), LinkError> {
    let (Some(ab), Some(bb)) = (&a.btf, &b.btf) else {
        return Ok(());
    };
    let (Some(ai), Some(bi)) = (global_type(ab, name), global_type(bb, name)) else {
        return Ok(());
    };
    let (ka, kb) = (ab.kind_of(ai).ok(), bb.kind_of(bi).ok());
    if ka == kb && types_match(ab, ai, bb, bi) {
        return Ok(());
    }
    Err(LinkError::TypeMismatch(Box::new(super::TypeMismatch {
        symbol: name.to_string(),
        first_file: a.file.clone(),
        first_section: a_section.to_string(),
        first_type: describe(ab, ai),
        second_file: b.file.clone(),
        second_section: b_section.to_string(),
        second_type: describe(bb, bi),
    })))
}

impl BtfMerge {
    /// The id map of input `idx` (empty when it has no BTF).
    pub fn type_map(&self, idx: usize) -> &[u32] {
        self.maps.get(idx).map_or(&[], Vec::as_slice)
    }

    pub fn add(
        &mut self,
        idx: usize,
        input: &Input,
        globals: &mut HashMap<String, Global>,
    ) -> Result<(), LinkError> {
        while self.maps.len() < idx {
            self.maps.push(Vec::new());
        }
        let Some(btf) = &input.btf else {
            self.maps.push(Vec::new());
            return Ok(());
        };
        self.any = true;
        let btf_err = |source: BtfError| LinkError::Btf {
            file: input.file.clone(),
            source,
        };
        let n = btf.len();
        if n > MAX_TYPES || self.list.len() + n > MAX_TYPES * 4 {
            return Err(btf_err(BtfError::TooManyTypes { id: n }));
        }
        let mut map = vec![0u32; n as usize];
        let mut fresh = Vec::new();
        // Extern -> definition completions: (output id, source id).
        let mut complete = Vec::new();
        let mut next = self.list.len();
        for id in 1..n {
            let t = RawType::from_btf(btf, id).map_err(btf_err)?;
            for r in t.refs() {
                if r >= n {
                    return Err(btf_err(BtfError::BadTypeId {
                        id: r,
                        len: n,
                        referenced_from: Some(id),
                    }));
                }
            }
            let global = match t.kind {
                Kind::Var => t.words.first().copied() != Some(VarLinkage::Static.to_raw()),
                Kind::Func => t.vlen != FuncLinkage::Static.to_raw(),
                _ => false,
            };
            if t.kind == Kind::Datasec {
                // Rebuilt per output section at the end.
                continue;
            }
            if global {
                if let Some(g) = globals.get_mut(&t.name) {
                    match g.btf_id {
                        Some(d) => {
                            map[id as usize] = d;
                            if g.complete_from.is_some_and(|(i, _)| i == idx) {
                                complete.push((d, id));
                                g.complete_from = None;
                            }
                            continue;
                        }
                        None => {
                            g.btf_id = Some(next);
                            g.complete_from = None;
                        }
                    }
                }
            }
            map[id as usize] = next;
            next += 1;
            fresh.push(t);
        }
        for mut t in fresh {
            t.map_refs(|r| map.get(r as usize).copied().unwrap_or(0));
            self.list.push(t);
        }
        for (dst, src) in complete {
            let src_t = RawType::from_btf(btf, src).map_err(btf_err)?;
            let underlying = map.get(src_t.sot as usize).copied().unwrap_or(0);
            let Some(d) = self.list.get_mut(dst) else {
                continue;
            };
            match d.kind {
                Kind::Var => {
                    d.words = vec![VarLinkage::GlobalAllocated.to_raw()];
                    d.sot = underlying;
                }
                Kind::Func => {
                    d.vlen = FuncLinkage::Global.to_raw();
                    // Extern prototypes have no parameter names; take the
                    // definition's so that dedup sees one prototype.
                    let proto = d.sot;
                    let names = match self.list.get(underlying) {
                        Some(p) if p.kind == Kind::FuncProto => p.rec_names.clone(),
                        _ => Vec::new(),
                    };
                    if let Some(p) = self.list.get_mut(proto) {
                        if p.kind == Kind::FuncProto && p.rec_names.len() == names.len() {
                            for (mine, theirs) in p.rec_names.iter_mut().zip(names) {
                                if !theirs.is_empty() {
                                    *mine = theirs;
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        self.maps.push(map);
        Ok(())
    }

    /// DATASECs, dedup, and the encoded `.BTF` and `.BTF.ext` (both empty
    /// when no input had BTF).
    pub fn finish(
        &mut self,
        all: &[Input],
        secs: &[OutSection],
        placed: &[Vec<Option<Placed>>],
        sym_maps: &[Vec<usize>],
        syms: &[OutSymbol],
        ext: &mut ExtMerge,
    ) -> Result<(Vec<u8>, Vec<u8>), LinkError> {
        if !self.any {
            return Ok((Vec::new(), Vec::new()));
        }
        // name -> (output section, vars (type, offset, size)).
        let mut datasecs: Vec<(String, Option<usize>, Vec<[u32; 3]>)> = Vec::new();
        for (idx, input) in all.iter().enumerate() {
            let Some(btf) = &input.btf else { continue };
            let map = self.type_map(idx);
            for id in 1..btf.len() {
                let Ok(t) = btf.type_by_id(id) else { continue };
                let TypeKind::Datasec(d) = t.kind else {
                    continue;
                };
                let name = btf.name(t.name_off).unwrap_or_default().to_string();
                let src_sec = input.sections.iter().position(|s| s.name == name);
                let out = src_sec.and_then(|i| placed[idx].get(i).copied().flatten());
                if src_sec.is_some() && out.is_none() {
                    // A deduplicated license/version section or a dropped one.
                    continue;
                }
                let entry = match datasecs.iter().position(|d| d.0 == name) {
                    Some(i) => i,
                    None => {
                        datasecs.push((name.clone(), out.map(|p| p.out), Vec::new()));
                        datasecs.len() - 1
                    }
                };
                for v in d.vars() {
                    let dst = map.get(v.ty as usize).copied().unwrap_or(0);
                    if dst == 0 {
                        continue;
                    }
                    let var_name = btf.type_name(v.ty).unwrap_or_default();
                    let (offset, size) = match (out, src_sec) {
                        (Some(p), Some(si)) => {
                            // The final symbol says where the variable is:
                            // the input's own (possibly a weak one that lost:
                            // then it has no place here) or, for an extern,
                            // the definition it resolved to.
                            let own = input
                                .symbols
                                .iter()
                                .position(|s| s.name == var_name && s.shndx as usize == si);
                            let any = own.or_else(|| {
                                input
                                    .symbols
                                    .iter()
                                    .position(|s| s.name == var_name && s.shndx == 0 && s.bind != 0)
                            });
                            let dst = any
                                .and_then(|s| sym_maps[idx].get(s))
                                .and_then(|&o| syms.get(o));
                            match dst {
                                Some(o) if o.shndx as usize == FIRST_SECTION + p.out => {
                                    (o.value as u32, v.size)
                                }
                                Some(_) => continue,
                                None => ((p.off + u64::from(v.offset)) as u32, v.size),
                            }
                        }
                        _ => (v.offset, v.size),
                    };
                    let vars = &mut datasecs[entry].2;
                    if !vars.iter().any(|x| x[0] == dst) {
                        vars.push([dst, offset, size]);
                    }
                }
            }
        }
        // Output section order, then sections with no ELF section (.kconfig...).
        datasecs.sort_by_key(|d| d.1.unwrap_or(usize::MAX));
        for (name, out, mut vars) in datasecs {
            vars.sort_by_key(|v| v[1]);
            let size = out.and_then(|o| secs.get(o)).map_or(0, |s| {
                if s.sh_type == SHT_NOBITS {
                    s.size
                } else {
                    s.data.len() as u64
                }
            });
            self.list.push(RawType {
                kind: Kind::Datasec,
                name,
                kflag: false,
                vlen: vars.len() as u32,
                sot: size as u32,
                words: vars.concat(),
                rec_names: Vec::new(),
            });
        }
        let map = dedup::dedup(&mut self.list);
        ext.remap(&map);
        let sec_name = |i: usize| secs.get(i).map(|s| s.name.clone()).unwrap_or_default();
        let strings = ext.strings(sec_name);
        let (btf, offsets) = self.list.encode(&strings).map_err(LinkError::WriteBtf)?;
        // The writer's output must read back: a check on ourselves.
        Btf::parse(&btf).map_err(LinkError::WriteBtf)?;
        Ok((btf, ext.encode(&offsets, sec_name)))
    }
}
