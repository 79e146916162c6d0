//! C declarations from BTF: the header `bpftool btf dump file F format c`
//! prints, which is what every CO-RE project's `vmlinux.h` is.
//!
//! [`dump_c`] takes a parsed [`Btf`] (the kernel's, a module's split BTF on
//! top of it, or an object's `.BTF`) and writes every type in a form clang
//! compiles: each definition after the definitions it embeds, forward
//! declarations where a pointer closes a cycle, anonymous types inline,
//! bitfields with explicit padding so that every offset equals BTF's,
//! `__attribute__((packed))` where no natural layout explains the offsets,
//! and the `preserve_access_index` pragma and include guard around it all.
//!
//! The ordering and naming follow libbpf's `btf_dump` (facts of its output,
//! re-expressed here): a depth-first walk from each type in id order, in
//! which a struct reached through a pointer is a *weak* dependency (a
//! forward declaration will do) unless it is anonymous; names that occur
//! twice get `___2`, `___3`... in the order they are first printed
//! (struct/union/enum tags in one namespace, typedefs and enumerators in
//! another). Output for the same BTF is therefore the same text bpftool
//! prints for it, declaration by declaration.
//!
//! Malformed BTF (ids out of range, a struct that contains itself by
//! value, chains deeper than [`MAX_DEPTH`]) ends in a [`DumpError`] naming
//! the type; nothing here panics on input.

mod align;
mod decl;
mod order;
mod sort;

use std::collections::HashMap;

use skelgen_runtime::btf::{Btf, BtfError, Kind, TypeKind};

/// Deepest nesting followed (pointer/array/modifier chains, anonymous
/// types inside anonymous types, embedded structs) before giving up.
/// The kernel's BTF needs well under 64.
pub const MAX_DEPTH: u32 = 256;

/// An error dumping BTF as C.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DumpError {
    /// The BTF could not be read at this type.
    #[error("reading BTF type {id}")]
    Btf {
        /// The type being dumped.
        id: u32,
        /// What the reader found.
        #[source]
        source: BtfError,
    },
    /// A type that contains itself by value (no pointer on the way back).
    #[error("BTF type {id} contains itself by value (an unsatisfiable type cycle)")]
    Cycle {
        /// Where the cycle was found.
        id: u32,
    },
    /// References nest deeper than [`MAX_DEPTH`].
    #[error("BTF type {id}: references nest deeper than {limit} levels (a cycle?)")]
    TooDeep {
        /// Where the walk gave up.
        id: u32,
        /// The limit.
        limit: u32,
    },
    /// A kind that has no place in a C type declaration where it was found.
    #[error("BTF type {id} is a {kind}, which cannot appear {place}")]
    UnexpectedKind {
        /// The type.
        id: u32,
        /// Its kind.
        kind: Kind,
        /// Where it was found.
        place: &'static str,
    },
    /// A gap between members too large to be real padding.
    #[error("BTF type {id}: a gap of {bits} bits between members (more than 1 MiB of padding; not a layout a compiler produces)")]
    HugeGap {
        /// The struct.
        id: u32,
        /// The gap.
        bits: i64,
    },
    /// `--type NAME` named no type of the BTF.
    #[error("no struct, union, enum or typedef named `{name}` in the BTF")]
    NoSuchType {
        /// The name asked for.
        name: String,
    },
}

/// Options of [`dump_c`].
#[derive(Clone, Debug, Default)]
pub struct DumpOptions {
    roots: Vec<String>,
    no_kfuncs: bool,
    sorted: bool,
}

impl DumpOptions {
    /// Every type, as bpftool dumps a whole BTF.
    pub fn new() -> Self {
        Self::default()
    }

    /// Dump only the types with this name (and what they need), as
    /// bpftool's `root_id`; may be given several times. Every struct,
    /// union, enum and typedef of that name is a root.
    pub fn root(mut self, name: impl Into<String>) -> Self {
        self.roots.push(name.into());
        self
    }

    /// Dump a whole BTF in bpftool 7.5's sorted order (by kind rank, then
    /// name) instead of type id order, so that headers of two kernels diff
    /// well. Dependencies still precede what needs them.
    pub fn sorted(mut self) -> Self {
        self.sorted = true;
        self
    }

    /// Leave out the `extern ... __ksym` prototypes of the kernel's kfuncs
    /// (BTF functions tagged `bpf_kfunc`) that a whole dump ends with.
    pub fn without_kfuncs(mut self) -> Self {
        self.no_kfuncs = true;
        self
    }
}

const HEADER: &str = "\
#ifndef __VMLINUX_H__
#define __VMLINUX_H__

#ifndef BPF_NO_PRESERVE_ACCESS_INDEX
#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)
#endif

#ifndef __ksym
#define __ksym __attribute__((section(\".ksyms\")))
#endif

#ifndef __weak
#define __weak __attribute__((weak))
#endif

#ifndef __bpf_fastcall
#if __has_attribute(bpf_fastcall)
#define __bpf_fastcall __attribute__((bpf_fastcall))
#else
#define __bpf_fastcall
#endif
#endif

";

const FOOTER: &str = "\
#ifndef BPF_NO_PRESERVE_ACCESS_INDEX
#pragma clang attribute pop
#endif

#endif /* __VMLINUX_H__ */
";

/// The C header for `btf`: every type (or the roots of `opts` and what they
/// need), in an order that compiles, inside bpftool's guard and pragma.
pub fn dump_c(btf: &Btf, opts: &DumpOptions) -> Result<String, DumpError> {
    let mut d = Dumper::new(btf)?;
    d.out.push_str(HEADER);
    if opts.roots.is_empty() {
        let ids: Vec<u32> = if opts.sorted {
            sort::sorted_ids(btf)
        } else {
            (1..btf.len()).collect()
        };
        for id in ids {
            d.dump_type(id)?;
        }
        if !opts.no_kfuncs {
            d.kfuncs()?;
        }
    } else {
        for name in &opts.roots {
            let roots: Vec<u32> = btf
                .find_by_name(name)
                .iter()
                .copied()
                .filter(|&id| {
                    matches!(
                        btf.kind_of(id),
                        Ok(Kind::Struct | Kind::Union | Kind::Enum | Kind::Enum64 | Kind::Typedef)
                    )
                })
                .collect();
            if roots.is_empty() {
                return Err(DumpError::NoSuchType { name: name.clone() });
            }
            for id in roots {
                d.dump_type(id)?;
            }
        }
    }
    d.out.push_str(FOOTER);
    Ok(d.out)
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Order {
    #[default]
    NotOrdered,
    Ordering,
    Ordered,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Emit {
    #[default]
    NotEmitted,
    Emitting,
    Emitted,
}

/// What the walk knows of one type id.
#[derive(Clone, Copy, Debug, Default)]
struct State {
    order: Order,
    emit: Emit,
    /// A forward declaration (or, for a typedef, its definition) is out.
    fwd_emitted: bool,
    /// Some other type refers to this one: an anonymous enum that nobody
    /// refers to is a top-level declaration of constants.
    referenced: bool,
}

/// Which namespace a name is made unique in.
#[derive(Clone, Copy)]
enum Namespace {
    /// struct, union and enum tags.
    Tags,
    /// typedef names and enumerators.
    Idents,
}

pub(crate) struct Dumper<'a> {
    btf: &'a Btf,
    out: String,
    states: Vec<State>,
    /// The name each type was given when first printed.
    names: HashMap<u32, String>,
    tag_counts: HashMap<&'a str, usize>,
    ident_counts: HashMap<&'a str, usize>,
    queue: Vec<u32>,
    aligns: HashMap<u32, u32>,
}

impl<'a> Dumper<'a> {
    fn new(btf: &'a Btf) -> Result<Self, DumpError> {
        let mut d = Dumper {
            btf,
            out: String::new(),
            states: vec![State::default(); btf.len() as usize],
            names: HashMap::new(),
            tag_counts: HashMap::new(),
            ident_counts: HashMap::new(),
            queue: Vec::new(),
            aligns: HashMap::new(),
        };
        if let Some(void) = d.states.first_mut() {
            void.order = Order::Ordered;
            void.emit = Emit::Emitted;
        }
        d.mark_referenced()?;
        Ok(d)
    }

    fn ty(&self, id: u32) -> Result<skelgen_runtime::btf::Type<'a>, DumpError> {
        self.btf
            .type_by_id(id)
            .map_err(|source| DumpError::Btf { id, source })
    }

    fn str_at(&self, id: u32, name_off: u32) -> Result<&'a str, DumpError> {
        self.btf
            .name(name_off)
            .map_err(|source| DumpError::Btf { id, source })
    }

    fn state(&mut self, id: u32) -> Result<&mut State, DumpError> {
        let len = self.btf.len();
        self.states.get_mut(id as usize).ok_or(DumpError::Btf {
            id,
            source: BtfError::BadTypeId {
                id,
                len,
                referenced_from: None,
            },
        })
    }

    /// Marks every type some other type refers to.
    fn mark_referenced(&mut self) -> Result<(), DumpError> {
        for id in 1..self.btf.len() {
            let t = self.ty(id)?;
            let mut refs: Vec<u32> = Vec::new();
            match t.kind {
                TypeKind::Array(a) => refs.extend([a.index_type, a.elem_type]),
                TypeKind::Struct(c) | TypeKind::Union(c) => refs.extend(c.members().map(|m| m.ty)),
                TypeKind::FuncProto(p) => refs.extend(p.params().map(|p| p.ty)),
                TypeKind::Datasec(s) => refs.extend(s.vars().map(|v| v.ty)),
                k => refs.extend(k.referenced()),
            }
            for r in refs {
                let len = self.btf.len();
                let s = self.states.get_mut(r as usize).ok_or(DumpError::Btf {
                    id: r,
                    source: BtfError::BadTypeId {
                        id: r,
                        len,
                        referenced_from: Some(id),
                    },
                })?;
                s.referenced = true;
            }
        }
        Ok(())
    }

    /// One root: orders it and what it needs, then emits them.
    fn dump_type(&mut self, id: u32) -> Result<(), DumpError> {
        self.queue.clear();
        self.order(id, false, 0)?;
        for q in std::mem::take(&mut self.queue) {
            self.emit_type(q, 0, 0)?;
        }
        Ok(())
    }

    /// The unique name of type `id` in `ns`, given the first time it is
    /// asked for (`""` for anonymous types).
    fn resolve_name(&mut self, id: u32, ns: Namespace) -> Result<String, DumpError> {
        let t = self.ty(id)?;
        if t.name_off == 0 {
            return Ok(String::new());
        }
        if let Some(n) = self.names.get(&id) {
            return Ok(n.clone());
        }
        let orig = self.str_at(id, t.name_off)?;
        // Forward declarations and enum forward declarations may repeat
        // the name of their definition.
        let shares_name = match t.kind {
            TypeKind::Fwd { .. } => true,
            TypeKind::Enum(e) => e.is_empty(),
            _ => false,
        };
        let name = if shares_name {
            orig.to_string()
        } else {
            match self.count_name(orig, ns) {
                1 => orig.to_string(),
                n => format!("{orig}___{n}"),
            }
        };
        self.names.insert(id, name.clone());
        Ok(name)
    }

    /// Counts one more use of `name` in `ns` and returns the count.
    fn count_name(&mut self, name: &'a str, ns: Namespace) -> usize {
        let map = match ns {
            Namespace::Tags => &mut self.tag_counts,
            Namespace::Idents => &mut self.ident_counts,
        };
        let c = map.entry(name).or_insert(0);
        *c += 1;
        *c
    }

    fn type_name(&mut self, id: u32) -> Result<String, DumpError> {
        self.resolve_name(id, Namespace::Tags)
    }

    fn ident_name(&mut self, id: u32) -> Result<String, DumpError> {
        self.resolve_name(id, Namespace::Idents)
    }

    /// bpftool's closing section: prototypes of the kfuncs, sorted by name.
    fn kfuncs(&mut self) -> Result<(), DumpError> {
        let mut kfuncs: Vec<(&'a str, u32)> = Vec::new();
        let mut fastcall: Vec<u32> = Vec::new();
        for id in 1..self.btf.len() {
            let t = self.ty(id)?;
            let TypeKind::DeclTag {
                target,
                component_idx: -1,
            } = t.kind
            else {
                continue;
            };
            if self.btf.kind_of(target).ok() != Some(Kind::Func) {
                continue;
            }
            match self.str_at(id, t.name_off)? {
                "bpf_kfunc" => {
                    let f = self.ty(target)?;
                    kfuncs.push((self.str_at(target, f.name_off)?, target));
                }
                "bpf_fastcall" => fastcall.push(target),
                _ => {}
            }
        }
        kfuncs.sort();
        self.out
            .push_str("\n/* BPF kfuncs */\n#ifndef BPF_NO_KFUNC_PROTOTYPES\n");
        for (name, id) in kfuncs {
            let TypeKind::Func { proto, .. } = self.ty(id)?.kind else {
                continue;
            };
            self.out.push_str("extern ");
            if fastcall.contains(&id) {
                self.out.push_str("__bpf_fastcall ");
            }
            self.emit_type_decl(proto, name, 0, 0)?;
            self.out.push_str(" __weak __ksym;\n");
        }
        self.out.push_str("#endif\n\n");
        Ok(())
    }
}

/// `lvl` tabs, at most 13 (libbpf's indentation limit).
fn pfx(lvl: u32) -> &'static str {
    const TABS: &str = "\t\t\t\t\t\t\t\t\t\t\t\t\t";
    TABS.get(..(lvl as usize).min(TABS.len())).unwrap_or(TABS)
}

fn too_deep(id: u32) -> DumpError {
    DumpError::TooDeep {
        id,
        limit: MAX_DEPTH,
    }
}

/// An error writing `vmlinux.h` from a BTF file.
#[derive(Debug, thiserror::Error)]
pub enum VmlinuxHError {
    /// The BTF file could not be read.
    #[error("cannot read the BTF for vmlinux.h")]
    Read(#[from] crate::btf_file::BtfFileError),
    /// The BTF could not be dumped as C.
    #[error("cannot dump {} as C", path.display())]
    Dump {
        /// The BTF file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: DumpError,
    },
    /// The header could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The header.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Writes `dir/vmlinux.h` from the BTF file `btf` (raw or ELF; the running
/// kernel's is [`skelgen_runtime::btf::VMLINUX_BTF_PATH`]), only if its
/// contents changed, and returns the header's path.
pub fn write_vmlinux_h(
    btf: &std::path::Path,
    dir: &std::path::Path,
) -> Result<std::path::PathBuf, VmlinuxHError> {
    let parsed = crate::btf_file::read_btf(btf, None)?;
    let text = dump_c(&parsed, &DumpOptions::new()).map_err(|source| VmlinuxHError::Dump {
        path: btf.to_path_buf(),
        source,
    })?;
    let path = dir.join("vmlinux.h");
    std::fs::create_dir_all(dir)
        .and_then(|()| crate::write_if_changed(&path, text.as_bytes()))
        .map_err(|source| VmlinuxHError::Write {
            path: path.clone(),
            source,
        })?;
    Ok(path)
}
