//! The object model of struct_ops (no kernel needed): the maps of the
//! `struct_ops` fixture's `?.struct_ops` and `?.struct_ops.link` sections,
//! their local structs, and the programs `.rel.struct_ops` binds to their
//! function pointers.

use skelgen_runtime::obj::{MapKind, MapType, Object, BPF_F_LINK};
use skelgen_test_support::fixture;

fn object() -> Object {
    Object::parse(&fixture("struct_ops"), "struct_ops").unwrap()
}

#[test]
fn each_struct_ops_variable_is_a_struct_ops_map() {
    let obj = object();
    let names: Vec<&str> = obj
        .maps
        .iter()
        .filter(|m| m.struct_ops().is_some())
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["skel_cc", "skel_cc_extra", "skel_cc_wide", "skel_cc_link"]
    );
    for name in names {
        let m = obj.map(name).unwrap();
        let st = m.struct_ops().unwrap();
        assert!(matches!(m.kind, MapKind::StructOps(_)));
        assert_eq!(m.def.map_type, MapType::STRUCT_OPS);
        assert_eq!((m.def.key_size, m.def.max_entries), (4, 1));
        // Flavours name the same kernel struct.
        assert_eq!(st.type_name, "tcp_congestion_ops", "{name}");
        assert!(!st.autocreate, "{name}: a ?-section map");
        assert_eq!(st.link, name == "skel_cc_link");
        assert_eq!(m.def.map_flags, if st.link { BPF_F_LINK } else { 0 });
        assert_eq!(m.image.len() as u32, m.def.value_size);
        // The initial value holds the C initialiser: the name first.
        assert!(m.image.starts_with(name.as_bytes()), "{name}");
        assert_eq!(m.image.get(name.len()), Some(&0));
    }
}

#[test]
fn relocations_bind_function_pointers_to_programs() {
    let obj = object();
    let st = obj.map("skel_cc").unwrap().struct_ops().unwrap();
    let bound: Vec<(&str, Option<&str>, bool)> = st
        .members
        .iter()
        .map(|m| (m.name.as_str(), m.prog.as_deref(), m.func))
        .collect();
    assert_eq!(
        bound,
        [
            ("name", None, false),
            ("ssthresh", Some("skel_ssthresh"), true),
            ("cong_avoid", Some("skel_cong_avoid"), true),
            ("undo_cwnd", Some("skel_undo_cwnd"), true),
            ("init", Some("skel_init"), true),
            ("release", Some("skel_release"), true),
            ("flags", None, false),
        ]
    );
    let flags = st.members.iter().find(|m| m.name == "flags").unwrap();
    assert_eq!((flags.offset, flags.size), (56, 4));
    // The flavour without init/release binds three programs.
    let extra = obj.map("skel_cc_extra").unwrap().struct_ops().unwrap();
    assert_eq!(extra.members.iter().filter(|m| m.prog.is_some()).count(), 3);
    // The programs themselves are struct_ops programs, autoload off (`?`).
    for p in obj.entry_programs() {
        assert!(p.section.starts_with("struct_ops/"), "{}", p.section);
        assert!(!p.autoload, "{}", p.name);
    }
}

/// The file offset of the section named `name` (ELF64 little-endian).
fn section_offset(elf: &[u8], name: &str) -> usize {
    let u16_at = |o: usize| u16::from_le_bytes(elf[o..o + 2].try_into().unwrap()) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap()) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap()) as usize;
    let (shoff, shentsize, shnum, shstrndx) =
        (u64_at(0x28), u16_at(0x3a), u16_at(0x3c), u16_at(0x3e));
    let strtab = u64_at(shoff + shstrndx * shentsize + 0x18);
    (0..shnum)
        .map(|i| shoff + i * shentsize)
        .find(|&sh| {
            let n = strtab + u32_at(sh);
            elf[n..].split(|&b| b == 0).next() == Some(name.as_bytes())
        })
        .map(|sh| u64_at(sh + 0x18))
        .unwrap_or_else(|| panic!("no section {name}"))
}

#[test]
fn a_program_bound_to_a_data_member_is_refused_naming_it() {
    let mut elf = fixture("struct_ops");
    // The first relocation of .rel?.struct_ops sets skel_cc.ssthresh (offset
    // 16); move it onto `flags` (offset 56).
    let rel = section_offset(&elf, ".rel?.struct_ops");
    assert_eq!(elf[rel..rel + 8], 16u64.to_le_bytes());
    elf[rel..rel + 8].copy_from_slice(&56u64.to_le_bytes());
    let e = Object::parse(&elf, "struct_ops").unwrap_err().to_string();
    assert!(
        e.contains("?.struct_ops")
            && e.contains("skel_cc")
            && e.contains("'flags' is not a function pointer"),
        "{e}"
    );
    // Past every variable of the section.
    elf[rel..rel + 8].copy_from_slice(&4096u64.to_le_bytes());
    let e = Object::parse(&elf, "struct_ops").unwrap_err().to_string();
    assert!(e.contains("outside every struct_ops variable"), "{e}");
}
