//! What each runtime fuzz target does with one input, shared by the
//! cargo-fuzz targets (`fuzz/fuzz_targets/*.rs`) and the regression tests
//! (`runtime/tests/fuzz_regressions.rs`), which include this file with
//! `#[path]`, so that a saved crasher replays exactly what found it.
//!
//! Each function returns normally on any input: errors are fine, a panic,
//! a hang or an allocation past the limit is the bug.
#![allow(dead_code)] // Each includer uses only some of the targets.

use std::sync::{Arc, OnceLock};

use skelgen_runtime::btf::ext::{BtfExt, CoreRelo, CoreReloKind};
use skelgen_runtime::btf::{Btf, TypeKind};
use skelgen_runtime::co_re::{relocate_program, CoreTarget};
use skelgen_runtime::insn::Insn;
use skelgen_runtime::obj::Object;

/// The object whose program, records and BTF `core_reloc` mutates.
pub const CORE_FIXTURE: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/core.bpf.o"
));

/// Target 1: the object model.
pub fn obj_parse(data: &[u8]) {
    if let Ok(obj) = Object::parse(data, "fuzz") {
        // What the loader and the generator read next.
        for p in &obj.programs {
            let _ = p.section_match();
            let _ = p.insn_count();
            let _ = Insn::from_bytes(&p.insns);
        }
    }
}

/// Target 2: BTF parsed, then every type walked as the loader, the CO-RE
/// engine and the generator walk it, and the name index queried.
pub fn btf_parse(data: &[u8]) {
    let Ok(btf) = Btf::parse(data) else {
        return;
    };
    let mut names = Vec::new();
    for id in 0..btf.len() {
        let Ok(t) = btf.type_by_id(id) else {
            continue;
        };
        let _ = btf.kind_of(id);
        let _ = btf.type_name(id);
        if let Ok(name) = btf.name(t.name_off) {
            if names.len() < 64 {
                names.push((name.to_owned(), t.kind()));
            }
        }
        let _ = btf.size_of(id);
        let _ = btf.align_of(id);
        let _ = btf.skip_mods(id);
        let _ = btf.skip_mods_and_typedefs(id);
        let _ = btf.resolves_to(id, t.kind());
        match t.kind {
            TypeKind::Struct(c) | TypeKind::Union(c) => {
                for m in c.members() {
                    let _ = btf.name(m.name_off);
                    let _ = btf.size_of(m.ty);
                }
            }
            TypeKind::Enum(e) => {
                for v in e.values() {
                    let _ = btf.name(v.name_off);
                }
            }
            TypeKind::Enum64(e) => {
                for v in e.values() {
                    let _ = btf.name(v.name_off);
                }
            }
            TypeKind::FuncProto(p) => {
                for a in p.params() {
                    let _ = btf.name(a.name_off);
                    let _ = btf.skip_mods_and_typedefs(a.ty);
                }
            }
            TypeKind::Datasec(d) => {
                for v in d.vars() {
                    let _ = btf.type_by_id(v.ty);
                }
            }
            _ => {}
        }
    }
    for (name, kind) in &names {
        let ids = btf.find_by_name(name);
        // The index must find every readable name it was built from.
        assert!(
            name.is_empty() || !ids.is_empty(),
            "name index misses {name:?}"
        );
        let _ = btf.find_by_name_kind(name, *kind);
    }
    let _ = btf.find_by_name("task_struct");
}

/// Target 3: `.BTF.ext`.
pub fn btf_ext_parse(data: &[u8]) {
    if let Ok(ext) = BtfExt::parse(data) {
        for s in &ext.core_relos {
            let _ = ext.core_relos_for(s.sec_name_off);
        }
        for s in &ext.line_info {
            for l in &s.records {
                let _ = (l.line(), l.column());
            }
        }
    }
}

/// The fixture's program, local BTF and CO-RE records, parsed once.
struct CoreFixture {
    local: Btf,
    insns: Vec<Insn>,
    relos: Vec<CoreRelo>,
    target: CoreTarget,
}

fn core_fixture() -> Option<&'static CoreFixture> {
    static FIXTURE: OnceLock<Option<CoreFixture>> = OnceLock::new();
    FIXTURE
        .get_or_init(|| {
            let obj = Object::parse(CORE_FIXTURE, "core").ok()?;
            let local = obj.btf.clone()?;
            let prog = obj.entry_programs().next()?;
            let insns = Insn::from_bytes(&prog.insns).ok()?;
            let start = u32::try_from(prog.insn_offset).ok()?;
            let relos = obj
                .btf_ext
                .as_ref()?
                .core_relos
                .iter()
                .filter(|s| local.name(s.sec_name_off).ok() == Some(prog.section.as_str()))
                .flat_map(|s| s.records.iter())
                .filter_map(|r| {
                    Some(CoreRelo {
                        insn_off: r.insn_off.checked_sub(start)?,
                        ..*r
                    })
                })
                .collect();
            // The fixed target: the fixture's own BTF, so that candidates
            // exist for every local type and the matcher does real work.
            let target = CoreTarget::new(Arc::new(local.clone()));
            Some(CoreFixture {
                local,
                insns,
                relos,
                target,
            })
        })
        .as_ref()
}

fn word(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
}

/// Target 4: CO-RE relocation of the `core.bpf.o` program. The first byte
/// picks what is fuzzed:
/// - 0: the records. Then a u8 count `n`, `n` 16-byte records
///   (`insn_off`, `type_id`, `access_str_off`, `kind`), and strings separated
///   by NUL that are appended to the local BTF's string table; an
///   `access_str_off` with its top bit set picks one of those strings.
/// - 1: the local BTF (the fixture's records, program and target).
/// - 2: the target BTF (the fixture's records, program and local BTF).
pub fn core_reloc(data: &[u8]) {
    // A fixture that stops parsing would silently make this target a no-op.
    let fx = core_fixture().expect("core.bpf.o, its BTF and CO-RE records load");
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut insns = fx.insns.clone();
    match mode % 3 {
        0 => {
            let Some((&n, rest)) = rest.split_first() else {
                return;
            };
            let recs_len = (usize::from(n) * 16).min(rest.len());
            let (recs, strings) = rest.split_at(recs_len);
            let mut local = fx.local.clone();
            let offs: Vec<u32> = strings
                .split(|&b| b == 0)
                .take(64)
                .map(|s| local.append_string(&String::from_utf8_lossy(s)))
                .collect();
            let prog_bytes = (insns.len() * 8) as u32;
            let relos: Vec<CoreRelo> = recs
                .chunks_exact(16)
                .map(|r| {
                    let insn_off = word(r, 0);
                    let access = word(r, 8);
                    CoreRelo {
                        // Mostly in range and aligned, sometimes not.
                        insn_off: if insn_off & 0x8000_0000 != 0 {
                            insn_off & 0x7fff_ffff
                        } else {
                            (insn_off % prog_bytes.max(1)) & !7
                        },
                        type_id: word(r, 4) % (local.len() + 2),
                        access_str_off: match offs.len() {
                            n if access & 0x8000_0000 != 0 && n > 0 => {
                                offs[(access as usize & 0xffff) % n]
                            }
                            _ => access & 0x7fff_ffff,
                        },
                        kind: CoreReloKind::from_raw(word(r, 12) % 13)
                            .unwrap_or(CoreReloKind::FieldByteOffset),
                    }
                })
                .collect();
            let _ = relocate_program(&local, &fx.target, "fuzz", &mut insns, &relos);
        }
        1 => {
            if let Ok(local) = Btf::parse(rest) {
                let _ = relocate_program(&local, &fx.target, "fuzz", &mut insns, &fx.relos);
            }
        }
        _ => {
            if let Ok(target) = Btf::parse(rest) {
                let target = CoreTarget::new(Arc::new(target));
                let _ = relocate_program(&fx.local, &target, "fuzz", &mut insns, &fx.relos);
            }
        }
    }
}
