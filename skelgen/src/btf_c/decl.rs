//! C syntax: struct, union, enum and typedef definitions, and declarators.
//!
//! A BTF chain reads outside-in (`typedef -> array -> ptr -> const -> int`)
//! while a C declarator wraps the name inside-out, with qualifiers left of
//! base types but right of `*`. [`Dumper::emit_type_decl`] pushes the chain
//! onto a stack down to its base type and [`Dumper::emit_chain`] pops it,
//! parenthesizing where an array or function sits inside a pointer.

use skelgen_runtime::btf::{Kind, TypeKind};

use super::{pfx, too_deep, DumpError, Dumper, Namespace, MAX_DEPTH};

/// The largest gap between members (or before the end) that is padded:
/// 1 MiB. The kernel's largest gaps are a few cache lines.
const MAX_GAP_BITS: i64 = 8 << 20;

/// Padding types, widest first: (name, bits).
const PADS: [(&str, i64); 4] = [("long", 64), ("int", 32), ("short", 16), ("char", 8)];

fn round_up(x: i64, to: i64) -> i64 {
    if to <= 0 {
        return x;
    }
    (x + to - 1) / to * to
}

impl Dumper<'_> {
    pub(super) fn emit_struct_fwd(&mut self, id: u32) -> Result<(), DumpError> {
        let t = self.ty(id)?;
        let kw = if t.kind() == Kind::Union {
            "union"
        } else {
            "struct"
        };
        let name = self.type_name(id)?;
        self.out.push_str(kw);
        if !name.is_empty() {
            self.out.push(' ');
        }
        self.out.push_str(&name);
        Ok(())
    }

    pub(super) fn emit_fwd_def(&mut self, id: u32) -> Result<(), DumpError> {
        let t = self.ty(id)?;
        let name = self.type_name(id)?;
        let kw = match t.kind {
            TypeKind::Fwd { is_union: true } => "union ",
            _ => "struct ",
        };
        self.out.push_str(kw);
        self.out.push_str(&name);
        Ok(())
    }

    pub(super) fn emit_typedef_def(
        &mut self,
        id: u32,
        lvl: u32,
        depth: u32,
    ) -> Result<(), DumpError> {
        let t = self.ty(id)?;
        let name = self.ident_name(id)?;
        let TypeKind::Typedef(to) = t.kind else {
            return Ok(());
        };
        // Old GCC describes __gnuc_va_list as a typedef of void.
        if to == 0 && name == "__gnuc_va_list" {
            self.out
                .push_str("typedef __builtin_va_list __gnuc_va_list");
            return Ok(());
        }
        self.out.push_str("typedef ");
        self.emit_type_decl(to, &name, lvl, depth + 1)
    }

    pub(super) fn emit_struct_def(
        &mut self,
        id: u32,
        lvl: u32,
        depth: u32,
    ) -> Result<(), DumpError> {
        if depth > MAX_DEPTH {
            return Err(too_deep(id));
        }
        let t = self.ty(id)?;
        let (c, is_struct) = match t.kind {
            TypeKind::Struct(c) => (c, true),
            TypeKind::Union(c) => (c, false),
            _ => return Ok(()),
        };
        let align = i64::from(self.align(id)?);
        // libbpf checks only structs; a union whose size is not a multiple
        // of its members' alignment (a packed one, 18 bytes holding a u32)
        // needs the attribute too, or the compiler rounds its size up.
        let packed = self.is_packed(c)?;
        self.emit_struct_fwd(id)?;
        self.out.push_str(" {");
        let mut off: i64 = 0;
        let mut prev_bitfield = false;
        for m in c.members() {
            let fname = self.str_at(id, m.name_off)?;
            let m_sz = i64::from(m.bitfield_size);
            let m_off = i64::from(m.bit_offset);
            let m_align = if packed {
                1
            } else {
                i64::from(self.align(m.ty)?)
            };
            let in_bitfield = prev_bitfield && m_sz != 0;
            self.bit_padding(id, off, m_off, m_align, in_bitfield, lvl + 1)?;
            self.out.push('\n');
            self.out.push_str(pfx(lvl + 1));
            self.emit_type_decl(m.ty, fname, lvl + 1, depth + 1)?;
            if m_sz != 0 {
                self.out.push_str(&format!(": {m_sz}"));
                off = m_off + m_sz;
                prev_bitfield = true;
            } else {
                // Sizeless members (flexible arrays of incomplete types)
                // occupy nothing.
                let size = self.btf.size_of(m.ty).unwrap_or(0);
                off = m_off + i64::from(size) * 8;
                prev_bitfield = false;
            }
            self.out.push(';');
        }
        if is_struct {
            self.bit_padding(id, off, i64::from(c.size) * 8, align, false, lvl + 1)?;
        }
        if !c.is_empty() || c.size != 0 {
            self.out.push('\n');
            self.out.push_str(pfx(lvl));
        }
        self.out.push('}');
        if packed {
            self.out.push_str(" __attribute__((packed))");
        }
        Ok(())
    }

    /// Anonymous bitfields that move the next member from bit `cur` to bit
    /// `next`: aligned to the widest padding type that fits, with `T: 0`
    /// where the compiler would not otherwise start a new unit.
    fn bit_padding(
        &mut self,
        id: u32,
        cur: i64,
        next: i64,
        next_align: i64,
        in_bitfield: bool,
        lvl: u32,
    ) -> Result<(), DumpError> {
        if cur >= next {
            return Ok(());
        }
        // One `long: 64;` line per 8 bytes: a gap no compiler leaves would
        // make gigabytes of text.
        if next - cur > MAX_GAP_BITS {
            return Err(DumpError::HugeGap {
                id,
                bits: next - cur,
            });
        }
        let (mut pad_type, mut pad_bits, mut new_off) = ("char", 8, round_up(cur, 8));
        for (name, bits) in PADS {
            (pad_type, pad_bits, new_off) = (name, bits, round_up(cur, bits));
            if new_off <= next {
                break;
            }
        }
        let mut cur = cur;
        if new_off > cur && new_off <= next {
            // An explicit `T: 0` is needed when the next member starts right
            // there but its own alignment would not take it there, or when
            // the rest of the gap is shorter than the part up to the unit
            // boundary (the compiler would pack `T: n` into the hole).
            let needs_mark = in_bitfield
                || (new_off == next && round_up(cur, next_align * 8) != new_off)
                || (new_off != next && next - new_off <= new_off - cur);
            if needs_mark {
                let bits = if in_bitfield { new_off - cur } else { 0 };
                self.out
                    .push_str(&format!("\n{}{pad_type}: {bits};", pfx(lvl)));
            }
            cur = new_off;
        }
        while cur < next {
            let bits = (next - cur).min(pad_bits);
            if bits == pad_bits {
                self.out
                    .push_str(&format!("\n{}{pad_type}: {pad_bits};", pfx(lvl)));
                cur += bits;
                continue;
            }
            // The remainder in the smallest type that holds it.
            let (name, _) = PADS
                .iter()
                .rev()
                .find(|(_, b)| *b >= bits)
                .copied()
                .unwrap_or(("long", 64));
            self.out.push_str(&format!("\n{}{name}: {bits};", pfx(lvl)));
            cur += bits;
        }
        Ok(())
    }

    pub(super) fn emit_enum_def(&mut self, id: u32, lvl: u32) -> Result<(), DumpError> {
        let t = self.ty(id)?;
        let name = self.type_name(id)?;
        self.out.push_str("enum");
        if !name.is_empty() {
            self.out.push(' ');
            self.out.push_str(&name);
        }
        let (size, signed, is64, values): (u32, bool, bool, Vec<_>) = match t.kind {
            TypeKind::Enum(e) => (e.size, e.signed, false, e.values().collect()),
            TypeKind::Enum64(e) => (e.size, e.signed, true, e.values().collect()),
            _ => return Ok(()),
        };
        if values.is_empty() {
            return Ok(());
        }
        self.out.push_str(" {");
        for v in &values {
            let vname = self.str_at(id, v.name_off)?;
            // Enumerators share the namespace of typedef names.
            let dups = self.count_name(vname, Namespace::Idents);
            let shown = if dups > 1 {
                format!("{vname}___{dups}")
            } else {
                vname.to_string()
            };
            let value = match (is64, signed) {
                (false, true) => format!("{}", v.value as i32),
                (false, false) => format!("{}", v.value as u32),
                (true, true) => format!("{}LL", v.value as i64),
                (true, false) => format!("{}ULL", v.value),
            };
            self.out
                .push_str(&format!("\n{}{shown} = {value},", pfx(lvl + 1)));
        }
        self.out.push('\n');
        self.out.push_str(pfx(lvl));
        self.out.push('}');
        if size == 1 {
            self.out.push_str(" __attribute__((mode(byte)))");
        } else if size == 8 {
            // An 8-byte enum is what the compiler picks by itself only when
            // some value needs the upper half.
            let needs_word = !is64 || values.iter().all(|v| v.value >> 32 == 0);
            if needs_word {
                self.out.push_str(" __attribute__((mode(word)))");
            }
        }
        Ok(())
    }

    /// Declares `fname` (may be empty) of type `id`.
    pub(super) fn emit_type_decl(
        &mut self,
        id: u32,
        fname: &str,
        lvl: u32,
        depth: u32,
    ) -> Result<(), DumpError> {
        if depth > MAX_DEPTH {
            return Err(too_deep(id));
        }
        let mut stack = Vec::new();
        let mut cur = id;
        loop {
            if stack.len() > MAX_DEPTH as usize {
                return Err(too_deep(cur));
            }
            stack.push(cur);
            if cur == 0 {
                break;
            }
            let t = self.ty(cur)?;
            cur = match t.kind {
                TypeKind::Ptr(n)
                | TypeKind::Volatile(n)
                | TypeKind::Const(n)
                | TypeKind::Restrict(n)
                | TypeKind::TypeTag(n) => n,
                TypeKind::FuncProto(p) => p.ret,
                TypeKind::Array(a) => a.elem_type,
                TypeKind::Int(_)
                | TypeKind::Enum(_)
                | TypeKind::Enum64(_)
                | TypeKind::Fwd { .. }
                | TypeKind::Struct(_)
                | TypeKind::Union(_)
                | TypeKind::Typedef(_)
                | TypeKind::Float { .. } => break,
                _ => {
                    return Err(DumpError::UnexpectedKind {
                        id: cur,
                        kind: t.kind(),
                        place: "in a type declaration",
                    })
                }
            };
        }
        self.emit_chain(&mut stack, fname, lvl, depth)
    }

    fn top_kind(&self, stack: &[u32]) -> Result<Kind, DumpError> {
        match stack.last() {
            Some(&id) => self
                .btf
                .kind_of(id)
                .map_err(|source| DumpError::Btf { id, source }),
            None => Ok(Kind::Void),
        }
    }

    /// Prints the qualifiers on top of the stack, left of a base type.
    fn emit_mods(&mut self, stack: &mut Vec<u32>) -> Result<(), DumpError> {
        loop {
            let kw = match self.top_kind(stack)? {
                Kind::Volatile => "volatile ",
                Kind::Const => "const ",
                Kind::Restrict => "restrict ",
                _ => return Ok(()),
            };
            self.out.push_str(kw);
            stack.pop();
        }
    }

    /// Drops qualifiers of an array or function (GCC adds them to arrays of
    /// qualified elements and to noreturn function pointers; C has no
    /// place for them).
    fn drop_mods(&mut self, stack: &mut Vec<u32>) -> Result<(), DumpError> {
        while matches!(
            self.top_kind(stack)?,
            Kind::Volatile | Kind::Const | Kind::Restrict | Kind::TypeTag
        ) {
            stack.pop();
        }
        Ok(())
    }

    fn emit_name(&mut self, name: &str, last_was_ptr: bool) {
        if !name.is_empty() && !last_was_ptr {
            self.out.push(' ');
        }
        self.out.push_str(name);
    }

    fn emit_chain(
        &mut self,
        stack: &mut Vec<u32>,
        fname: &str,
        lvl: u32,
        depth: u32,
    ) -> Result<(), DumpError> {
        if depth > MAX_DEPTH {
            return Err(too_deep(stack.last().copied().unwrap_or(0)));
        }
        // `int ***`, not `int * * *`; a lone pointer before a function
        // prototype prints as `(*name)`.
        let mut last_was_ptr = true;
        while let Some(id) = stack.pop() {
            if id == 0 {
                self.emit_mods(stack)?;
                self.out.push_str("void");
                last_was_ptr = false;
                continue;
            }
            let t = self.ty(id)?;
            match t.kind {
                TypeKind::Int(_) | TypeKind::Float { .. } => {
                    self.emit_mods(stack)?;
                    let name = self.str_at(id, t.name_off)?;
                    self.out.push_str(name);
                }
                TypeKind::Struct(_) | TypeKind::Union(_) => {
                    self.emit_mods(stack)?;
                    if t.name_off == 0 {
                        self.emit_struct_def(id, lvl, depth + 1)?;
                    } else {
                        self.emit_struct_fwd(id)?;
                    }
                }
                TypeKind::Enum(_) | TypeKind::Enum64(_) => {
                    self.emit_mods(stack)?;
                    if t.name_off == 0 {
                        self.emit_enum_def(id, lvl)?;
                    } else {
                        let name = self.type_name(id)?;
                        self.out.push_str("enum ");
                        self.out.push_str(&name);
                    }
                }
                TypeKind::Fwd { .. } => {
                    self.emit_mods(stack)?;
                    self.emit_fwd_def(id)?;
                }
                TypeKind::Typedef(_) => {
                    self.emit_mods(stack)?;
                    let name = self.ident_name(id)?;
                    self.out.push_str(&name);
                }
                TypeKind::Ptr(_) => self.out.push_str(if last_was_ptr { "*" } else { " *" }),
                TypeKind::Volatile(_) => self.out.push_str(" volatile"),
                TypeKind::Const(_) => self.out.push_str(" const"),
                TypeKind::Restrict(_) => self.out.push_str(" restrict"),
                TypeKind::TypeTag(_) => {
                    self.emit_mods(stack)?;
                    let name = self.str_at(id, t.name_off)?;
                    self.out
                        .push_str(&format!(" __attribute__((btf_type_tag(\"{name}\")))"));
                }
                TypeKind::Array(a) => {
                    self.drop_mods(stack)?;
                    if stack.is_empty() {
                        self.emit_name(fname, last_was_ptr);
                        self.out.push_str(&format!("[{}]", a.nelems));
                        return Ok(());
                    }
                    let multidim = self.top_kind(stack)? == Kind::Array;
                    if !fname.is_empty() && !last_was_ptr {
                        self.out.push(' ');
                    }
                    if !multidim {
                        self.out.push('(');
                    }
                    self.emit_chain(stack, fname, lvl, depth + 1)?;
                    if !multidim {
                        self.out.push(')');
                    }
                    self.out.push_str(&format!("[{}]", a.nelems));
                    return Ok(());
                }
                TypeKind::FuncProto(p) => {
                    self.drop_mods(stack)?;
                    if stack.is_empty() {
                        self.emit_name(fname, last_was_ptr);
                    } else {
                        self.out.push_str(" (");
                        self.emit_chain(stack, fname, lvl, depth + 1)?;
                        self.out.push(')');
                    }
                    self.out.push('(');
                    let params: Vec<_> = p.params().collect();
                    // clang writes `f(void)` as one void parameter.
                    if params.is_empty()
                        || (params.len() == 1 && params.first().map(|p| p.ty) == Some(0))
                    {
                        self.out.push_str("void)");
                        return Ok(());
                    }
                    let n = params.len();
                    for (i, param) in params.iter().enumerate() {
                        if i > 0 {
                            self.out.push_str(", ");
                        }
                        // A trailing void parameter marks varargs.
                        if i + 1 == n && param.ty == 0 {
                            self.out.push_str("...");
                            break;
                        }
                        let pname = self.str_at(id, param.name_off)?;
                        self.emit_type_decl(param.ty, pname, lvl, depth + 1)?;
                    }
                    self.out.push(')');
                    return Ok(());
                }
                _ => {
                    return Err(DumpError::UnexpectedKind {
                        id,
                        kind: t.kind(),
                        place: "in a type declaration",
                    })
                }
            }
            last_was_ptr = t.kind() == Kind::Ptr;
        }
        self.emit_name(fname, last_was_ptr);
        Ok(())
    }
}
