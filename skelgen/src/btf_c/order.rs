//! Which declarations come out, and in which order.
//!
//! [`Dumper::order`] walks from a root in depth-first order and queues the
//! named definitions it must print, each after the ones it embeds by value.
//! A walk returns whether the link it followed is *strong* (the target must
//! be fully defined first) or *weak* (a forward declaration will do): a
//! pointer makes the rest of a chain weak once it reaches a named type, an
//! anonymous struct keeps it strong because it is defined inline.
//!
//! [`Dumper::emit_type`] then prints each queued type, first printing
//! forward declarations for what its members reach through pointers while
//! it is being defined (the emit state `Emitting` marks types on the way).

use skelgen_runtime::btf::TypeKind;

use super::{too_deep, DumpError, Dumper, Emit, Order, MAX_DEPTH};

impl Dumper<'_> {
    /// Orders `id`; `Ok(true)` if the link to it is strong.
    pub(super) fn order(
        &mut self,
        id: u32,
        through_ptr: bool,
        depth: u32,
    ) -> Result<bool, DumpError> {
        if depth > MAX_DEPTH {
            return Err(too_deep(id));
        }
        let state = *self.state(id)?;
        // Already done: a typedef of it may be emitted.
        if state.order == Order::Ordered {
            return Ok(true);
        }
        let t = self.ty(id)?;
        if state.order == Order::Ordering {
            // A loop closed through a pointer to a named struct or union is
            // resolved by a forward declaration; any other loop is not.
            let composite = matches!(t.kind, TypeKind::Struct(_) | TypeKind::Union(_));
            if composite && through_ptr && t.name_off != 0 {
                return Ok(false);
            }
            return Err(DumpError::Cycle { id });
        }
        let set = |d: &mut Self, o: Order| -> Result<(), DumpError> {
            d.state(id)?.order = o;
            Ok(())
        };
        match t.kind {
            TypeKind::Int(_) | TypeKind::Float { .. } => {
                set(self, Order::Ordered)?;
                Ok(false)
            }
            TypeKind::Ptr(to) => {
                let strong = self.order(to, true, depth + 1)?;
                set(self, Order::Ordered)?;
                Ok(strong)
            }
            TypeKind::Array(a) => self.order(a.elem_type, false, depth + 1),
            TypeKind::Struct(c) | TypeKind::Union(c) => {
                // Named and behind a pointer: a forward declaration will do.
                if through_ptr && t.name_off != 0 {
                    return Ok(false);
                }
                set(self, Order::Ordering)?;
                for m in c.members() {
                    self.order(m.ty, false, depth + 1)?;
                }
                if t.name_off != 0 {
                    self.queue.push(id);
                }
                set(self, Order::Ordered)?;
                Ok(true)
            }
            TypeKind::Enum(_) | TypeKind::Enum64(_) | TypeKind::Fwd { .. } => {
                // Named ones, and anonymous enums nothing refers to (sets
                // of constants), are declarations of their own.
                if t.name_off != 0 || !state.referenced {
                    self.queue.push(id);
                }
                set(self, Order::Ordered)?;
                Ok(true)
            }
            TypeKind::Typedef(to) => {
                let strong = self.order(to, through_ptr, depth + 1)?;
                if through_ptr && !strong {
                    return Ok(false);
                }
                self.queue.push(id);
                set(self, Order::Ordered)?;
                Ok(true)
            }
            TypeKind::Volatile(to)
            | TypeKind::Const(to)
            | TypeKind::Restrict(to)
            | TypeKind::TypeTag(to) => self.order(to, through_ptr, depth + 1),
            TypeKind::FuncProto(p) => {
                let mut strong = self.order(p.ret, through_ptr, depth + 1)?;
                for param in p.params() {
                    strong |= self.order(param.ty, through_ptr, depth + 1)?;
                }
                Ok(strong)
            }
            TypeKind::Func { .. }
            | TypeKind::Var { .. }
            | TypeKind::Datasec(_)
            | TypeKind::DeclTag { .. } => {
                set(self, Order::Ordered)?;
                Ok(false)
            }
            TypeKind::Void => Ok(true),
        }
    }

    /// Emits `id` if it still needs emitting; `cont_id` is the named struct
    /// being defined around it (0 at top level).
    pub(super) fn emit_type(&mut self, id: u32, cont_id: u32, depth: u32) -> Result<(), DumpError> {
        if depth > MAX_DEPTH {
            return Err(too_deep(id));
        }
        let state = *self.state(id)?;
        if state.emit == Emit::Emitted {
            return Ok(());
        }
        let top_level = cont_id == 0;
        let t = self.ty(id)?;
        if state.emit == Emit::Emitting {
            // Reached again while being defined: it is only pointed to
            // from here, so a forward declaration is what is needed.
            if state.fwd_emitted {
                return Ok(());
            }
            match t.kind {
                TypeKind::Struct(_) | TypeKind::Union(_) => {
                    if id == cont_id {
                        return Ok(());
                    }
                    if t.name_off == 0 {
                        return Err(DumpError::Cycle { id });
                    }
                    self.emit_struct_fwd(id)?;
                    self.out.push_str(";\n\n");
                    self.state(id)?.fwd_emitted = true;
                }
                TypeKind::Typedef(_) => {
                    // A typedef is its own forward declaration: usable
                    // through pointers before its target is complete.
                    if !self.is_builtin(id)? {
                        self.emit_typedef_def(id, 0, depth)?;
                        self.out.push_str(";\n\n");
                    }
                    self.state(id)?.fwd_emitted = true;
                }
                _ => {}
            }
            return Ok(());
        }
        match t.kind {
            TypeKind::Int(_) => self.state(id)?.emit = Emit::Emitted,
            TypeKind::Enum(_) | TypeKind::Enum64(_) => {
                if top_level {
                    self.emit_enum_def(id, 0)?;
                    self.out.push_str(";\n\n");
                }
                self.state(id)?.emit = Emit::Emitted;
            }
            TypeKind::Ptr(to)
            | TypeKind::Volatile(to)
            | TypeKind::Const(to)
            | TypeKind::Restrict(to)
            | TypeKind::TypeTag(to) => self.emit_type(to, cont_id, depth + 1)?,
            TypeKind::Array(a) => self.emit_type(a.elem_type, cont_id, depth + 1)?,
            TypeKind::Fwd { .. } => {
                self.emit_fwd_def(id)?;
                self.out.push_str(";\n\n");
                self.state(id)?.emit = Emit::Emitted;
            }
            TypeKind::Typedef(to) => {
                self.state(id)?.emit = Emit::Emitting;
                self.emit_type(to, id, depth + 1)?;
                let fwd_emitted = self.state(id)?.fwd_emitted;
                if !fwd_emitted && !self.is_builtin(id)? {
                    self.emit_typedef_def(id, 0, depth)?;
                    self.out.push_str(";\n\n");
                }
                self.state(id)?.emit = Emit::Emitted;
            }
            TypeKind::Struct(c) | TypeKind::Union(c) => {
                self.state(id)?.emit = Emit::Emitting;
                if top_level || t.name_off == 0 {
                    // Members are printed in full: what they point to
                    // needs forward declarations first.
                    let inner = if t.name_off == 0 { cont_id } else { id };
                    for m in c.members() {
                        self.emit_type(m.ty, inner, depth + 1)?;
                    }
                } else if !state.fwd_emitted && id != cont_id {
                    self.emit_struct_fwd(id)?;
                    self.out.push_str(";\n\n");
                    self.state(id)?.fwd_emitted = true;
                }
                if top_level {
                    self.emit_struct_def(id, 0, depth)?;
                    self.out.push_str(";\n\n");
                    self.state(id)?.emit = Emit::Emitted;
                } else {
                    self.state(id)?.emit = Emit::NotEmitted;
                }
            }
            TypeKind::FuncProto(p) => {
                self.emit_type(p.ret, cont_id, depth + 1)?;
                for param in p.params() {
                    self.emit_type(param.ty, cont_id, depth + 1)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// `__builtin_va_list` is the compiler's own: defining it breaks the build.
    pub(super) fn is_builtin(&self, id: u32) -> Result<bool, DumpError> {
        let t = self.ty(id)?;
        Ok(t.name_off != 0 && self.str_at(id, t.name_off)? == "__builtin_va_list")
    }
}
