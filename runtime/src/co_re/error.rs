//! CO-RE errors: [`CoreError`] says which relocation (program, record index,
//! instruction, kind, local type, access string); its [`ReloError`] source
//! says what went wrong with it.

use crate::btf::ext::CoreReloKind;
use crate::btf::{BtfError, Kind};

/// A CO-RE relocation that could not be applied.
///
/// The message names the relocation; the cause is the [`ReloError`] source.
#[derive(Debug, thiserror::Error)]
#[error(
    "program '{prog}': CO-RE relocation #{relo_index} ({kind}) at instruction #{insn_index} \
     (byte offset {insn_off}) of local type id {type_id} ({type_desc}), access \"{access}\""
)]
pub struct CoreError {
    /// The program being relocated.
    pub prog: String,
    /// Index of the record in the program's relocation list.
    pub relo_index: usize,
    /// Byte offset of the instruction from the program start (as given).
    pub insn_off: u32,
    /// `insn_off / 8`: the instruction index the verifier would print.
    pub insn_index: u32,
    /// The relocation kind.
    pub kind: CoreReloKind,
    /// The local type id the access starts from.
    pub type_id: u32,
    /// Its kind and name (`STRUCT task_struct`), or why it has none.
    pub type_desc: String,
    /// The access string (`0:1:2`), or why it could not be read.
    pub access: String,
    /// What went wrong (boxed: keeps `Result<_, CoreError>` small).
    #[source]
    pub source: Box<ReloError>,
}

/// What went wrong with one relocation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReloError {
    /// The access string is not a colon-separated list of decimal indexes
    /// (or not `0` for a type-based relocation).
    #[error("malformed access string: {reason}")]
    AccessString {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// More accessors than libbpf's spec can hold.
    #[error("access string has {len} components, more than the limit of {max}")]
    AccessTooLong {
        /// Components found (or reached while matching).
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A member index past the end of a struct or union.
    #[error("access component {position}: member index {index} is out of range for type id {type_id} ({vlen} members)")]
    MemberIndex {
        /// Position in the access string.
        position: usize,
        /// The index.
        index: u32,
        /// The struct or union.
        type_id: u32,
        /// Its member count.
        vlen: usize,
    },
    /// An array index past the end of a (non-flexible) array.
    #[error("access component {position}: index {index} is out of range for array type id {type_id} of {nelems} elements")]
    ArrayIndex {
        /// Position in the access string.
        position: usize,
        /// The index.
        index: u32,
        /// The array.
        type_id: u32,
        /// Its element count.
        nelems: u32,
    },
    /// An access component applied to a type that is neither a struct, a
    /// union nor an array.
    #[error("access component {position} indexes type id {type_id}, a {kind}: expected a struct, union or array")]
    NotIndexable {
        /// Position in the access string.
        position: usize,
        /// The type.
        type_id: u32,
        /// Its kind.
        kind: Kind,
    },
    /// A member with a name that is empty after all (a name offset of an
    /// empty string).
    #[error("member {index} of type id {type_id} has an empty name")]
    EmptyMemberName {
        /// The struct or union.
        type_id: u32,
        /// The member index.
        index: u32,
    },
    /// An enum value relocation whose type is not an enum.
    #[error("type id {type_id} is a {kind}: an enum value relocation needs an ENUM or ENUM64")]
    NotEnum {
        /// The type (after typedefs and modifiers).
        type_id: u32,
        /// Its kind.
        kind: Kind,
    },
    /// An enumerator index past the end of the enum.
    #[error("enumerator index {index} is out of range for type id {type_id} ({len} enumerators)")]
    EnumIndex {
        /// The index.
        index: u32,
        /// The enum.
        type_id: u32,
        /// Its enumerator count.
        len: usize,
    },
    /// Candidates are found by name; an anonymous local type has none.
    #[error("the local type is anonymous: CO-RE finds target candidates by name")]
    AnonymousType,
    /// A relocation kind that cannot apply to the access (e.g. a bitfield
    /// shift on an array element).
    #[error("relocation kind {kind} cannot be applied to {what}")]
    KindNotApplicable {
        /// The kind.
        kind: CoreReloKind,
        /// What the access designates.
        what: &'static str,
    },
    /// A bitfield that no load of at most 8 bytes covers.
    #[error("bitfield at bit offset {bit_offset} of {bit_size} bits ({byte_size}-byte storage) cannot be read with one load of at most 8 bytes")]
    BitfieldTooWide {
        /// Bit offset of the field.
        bit_offset: u64,
        /// Its width.
        bit_size: u32,
        /// Size of its storage type.
        byte_size: u32,
    },
    /// An offset computation that overflowed (absurd indexes or sizes).
    #[error("{what} overflows")]
    Overflow {
        /// What was being computed.
        what: &'static str,
    },
    /// Two matching target candidates put the field at different offsets.
    #[error("field offset ambiguity: target type id {first_id} puts it at bit {first_bit_offset}, target type id {other_id} at bit {other_bit_offset}")]
    FieldAmbiguity {
        /// The first matching candidate.
        first_id: u32,
        /// Its bit offset.
        first_bit_offset: u64,
        /// A later candidate that disagrees.
        other_id: u32,
        /// Its bit offset.
        other_bit_offset: u64,
    },
    /// Two matching target candidates give different values (or one
    /// poisons and the other does not).
    #[error("relocation decision ambiguity: target type id {first_id} gives {first}, target type id {other_id} gives {other}")]
    ValueAmbiguity {
        /// The first matching candidate.
        first_id: u32,
        /// Its result (`"poison"` or the value).
        first: String,
        /// A later candidate that disagrees.
        other_id: u32,
        /// Its result.
        other: String,
    },
    /// Matching gave up: the BTF nests or branches beyond reason.
    #[error("type matching exceeded its budget ({limit} {what}): BTF too deep or too branchy")]
    TooComplex {
        /// `"levels"` or `"steps"`.
        what: &'static str,
        /// The limit reached.
        limit: u32,
    },
    /// The local (program's) BTF is malformed where the relocation looked.
    #[error("local BTF")]
    LocalBtf {
        /// The cause.
        #[source]
        source: BtfError,
    },
    /// The target BTF is malformed where the relocation looked.
    #[error("target BTF")]
    TargetBtf {
        /// The cause.
        #[source]
        source: BtfError,
    },
    /// `insn_off` is not a multiple of 8.
    #[error("instruction byte offset {insn_off} is not a multiple of 8")]
    InsnUnaligned {
        /// The offset.
        insn_off: u32,
    },
    /// `insn_off` points past the program (or the second slot of an
    /// `ld_imm64` does).
    #[error("instruction #{index} is outside the program ({len} instruction slots)")]
    InsnOutOfRange {
        /// The slot index.
        index: u64,
        /// Slots in the program.
        len: usize,
    },
    /// An instruction of a class CO-RE does not patch.
    #[error("instruction code {code:#04x} cannot be relocated: expected ALU/ALU64 with an immediate, LDX/ST/STX or ld_imm64")]
    UnsupportedInsn {
        /// The opcode.
        code: u8,
    },
    /// An `ld_imm64` whose slots do not have the plain form (src 0, off 0,
    /// second slot zero but for its `imm`).
    #[error("ld_imm64 has an unexpected form (pseudo source, offset or a non-empty second slot)")]
    LdImm64Form,
    /// The instruction does not hold the value the local BTF predicts: the
    /// record points at the wrong instruction.
    #[error(
        "{class} instruction holds {found}, but the local BTF gives {expected} (new value {new})"
    )]
    UnexpectedValue {
        /// `"ALU"`, `"LDX/ST/STX"` or `"ld_imm64"`.
        class: &'static str,
        /// The value in the instruction.
        found: i64,
        /// The value computed from the local BTF.
        expected: u64,
        /// The value computed from the target BTF.
        new: u64,
    },
    /// The new value does not fit the instruction field.
    #[error("new value {value} does not fit the {class} instruction's {field}")]
    ValueTooBig {
        /// `"ALU"` or `"LDX/ST/STX"`.
        class: &'static str,
        /// `"imm"` or `"off"`.
        field: &'static str,
        /// The value.
        value: u64,
    },
    /// A load or store whose access size is not the local field's size, so
    /// it cannot be resized for the target field.
    #[error("LDX/ST/STX accesses {found} bytes, but the local field has {expected}")]
    UnexpectedMemSize {
        /// Bytes the instruction accesses.
        found: u32,
        /// Bytes of the local field.
        expected: u32,
    },
    /// The target field's size is no load size (1, 2, 4 or 8).
    #[error("target field size {size} is not a load/store size (1, 2, 4 or 8 bytes)")]
    BadNewMemSize {
        /// The size.
        size: u32,
    },
}

impl ReloError {
    pub(crate) fn local(source: BtfError) -> ReloError {
        ReloError::LocalBtf { source }
    }

    pub(crate) fn target(source: BtfError) -> ReloError {
        ReloError::TargetBtf { source }
    }
}
