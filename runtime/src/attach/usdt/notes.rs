//! `.note.stapsdt`: the USDT probe sites of an ELF file, with their
//! addresses turned into file offsets.

use object::elf;
use object::read::elf::{FileHeader, ProgramHeader, SectionHeader};
use object::{Endianness, FileKind};

use super::UsdtError;

/// The note type of SystemTap probe descriptors (`NT_STAPSDT`).
const NT_STAPSDT: u32 = 3;

/// One USDT probe site, from a `.note.stapsdt` note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsdtNote {
    /// Provider (`skelgen` of `skelgen:one`).
    pub provider: String,
    /// Probe name.
    pub name: String,
    /// Virtual address of the probe, adjusted for prelinking (by the
    /// difference between `.stapsdt.base`'s address and the note's base).
    pub addr: u64,
    /// File offset of the probe: where the uprobe goes.
    pub file_offset: u64,
    /// Virtual address of the semaphore (0: none).
    pub semaphore_addr: u64,
    /// File offset of the semaphore: the uprobe's `ref_ctr_offset` (0: none).
    pub semaphore_offset: u64,
    /// The argument string (`-4@%edi 8@-8(%rbp)`).
    pub args: String,
}

/// The USDT probe sites of a binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsdtNotes {
    /// `e_machine` (62: x86-64).
    pub machine: u16,
    /// `ET_DYN` (a shared library or position-independent executable, whose
    /// run-time addresses depend on where it is mapped), not `ET_EXEC`.
    pub position_independent: bool,
    /// Every note, in file order.
    pub notes: Vec<UsdtNote>,
}

/// Read the `.note.stapsdt` notes of ELF file `data`. A file without the
/// section has no probes (an empty list, not an error).
pub fn parse_usdt_notes(data: &[u8]) -> Result<UsdtNotes, UsdtError> {
    match FileKind::parse(data) {
        Ok(FileKind::Elf64) => notes::<elf::FileHeader64<Endianness>>(data, 8),
        Ok(FileKind::Elf32) => notes::<elf::FileHeader32<Endianness>>(data, 4),
        Ok(other) => Err(UsdtError::Elf {
            reason: format!("not an ELF file ({other:?})"),
        }),
        Err(e) => Err(UsdtError::Elf {
            reason: format!("not an ELF file ({e})"),
        }),
    }
}

/// A `PT_LOAD` segment.
#[derive(Debug, Clone, Copy)]
struct Segment {
    vaddr: u64,
    memsz: u64,
    offset: u64,
    exec: bool,
}

impl Segment {
    fn contains(&self, addr: u64) -> bool {
        addr >= self.vaddr && addr - self.vaddr < self.memsz
    }
}

fn notes<Elf: FileHeader<Endian = Endianness>>(
    data: &[u8],
    addr_size: usize,
) -> Result<UsdtNotes, UsdtError> {
    let bad = |what: &str, e: object::read::Error| UsdtError::Elf {
        reason: format!("{what}: {e}"),
    };
    let header = Elf::parse(data).map_err(|e| bad("header", e))?;
    let endian = header.endian().map_err(|e| bad("header", e))?;
    let machine = header.e_machine(endian);
    let position_independent = header.e_type(endian) == elf::ET_DYN;
    let sections = header
        .sections(endian, data)
        .map_err(|e| bad("section headers", e))?;
    let segments: Vec<Segment> = header
        .program_headers(endian, data)
        .map_err(|e| bad("program headers", e))?
        .iter()
        .filter(|ph| ph.p_type(endian) == elf::PT_LOAD)
        .map(|ph| Segment {
            vaddr: ph.p_vaddr(endian).into(),
            memsz: ph.p_memsz(endian).into(),
            offset: ph.p_offset(endian).into(),
            exec: ph.p_flags(endian) & elf::PF_X != 0,
        })
        .collect();

    let base_section = sections
        .section_by_name(endian, b".stapsdt.base")
        .map(|(_, sh)| sh.sh_addr(endian).into());
    let Some((_, note_section)) = sections.section_by_name(endian, b".note.stapsdt") else {
        return Ok(UsdtNotes {
            machine,
            position_independent,
            notes: Vec::new(),
        });
    };
    if note_section.sh_type(endian) != elf::SHT_NOTE {
        return Err(UsdtError::Elf {
            reason: format!(
                ".note.stapsdt has section type {}, expected SHT_NOTE",
                note_section.sh_type(endian)
            ),
        });
    }
    let bytes = note_section
        .data(endian, data)
        .map_err(|e| bad(".note.stapsdt data", e))?;
    let align = usize::try_from(note_section.sh_addralign(endian).into()).unwrap_or(4);
    let mut out = Vec::new();
    for raw in RawNotes::new(bytes, endian, align.max(4)) {
        let raw = raw?;
        if raw.kind != NT_STAPSDT || raw.owner != b"stapsdt" {
            continue;
        }
        let desc = parse_desc(raw.desc, addr_size, endian).map_err(|reason| UsdtError::Note {
            offset: raw.offset as u64,
            reason,
        })?;
        out.push(locate(desc, base_section, &segments)?);
    }
    Ok(UsdtNotes {
        machine,
        position_independent,
        notes: out,
    })
}

/// One ELF note, before its descriptor is read.
struct RawNote<'a> {
    offset: usize,
    kind: u32,
    owner: &'a [u8],
    desc: &'a [u8],
}

/// The notes of a note section: `namesz`, `descsz`, `type`, then the name
/// and the descriptor, each padded to `align` (4 for stapsdt notes).
struct RawNotes<'a> {
    bytes: &'a [u8],
    pos: usize,
    endian: Endianness,
    align: usize,
}

impl<'a> RawNotes<'a> {
    fn new(bytes: &'a [u8], endian: Endianness, align: usize) -> Self {
        RawNotes {
            bytes,
            pos: 0,
            endian,
            align,
        }
    }

    fn word(&self, at: usize) -> Option<u32> {
        let b: [u8; 4] = self.bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(match self.endian {
            Endianness::Little => u32::from_le_bytes(b),
            Endianness::Big => u32::from_be_bytes(b),
        })
    }

    fn next_note(&mut self) -> Result<RawNote<'a>, String> {
        let start = self.pos;
        let header = |i: usize| {
            self.word(start + 4 * i)
                .ok_or_else(|| "truncated note header (12 bytes expected)".to_owned())
        };
        let (namesz, descsz, kind) = (header(0)? as usize, header(1)? as usize, header(2)?);
        let pad = |n: usize| n.checked_next_multiple_of(self.align);
        let name_at = start + 12;
        let desc_at = pad(namesz)
            .and_then(|n| name_at.checked_add(n))
            .ok_or("name size overflows")?;
        let end = pad(descsz)
            .and_then(|n| desc_at.checked_add(n))
            .ok_or("descriptor size overflows")?;
        let name = self
            .bytes
            .get(name_at..name_at.saturating_add(namesz))
            .ok_or_else(|| format!("name of {namesz} bytes runs past the section"))?;
        let desc = self
            .bytes
            .get(desc_at..desc_at.saturating_add(descsz))
            .ok_or_else(|| format!("descriptor of {descsz} bytes runs past the section"))?;
        // The last descriptor's padding may be missing.
        self.pos = end.min(self.bytes.len());
        let owner = name.strip_suffix(b"\0").unwrap_or(name);
        Ok(RawNote {
            offset: start,
            kind,
            owner,
            desc,
        })
    }
}

impl<'a> Iterator for RawNotes<'a> {
    type Item = Result<RawNote<'a>, UsdtError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.bytes.len() {
            return None;
        }
        let offset = self.pos;
        Some(self.next_note().map_err(|reason| {
            // Stop after the first malformed note: its sizes cannot be trusted.
            self.pos = self.bytes.len();
            UsdtError::Note {
                offset: offset as u64,
                reason,
            }
        }))
    }
}

/// The fields of a stapsdt descriptor, addresses as written.
struct Desc {
    pc: u64,
    base: u64,
    semaphore: u64,
    provider: String,
    name: String,
    args: String,
}

fn parse_desc(desc: &[u8], addr_size: usize, endian: Endianness) -> Result<Desc, String> {
    let addr = |i: usize| -> Result<u64, String> {
        let bytes = desc
            .get(i * addr_size..(i + 1) * addr_size)
            .ok_or_else(|| {
                format!(
                    "descriptor of {} bytes is too short for 3 addresses of {addr_size} bytes",
                    desc.len()
                )
            })?;
        let mut buf = [0u8; 8];
        Ok(match endian {
            Endianness::Little => {
                buf.get_mut(..addr_size)
                    .ok_or("bad address size")?
                    .copy_from_slice(bytes);
                u64::from_le_bytes(buf)
            }
            Endianness::Big => {
                buf.get_mut(8 - addr_size..)
                    .ok_or("bad address size")?
                    .copy_from_slice(bytes);
                u64::from_be_bytes(buf)
            }
        })
    };
    let (pc, base, semaphore) = (addr(0)?, addr(1)?, addr(2)?);
    let mut strings = desc.get(3 * addr_size..).unwrap_or_default();
    let mut next = |what: &str| -> Result<String, String> {
        let nul = strings
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| format!("{what} string has no NUL terminator"))?;
        let (text, rest) = strings.split_at(nul);
        strings = rest.get(1..).unwrap_or_default();
        Ok(String::from_utf8_lossy(text).into_owned())
    };
    let provider = next("provider")?;
    let name = next("name")?;
    let args = next("argument")?;
    if provider.is_empty() || name.is_empty() {
        return Err("empty provider or probe name".to_owned());
    }
    Ok(Desc {
        pc,
        base,
        semaphore,
        provider,
        name,
        args,
    })
}

/// Adjust the probe address for prelinking (as libbpf: by `.stapsdt.base`'s
/// address minus the note's base) and turn addresses into file offsets.
fn locate(
    desc: Desc,
    base_section: Option<u64>,
    segments: &[Segment],
) -> Result<UsdtNote, UsdtError> {
    let addr = match base_section {
        Some(base) if desc.base != 0 => desc.pc.wrapping_add(base.wrapping_sub(desc.base)),
        _ => desc.pc,
    };
    let err = |what: &'static str, addr: u64, reason: &'static str| UsdtError::Address {
        provider: desc.provider.clone(),
        name: desc.name.clone(),
        what,
        addr,
        reason,
    };
    let file_offset = match segments.iter().find(|s| s.contains(addr)) {
        None => return Err(err("probe", addr, "is in no PT_LOAD segment")),
        Some(seg) if !seg.exec => {
            return Err(err(
                "probe",
                addr,
                "is in a PT_LOAD segment that is not executable",
            ))
        }
        Some(seg) => (addr - seg.vaddr)
            .checked_add(seg.offset)
            .ok_or_else(|| err("probe", addr, "has a file offset past 2^64"))?,
    };
    let semaphore_offset = if desc.semaphore == 0 {
        0
    } else {
        let seg = segments
            .iter()
            .find(|s| s.contains(desc.semaphore))
            .ok_or_else(|| err("semaphore", desc.semaphore, "is in no PT_LOAD segment"))?;
        (desc.semaphore - seg.vaddr)
            .checked_add(seg.offset)
            .ok_or_else(|| err("semaphore", desc.semaphore, "has a file offset past 2^64"))?
    };
    Ok(UsdtNote {
        addr,
        file_offset,
        semaphore_addr: desc.semaphore,
        semaphore_offset,
        provider: desc.provider,
        name: desc.name,
        args: desc.args,
    })
}
