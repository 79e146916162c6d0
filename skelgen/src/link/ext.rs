//! Merging `.BTF.ext`: each input's func_info, line_info and core_relo
//! records follow their section into the output, instruction offsets
//! shifted by where the input's part of the section starts and type ids
//! renumbered; strings (file names, source lines, CO-RE access strings) are
//! carried as text and re-interned in the merged `.BTF` string table.

use std::collections::BTreeMap;

use skelgen_runtime::btf::BtfError;

use super::input::{Input, SHF_EXECINSTR};
use super::types::{StringOffsets, Strings};
use super::{LinkError, Placed};

#[derive(Clone, Debug, Default)]
struct Block {
    func: Vec<(u32, u32)>,
    line: Vec<(u32, String, String, u32)>,
    core: Vec<(u32, u32, String, u32)>,
}

/// The merged records, per output section index.
#[derive(Clone, Debug, Default)]
pub(crate) struct ExtMerge {
    blocks: BTreeMap<usize, Block>,
}

impl ExtMerge {
    pub fn add(
        &mut self,
        input: &Input,
        placed: &[Option<Placed>],
        tmap: &[u32],
    ) -> Result<(), LinkError> {
        let (Some(ext), Some(btf)) = (&input.ext, &input.btf) else {
            return Ok(());
        };
        let btf_err = |source: BtfError| LinkError::Btf {
            file: input.file.clone(),
            source,
        };
        let err = |section: &str, reason: String| LinkError::Section {
            file: input.file.clone(),
            section: section.to_string(),
            reason,
        };
        // The output place of the code section named by a block.
        let locate = |name_off: u32| -> Result<Option<(String, Placed)>, LinkError> {
            let name = btf.name(name_off).map_err(btf_err)?;
            let found = input
                .sections
                .iter()
                .position(|s| s.name == name && s.flags & SHF_EXECINSTR != 0);
            let Some(i) = found else {
                return Err(err(
                    ".BTF.ext",
                    format!("records for section '{name}', which is not a code section"),
                ));
            };
            Ok(placed
                .get(i)
                .copied()
                .flatten()
                .map(|p| (name.to_string(), p)))
        };
        let shift = |sec: &str, p: Placed, off: u32| -> Result<u32, LinkError> {
            u32::try_from(p.off + u64::from(off))
                .map_err(|_| err(sec, "instruction offset past 4 GiB".into()))
        };
        let ty = |sec: &str, id: u32| -> Result<u32, LinkError> {
            tmap.get(id as usize)
                .copied()
                .ok_or_else(|| err(sec, format!(".BTF.ext names type id {id}, past the BTF")))
        };
        let text = |off: u32| -> Result<String, LinkError> {
            Ok(btf.name(off).map_err(btf_err)?.to_string())
        };
        for b in &ext.func_info {
            let Some((sec, p)) = locate(b.sec_name_off)? else {
                continue;
            };
            let block = self.blocks.entry(p.out).or_default();
            for r in &b.records {
                block
                    .func
                    .push((shift(&sec, p, r.insn_off)?, ty(&sec, r.type_id)?));
            }
        }
        for b in &ext.line_info {
            let Some((sec, p)) = locate(b.sec_name_off)? else {
                continue;
            };
            let block = self.blocks.entry(p.out).or_default();
            for r in &b.records {
                block.line.push((
                    shift(&sec, p, r.insn_off)?,
                    text(r.file_name_off)?,
                    text(r.line_off)?,
                    r.line_col,
                ));
            }
        }
        for b in &ext.core_relos {
            let Some((sec, p)) = locate(b.sec_name_off)? else {
                continue;
            };
            let block = self.blocks.entry(p.out).or_default();
            for r in &b.records {
                block.core.push((
                    shift(&sec, p, r.insn_off)?,
                    ty(&sec, r.type_id)?,
                    text(r.access_str_off)?,
                    r.kind as u32,
                ));
            }
        }
        Ok(())
    }

    /// Renumbers type ids after dedup.
    pub fn remap(&mut self, map: &[u32]) {
        let m = |id: u32| map.get(id as usize).copied().unwrap_or(id);
        for b in self.blocks.values_mut() {
            for r in &mut b.func {
                r.1 = m(r.1);
            }
            for r in &mut b.core {
                r.1 = m(r.1);
            }
        }
    }

    /// Every string the records need, with the section names.
    pub fn strings(&self, section_name: impl Fn(usize) -> String) -> Strings {
        let mut s = Strings::default();
        for (&out, b) in &self.blocks {
            s.add(&section_name(out));
            for r in &b.line {
                s.add(&r.1);
                s.add(&r.2);
            }
            for r in &b.core {
                s.add(&r.2);
            }
        }
        s
    }

    /// The `.BTF.ext` bytes (empty when there are no records).
    pub fn encode(
        &self,
        offsets: &StringOffsets,
        section_name: impl Fn(usize) -> String,
    ) -> Vec<u8> {
        if self
            .blocks
            .values()
            .all(|b| b.func.is_empty() && b.line.is_empty() && b.core.is_empty())
        {
            return Vec::new();
        }
        let put = |out: &mut Vec<u8>, w: u32| out.extend_from_slice(&w.to_le_bytes());
        let mut func = Vec::new();
        let mut line = Vec::new();
        let mut core = Vec::new();
        for (&out, b) in &self.blocks {
            let name = offsets.get(&section_name(out));
            if !b.func.is_empty() {
                put(&mut func, name);
                put(&mut func, b.func.len() as u32);
                for &(off, ty) in &b.func {
                    put(&mut func, off);
                    put(&mut func, ty);
                }
            }
            if !b.line.is_empty() {
                put(&mut line, name);
                put(&mut line, b.line.len() as u32);
                for (off, file, text, col) in &b.line {
                    put(&mut line, *off);
                    put(&mut line, offsets.get(file));
                    put(&mut line, offsets.get(text));
                    put(&mut line, *col);
                }
            }
            if !b.core.is_empty() {
                put(&mut core, name);
                put(&mut core, b.core.len() as u32);
                for (off, ty, access, kind) in &b.core {
                    put(&mut core, *off);
                    put(&mut core, *ty);
                    put(&mut core, offsets.get(access));
                    put(&mut core, *kind);
                }
            }
        }
        let with_size = |data: Vec<u8>, rec: u32| -> Vec<u8> {
            if data.is_empty() {
                return data;
            }
            let mut v = rec.to_le_bytes().to_vec();
            v.extend(data);
            v
        };
        let (func, line, core) = (with_size(func, 8), with_size(line, 16), with_size(core, 16));
        let mut out = Vec::new();
        out.extend_from_slice(&0xeb9fu16.to_le_bytes());
        out.extend_from_slice(&[1, 0]);
        let lens = [func.len() as u32, line.len() as u32, core.len() as u32];
        put(&mut out, 32);
        put(&mut out, 0);
        put(&mut out, lens[0]);
        put(&mut out, lens[0]);
        put(&mut out, lens[1]);
        put(&mut out, lens[0] + lens[1]);
        put(&mut out, lens[2]);
        out.extend(func);
        out.extend(line);
        out.extend(core);
        out
    }
}
