//! `core.bpf.o` and what a target BTF says about it, read here without the
//! engine; and what libbpf did to it (bpftool's debug log).

use std::collections::HashMap;
use std::sync::Arc;

use skelgen_runtime::btf::ext::{CoreRelo, CoreReloKind};
use skelgen_runtime::btf::{Btf, Kind, TypeKind};
use skelgen_runtime::co_re::{relocate_program, CoreTarget, RelocStats};
use skelgen_runtime::insn::Insn;
use skelgen_runtime::obj::Object;
use skelgen_test_support::{fixture, have_tool, require};

use super::support::*;
use CoreReloKind::*;

pub struct Fixture {
    pub obj: Object,
    pub insns: Vec<Insn>,
    pub relos: Vec<CoreRelo>,
}

impl Fixture {
    pub fn load() -> Fixture {
        let obj = Object::parse(&fixture("core"), "core").expect("core.bpf.o parses");
        let prog = obj.program("core_getppid").expect("program").clone();
        let btf = obj.btf.as_ref().expect("BTF");
        let ext = obj.btf_ext.as_ref().expect("BTF.ext");
        let block = ext
            .core_relos
            .iter()
            .find(|b| btf.name(b.sec_name_off).ok() == Some(prog.section.as_str()))
            .expect("core_relo block for the program's section");
        // Section-relative byte offsets -> program-relative.
        let start = (prog.insn_offset * 8) as u32;
        let end = start + prog.insns.len() as u32;
        let relos = block
            .records
            .iter()
            .filter(|r| (start..end).contains(&r.insn_off))
            .map(|r| CoreRelo {
                insn_off: r.insn_off - start,
                ..*r
            })
            .collect();
        let insns = Insn::from_bytes(&prog.insns).expect("whole instructions");
        Fixture { obj, insns, relos }
    }

    pub fn local(&self) -> &Btf {
        self.obj.btf.as_ref().expect("BTF")
    }

    /// The root type's name and, for field kinds, the local member's name:
    /// read here from the access string, independently of the engine.
    pub fn describe(&self, r: &CoreRelo) -> (String, Option<String>) {
        let btf = self.local();
        let root = btf.type_name(r.type_id).unwrap().to_owned();
        let access = btf.name(r.access_str_off).unwrap();
        let field = match (r.kind as u32) <= 5 {
            true => {
                let idx: usize = access.split(':').nth(1).unwrap().parse().unwrap();
                let TypeKind::Struct(c) = btf.type_by_id(r.type_id).unwrap().kind else {
                    panic!("fixture relocations start at structs")
                };
                Some(
                    btf.name(c.member(idx).unwrap().name_off)
                        .unwrap()
                        .to_owned(),
                )
            }
            false if matches!(r.kind, EnumvalExists | EnumvalValue) => {
                let idx: usize = access.parse().unwrap();
                let TypeKind::Enum(e) = btf.type_by_id(r.type_id).unwrap().kind else {
                    panic!("enum relocation on a non-enum")
                };
                Some(
                    btf.name(e.values().nth(idx).unwrap().name_off)
                        .unwrap()
                        .to_owned(),
                )
            }
            false => None,
        };
        (root, field)
    }
}

pub fn essential(name: &str) -> &str {
    name.split("___").next().unwrap()
}

/// (bit offset, bitfield size, type) of member `name` of struct `id`,
/// looking inside anonymous members.
pub fn find_member(btf: &Btf, id: u32, name: &str) -> Option<(u64, u32, u32)> {
    let (TypeKind::Struct(c) | TypeKind::Union(c)) = btf.type_by_id(id).ok()?.kind else {
        return None;
    };
    for m in c.members() {
        let n = btf.name(m.name_off).ok()?;
        if n == name {
            return Some((u64::from(m.bit_offset), m.bitfield_size, m.ty));
        }
        if n.is_empty() {
            let inner = btf.skip_mods_and_typedefs(m.ty).ok()?;
            if let Some((off, bits, ty)) = find_member(btf, inner, name) {
                return Some((off + u64::from(m.bit_offset), bits, ty));
            }
        }
    }
    None
}

/// The struct whose name without `___flavor` is `name`.
pub fn find_struct(btf: &Btf, name: &str) -> Option<u32> {
    btf.find_by_name_kind(name, Kind::Struct).or_else(|| {
        (1..btf.len()).find(|&id| {
            btf.kind_of(id).ok() == Some(Kind::Struct)
                && essential(btf.type_name(id).unwrap()) == name
        })
    })
}

pub fn enum_value(btf: &Btf, enum_name: &str, value_name: &str) -> Option<u64> {
    let id = btf.find_by_name_kind(enum_name, Kind::Enum)?;
    let TypeKind::Enum(e) = btf.type_by_id(id).ok()?.kind else {
        return None;
    };
    e.values()
        .find(|v| btf.name(v.name_off).ok() == Some(value_name))
        .map(|v| v.value as u32 as i32 as i64 as u64)
}

/// Relocates the fixture against `target` and checks every record against
/// what `target` says, read by the helpers above. Bitfields are checked by
/// extracting a pattern with the relocated offset, size and shifts.
pub fn check_fixture_against(target: Arc<Btf>) -> (Fixture, RelocStats) {
    let mut fx = Fixture::load();
    let tbtf = target.clone();
    let mut insns = fx.insns.clone();
    let stats = relocate_program(
        fx.local(),
        &CoreTarget::new(target),
        "core_getppid",
        &mut insns,
        &fx.relos,
    )
    .unwrap_or_else(|e| panic!("{e}: {}", e.source));
    let mut bitfields: HashMap<(String, String), HashMap<&'static str, Seen>> = HashMap::new();
    for r in &fx.relos {
        let (root, field) = fx.describe(r);
        let got = seen(&insns, (r.insn_off / 8) as usize);
        let root_id = find_struct(&tbtf, essential(&root));
        let member = field
            .as_deref()
            .and_then(|f| root_id.and_then(|id| find_member(&tbtf, id, f)));
        let value = |v: u64| Seen::Value(v);
        let want = match r.kind {
            FieldExists => value(member.is_some() as u64),
            FieldByteOffset | FieldByteSize | FieldLShiftU64 | FieldRShiftU64 | FieldSigned => {
                match member {
                    None => Seen::Poison,
                    Some((_, bits, _)) if bits > 0 => {
                        let key = (root.clone(), field.clone().unwrap());
                        bitfields
                            .entry(key)
                            .or_default()
                            .insert(r.kind.as_str(), got);
                        continue;
                    }
                    Some((off, _, ty)) => match r.kind {
                        FieldByteOffset => value(off / 8),
                        FieldByteSize => value(u64::from(tbtf.size_of(ty).unwrap())),
                        other => panic!("{other} on a plain field"),
                    },
                }
            }
            TypeExists => value(root_id.is_some() as u64),
            TypeSize => value(root_id.map_or(0, |id| u64::from(tbtf.size_of(id).unwrap()))),
            TypeIdTarget => value(root_id.map_or(0, u64::from)),
            EnumvalExists => value(
                enum_value(&tbtf, "pid_type", essential(field.as_deref().unwrap())).is_some()
                    as u64,
            ),
            EnumvalValue => enum_value(&tbtf, "pid_type", essential(field.as_deref().unwrap()))
                .map_or(Seen::Poison, value),
            other => panic!("the fixture has no {other} relocation"),
        };
        assert_eq!(
            got,
            want,
            "{} {root}.{field:?} at insn #{}",
            r.kind,
            r.insn_off / 8
        );
    }
    for ((root, field), kinds) in &bitfields {
        let root_id = find_struct(&tbtf, essential(root)).unwrap();
        let (bit_off, bits, ty) = find_member(&tbtf, root_id, field).unwrap();
        let TypeKind::Int(int) = tbtf
            .type_by_id(tbtf.skip_mods_and_typedefs(ty).unwrap())
            .unwrap()
            .kind
        else {
            panic!("{root}.{field}: bitfield of a non-int")
        };
        assert_eq!(
            kinds.get(FieldSigned.as_str()),
            Some(&Seen::Value(int.signed as u64)),
            "{root}.{field} signed"
        );
        let v = |k: CoreReloKind| match kinds.get(k.as_str()) {
            Some(Seen::Value(v)) => *v,
            other => panic!("{root}.{field}: {k} is {other:?}"),
        };
        let (off, size, l, r) = (
            v(FieldByteOffset),
            v(FieldByteSize),
            v(FieldLShiftU64),
            v(FieldRShiftU64),
        );
        assert!(
            [1, 2, 4, 8].contains(&size),
            "{root}.{field}: load size {size}"
        );
        assert_eq!(r, 64 - u64::from(bits), "{root}.{field}: right shift");
        for pattern in [1u64, (1u64 << bits) - 1, 0] {
            let mem = with_field((off + size) as usize + 8, bit_off, bits, pattern);
            assert_eq!(
                extract(&mem, off, size, l, r, false),
                pattern,
                "{root}.{field}"
            );
        }
    }
    fx.insns = insns;
    (fx, stats)
}

pub fn kernel_btf() -> Option<Arc<Btf>> {
    match Btf::from_vmlinux() {
        Ok(btf) => Some(Arc::new(btf)),
        Err(e) => {
            require(false, &format!("no kernel BTF ({e})"));
            None
        }
    }
}

/// What libbpf (through `bpftool -d prog loadall`, which logs every CO-RE
/// patch) did to each instruction: `Seen` per instruction index.
pub fn libbpf_patches(object: &str) -> Option<HashMap<usize, Seen>> {
    let skip = |why: String| {
        require(false, &format!("the libbpf comparison: {why}"));
        None
    };
    if !require(have_tool("bpftool"), "bpftool is not installed") {
        return None;
    }
    let fs_type = std::process::Command::new("stat")
        .args(["-f", "-c", "%T", "/sys/fs/bpf"])
        .output();
    if !fs_type.is_ok_and(|o| o.stdout.starts_with(b"bpf")) {
        return skip("bpffs is not mounted at /sys/fs/bpf".into());
    }
    let pin = format!("/sys/fs/bpf/skelgen_core_reloc_{}", std::process::id());
    let out = std::process::Command::new("bpftool")
        .args(["-d", "prog", "loadall", object, &pin])
        .output()
        .expect("run bpftool");
    let _ = std::fs::remove_dir_all(&pin);
    let log = String::from_utf8_lossy(&out.stderr);
    let mut patches = HashMap::new();
    for line in log.lines() {
        // "relo #0: patched insn #14 (ALU/ALU64) imm 16 -> 1264"
        // "relo #9: substituting insn #135 w/ invalid insn"
        let Some((_, rest)) = line.split_once(": relo #") else {
            continue;
        };
        let words: Vec<&str> = rest.split_whitespace().collect();
        let insn = |w: &str| w.trim_start_matches('#').parse::<usize>().unwrap();
        match words.as_slice() {
            [_, "patched", "insn", idx, _, _, _, "->", new] => {
                patches.insert(insn(idx), Seen::Value(new.parse().unwrap()));
            }
            [_, "substituting", "insn", idx, ..] => {
                patches.insert(insn(idx), Seen::Poison);
            }
            _ => {}
        }
    }
    if patches.is_empty() {
        return skip(format!(
            "bpftool logged no CO-RE patches (not root?): {log}"
        ));
    }
    Some(patches)
}
