//! In-place fixups of the kind libbpf applies before `BPF_BTF_LOAD`: DATASEC
//! sizes and variable offsets, linkages, kinds an old kernel lacks rewritten
//! to ones it has, and new strings and types appended.
//!
//! Patchers keep the invariants the reader relies on: a rewritten header
//! occupies exactly as many bytes as before, and appended types are checked
//! like parsed ones, so every offset in the index stays valid.

use std::sync::OnceLock;

use super::reader::{
    info_kind, info_vlen, trailing_len, HDR_STR_LEN, HDR_STR_OFF, HDR_TYPE_LEN, HDR_TYPE_OFF,
    TYPE_HEADER_LEN,
};
use super::{Btf, BtfError, FuncLinkage, Kind, VarLinkage};

impl Btf {
    /// Absolute byte position of own type `id`'s header in `data`.
    fn patch_pos(&self, id: u32) -> Result<usize, BtfError> {
        if id < self.first_id && self.base.is_some() {
            return Err(BtfError::BaseType {
                id,
                first_own_id: self.first_id,
            });
        }
        match self.own_offset(id) {
            Some(off) => Ok(self.type_start + off as usize),
            None => Err(self.bad_id(id, None)),
        }
    }

    fn expect_kind(&self, id: u32, expected: Kind) -> Result<usize, BtfError> {
        let pos = self.patch_pos(id)?;
        let found = self.kind_of(id)?;
        if found != expected {
            return Err(BtfError::WrongKind {
                id,
                expected,
                found,
            });
        }
        Ok(pos)
    }

    fn write_u32(&mut self, at: usize, value: u32) -> Result<(), BtfError> {
        let len = self.data.len();
        match self.data.to_mut().get_mut(at..at + 4) {
            Some(b) => {
                b.copy_from_slice(&value.to_le_bytes());
                Ok(())
            }
            None => Err(BtfError::Truncated {
                what: "BTF patch target",
                offset: at,
                needed: 4,
                len: len.saturating_sub(at),
            }),
        }
    }

    /// Sets the size of DATASEC `id` (the ELF section's size, which clang
    /// leaves 0).
    pub fn set_datasec_size(&mut self, id: u32, size: u32) -> Result<(), BtfError> {
        let pos = self.expect_kind(id, Kind::Datasec)?;
        self.write_u32(pos + 8, size)
    }

    /// Sets offset and size of variable `index` of DATASEC `id`.
    pub fn set_datasec_var(
        &mut self,
        id: u32,
        index: usize,
        offset: u32,
        size: u32,
    ) -> Result<(), BtfError> {
        let pos = self.expect_kind(id, Kind::Datasec)?;
        let [_, info, _] = self.header(id)?;
        let len = info_vlen(info) as usize;
        if index >= len {
            return Err(BtfError::RecordIndex { id, index, len });
        }
        let rec = pos + TYPE_HEADER_LEN + 12 * index;
        self.write_u32(rec + 4, offset)?;
        self.write_u32(rec + 8, size)
    }

    /// Sets the linkage of VAR `id` (libbpf makes hidden globals static).
    pub fn set_var_linkage(&mut self, id: u32, linkage: VarLinkage) -> Result<(), BtfError> {
        let pos = self.expect_kind(id, Kind::Var)?;
        self.write_u32(pos + TYPE_HEADER_LEN, linkage.to_raw())
    }

    /// Sets the linkage of FUNC `id` (stored in its `vlen` bits).
    pub fn set_func_linkage(&mut self, id: u32, linkage: FuncLinkage) -> Result<(), BtfError> {
        let pos = self.expect_kind(id, Kind::Func)?;
        let raw = linkage.to_raw();
        if raw > 0xffff {
            return Err(BtfError::LinkageOutOfRange { id, linkage: raw });
        }
        let [_, info, _] = self.header(id)?;
        self.write_u32(pos + 4, (info & !0xffff) | raw)
    }

    /// Overwrites the 12-byte header of type `id`, e.g. to turn a kind the
    /// target kernel lacks into one it has (DATASEC -> STRUCT, FLOAT -> empty
    /// STRUCT...). The new header must imply exactly as many trailing bytes as
    /// the type has, so that later types do not move.
    pub fn set_type_raw(
        &mut self,
        id: u32,
        name_off: u32,
        info: u32,
        size_or_type: u32,
    ) -> Result<(), BtfError> {
        let pos = self.patch_pos(id)?;
        let [_, old_info, _] = self.header(id)?;
        let old = trailing_len(info_kind(old_info), info_vlen(old_info)).unwrap_or(0);
        let (kind, vlen) = (info_kind(info), info_vlen(info));
        let new_kind = match Kind::from_raw(kind) {
            Some(k) if k != Kind::Void => k,
            _ => {
                return Err(BtfError::UnknownKind {
                    id,
                    offset: (pos - self.type_start) as u32,
                    kind,
                })
            }
        };
        let new = trailing_len(kind, vlen).unwrap_or(0);
        if new != old {
            return Err(BtfError::RecordSizeChange {
                id,
                new_kind,
                new_vlen: vlen,
                old_size: (TYPE_HEADER_LEN + old) as u64,
                new_size: (TYPE_HEADER_LEN + new) as u64,
            });
        }
        self.write_u32(pos, name_off)?;
        self.write_u32(pos + 4, info)?;
        self.write_u32(pos + 8, size_or_type)?;
        self.names = OnceLock::new();
        Ok(())
    }

    /// Rearranges the bytes as header | types | strings with nothing after,
    /// so that both sections can grow at their ends. A no-op for what clang,
    /// pahole and the kernel produce.
    fn normalize_layout(&mut self) {
        let compact = self.type_start == self.hdr_len
            && self.str_start == self.type_start + self.type_len
            && self.data.len() == self.str_start + self.str_len;
        if compact {
            return;
        }
        let mut data = Vec::with_capacity(self.hdr_len + self.type_len + self.str_len + 64);
        data.extend_from_slice(self.data.get(..self.hdr_len).unwrap_or(&[]));
        data.extend_from_slice(self.type_section());
        data.extend_from_slice(self.strings());
        self.data = data.into();
        self.type_start = self.hdr_len;
        self.str_start = self.hdr_len + self.type_len;
        self.write_section_header();
    }

    /// Rewrites the four section fields of the header from the layout.
    /// Lengths fit in u32: they started as u32 and grow only by checked amounts.
    fn write_section_header(&mut self) {
        let fields = [
            (HDR_TYPE_OFF, self.type_start - self.hdr_len),
            (HDR_TYPE_LEN, self.type_len),
            (HDR_STR_OFF, self.str_start - self.hdr_len),
            (HDR_STR_LEN, self.str_len),
        ];
        for (at, value) in fields {
            let value = u32::try_from(value).unwrap_or(u32::MAX);
            // The header is at least 24 bytes: these writes cannot miss.
            let _ = self.write_u32(at, value);
        }
    }

    /// Appends `s` (and a NUL) to the string section and returns its offset
    /// (in the combined base + split numbering, for split BTF). The empty
    /// string is offset 0 of a base BTF and is not added again. A name with
    /// an interior NUL reads back up to that NUL.
    ///
    /// The string section is limited to 4 GiB by the format; past that the
    /// string is not added and `u32::MAX` (an offset no lookup accepts) is
    /// returned.
    pub fn append_string(&mut self, s: &str) -> u32 {
        if s.is_empty() && self.base.is_none() {
            return 0;
        }
        let offset = u64::from(self.str_base) + self.str_len as u64;
        let new_len = self.str_len as u64 + s.len() as u64 + 1;
        if offset + s.len() as u64 + 1 > u64::from(u32::MAX)
            || self.data.len() as u64 + new_len > u64::from(u32::MAX)
        {
            return u32::MAX;
        }
        self.normalize_layout();
        let data = self.data.to_mut();
        data.extend_from_slice(s.as_bytes());
        data.push(0);
        self.str_len += s.len() + 1;
        self.write_section_header();
        offset as u32
    }

    /// Appends one type given as its raw words (the 3-word header then its
    /// kind-specific data) and returns its id. The words must form exactly
    /// one type of a known kind. Referenced ids and names are not checked.
    pub fn append_type_raw(&mut self, words: &[u32]) -> Result<u32, BtfError> {
        let bad = |reason: String| BtfError::BadNewType {
            words: words.len(),
            reason,
        };
        let info = *words
            .get(1)
            .ok_or_else(|| bad("shorter than the 3-word type header".into()))?;
        if words.len() < 3 {
            return Err(bad("shorter than the 3-word type header".into()));
        }
        let (kind, vlen) = (info_kind(info), info_vlen(info));
        let trailing = match (Kind::from_raw(kind), trailing_len(kind, vlen)) {
            (Some(k), Some(t)) if k != Kind::Void => t,
            _ => return Err(bad(format!("unknown kind {kind}"))),
        };
        if words.len() * 4 != TYPE_HEADER_LEN + trailing {
            return Err(bad(format!(
                "kind {kind} with vlen {vlen} needs {} words",
                (TYPE_HEADER_LEN + trailing) / 4
            )));
        }
        let id = self.len();
        if id == u32::MAX {
            return Err(BtfError::TooManyTypes { id });
        }
        let new_type_len = self.type_len + words.len() * 4;
        if (self.data.len() + words.len() * 4) as u64 > u64::from(u32::MAX) {
            return Err(bad("the type section would exceed 4 GiB".into()));
        }
        self.normalize_layout();
        let at = self.type_start + self.type_len;
        let bytes = words.iter().flat_map(|w| w.to_le_bytes());
        self.data.to_mut().splice(at..at, bytes);
        self.offsets.push(self.type_len as u32);
        self.type_len = new_type_len;
        self.str_start = self.type_start + self.type_len;
        self.write_section_header();
        self.names = OnceLock::new();
        Ok(id)
    }
}

impl Btf {
    /// Rewrites all variable records of DATASEC `id` (type, offset, size), e.g.
    /// to sort them by offset as the kernel requires. `vars` must have exactly
    /// the DATASEC's `vlen` entries.
    pub fn set_datasec_vars(
        &mut self,
        id: u32,
        vars: &[super::VarSecInfo],
    ) -> Result<(), BtfError> {
        let pos = self.expect_kind(id, Kind::Datasec)?;
        let [_, info, _] = self.header(id)?;
        let len = info_vlen(info) as usize;
        if vars.len() != len {
            return Err(BtfError::RecordIndex {
                id,
                index: vars.len(),
                len,
            });
        }
        for (i, v) in vars.iter().enumerate() {
            let rec = pos + TYPE_HEADER_LEN + 12 * i;
            self.write_u32(rec, v.ty)?;
            self.write_u32(rec + 4, v.offset)?;
            self.write_u32(rec + 8, v.size)?;
        }
        Ok(())
    }
}
