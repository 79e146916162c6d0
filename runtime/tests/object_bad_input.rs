//! Bad objects give errors that say where, never panics.

use proptest::prelude::*;
use skelgen_runtime::obj::{ObjError, Object};
use skelgen_test_support::{all_fixtures, error_chain, fixture as fixture_bytes};

#[test]
fn not_elf() {
    let e = Object::parse(b"hello, this is not an object", "x").unwrap_err();
    assert!(matches!(e, ObjError::NotElf), "{e}");
    assert!(Object::parse(&[], "x").is_err());
    assert!(Object::parse(b"\x7fEL", "x").is_err());
}

#[test]
fn wrong_machine() {
    let mut b = fixture_bytes("xdp_counter");
    // e_machine is at offset 18 in the ELF64 header.
    b[18..20].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    let e = Object::parse(&b, "x").unwrap_err();
    assert!(matches!(e, ObjError::WrongMachine { machine: 62 }), "{e}");
    assert!(e.to_string().contains("EM_BPF"));
}

#[test]
fn not_relocatable() {
    let mut b = fixture_bytes("xdp_counter");
    b[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    let e = Object::parse(&b, "x").unwrap_err();
    assert!(matches!(e, ObjError::NotRelocatable { e_type: 2 }), "{e}");
}

#[test]
fn big_endian_is_refused_clearly() {
    let mut b = fixture_bytes("xdp_counter");
    b[5] = 2; // ELFDATA2MSB
    let e = Object::parse(&b, "x").unwrap_err();
    assert!(matches!(e, ObjError::BigEndian), "{e}");
}

#[test]
fn elf32_is_refused() {
    let mut b = fixture_bytes("xdp_counter");
    b[4] = 1; // ELFCLASS32
    let e = Object::parse(&b, "x").unwrap_err();
    assert!(e.to_string().contains("32-bit"), "{e}");
}

/// Section header offsets and the boundaries between sections, read from
/// the ELF64 header of a fixture.
fn boundaries(b: &[u8]) -> Vec<usize> {
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap()) as usize;
    let u16_at = |o: usize| u16::from_le_bytes(b[o..o + 2].try_into().unwrap()) as usize;
    let shoff = u64_at(0x28);
    let shentsize = u16_at(0x3a);
    let shnum = u16_at(0x3c);
    let mut v = vec![0, 1, 4, 16, 63, 64, shoff, b.len() - 1];
    for i in 0..shnum {
        let sh = shoff + i * shentsize;
        let off = u64_at(sh + 0x18);
        let size = u64_at(sh + 0x20);
        v.push(sh);
        v.push(off);
        v.push(off + size / 2);
        v.push(off + size);
        v.push((off + size).saturating_sub(1));
    }
    v.retain(|&x| x < b.len());
    v.sort();
    v.dedup();
    v
}

#[test]
fn truncation_at_every_section_boundary_is_an_error() {
    for (name, bytes) in all_fixtures() {
        for cut in boundaries(&bytes) {
            let r = Object::parse(&bytes[..cut], "x");
            let e = match r {
                Err(e) => e,
                Ok(_) => panic!("{name} cut at {cut}: parsed"),
            };
            assert!(!e.to_string().is_empty());
        }
    }
}

#[test]
fn corrupted_btf_reports_the_section() {
    let b = fixture_bytes("tp_ringbuf");
    // Find .BTF by its magic 0xeB9F followed by version 1.
    let pos = b
        .windows(4)
        .position(|w| w == [0x9f, 0xeb, 1, 0])
        .expect("BTF magic");
    // hdr_len, type_off, type_len, str_off, str_len follow; make type_len huge.
    let mut c = b.clone();
    c[pos + 12..pos + 16].copy_from_slice(&0x7fff_fff0u32.to_le_bytes());
    let e = Object::parse(&c, "x").unwrap_err();
    let msg = error_chain(&e);
    assert!(msg.contains(".BTF"), "{msg}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// Random byte mutations of every fixture: parsing returns Ok or Err,
    /// never panics, never hangs.
    #[test]
    fn mutated_fixtures_never_panic(
        which in 0usize..64,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
    ) {
        let fixtures = all_fixtures();
        let (_, bytes) = &fixtures[which % fixtures.len()];
        let mut b = bytes.clone();
        for (i, v) in edits {
            let at = i.index(b.len());
            b[at] = v;
        }
        let _ = Object::parse(&b, "mutated");
    }

    /// Mutations aimed at the BTF and BTF.ext bytes specifically (where
    /// random ELF-level mutations rarely land).
    #[test]
    fn mutated_btf_never_panics(
        which in 0usize..64,
        edits in proptest::collection::vec((0usize..4096, any::<u8>()), 1..8),
    ) {
        let fixtures = all_fixtures();
        let (_, bytes) = &fixtures[which % fixtures.len()];
        let mut b = bytes.clone();
        let starts: Vec<usize> = b
            .windows(4)
            .enumerate()
            .filter(|(_, w)| w[0] == 0x9f && w[1] == 0xeb && w[2] == 1)
            .map(|(i, _)| i)
            .collect();
        for (k, (off, v)) in edits.into_iter().enumerate() {
            if let Some(&s) = starts.get(k % starts.len().max(1)) {
                let at = s + off;
                if at < b.len() {
                    b[at] = v;
                }
            }
        }
        let _ = Object::parse(&b, "mutated");
    }
}
