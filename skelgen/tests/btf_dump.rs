//! `skelgen btf dump` as C: the running kernel's BTF becomes a vmlinux.h
//! that clang compiles, whose struct sizes and member offsets are BTF's
//! (checked by clang itself through static assertions), whose declarations
//! are bpftool's, and against which a libbpf-tools style program builds
//! (directly and through `Builder::vmlinux_h`). Split BTF, ELF input and bad
//! input on hand-made BTF.
//!
//! Run inside the matrix VMs, the same tests cover Debian 6.1 and 6.12.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use skelgen::btf_c::{dump_c, DumpError, DumpOptions};
use skelgen_runtime::btf::{Btf, TypeKind, VMLINUX_BTF_PATH};
use skelgen_test_support::{error_chain, fixture_path, have_tool, require};

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn kernel_btf() -> Option<Btf> {
    if !require(
        Path::new(VMLINUX_BTF_PATH).exists(),
        "no /sys/kernel/btf/vmlinux",
    ) || !require(have_tool("clang"), "clang is not installed")
    {
        return None;
    }
    Some(Btf::from_vmlinux().unwrap())
}

/// Runs clang for BPF on `file` in `dir` with `-I dir`.
fn clang(dir: &Path, file: &str, extra: &[&str]) -> std::process::Output {
    Command::new("clang")
        .args(["-g", "-O2", "-target", "bpf", "-D__TARGET_ARCH_x86", "-I"])
        .arg(dir)
        .args(extra)
        .arg("-c")
        .arg(file)
        .arg("-o")
        .arg(dir.join("out.o"))
        .current_dir(dir)
        .output()
        .unwrap()
}

/// Whether `id` holds `__builtin_va_list` by value: the compiler's own
/// type, 24 bytes on x86-64 but a `char *` for the BPF target, so neither
/// bpftool's header nor ours can give such a struct its kernel size.
fn holds_va_list(btf: &Btf, id: u32, memo: &mut HashMap<u32, bool>) -> bool {
    if let Some(&v) = memo.get(&id) {
        return v;
    }
    memo.insert(id, false);
    let t = btf.type_by_id(id).unwrap();
    let v = match t.kind {
        TypeKind::Typedef(to) => {
            btf.name(t.name_off).unwrap() == "__builtin_va_list" || holds_va_list(btf, to, memo)
        }
        TypeKind::Const(to) | TypeKind::Volatile(to) | TypeKind::Restrict(to) => {
            holds_va_list(btf, to, memo)
        }
        TypeKind::Array(a) => holds_va_list(btf, a.elem_type, memo),
        TypeKind::Struct(c) | TypeKind::Union(c) => {
            c.members().any(|m| holds_va_list(btf, m.ty, memo))
        }
        _ => false,
    };
    memo.insert(id, v);
    v
}

/// `_Static_assert`s of the size and every named, byte-aligned top-level
/// member offset of each struct and union whose name is unambiguous (the
/// dumper renames repeated names `x___2`, in emission order).
fn layout_asserts(btf: &Btf) -> (String, usize) {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for t in btf.types() {
        let t = t.unwrap();
        let tag = match t.kind {
            TypeKind::Struct(_) | TypeKind::Union(_) | TypeKind::Enum64(_) => true,
            TypeKind::Enum(e) => !e.is_empty(),
            _ => false,
        };
        let name = btf.name(t.name_off).unwrap();
        if tag && !name.is_empty() {
            *counts.entry(name).or_default() += 1;
        }
    }
    let mut out = String::from("#include \"vmlinux.h\"\n");
    let mut n = 0;
    let mut memo = HashMap::new();
    for t in btf.types() {
        let t = t.unwrap();
        let (kw, c) = match t.kind {
            TypeKind::Struct(c) => ("struct", c),
            TypeKind::Union(c) => ("union", c),
            _ => continue,
        };
        let name = btf.name(t.name_off).unwrap();
        if name.is_empty() || counts.get(name) != Some(&1) || holds_va_list(btf, t.id, &mut memo) {
            continue;
        }
        out.push_str(&format!(
            "_Static_assert(sizeof({kw} {name}) == {}, \"sizeof {name}\");\n",
            c.size
        ));
        n += 1;
        for m in c.members() {
            let mname = btf.name(m.name_off).unwrap();
            if mname.is_empty() || m.bitfield_size != 0 || m.bit_offset % 8 != 0 {
                continue;
            }
            out.push_str(&format!(
                "_Static_assert(__builtin_offsetof({kw} {name}, {mname}) == {}, \"{name}.{mname}\");\n",
                m.bit_offset / 8
            ));
            n += 1;
        }
    }
    (out, n)
}

/// The declarations of a header, whitespace-normalized, without the
/// preprocessor lines, bpftool's kfunc block, the enum `mode(byte)`
/// attribute (newer libbpf prints it for 1-byte enums; bpftool 7.1 did not)
/// and `packed` on unions (libbpf never marks a union packed, so a packed
/// union of 18 bytes comes out 20; ours is marked).
fn declarations(header: &str) -> Vec<String> {
    header
        .split("\n\n")
        .map(|b| b.replace(" __attribute__((mode(byte)))", ""))
        .map(|b| {
            if b.starts_with("union ") && b.ends_with("} __attribute__((packed));") {
                b.replace("} __attribute__((packed));", "};")
            } else {
                b
            }
        })
        .map(|b| b.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|b| !b.is_empty() && !b.starts_with('#') && !b.starts_with("/* BPF kfuncs */"))
        .collect()
}

/// `name___12` -> `name`.
fn without_dup_numbers(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("___") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 3..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            out.push_str("___");
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

#[test]
fn kernel_btf_dumps_to_a_header_with_btf_layouts_and_bpftools_declarations() {
    if kernel_btf().is_none() {
        return;
    }
    check_btf_file(Path::new(VMLINUX_BTF_PATH), "kernel");
}

/// The same for other kernels' BTF files (e.g. copied from the matrix VMs'
/// /sys/kernel/btf/vmlinux): `SKELGEN_BTF_FILES=a:b cargo test`.
#[test]
fn listed_btf_files_dump_the_same_way() {
    let Ok(list) = std::env::var("SKELGEN_BTF_FILES") else {
        return;
    };
    if !require(have_tool("clang"), "clang is not installed") {
        return;
    }
    for (i, path) in list.split(':').filter(|p| !p.is_empty()).enumerate() {
        eprintln!("{path}:");
        check_btf_file(Path::new(path), &format!("listed-{i}"));
        let btf = skelgen::btf_file::read_btf(Path::new(path), None).unwrap();
        program_builds_against(&btf, &format!("listed-{i}"));
        eprintln!("{path}: a libbpf-tools style program builds against its dump");
    }
}

/// A libbpf-tools style program (vmlinux.h, BPF_CORE_READ, const volatile
/// config, ring buffer) compiles against `btf`'s dump and gets a skeleton.
fn program_builds_against(btf: &Btf, tag: &str) {
    let dir = scratch(&format!("btf-dump-program-{tag}"));
    std::fs::write(
        dir.join("vmlinux.h"),
        dump_c(btf, &DumpOptions::new()).unwrap(),
    )
    .unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/exec_vmlinux.bpf.c");
    std::fs::copy(&src, dir.join("exec.bpf.c")).unwrap();
    let out = clang(&dir, "exec.bpf.c", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let obj = std::fs::read(dir.join("out.o")).unwrap();
    skelgen::generate(&obj, &skelgen::Options::new().name("exec_bpf")).unwrap();
}

/// Dumps `path`, compiles the header with BTF's layouts as static
/// assertions, and compares its declarations with bpftool's.
fn check_btf_file(path: &Path, tag: &str) {
    let btf = skelgen::btf_file::read_btf(path, None).unwrap();
    let header = dump_c(&btf, &DumpOptions::new()).unwrap();
    assert!(header.starts_with("#ifndef __VMLINUX_H__\n#define __VMLINUX_H__\n"));
    assert!(header.contains(
        "#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)"
    ));
    assert!(header.ends_with("#endif /* __VMLINUX_H__ */\n"));
    assert_eq!(
        header,
        dump_c(&btf, &DumpOptions::new()).unwrap(),
        "deterministic"
    );

    let dir = scratch(&format!("btf-dump-{tag}"));
    std::fs::write(dir.join("vmlinux.h"), &header).unwrap();
    let (asserts, n) = layout_asserts(&btf);
    std::fs::write(dir.join("layout.c"), asserts).unwrap();
    let out = clang(&dir, "layout.c", &[]);
    assert!(
        out.status.success(),
        "vmlinux.h does not compile or a layout differs from BTF:\n{}",
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .take(40)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(n > 10_000, "only {n} layout assertions");
    eprintln!("{n} size/offset assertions hold");

    if !require(have_tool("bpftool"), "bpftool is not installed") {
        return;
    }
    let bpftool = Command::new("bpftool")
        .args(["btf", "dump", "file"])
        .arg(path)
        .args(["format", "c"])
        .output()
        .unwrap();
    assert!(bpftool.status.success());
    let theirs = declarations(&String::from_utf8(bpftool.stdout).unwrap());
    let ours = declarations(&header);
    let in_order = ours == theirs;
    let (mut a, mut b) = (ours.clone(), theirs.clone());
    a.sort();
    b.sort();
    if a != b {
        let only_ours: Vec<_> = ours
            .iter()
            .filter(|d| !theirs.contains(d))
            .take(5)
            .collect();
        let only_theirs: Vec<_> = theirs
            .iter()
            .filter(|d| !ours.contains(d))
            .take(5)
            .collect();
        panic!(
            "{} declarations here, {} from bpftool; only here: {only_ours:#?}\nonly bpftool's: {only_theirs:#?}",
            ours.len(),
            theirs.len()
        );
    }
    // The sorted order: the same definitions (repeated names are numbered
    // `x___2` in emission order, and forward declarations go where they
    // are needed, so both are left out), and it compiles.
    let sorted = dump_c(&btf, &DumpOptions::new().sorted()).unwrap();
    let definitions = |decls: &[String]| {
        let mut v: Vec<String> = decls
            .iter()
            .filter(|d| d.contains('{') || d.starts_with("typedef"))
            .map(|d| without_dup_numbers(d))
            .collect();
        v.sort();
        v
    };
    assert!(
        definitions(&declarations(&sorted)) == definitions(&ours),
        "the sorted dump defines other things"
    );
    std::fs::write(dir.join("vmlinux.h"), &sorted).unwrap();
    let out = clang(&dir, "layout.c", &[]);
    assert!(
        out.status.success(),
        "sorted: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "{} declarations equal to bpftool's ({})",
        ours.len(),
        if in_order {
            "in the same order"
        } else {
            "in another order"
        }
    );
}

#[test]
fn libbpf_tools_style_program_builds_against_the_dump_and_through_the_builder() {
    let Some(btf) = kernel_btf() else { return };
    program_builds_against(&btf, "kernel");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/exec_vmlinux.bpf.c");

    // The Builder generates the header itself: no vmlinux.h next to the source.
    let srcdir = scratch("btf-dump-builder-src");
    let _ = std::fs::remove_file(srcdir.join("vmlinux.h"));
    std::fs::copy(&src, srcdir.join("exec.bpf.c")).unwrap();
    let out_dir = scratch("btf-dump-builder-out");
    let mut cargo = Vec::new();
    let skel = skelgen::Builder::new()
        .source(srcdir.join("exec.bpf.c"))
        .vmlinux_h_from_running_kernel()
        .out_dir(&out_dir)
        .build_to(&mut cargo)
        .unwrap_or_else(|e| panic!("{}", error_chain(&e)));
    assert!(skel.exists());
    assert!(out_dir.join("vmlinux/vmlinux.h").exists());
    let cargo = String::from_utf8(cargo).unwrap();
    assert!(
        cargo.contains(&format!("cargo:rerun-if-changed={VMLINUX_BTF_PATH}")),
        "{cargo}"
    );
    // A BTF file that is not BTF is an error naming it.
    let bad = srcdir.join("bad.btf");
    std::fs::write(&bad, b"not BTF").unwrap();
    let e = skelgen::Builder::new()
        .source(srcdir.join("exec.bpf.c"))
        .vmlinux_h(&bad)
        .out_dir(&out_dir)
        .build_to(&mut Vec::new())
        .unwrap_err();
    let chain = error_chain(&e);
    assert!(
        chain.contains("bad.btf") && chain.contains("magic"),
        "{chain}"
    );
}

#[test]
fn root_types_dump_only_what_they_need() {
    let Some(btf) = kernel_btf() else { return };
    let header = dump_c(&btf, &DumpOptions::new().root("task_struct")).unwrap();
    assert!(header.contains("\nstruct task_struct {"));
    // Pointed-to structs are forward declarations, not definitions.
    assert!(header.contains("\nstruct mm_struct;\n"), "mm_struct");
    assert!(!header.contains("\nstruct mm_struct {"));
    let dir = scratch("btf-dump-root");
    std::fs::write(dir.join("vmlinux.h"), &header).unwrap();
    std::fs::write(
        dir.join("t.c"),
        "#include \"vmlinux.h\"\nint pid_of(struct task_struct *t) { return t->pid; }\n",
    )
    .unwrap();
    let out = clang(&dir, "t.c", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let e = dump_c(&btf, &DumpOptions::new().root("skelgen_no_such_type")).unwrap_err();
    assert!(matches!(e, DumpError::NoSuchType { .. }), "{e}");
}

#[test]
fn object_btf_from_an_elf_file_compiles() {
    if !require(have_tool("clang"), "clang is not installed") {
        return;
    }
    for name in ["core", "layout", "maptypes"] {
        let btf = skelgen::btf_file::read_btf(&fixture_path(name), None).unwrap();
        let header = dump_c(&btf, &DumpOptions::new()).unwrap();
        let dir = scratch(&format!("btf-dump-obj-{name}"));
        std::fs::write(dir.join("vmlinux.h"), &header).unwrap();
        std::fs::write(dir.join("t.c"), "#include \"vmlinux.h\"\n").unwrap();
        let out = clang(&dir, "t.c", &[]);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

// ---------------------------------------------------------------------------
// Hand-made BTF.

fn info(kind: u32, vlen: u32) -> u32 {
    (kind << 24) | vlen
}

fn empty() -> Btf {
    let mut b = Vec::new();
    for w in [0x0001_eb9f_u32, 24, 0, 0, 0, 1] {
        b.extend_from_slice(&w.to_le_bytes());
    }
    b.push(0);
    Btf::from_vec(b).unwrap()
}

/// int; struct node { int v; struct node *next; struct pair { int a; } p; }
fn small() -> Btf {
    let mut b = empty();
    let int = b.append_string("int");
    b.append_type_raw(&[int, info(1, 0), 4, (1 << 24) | 32])
        .unwrap(); // 1
    let node = b.append_string("node");
    let v = b.append_string("v");
    let next = b.append_string("next");
    let p = b.append_string("p");
    b.append_type_raw(&[node, info(4, 3), 16, v, 1, 0, next, 3, 64, p, 4, 32])
        .unwrap(); // 2
    b.append_type_raw(&[0, info(2, 0), 2]).unwrap(); // 3: struct node *
    let pair = b.append_string("pair");
    let a = b.append_string("a");
    b.append_type_raw(&[pair, info(4, 1), 4, a, 1, 0]).unwrap(); // 4
    b
}

#[test]
fn pointer_cycles_get_forward_declarations_and_embedded_types_come_first() {
    let header = dump_c(&small(), &DumpOptions::new()).unwrap();
    let pair = header.find("struct pair {").unwrap();
    let node = header.find("struct node {").unwrap();
    assert!(pair < node, "{header}");
    assert!(header.contains("\tstruct node *next;"), "{header}");
}

#[test]
fn split_btf_dumps_over_its_base() {
    let base = Arc::new(small());
    // An empty split BTF: a header with no types and no strings.
    let mut b = Vec::new();
    for w in [0x0001_eb9f_u32, 24, 0, 0, 0, 0] {
        b.extend_from_slice(&w.to_le_bytes());
    }
    let mut split = Btf::parse_split(&b, base).unwrap();
    let m = split.append_string("module_thing");
    let head = split.append_string("head");
    // struct module_thing { struct node *head; } reusing the base's pointer (id 3).
    split
        .append_type_raw(&[m, info(4, 1), 8, head, 3, 0])
        .unwrap();
    let header = dump_c(&split, &DumpOptions::new().root("module_thing")).unwrap();
    assert!(
        header.contains("struct module_thing {\n\tstruct node *head;\n};"),
        "{header}"
    );
    assert!(header.contains("struct node;"), "{header}");
}

#[test]
fn bad_btf_gives_located_errors() {
    // struct a { struct a self; }: contains itself by value.
    let mut b = empty();
    let a = b.append_string("a");
    let s = b.append_string("self");
    b.append_type_raw(&[a, info(4, 1), 4, s, 1, 0]).unwrap();
    let e = dump_c(&b, &DumpOptions::new()).unwrap_err();
    assert!(matches!(e, DumpError::Cycle { id: 1 }), "{e}");

    // A member of type 99 in a BTF of 2 ids.
    let mut b = empty();
    let a = b.append_string("a");
    b.append_type_raw(&[a, info(4, 1), 4, 0, 99, 0]).unwrap();
    let e = dump_c(&b, &DumpOptions::new()).unwrap_err();
    let chain = error_chain(&e);
    assert!(chain.contains("99"), "{chain}");

    // const -> const -> ... -> itself: a reference loop.
    let mut b = empty();
    b.append_type_raw(&[0, info(10, 0), 2]).unwrap();
    b.append_type_raw(&[0, info(10, 0), 1]).unwrap();
    let x = b.append_string("x");
    b.append_type_raw(&[x, info(8, 0), 1]).unwrap();
    let e = dump_c(&b, &DumpOptions::new()).unwrap_err();
    assert!(matches!(e, DumpError::TooDeep { .. }), "{e}");

    // Truncated files are errors of the reader, named by path.
    let dir = scratch("btf-dump-bad");
    let path = dir.join("trunc.btf");
    let raw = small().raw().to_vec();
    std::fs::write(&path, &raw[..raw.len() - 7]).unwrap();
    let e = skelgen::btf_file::read_btf(&path, None).unwrap_err();
    assert!(error_chain(&e).contains("trunc.btf"), "{}", error_chain(&e));
}

#[test]
fn mutated_btf_never_panics() {
    let base = skelgen::btf_file::read_btf(&fixture_path("core"), None).unwrap();
    let raw = base.raw().to_vec();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut dumped = 0;
    for _ in 0..3000 {
        let mut m = raw.clone();
        for _ in 0..1 + next() % 4 {
            let at = 24 + (next() as usize) % (m.len() - 24);
            m[at] = next() as u8;
        }
        let Ok(btf) = Btf::from_vec(m) else { continue };
        if dump_c(&btf, &DumpOptions::new()).is_ok() {
            dumped += 1;
        }
        let _ = skelgen::kernel_types::kernel_types(&btf, &["task_struct"], None);
    }
    eprintln!("{dumped} of 3000 mutants still dumped");
}
