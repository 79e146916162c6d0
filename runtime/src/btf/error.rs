//! BTF errors: every variant says where (byte offset, type id, section) and
//! what was expected.

use std::path::PathBuf;

use super::Kind;

/// An error reading or patching BTF or `.BTF.ext`.
///
/// Byte offsets are from the start of the whole blob unless the variant says
/// otherwise (type offsets are from the start of the type section, as
/// `bpftool btf dump` and the kernel verifier log count them).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BtfError {
    /// Fewer bytes than a fixed-size structure needs.
    #[error("{what} at byte offset {offset} needs {needed} bytes, but only {len} are available")]
    Truncated {
        /// What was being read (`"BTF header"`, `".BTF.ext func_info block"`...).
        what: &'static str,
        /// Where it starts.
        offset: usize,
        /// Bytes it needs.
        needed: usize,
        /// Bytes there are from `offset` to the end of the enclosing region.
        len: usize,
    },
    /// The first two bytes are not the BTF magic `0xeB9F`.
    #[error("{what}: bad magic {magic:#06x} at byte offset 0 (expected 0xeb9f)")]
    BadMagic {
        /// `"BTF"` or `".BTF.ext"`.
        what: &'static str,
        /// The magic as read little-endian.
        magic: u16,
    },
    /// The magic is byte-swapped: the data was produced for a big-endian target.
    #[error("{what}: big-endian BTF is not supported (byte-swapped magic 0x9feb)")]
    BigEndian {
        /// `"BTF"` or `".BTF.ext"`.
        what: &'static str,
    },
    /// A version other than 1.
    #[error("{what}: unsupported version {version} at byte offset 2 (expected 1)")]
    BadVersion {
        /// `"BTF"` or `".BTF.ext"`.
        what: &'static str,
        /// The version byte.
        version: u8,
    },
    /// `hdr_len` is smaller than the fixed header or runs past the data.
    #[error("{what}: header length {hdr_len} at byte offset 4 is invalid (need {min}..={len})")]
    BadHeaderLen {
        /// `"BTF"` or `".BTF.ext"`.
        what: &'static str,
        /// The `hdr_len` field.
        hdr_len: u32,
        /// The smallest header this reader accepts.
        min: u32,
        /// Size of the whole blob.
        len: usize,
    },
    /// A section (BTF types/strings, or a `.BTF.ext` subsection) lies outside the data.
    #[error("{section} section at byte offset {offset} with length {size} runs past the end of the {len}-byte data")]
    SectionOutOfBounds {
        /// `"type"`, `"string"`, `"func_info"`...
        section: &'static str,
        /// Absolute start of the section.
        offset: u64,
        /// Its length.
        size: u32,
        /// Size of the whole blob.
        len: usize,
    },
    /// A section offset that must be 4-byte aligned is not.
    #[error(
        "{section} section offset {offset} (from the end of the header) is not a multiple of 4"
    )]
    Misaligned {
        /// The section.
        section: &'static str,
        /// The offset field.
        offset: u32,
    },
    /// The type and string sections share bytes.
    #[error("type section (bytes {type_start}..{type_end}) overlaps string section (bytes {str_start}..{str_end})")]
    SectionsOverlap {
        /// Absolute start of the type section.
        type_start: u64,
        /// Absolute end of the type section.
        type_end: u64,
        /// Absolute start of the string section.
        str_start: u64,
        /// Absolute end of the string section.
        str_end: u64,
    },
    /// The string section does not start or end with NUL (or is empty).
    #[error("string section at byte offset {offset} with length {size}: {reason}")]
    BadStringSection {
        /// Absolute start of the string section.
        offset: u64,
        /// Its length.
        size: u32,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A type header with a kind this reader does not know (0 or above 19).
    #[error("type id {id} at byte offset {offset} of the type section has unknown kind {kind}")]
    UnknownKind {
        /// The type id the header would have.
        id: u32,
        /// Offset of its header from the start of the type section.
        offset: u32,
        /// The raw kind bits.
        kind: u32,
    },
    /// The type section ends inside a type header.
    #[error("type id {id} at byte offset {offset} of the type section: its 12-byte header is cut off after {available} bytes")]
    TypeHeaderTruncated {
        /// The type id the header would have.
        id: u32,
        /// Offset of the header from the start of the type section.
        offset: u32,
        /// Bytes left in the type section.
        available: u32,
    },
    /// A type whose trailing records (`vlen` times the record size) run past the type section.
    #[error("type id {id} ({kind}, vlen {vlen}) at byte offset {offset} of the type section needs {needed} bytes, but only {available} remain")]
    TypeTruncated {
        /// The type id.
        id: u32,
        /// Its kind.
        kind: Kind,
        /// Its `vlen`.
        vlen: u32,
        /// Offset of its header from the start of the type section.
        offset: u32,
        /// Header plus records.
        needed: u64,
        /// Bytes left in the type section from `offset`.
        available: u32,
    },
    /// A type record that no longer fits its section (internal inconsistency,
    /// reported rather than panicking).
    #[error("type id {id} at byte offset {offset} runs past the {type_len}-byte type section")]
    TypeOutOfSection {
        /// The type.
        id: u32,
        /// Offset of its header from the start of the type section.
        offset: u32,
        /// Length of the type section.
        type_len: usize,
    },
    /// More types than 32-bit type ids can number.
    #[error("too many types: type id {id} does not fit in 32 bits")]
    TooManyTypes {
        /// The first id that overflowed (saturated).
        id: u32,
    },
    /// A type id past the last type.
    #[error("type id {id} is out of range (this BTF has ids 0..{len}){}", referenced_from_suffix(.referenced_from))]
    BadTypeId {
        /// The id asked for.
        id: u32,
        /// Number of ids (including void and base types).
        len: u32,
        /// The type whose record named `id`, when known.
        referenced_from: Option<u32>,
    },
    /// A string offset past the end of the string section.
    #[error("string offset {offset} is outside the string section ({len} bytes)")]
    StringOutOfRange {
        /// The name offset.
        offset: u32,
        /// Total string bytes (base and split).
        len: u32,
    },
    /// A string that runs to the end of the section without a NUL.
    #[error("string at offset {offset} is not NUL-terminated")]
    UnterminatedString {
        /// The name offset.
        offset: u32,
    },
    /// A string that is not UTF-8.
    #[error("string at offset {offset} is not valid UTF-8")]
    InvalidUtf8 {
        /// The name offset.
        offset: u32,
    },
    /// A chain of typedefs, modifiers, arrays or vars that did not end within
    /// the hop limit: a reference cycle or absurd nesting.
    #[error(
        "resolving type id {start}: gave up at type id {id} after {hops} hops (reference cycle?)"
    )]
    Cycle {
        /// Where the chain gave up.
        id: u32,
        /// Where the resolution started.
        start: u32,
        /// The hop limit.
        hops: u32,
    },
    /// `size_of` on a type without a size (void, func, func proto, fwd, decl tag).
    #[error("type id {id} ({kind}) has no size")]
    NotSized {
        /// The unsized type.
        id: u32,
        /// Its kind.
        kind: Kind,
    },
    /// `align_of` on a type without an alignment, or a size that has none.
    #[error("type id {id} ({kind}) has no alignment")]
    NoAlignment {
        /// The type.
        id: u32,
        /// Its kind.
        kind: Kind,
    },
    /// An array size (nelems times element size) past `u32::MAX`.
    #[error("size of type id {id} overflows 32 bits")]
    SizeOverflow {
        /// The array or chain start.
        id: u32,
    },
    /// A patcher applied to a type of the wrong kind.
    #[error("type id {id} is a {found}, expected a {expected}")]
    WrongKind {
        /// The type.
        id: u32,
        /// The kind the operation needs.
        expected: Kind,
        /// The kind it has.
        found: Kind,
    },
    /// A patcher applied to a type of the base BTF, which a split BTF shares read-only.
    #[error("type id {id} belongs to the base BTF (ids below {first_own_id}) and cannot be patched here")]
    BaseType {
        /// The type.
        id: u32,
        /// The first id of the split BTF's own types.
        first_own_id: u32,
    },
    /// A record index past `vlen`.
    #[error("type id {id} has {len} records, index {index} is out of range")]
    RecordIndex {
        /// The type.
        id: u32,
        /// The index asked for.
        index: usize,
        /// Its `vlen`.
        len: usize,
    },
    /// `set_type_raw` would change the size of the type's trailing records,
    /// which would move every later type.
    #[error("type id {id}: new header ({new_kind}, vlen {new_vlen}) needs {new_size} bytes but the type occupies {old_size}")]
    RecordSizeChange {
        /// The type.
        id: u32,
        /// The kind of the new header.
        new_kind: Kind,
        /// The `vlen` of the new header.
        new_vlen: u32,
        /// Bytes the old type occupies.
        old_size: u64,
        /// Bytes the new header implies.
        new_size: u64,
    },
    /// `append_type_raw` with words that are not one well-formed type.
    #[error("appended type ({words} words): {reason}")]
    BadNewType {
        /// Number of words given.
        words: usize,
        /// What is wrong.
        reason: String,
    },
    /// A linkage value that does not fit its field.
    #[error("type id {id}: linkage {linkage} does not fit in the 16-bit vlen field")]
    LinkageOutOfRange {
        /// The type.
        id: u32,
        /// The raw linkage.
        linkage: u32,
    },
    /// A `.BTF.ext` record size below the minimum for its subsection, or not a multiple of 4.
    #[error(".BTF.ext {section} at byte offset {offset}: record size {size} is invalid (at least {min}, a multiple of 4)")]
    ExtRecordSize {
        /// `"func_info"`, `"line_info"` or `"core_relo"`.
        section: &'static str,
        /// Absolute offset of the record size field.
        offset: usize,
        /// The record size.
        size: u32,
        /// The smallest record this reader accepts.
        min: u32,
    },
    /// A `.BTF.ext` block whose `num_info` records do not fit (or is zero).
    #[error(".BTF.ext {section} block {block} at byte offset {offset}: {num_info} records of {rec_size} bytes do not fit in the {remaining} bytes left")]
    ExtBadCount {
        /// `"func_info"`, `"line_info"` or `"core_relo"`.
        section: &'static str,
        /// Index of the per-ELF-section block.
        block: usize,
        /// Absolute offset of the block header.
        offset: usize,
        /// The `num_info` field.
        num_info: u32,
        /// The subsection's record size.
        rec_size: u32,
        /// Bytes left in the subsection after the block header.
        remaining: usize,
    },
    /// A `.BTF.ext` block with no records (libbpf rejects these too).
    #[error(".BTF.ext {section} block {block} at byte offset {offset} has no records")]
    ExtEmptyBlock {
        /// `"func_info"`, `"line_info"` or `"core_relo"`.
        section: &'static str,
        /// Index of the block.
        block: usize,
        /// Absolute offset of the block header.
        offset: usize,
    },
    /// A CO-RE relocation of a kind this reader does not know.
    #[error(".BTF.ext core_relo block {block} (section name offset {sec_name_off}) record {record} at byte offset {offset}: unknown relocation kind {kind}")]
    UnknownCoreReloKind {
        /// Index of the block.
        block: usize,
        /// The block's section name offset in the BTF string table.
        sec_name_off: u32,
        /// Index of the record in the block.
        record: usize,
        /// Absolute offset of the record.
        offset: usize,
        /// The raw kind.
        kind: u32,
    },
    /// Reading a BTF file failed.
    #[error("reading {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

fn referenced_from_suffix(from: &Option<u32>) -> String {
    match from {
        Some(t) => format!(", referenced from type id {t}"),
        None => String::new(),
    }
}
