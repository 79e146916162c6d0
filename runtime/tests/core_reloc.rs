//! The user-space CO-RE engine: `core.bpf.o` relocated against the running
//! kernel's BTF (checked against a reading of vmlinux BTF done here, not by
//! the engine, and instruction by instruction against what libbpf patched),
//! against its own BTF and against hand-built targets; small hand-built
//! cases for each rule (resizing loads, bitfields, ambiguity, anonymous
//! members, flexible arrays, enum64, TYPE_MATCHES); and bad input, which must
//! give located errors and never panic.

#[path = "core_reloc/fixture.rs"]
mod fixture;
#[path = "core_reloc/support.rs"]
mod support;

use std::sync::Arc;

use proptest::prelude::*;
use skelgen_runtime::btf::ext::{BtfExt, CoreRelo, CoreReloKind};
use skelgen_runtime::btf::{Btf, BtfError, Kind};
use skelgen_runtime::co_re::{
    is_poisoned, relocate_program, CoreTarget, ReloError, RelocStats, POISON_HELPER_ID,
};
use skelgen_runtime::insn::{Insn, BPF_ALU, BPF_ALU64, BPF_DW, BPF_W};

use fixture::*;
use support::*;
use CoreReloKind::*;

// ---------------------------------------------------------------------------
// 1. The fixture against the running kernel and against itself.
// ---------------------------------------------------------------------------

#[test]
fn fixture_against_the_kernel_btf() {
    let Some(vmlinux) = kernel_btf() else { return };
    let (fx, stats) = check_fixture_against(vmlinux.clone());
    assert_eq!(
        stats,
        RelocStats {
            applied: fx.relos.len(),
            poisoned: 0
        }
    );

    // The header's facts, spelled out.
    let at = |kind: CoreReloKind, root: &str, field: Option<&str>| {
        let r = fx
            .relos
            .iter()
            .find(|r| {
                r.kind == kind && fx.describe(r) == (root.to_owned(), field.map(str::to_owned))
            })
            .unwrap_or_else(|| panic!("no {kind} on {root}.{field:?}"));
        seen(&fx.insns, (r.insn_off / 8) as usize)
    };
    let task = vmlinux
        .find_by_name_kind("task_struct", Kind::Struct)
        .unwrap();
    let (pid_bits, _, _) = find_member(&vmlinux, task, "pid").unwrap();
    assert_eq!(
        at(FieldByteOffset, "task_struct", Some("pid")),
        Seen::Value(pid_bits / 8)
    );
    assert_eq!(
        at(TypeSize, "task_struct", None),
        Seen::Value(u64::from(vmlinux.size_of(task).unwrap()))
    );
    assert_eq!(
        at(TypeIdTarget, "task_struct", None),
        Seen::Value(u64::from(task))
    );
    assert_eq!(
        at(EnumvalValue, "pid_type___skel", Some("PIDTYPE_SID___skel")),
        Seen::Value(3)
    );
    assert_eq!(
        at(
            EnumvalExists,
            "pid_type___skel",
            Some("SKELGEN_FAKE_PIDTYPE___skel")
        ),
        Seen::Value(0)
    );
    assert_eq!(
        at(
            FieldExists,
            "task_struct___flavor",
            Some("skelgen_no_such_field")
        ),
        Seen::Value(0)
    );
    assert_eq!(
        at(FieldExists, "task_struct___flavor", Some("pid")),
        Seen::Value(1)
    );
    assert_eq!(at(TypeExists, "skelgen_no_such_type", None), Seen::Value(0));
    assert_eq!(
        at(FieldByteSize, "task_struct", Some("comm")),
        Seen::Value(16)
    );
    assert_eq!(
        at(FieldByteSize, "task_struct", Some("pid")),
        Seen::Value(4)
    );
    eprintln!(
        "vmlinux: task_struct [{task}] size {}, pid at byte {}",
        vmlinux.size_of(task).unwrap(),
        pid_bits / 8
    );
}

/// Against its own BTF, `task_struct` and `task_struct___flavor` are both
/// candidates for `task_struct` and disagree on where `pid` is: libbpf
/// refuses such a relocation, and so does the engine.
#[test]
fn fixture_against_its_own_btf_is_ambiguous() {
    let fx = Fixture::load();
    let own = CoreTarget::new(Arc::new(Btf::parse(fx.local().raw()).unwrap()));
    let mut insns = fx.insns.clone();
    let err =
        relocate_program(fx.local(), &own, "core_getppid", &mut insns, &fx.relos).unwrap_err();
    assert!(
        matches!(
            *err.source,
            ReloError::FieldAmbiguity {
                first_id: 5,
                first_bit_offset: 128,
                other_id: 13,
                other_bit_offset: 0
            }
        ),
        "{:?}",
        err.source
    );
    assert_eq!(
        err.to_string(),
        "program 'core_getppid': CO-RE relocation #0 (byte_off) at instruction #14 \
         (byte offset 112) of local type id 5 (STRUCT task_struct), access \"0:5\""
    );
    assert_eq!(insns, fx.insns);
}

/// The same patches as libbpf, instruction by instruction.
#[test]
fn fixture_agrees_with_libbpf() {
    let Some(vmlinux) = kernel_btf() else { return };
    let path = skelgen_test_support::fixture_path("core");
    let Some(libbpf) = libbpf_patches(path.to_str().expect("utf-8 path")) else {
        return;
    };
    let fx = Fixture::load();
    let mut insns = fx.insns.clone();
    relocate_program(
        fx.local(),
        &CoreTarget::new(vmlinux),
        "core_getppid",
        &mut insns,
        &fx.relos,
    )
    .unwrap();
    assert_eq!(
        libbpf.len(),
        fx.relos.len(),
        "libbpf patched one instruction per record"
    );
    for (&idx, &want) in &libbpf {
        // libbpf logs ALU immediates as u32.
        let alu = matches!(insns[idx].class(), BPF_ALU | BPF_ALU64);
        let got = match seen(&insns, idx) {
            Seen::Value(v) if alu => Seen::Value(v as u32 as u64),
            other => other,
        };
        assert_eq!(got, want, "insn #{idx}");
    }
}

// ---------------------------------------------------------------------------
// 2. Hand-built targets.
// ---------------------------------------------------------------------------

/// A kernel where task_struct is a flavor (`task_struct___v2`), `pid` moved,
/// `tgid` sits in an anonymous union, `comm` doubled, and `signal`, the
/// bitfields and `signal_struct` are gone; PIDTYPE_SID is 7.
fn small_kernel() -> Btf {
    let mut b = BtfBuilder::new();
    let int = b.int("int", 4, true);
    let uint = b.int("unsigned int", 4, false);
    let chr = b.int("char", 1, true);
    let pid_t = b.typedef("pid_t", int);
    let task_ptr = b.ptr(int + 6); // the struct below
    let comm = b.array(chr, 32);
    let task = b.strukt(
        "task_struct___v2",
        256,
        &[
            ("__state", uint, 0, 0),
            ("pid", pid_t, 200 * 8, 0),
            ("", int + 7, 204 * 8, 0), // the union below
            ("real_parent", task_ptr, 208 * 8, 0),
            ("comm", comm, 216 * 8, 0),
        ],
    );
    assert_eq!(task, int + 6);
    b.union("", 4, &[("tgid", pid_t, 0, 0)]);
    b.enum32(
        "pid_type",
        &[("PIDTYPE_PID", 0), ("PIDTYPE_TGID", 1), ("PIDTYPE_SID", 7)],
    );
    b.build()
}

#[test]
fn fixture_against_a_hand_built_kernel() {
    let (fx, stats) = check_fixture_against(Arc::new(small_kernel()));
    // signal, its two bitfields' 6 records each, and the offset of signal.
    assert_eq!(stats.poisoned, 19, "{stats:?}");
    assert_eq!(stats.applied + stats.poisoned, fx.relos.len());
    let pid = fx.relos.iter().find(|r| r.kind == FieldByteOffset).unwrap();
    assert_eq!(
        seen(&fx.insns, (pid.insn_off / 8) as usize),
        Seen::Value(200)
    );
    let poisoned = fx.insns.iter().filter(|i| is_poisoned(i)).count();
    assert_eq!(poisoned, 19);
    assert_eq!(
        fx.insns.iter().find(|i| is_poisoned(i)).unwrap().imm,
        195_896_080
    );
}

#[test]
fn loads_resize_for_unsigned_fields_and_poison_for_signed() {
    let mut l = BtfBuilder::new();
    let (u32_, i32_) = (l.int("unsigned int", 4, false), l.int("int", 4, true));
    let s = l.strukt("s", 8, &[("u", u32_, 0, 0), ("i", i32_, 32, 0)]);
    let (a0, a1) = (l.s("0:0"), l.s("0:1"));
    let mut t = BtfBuilder::new();
    let (u64_, i64_) = (t.int("unsigned long", 8, false), t.int("long", 8, true));
    t.strukt(
        "s",
        24,
        &[("pad", u64_, 0, 0), ("u", u64_, 64, 0), ("i", i64_, 128, 0)],
    );

    let mut insns = vec![ldx(BPF_W, 0), ldx(BPF_W, 4), exit()];
    let relos = [
        relo(0, s, a0, FieldByteOffset),
        relo(1, s, a1, FieldByteOffset),
    ];
    let stats = run(&l.build(), t.build(), &mut insns, &relos).unwrap();
    assert_eq!(
        stats,
        RelocStats {
            applied: 1,
            poisoned: 1
        }
    );
    assert_eq!(insns[0], ldx(BPF_DW, 8));
    assert!(is_poisoned(&insns[1]));
}

#[test]
fn bitfields_get_offsets_sizes_shifts_and_signedness() {
    let mut l = BtfBuilder::new();
    let (uint, int) = (l.int("unsigned int", 4, false), l.int("int", 4, true));
    let bf = l.strukt("bf", 4, &[("a", uint, 0, 3), ("b", int, 3, 5)]);
    let (aa, ab) = (l.s("0:0"), l.s("0:1"));
    let mut t = BtfBuilder::new();
    let (uint, int) = (t.int("unsigned int", 4, false), t.int("int", 4, true));
    let u64_ = t.int("unsigned long", 8, false);
    // `a` now straddles a 32-bit boundary: only an 8-byte load covers it.
    t.strukt(
        "bf",
        16,
        &[("x", u64_, 0, 0), ("a", uint, 94, 3), ("b", int, 100, 5)],
    );

    // Local values: a at bits 0..3, b at 3..8 of one 4-byte word.
    let kinds = [
        FieldByteOffset,
        FieldByteSize,
        FieldLShiftU64,
        FieldRShiftU64,
        FieldSigned,
    ];
    let local_vals = [[0, 4, 61, 61, 0], [0, 4, 56, 59, 1]];
    let mut insns = Vec::new();
    let mut relos = Vec::new();
    for (field, access) in [aa, ab].into_iter().enumerate() {
        for (k, kind) in kinds.iter().enumerate() {
            relos.push(relo(insns.len() as u32, bf, access, *kind));
            insns.push(mov(local_vals[field][k]));
        }
    }
    insns.push(exit());
    let stats = run(&l.build(), t.build(), &mut insns, &relos).unwrap();
    assert_eq!(stats.applied, 10);
    let v: Vec<u64> = (0..10)
        .map(|i| match seen(&insns, i) {
            Seen::Value(v) => v,
            Seen::Poison => panic!("insn #{i} poisoned"),
        })
        .collect();
    assert_eq!(&v[..5], &[8, 8, 31, 61, 0], "a");
    assert_eq!(&v[5..], &[12, 4, 55, 59, 1], "b");
    for (field, bit_off, bits, pattern, signed) in
        [(0, 94, 3, 5u64, false), (1, 100, 5, (-3i64) as u64, true)]
    {
        let [off, size, l, r, _] = v[field * 5..field * 5 + 5] else {
            unreachable!()
        };
        let mem = with_field(24, bit_off, bits, pattern);
        let want = if signed {
            pattern
        } else {
            pattern & ((1 << bits) - 1)
        };
        assert_eq!(extract(&mem, off, size, l, r, signed), want);
    }
}

#[test]
fn matching_candidates_must_agree() {
    let mut l = BtfBuilder::new();
    let int = l.int("int", 4, true);
    let s = l.strukt("s", 4, &[("x", int, 0, 0)]);
    let a = l.s("0:0");
    let local = l.build();
    let target = |second_off: u32, second_ty_long: bool| {
        let mut t = BtfBuilder::new();
        let int = t.int("int", 4, true);
        let long = t.int("long", 8, true);
        t.strukt("s", 8, &[("x", int, 0, 0)]);
        let ty = if second_ty_long { long } else { int };
        t.strukt("s___v2", 16, &[("x", ty, second_off, 0)]);
        t.strukt("s", 8, &[("y", int, 0, 0)]); // no `x`: not a match, no vote
        t.build()
    };
    let offset = [relo(0, s, a, FieldByteOffset)];
    let size = [relo(0, s, a, FieldByteSize)];

    let mut insns = vec![mov(0), exit()];
    run(&local, target(0, false), &mut insns, &offset).unwrap();
    assert_eq!(insns[0], mov(0));

    let err = run(&local, target(32, false), &mut insns, &offset).unwrap_err();
    assert!(
        matches!(
            *err.source,
            ReloError::FieldAmbiguity {
                first_bit_offset: 0,
                other_bit_offset: 32,
                ..
            }
        ),
        "{:?}",
        err.source
    );

    let mut insns = vec![mov(4), exit()];
    let err = run(&local, target(0, true), &mut insns, &size).unwrap_err();
    assert!(
        matches!(*err.source, ReloError::ValueAmbiguity { .. }),
        "{:?}",
        err.source
    );
    assert_eq!(
        insns[0],
        mov(4),
        "failed relocation leaves the program untouched"
    );
}

#[test]
fn anonymous_members_flexible_arrays_and_array_bounds() {
    let mut l = BtfBuilder::new();
    let int = l.int("int", 4, true);
    let flex = l.array(int, 0);
    let arr8 = l.array(int, 8);
    let outer = l.strukt(
        "outer",
        40,
        &[
            ("n", int, 0, 0),
            ("arr", arr8, 32, 0),
            ("data", flex, 288, 0),
        ],
    );
    let (data3, arr6) = (l.s("0:2:3"), l.s("0:1:6"));
    let mut t = BtfBuilder::new();
    let int = t.int("int", 4, true);
    let long = t.int("long", 8, true);
    let flex = t.array(int, 0);
    let arr4 = t.array(int, 4);
    let inner = t.strukt(
        "",
        24,
        &[
            ("n", int, 0, 0),
            ("arr", arr4, 32, 0),
            ("data", flex, 160, 0),
        ],
    );
    t.strukt("outer", 32, &[("hdr", long, 0, 0), ("", inner, 64, 0)]);

    let mut insns = vec![mov(36 + 12), mov(4 + 24), mov(1), exit()];
    let relos = [
        relo(0, outer, data3, FieldByteOffset),
        relo(1, outer, arr6, FieldByteOffset),
        relo(2, outer, arr6, FieldExists),
    ];
    let stats = run(&l.build(), t.build(), &mut insns, &relos).unwrap();
    // data[3] of the flexible array: 8 (hdr) + 20 (data) + 12.
    assert_eq!(seen(&insns, 0), Seen::Value(40));
    // arr[6] is past the target's 4 elements: no match.
    assert_eq!(seen(&insns, 1), Seen::Poison);
    assert_eq!(seen(&insns, 2), Seen::Value(0));
    assert_eq!(
        stats,
        RelocStats {
            applied: 2,
            poisoned: 1
        }
    );
}

#[test]
fn enum_values_sign_extend_and_ld_imm64_patches_both_slots() {
    let mut l = BtfBuilder::new();
    let e = l.enum32("e", &[("NEG", -1)]);
    let big = l.enum64("big___local", &[("B_ONE", 1), ("B_TWO", 2)]);
    let (a0, a1) = (l.s("0"), l.s("1"));
    let mut t = BtfBuilder::new();
    t.enum32("e", &[("OTHER", 0), ("NEG", -5)]);
    t.enum64("big", &[("B_ZERO", 0), ("B_ONE", 0x1_0000_0002)]);

    let one = Insn::ld_imm64(1, 0, 1);
    let two = Insn::ld_imm64(2, 0, 2);
    let mut insns = vec![mov(-1), one[0], one[1], two[0], two[1], exit()];
    let relos = [
        relo(0, e, a0, EnumvalValue),
        relo(1, big, a0, EnumvalValue),
        relo(3, big, a1, EnumvalValue),
    ];
    let stats = run(&l.build(), t.build(), &mut insns, &relos).unwrap();
    assert_eq!(
        stats,
        RelocStats {
            applied: 2,
            poisoned: 1
        }
    );
    assert_eq!(insns[0], mov(-5));
    assert_eq!(seen(&insns, 1), Seen::Value(0x1_0000_0002));
    assert!(
        is_poisoned(&insns[3]) && is_poisoned(&insns[4]),
        "both slots of ld_imm64"
    );
    assert_eq!(insns[3].imm, POISON_HELPER_ID);
}

#[test]
fn type_relocations_exists_size_ids_and_matches() {
    let mut l = BtfBuilder::new();
    let int = l.int("int", 4, true);
    let m = l.strukt("m___mine", 4, &[("a", int, 0, 0)]);
    let gone = l.strukt("gone", 4, &[("a", int, 0, 0)]);
    let a = l.s("0");
    let local = l.build();
    let target = |a_signed: bool| {
        let mut t = BtfBuilder::new();
        let a = t.int(if a_signed { "int" } else { "unsigned int" }, 4, a_signed);
        let long = t.int("long", 8, true);
        let id = t.strukt("m", 16, &[("a", a, 0, 0), ("b", long, 64, 0)]);
        (t.build(), id)
    };
    let relos = [
        relo(0, m, a, TypeExists),
        relo(1, m, a, TypeSize),
        relo(2, m, a, TypeIdTarget),
        relo(3, m, a, TypeIdLocal),
        relo(4, m, a, TypeMatches),
        relo(5, gone, a, TypeExists),
        relo(6, gone, a, TypeSize),
        relo(7, gone, a, TypeIdTarget),
        relo(8, gone, a, TypeMatches),
    ];
    let program = || {
        vec![
            mov(1),
            mov(4),
            mov(0),
            mov(77),
            mov(1),
            mov(1),
            mov(4),
            mov(0),
            mov(1),
            exit(),
        ]
    };
    for signed in [true, false] {
        let (target, m_id) = target(signed);
        let mut insns = program();
        run(&local, target, &mut insns, &relos).unwrap();
        let vals: Vec<Seen> = (0..9).map(|i| seen(&insns, i)).collect();
        let v = Seen::Value;
        let matches = signed as u64;
        assert_eq!(
            vals,
            [
                v(1),
                v(16),
                v(u64::from(m_id)),
                v(u64::from(m)),
                v(matches),
                v(0),
                v(0),
                v(0),
                v(0)
            ],
            "int a signed: {signed}"
        );
    }
}

// ---------------------------------------------------------------------------
// 3. Bad input.
// ---------------------------------------------------------------------------

/// A local BTF with a struct, an enum, an anonymous struct, and one slot
/// per relocation kind to aim at.
struct Bad {
    b: BtfBuilder,
    s: u32,
    e: u32,
    anon: u32,
}

fn bad() -> Bad {
    let mut b = BtfBuilder::new();
    let int = b.int("int", 4, true);
    let arr = b.array(int, 2);
    let s = b.strukt("s", 12, &[("x", int, 0, 0), ("arr", arr, 32, 0)]);
    let e = b.enum32("e", &[("E0", 0)]);
    let anon = b.strukt("", 4, &[("y", int, 0, 0)]);
    Bad { b, s, e, anon }
}

fn target_for_bad() -> Btf {
    let mut t = BtfBuilder::new();
    let int = t.int("int", 4, true);
    let arr = t.array(int, 2);
    t.strukt("s", 12, &[("x", int, 0, 0), ("arr", arr, 32, 0)]);
    t.enum32("e", &[("E0", 0)]);
    t.build()
}

fn program() -> Vec<Insn> {
    vec![mov(0), ldx(BPF_W, 0), exit()]
}

#[test]
fn malformed_access_strings_are_located_errors() {
    let mut bad = bad();
    let s = bad.s;
    let cases: Vec<(&str, CoreReloKind)> = vec![
        ("", FieldByteOffset),
        (":", FieldByteOffset),
        (":0", FieldByteOffset),
        ("0:", FieldByteOffset),
        ("0::0", FieldByteOffset),
        ("a", FieldByteOffset),
        ("0:x", FieldByteOffset),
        ("-1", FieldByteOffset),
        ("0:+1", FieldByteOffset),
        ("0:99999999999", FieldByteOffset),
        ("0:2", FieldByteOffset),   // member out of range
        ("0:0:0", FieldByteOffset), // an int is not indexable
        ("0:1:2", FieldByteOffset), // array index out of range
        ("1", TypeSize),            // type-based kinds take "0"
        ("0:0", TypeExists),
        ("0", EnumvalValue), // s is no enum
    ];
    let long = ["0"; 70].join(":");
    let mut offs: Vec<u32> = cases.iter().map(|(a, _)| bad.b.s(a)).collect();
    offs.push(bad.b.s(&long));
    let local = bad.b.build();
    let kinds = cases.iter().map(|c| c.1).chain([FieldByteOffset]);
    for ((off, kind), text) in offs
        .into_iter()
        .zip(kinds)
        .zip(cases.iter().map(|c| c.0).chain([long.as_str()]))
    {
        let mut insns = program();
        let err = run(
            &local,
            target_for_bad(),
            &mut insns,
            &[relo(0, s, off, kind)],
        )
        .unwrap_err();
        assert_eq!(
            (err.prog.as_str(), err.insn_index, err.kind, err.type_id),
            ("unit", 0, kind, s)
        );
        assert_eq!(err.type_desc, "STRUCT s");
        if text.len() <= 80 {
            assert_eq!(err.access, text);
        }
        let msg = err.to_string();
        assert!(
            msg.contains("program 'unit'") && msg.contains("instruction #0"),
            "{msg}"
        );
        assert_eq!(insns, program(), "{text:?}: program untouched");
    }
}

#[test]
fn out_of_range_ids_offsets_and_mismatched_instructions_are_errors() {
    let mut bad = bad();
    let (s, e, anon) = (bad.s, bad.e, bad.anon);
    let (a0, a00, a01, a011) = (
        bad.b.s("0"),
        bad.b.s("0:0"),
        bad.b.s("0:1"),
        bad.b.s("0:1:1"),
    );
    let local = bad.b.build();
    let strings_end = local.strings().len() as u32;
    let check = |relos: &[CoreRelo], insns: Vec<Insn>, ok: fn(&ReloError) -> bool| {
        let mut work = insns.clone();
        let err = run(&local, target_for_bad(), &mut work, relos).unwrap_err();
        assert!(ok(&err.source), "{relos:?}: {:?}", err.source);
        assert_eq!(work, insns);
        err
    };
    let err = check(&[relo(0, 999, a00, FieldByteOffset)], program(), |e| {
        matches!(
            e,
            ReloError::LocalBtf {
                source: BtfError::BadTypeId { id: 999, .. }
            }
        )
    });
    assert!(err.type_desc.contains("out of range"), "{}", err.type_desc);
    let err = check(
        &[relo(0, s, strings_end + 5, FieldByteOffset)],
        program(),
        |e| matches!(e, ReloError::LocalBtf { .. }),
    );
    assert!(err.access.contains("unreadable"), "{}", err.access);
    check(&[relo(3, s, a00, FieldByteOffset)], program(), |e| {
        matches!(e, ReloError::InsnOutOfRange { index: 3, len: 3 })
    });
    check(
        &[CoreRelo {
            insn_off: 4,
            ..relo(0, s, a00, FieldByteOffset)
        }],
        program(),
        |e| matches!(e, ReloError::InsnUnaligned { insn_off: 4 }),
    );
    let err = check(
        &[
            relo(0, s, a00, FieldByteOffset),
            relo(u32::MAX / 8, s, a00, FieldByteOffset),
        ],
        program(),
        |e| matches!(e, ReloError::InsnOutOfRange { .. }),
    );
    assert_eq!(err.relo_index, 1);
    // Relocations aimed at the wrong instruction.
    check(&[relo(2, s, a00, FieldByteOffset)], program(), |e| {
        matches!(e, ReloError::UnsupportedInsn { code: 0x95 })
    });
    check(&[relo(0, s, a01, FieldByteOffset)], program(), |e| {
        matches!(
            e,
            ReloError::UnexpectedValue {
                found: 0,
                expected: 4,
                ..
            }
        )
    });
    let ld = Insn::ld_imm64(1, 0, 0);
    check(
        &[relo(2, s, a00, FieldByteOffset)],
        vec![mov(0), exit(), ld[0]],
        |e| matches!(e, ReloError::InsnOutOfRange { index: 3, .. }),
    );
    let pseudo = Insn::ld_imm64(1, 1, 0);
    check(
        &[relo(0, s, a00, FieldByteOffset)],
        vec![pseudo[0], pseudo[1], exit()],
        |e| matches!(e, ReloError::LdImm64Form),
    );
    // Kinds that do not fit the access.
    check(&[relo(0, s, a0, FieldLShiftU64)], program(), |e| {
        matches!(e, ReloError::KindNotApplicable { .. })
    });
    check(&[relo(0, s, a011, FieldLShiftU64)], program(), |e| {
        matches!(e, ReloError::KindNotApplicable { .. })
    });
    check(&[relo(0, s, a0, EnumvalExists)], program(), |e| {
        matches!(e, ReloError::NotEnum { .. })
    });
    check(&[relo(0, e, a00, EnumvalValue)], program(), |e| {
        matches!(e, ReloError::AccessString { .. })
    });
    check(&[relo(0, anon, a00, FieldByteOffset)], program(), |e| {
        matches!(e, ReloError::AnonymousType)
    });
    // TYPE_ID_LOCAL needs no name.
    let mut insns = program();
    run(
        &local,
        target_for_bad(),
        &mut insns,
        &[relo(0, anon, a0, TypeIdLocal)],
    )
    .unwrap();
    assert_eq!(insns[0], mov(anon as i32));
}

#[test]
fn unknown_relocation_kinds_are_rejected_when_btf_ext_is_parsed() {
    let mut ext = Vec::new();
    ext.extend_from_slice(&[0x9f, 0xeb, 1, 0]);
    for w in [32u32, 0, 0, 0, 0, 0, 4 + 8 + 16] {
        ext.extend_from_slice(&w.to_le_bytes());
    }
    for w in [16u32, 1, 1, 0, 1, 0, 13] {
        ext.extend_from_slice(&w.to_le_bytes());
    }
    let err = BtfExt::parse(&ext).unwrap_err();
    assert!(
        matches!(
            err,
            BtfError::UnknownCoreReloKind {
                kind: 13,
                record: 0,
                ..
            }
        ),
        "{err}"
    );
    let len = ext.len();
    ext[len - 4] = 12;
    assert_eq!(
        BtfExt::parse(&ext).unwrap().core_relos[0].records[0].kind,
        TypeMatches
    );
}

#[test]
fn hostile_target_btf_ends_in_an_error() {
    let mut l = BtfBuilder::new();
    let int = l.int("int", 4, true);
    let s = l.strukt("s", 4, &[("x", int, 0, 0)]);
    let a = l.s("0:0");
    let local = l.build();

    // A struct that contains itself as an anonymous member.
    let mut t = BtfBuilder::new();
    t.strukt("s", 4, &[("", 1, 0, 0)]);
    let mut insns = program();
    let err = run(
        &local,
        t.build(),
        &mut insns,
        &[relo(0, s, a, FieldByteOffset)],
    )
    .unwrap_err();
    assert!(
        matches!(*err.source, ReloError::TooComplex { .. }),
        "{:?}",
        err.source
    );

    // Thirty levels of two anonymous members of the next level: 2^30 paths.
    let mut t = BtfBuilder::new();
    let int = t.int("int", 4, true);
    let mut level = t.strukt("", 4, &[("y", int, 0, 0)]);
    for _ in 0..30 {
        level = t.strukt("", 4, &[("", level, 0, 0), ("", level, 0, 0)]);
    }
    t.strukt("s", 4, &[("", level, 0, 0)]);
    let started = std::time::Instant::now();
    let err = run(
        &local,
        t.build(),
        &mut insns,
        &[relo(0, s, a, FieldByteOffset)],
    )
    .unwrap_err();
    assert!(
        matches!(*err.source, ReloError::TooComplex { .. }),
        "{:?}",
        err.source
    );
    assert!(started.elapsed().as_secs() < 30, "{:?}", started.elapsed());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Records of the fixture with one field replaced: relocation either
    /// succeeds or fails with the program untouched; it never panics.
    #[test]
    fn mutated_fixture_records_never_panic(
        which in any::<prop::sample::Index>(),
        field in 0u8..4,
        raw in prop_oneof![0u32..80, 0u32..2000, any::<u32>()],
        kind in 0u32..13,
    ) {
        let fx = Fixture::load();
        let mut relos = fx.relos.clone();
        let r = &mut relos[which.index(fx.relos.len())];
        match field {
            0 => r.insn_off = raw,
            1 => r.type_id = raw,
            2 => r.access_str_off = raw,
            _ => r.kind = CoreReloKind::from_raw(kind).unwrap(),
        }
        let target = CoreTarget::new(Arc::new(small_kernel()));
        let mut insns = fx.insns.clone();
        if relocate_program(fx.local(), &target, "core_getppid", &mut insns, &relos).is_err() {
            prop_assert_eq!(insns, fx.insns);
        }
    }

    /// Arbitrary access strings and kinds on hand-built types.
    #[test]
    fn arbitrary_access_strings_never_panic(
        access in "[0-9:ax-]{0,12}",
        ty in 0u32..9,
        kind in 0u32..13,
        insn in 0u32..4,
    ) {
        let mut bad = bad();
        let off = bad.b.s(&access);
        let local = bad.b.build();
        let mut insns = program();
        let _ = run(&local, target_for_bad(), &mut insns, &[relo(insn, ty, off, CoreReloKind::from_raw(kind).unwrap())]);
    }
}
