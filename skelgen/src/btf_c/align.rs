//! Alignment as the dumped C will have it, and packing detection.
//!
//! A struct is emitted `__attribute__((packed))` exactly when its BTF
//! layout cannot be the natural one: a non-bitfield member at an offset
//! that is not a multiple of its alignment, or a size that is not a
//! multiple of the largest member alignment (libbpf's rule). Over-aligned
//! structs need no attribute: explicit tail padding gives them their BTF
//! size, and every member offset is reproduced by padding where it sits.

use skelgen_runtime::btf::{Composite, TypeKind};

use super::{too_deep, DumpError, Dumper, MAX_DEPTH};

impl Dumper<'_> {
    /// Alignment of `id` in bytes; 0 for kinds without one (void,
    /// functions, forward declarations), which never constrain a layout.
    pub(super) fn align(&mut self, id: u32) -> Result<u32, DumpError> {
        self.align_inner(id, 0)
    }

    fn align_inner(&mut self, id: u32, depth: u32) -> Result<u32, DumpError> {
        if depth > MAX_DEPTH {
            return Err(too_deep(id));
        }
        if let Some(&a) = self.aligns.get(&id) {
            return Ok(a);
        }
        let t = self.ty(id)?;
        let a = match t.kind {
            TypeKind::Int(i) => scalar(i.size),
            TypeKind::Float { size } => scalar(size),
            TypeKind::Enum(e) => scalar(e.size),
            TypeKind::Enum64(e) => scalar(e.size),
            TypeKind::Ptr(_) => 8,
            TypeKind::Typedef(to)
            | TypeKind::Volatile(to)
            | TypeKind::Const(to)
            | TypeKind::Restrict(to)
            | TypeKind::TypeTag(to) => self.align_inner(to, depth + 1)?,
            TypeKind::Array(a) => self.align_inner(a.elem_type, depth + 1)?,
            TypeKind::Struct(c) | TypeKind::Union(c) => {
                let (max, misaligned) = self.member_aligns(c, depth)?;
                if misaligned || c.size % max != 0 {
                    1
                } else {
                    max
                }
            }
            _ => 0,
        };
        self.aligns.insert(id, a);
        Ok(a)
    }

    /// The largest member alignment (at least 1) and whether a plain
    /// member sits off its alignment.
    fn member_aligns(&mut self, c: Composite<'_>, depth: u32) -> Result<(u32, bool), DumpError> {
        let mut max = 1;
        let mut misaligned = false;
        for m in c.members() {
            let a = self.align_inner(m.ty, depth + 1)?;
            if a != 0 && m.bitfield_size == 0 && u64::from(m.bit_offset) % (8 * u64::from(a)) != 0 {
                misaligned = true;
            }
            max = max.max(a);
        }
        Ok((max, misaligned))
    }

    /// Whether struct or union `c` must be declared packed.
    pub(super) fn is_packed(&mut self, c: Composite<'_>) -> Result<bool, DumpError> {
        let (max, misaligned) = self.member_aligns(c, 0)?;
        Ok(misaligned || c.size % max != 0)
    }
}

/// A scalar's alignment on x86-64 and the other 64-bit BPF hosts: its size
/// for 1, 2, 4, 8 and 16 bytes (clang aligns `__int128` to 16), else at
/// most 8.
fn scalar(size: u32) -> u32 {
    match size {
        1 | 2 | 4 | 8 | 16 => size,
        0 => 0,
        s => s.min(8),
    }
}
