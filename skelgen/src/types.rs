//! Rust types generated from an object's BTF: the `types` module of a skeleton.
//!
//! [`TypeGen`] turns BTF type ids into Rust type expressions and collects the
//! items they need; [`TypeGen::finish`] emits them, in type-id order, each
//! with compile-time assertions of its size and field offsets against BTF
//! and an `unsafe impl Plain` (the only `unsafe` in the generated code,
//! justified by those assertions).
//!
//! # The mapping
//!
//! | C / BTF | Rust |
//! |---|---|
//! | `struct s` | `#[repr(C)] pub struct s`, explicit `__pad_N: [u8; K]` fields for every gap and for the tail, so size and offsets equal BTF's |
//! | packed layout (a misaligned member, or a size not a multiple of the alignment) | `#[repr(C, packed)]` |
//! | over-aligned layout (a tail larger than the alignment explains) | `#[repr(C, align(N))]` (see `layout` for the inference) |
//! | bitfields | private `__bf_N: [u8; K]` storage per run of overlapping bitfields, `fn f(&self) -> T` / `fn set_f(&mut self, T)`, sign-extended when signed |
//! | `union u` | `#[repr(C, align(N))] pub struct u { __bytes: [u8; size] }` with a safe getter/setter pair per member (copies through `Plain`) |
//! | anonymous member | field `__anon_N` (N counts the parent's unnamed members), type `<parent>__anon_N` |
//! | named member of anonymous type | type `<parent>__<member>` |
//! | `typedef struct { .. } t` | the struct itself is named `t` (no separate alias) |
//! | other anonymous types | `__anon_<type id>`; a DATASEC variable's: `<datasec struct>__<var>` |
//! | `char` (INT with the CHAR encoding, or clang's plain INT named `char`) | `::core::ffi::c_char` |
//! | other ints | `u8`..`u128` / `i8`..`i128` by size and signedness; other sizes `[u8; N]` |
//! | `_Bool` | [`CBool`](skelgen_runtime::CBool) (one byte, any non-zero value true: a BPF program may store 2, which a Rust `bool` cannot hold); `_Bool` bitfields are `bool` getters/setters |
//! | `enum e` / ENUM64 | `#[repr(transparent)] pub struct e(pub u32)` (or `i32`, `u8`, `u64`...) with `impl e { pub const V: Self = ..; }` |
//! | pointers, functions, prototypes | `u64` (BPF pointers are 64-bit) |
//! | `float` / `double` | `f32` / `f64` (other float sizes: `[u8; N]`) |
//! | `T x[N]` | `[T; N]` (flexible arrays: `[T; 0]`) |
//! | `typedef T name` | `pub type name = T;` (elided when it names a struct/union/enum of the same name) |
//! | FWD (opaque) | `pub struct name { _opaque: [u8; 0] }` when named through a typedef; an error when used by value |
//!
//! Every generated type derives `Clone`, `Copy` and `PartialEq`, implements
//! `Debug` (named fields and bitfield/union getters; no padding) and
//! `Default` (all zeroes, through [`Plain::zeroed`](skelgen_runtime::Plain::zeroed)).
//!
//! # Names
//!
//! C names are kept. Rust keywords become raw identifiers (`r#type`);
//! `self`, `Self`, `super`, `crate` and `_`, which cannot be raw, get a `_`
//! suffix (`self_`). No generated type shadows a Rust primitive or prelude
//! name: a struct, union or enum named `bool`, `u8`, `str`, `Option`... gets
//! a `_` suffix (`bool_`), and a typedef of such a name (`typedef _Bool
//! bool`, `typedef __u32 u32`, common in vmlinux.h) is not emitted: its uses
//! are written as the type it finally aliases (`CBool`, `u32`).
//! Collisions (a struct and an unrelated typedef of the same
//! name, two static variables of the same name...) are resolved by suffixes
//! `_1`, `_2`... given in type-id order: named types first, then anonymous
//! types in the order of their named parents, so the names do not depend on
//! the order of [`TypeGen::type_ref`] calls. Generating twice gives
//! identical output.
//!
//! # Enum signedness
//!
//! BTF from clang < 15 records no enum signedness (kind_flag is never set,
//! and there is no ENUM64). When no ENUM in the object has kind_flag set and
//! there is no ENUM64, an ENUM of 4 bytes with values at or above 2^31 is
//! ambiguous: if all such values are at or above `0xffff_0000` they are taken
//! as small negative numbers (`0xffff_fffb` = -5) and the enum is generated
//! as `i32`, otherwise as `u32`; a warning says which. An ENUM of 8 bytes
//! (clang < 15's 64-bit enum) also gets a warning: its values were truncated
//! to 32 bits by the compiler.

mod emit;
mod layout;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::quote;
use skelgen_runtime::btf::{Btf, BtfError, Kind, TypeKind};

use layout::{Layouts, MAX_DEPTH};

/// An error generating Rust types from BTF.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenError {
    /// The BTF itself could not be read at this type.
    #[error("reading BTF type {id}")]
    Btf {
        /// The type being generated.
        id: u32,
        /// What the reader found.
        #[source]
        source: BtfError,
    },
    /// A type without a size or layout (void, FWD, function) used by value.
    #[error("BTF type {id} ({kind}) has no size or layout, so it cannot be used by value")]
    NotByValue {
        /// The type.
        id: u32,
        /// Its BTF kind.
        kind: &'static str,
    },
    /// A member that cannot be laid out.
    #[error("BTF type {id}, member #{index} `{member}`: {reason}")]
    BadMember {
        /// The struct or union.
        id: u32,
        /// Index of the member.
        index: usize,
        /// Its name (empty if anonymous).
        member: String,
        /// What is wrong.
        reason: String,
    },
    /// Members (or variables) that overlap in a struct (or DATASEC).
    #[error("BTF type {id}: `{member}` at byte offset {offset} overlaps what precedes it (up to byte {end})")]
    Overlap {
        /// The struct or DATASEC.
        id: u32,
        /// The member or variable.
        member: String,
        /// Its byte offset.
        offset: u32,
        /// Where the previous member ended.
        end: u64,
    },
    /// Members (or variables) that end past the type's size.
    #[error("BTF type {id}: members end at byte {end}, past its size of {size} bytes")]
    TooSmall {
        /// The struct, union or DATASEC.
        id: u32,
        /// Its BTF size.
        size: u32,
        /// Where the members end.
        end: u64,
    },
    /// A bitfield whose type is not an integer or enum of 1, 2, 4 or 8 bytes.
    #[error("BTF type {id} ({kind}) cannot be the type of a bitfield (expected an INT or ENUM of 1, 2, 4 or 8 bytes)")]
    BadBitfieldType {
        /// The bitfield's type, after modifiers and typedefs.
        id: u32,
        /// Its kind.
        kind: &'static str,
    },
    /// An enum of a size Rust has no integer for.
    #[error("BTF type {id}: an enum of {size} bytes has no Rust integer representation (expected 1, 2, 4 or 8)")]
    BadEnumSize {
        /// The enum.
        id: u32,
        /// Its size.
        size: u32,
    },
    /// [`TypeGen::datasec`] on a type that is not a DATASEC.
    #[error("BTF type {id} is a {kind}, expected a DATASEC")]
    NotDatasec {
        /// The type.
        id: u32,
        /// Its kind.
        kind: &'static str,
    },
    /// A chain of references or of nested composites too deep (or cyclic).
    #[error("BTF type {id}: references nest deeper than {limit} levels (a cycle?)")]
    TooDeep {
        /// Where the walk gave up.
        id: u32,
        /// The limit.
        limit: u32,
    },
}

/// One variable of a DATASEC struct made by [`TypeGen::datasec`].
#[derive(Clone, Debug)]
pub struct DatasecField {
    /// The Rust field name (the variable's name, escaped and deduplicated).
    pub ident: Ident,
    /// The variable's C name.
    pub var_name: String,
    /// Byte offset in the section.
    pub offset: u32,
    /// Size in bytes (of the variable's type).
    pub size: u32,
    /// Its Rust type, usable from outside the `types` module.
    pub ty: TokenStream,
}

/// Generator of the `types` module for one BTF.
pub struct TypeGen<'a> {
    btf: &'a Btf,
    rt: TokenStream,
    module: TokenStream,
    layouts: Layouts<'a>,
    /// Type id -> Rust name, for the types emitted as items.
    names: HashMap<u32, String>,
    /// Every name given in the module.
    taken: HashSet<String>,
    /// Typedefs emitted as the type they name (id -> that type's id).
    aliases: HashMap<u32, u32>,
    /// Typedefs named like a Rust primitive or prelude item (`bool`, `u8`):
    /// not emitted; uses are written as the type they finally alias.
    transparent: HashSet<u32>,
    /// Ids to emit.
    requested: BTreeSet<u32>,
    /// DATASEC structs, by (datasec id, call order).
    datasecs: BTreeMap<(u32, usize), TokenStream>,
    /// Whether the BTF records enum signedness (some ENUM kind_flag or ENUM64).
    enum_sign_recorded: bool,
    warnings: Vec<String>,
}

/// Rust keywords (strict, reserved and 2018+/2024 ones) that need `r#`.
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "do", "dyn",
    "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let",
    "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref", "return",
    "static", "struct", "trait", "true", "try", "type", "typeof", "unsafe", "unsized", "use",
    "virtual", "where", "while", "yield",
];

/// Keywords that cannot be raw identifiers.
const NOT_RAW: &[&str] = &["self", "Self", "super", "crate", "_"];

/// Names a generated type must not take: Rust's primitive types and the
/// items of the standard prelude. A C type of such a name would shadow them
/// for every user of `types::*` (`pub type bool = u8` turns `x = true` into a
/// type error), so struct/union/enum names get a `_` suffix (`bool_`) and
/// typedefs are not emitted at all (see [`TypeGen`]'s `transparent`).
const SHADOWING: &[&str] = &[
    // primitive types
    "bool",
    "char",
    "str",
    "u8",
    "u16",
    "u32",
    "u64",
    "u128",
    "usize",
    "i8",
    "i16",
    "i32",
    "i64",
    "i128",
    "isize",
    "f16",
    "f32",
    "f64",
    "f128",
    // the 2021 prelude (types, traits and the variants it imports)
    "Option",
    "Some",
    "None",
    "Result",
    "Ok",
    "Err",
    "Box",
    "String",
    "Vec",
    "ToString",
    "ToOwned",
    "Copy",
    "Clone",
    "Send",
    "Sync",
    "Sized",
    "Unpin",
    "Drop",
    "Fn",
    "FnMut",
    "FnOnce",
    "drop",
    "PartialEq",
    "PartialOrd",
    "Eq",
    "Ord",
    "AsRef",
    "AsMut",
    "Into",
    "From",
    "Default",
    "Iterator",
    "Extend",
    "IntoIterator",
    "DoubleEndedIterator",
    "ExactSizeIterator",
    "TryFrom",
    "TryInto",
    "FromIterator",
];

/// The Rust name of a C type name: [`sanitize`]d, with a `_` suffix when it
/// would shadow a primitive or prelude name (`bool` -> `bool_`).
fn type_name(name: &str) -> String {
    let mut s = sanitize(name);
    if SHADOWING.contains(&s.as_str()) {
        s.push('_');
    }
    s
}

/// Whether a C typedef name would shadow a primitive or prelude name (such
/// typedefs are written as what they alias).
fn shadows(name: &str) -> bool {
    SHADOWING.contains(&sanitize(name).as_str())
}

/// A C name made into the text of a Rust identifier: characters outside
/// `[A-Za-z0-9_]` become `_`, a leading digit gets a `_` prefix, and the
/// keywords that cannot be raw get a `_` suffix. (Raw `r#` is added by
/// [`ident`].)
pub fn sanitize(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    if NOT_RAW.contains(&s.as_str()) {
        s.push('_');
    }
    s
}

/// The identifier for a sanitized name: raw (`r#type`) for keywords.
pub fn ident(name: &str) -> Ident {
    if KEYWORDS.contains(&name) {
        Ident::new_raw(name, Span::call_site())
    } else {
        Ident::new(name, Span::call_site())
    }
}

/// `base`, or `base_1`, `base_2`... : the first not in `taken`, which it
/// joins.
pub(crate) fn unique(taken: &mut HashSet<String>, base: &str) -> String {
    let mut name = base.to_string();
    let mut n = 0u32;
    while taken.contains(&name) {
        n += 1;
        name = format!("{base}_{n}");
    }
    taken.insert(name.clone());
    name
}

impl<'a> TypeGen<'a> {
    /// A generator over `btf`; `runtime` is the path of the runtime crate in
    /// the generated code (normally `::skelgen_runtime`). Names are given to
    /// all named types here (see the module docs).
    pub fn new(btf: &'a Btf, runtime: TokenStream) -> Self {
        let mut g = TypeGen {
            btf,
            rt: runtime,
            module: quote!(types),
            layouts: Layouts::new(btf),
            names: HashMap::new(),
            taken: HashSet::new(),
            aliases: HashMap::new(),
            transparent: HashSet::new(),
            requested: BTreeSet::new(),
            datasecs: BTreeMap::new(),
            enum_sign_recorded: false,
            warnings: Vec::new(),
        };
        g.assign_names();
        g
    }

    /// The path of the generated module as seen by the code that uses
    /// [`TypeGen::type_ref`] and [`TypeGen::datasec`] results (default
    /// `types`, for a `pub mod types` next to that code).
    pub fn with_module_path(mut self, path: TokenStream) -> Self {
        self.module = path;
        self
    }

    fn assign_names(&mut self) {
        let btf = self.btf;
        let mut named_composites = Vec::new();
        for t in btf.types().flatten() {
            match t.kind {
                TypeKind::Enum(e) if e.signed => self.enum_sign_recorded = true,
                TypeKind::Enum64(_) => self.enum_sign_recorded = true,
                _ => {}
            }
            let Ok(name) = btf.name(t.name_off) else {
                continue;
            };
            if name.is_empty() {
                continue;
            }
            match t.kind {
                TypeKind::Struct(_) | TypeKind::Union(_) => {
                    let n = unique(&mut self.taken, &type_name(name));
                    self.names.insert(t.id, n);
                    named_composites.push(t.id);
                }
                TypeKind::Enum(_) | TypeKind::Enum64(_) | TypeKind::Fwd { .. } => {
                    let n = unique(&mut self.taken, &type_name(name));
                    self.names.insert(t.id, n);
                }
                TypeKind::Typedef(target) => {
                    let Ok(r) = btf.skip_mods(target) else {
                        continue;
                    };
                    let Ok(rt) = btf.type_by_id(r) else { continue };
                    let nameable = matches!(
                        rt.kind,
                        TypeKind::Struct(_)
                            | TypeKind::Union(_)
                            | TypeKind::Enum(_)
                            | TypeKind::Enum64(_)
                            | TypeKind::Fwd { .. }
                    );
                    let target_name = btf.name(rt.name_off).unwrap_or("");
                    if nameable && target_name.is_empty() && !self.names.contains_key(&r) {
                        // typedef struct { .. } t: the struct is `t`.
                        let n = unique(&mut self.taken, &type_name(name));
                        self.names.insert(r, n);
                        self.aliases.insert(t.id, r);
                        named_composites.push(r);
                    } else if nameable && target_name == name {
                        // typedef struct t t: one name for both.
                        self.aliases.insert(t.id, r);
                    } else if shadows(name) {
                        // typedef _Bool bool, typedef __u8 u8: written as
                        // `CBool`, `u8`.
                        self.transparent.insert(t.id);
                    } else {
                        let n = unique(&mut self.taken, &sanitize(name));
                        self.names.insert(t.id, n);
                    }
                }
                _ => {}
            }
        }
        for id in named_composites {
            self.name_anonymous_members(id, 0);
        }
    }

    /// Names the anonymous types of `id`'s members after `id` (recursively).
    fn name_anonymous_members(&mut self, id: u32, depth: u32) {
        let btf = self.btf;
        let (Some(parent), Ok(t), true) = (
            self.names.get(&id).cloned(),
            btf.type_by_id(id),
            depth < MAX_DEPTH,
        ) else {
            return;
        };
        let (TypeKind::Struct(c) | TypeKind::Union(c)) = t.kind else {
            return;
        };
        let mut unnamed = 0;
        for m in c.members() {
            let member = btf.name(m.name_off).unwrap_or("");
            let Some(anon) = self.anonymous_target(m.ty) else {
                continue;
            };
            if member.is_empty() {
                let n = unique(&mut self.taken, &format!("{parent}__anon_{unnamed}"));
                unnamed += 1;
                self.names.insert(anon, n);
            } else {
                let n = unique(&mut self.taken, &format!("{parent}__{}", sanitize(member)));
                self.names.insert(anon, n);
            }
            self.name_anonymous_members(anon, depth + 1);
        }
    }

    /// The anonymous, not yet named struct/union/enum that type `id` is
    /// (through modifiers and arrays), if it is one.
    fn anonymous_target(&self, id: u32) -> Option<u32> {
        let mut cur = id;
        for _ in 0..MAX_DEPTH {
            let t = self.btf.type_by_id(cur).ok()?;
            match t.kind {
                TypeKind::Const(n)
                | TypeKind::Volatile(n)
                | TypeKind::Restrict(n)
                | TypeKind::TypeTag(n) => cur = n,
                TypeKind::Array(a) => cur = a.elem_type,
                TypeKind::Struct(_)
                | TypeKind::Union(_)
                | TypeKind::Enum(_)
                | TypeKind::Enum64(_) => {
                    let anonymous = self
                        .btf
                        .name(t.name_off)
                        .map(str::is_empty)
                        .unwrap_or(false);
                    return (anonymous && !self.names.contains_key(&cur)).then_some(cur);
                }
                _ => return None,
            }
        }
        None
    }

    /// A Rust type expression for BTF type `id`, usable from outside the
    /// `types` module (`types::event`, `u32`, `[types::slot; 4]`, `u64` for
    /// pointers). Registers the items it needs for [`TypeGen::finish`].
    pub fn type_ref(&mut self, id: u32) -> Result<TokenStream, GenError> {
        self.register(id)?;
        self.ty(id, true)
    }

    /// Every named STRUCT, UNION, ENUM, ENUM64 and TYPEDEF of the BTF (all of
    /// them, reachable or not: simple, and what a user reading the C source
    /// expects to find). A type that cannot be generated is skipped with a
    /// warning rather than failing the whole module.
    pub fn add_all_named(&mut self) -> Result<(), GenError> {
        let btf = self.btf;
        let mut ids = Vec::new();
        for t in btf.types() {
            let t = t.map_err(|source| GenError::Btf { id: 0, source })?;
            let wanted = matches!(
                t.kind(),
                Kind::Struct | Kind::Union | Kind::Enum | Kind::Enum64 | Kind::Typedef
            );
            if wanted && !btf.name(t.name_off).unwrap_or("").is_empty() {
                ids.push(t.id);
            }
        }
        for id in ids {
            if let Err(e) = self.register(id) {
                let name = btf.type_name(id).unwrap_or("?");
                self.warnings.push(format!(
                    "type `{name}` (BTF type id {id}) skipped: {}",
                    error_chain(&e)
                ));
            }
        }
        Ok(())
    }

    /// Warnings for the user (enum signedness guesses, skipped types).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Makes sure `id` and everything it needs by value can be generated,
    /// then marks them for emission. Nothing is marked if anything fails.
    fn register(&mut self, id: u32) -> Result<(), GenError> {
        let btf = self.btf;
        let mut seen = HashSet::new();
        let mut stack = vec![id];
        let mut items = Vec::new();
        while let Some(cur) = stack.pop() {
            if !seen.insert(cur) || self.requested.contains(&cur) {
                continue;
            }
            let t = btf
                .type_by_id(cur)
                .map_err(|source| GenError::Btf { id: cur, source })?;
            match t.kind {
                TypeKind::Const(n)
                | TypeKind::Volatile(n)
                | TypeKind::Restrict(n)
                | TypeKind::TypeTag(n)
                | TypeKind::Var { ty: n, .. } => stack.push(n),
                TypeKind::Array(a) => stack.push(a.elem_type),
                TypeKind::Typedef(n) => {
                    if !self.aliases.contains_key(&cur) && !self.transparent.contains(&cur) {
                        items.push(cur);
                    }
                    stack.push(n);
                }
                TypeKind::Struct(_) | TypeKind::Union(_) => {
                    let info = self.layouts.composite(cur, 0)?;
                    stack.extend(info.members.iter().map(|m| m.ty));
                    items.push(cur);
                }
                TypeKind::Enum(e) => {
                    enum_prim(cur, e.size, false)?;
                    items.push(cur);
                }
                TypeKind::Enum64(e) => {
                    enum_prim(cur, e.size, e.signed)?;
                    items.push(cur);
                }
                TypeKind::Fwd { .. } => items.push(cur),
                TypeKind::Datasec(_) => {
                    return Err(GenError::NotByValue {
                        id: cur,
                        kind: t.kind().as_str(),
                    })
                }
                _ => {}
            }
        }
        items.sort_unstable();
        for cur in items {
            if !self.names.contains_key(&cur) {
                let n = unique(&mut self.taken, &format!("__anon_{cur}"));
                self.names.insert(cur, n);
            }
            if self.requested.insert(cur) {
                self.enum_warnings(cur);
            }
        }
        Ok(())
    }

    /// Whether enum `id` is generated signed, with the clang < 15 heuristic.
    fn enum_signed(&self, id: u32) -> bool {
        match self.btf.type_by_id(id).map(|t| t.kind) {
            Ok(TypeKind::Enum(e)) => {
                if e.signed {
                    return true;
                }
                if self.enum_sign_recorded || e.size != 4 {
                    return false;
                }
                let high: Vec<u64> = e
                    .values()
                    .map(|v| v.value)
                    .filter(|&v| v >= 1 << 31)
                    .collect();
                !high.is_empty() && high.iter().all(|&v| v >= 0xffff_0000)
            }
            Ok(TypeKind::Enum64(e)) => e.signed,
            _ => false,
        }
    }

    fn enum_warnings(&mut self, id: u32) {
        let Ok(TypeKind::Enum(e)) = self.btf.type_by_id(id).map(|t| t.kind) else {
            return;
        };
        if self.enum_sign_recorded {
            return;
        }
        let name = self.names.get(&id).cloned().unwrap_or_default();
        if e.size == 8 {
            self.warnings.push(format!(
                "enum `{name}` (BTF type id {id}) is an 8-byte ENUM: the compiler (clang < 15) \
                 truncated its values to 32 bits; the constants may be wrong"
            ));
        }
        if e.size == 4 && e.values().any(|v| v.value >= 1 << 31) {
            let how = if self.enum_signed(id) {
                "they look like small negative numbers, so it is generated as i32"
            } else {
                "it is generated as u32"
            };
            self.warnings.push(format!(
                "enum `{name}` (BTF type id {id}) has values >= 2^31 but the BTF does not record \
                 enum signedness (clang < 15): {how}"
            ));
        }
    }

    /// A primitive type's tokens: bare from outside the module, through
    /// `::core::primitive` inside it when a C type took the name.
    fn prim(&self, name: &str, outside: bool) -> TokenStream {
        let i = Ident::new(name, Span::call_site());
        if !outside && self.taken.contains(name) {
            quote!(::core::primitive::#i)
        } else {
            quote!(#i)
        }
    }

    /// The path of a generated item.
    fn item_path(&self, id: u32, outside: bool) -> TokenStream {
        let name = self
            .names
            .get(&id)
            .map(String::as_str)
            .unwrap_or("__unnamed");
        let i = ident(name);
        if outside {
            let m = &self.module;
            quote!(#m::#i)
        } else {
            quote!(#i)
        }
    }

    /// The Rust type of BTF type `id`, from inside (`outside == false`) or
    /// outside the module. `id` must have been registered.
    fn ty(&self, id: u32, outside: bool) -> Result<TokenStream, GenError> {
        let btf = self.btf;
        let mut cur = id;
        let mut dims = Vec::new();
        // Past a transparent typedef (`u32`), named typedefs (`__u32`) are
        // skipped too, so that `u32` is written `u32`.
        let mut through_typedefs = false;
        for _ in 0..MAX_DEPTH {
            let t = btf
                .type_by_id(cur)
                .map_err(|source| GenError::Btf { id: cur, source })?;
            let base = match t.kind {
                TypeKind::Const(n)
                | TypeKind::Volatile(n)
                | TypeKind::Restrict(n)
                | TypeKind::TypeTag(n)
                | TypeKind::Var { ty: n, .. } => {
                    cur = n;
                    continue;
                }
                TypeKind::Typedef(n) => match self.aliases.get(&cur) {
                    Some(&target) => self.item_path(target, outside),
                    None if !through_typedefs && self.names.contains_key(&cur) => {
                        self.item_path(cur, outside)
                    }
                    None => {
                        through_typedefs |= self.transparent.contains(&cur);
                        cur = n;
                        continue;
                    }
                },
                TypeKind::Array(a) => {
                    dims.push(Literal::usize_unsuffixed(a.nelems as usize));
                    cur = a.elem_type;
                    continue;
                }
                TypeKind::Void => quote!(()),
                TypeKind::Int(i) => {
                    let name = btf.name(t.name_off).unwrap_or("");
                    if i.bool {
                        let rt = &self.rt;
                        quote!(#rt::CBool)
                    } else if i.char || (i.size == 1 && name == "char") {
                        quote!(::core::ffi::c_char)
                    } else if is_prim_int(i.size) {
                        let p = format!("{}{}", if i.signed { 'i' } else { 'u' }, i.size * 8);
                        self.prim(&p, outside)
                    } else {
                        let n = Literal::usize_unsuffixed(i.size as usize);
                        let u8t = self.prim("u8", outside);
                        quote!([#u8t; #n])
                    }
                }
                TypeKind::Float { size: 4 } => self.prim("f32", outside),
                TypeKind::Float { size: 8 } => self.prim("f64", outside),
                TypeKind::Float { size } => {
                    let n = Literal::usize_unsuffixed(size as usize);
                    let u8t = self.prim("u8", outside);
                    quote!([#u8t; #n])
                }
                TypeKind::Ptr(_) | TypeKind::Func { .. } | TypeKind::FuncProto(_) => {
                    self.prim("u64", outside)
                }
                TypeKind::Struct(_)
                | TypeKind::Union(_)
                | TypeKind::Enum(_)
                | TypeKind::Enum64(_)
                | TypeKind::Fwd { .. } => self.item_path(cur, outside),
                TypeKind::Datasec(_) | TypeKind::DeclTag { .. } => {
                    return Err(GenError::NotByValue {
                        id: cur,
                        kind: t.kind().as_str(),
                    })
                }
            };
            return Ok(dims
                .iter()
                .rev()
                .fold(base, |inner, n| quote!([#inner; #n])));
        }
        Err(GenError::TooDeep {
            id,
            limit: MAX_DEPTH,
        })
    }

    /// A struct `types::<rust_name>` for DATASEC `datasec_id`: one field per
    /// variable (static and hidden ones included, as bpftool does), named by
    /// the variable's name (escaped, deduplicated), explicit padding between
    /// and after them. Entries that are not VARs (kfunc FUNCs in `.ksyms`)
    /// and VARs of type `void` (typeless ksyms) are skipped: they have no
    /// bytes.
    ///
    /// Size: the DATASEC's size (or the end of its last variable if the size
    /// was not fixed up), rounded up to the struct's alignment exactly as C's
    /// `sizeof` rounds bpftool's skeleton structs (`.data` of 264 bytes with
    /// a 16-aligned variable gives a 272-byte struct); the struct's
    /// `SECTION_SIZE` const holds the unrounded size. Copy section bytes in
    /// with `as_bytes_mut()[..SECTION_SIZE]`. Only if a variable is
    /// misaligned for its type is the struct `#[repr(C, packed)]` at exactly
    /// the section size (its fields must then be read by value).
    ///
    /// The returned path is authoritative: `rust_name` gets a `_N` suffix if
    /// a C type already took it.
    pub fn datasec(
        &mut self,
        datasec_id: u32,
        rust_name: &str,
    ) -> Result<(TokenStream, Vec<DatasecField>), GenError> {
        let out = emit::datasec(self, datasec_id, rust_name)?;
        self.add_pointees(datasec_id);
        Ok(out)
    }

    /// Registers what the section's pointer variables point to: libbpf-tools
    /// keep a `struct event` a perf or ring buffer carries in BTF with
    /// `struct event *unused __attribute__((unused));`, and the Rust side
    /// needs that type to decode samples, though the variable itself is a
    /// `u64`. Best effort: a pointee that cannot be generated (a FWD, a
    /// function) is left out.
    fn add_pointees(&mut self, datasec_id: u32) {
        let btf = self.btf;
        let Ok(TypeKind::Datasec(d)) = btf.type_by_id(datasec_id).map(|t| t.kind) else {
            return;
        };
        let pointees: Vec<u32> = d
            .vars()
            .filter_map(|v| match btf.type_by_id(v.ty).ok()?.kind {
                TypeKind::Var { ty, .. } => Some(ty),
                _ => None,
            })
            .filter_map(|ty| {
                match btf
                    .type_by_id(btf.skip_mods_and_typedefs(ty).ok()?)
                    .ok()?
                    .kind
                {
                    TypeKind::Ptr(target) => Some(target),
                    _ => None,
                }
            })
            .collect();
        for target in pointees {
            let named = btf
                .skip_mods_and_typedefs(target)
                .ok()
                .and_then(|t| btf.type_by_id(t).ok());
            if let Some(t) = named {
                if matches!(
                    t.kind,
                    TypeKind::Struct(_)
                        | TypeKind::Union(_)
                        | TypeKind::Enum(_)
                        | TypeKind::Enum64(_)
                ) {
                    let _ = self.register(target);
                }
            }
        }
    }

    /// The contents of `pub mod types { ... }`: inner `#![allow(...)]`
    /// attributes, then the items in type-id order, then the DATASEC structs.
    pub fn finish(self) -> Result<TokenStream, GenError> {
        let (inner, units) = self.finish_units()?;
        Ok(quote!(#inner #(#units)*))
    }

    /// [`finish`](Self::finish) in parts: the inner attributes, and one
    /// token stream per unit (a type's items, or a DATASEC struct's), in
    /// order, for formatting units apart.
    pub(crate) fn finish_units(mut self) -> Result<(TokenStream, Vec<TokenStream>), GenError> {
        let mut units = Vec::with_capacity(self.requested.len() + self.datasecs.len());
        for id in std::mem::take(&mut self.requested) {
            units.push(emit::item(&mut self, id)?);
        }
        units.extend(std::mem::take(&mut self.datasecs).into_values());
        let inner = quote! {
            #![allow(
                non_camel_case_types,
                non_snake_case,
                non_upper_case_globals,
                dead_code,
                missing_docs,
                unsafe_code,
                clippy::all,
                clippy::undocumented_unsafe_blocks
            )]
        };
        Ok((inner, units))
    }
}

/// Whether an INT of this size maps to a Rust integer primitive.
fn is_prim_int(size: u32) -> bool {
    layout::is_prim_size(size)
}

/// The Rust integer behind an enum of `size` bytes.
fn enum_prim(id: u32, size: u32, signed: bool) -> Result<&'static str, GenError> {
    Ok(match (size, signed) {
        (1, false) => "u8",
        (1, true) => "i8",
        (2, false) => "u16",
        (2, true) => "i16",
        (4, false) => "u32",
        (4, true) => "i32",
        (8, false) => "u64",
        (8, true) => "i64",
        _ => return Err(GenError::BadEnumSize { id, size }),
    })
}

/// An error and its sources, `: `-separated.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
