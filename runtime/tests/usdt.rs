//! USDT probes: notes and argument specs parsed from hand-made inputs (no
//! kernel), then `tests/usdt/usdt_target.c` built with gcc and its probes
//! traced by `tests/fixtures/attach.bpf.o`'s `handle_usdt`, which counts hits
//! and stores `bpf_usdt_arg(ctx, 0)`.
//!
//! The kernel tests need root, gcc and `<sys/sdt.h>` (Debian:
//! systemtap-sdt-dev); without them they print why and pass, unless
//! `SKELGEN_REQUIRE_KERNEL=1`.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use skelgen_runtime::attach::{
    self, AttachContext, AttachError, UsdtArg, UsdtArgLocation, UsdtError, UsdtSpec, USDT_SPEC_SIZE,
};
use skelgen_runtime::loader::{LoadedObject, OpenObject, OpenOptions};
use skelgen_runtime::sys::MapFd;
use skelgen_test_support as support;
use skelgen_test_support::usdt::{target, Target};

const EM_X86_64: u16 = 62;

// ---------------------------------------------------------------------------
// argument specs

fn arg(text: &str) -> Result<UsdtArg, UsdtError> {
    UsdtSpec::parse(EM_X86_64, text, 0).map(|s| s.args[0])
}

#[test]
fn x86_64_argument_specs() {
    let reg = |reg_off| UsdtArgLocation::Reg { reg_off };
    let cases: &[(&str, UsdtArgLocation, u8, bool)] = &[
        ("-4@%edi", reg(112), 4, true),
        ("8@%rax", reg(80), 8, false),
        ("1@%al", reg(80), 1, false),
        ("-2@%r8w", reg(72), 2, true),
        ("4@%r15d", reg(0), 4, false),
        ("1@%sil", reg(104), 1, false),
        ("8@%rsp", reg(152), 8, false),
        ("-4@$5", UsdtArgLocation::Const(5), 4, true),
        ("-4@$-9", UsdtArgLocation::Const(-9), 4, true),
        (
            "8@$18446744073709551615",
            UsdtArgLocation::Const(-1),
            8,
            false,
        ),
        (
            "8@-8(%rbp)",
            UsdtArgLocation::RegDeref {
                reg_off: 32,
                offset: -8,
            },
            8,
            false,
        ),
        (
            "4@12(%rsp)",
            UsdtArgLocation::RegDeref {
                reg_off: 152,
                offset: 12,
            },
            4,
            false,
        ),
        (
            "2@(%rdx)",
            UsdtArgLocation::RegDeref {
                reg_off: 96,
                offset: 0,
            },
            2,
            false,
        ),
    ];
    for &(text, location, size, signed) in cases {
        let got = arg(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(
            got,
            UsdtArg {
                location,
                size,
                signed
            },
            "{text}"
        );
        assert_eq!(got.bitshift(), 64 - 8 * size, "{text}");
    }

    let spec = UsdtSpec::parse(EM_X86_64, "  -4@%edi   8@-8(%rbp) -4@$5 ", 9).unwrap();
    assert_eq!(spec.args.len(), 3);
    assert_eq!(spec.cookie, 9);
    assert!(UsdtSpec::parse(EM_X86_64, "", 0).unwrap().args.is_empty());
}

#[test]
fn bad_argument_specs_are_errors() {
    for (text, expect) in [
        ("%edi", "size@location"),
        ("3@%edi", "not one of"),
        ("-16@%edi", "not one of"),
        ("x@%edi", "not a number"),
        ("4@%xyz", "unknown x86-64 register %xyz"),
        ("1@%ah", "high-byte"),
        ("4@$sym", "not a decimal integer"),
        ("-4@int_value(%rip)", "symbol-relative"),
        ("4@8(%rax,%rbx,2)", "indexed"),
        ("4@8(%rax", "closing"),
        ("4@8(rax)", "register"),
        ("4@rax", "expected `$imm`"),
        ("4@", "expected `$imm`"),
        ("4@$", "not a decimal"),
        ("@", "not a number"),
    ] {
        let err = arg(text).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(expect), "{text}: {msg}");
        assert!(matches!(err, UsdtError::Arg { index: 0, .. }), "{text}");
    }
    let thirteen = vec!["8@%rax"; 13].join(" ");
    assert!(matches!(
        UsdtSpec::parse(EM_X86_64, &thirteen, 0),
        Err(UsdtError::TooManyArgs { count: 13 })
    ));
    // The second argument is the bad one.
    let err = UsdtSpec::parse(EM_X86_64, "8@%rax 4@%bogus", 0).unwrap_err();
    assert!(matches!(err, UsdtError::Arg { index: 1, .. }), "{err}");
    // aarch64 (183) argument syntax is another language.
    let err = UsdtSpec::parse(183, "-4@x0", 0).unwrap_err();
    assert!(err.to_string().contains("only x86-64"), "{err}");
    // Arbitrary bytes never panic.
    for text in [
        "@@@",
        "-@%",
        "8@-(%rbp)",
        "8@99999999999999999999(%rbp)",
        "é@€",
        "8@%",
    ] {
        let _ = UsdtSpec::parse(EM_X86_64, text, 0);
    }
}

#[test]
fn spec_bytes_follow_usdt_bpf_h() {
    let spec = UsdtSpec::parse(EM_X86_64, "-4@%edi 2@-2(%rsp)", 0x1122).unwrap();
    let b = spec.to_bytes();
    assert_eq!(b.len(), USDT_SPEC_SIZE);
    // struct __bpf_usdt_arg_spec: val_off u64, arg_type u32, reg_off s16,
    // arg_signed u8, arg_bitshift s8.
    assert_eq!(&b[8..12], &1u32.to_ne_bytes()); // BPF_USDT_ARG_REG
    assert_eq!(&b[12..14], &112i16.to_ne_bytes());
    assert_eq!((b[14], b[15]), (1, 32));
    assert_eq!(&b[16..24], &(-2i64).to_ne_bytes());
    assert_eq!(&b[24..28], &2u32.to_ne_bytes()); // BPF_USDT_ARG_REG_DEREF
    assert_eq!(&b[28..30], &152i16.to_ne_bytes());
    assert_eq!((b[30], b[31]), (0, 48));
    assert!(b[32..192].iter().all(|&x| x == 0));
    assert_eq!(&b[192..200], &0x1122u64.to_ne_bytes()); // usdt_cookie
    assert_eq!(&b[200..202], &2i16.to_ne_bytes()); // arg_cnt
}

// ---------------------------------------------------------------------------
// notes, from a hand-made ELF

/// One stapsdt note: namesz, descsz, type 3, "stapsdt\0", then pc, base,
/// semaphore and three NUL-terminated strings, padded to 4.
fn stapsdt_note(pc: u64, base: u64, sema: u64, provider: &str, name: &str, args: &str) -> Vec<u8> {
    let mut desc = Vec::new();
    for v in [pc, base, sema] {
        desc.extend_from_slice(&v.to_le_bytes());
    }
    for s in [provider, name, args] {
        desc.extend_from_slice(s.as_bytes());
        desc.push(0);
    }
    let mut note = Vec::new();
    note.extend_from_slice(&8u32.to_le_bytes());
    note.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    note.extend_from_slice(&3u32.to_le_bytes());
    note.extend_from_slice(b"stapsdt\0");
    note.extend_from_slice(&desc);
    while note.len() % 4 != 0 {
        note.push(0);
    }
    note
}

/// A little ELF64 x86-64 `ET_DYN` file: an executable PT_LOAD at vaddr
/// 0x1000 (file offset 0x1000, 0x1000 bytes), a data PT_LOAD at vaddr
/// 0x4000 (file offset 0x2000), `.stapsdt.base` at `base_addr`, and
/// `.note.stapsdt` holding `notes`.
fn tiny_elf(notes: &[u8], base_addr: u64) -> Vec<u8> {
    const PHOFF: usize = 64;
    const NOTES: usize = 0x3000;
    let shstrtab = b"\0.note.stapsdt\0.stapsdt.base\0.shstrtab\0";
    let strtab_at = NOTES + notes.len();
    let shoff = (strtab_at + shstrtab.len() + 7) & !7;
    let mut f = vec![0u8; shoff + 4 * 64];
    let put = |f: &mut Vec<u8>, at: usize, bytes: &[u8]| {
        f[at..at + bytes.len()].copy_from_slice(bytes);
    };
    // ELF header.
    put(&mut f, 0, b"\x7fELF\x02\x01\x01");
    put(&mut f, 16, &3u16.to_le_bytes()); // ET_DYN
    put(&mut f, 18, &62u16.to_le_bytes()); // EM_X86_64
    put(&mut f, 20, &1u32.to_le_bytes());
    put(&mut f, 32, &(PHOFF as u64).to_le_bytes());
    put(&mut f, 40, &(shoff as u64).to_le_bytes());
    put(&mut f, 52, &64u16.to_le_bytes()); // e_ehsize
    put(&mut f, 54, &56u16.to_le_bytes()); // e_phentsize
    put(&mut f, 56, &2u16.to_le_bytes()); // e_phnum
    put(&mut f, 58, &64u16.to_le_bytes()); // e_shentsize
    put(&mut f, 60, &4u16.to_le_bytes()); // e_shnum
    put(&mut f, 62, &3u16.to_le_bytes()); // e_shstrndx
                                          // Program headers: PT_LOAD R+X, PT_LOAD R+W.
    for (i, (flags, offset, vaddr)) in [(5u32, 0x1000u64, 0x1000u64), (6, 0x2000, 0x4000)]
        .into_iter()
        .enumerate()
    {
        let at = PHOFF + i * 56;
        put(&mut f, at, &1u32.to_le_bytes());
        put(&mut f, at + 4, &flags.to_le_bytes());
        put(&mut f, at + 8, &offset.to_le_bytes());
        put(&mut f, at + 16, &vaddr.to_le_bytes());
        put(&mut f, at + 24, &vaddr.to_le_bytes());
        put(&mut f, at + 32, &0x1000u64.to_le_bytes());
        put(&mut f, at + 40, &0x1000u64.to_le_bytes());
        put(&mut f, at + 48, &0x1000u64.to_le_bytes());
    }
    put(&mut f, NOTES, notes);
    put(&mut f, strtab_at, shstrtab);
    // Section headers: null, .note.stapsdt, .stapsdt.base, .shstrtab.
    let section = |f: &mut Vec<u8>,
                   i: usize,
                   name: u32,
                   ty: u32,
                   addr: u64,
                   off: usize,
                   size: usize,
                   align: u64| {
        let at = shoff + i * 64;
        put(f, at, &name.to_le_bytes());
        put(f, at + 4, &ty.to_le_bytes());
        put(f, at + 16, &addr.to_le_bytes());
        put(f, at + 24, &(off as u64).to_le_bytes());
        put(f, at + 32, &(size as u64).to_le_bytes());
        put(f, at + 48, &align.to_le_bytes());
    };
    section(&mut f, 1, 1, 7, 0, NOTES, notes.len(), 4); // SHT_NOTE
    section(&mut f, 2, 15, 1, base_addr, 0x1800, 1, 1); // SHT_PROGBITS
    section(&mut f, 3, 29, 3, 0, strtab_at, shstrtab.len(), 1); // SHT_STRTAB
    f
}

#[test]
fn notes_from_a_hand_made_elf() {
    let mut notes = stapsdt_note(0x1100, 0x1800, 0, "prov", "zero", "");
    notes.extend(stapsdt_note(
        0x1200,
        0x1800,
        0x4010,
        "prov",
        "sema",
        "-4@%edi 8@$3",
    ));
    // Prelinked: the note's base says 0x1700, .stapsdt.base is at 0x1800,
    // so the probe moved by 0x100.
    notes.extend(stapsdt_note(0x1300, 0x1700, 0, "other", "moved", "8@%rax"));
    // Another owner's note is skipped.
    let mut foreign = stapsdt_note(0x1400, 0, 0, "x", "y", "");
    foreign[12..19].copy_from_slice(b"GNUxxxx");
    notes.extend(foreign);
    let elf = tiny_elf(&notes, 0x1800);
    let parsed = attach::parse_usdt_notes(&elf).unwrap();
    assert_eq!(parsed.machine, EM_X86_64);
    assert!(parsed.position_independent);
    let got: Vec<_> = parsed
        .notes
        .iter()
        .map(|n| {
            (
                n.provider.as_str(),
                n.name.as_str(),
                n.addr,
                n.file_offset,
                n.semaphore_addr,
                n.semaphore_offset,
                n.args.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("prov", "zero", 0x1100, 0x1100, 0, 0, ""),
            (
                "prov",
                "sema",
                0x1200,
                0x1200,
                0x4010,
                0x2010,
                "-4@%edi 8@$3"
            ),
            ("other", "moved", 0x1400, 0x1400, 0, 0, "8@%rax"),
        ]
    );
}

#[test]
fn bad_notes_are_errors_that_say_where() {
    // A probe outside every segment.
    let elf = tiny_elf(&stapsdt_note(0x9000, 0, 0, "p", "n", ""), 0x1800);
    let err = attach::parse_usdt_notes(&elf).unwrap_err();
    assert!(err.to_string().contains("0x9000"), "{err}");
    // A probe in the data segment.
    let elf = tiny_elf(&stapsdt_note(0x4000, 0, 0, "p", "n", ""), 0x1800);
    let err = attach::parse_usdt_notes(&elf).unwrap_err();
    assert!(err.to_string().contains("not executable"), "{err}");
    // A descriptor without its strings' terminators.
    let mut note = stapsdt_note(0x1100, 0, 0, "p", "n", "");
    note.truncate(note.len() - 4);
    let descsz = (note.len() - 20) as u32;
    note[4..8].copy_from_slice(&descsz.to_le_bytes());
    let err = attach::parse_usdt_notes(&tiny_elf(&note, 0x1800)).unwrap_err();
    assert!(matches!(err, UsdtError::Note { offset: 0, .. }), "{err:?}");
    assert!(err.to_string().contains("NUL"), "{err}");
    // A descriptor too short for three addresses.
    let mut note = stapsdt_note(0x1100, 0, 0, "p", "n", "");
    note[4..8].copy_from_slice(&16u32.to_le_bytes());
    let err = attach::parse_usdt_notes(&tiny_elf(&note, 0x1800)).unwrap_err();
    assert!(err.to_string().contains("too short"), "{err}");
    // Sizes running past the section.
    let mut note = stapsdt_note(0x1100, 0, 0, "p", "n", "");
    note[4..8].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    let err = attach::parse_usdt_notes(&tiny_elf(&note, 0x1800)).unwrap_err();
    assert!(err.to_string().contains("past the section"), "{err}");
    // Not ELF.
    assert!(matches!(
        attach::parse_usdt_notes(b"nope"),
        Err(UsdtError::Elf { .. })
    ));
}

#[test]
fn mangled_notes_never_panic() {
    let mut notes = stapsdt_note(0x1100, 0x1800, 0x4010, "prov", "one", "-4@%edi");
    notes.extend(stapsdt_note(
        0x1200,
        0x1800,
        0,
        "prov",
        "two",
        "8@-8(%rbp) 1@$1",
    ));
    let elf = tiny_elf(&notes, 0x1800);
    for len in 0..elf.len() {
        let _ = attach::parse_usdt_notes(&elf[..len]);
    }
    // Every byte of the note section and of the headers, set to a few values.
    let targets = (0..0x140).chain(0x3000..0x3000 + notes.len());
    for at in targets {
        for value in [0x00, 0x01, 0x7f, 0x80, 0xff] {
            let mut bad = elf.clone();
            bad[at] = value;
            if let Ok(parsed) = attach::parse_usdt_notes(&bad) {
                for n in &parsed.notes {
                    let _ = UsdtSpec::parse(parsed.machine, &n.args, 0);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// on the kernel

static KERNEL: Mutex<()> = Mutex::new(());

/// The kernel lock and the built target program, or `None` (after saying
/// why) when the tests cannot run. The lock keeps one test's probes from
/// counting another's.
fn kernel() -> Option<(MutexGuard<'static, ()>, PathBuf)> {
    if !support::kernel() {
        return None;
    }
    let guard = KERNEL.lock().unwrap_or_else(|e| e.into_inner());
    match target() {
        Ok(path) => Some((guard, path.clone())),
        Err(reason) => {
            support::require(false, reason);
            None
        }
    }
}

/// `.bss` offsets (attach.bpf.c's header: usdt_hits is the sixth __u64,
/// usdt_arg0 the long after the eleven counters and two probe values).
const USDT_HITS: usize = 40;
const USDT_ARG0: usize = 104;

struct Fixture {
    obj: LoadedObject,
}

impl Fixture {
    fn load() -> Fixture {
        let bytes = support::fixture("attach");
        // targ_tgid stays 0: the probes are filtered by pid at attach time.
        let obj = OpenObject::open(&bytes, "attach", OpenOptions::default())
            .unwrap()
            .load()
            .unwrap();
        Fixture { obj }
    }

    fn map(&self, name: &str) -> &MapFd {
        let index = self
            .obj
            .object()
            .maps
            .iter()
            .position(|m| m.name == name)
            .unwrap_or_else(|| panic!("no map {name}"));
        &self.obj.map(index).unwrap().fd
    }

    fn prog(&self) -> BorrowedFd<'_> {
        let index = self
            .obj
            .object()
            .programs
            .iter()
            .position(|p| p.name == "handle_usdt")
            .unwrap();
        self.obj.prog_fd(index).unwrap().as_fd()
    }

    fn bss(&self, offset: usize) -> i64 {
        let map = self.map(".bss");
        let mut value = vec![0u8; map.value_size() as usize];
        assert!(map.lookup(&0u32.to_ne_bytes(), &mut value, 0).unwrap());
        i64::from_ne_bytes(value[offset..offset + 8].try_into().unwrap())
    }

    fn hits(&self) -> i64 {
        self.bss(USDT_HITS)
    }

    fn arg0(&self) -> i64 {
        self.bss(USDT_ARG0)
    }

    fn spec(&self, id: u32) -> Vec<u8> {
        let map = self.map("__bpf_usdt_specs");
        let mut value = vec![0u8; USDT_SPEC_SIZE];
        assert!(map.lookup(&id.to_ne_bytes(), &mut value, 0).unwrap());
        value
    }

    fn attach(
        &self,
        pid: Option<i32>,
        binary: &str,
        name: &str,
        cookie: u64,
    ) -> Result<attach::Link, AttachError> {
        attach::attach_usdt(
            self.prog(),
            pid,
            binary,
            "skelgen",
            name,
            cookie,
            self.map("__bpf_usdt_specs"),
            Some(self.map("__bpf_usdt_ip_to_spec_id")),
        )
    }
}

#[test]
fn probes_fire_with_their_first_argument() {
    let Some((_k, exe)) = kernel() else { return };
    let exe_str = exe.to_str().unwrap();
    let f = Fixture::load();
    let mut t = Target::spawn(&exe);
    let pid = Some(t.pid());

    // (probe, commands that fire it, arg0 the program sees)
    let cases: [(&str, &[&str], i64); 4] = [
        ("zero", &["zero"], -ENOENT),
        ("one", &["one", "one2"], -42),
        ("three", &["three"], 65000),
        ("seven", &["seven"], -7),
    ];
    for (probe, commands, arg0) in cases {
        let link = f.attach(pid, exe_str, probe, 0).unwrap();
        assert_eq!(link.parts().len(), commands.len(), "{probe}");
        assert_eq!(link.kind(), "multi-probe link");
        let before = f.hits();
        for command in commands {
            t.fire(command);
            assert_eq!(f.arg0(), arg0, "{probe} from {command}");
        }
        assert_eq!(f.hits() - before, commands.len() as i64, "{probe}");
        drop(link);
        for command in commands {
            t.fire(command);
        }
        assert_eq!(f.hits() - before, commands.len() as i64, "{probe} detached");
    }

    // The semaphore: 0 until a probe is attached, which the guarded probe
    // only fires with.
    assert_eq!(t.semaphore(), 0);
    let before = f.hits();
    t.fire("sema");
    assert_eq!(f.hits(), before);
    let link = f.attach(pid, exe_str, "sema", 0).unwrap();
    assert_eq!(t.semaphore(), 1);
    t.fire("sema");
    assert_eq!(f.hits(), before + 1);
    assert_eq!(f.arg0(), 1234567890123);
    drop(link);
    assert_eq!(t.semaphore(), 0);
}

/// What `bpf_usdt_arg()` returns for an argument the probe does not have.
const ENOENT: i64 = 2;

#[test]
fn specs_are_shared_by_identical_sites_and_carry_the_cookie() {
    let Some((_k, exe)) = kernel() else { return };
    let f = Fixture::load();
    let mut t = Target::spawn(&exe);
    // Both `one` sites have `-4@%eax`: one spec, id 0.
    let link = f
        .attach(Some(t.pid()), exe.to_str().unwrap(), "one", 0xfeed)
        .unwrap();
    let spec = f.spec(0);
    assert_eq!(&spec[8..12], &1u32.to_ne_bytes()); // BPF_USDT_ARG_REG
    assert_eq!(&spec[12..14], &80i16.to_ne_bytes()); // rax
    assert_eq!((spec[14], spec[15]), (1, 32));
    assert_eq!(&spec[192..200], &0xfeedu64.to_ne_bytes());
    assert_eq!(&spec[200..202], &1i16.to_ne_bytes());
    assert!(
        f.spec(1).iter().all(|&b| b == 0),
        "a second spec was written"
    );
    // A second attachment while the first holds id 0 gets id 1.
    let three = f
        .attach(Some(t.pid()), exe.to_str().unwrap(), "three", 0)
        .unwrap();
    assert_eq!(&f.spec(1)[200..202], &3i16.to_ne_bytes());
    drop((link, three));
    // Freed: the next attachment reuses id 0.
    let seven = f
        .attach(Some(t.pid()), exe.to_str().unwrap(), "seven", 0)
        .unwrap();
    assert_eq!(&f.spec(0)[200..202], &1i16.to_ne_bytes());
    assert_eq!(&f.spec(0)[8..12], &0u32.to_ne_bytes()); // BPF_USDT_ARG_CONST
    assert_eq!(&f.spec(0)[0..8], &(-7i64).to_ne_bytes());
    t.fire("seven");
    assert_eq!(f.arg0(), -7);
    drop(seven);
}

#[test]
fn auto_attach_with_the_skeleton_maps() {
    let Some((_k, exe)) = kernel() else { return };
    let f = Fixture::load();
    let mut t = Target::spawn(&exe);
    let section = format!("usdt/{}:skelgen:seven", exe.display());

    // Without the maps: an error that says what is missing.
    let err = attach::auto_attach(f.prog(), "handle_usdt", &section).unwrap_err();
    assert!(matches!(err, AttachError::Target { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("__bpf_usdt_specs"), "{msg}");
    assert!(
        msg.contains("handle_usdt") && msg.contains(&section),
        "{msg}"
    );

    let maps = AttachContext {
        usdt_specs: Some(f.map("__bpf_usdt_specs")),
        usdt_ip_to_id: Some(f.map("__bpf_usdt_ip_to_spec_id")),
    };
    let link = attach::auto_attach_with(f.prog(), "handle_usdt", &section, &maps)
        .unwrap()
        .expect("a usdt section with a target is attached");
    let before = f.hits();
    t.fire("seven");
    assert_eq!(f.hits(), before + 1);
    assert_eq!(f.arg0(), -7);
    drop(link);
    // Without a target, usdt is manual.
    assert!(
        attach::auto_attach_with(f.prog(), "handle_usdt", "usdt", &maps)
            .unwrap()
            .is_none()
    );
}

#[test]
fn attach_errors_say_what_and_where() {
    let Some((_k, exe)) = kernel() else { return };
    let exe_str = exe.to_str().unwrap();
    let f = Fixture::load();

    let err = f.attach(None, exe_str, "nope", 0).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, AttachError::Target { .. }), "{err:?}");
    assert!(
        msg.contains("skelgen:nope") && msg.contains("skelgen:one"),
        "{msg}"
    );

    let err = f.attach(None, "/nonexistent/bin", "one", 0).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/bin"), "{err}");

    // A binary without notes.
    let err = f.attach(None, "/bin/true", "one", 0).unwrap_err();
    assert!(err.to_string().contains("0 probes"), "{err}");

    // The wrong map as specs.
    let err = attach::attach_usdt(
        f.prog(),
        None,
        exe_str,
        "skelgen",
        "one",
        0,
        f.map(".bss"),
        None,
    )
    .unwrap_err();
    assert!(err.to_string().contains("__bpf_usdt_specs"), "{err}");
    let detail = format!("{err:?}");
    assert!(detail.contains("value 208 B"), "{detail}");
}
