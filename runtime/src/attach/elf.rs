//! Finding a uprobe's file: the binary or library path, and the file offset
//! of a function symbol in it.

use std::path::{Path, PathBuf};

use object::elf;
use object::read::elf::{FileHeader, ProgramHeader, Sym};
use object::read::SymbolIndex;
use object::{Endianness, FileKind};

/// Library directories searched for a bare library name, in order (after
/// `LD_LIBRARY_PATH`).
pub const LIBRARY_DIRS: [&str; 6] = [
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
];

/// Resolve the `binary` of a uprobe to an absolute path: a path with a `/`
/// as given (made absolute); a bare library name (`libc.so.6`) in
/// `LD_LIBRARY_PATH` and [`LIBRARY_DIRS`]; another bare name in `PATH`, then
/// the library directories. The error lists where it looked.
pub fn resolve_binary(binary: &str) -> Result<PathBuf, String> {
    if binary.is_empty() {
        return Err("empty binary path".to_owned());
    }
    if binary.contains('/') {
        let path = Path::new(binary);
        let path = if path.is_absolute() {
            path.to_owned()
        } else {
            std::env::current_dir()
                .map_err(|e| format!("cannot make {binary} absolute: {e}"))?
                .join(path)
        };
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("{} is not a file", path.display()))
        };
    }
    let env_dirs = |var: &str| -> Vec<PathBuf> {
        std::env::var_os(var)
            .map(|v| {
                std::env::split_paths(&v)
                    .filter(|p| !p.as_os_str().is_empty())
                    .collect()
            })
            .unwrap_or_default()
    };
    let lib_dirs: Vec<PathBuf> = env_dirs("LD_LIBRARY_PATH")
        .into_iter()
        .chain(LIBRARY_DIRS.iter().map(PathBuf::from))
        .collect();
    let dirs: Vec<PathBuf> = if binary.contains(".so") {
        lib_dirs
    } else {
        env_dirs("PATH").into_iter().chain(lib_dirs).collect()
    };
    dirs.iter()
        .map(|dir| dir.join(binary))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            let searched: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            format!("{binary} not found in {}", searched.join(", "))
        })
}

/// The file offset of function `func` in the ELF file `data` (for the uprobe
/// PMU and `uprobe_events`), found in `.symtab` then `.dynsym`.
///
/// `func` may carry a symbol version (`malloc@@GLIBC_2.2.5`,
/// `memcpy@GLIBC_2.2.5`); without one, hidden (non-default) versions of a
/// dynamic symbol do not match. Several matches at one address are one
/// match; a global symbol wins over weak ones; two global symbols at
/// different addresses are ambiguous.
pub fn func_file_offset(data: &[u8], func: &str) -> Result<u64, String> {
    match FileKind::parse(data) {
        Ok(FileKind::Elf64) => find::<elf::FileHeader64<Endianness>>(data, func),
        Ok(FileKind::Elf32) => find::<elf::FileHeader32<Endianness>>(data, func),
        Ok(other) => Err(format!("not an ELF file ({other:?})")),
        Err(e) => Err(format!("not an ELF file ({e})")),
    }
}

/// Every function symbol of the ELF file `data` whose name matches the glob
/// `pattern` (`*` any run, `?` one character), with its file offset, sorted
/// by name: the sites of a `uprobe.multi/<binary>:<pattern>`. `.symtab` and
/// `.dynsym` are both read; a name defined in both (or twice at one address)
/// is one site, a name at two addresses is an error.
pub fn func_file_offsets_matching(
    data: &[u8],
    pattern: &str,
) -> Result<Vec<(String, u64)>, String> {
    match FileKind::parse(data) {
        Ok(FileKind::Elf64) => matching::<elf::FileHeader64<Endianness>>(data, pattern),
        Ok(FileKind::Elf32) => matching::<elf::FileHeader32<Endianness>>(data, pattern),
        Ok(other) => Err(format!("not an ELF file ({other:?})")),
        Err(e) => Err(format!("not an ELF file ({e})")),
    }
}

fn matching<Elf: FileHeader<Endian = Endianness>>(
    data: &[u8],
    pattern: &str,
) -> Result<Vec<(String, u64)>, String> {
    let bad = |what: &str, e: object::read::Error| format!("malformed ELF: {what}: {e}");
    let header = Elf::parse(data).map_err(|e| bad("header", e))?;
    let endian = header.endian().map_err(|e| bad("header", e))?;
    let sections = header
        .sections(endian, data)
        .map_err(|e| bad("section headers", e))?;
    let mut found: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for sh_type in [elf::SHT_SYMTAB, elf::SHT_DYNSYM] {
        let symbols = sections
            .symbols(endian, data, sh_type)
            .map_err(|e| bad("symbol table", e))?;
        let strings = symbols.strings();
        for sym in symbols.symbols() {
            let st_type = sym.st_type();
            if st_type != elf::STT_FUNC && st_type != elf::STT_GNU_IFUNC {
                continue;
            }
            let vaddr: u64 = sym.st_value(endian).into();
            if sym.is_undefined(endian) || vaddr == 0 {
                continue;
            }
            let Ok(name) = sym.name(endian, strings) else {
                continue;
            };
            let Ok(name) = std::str::from_utf8(name) else {
                continue;
            };
            if !super::glob::matches(pattern, name) {
                continue;
            }
            match found.get(name) {
                Some(&prev) if prev != vaddr => {
                    return Err(format!(
                        "ambiguous symbol {name}: defined at {prev:#x} and {vaddr:#x}"
                    ))
                }
                Some(_) => {}
                None => {
                    found.insert(name.to_owned(), vaddr);
                }
            }
        }
    }
    found
        .into_iter()
        .map(|(name, vaddr)| {
            let off = vaddr_to_offset::<Elf>(header, endian, data, vaddr)
                .ok_or_else(|| format!("{name} at {vaddr:#x} is in no PT_LOAD segment"))?;
            Ok((name, off))
        })
        .collect()
}

#[derive(Clone, Copy)]
struct Found {
    vaddr: u64,
    weak: bool,
}

fn find<Elf: FileHeader<Endian = Endianness>>(data: &[u8], func: &str) -> Result<u64, String> {
    let bad = |what: &str, e: object::read::Error| format!("malformed ELF: {what}: {e}");
    let header = Elf::parse(data).map_err(|e| bad("header", e))?;
    let endian = header.endian().map_err(|e| bad("header", e))?;
    let sections = header
        .sections(endian, data)
        .map_err(|e| bad("section headers", e))?;
    let (base, version) = match func.split_once('@') {
        Some((base, ver)) => (base, Some(ver.trim_start_matches('@'))),
        None => (func, None),
    };

    let mut found: Option<Found> = None;
    for sh_type in [elf::SHT_SYMTAB, elf::SHT_DYNSYM] {
        let symbols = sections
            .symbols(endian, data, sh_type)
            .map_err(|e| bad("symbol table", e))?;
        let versions = if sh_type == elf::SHT_DYNSYM {
            sections
                .versions(endian, data)
                .map_err(|e| bad("symbol versions", e))?
        } else {
            None
        };
        let strings = symbols.strings();
        for (index, sym) in symbols.symbols().iter().enumerate() {
            let st_type = sym.st_type();
            if st_type != elf::STT_FUNC && st_type != elf::STT_GNU_IFUNC {
                continue;
            }
            if sym.is_undefined(endian) || sym.st_value(endian).into() == 0 {
                continue;
            }
            let Ok(name) = sym.name(endian, strings) else {
                continue;
            };
            let matches = if name == func.as_bytes() {
                // `.symtab` may spell the version into the name.
                true
            } else if name != base.as_bytes() {
                false
            } else {
                match &versions {
                    None => version.is_none(),
                    Some(table) => {
                        let vi = table.version_index(endian, SymbolIndex(index));
                        match version {
                            None => !vi.is_hidden(),
                            Some(want) => matches!(
                                table.version(vi),
                                Ok(Some(v)) if v.name() == want.as_bytes()
                            ),
                        }
                    }
                }
            };
            if !matches {
                continue;
            }
            let candidate = Found {
                vaddr: sym.st_value(endian).into(),
                weak: sym.st_bind() == elf::STB_WEAK,
            };
            found = Some(match found {
                None => candidate,
                Some(prev) if prev.vaddr == candidate.vaddr => prev,
                Some(prev) if prev.weak && !candidate.weak => candidate,
                Some(prev) if candidate.weak => prev,
                Some(prev) => {
                    return Err(format!(
                        "ambiguous symbol {func}: defined at {:#x} and {:#x}",
                        prev.vaddr, candidate.vaddr
                    ))
                }
            });
        }
    }
    let Some(found) = found else {
        return Err(format!(
            "no function symbol {func} in .symtab or .dynsym (stripped binary?)"
        ));
    };
    vaddr_to_offset::<Elf>(header, endian, data, found.vaddr)
        .ok_or_else(|| format!("{func} at {:#x} is in no PT_LOAD segment", found.vaddr))
}

/// The file offset of virtual address `vaddr`: `vaddr - p_vaddr + p_offset`
/// of the executable `PT_LOAD` segment that contains it (any `PT_LOAD`
/// segment if none is executable). A file without program headers (a
/// relocatable object) uses addresses as offsets.
fn vaddr_to_offset<Elf: FileHeader<Endian = Endianness>>(
    header: &Elf,
    endian: Endianness,
    data: &[u8],
    vaddr: u64,
) -> Option<u64> {
    let phdrs = header.program_headers(endian, data).ok()?;
    if phdrs.is_empty() {
        return Some(vaddr);
    }
    let contains = |ph: &&Elf::ProgramHeader| {
        let start: u64 = ph.p_vaddr(endian).into();
        let size: u64 = ph.p_memsz(endian).into();
        ph.p_type(endian) == elf::PT_LOAD && vaddr >= start && vaddr - start < size
    };
    let seg = phdrs
        .iter()
        .filter(contains)
        .find(|ph| ph.p_flags(endian) & elf::PF_X != 0)
        .or_else(|| phdrs.iter().find(contains))?;
    let start: u64 = seg.p_vaddr(endian).into();
    let offset: u64 = seg.p_offset(endian).into();
    (vaddr - start).checked_add(offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_garbage() {
        assert!(func_file_offset(b"not an elf", "f").is_err());
        assert!(func_file_offset(&[], "f").is_err());
        let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
        elf.resize(80, 0);
        assert!(func_file_offset(&elf, "f").is_err());
    }

    #[test]
    fn resolves_in_own_binary() {
        let exe = std::env::current_exe().unwrap();
        let data = std::fs::read(&exe).unwrap();
        // Every Rust test binary has `main`.
        let off = func_file_offset(&data, "main").unwrap();
        assert!(off > 0 && (off as usize) < data.len());
        assert!(func_file_offset(&data, "no_such_function_here").is_err());
    }

    #[test]
    fn pattern_in_own_binary() {
        let exe = std::env::current_exe().unwrap();
        let data = std::fs::read(&exe).unwrap();
        let all = func_file_offsets_matching(&data, "mai?").unwrap();
        assert!(all.iter().any(|(n, _)| n == "main"), "{all:?}");
        let main = func_file_offset(&data, "main").unwrap();
        assert!(all.contains(&("main".to_owned(), main)));
        assert!(func_file_offsets_matching(&data, "no_such_fn_*")
            .unwrap()
            .is_empty());
        assert!(func_file_offsets_matching(b"junk", "*").is_err());
    }

    #[test]
    fn binary_lookup() {
        assert!(resolve_binary("").is_err());
        let err = resolve_binary("libdoes-not-exist.so.9").unwrap_err();
        assert!(err.contains("/usr/lib"), "{err}");
        assert!(resolve_binary("/nonexistent/x").is_err());
    }
}
