//! Filling `.kconfig` externs: libbpf's conversion of config text (and of
//! the virtual `LINUX_*` values) into each extern's slot of the `.kconfig`
//! map image.

use std::collections::HashMap;

use log::{debug, warn};

use super::kconfig::{clip, KernelConfig, LinuxFacts};
use super::KernelError;
use crate::obj::{Extern, ExternKind, KconfigType};

/// Parses an integer as `strtoull(s, &end, 0)` with `*end == '\0'`: optional
/// leading blanks and sign, `0x` hex, leading-`0` octal or decimal; a `-`
/// negates modulo 2^64; out of range is `None`.
pub fn parse_kconfig_int(s: &str) -> Option<u64> {
    let s = s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (negative, s) = match s.as_bytes().first() {
        Some(b'-') => (true, s.get(1..)?),
        Some(b'+') => (false, s.get(1..)?),
        _ => (false, s),
    };
    let (radix, digits) = if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (16, hex)
    } else if s.len() > 1 && s.starts_with('0') {
        (8, s.get(1..)?)
    } else {
        (10, s)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let v = u64::from_str_radix(digits, radix).ok()?;
    Some(if negative { v.wrapping_neg() } else { v })
}

/// Whether `v` fits in `size` bytes without loss, as libbpf checks: a
/// signed target takes `-2^(n-1) ..= 2^(n-1)-1` (two's complement in `v`),
/// an unsigned one needs the high bits clear.
fn fits(v: u64, size: u32, signed: bool) -> bool {
    let bits = size * 8;
    if bits >= 64 {
        return true;
    }
    if signed {
        v.wrapping_add(1u64 << (bits - 1)) < (1u64 << bits)
    } else {
        v >> bits == 0
    }
}

fn write_int(slot: &mut [u8], size: u32, v: u64) -> Result<(), String> {
    // Truncation to `size` bytes is intended: the range was checked.
    let bytes = match size {
        1 => vec![v as u8],
        2 => (v as u16).to_ne_bytes().to_vec(),
        4 => (v as u32).to_ne_bytes().to_vec(),
        8 => v.to_ne_bytes().to_vec(),
        other => return Err(format!("cannot be stored in an integer of {other} bytes")),
    };
    match slot.get_mut(..bytes.len()) {
        Some(dst) => {
            dst.copy_from_slice(&bytes);
            Ok(())
        }
        None => Err(format!(
            "needs {} bytes but the slot has {}",
            bytes.len(),
            slot.len()
        )),
    }
}

/// Stores a number (from config text or a virtual extern) as libbpf's
/// `set_kcfg_value_num`: into an integer, char or bool (0/1 only).
fn set_num(ty: KconfigType, size: u32, slot: &mut [u8], v: u64) -> Result<(), String> {
    let signed = match ty {
        KconfigType::Int { signed } => signed,
        // `char` may be either; accept what fits as signed or as unsigned.
        KconfigType::Char => fits(v, size, true),
        KconfigType::Bool if v > 1 => return Err("isn't boolean compatible".into()),
        KconfigType::Bool => false,
        KconfigType::Tristate | KconfigType::CharArray => {
            return Err("implies integer, char, or boolean type".into())
        }
    };
    if !fits(v, size, signed) {
        return Err(format!("doesn't fit in {size} bytes"));
    }
    write_int(slot, size, v)
}

/// Converts one config value into the extern's slot, as libbpf does.
fn set_from_text(
    name: &str,
    ty: KconfigType,
    size: u32,
    slot: &mut [u8],
    value: &str,
) -> Result<(), String> {
    match value.as_bytes().first().copied() {
        Some(letter @ (b'y' | b'n' | b'm')) => match ty {
            KconfigType::Bool if letter == b'm' => Err("implies tristate or char type".into()),
            KconfigType::Bool => write_int(slot, size, u64::from(letter == b'y')),
            KconfigType::Tristate => {
                let tri = match letter {
                    b'y' => 1, // TRI_YES
                    b'm' => 2, // TRI_MODULE
                    _ => 0,    // TRI_NO
                };
                write_int(slot, size, tri)
            }
            KconfigType::Char => write_int(slot, size, u64::from(letter)),
            KconfigType::Int { .. } | KconfigType::CharArray => {
                Err("implies bool, tristate, or char type".into())
            }
        },
        Some(b'"') => {
            if ty != KconfigType::CharArray {
                return Err("implies char array type".into());
            }
            let inner = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .ok_or_else(|| "is not a valid string (no closing quote)".to_string())?;
            let capacity = slot.len().min(size as usize);
            let Some(room) = capacity.checked_sub(1) else {
                return Ok(()); // a zero-length array holds nothing, not even the NUL
            };
            let mut len = inner.len();
            if len > room {
                warn!(
                    "extern (kconfig) '{name}': long string '{value}' of ({len} bytes) truncated to {room} bytes"
                );
                len = room;
            }
            let (dst, rest) = slot.split_at_mut(len);
            dst.copy_from_slice(inner.as_bytes().get(..len).unwrap_or_default());
            rest.iter_mut().for_each(|b| *b = 0);
            Ok(())
        }
        _ => {
            let v = parse_kconfig_int(value).ok_or_else(|| "isn't a valid integer".to_string())?;
            if !matches!(ty, KconfigType::Int { .. } | KconfigType::Char) {
                return Err("implies integer type".into());
            }
            set_num(ty, size, slot, v)
        }
    }
}

/// Writes every `.kconfig` extern of `externs` into `image` (the `.kconfig`
/// map's initial value) at its offset, with libbpf's conversion rules (see
/// the module docs):
///
/// - `CONFIG_*` from `config` (first source with a value); `bool` takes
///   `y`/`n` (`m` is an error), `enum libbpf_tristate` `y`=1 `n`=0 `m`=2,
///   `char` the letter or a number, integers a number range-checked against
///   the extern's size and sign, `char[N]` a quoted string (cut to N-1 bytes
///   plus NUL, with a warning);
/// - `LINUX_KERNEL_VERSION`, `LINUX_HAS_BPF_COOKIE`,
///   `LINUX_HAS_SYSCALL_WRAPPER` from `config.linux`; other `LINUX_*` are 0
///   when weak, an error when strong; other names are an error;
/// - a weak extern without a value is 0; a strong one is
///   [`KernelError::Unresolved`] naming it.
///
/// Externs that are not `.kconfig` are skipped.
pub fn fill_kconfig(
    externs: &[Extern],
    config: &KernelConfig,
    image: &mut [u8],
) -> Result<(), KernelError> {
    for ext in externs {
        let ExternKind::Kconfig {
            ty, size, offset, ..
        } = ext.kind
        else {
            continue;
        };
        let image_len = image.len();
        let slot = (offset as usize)
            .checked_add(size as usize)
            .and_then(|end| image.get_mut(offset as usize..end))
            .ok_or_else(|| KernelError::ImageTooSmall {
                name: ext.name.clone(),
                offset,
                size,
                image_len,
            })?;
        let name = ext.name.as_str();
        let virtual_value = |value: Option<u64>, field: &'static str| {
            value.ok_or_else(|| KernelError::MissingFact {
                name: name.to_string(),
                field,
            })
        };
        let value: Option<(u64, &str)> = if name.starts_with("CONFIG_") {
            if let Some(found) = config.lookup(name) {
                set_from_text(name, ty, size, slot, found.value).map_err(|reason| {
                    KernelError::KconfigValue {
                        name: name.to_string(),
                        value: clip(found.value, 200),
                        origin: found.origin.to_string(),
                        line: found.line,
                        reason,
                    }
                })?;
                debug!(
                    "extern (kconfig) '{name}': set to {} ({}:{})",
                    found.value, found.origin, found.line
                );
                continue;
            }
            None
        } else if name == "LINUX_KERNEL_VERSION" {
            Some((
                virtual_value(config.linux.kernel_version.map(u64::from), "kernel_version")?,
                "kernel version",
            ))
        } else if name == "LINUX_HAS_BPF_COOKIE" {
            Some((
                virtual_value(config.linux.has_bpf_cookie.map(u64::from), "has_bpf_cookie")?,
                "probe",
            ))
        } else if name == "LINUX_HAS_SYSCALL_WRAPPER" {
            Some((
                virtual_value(
                    config.linux.has_syscall_wrapper.map(u64::from),
                    "has_syscall_wrapper",
                )?,
                "probe",
            ))
        } else if name.starts_with("LINUX_") {
            if !ext.weak {
                return Err(KernelError::UnknownVirtual {
                    name: name.to_string(),
                });
            }
            None
        } else {
            return Err(KernelError::UnsupportedKconfigName {
                name: name.to_string(),
            });
        };
        match value {
            Some((v, origin)) => {
                set_num(ty, size, slot, v).map_err(|reason| KernelError::KconfigValue {
                    name: name.to_string(),
                    value: v.to_string(),
                    origin: origin.to_string(),
                    line: 0,
                    reason,
                })?;
                debug!("extern (kconfig) '{name}': set to {v:#x}");
            }
            None if ext.weak => {
                slot.iter_mut().for_each(|b| *b = 0);
                debug!("extern '{name}' (weak): not resolved, defaulting to zero");
            }
            None => {
                let detail = match config.not_set_at(name) {
                    Some((origin, line)) => format!("'# {name} is not set' at {origin}:{line}"),
                    None => String::new(),
                };
                return Err(KernelError::Unresolved {
                    name: name.to_string(),
                    detail,
                });
            }
        }
    }
    Ok(())
}

/// Everything [`fill_kconfig`] needs, gathered the way libbpf gathers it: the
/// overrides and `user_text` (libbpf's `kconfig` open option) first; the
/// system config is read only if some `CONFIG_*` extern is left without a
/// value (and then must exist, as in libbpf); `LINUX_*` facts are computed
/// only for the externs that ask for them.
pub fn resolve_kconfig(
    externs: &[Extern],
    user_text: Option<&str>,
    overrides: &HashMap<String, String>,
    image: &mut [u8],
) -> Result<(), KernelError> {
    let mut config = match user_text {
        Some(text) => KernelConfig::parse(text, "user kconfig")?,
        None => KernelConfig::new(),
    }
    .with_overrides(overrides);
    let needs_system = externs.iter().any(|e| {
        matches!(e.kind, ExternKind::Kconfig { .. })
            && e.name.starts_with("CONFIG_")
            && !config.contains(&e.name)
    });
    if needs_system {
        config = config.then(KernelConfig::read_system()?);
    }
    config.linux = LinuxFacts::detect_for(externs)?;
    fill_kconfig(externs, &config, image)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::kconfig::tests::SAMPLE;

    fn ext(name: &str, ty: KconfigType, size: u32, offset: u32, weak: bool) -> Extern {
        Extern {
            name: name.into(),
            kind: ExternKind::Kconfig {
                ty,
                size,
                align: size.clamp(1, 8),
                offset,
            },
            weak,
            btf_id: 1,
            sec_entry: None,
        }
    }

    fn fill_one(e: Extern, text: &str) -> Result<Vec<u8>, KernelError> {
        let config = KernelConfig::parse(text, "sample")?;
        let ExternKind::Kconfig { size, offset, .. } = e.kind else {
            unreachable!()
        };
        let mut image = vec![0xaa; (offset + size) as usize];
        fill_kconfig(&[e], &config, &mut image)?;
        Ok(image)
    }

    #[test]
    fn integers_like_strtoull() {
        assert_eq!(parse_kconfig_int("250"), Some(250));
        assert_eq!(parse_kconfig_int("0x1f"), Some(0x1f));
        assert_eq!(parse_kconfig_int("0X1F"), Some(0x1f));
        assert_eq!(parse_kconfig_int("010"), Some(8));
        assert_eq!(parse_kconfig_int("0"), Some(0));
        assert_eq!(parse_kconfig_int("-1"), Some(u64::MAX));
        assert_eq!(parse_kconfig_int("18446744073709551616"), None);
        assert_eq!(parse_kconfig_int("12abc"), None);
        assert_eq!(parse_kconfig_int("0x"), None);
        assert_eq!(parse_kconfig_int("09"), None);
        assert_eq!(parse_kconfig_int(""), None);
    }

    #[test]
    fn conversions() {
        let int = KconfigType::Int { signed: true };
        let uint = KconfigType::Int { signed: false };
        assert_eq!(
            fill_one(ext("CONFIG_HZ", int, 4, 0, false), SAMPLE).unwrap(),
            250i32.to_ne_bytes()
        );
        assert_eq!(
            fill_one(ext("CONFIG_NEG", int, 2, 0, false), SAMPLE).unwrap(),
            (-5i16).to_ne_bytes()
        );
        assert!(fill_one(ext("CONFIG_NEG", uint, 2, 0, false), SAMPLE).is_err());
        assert_eq!(
            fill_one(ext("CONFIG_OCT", uint, 8, 0, false), SAMPLE).unwrap(),
            8u64.to_ne_bytes()
        );
        assert_eq!(
            fill_one(ext("CONFIG_LOG_BUF_SHIFT", uint, 1, 0, false), SAMPLE).unwrap(),
            [17]
        );
        // Range: 250 does not fit a signed byte, does fit an unsigned one.
        let err = fill_one(ext("CONFIG_HZ", int, 1, 0, false), SAMPLE).unwrap_err();
        assert!(err.to_string().contains("doesn't fit in 1 bytes"), "{err}");
        assert!(err.to_string().contains("sample:6"), "{err}");
        assert_eq!(
            fill_one(ext("CONFIG_HZ", uint, 1, 0, false), SAMPLE).unwrap(),
            [250]
        );
        // Bool, tristate, char from letters.
        assert_eq!(
            fill_one(
                ext("CONFIG_BPF_SYSCALL", KconfigType::Bool, 1, 0, false),
                SAMPLE
            )
            .unwrap(),
            [1]
        );
        assert!(fill_one(ext("CONFIG_TUN", KconfigType::Bool, 1, 0, false), SAMPLE).is_err());
        assert_eq!(
            fill_one(
                ext("CONFIG_TUN", KconfigType::Tristate, 4, 0, false),
                SAMPLE
            )
            .unwrap(),
            2u32.to_ne_bytes()
        );
        assert_eq!(
            fill_one(ext("CONFIG_TUN", KconfigType::Char, 1, 0, false), SAMPLE).unwrap(),
            [b'm']
        );
        assert_eq!(
            fill_one(ext("CONFIG_HZ", KconfigType::Char, 1, 0, false), SAMPLE).unwrap(),
            [250]
        );
        // Class mismatches.
        assert!(fill_one(ext("CONFIG_HZ", KconfigType::Bool, 1, 0, false), SAMPLE).is_err());
        assert!(fill_one(ext("CONFIG_HZ", KconfigType::Tristate, 4, 0, false), SAMPLE).is_err());
        assert!(fill_one(ext("CONFIG_BPF_SYSCALL", int, 4, 0, false), SAMPLE).is_err());
        assert!(fill_one(ext("CONFIG_CC_VERSION_TEXT", int, 4, 0, false), SAMPLE).is_err());
        assert!(fill_one(
            ext("CONFIG_HZ", KconfigType::CharArray, 4, 0, false),
            SAMPLE
        )
        .is_err());
    }

    #[test]
    fn strings_truncate_with_nul() {
        let got = fill_one(
            ext(
                "CONFIG_CC_VERSION_TEXT",
                KconfigType::CharArray,
                8,
                2,
                false,
            ),
            SAMPLE,
        )
        .unwrap();
        assert_eq!(&got, b"\xaa\xaagcc (GC\0");
        let got = fill_one(
            ext(
                "CONFIG_CC_VERSION_TEXT",
                KconfigType::CharArray,
                20,
                0,
                false,
            ),
            SAMPLE,
        )
        .unwrap();
        assert_eq!(&got, b"gcc (GCC) 15.3.0\0\0\0\0");
        assert!(fill_one(
            ext("CONFIG_S", KconfigType::CharArray, 8, 0, false),
            "CONFIG_S=\"abc\n"
        )
        .is_err());
        assert!(fill_one(
            ext("CONFIG_S", KconfigType::CharArray, 8, 0, false),
            "CONFIG_S=\"\n"
        )
        .is_err());
        assert_eq!(
            fill_one(
                ext("CONFIG_S", KconfigType::CharArray, 2, 0, false),
                "CONFIG_S=\"\"\n"
            )
            .unwrap(),
            [0, 0]
        );
    }

    #[test]
    fn missing_weak_strong_and_virtual() {
        let weak = fill_one(
            ext("CONFIG_KPROBES", KconfigType::Tristate, 4, 0, true),
            SAMPLE,
        )
        .unwrap();
        assert_eq!(weak, [0, 0, 0, 0]);
        let err = fill_one(
            ext("CONFIG_KPROBES", KconfigType::Tristate, 4, 0, false),
            SAMPLE,
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("'CONFIG_KPROBES' (strong): not resolved") && msg.contains("sample:8"),
            "{msg}"
        );
        assert!(fill_one(ext("CONFIG_NOPE", KconfigType::Bool, 1, 0, false), SAMPLE).is_err());
        // Unknown LINUX_: zero when weak, error when strong; other prefixes always an error.
        assert_eq!(
            fill_one(ext("LINUX_FOO", KconfigType::Bool, 1, 0, true), SAMPLE).unwrap(),
            [0]
        );
        assert!(matches!(
            fill_one(ext("LINUX_FOO", KconfigType::Bool, 1, 0, false), SAMPLE),
            Err(KernelError::UnknownVirtual { .. })
        ));
        assert!(matches!(
            fill_one(ext("FOO", KconfigType::Bool, 1, 0, true), SAMPLE),
            Err(KernelError::UnsupportedKconfigName { .. })
        ));
        // Virtual values come from LinuxFacts.
        let externs = [
            ext(
                "LINUX_KERNEL_VERSION",
                KconfigType::Int { signed: true },
                4,
                0,
                false,
            ),
            ext("LINUX_HAS_BPF_COOKIE", KconfigType::Bool, 1, 4, false),
            ext("LINUX_HAS_SYSCALL_WRAPPER", KconfigType::Bool, 1, 5, false),
        ];
        let mut image = [0xaa; 6];
        let err = fill_kconfig(&externs, &KernelConfig::new(), &mut image).unwrap_err();
        assert!(
            matches!(
                err,
                KernelError::MissingFact {
                    field: "kernel_version",
                    ..
                }
            ),
            "{err}"
        );
        let config = KernelConfig::new().with_linux_facts(LinuxFacts {
            kernel_version: Some(0x06122c),
            has_bpf_cookie: Some(true),
            has_syscall_wrapper: Some(false),
        });
        fill_kconfig(&externs, &config, &mut image).unwrap();
        assert_eq!(image[..4], 0x06122ci32.to_ne_bytes());
        assert_eq!(image[4..], [1, 0]);
    }

    #[test]
    fn slot_outside_image() {
        let e = ext("CONFIG_HZ", KconfigType::Int { signed: true }, 4, 2, false);
        let config = KernelConfig::parse(SAMPLE, "s").unwrap();
        let mut image = [0u8; 4];
        assert!(matches!(
            fill_kconfig(&[e], &config, &mut image),
            Err(KernelError::ImageTooSmall { .. })
        ));
    }
}
