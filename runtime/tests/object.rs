//! The object model against the fixtures: every expected value here is
//! written from the fixture's C source (its header lists the facts), not
//! copied from the model's output.

use skelgen_runtime::btf::{TypeKind, VarLinkage};
use skelgen_runtime::obj::{
    DataKind, ExternKind, KconfigType, Map, MapKind, MapType, Object, RelocKind, SlotTarget,
};
use skelgen_test_support::{self as support, all_fixtures, fixtures_dir};

fn fixture(name: &str) -> Object {
    Object::parse(&support::fixture(name), name)
        .unwrap_or_else(|e| panic!("{}: {e}", support::fixture_path(name).display()))
}

fn map<'a>(obj: &'a Object, name: &str) -> &'a Map {
    obj.map(name)
        .unwrap_or_else(|| panic!("{}: no map '{name}'", obj.name))
}

/// (name, offset, size) of every variable of a data map, by offset.
fn vars(obj: &Object, map_name: &str) -> Vec<(String, u32, u32)> {
    let btf = obj.btf.as_ref().expect("BTF");
    let m = map(obj, map_name);
    let TypeKind::Datasec(ds) = btf.type_by_id(m.def.btf_value_type_id).unwrap().kind else {
        panic!("{map_name}: value type is not a DATASEC");
    };
    let mut v: Vec<_> = ds
        .vars()
        .map(|v| {
            let var = btf.type_by_id(v.ty).unwrap();
            (
                btf.name(var.name_off).unwrap().to_string(),
                v.offset,
                v.size,
            )
        })
        .collect();
    v.sort_by_key(|x| x.1);
    v
}

fn owned(v: &[(&str, u32, u32)]) -> Vec<(String, u32, u32)> {
    v.iter().map(|(n, o, s)| (n.to_string(), *o, *s)).collect()
}

/// Programs as (name, section, autoload, subprog).
fn progs(obj: &Object) -> Vec<(String, String, bool, bool)> {
    obj.programs
        .iter()
        .map(|p| (p.name.clone(), p.section.clone(), p.autoload, p.subprog))
        .collect()
}

fn reloc_count(obj: &Object, class: &str) -> usize {
    obj.programs
        .iter()
        .flat_map(|p| &p.relocs)
        .filter(|r| r.kind.class() == class)
        .count()
}

const RDONLY_PROG: u32 = 1 << 7;
const MMAPABLE: u32 = 1 << 10;

#[test]
fn vfsstat() {
    let obj = fixture("vfsstat");
    assert_eq!(obj.license, "Dual BSD/GPL");
    let names: Vec<_> = obj
        .programs
        .iter()
        .map(|p| (p.name.as_str(), p.section.as_str()))
        .collect();
    let mut expect = Vec::new();
    for f in ["read", "write", "fsync", "open", "create"] {
        expect.push((format!("kprobe_vfs_{f}"), format!("kprobe/vfs_{f}")));
        expect.push((format!("fentry_vfs_{f}"), format!("fentry/vfs_{f}")));
    }
    let mut got: Vec<_> = names
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    got.sort();
    expect.sort();
    assert_eq!(got, expect);
    assert!(obj.programs.iter().all(|p| p.autoload && !p.subprog));

    assert_eq!(obj.maps.len(), 1);
    let bss = map(&obj, ".bss");
    assert_eq!(bss.kind, MapKind::Data(DataKind::Bss));
    assert_eq!(bss.kernel_name, "vfsstat.bss");
    assert_eq!(bss.def.map_type, MapType::ARRAY);
    assert_eq!(
        (bss.def.key_size, bss.def.value_size, bss.def.max_entries),
        (4, 40, 1)
    );
    assert_eq!(bss.def.map_flags, MMAPABLE);
    assert_eq!(bss.image, vec![0; 40]);
    assert_eq!(vars(&obj, ".bss"), owned(&[("stats", 0, 40)]));
    assert!(obj.externs.is_empty());
    // Each of the ten programs addresses `stats` once through .bss.
    for p in &obj.programs {
        assert!(
            p.relocs
                .iter()
                .all(|r| matches!(r.kind, RelocKind::Data { .. })),
            "{}: {:?}",
            p.name,
            p.relocs
        );
        assert!(!p.relocs.is_empty(), "{} has no .bss relocation", p.name);
    }
}

#[test]
fn tp_ringbuf() {
    let obj = fixture("tp_ringbuf");
    assert_eq!(obj.license, "GPL");
    assert_eq!(
        progs(&obj),
        vec![
            (
                "handle_getppid".into(),
                "tracepoint/syscalls/sys_enter_getppid".into(),
                true,
                false
            ),
            (
                "handle_getppid_short".into(),
                "tp/syscalls/sys_enter_getppid".into(),
                true,
                false
            ),
        ]
    );
    let counts = map(&obj, "counts");
    assert_eq!(counts.def.map_type, MapType::HASH);
    assert_eq!(
        (
            counts.def.key_size,
            counts.def.value_size,
            counts.def.max_entries,
            counts.def.map_flags
        ),
        (4, 8, 1024, 0)
    );
    assert_ne!(counts.def.btf_key_type_id, 0);
    assert_ne!(counts.def.btf_value_type_id, 0);
    let events = map(&obj, "events");
    assert_eq!(events.def.map_type, MapType::RINGBUF);
    assert_eq!(
        (
            events.def.key_size,
            events.def.value_size,
            events.def.max_entries
        ),
        (0, 0, 262144)
    );

    let rodata = map(&obj, ".rodata");
    assert_eq!(rodata.kernel_name, "tp_ringb.rodata");
    assert_eq!(rodata.def.value_size, 21);
    assert_eq!(rodata.def.map_flags, RDONLY_PROG | MMAPABLE);
    assert_eq!(
        vars(&obj, ".rodata"),
        owned(&[("targ_tgid", 0, 4), ("use_ringbuf", 4, 1), ("tag", 5, 16)])
    );
    // Initial image: targ_tgid 0, use_ringbuf true, tag "skelgen-tp".
    let mut image = vec![0u8; 21];
    image[4] = 1;
    image[5..15].copy_from_slice(b"skelgen-tp");
    assert_eq!(rodata.image, image);

    let bss = map(&obj, ".bss");
    assert_eq!(bss.kernel_name, "tp_ringb.bss");
    assert_eq!(
        vars(&obj, ".bss"),
        owned(&[
            ("tp_hits", 0, 8),
            ("tp2_hits", 8, 8),
            ("unused_event", 16, 8)
        ])
    );
    assert_eq!(obj.maps.len(), 4);
    assert!(obj.externs.is_empty());

    // struct event { __u32 pid; __u32 tgid; __u64 ts_ns; char comm[16]; char tag[16]; }
    let btf = obj.btf.as_ref().unwrap();
    let id = btf
        .find_by_name_kind("event", skelgen_runtime::btf::Kind::Struct)
        .expect("struct event in BTF");
    assert_eq!(btf.size_of(id).unwrap(), 48);
    let TypeKind::Struct(st) = btf.type_by_id(id).unwrap().kind else {
        unreachable!()
    };
    let members: Vec<_> = st
        .members()
        .map(|m| (btf.name(m.name_off).unwrap().to_string(), m.bit_offset / 8))
        .collect();
    assert_eq!(
        members,
        vec![
            ("pid".to_string(), 0),
            ("tgid".into(), 4),
            ("ts_ns".into(), 8),
            ("comm".into(), 16),
            ("tag".into(), 32)
        ]
    );
    // The hash map and the ring buffer are referenced by handle_getppid.
    let p = obj.program("handle_getppid").unwrap();
    let used: Vec<_> = p
        .relocs
        .iter()
        .filter_map(|r| match r.kind {
            RelocKind::Map { map } => Some(obj.maps[map].name.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        used.contains(&"counts") && used.contains(&"events"),
        "{used:?}"
    );
}

#[test]
fn xdp_counter() {
    let obj = fixture("xdp_counter");
    assert_eq!(
        progs(&obj),
        vec![("xdp_count".into(), "xdp".into(), true, false)]
    );
    let stats = map(&obj, "pkt_stats");
    assert_eq!(stats.def.map_type, MapType::ARRAY);
    assert_eq!(
        (
            stats.def.key_size,
            stats.def.value_size,
            stats.def.max_entries
        ),
        (4, 16, 2)
    );
    let foo = map(&obj, ".data.foo");
    assert_eq!(foo.kind, MapKind::Data(DataKind::Data));
    assert_eq!(foo.kernel_name, ".data.foo");
    assert_eq!(foo.def.map_flags, MMAPABLE);
    assert_eq!(
        vars(&obj, ".data.foo"),
        owned(&[
            ("foo_packets", 0, 8),
            ("foo_bytes", 8, 8),
            ("foo_magic", 16, 4)
        ])
    );
    assert_eq!(&foo.image[16..20], &0xf00f00u32.to_le_bytes());
    let bar = map(&obj, ".rodata.bar");
    assert_eq!(bar.kind, MapKind::Data(DataKind::Rodata));
    assert_eq!(bar.def.map_flags, RDONLY_PROG | MMAPABLE);
    assert_eq!(
        vars(&obj, ".rodata.bar"),
        owned(&[("bar_drop_len", 0, 4), ("bar_magic", 4, 4)])
    );
    assert_eq!(bar.image, [0, 0, 0, 0, 0xa4, 0x4b, 0xba, 0]);
    let bss = map(&obj, ".bss");
    assert_eq!(bss.kernel_name, "xdp_coun.bss");
    assert_eq!(
        vars(&obj, ".bss"),
        owned(&[("last_len", 0, 4), ("last_action", 4, 4)])
    );
    assert_eq!(obj.maps.len(), 4);
}

#[test]
fn subprogs() {
    let obj = fixture("subprogs");
    let entry: Vec<_> = obj
        .entry_programs()
        .map(|p| (p.name.as_str(), p.section.as_str()))
        .collect();
    assert_eq!(entry, vec![("xdp_entry", "xdp"), ("tc_entry", "tc")]);
    let mut text: Vec<_> = obj
        .programs
        .iter()
        .filter(|p| p.subprog)
        .map(|p| {
            (
                p.name.as_str(),
                p.insn_offset,
                p.insn_count(),
                p.global,
                p.autoload,
            )
        })
        .collect();
    text.sort();
    // Byte offsets/sizes from the header, in instructions.
    assert_eq!(
        text,
        vec![
            ("global_pkt_len", 0x18 / 8, 48 / 8, true, false),
            ("global_square", 0, 24 / 8, true, false),
            ("loop_cb", 0xb0 / 8, 48 / 8, false, false),
            ("run_loop", 0x60 / 8, 80 / 8, false, false),
            ("static_mul", 0x48 / 8, 24 / 8, false, false),
        ]
    );
    assert_eq!(
        vars(&obj, ".bss")
            .iter()
            .map(|v| v.0.as_str())
            .collect::<Vec<_>>(),
        [
            "xdp_runs",
            "xdp_res_static",
            "xdp_res_global",
            "xdp_res_loop",
            "tc_runs",
            "tc_res_static",
            "tc_res_global",
            "tc_res_loop",
            "xdp_res_len"
        ]
    );
    assert_eq!(map(&obj, ".bss").def.value_size, 72);
    // Each entry calls static_mul, global_square and run_loop (xdp also
    // global_pkt_len); run_loop takes loop_cb's address for bpf_loop.
    let target = |name: &str| obj.program(name).unwrap().insn_offset;
    let calls = |p: &str| -> Vec<usize> {
        let mut v: Vec<_> = obj
            .program(p)
            .unwrap()
            .relocs
            .iter()
            .filter_map(|r| match r.kind {
                RelocKind::Call { target_insn } => Some(target_insn),
                _ => None,
            })
            .collect();
        v.sort();
        v
    };
    let mut xdp = vec![
        target("global_square"),
        target("global_pkt_len"),
        target("static_mul"),
        target("run_loop"),
    ];
    xdp.sort();
    assert_eq!(calls("xdp_entry"), xdp);
    let mut tc = vec![
        target("global_square"),
        target("static_mul"),
        target("run_loop"),
    ];
    tc.sort();
    assert_eq!(calls("tc_entry"), tc);
    let addr: Vec<_> = obj
        .program("run_loop")
        .unwrap()
        .relocs
        .iter()
        .filter_map(|r| match r.kind {
            RelocKind::SubprogAddr { target_insn } => Some(target_insn),
            _ => None,
        })
        .collect();
    assert_eq!(addr, vec![target("loop_cb")]);
    assert_eq!(reloc_count(&obj, "subprog_addr"), 1);
}

#[test]
fn core_fixture() {
    let obj = fixture("core");
    assert_eq!(
        progs(&obj),
        vec![(
            "core_getppid".into(),
            "tp/syscalls/sys_enter_getppid".into(),
            true,
            false
        )]
    );
    assert_eq!(vars(&obj, ".rodata"), owned(&[("targ_tgid", 0, 4)]));
    let names: Vec<_> = vars(&obj, ".bss").into_iter().map(|v| v.0).collect();
    for n in [
        "runs",
        "task_pid",
        "task_tgid",
        "parent_tgid",
        "has_pid_field",
        "has_fake_field",
        "has_flavor_pid",
        "has_task_type",
        "has_fake_type",
        "has_enum_sid",
        "has_fake_enum",
        "enum_sid",
        "comm_size",
        "pid_size",
        "pid_offset",
        "task_size",
        "signal_size",
        "task_btf_id",
        "is_subreaper",
        "reset_on_fork",
        "in_execve",
        "comm",
    ] {
        assert!(names.iter().any(|x| x == n), "missing .bss variable {n}");
    }
    assert_eq!(names.len(), 22);
    let ext = obj.btf_ext.as_ref().expect(".BTF.ext");
    let kinds: std::collections::BTreeSet<_> = ext
        .core_relos
        .iter()
        .flat_map(|s| &s.records)
        .map(|r| r.kind.as_str())
        .collect();
    // BPF_CORE_READ_BITFIELD_PROBED emits byte offset, byte size, signed,
    // lshift and rshift; the rest come from the bpf_core_* macros used.
    let expect: std::collections::BTreeSet<_> = [
        "byte_off",
        "byte_sz",
        "enumval_exists",
        "enumval_value",
        "field_exists",
        "lshift_u64",
        "rshift_u64",
        "signed",
        "target_type_id",
        "type_exists",
        "type_size",
    ]
    .into_iter()
    .collect();
    assert_eq!(kinds, expect);
}

/// All fixtures parse, and the model's facts hold together: every
/// relocation points inside its program, data maps have images of their
/// size, DATASEC variables lie inside their section.
#[test]
fn every_fixture_is_consistent() {
    let mut n = 0;
    for (name, bytes) in all_fixtures() {
        n += 1;
        let obj = Object::parse(&bytes, "fixture").unwrap_or_else(|e| panic!("{name}: {e}"));
        for p in &obj.programs {
            for r in &p.relocs {
                assert!(r.insn < p.insn_count(), "{}: reloc past the end", p.name);
            }
        }
        for m in &obj.maps {
            if let MapKind::Data(_) = m.kind {
                assert_eq!(m.image.len(), m.def.value_size as usize, "{}", m.name);
            }
        }
        let _ = (VarLinkage::Static, KconfigType::Bool, SlotTarget::Map(0));
        let _ = ExternKind::Kfunc { proto: 0 };
    }
    assert!(
        n >= 5,
        "only {n} fixtures found in {}",
        fixtures_dir().display()
    );
}

#[test]
fn kconfig_and_ksyms() {
    let obj = fixture("kconfig");
    let ext = |name: &str| {
        obj.externs
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("no extern {name}"))
    };
    let kcfg = |name: &str| match ext(name).kind {
        ExternKind::Kconfig { ty, size, .. } => (ty, size, ext(name).weak),
        ref k => panic!("{name}: {k:?}"),
    };
    assert_eq!(
        kcfg("LINUX_KERNEL_VERSION"),
        (KconfigType::Int { signed: true }, 4, false)
    );
    assert_eq!(kcfg("LINUX_HAS_BPF_COOKIE"), (KconfigType::Bool, 1, false));
    assert_eq!(kcfg("CONFIG_BPF_SYSCALL"), (KconfigType::Bool, 1, false));
    assert_eq!(
        kcfg("CONFIG_HZ"),
        (KconfigType::Int { signed: true }, 4, false)
    );
    assert_eq!(kcfg("CONFIG_TUN"), (KconfigType::Tristate, 4, false));
    assert_eq!(kcfg("CONFIG_KPROBES"), (KconfigType::Tristate, 4, true));
    assert_eq!(
        kcfg("CONFIG_DEFAULT_HOSTNAME"),
        (KconfigType::CharArray, 16, false)
    );
    assert_eq!(
        kcfg("CONFIG_SKELGEN_DOES_NOT_EXIST"),
        (KconfigType::Bool, 1, true)
    );
    assert_eq!(ext("_stext").kind, ExternKind::Ksym { target_type: None });
    assert!(!ext("_stext").weak);
    assert_eq!(
        ext("skelgen_no_such_ksym").kind,
        ExternKind::Ksym { target_type: None }
    );
    assert!(ext("skelgen_no_such_ksym").weak);
    assert!(matches!(
        ext("bpf_task_from_pid").kind,
        ExternKind::Kfunc { .. }
    ));
    assert!(matches!(
        ext("bpf_task_release").kind,
        ExternKind::Kfunc { .. }
    ));
    assert_eq!(obj.externs.len(), 12);

    // libbpf's layout: kconfig sorted by alignment (desc), size, name; the
    // four 4-byte ints, then the 1-byte ones, then the char array.
    let layout: Vec<(&str, u32)> = obj
        .externs
        .iter()
        .filter_map(|e| match e.kind {
            ExternKind::Kconfig { offset, .. } => Some((e.name.as_str(), offset)),
            _ => None,
        })
        .collect();
    assert_eq!(
        layout,
        vec![
            ("CONFIG_HZ", 0),
            ("CONFIG_KPROBES", 4),
            ("CONFIG_TUN", 8),
            ("LINUX_KERNEL_VERSION", 12),
            ("CONFIG_BPF_SYSCALL", 16),
            ("CONFIG_SKELGEN_DOES_NOT_EXIST", 17),
            ("LINUX_HAS_BPF_COOKIE", 18),
            ("CONFIG_DEFAULT_HOSTNAME", 19),
        ]
    );
    let k = map(&obj, ".kconfig");
    assert_eq!(k.kernel_name, "kconfig.kconfig");
    assert_eq!(k.def.value_size, 35);
    assert_eq!(k.def.map_flags, RDONLY_PROG | MMAPABLE);
    // The .kconfig DATASEC now describes that layout.
    assert_eq!(
        vars(&obj, ".kconfig"),
        owned(&[
            ("CONFIG_HZ", 0, 4),
            ("CONFIG_KPROBES", 4, 4),
            ("CONFIG_TUN", 8, 4),
            ("LINUX_KERNEL_VERSION", 12, 4),
            ("CONFIG_BPF_SYSCALL", 16, 1),
            ("CONFIG_SKELGEN_DOES_NOT_EXIST", 17, 1),
            ("LINUX_HAS_BPF_COOKIE", 18, 1),
            ("CONFIG_DEFAULT_HOSTNAME", 19, 16),
        ])
    );
    assert_eq!(reloc_count(&obj, "kfunc_call"), 2);
    assert!(reloc_count(&obj, "extern") >= 8);
    assert_eq!(
        vars(&obj, ".data")
            .iter()
            .map(|v| v.0.as_str())
            .collect::<Vec<_>>(),
        [
            "tun",
            "kprobes",
            "missing_config",
            "missing_ksym",
            "kfunc_tgid"
        ]
    );
}

#[test]
fn map_in_map_and_prog_array() {
    let obj = fixture("mapinmap");
    let names: Vec<_> = obj.maps.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "inner_a",
            "inner_b",
            "outer_arr",
            "outer_hash",
            "jmp_table",
            ".bss"
        ]
    );
    for inner in ["inner_a", "inner_b"] {
        let m = map(&obj, inner);
        assert_eq!(m.def.map_type, MapType::ARRAY);
        assert_eq!(
            (m.def.key_size, m.def.value_size, m.def.max_entries),
            (4, 8, 1)
        );
    }
    let idx = |n: &str| obj.maps.iter().position(|m| m.name == n).unwrap();
    let outer = map(&obj, "outer_arr");
    assert_eq!(outer.def.map_type, MapType::ARRAY_OF_MAPS);
    assert_eq!(
        (
            outer.def.key_size,
            outer.def.value_size,
            outer.def.max_entries
        ),
        (4, 4, 2)
    );
    let inner = outer.inner.as_ref().expect("inner template");
    assert_eq!(inner.def.map_type, MapType::ARRAY);
    assert_eq!(
        (
            inner.def.key_size,
            inner.def.value_size,
            inner.def.max_entries
        ),
        (4, 8, 1)
    );
    let slots: Vec<_> = outer
        .init_slots
        .iter()
        .map(|s| (s.index, s.target.clone()))
        .collect();
    assert_eq!(
        slots,
        vec![
            (0, SlotTarget::Map(idx("inner_a"))),
            (1, SlotTarget::Map(idx("inner_b")))
        ]
    );
    let hash = map(&obj, "outer_hash");
    assert_eq!(hash.def.map_type, MapType::HASH_OF_MAPS);
    assert_eq!(hash.def.max_entries, 4);
    assert_eq!(hash.init_slots.len(), 1);
    assert_eq!(hash.init_slots[0].index, 3);
    assert_eq!(hash.init_slots[0].target, SlotTarget::Map(idx("inner_b")));
    let jmp = map(&obj, "jmp_table");
    assert_eq!(jmp.def.map_type, MapType::PROG_ARRAY);
    assert_eq!(
        (jmp.def.key_size, jmp.def.value_size, jmp.def.max_entries),
        (4, 4, 4)
    );
    assert_eq!(jmp.init_slots.len(), 1);
    assert_eq!(jmp.init_slots[0].index, 1);
    assert_eq!(
        jmp.init_slots[0].target,
        SlotTarget::Prog("tail_prog".into())
    );
    assert_eq!(
        vars(&obj, ".bss"),
        owned(&[
            ("entry_runs", 0, 8),
            ("tail_runs", 8, 8),
            ("fallthrough", 16, 8)
        ])
    );
    let p: Vec<_> = obj
        .entry_programs()
        .map(|p| (p.name.as_str(), p.section.as_str()))
        .collect();
    assert_eq!(p, vec![("tail_prog", "xdp"), ("entry_prog", "xdp")]);
}

#[test]
fn event_buffers() {
    let obj = fixture("perfbuf");
    let ev = map(&obj, "events");
    assert_eq!(ev.def.map_type, MapType::PERF_EVENT_ARRAY);
    assert_eq!(
        (ev.def.key_size, ev.def.value_size, ev.def.max_entries),
        (4, 4, 0)
    );
    assert_eq!(
        vars(&obj, ".bss"),
        owned(&[
            ("next_seq", 0, 8),
            ("failed", 8, 8),
            ("unused_perf_sample", 16, 8)
        ])
    );
    let obj = fixture("ringbuf_flood");
    let rb = map(&obj, "rb");
    assert_eq!(rb.def.map_type, MapType::RINGBUF);
    assert_eq!(rb.def.max_entries, 16384);
    assert_eq!(map(&obj, ".rodata").kernel_name, "ringbuf_.rodata");
    assert_eq!(vars(&obj, ".rodata"), owned(&[("wakeup_flags", 0, 8)]));
    assert_eq!(
        vars(&obj, ".bss"),
        owned(&[
            ("next_seq", 0, 8),
            ("submitted", 8, 8),
            ("dropped", 16, 8),
            ("unused_flood_event", 24, 8)
        ])
    );
}

#[test]
fn keyword_names_survive() {
    let obj = fixture("keywords");
    let maps: Vec<_> = obj.maps.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(maps, ["type", "my_map", "myMap", ".rodata", ".bss"]);
    let progs: Vec<_> = obj.entry_programs().map(|p| p.name.as_str()).collect();
    let mut sorted = progs.clone();
    sorted.sort();
    assert_eq!(sorted, ["fooBar", "foo_bar", "match"]);
    let bss: Vec<_> = vars(&obj, ".bss").into_iter().map(|v| v.0).collect();
    for n in [
        "self", "Self", "super", "crate", "_", "fn", "loop", "counter", "COUNTER", "gen",
    ] {
        assert!(bss.iter().any(|x| x == n), "{n} missing from .bss");
    }
    let ro: Vec<_> = vars(&obj, ".rodata").into_iter().map(|v| v.0).collect();
    assert_eq!(ro, ["static_", "MY_MAP"]);
}

#[test]
fn usdt_library_maps_and_weak_text() {
    let obj = fixture("attach");
    let names: Vec<_> = obj
        .entry_programs()
        .map(|p| (p.name.as_str(), p.section.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("handle_raw_tp", "raw_tp/sys_enter"),
            ("handle_tp_btf", "tp_btf/sys_enter"),
            ("handle_tracepoint", "tracepoint/syscalls/sys_enter_getppid"),
            ("handle_uprobe", "uprobe"),
            ("handle_uretprobe", "uretprobe"),
            ("handle_usdt", "usdt"),
            ("handle_perf_event", "perf_event"),
            ("handle_tc", "tc"),
            ("handle_cgroup_skb", "cgroup_skb/egress"),
            ("handle_sock_create", "cgroup/sock_create"),
            ("handle_socket", "socket"),
        ]
    );
    // usdt.bpf.h brings two weak maps and the bpf_usdt_* helpers in .text.
    let specs = map(&obj, "__bpf_usdt_specs");
    assert_eq!(specs.kernel_name, "__bpf_usdt_spec");
    assert_eq!(
        map(&obj, "__bpf_usdt_ip_to_spec_id").def.map_type,
        MapType::HASH
    );
    assert!(obj.program("bpf_usdt_arg").is_some_and(|p| p.subprog));
    assert_eq!(obj.externs.len(), 1);
    assert_eq!(obj.externs[0].name, "LINUX_HAS_BPF_COOKIE");
}

#[test]
fn layout_data_image() {
    let obj = fixture("layout");
    let data = map(&obj, ".data");
    assert_eq!(data.kind, MapKind::Data(DataKind::Data));
    assert_eq!(data.image.len(), data.def.value_size as usize);
    assert!(data.image.iter().any(|&b| b != 0));
}
