//! `skelgen inspect` against independent tools: bpftool (skeleton text and,
//! as root, a real `prog loadall`) and llvm-objdump.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use skelgen_test_support::{have_tool as have, require};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

fn fixture(name: &str) -> PathBuf {
    fixtures_dir().join(format!("{name}.bpf.o"))
}

fn skelgen(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_skelgen"))
        .args(args)
        .output()
        .expect("run skelgen")
}

fn inspect_json(obj: &Path) -> Value {
    let out = skelgen(&["inspect", "--json", obj.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("valid JSON")
}

fn strs(v: &Value, list: &str, field: &str) -> Vec<String> {
    v[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x[field].as_str().unwrap().to_string())
        .collect()
}

/// Every committed fixture.
const ALL_FIXTURES: &[&str] = &[
    "vfsstat",
    "tp_ringbuf",
    "xdp_counter",
    "subprogs",
    "core",
    "kconfig",
    "kconfig_strong_missing",
    "mapinmap",
    "layout",
    "verifier_reject",
    "keywords",
    "attach",
    "ringbuf_flood",
    "perfbuf",
    "maptypes",
];

/// Loadable fixtures (every program loads on this kernel).
const LOADABLE: &[&str] = &[
    "tp_ringbuf",
    "xdp_counter",
    "subprogs",
    "core",
    "kconfig",
    "mapinmap",
    "layout",
    "keywords",
    "attach",
    "ringbuf_flood",
    "perfbuf",
    "maptypes",
];

/// What `bpftool gen skeleton` declares: map field names, program names,
/// and the variables of each datasec struct, in order.
/// (maps, programs, datasecs with their variables).
type SkeletonFacts = (Vec<String>, Vec<String>, Vec<(String, Vec<String>)>);

fn bpftool_skeleton_facts(obj: &Path) -> SkeletonFacts {
    let out = Command::new("bpftool")
        .args(["gen", "skeleton"])
        .arg(obj)
        .output()
        .expect("bpftool");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut maps = Vec::new();
    let mut progs = Vec::new();
    let mut secs = Vec::new();
    let mut block: Option<&str> = None;
    let mut sec: Option<(String, Vec<String>)> = None;
    for line in text.lines() {
        let t = line.trim();
        if t == "struct {" && block.is_none() && sec.is_none() {
            block = Some("?");
            continue;
        }
        if let Some(b) = block {
            if t.starts_with("} maps;") {
                block = None;
                continue;
            }
            if t.starts_with("} progs;") {
                block = None;
                continue;
            }
            if t.starts_with('}') {
                block = None;
                continue;
            }
            if let Some(rest) = t.strip_prefix("struct bpf_map *") {
                maps.push(rest.trim_end_matches(';').to_string());
            } else if let Some(rest) = t.strip_prefix("struct bpf_program *") {
                progs.push(rest.trim_end_matches(';').to_string());
            } else if t.starts_with("struct bpf_link *") {
                // links block: same names as programs
            }
            let _ = b;
            continue;
        }
        if t.starts_with("struct ") && t.contains("__") && t.ends_with('{') && !t.contains('(') {
            // e.g. `struct tp_ringbuf_bpf__rodata {`
            let name = t
                .trim_start_matches("struct ")
                .trim_end_matches(" {")
                .rsplit("__")
                .next()
                .unwrap()
                .to_string();
            sec = Some((name, Vec::new()));
            continue;
        }
        if let Some((name, vars)) = sec.as_mut() {
            if t.starts_with('}') {
                secs.push((name.clone(), std::mem::take(vars)));
                sec = None;
                continue;
            }
            // `int targ_tgid;`, `char tag[16];`, `struct event *unused_event;`
            let decl = t.trim_end_matches(';');
            let ident = decl
                .split(['[', '('])
                .next()
                .unwrap()
                .rsplit([' ', '*'])
                .next()
                .unwrap();
            if !ident.starts_with("__pad") && !ident.is_empty() {
                vars.push(ident.to_string());
            }
        }
    }
    (maps, progs, secs)
}

#[test]
fn inspect_agrees_with_bpftool_skeleton() {
    if !require(have("bpftool"), "bpftool is not installed") {
        return;
    }
    for name in LOADABLE.iter().chain(&["vfsstat"]) {
        let path = fixture(name);
        let ours = inspect_json(&path);
        let (maps, progs, secs) = bpftool_skeleton_facts(&path);

        // bpftool names internal maps by their section without the dot.
        let our_maps: Vec<String> = strs(&ours, "maps", "name")
            .into_iter()
            .map(|n| n.trim_start_matches('.').replace('.', "_"))
            .collect();
        assert_eq!(our_maps, maps, "{name}: maps");
        let our_progs: Vec<String> = ours["programs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| !p["subprog"].as_bool().unwrap())
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(our_progs, progs, "{name}: programs");
        for (sec, vars) in secs {
            let ds = ours["datasecs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|d| {
                    d["name"]
                        .as_str()
                        .unwrap()
                        .trim_start_matches('.')
                        .replace('.', "_")
                        == sec
                })
                .unwrap_or_else(|| panic!("{name}: no datasec {sec}"));
            let our_vars: Vec<String> = ds["vars"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["name"].as_str().unwrap().to_string())
                .collect();
            assert_eq!(our_vars, vars, "{name}: datasec {sec}");
        }
    }
}

fn possible_cpus() -> u64 {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/possible").unwrap();
    text.trim()
        .split(',')
        .map(|r| match r.split_once('-') {
            Some((a, b)) => b.parse::<u64>().unwrap() - a.parse::<u64>().unwrap() + 1,
            None => 1,
        })
        .sum()
}

fn bpftool_json(args: &[&str]) -> Value {
    let out = Command::new("bpftool")
        .arg("-j")
        .args(args)
        .output()
        .expect("bpftool");
    assert!(
        out.status.success(),
        "bpftool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Loads each loadable fixture with bpftool (libbpf) and compares the maps
/// and programs the kernel reports with what inspect says.
#[test]
fn inspect_agrees_with_bpftool_loadall() {
    if !require(have("bpftool"), "bpftool is not installed") || !skelgen_test_support::kernel() {
        return;
    }
    for name in LOADABLE {
        use skelgen_test_support::matrix::{has, Feature};
        // kconfig calls bpf_task_from_pid: libbpf refuses it where the
        // kfunc does not exist (the loader test checks that refusal).
        if *name == "kconfig" && !has(Feature::TaskKfuncs) {
            continue;
        }
        let path = fixture(name);
        let ours = inspect_json(&path);
        let pin = format!("/sys/fs/bpf/skelgen_inspect_{name}_{}", std::process::id());
        let st = Command::new("bpftool")
            .args(["prog", "loadall"])
            .arg(&path)
            .arg(&pin)
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&st.stderr)
        );
        let result = std::panic::catch_unwind(|| {
            let mut map_ids = std::collections::BTreeSet::new();
            let mut kernel_progs = Vec::new();
            for entry in std::fs::read_dir(&pin).unwrap() {
                let p = entry.unwrap().path();
                let info = bpftool_json(&["prog", "show", "pinned", p.to_str().unwrap()]);
                kernel_progs.push((
                    info["name"].as_str().unwrap().to_string(),
                    info["type"].as_str().unwrap().to_string(),
                ));
                for id in info["map_ids"].as_array().into_iter().flatten() {
                    map_ids.insert(id.as_u64().unwrap());
                }
            }
            kernel_progs.sort();
            // bpftool prints the full name from the program's BTF func info.
            let mut our_progs: Vec<(String, String)> = ours["programs"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| !p["subprog"].as_bool().unwrap())
                .map(|p| {
                    let n = p["name"].as_str().unwrap().to_string();
                    (n, p["type"].as_str().unwrap().to_string())
                })
                .collect();
            our_progs.sort();
            assert_eq!(our_progs, kernel_progs, "{name}: programs");

            // Inner maps are reached through their outer map's values (ids).
            let mut todo: Vec<u64> = map_ids.iter().copied().collect();
            while let Some(id) = todo.pop() {
                let m = bpftool_json(&["map", "show", "id", &id.to_string()]);
                if matches!(m["type"].as_str(), Some("array_of_maps" | "hash_of_maps")) {
                    let dump = bpftool_json(&["map", "dump", "id", &id.to_string()]);
                    for e in dump.as_array().into_iter().flatten() {
                        let bytes: Vec<u8> = e["value"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|b| {
                                u8::from_str_radix(b.as_str().unwrap().trim_start_matches("0x"), 16)
                                    .unwrap()
                            })
                            .collect();
                        let inner = u64::from(u32::from_le_bytes(bytes[..4].try_into().unwrap()));
                        if map_ids.insert(inner) {
                            todo.push(inner);
                        }
                    }
                }
            }
            let mut kernel_maps = Vec::new();
            for id in map_ids {
                let m = bpftool_json(&["map", "show", "id", &id.to_string()]);
                kernel_maps.push((
                    m["name"].as_str().unwrap().to_string(),
                    m["type"].as_str().unwrap().to_string(),
                    m["bytes_key"].as_u64().unwrap(),
                    m["bytes_value"].as_u64().unwrap(),
                    m["max_entries"].as_u64().unwrap(),
                ));
            }
            kernel_maps.sort();
            let mut our_maps: Vec<_> = ours["maps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    (
                        m["kernel_name"].as_str().unwrap().to_string(),
                        m["type"].as_str().unwrap().to_string(),
                        m["key_size"].as_u64().unwrap(),
                        m["value_size"].as_u64().unwrap(),
                        match (m["type"].as_str(), m["max_entries"].as_u64().unwrap()) {
                            // Sized to the possible CPUs at load, as libbpf does.
                            (Some("perf_event_array"), 0) => possible_cpus(),
                            (_, n) => n,
                        },
                    )
                })
                .collect();
            // The kernel lists the maps programs reference (and inner maps
            // reached through them); a map no program uses is created but
            // not reachable that way.
            let obj =
                skelgen_runtime::obj::Object::parse(&std::fs::read(&path).unwrap(), name).unwrap();
            let mut used = std::collections::BTreeSet::new();
            for p in &obj.programs {
                for r in &p.relocs {
                    if let skelgen_runtime::obj::RelocKind::Map { map }
                    | skelgen_runtime::obj::RelocKind::Data { map, .. } = r.kind
                    {
                        used.insert(obj.maps[map].kernel_name.clone());
                    }
                }
            }
            our_maps.retain(|m| used.contains(&m.0) || kernel_maps.iter().any(|k| k.0 == m.0));
            our_maps.sort();
            assert_eq!(our_maps, kernel_maps, "{name}: maps");
        });
        let _ = std::fs::remove_dir_all(&pin);
        if let Err(e) = result {
            std::panic::resume_unwind(e);
        }
    }
}

/// `inspect --disasm` prints what llvm-objdump prints, instruction for
/// instruction. The fixtures are built with -mcpu=v3 (ALU32), so objdump
/// decodes with +alu32, without which it mistakes 32-bit atomics.
#[test]
fn disasm_matches_llvm_objdump() {
    if !require(have("llvm-objdump"), "llvm-objdump is not installed") {
        return;
    }
    for name in ALL_FIXTURES {
        let path = fixture(name);
        let out = skelgen(&["inspect", "--disasm", path.to_str().unwrap()]);
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        // Ours: "   12: r1 = 0 ll  ; note" under "program 'x' (sec 's', ..."
        let mut ours: Vec<(String, Vec<String>)> = Vec::new();
        for line in text.lines() {
            if line.starts_with("program '") || line.starts_with("subprogram '") {
                let name = line.split('\'').nth(1).unwrap().to_string();
                ours.push((name, Vec::new()));
            } else if let Some((_, insn)) = line.split_once(": ") {
                if let Some(last) = ours.last_mut() {
                    if line
                        .trim_start()
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_ascii_digit())
                    {
                        let insn = insn.split("  ;").next().unwrap().trim().to_string();
                        last.1.push(insn);
                    }
                }
            }
        }
        let mut theirs = objdump(&path, &[]);
        let mut alu32 = objdump(&path, &["--mattr=+alu32"]);
        let norm = |v: &mut Vec<(String, Vec<String>)>| {
            for (_, insns) in v.iter_mut() {
                for i in insns.iter_mut() {
                    *i = i.split_whitespace().collect::<Vec<_>>().join(" ");
                }
            }
            v.sort();
        };
        norm(&mut ours);
        norm(&mut theirs);
        norm(&mut alu32);
        assert!(!ours.is_empty());
        assert_eq!(ours.len(), theirs.len(), "{name}: function count");
        for (((on, oi), (tn, ti)), (_, ai)) in ours.iter().zip(&theirs).zip(&alu32) {
            assert_eq!(on, tn);
            assert_eq!(oi.len(), ti.len(), "{name}/{on}: instruction count");
            for (k, ((a, b), c)) in oi.iter().zip(ti).zip(ai).enumerate() {
                assert!(
                    a == b || a == c,
                    "{name}/{on}: instruction {k}: ours `{a}`, objdump `{b}` (+alu32: `{c}`)"
                );
            }
        }
    }
}

/// llvm-objdump's listing as (function, instructions). Its default decoder
/// prints 32-bit atomics as 64-bit ones and `+alu32` prints 32-bit stores
/// with `w` registers; each of our lines must equal one of the two.
fn objdump(path: &Path, extra: &[&str]) -> Vec<(String, Vec<String>)> {
    let dump = Command::new("llvm-objdump")
        .args(["-d", "--no-show-raw-insn"])
        .args(extra)
        .arg(path)
        .output()
        .unwrap();
    let dump = String::from_utf8(dump.stdout).unwrap();
    let mut theirs: Vec<(String, Vec<String>)> = Vec::new();
    for line in dump.lines() {
        // "0000000000000000 <kprobe_vfs_read>:"
        if line.ends_with(">:") {
            let name = line
                .split('<')
                .nth(1)
                .unwrap()
                .trim_end_matches(">:")
                .to_string();
            // Basic-block labels (LBB1_2) continue the function before them.
            if !name.starts_with("LBB") {
                theirs.push((name, Vec::new()));
            }
        } else if let Some((addr, insn)) = line.split_once(':') {
            if addr.trim().chars().all(|c| c.is_ascii_hexdigit()) && !addr.trim().is_empty() {
                if let Some(last) = theirs.last_mut() {
                    // Drop llvm-objdump's jump-target label (`goto +3 <LBB1_2>`).
                    let insn = match insn.rfind(" <LBB") {
                        Some(i) if insn.trim_end().ends_with('>') => &insn[..i],
                        _ => insn,
                    };
                    last.1
                        .push(insn.split_whitespace().collect::<Vec<_>>().join(" "));
                }
            }
        }
    }
    theirs
}

#[test]
fn inspect_of_a_bad_file_is_one_line_and_exit_1() {
    let dir = std::env::temp_dir().join(format!("skelgen-inspect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.bpf.o");
    std::fs::write(&bad, b"not an object").unwrap();
    let out = skelgen(&["inspect", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("skelgen: "), "{err}");
    assert!(err.contains("not an ELF file"), "{err}");
    let out = skelgen(&["inspect", dir.join("missing.o").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let _ = std::fs::remove_dir_all(&dir);
}
