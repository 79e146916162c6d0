//! The loader on the running kernel: every fixture opens and loads, its
//! programs run with the effects their C sources promise, failures carry
//! the kernel's reason, and nothing leaks.

use std::os::fd::AsFd;
use std::process::Command;

use skelgen_runtime::loader::{CoreMode, LoadError, LoadedObject, OpenObject, OpenOptions};
use skelgen_runtime::sys::TestRun;
use skelgen_test_support::matrix::{has, Feature};
use skelgen_test_support::{error_chain, fixture as bytes, kernel as kernel_or_skip};

fn open(name: &str) -> OpenObject {
    OpenObject::open(&bytes(name), name, OpenOptions::default()).unwrap()
}

fn prog_index(o: &LoadedObject, name: &str) -> usize {
    o.object()
        .programs
        .iter()
        .position(|p| p.name == name)
        .unwrap()
}

fn map_index(o: &LoadedObject, name: &str) -> usize {
    o.object().maps.iter().position(|m| m.name == name).unwrap()
}

/// The value of data map `map` at `offset` as a u64, through a lookup.
fn data_u64(o: &LoadedObject, map: &str, offset: usize) -> u64 {
    let m = o.map(map_index(o, map)).unwrap();
    let mut v = vec![0u8; m.fd.value_size() as usize];
    assert!(m.fd.lookup(&0u32.to_le_bytes(), &mut v, 0).unwrap());
    u64::from_le_bytes(v[offset..offset + 8].try_into().unwrap())
}

fn run(o: &LoadedObject, prog: &str, pkt: &[u8], repeat: u32) -> u32 {
    let fd = o.prog_fd(prog_index(o, prog)).unwrap();
    TestRun::new()
        .data_in(pkt)
        .repeat(repeat)
        .run(fd.as_fd())
        .unwrap()
        .retval
}

#[test]
fn xdp_counter_counts() {
    if !kernel_or_skip() {
        return;
    }
    let o = open("xdp_counter").load().unwrap();
    let pkt = [0u8; 64];
    assert_eq!(run(&o, "xdp_count", &pkt, 3), 2);
    // .data.foo: foo_packets at 0, foo_bytes at 8, foo_magic at 16.
    assert_eq!(data_u64(&o, ".data.foo", 0), 3);
    assert_eq!(data_u64(&o, ".data.foo", 8), 192);
    let stats = o.map(map_index(&o, "pkt_stats")).unwrap();
    let mut v = [0u8; 16];
    assert!(stats.fd.lookup(&0u32.to_le_bytes(), &mut v, 0).unwrap());
    assert_eq!(u64::from_le_bytes(v[..8].try_into().unwrap()), 3);
    assert_eq!(u64::from_le_bytes(v[8..].try_into().unwrap()), 192);
}

#[test]
fn rodata_set_before_load_changes_behaviour() {
    if !kernel_or_skip() {
        return;
    }
    let mut open = open("xdp_counter");
    let bar = open
        .object()
        .maps
        .iter()
        .position(|m| m.name == ".rodata.bar")
        .unwrap();
    // bar_drop_len at offset 0.
    open.data_image_mut(bar).unwrap().as_bytes_mut()[..4].copy_from_slice(&60u32.to_le_bytes());
    let o = open.load().unwrap();
    assert_eq!(run(&o, "xdp_count", &[0u8; 64], 1), 1, "XDP_DROP");
    assert_eq!(run(&o, "xdp_count", &[0u8; 32], 1), 2, "short packets pass");
    // The frozen .rodata.bar map is mapped read-only and shows the image.
    let m = o.map(bar).unwrap();
    let mmap = m.mmap.as_ref().expect("mmapable");
    let mut b = [0u8; 4];
    mmap.read_volatile(0, &mut b).unwrap();
    assert_eq!(u32::from_le_bytes(b), 60);
}

#[test]
fn subprograms_are_linked() {
    if !kernel_or_skip() {
        return;
    }
    let o = open("subprogs").load().unwrap();
    assert_eq!(run(&o, "xdp_entry", &[0u8; 64], 1), 2);
    assert_eq!(run(&o, "tc_entry", &[0u8; 64], 1), 0);
    let expect = [
        (0, 1),
        (8, 42),
        (16, 81),
        (24, 45),
        (32, 1),
        (40, 143),
        (48, 144),
        (56, 4950),
        (64, 64),
    ];
    for (off, v) in expect {
        assert_eq!(data_u64(&o, ".bss", off), v, ".bss+{off}");
    }
}

#[test]
fn prog_array_and_map_in_map_slots_work() {
    if !kernel_or_skip() {
        return;
    }
    let o = open("mapinmap").load().unwrap();
    // The entry tail-calls into slot 1 (tail_prog), which returns 2.
    assert_eq!(run(&o, "entry_prog", &[0u8; 64], 1), 2);
    // .bss: entry_runs 0, tail_runs 8, fallthrough 16.
    assert_eq!(data_u64(&o, ".bss", 0), 1);
    assert_eq!(data_u64(&o, ".bss", 8), 1);
    assert_eq!(data_u64(&o, ".bss", 16), 0);
    for (name, want) in [("inner_a", 1u64), ("inner_b", 11)] {
        let m = o.map(map_index(&o, name)).unwrap();
        let mut v = [0u8; 8];
        assert!(m.fd.lookup(&0u32.to_le_bytes(), &mut v, 0).unwrap());
        assert_eq!(u64::from_le_bytes(v), want, "{name}[0]");
    }
}

#[test]
fn verifier_rejection_carries_the_log() {
    if !kernel_or_skip() {
        return;
    }
    let e = open("verifier_reject").load().unwrap_err();
    let LoadError::ProgLoad { source, .. } = &e else {
        panic!("{e}");
    };
    let log = source.verifier_log().expect("a verifier log");
    assert!(
        log.contains("invalid mem access 'map_value_or_null'"),
        "{log}"
    );
}

/// How many of `loaded`'s programs in sections starting with `prefix` loaded.
fn loaded_in(loaded: &LoadedObject, prefix: &str) -> usize {
    loaded
        .object()
        .programs
        .iter()
        .enumerate()
        .filter(|(i, p)| p.section.starts_with(prefix) && loaded.prog_fd(*i).is_some())
        .count()
}

#[test]
fn fentry_loads_where_the_kernel_has_trampolines_else_fails_with_its_reason() {
    if !kernel_or_skip() {
        return;
    }
    if has(Feature::Trampolines) {
        let loaded = open("vfsstat")
            .load()
            .unwrap_or_else(|e| panic!("vfsstat: {}", error_chain(&e)));
        assert_eq!(loaded_in(&loaded, "fentry/"), 5);
        assert_eq!(loaded_in(&loaded, "kprobe/"), 5);
    } else {
        let e = open("vfsstat").load().unwrap_err();
        let msg = format!(
            "{e}: {}",
            std::error::Error::source(&e)
                .map(|s| s.to_string())
                .unwrap_or_default()
        );
        assert!(msg.contains("fentry_vfs_"), "{msg}");
    }
    // Either way, with the fentry programs' autoload off the rest loads.
    let mut o = open("vfsstat");
    for i in 0..o.object().programs.len() {
        if o.object().programs[i].section.starts_with("fentry/") {
            o.prog_settings_mut(i).unwrap().autoload = false;
        }
    }
    let loaded = o.load().unwrap();
    assert_eq!(loaded_in(&loaded, "fentry/"), 0);
    assert_eq!(loaded_in(&loaded, "kprobe/"), 5);
}

#[test]
fn ring_buffer_producer_runs() {
    if !kernel_or_skip() {
        return;
    }
    let o = open("ringbuf_flood").load().unwrap();
    assert_eq!(run(&o, "flood", &[0u8; 64], 10), 2);
    // next_seq 0, submitted 8, dropped 16.
    assert_eq!(data_u64(&o, ".bss", 0), 10);
    assert_eq!(data_u64(&o, ".bss", 8) + data_u64(&o, ".bss", 16), 10);
    let rb = o.map(map_index(&o, "rb")).unwrap();
    assert_eq!(rb.fd.max_entries(), 16384);
}

#[test]
fn perf_event_array_is_sized_to_cpus() {
    if !kernel_or_skip() {
        return;
    }
    let o = open("perfbuf").load().unwrap();
    let m = o.map(map_index(&o, "events")).unwrap();
    assert_eq!(
        m.fd.max_entries() as usize,
        skelgen_runtime::sys::num_possible_cpus().unwrap()
    );
    assert_eq!(run(&o, "perf_emit", &[0u8; 64], 1), 2);
}

#[test]
fn every_loadable_fixture_loads_in_both_core_modes() {
    if !kernel_or_skip() {
        return;
    }
    // (fixture, what it needs beyond what every kernel of the matrix has,
    // and what the load error must then name).
    for (name, needs) in [
        ("tp_ringbuf", None),
        ("xdp_counter", None),
        ("subprogs", None),
        ("core", None),
        ("kconfig", Some((Feature::TaskKfuncs, "bpf_task_from_pid"))),
        ("mapinmap", None),
        ("layout", None),
        ("keywords", None),
        ("attach", None),
        ("ringbuf_flood", None),
        ("perfbuf", None),
        ("maptypes", None),
    ] {
        for mode in [CoreMode::Kernel, CoreMode::User] {
            let opts = OpenOptions {
                core: mode,
                ..OpenOptions::default()
            };
            let o = OpenObject::open(&bytes(name), name, opts).unwrap();
            match (o.load(), needs) {
                (Ok(_), Some((feature, _))) if !has(feature) => {
                    panic!(
                        "{name} ({mode:?}) loads, but the kernel lacks {}",
                        feature.name()
                    )
                }
                (Ok(_), _) => {}
                (Err(e), Some((feature, names))) if !has(feature) => {
                    let msg = error_chain(&e);
                    assert!(msg.contains(names), "{name} ({mode:?}): {msg}");
                }
                (Err(e), _) => panic!("{name} ({mode:?}): {}", error_chain(&e)),
            }
        }
    }
}

#[test]
fn strong_missing_kconfig_fails_naming_it() {
    if !kernel_or_skip() {
        return;
    }
    let e = open("kconfig_strong_missing").load().unwrap_err();
    let msg = error_chain(&e);
    assert!(msg.contains("CONFIG_SKELGEN_STRONG_MISSING"), "{msg}");
}

/// Parity with libbpf: bpftool (libbpf 1.1) and we agree on which fixtures
/// load.
#[test]
fn same_verdict_as_libbpf() {
    if !kernel_or_skip() {
        return;
    }
    let bpftool = Command::new("bpftool").arg("version").output().is_ok();
    if !skelgen_test_support::require(bpftool, "bpftool is not installed") {
        return;
    }
    let dir = format!("{}/../tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        let Some(name) = file.strip_suffix(".bpf.o") else {
            continue;
        };
        // Section names newer than the system's libbpf 1.1, which cannot
        // even open these objects: kprobe.session, uprobe.multi and
        // uprobe.session (libbpf 1.2 to 1.5). Ours must load them.
        if ["probes"].contains(&name) {
            let ours =
                OpenObject::open(&std::fs::read(&path).unwrap(), name, OpenOptions::default())
                    .and_then(|o| o.load());
            assert!(ours.is_ok(), "{name}: {ours:?}");
            continue;
        }
        let pin = format!("/sys/fs/bpf/skelgen_parity_{name}_{}", std::process::id());
        let theirs = Command::new("bpftool")
            .args(["prog", "loadall"])
            .arg(&path)
            .arg(&pin)
            .output()
            .unwrap()
            .status
            .success();
        let _ = std::fs::remove_dir_all(&pin);
        // bpftool 7.1 pins every program, so `loadall` fails on an object
        // whose programs are autoload-off (`SEC("?...")`) even where libbpf
        // loads it: ask libbpf itself then (libbpf_check.py, through ctypes).
        let theirs = theirs
            || Command::new("python3")
                .arg(format!("{dir}/libbpf_check.py"))
                .arg(&path)
                .output()
                .is_ok_and(|o| o.status.success());
        let ours = OpenObject::open(&std::fs::read(&path).unwrap(), name, OpenOptions::default())
            .and_then(|o| o.load())
            .map(drop);
        assert_eq!(
            ours.is_ok(),
            theirs,
            "{name}: ours {ours:?}, libbpf loaded: {theirs}"
        );
    }
}

#[test]
fn pinned_maps_are_reused_when_compatible() {
    if !kernel_or_skip() {
        return;
    }
    let root = std::path::PathBuf::from(format!("/sys/fs/bpf/skelgen_pin_{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    let pinned = |o: &mut OpenObject| {
        let i = o
            .object()
            .maps
            .iter()
            .position(|m| m.name == "pkt_stats")
            .unwrap();
        o.map_settings_mut(i).unwrap().pin_path = Some(root.join("pkt_stats"));
        i
    };
    let mut first = open("xdp_counter");
    let i = pinned(&mut first);
    let first = first.load().unwrap();
    assert!(root.join("pkt_stats").exists(), "pinned at load");
    assert_eq!(run(&first, "xdp_count", &[0u8; 64], 2), 2);
    drop(first);
    // A second load reuses the pinned map: the counts carry over.
    let mut second = open("xdp_counter");
    pinned(&mut second);
    let second = second.load().unwrap();
    assert_eq!(run(&second, "xdp_count", &[0u8; 64], 1), 2);
    let m = second.map(i).unwrap();
    let mut v = [0u8; 16];
    assert!(m.fd.lookup(&0u32.to_le_bytes(), &mut v, 0).unwrap());
    assert_eq!(u64::from_le_bytes(v[..8].try_into().unwrap()), 3);
    drop(second);
    // An incompatible definition is refused, naming the pin.
    let mut third = open("xdp_counter");
    let i = pinned(&mut third);
    third.map_settings_mut(i).unwrap().max_entries = 3;
    let e = third.load().unwrap_err();
    assert!(e.to_string().contains("incompatible"), "{e}");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn custom_btf_path_drives_user_space_core() {
    if !kernel_or_skip() {
        return;
    }
    // A BTFHub-style file: here, a copy of the running kernel's BTF.
    let path = std::env::temp_dir().join(format!("skelgen-btf-{}", std::process::id()));
    std::fs::copy("/sys/kernel/btf/vmlinux", &path).unwrap();
    let opts = OpenOptions {
        btf_custom_path: Some(path.clone()),
        ..OpenOptions::default()
    };
    OpenObject::open(&bytes("core"), "core", opts)
        .unwrap()
        .load()
        .unwrap();
    // A custom BTF that lacks the types poisons or fails the relocations.
    std::fs::write(&path, b"not BTF").unwrap();
    let opts = OpenOptions {
        btf_custom_path: Some(path.clone()),
        ..OpenOptions::default()
    };
    let e = OpenObject::open(&bytes("core"), "core", opts)
        .unwrap()
        .load()
        .unwrap_err();
    assert!(e.to_string().contains("custom BTF"), "{e}");
    std::fs::remove_file(&path).unwrap();
}
