//! Borrowed views of BTF types. A [`Type`] is decoded from bytes the reader
//! has already bounds-checked (its header and its `vlen` trailing records),
//! so the views here index nothing that can be out of range.

/// The 19 BTF kinds (plus `Void`, the implicit type id 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
#[allow(missing_docs)] // The variants are the kernel's BTF_KIND_* names.
pub enum Kind {
    /// Type id 0 (raw kind 0 is `BTF_KIND_UNKN`, never valid in a type header).
    Void = 0,
    Int = 1,
    Ptr = 2,
    Array = 3,
    Struct = 4,
    Union = 5,
    Enum = 6,
    Fwd = 7,
    Typedef = 8,
    Volatile = 9,
    Const = 10,
    Restrict = 11,
    Func = 12,
    FuncProto = 13,
    Var = 14,
    Datasec = 15,
    Float = 16,
    DeclTag = 17,
    TypeTag = 18,
    Enum64 = 19,
}

impl Kind {
    /// The kind for the raw `info` bits 24..29, if it is one of the known kinds.
    pub fn from_raw(raw: u32) -> Option<Kind> {
        use Kind::*;
        Some(match raw {
            0 => Void,
            1 => Int,
            2 => Ptr,
            3 => Array,
            4 => Struct,
            5 => Union,
            6 => Enum,
            7 => Fwd,
            8 => Typedef,
            9 => Volatile,
            10 => Const,
            11 => Restrict,
            12 => Func,
            13 => FuncProto,
            14 => Var,
            15 => Datasec,
            16 => Float,
            17 => DeclTag,
            18 => TypeTag,
            19 => Enum64,
            _ => return None,
        })
    }

    /// The kernel's name for the kind (`BTF_KIND_STRUCT` -> `"STRUCT"`).
    pub fn as_str(self) -> &'static str {
        use Kind::*;
        match self {
            Void => "VOID",
            Int => "INT",
            Ptr => "PTR",
            Array => "ARRAY",
            Struct => "STRUCT",
            Union => "UNION",
            Enum => "ENUM",
            Fwd => "FWD",
            Typedef => "TYPEDEF",
            Volatile => "VOLATILE",
            Const => "CONST",
            Restrict => "RESTRICT",
            Func => "FUNC",
            FuncProto => "FUNC_PROTO",
            Var => "VAR",
            Datasec => "DATASEC",
            Float => "FLOAT",
            DeclTag => "DECL_TAG",
            TypeTag => "TYPE_TAG",
            Enum64 => "ENUM64",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One type, borrowed from a [`super::Btf`].
#[derive(Clone, Copy, Debug)]
pub struct Type<'a> {
    /// The type id.
    pub id: u32,
    /// Offset of the name in the string table (0: anonymous).
    pub name_off: u32,
    /// The kind-specific part.
    pub kind: TypeKind<'a>,
}

impl Type<'_> {
    /// The kind of this type.
    pub fn kind(&self) -> Kind {
        self.kind.kind()
    }
}

/// The kind-specific part of a type.
#[derive(Clone, Copy, Debug)]
pub enum TypeKind<'a> {
    /// Type id 0.
    Void,
    /// `BTF_KIND_INT`.
    Int(Int),
    /// Pointer to the type id.
    Ptr(u32),
    /// `BTF_KIND_ARRAY`.
    Array(Array),
    /// `BTF_KIND_STRUCT`.
    Struct(Composite<'a>),
    /// `BTF_KIND_UNION`.
    Union(Composite<'a>),
    /// `BTF_KIND_ENUM`.
    Enum(Enum<'a>),
    /// `BTF_KIND_ENUM64`.
    Enum64(Enum64<'a>),
    /// Forward declaration of a struct or union.
    Fwd {
        /// `kind_flag`: a union rather than a struct.
        is_union: bool,
    },
    /// Typedef of the type id.
    Typedef(u32),
    /// `volatile` of the type id.
    Volatile(u32),
    /// `const` of the type id.
    Const(u32),
    /// `restrict` of the type id.
    Restrict(u32),
    /// `btf_type_tag` on the type id.
    TypeTag(u32),
    /// A function.
    Func {
        /// Its `FUNC_PROTO` type id.
        proto: u32,
        /// Its linkage (stored in `vlen`).
        linkage: FuncLinkage,
    },
    /// A function signature.
    FuncProto(FuncProto<'a>),
    /// A variable.
    Var {
        /// Its type id.
        ty: u32,
        /// Its linkage.
        linkage: VarLinkage,
    },
    /// A data section (`.data`, `.bss`, `.rodata`, `.kconfig`, `.ksyms`...).
    Datasec(Datasec<'a>),
    /// A floating-point type.
    Float {
        /// Size in bytes.
        size: u32,
    },
    /// `btf_decl_tag` on a type, member or parameter.
    DeclTag {
        /// The tagged type id.
        target: u32,
        /// Member or parameter index, -1 for the type itself.
        component_idx: i32,
    },
}

impl TypeKind<'_> {
    /// The kind tag.
    pub fn kind(&self) -> Kind {
        match self {
            TypeKind::Void => Kind::Void,
            TypeKind::Int(_) => Kind::Int,
            TypeKind::Ptr(_) => Kind::Ptr,
            TypeKind::Array(_) => Kind::Array,
            TypeKind::Struct(_) => Kind::Struct,
            TypeKind::Union(_) => Kind::Union,
            TypeKind::Enum(_) => Kind::Enum,
            TypeKind::Enum64(_) => Kind::Enum64,
            TypeKind::Fwd { .. } => Kind::Fwd,
            TypeKind::Typedef(_) => Kind::Typedef,
            TypeKind::Volatile(_) => Kind::Volatile,
            TypeKind::Const(_) => Kind::Const,
            TypeKind::Restrict(_) => Kind::Restrict,
            TypeKind::TypeTag(_) => Kind::TypeTag,
            TypeKind::Func { .. } => Kind::Func,
            TypeKind::FuncProto(_) => Kind::FuncProto,
            TypeKind::Var { .. } => Kind::Var,
            TypeKind::Datasec(_) => Kind::Datasec,
            TypeKind::Float { .. } => Kind::Float,
            TypeKind::DeclTag { .. } => Kind::DeclTag,
        }
    }

    /// The type this one refers to, for the kinds that refer to exactly one
    /// (pointers, modifiers, typedefs, vars, funcs, decl tags).
    pub fn referenced(&self) -> Option<u32> {
        match *self {
            TypeKind::Ptr(t)
            | TypeKind::Typedef(t)
            | TypeKind::Volatile(t)
            | TypeKind::Const(t)
            | TypeKind::Restrict(t)
            | TypeKind::TypeTag(t) => Some(t),
            TypeKind::Var { ty, .. } => Some(ty),
            TypeKind::Func { proto, .. } => Some(proto),
            TypeKind::DeclTag { target, .. } => Some(target),
            TypeKind::Array(a) => Some(a.elem_type),
            _ => None,
        }
    }
}

/// `BTF_KIND_INT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Int {
    /// Size in bytes.
    pub size: u32,
    /// `BTF_INT_SIGNED`.
    pub signed: bool,
    /// `BTF_INT_CHAR`.
    pub char: bool,
    /// `BTF_INT_BOOL`.
    pub bool: bool,
    /// Bit offset of the value (0 in everything clang emits).
    pub offset: u8,
    /// Number of value bits.
    pub bits: u8,
}

/// `BTF_KIND_ARRAY`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Array {
    /// Element type id.
    pub elem_type: u32,
    /// Index type id (an INT; unused by layout).
    pub index_type: u32,
    /// Number of elements.
    pub nelems: u32,
}

/// Reads the little-endian u32 at `i` (a multiple of 4) of a record slice whose
/// length the reader has checked.
#[inline]
fn word(rec: &[u8], i: usize) -> u32 {
    match rec.get(i..i + 4) {
        Some(b) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        None => 0,
    }
}

/// A struct or union.
#[derive(Clone, Copy, Debug)]
pub struct Composite<'a> {
    /// Size in bytes.
    pub size: u32,
    /// Whether member offsets carry a bitfield size (`kind_flag`).
    pub kflag: bool,
    /// `vlen` records of 12 bytes.
    pub(crate) raw: &'a [u8],
}

/// One member of a struct or union.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    /// Name offset (0 for an anonymous member).
    pub name_off: u32,
    /// Member type id.
    pub ty: u32,
    /// Offset in bits from the start of the struct.
    pub bit_offset: u32,
    /// Bitfield width, 0 for a plain member.
    pub bitfield_size: u32,
}

impl<'a> Composite<'a> {
    /// Builds a view over `raw` (must be `12 * vlen` bytes).
    pub(crate) fn new(size: u32, kflag: bool, raw: &'a [u8]) -> Self {
        Composite { size, kflag, raw }
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.raw.len() / 12
    }

    /// Whether there are no members.
    pub fn is_empty(&self) -> bool {
        self.raw.len() < 12
    }

    /// The members in declaration order.
    pub fn members(&self) -> impl ExactSizeIterator<Item = Member> + 'a {
        let kflag = self.kflag;
        self.raw.chunks_exact(12).map(move |r| {
            let off = word(r, 8);
            let (bit_offset, bitfield_size) = if kflag {
                (off & 0x00ff_ffff, off >> 24)
            } else {
                (off, 0)
            };
            Member {
                name_off: word(r, 0),
                ty: word(r, 4),
                bit_offset,
                bitfield_size,
            }
        })
    }

    /// The member at `index`, if any.
    pub fn member(&self, index: usize) -> Option<Member> {
        self.members().nth(index)
    }
}

/// `BTF_KIND_ENUM` (32-bit values).
#[derive(Clone, Copy, Debug)]
pub struct Enum<'a> {
    /// Size in bytes.
    pub size: u32,
    /// `kind_flag`: values are signed. Clang before 15 never sets it.
    pub signed: bool,
    pub(crate) raw: &'a [u8],
}

/// One enumerator of an [`Enum`] or [`Enum64`], widened to 64 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnumValue {
    /// Name offset of the enumerator.
    pub name_off: u32,
    /// The raw bits; interpret with the enum's `signed` flag.
    pub value: u64,
}

impl<'a> Enum<'a> {
    pub(crate) fn new(size: u32, signed: bool, raw: &'a [u8]) -> Self {
        Enum { size, signed, raw }
    }

    /// Number of enumerators.
    pub fn len(&self) -> usize {
        self.raw.len() / 8
    }

    /// Whether there are no enumerators.
    pub fn is_empty(&self) -> bool {
        self.raw.len() < 8
    }

    /// Enumerators, values sign- or zero-extended to 64 bits.
    pub fn values(&self) -> impl ExactSizeIterator<Item = EnumValue> + 'a {
        let signed = self.signed;
        self.raw.chunks_exact(8).map(move |r| {
            let v = word(r, 4);
            EnumValue {
                name_off: word(r, 0),
                value: if signed {
                    v as i32 as i64 as u64
                } else {
                    v as u64
                },
            }
        })
    }
}

/// `BTF_KIND_ENUM64`.
#[derive(Clone, Copy, Debug)]
pub struct Enum64<'a> {
    /// Size in bytes.
    pub size: u32,
    /// `kind_flag`: values are signed.
    pub signed: bool,
    pub(crate) raw: &'a [u8],
}

impl<'a> Enum64<'a> {
    pub(crate) fn new(size: u32, signed: bool, raw: &'a [u8]) -> Self {
        Enum64 { size, signed, raw }
    }

    /// Number of enumerators.
    pub fn len(&self) -> usize {
        self.raw.len() / 12
    }

    /// Whether there are no enumerators.
    pub fn is_empty(&self) -> bool {
        self.raw.len() < 12
    }

    /// Enumerators.
    pub fn values(&self) -> impl ExactSizeIterator<Item = EnumValue> + 'a {
        self.raw.chunks_exact(12).map(|r| EnumValue {
            name_off: word(r, 0),
            value: (word(r, 4) as u64) | ((word(r, 8) as u64) << 32),
        })
    }
}

/// `BTF_KIND_FUNC_PROTO`.
#[derive(Clone, Copy, Debug)]
pub struct FuncProto<'a> {
    /// Return type id (0: void).
    pub ret: u32,
    pub(crate) raw: &'a [u8],
}

/// One parameter of a [`FuncProto`]; `ty == 0` on the last one marks varargs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Param {
    /// Name offset (0 when unnamed).
    pub name_off: u32,
    /// Parameter type id.
    pub ty: u32,
}

impl<'a> FuncProto<'a> {
    pub(crate) fn new(ret: u32, raw: &'a [u8]) -> Self {
        FuncProto { ret, raw }
    }

    /// Parameters in order.
    pub fn params(&self) -> impl ExactSizeIterator<Item = Param> + 'a {
        self.raw.chunks_exact(8).map(|r| Param {
            name_off: word(r, 0),
            ty: word(r, 4),
        })
    }
}

/// `BTF_KIND_DATASEC`.
#[derive(Clone, Copy, Debug)]
pub struct Datasec<'a> {
    /// Section size in bytes (0 from clang until fixed up).
    pub size: u32,
    pub(crate) raw: &'a [u8],
}

/// One variable of a [`Datasec`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VarSecInfo {
    /// The `VAR` (or `FUNC`, for `.ksyms` kfuncs) type id.
    pub ty: u32,
    /// Offset of the variable in the section.
    pub offset: u32,
    /// Size of the variable.
    pub size: u32,
}

impl<'a> Datasec<'a> {
    pub(crate) fn new(size: u32, raw: &'a [u8]) -> Self {
        Datasec { size, raw }
    }

    /// Number of variables.
    pub fn len(&self) -> usize {
        self.raw.len() / 12
    }

    /// Whether there are no variables.
    pub fn is_empty(&self) -> bool {
        self.raw.len() < 12
    }

    /// The variables, in the order recorded.
    pub fn vars(&self) -> impl ExactSizeIterator<Item = VarSecInfo> + 'a {
        self.raw.chunks_exact(12).map(|r| VarSecInfo {
            ty: word(r, 0),
            offset: word(r, 4),
            size: word(r, 8),
        })
    }
}

/// Linkage of a `BTF_KIND_VAR`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VarLinkage {
    /// `BTF_VAR_STATIC`.
    Static,
    /// `BTF_VAR_GLOBAL_ALLOCATED`.
    GlobalAllocated,
    /// `BTF_VAR_GLOBAL_EXTERN`.
    GlobalExtern,
    /// A value the kernel does not define.
    Other(u32),
}

impl VarLinkage {
    /// From the raw linkage word.
    pub fn from_raw(v: u32) -> Self {
        match v {
            0 => VarLinkage::Static,
            1 => VarLinkage::GlobalAllocated,
            2 => VarLinkage::GlobalExtern,
            v => VarLinkage::Other(v),
        }
    }

    /// The raw linkage word.
    pub fn to_raw(self) -> u32 {
        match self {
            VarLinkage::Static => 0,
            VarLinkage::GlobalAllocated => 1,
            VarLinkage::GlobalExtern => 2,
            VarLinkage::Other(v) => v,
        }
    }
}

/// Linkage of a `BTF_KIND_FUNC` (stored in `vlen`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FuncLinkage {
    /// `BTF_FUNC_STATIC`.
    Static,
    /// `BTF_FUNC_GLOBAL`.
    Global,
    /// `BTF_FUNC_EXTERN`.
    Extern,
    /// A value the kernel does not define.
    Other(u32),
}

impl FuncLinkage {
    /// From the raw `vlen` bits.
    pub fn from_raw(v: u32) -> Self {
        match v {
            0 => FuncLinkage::Static,
            1 => FuncLinkage::Global,
            2 => FuncLinkage::Extern,
            v => FuncLinkage::Other(v),
        }
    }

    /// The raw value stored in `vlen`.
    pub fn to_raw(self) -> u32 {
        match self {
            FuncLinkage::Static => 0,
            FuncLinkage::Global => 1,
            FuncLinkage::Extern => 2,
            FuncLinkage::Other(v) => v,
        }
    }
}
