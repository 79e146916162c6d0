//! `/proc/kallsyms`: addresses of kernel symbols, for typeless `.ksyms`
//! externs (`extern const void _stext __ksym;`).
//!
//! Each line is `address type name` with an optional `\t[module]`. As in
//! libbpf: a malformed line is an error, a symbol listed twice at different
//! addresses is ambiguous (an error, only for names asked for), and a
//! static data symbol (`d`) renamed by LTO (`name.llvm.123`) matches `name`.
//! Without privileges (`kernel.kptr_restrict`) every address reads as 0; a
//! lookup then fails and says why rather than returning 0.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use super::KernelError;

/// The kernel's symbol table.
pub const KALLSYMS_PATH: &str = "/proc/kallsyms";

/// One parsed line of kallsyms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KallsymsEntry<'a> {
    /// The address (0 when hidden by `kptr_restrict`).
    pub addr: u64,
    /// The type letter (`T` text, `d` data, ...).
    pub kind: char,
    /// The symbol name.
    pub name: &'a str,
    /// The module, without brackets; `None` for vmlinux.
    pub module: Option<&'a str>,
}

/// Parses one kallsyms line; the error says what is wrong.
pub fn parse_kallsyms_line(line: &str) -> Result<KallsymsEntry<'_>, String> {
    let mut fields = line.split_ascii_whitespace();
    let addr_text = fields.next().ok_or("empty line")?;
    let addr = u64::from_str_radix(addr_text, 16)
        .map_err(|_| format!("address '{addr_text}' is not hexadecimal"))?;
    let kind_text = fields.next().ok_or("no type letter")?;
    let mut chars = kind_text.chars();
    let kind = match (chars.next(), chars.next()) {
        (Some(c), None) => c,
        _ => return Err(format!("type '{kind_text}' is not one character")),
    };
    let name = fields.next().ok_or("no symbol name")?;
    let module = match fields.next() {
        None => None,
        Some(m) => Some(
            m.strip_prefix('[')
                .and_then(|m| m.strip_suffix(']'))
                .ok_or_else(|| format!("module '{m}' is not in brackets"))?,
        ),
    };
    if let Some(extra) = fields.next() {
        return Err(format!("unexpected field '{extra}' after the module"));
    }
    Ok(KallsymsEntry {
        addr,
        kind,
        name,
        module,
    })
}

#[derive(Clone, Debug)]
struct Sym {
    addr: u64,
    kind: char,
    name: Range<usize>,
    module: Option<Range<usize>>,
}

/// A parsed symbol table.
#[derive(Clone, Debug)]
pub struct Kallsyms {
    text: String,
    syms: Vec<Sym>,
    addresses_hidden: bool,
}

/// The byte range of `part` (a subslice of `whole`) within `whole`.
fn range_in(whole: &str, part: &str) -> Range<usize> {
    let start = (part.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize);
    start..start + part.len()
}

/// `name` without an LTO `.llvm.<hash>` suffix, for data symbols.
fn lto_base(kind: char, name: &str) -> &str {
    match name.find(".llvm.") {
        Some(at) if kind == 'd' => name.get(..at).unwrap_or(name),
        _ => name,
    }
}

impl Kallsyms {
    /// Reads `/proc/kallsyms`.
    pub fn read() -> Result<Kallsyms, KernelError> {
        let text = std::fs::read(KALLSYMS_PATH).map_err(|e| KernelError::io(KALLSYMS_PATH, e))?;
        Kallsyms::parse(String::from_utf8_lossy(&text).into_owned(), KALLSYMS_PATH)
    }

    /// Parses kallsyms text; `origin` names it in errors. Every line must parse.
    pub fn parse(text: String, origin: &str) -> Result<Kallsyms, KernelError> {
        let mut syms = Vec::new();
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let e = parse_kallsyms_line(line).map_err(|reason| KernelError::KallsymsLine {
                origin: origin.to_string(),
                line: index + 1,
                reason,
            })?;
            syms.push(Sym {
                addr: e.addr,
                kind: e.kind,
                name: range_in(&text, e.name),
                module: e.module.map(|m| range_in(&text, m)),
            });
        }
        let addresses_hidden = !syms.is_empty() && syms.iter().all(|s| s.addr == 0);
        Ok(Kallsyms {
            text,
            syms,
            addresses_hidden,
        })
    }

    /// Whether every address reads as 0 (`kptr_restrict` in effect).
    pub fn addresses_hidden(&self) -> bool {
        self.addresses_hidden
    }

    /// Number of symbols.
    pub fn len(&self) -> usize {
        self.syms.len()
    }

    /// Whether there are no symbols.
    pub fn is_empty(&self) -> bool {
        self.syms.is_empty()
    }

    fn entry(&self, s: &Sym) -> KallsymsEntry<'_> {
        KallsymsEntry {
            addr: s.addr,
            kind: s.kind,
            name: self.text.get(s.name.clone()).unwrap_or_default(),
            module: s.module.clone().and_then(|m| self.text.get(m)),
        }
    }

    /// Every symbol, in file order.
    pub fn entries(&self) -> impl Iterator<Item = KallsymsEntry<'_>> + '_ {
        self.syms.iter().map(|s| self.entry(s))
    }

    /// Whether a symbol named `name` exists (addresses may be hidden).
    pub fn contains(&self, name: &str) -> bool {
        self.entries().any(|e| lto_base(e.kind, e.name) == name)
    }

    /// The address of `name`; `Ok(None)` if absent. Errors if it is listed at
    /// two different addresses, or if addresses are hidden.
    pub fn lookup(&self, name: &str) -> Result<Option<u64>, KernelError> {
        Ok(self.resolve(&[name])?.get(name).copied())
    }

    /// The addresses of every name of `names` that exists, in one pass.
    pub fn resolve(&self, names: &[&str]) -> Result<HashMap<String, u64>, KernelError> {
        let wanted: HashSet<&str> = names.iter().copied().collect();
        let mut found: HashMap<String, u64> = HashMap::new();
        for e in self.entries() {
            let name = lto_base(e.kind, e.name);
            if !wanted.contains(name) {
                continue;
            }
            match found.get(name) {
                Some(&first) if first != e.addr => {
                    return Err(KernelError::KsymAmbiguous {
                        name: name.to_string(),
                        first,
                        second: e.addr,
                    })
                }
                Some(_) => {}
                None => {
                    found.insert(name.to_string(), e.addr);
                }
            }
        }
        if self.addresses_hidden {
            if let Some(name) = found.keys().next() {
                return Err(KernelError::KallsymsHidden { name: name.clone() });
            }
        }
        Ok(found)
    }
}

/// The prefix of the syscall wrappers on this architecture (`__x64_sys_bpf`),
/// as libbpf names them.
pub fn syscall_wrapper_prefix() -> Option<&'static str> {
    if cfg!(target_arch = "x86_64") {
        Some("x64")
    } else if cfg!(target_arch = "x86") {
        Some("ia32")
    } else if cfg!(target_arch = "s390x") {
        Some("s390x")
    } else if cfg!(target_arch = "arm") {
        Some("arm")
    } else if cfg!(target_arch = "aarch64") {
        Some("arm64")
    } else if cfg!(any(target_arch = "mips", target_arch = "mips64")) {
        Some("mips")
    } else if cfg!(any(target_arch = "riscv32", target_arch = "riscv64")) {
        Some("riscv")
    } else if cfg!(target_arch = "powerpc") {
        Some("powerpc")
    } else if cfg!(target_arch = "powerpc64") {
        Some("powerpc64")
    } else {
        None
    }
}

/// `LINUX_HAS_SYSCALL_WRAPPER`: whether `__<arch>_sys_bpf` is a kernel symbol.
/// Names are listed even when addresses are hidden, so this needs no privilege.
pub fn has_syscall_wrapper() -> Result<bool, KernelError> {
    let Some(prefix) = syscall_wrapper_prefix() else {
        return Ok(false);
    };
    let syms = Kallsyms::read()?;
    Ok(syms.contains(&format!("__{prefix}_sys_bpf")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
ffffffff81000000 T _stext
ffffffff81000010 t helper
ffffffff82000000 d counter.llvm.12345
ffffffff82000100 d counter.llvm.12345
ffffffffc0000000 t helper\t[nf_tables]
ffffffffc0000100 T mod_only\t[tun]
";

    #[test]
    fn lines() {
        let e = parse_kallsyms_line("ffffffffc0000100 T mod_only\t[tun]").unwrap();
        assert_eq!(
            e,
            KallsymsEntry {
                addr: 0xffff_ffff_c000_0100,
                kind: 'T',
                name: "mod_only",
                module: Some("tun")
            }
        );
        assert!(parse_kallsyms_line("zz T x").is_err());
        assert!(parse_kallsyms_line("1234 TT x").is_err());
        assert!(parse_kallsyms_line("1234 T").is_err());
        assert!(parse_kallsyms_line("1234 T x tun").is_err());
        assert!(parse_kallsyms_line("1234 T x [tun] more").is_err());
    }

    #[test]
    fn lookups() {
        let k = Kallsyms::parse(SAMPLE.into(), "sample").unwrap();
        assert_eq!(k.len(), 6);
        assert_eq!(k.lookup("_stext").unwrap(), Some(0xffff_ffff_8100_0000));
        assert_eq!(k.lookup("mod_only").unwrap(), Some(0xffff_ffff_c000_0100));
        assert_eq!(k.lookup("nothing").unwrap(), None);
        // Same name, different addresses: ambiguous.
        let err = k.lookup("helper").unwrap_err();
        assert!(matches!(err, KernelError::KsymAmbiguous { .. }), "{err}");
        // LTO-renamed data symbol listed twice at different addresses.
        assert!(k.lookup("counter").is_err());
        let k = Kallsyms::parse(
            "ffff0000 d counter.llvm.1\nffff0100 t x.llvm.2\n".into(),
            "s",
        )
        .unwrap();
        assert_eq!(k.lookup("counter").unwrap(), Some(0xffff0000));
        assert_eq!(k.lookup("x").unwrap(), None);
        let all = k.resolve(&["counter", "x.llvm.2", "none"]).unwrap();
        assert_eq!(all.len(), 2);
    }

    #[test]
    fn hidden_addresses() {
        let k = Kallsyms::parse(
            "0000000000000000 T _stext\n0000000000000000 T other\n".into(),
            "s",
        )
        .unwrap();
        assert!(k.addresses_hidden());
        let err = k.lookup("_stext").unwrap_err();
        assert!(err.to_string().contains("kptr_restrict"), "{err}");
        assert!(k.contains("_stext"));
        assert_eq!(k.lookup("absent").unwrap(), None);
        // A genuine zero address (per-CPU symbols) among real ones is fine.
        let k = Kallsyms::parse(
            "0000000000000000 A fixed_percpu_data\nffffffff81000000 T _stext\n".into(),
            "s",
        )
        .unwrap();
        assert_eq!(k.lookup("fixed_percpu_data").unwrap(), Some(0));
    }

    #[test]
    fn bad_line_number() {
        let err = Kallsyms::parse("ffff T a\nnot a line at all\n".into(), "s").unwrap_err();
        assert!(
            matches!(err, KernelError::KallsymsLine { line: 2, .. }),
            "{err}"
        );
    }
}
