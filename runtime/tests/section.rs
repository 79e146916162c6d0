//! The SEC() table against libbpf's (the committed TSV), and lookups of the
//! names real programs use.

use skelgen_runtime::section::{
    lookup, parse_target, AttachTarget, AttachType, AutoAttach, BtfTargetKind, MatchRule, ProgType,
    SecFlags, SectionError, SECTION_DEFS,
};

const TSV: &str = include_str!("../src/section_defs.tsv");

fn flag(name: &str) -> SecFlags {
    match name {
        "0" | "SEC_NONE" => SecFlags::NONE,
        "SEC_EXP_ATTACH_OPT" => SecFlags::EXP_ATTACH_OPT,
        "SEC_ATTACHABLE" => SecFlags::ATTACHABLE,
        "SEC_ATTACHABLE_OPT" => SecFlags::ATTACHABLE_OPT,
        "SEC_ATTACH_BTF" => SecFlags::ATTACH_BTF,
        "SEC_SLEEPABLE" => SecFlags::SLEEPABLE,
        "SEC_XDP_FRAGS" => SecFlags::XDP_FRAGS,
        "SEC_USDT" => SecFlags::USDT,
        other => panic!("TSV flag {other} not known to the test"),
    }
}

fn auto_attach(name: &str) -> AutoAttach {
    match name {
        "-" => AutoAttach::None,
        "attach_kprobe" => AutoAttach::Kprobe,
        "attach_uprobe" => AutoAttach::Uprobe,
        "attach_kprobe_multi" => AutoAttach::KprobeMulti,
        "attach_kprobe_session" => AutoAttach::KprobeSession,
        "attach_uprobe_multi" => AutoAttach::UprobeMulti,
        "attach_ksyscall" => AutoAttach::Ksyscall,
        "attach_usdt" => AutoAttach::Usdt,
        "attach_tp" => AutoAttach::Tracepoint,
        "attach_raw_tp" => AutoAttach::RawTracepoint,
        "attach_trace" => AutoAttach::Trace,
        "attach_tracing_multi" => AutoAttach::TracingMulti,
        "attach_lsm" => AutoAttach::Lsm,
        "attach_iter" => AutoAttach::Iter,
        other => panic!("TSV auto-attach function {other} not known to the test"),
    }
}

#[test]
fn table_matches_libbpf_tsv_row_for_row() {
    let rows: Vec<Vec<&str>> = TSV
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split('\t').collect())
        .collect();
    assert_eq!(rows.len(), 116);
    assert_eq!(rows.len(), SECTION_DEFS.len());

    for (i, (row, def)) in rows.iter().zip(SECTION_DEFS.iter()).enumerate() {
        let [idx, prefix, rule, prog, attach, flags, auto, ..] = row.as_slice() else {
            panic!("TSV row {i} has too few columns: {row:?}");
        };
        assert_eq!(idx.parse::<usize>().ok(), Some(i), "row {i}: index column");

        let (want_prefix, want_rule) = match *rule {
            "exact" => (*prefix, MatchRule::Exact),
            "exact_or_slash" => (
                prefix
                    .strip_suffix('+')
                    .unwrap_or_else(|| panic!("row {i}: `+` expected")),
                MatchRule::ExactOrSlash,
            ),
            other => panic!("row {i}: match rule {other} not implemented"),
        };
        assert_eq!(def.prefix, want_prefix, "row {i}: prefix");
        assert_eq!(def.rule, want_rule, "row {i} ({prefix}): rule");
        assert_eq!(
            def.prog_type.as_str(),
            *prog,
            "row {i} ({prefix}): prog type"
        );
        let got_attach = def.expected_attach_type.map_or("0", AttachType::as_str);
        assert_eq!(got_attach, *attach, "row {i} ({prefix}): attach type");
        let want_flags = flags
            .split('|')
            .map(flag)
            .fold(SecFlags::NONE, |a, f| a | f);
        assert_eq!(def.flags, want_flags, "row {i} ({prefix}): flags");
        assert_eq!(
            def.auto_attach,
            auto_attach(auto),
            "row {i} ({prefix}): auto attach"
        );
    }
}

#[test]
fn short_names_are_lowercase_kernel_names() {
    for t in ProgType::ALL {
        let short = t
            .as_str()
            .strip_prefix("BPF_PROG_TYPE_")
            .unwrap()
            .to_lowercase();
        assert_eq!(t.short_name(), short);
        assert_eq!(ProgType::from_u32(t.as_u32()), Some(*t));
    }
    for t in AttachType::ALL {
        let short = t.as_str().strip_prefix("BPF_").unwrap().to_lowercase();
        assert_eq!(t.short_name(), short);
        assert_eq!(AttachType::from_u32(t.as_u32()), Some(*t));
    }
    assert_eq!(ProgType::Kprobe.short_name(), "kprobe");
    assert_eq!(ProgType::Kprobe.to_string(), "BPF_PROG_TYPE_KPROBE");
    assert_eq!(ProgType::from_u32(1000), None);
}

/// The names of one `enum` of the installed uapi header, in order, with
/// their values (implicit values count up from the previous one).
fn uapi_enum(header: &str, name: &str) -> Vec<(String, u32)> {
    let start = header
        .find(&format!("enum {name} {{"))
        .unwrap_or_else(|| panic!("enum {name} not in bpf.h"));
    let body = &header[start..];
    let body = &body[body.find('{').unwrap() + 1..body.find("};").unwrap()];
    let mut next = 0u32;
    let mut out = Vec::new();
    for item in body.split(',') {
        let item = item
            .lines()
            .map(|l| l.split("/*").next().unwrap_or(""))
            .collect::<String>();
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let (ident, value) = match item.split_once('=') {
            Some((i, v)) => (i.trim(), v.trim().parse().unwrap_or(next)),
            None => (item, next),
        };
        if !ident.starts_with("__") {
            out.push((ident.to_owned(), value));
        }
        next = value + 1;
    }
    out
}

#[test]
fn numbers_agree_with_installed_uapi_header() {
    let Ok(header) = std::fs::read_to_string("/usr/include/linux/bpf.h") else {
        eprintln!("skipped: /usr/include/linux/bpf.h not installed");
        return;
    };
    // The header may be older than the kernel: every name it has must agree.
    let progs = uapi_enum(&header, "bpf_prog_type");
    assert!(progs.len() > 30);
    for (name, value) in progs {
        let t = ProgType::from_u32(value).unwrap_or_else(|| panic!("{name} = {value} missing"));
        assert_eq!(t.as_str(), name);
    }
    let attach = uapi_enum(&header, "bpf_attach_type");
    assert!(attach.len() > 40);
    for (name, value) in attach {
        let t = AttachType::from_u32(value).unwrap_or_else(|| panic!("{name} = {value} missing"));
        assert_eq!(t.as_str(), name);
    }
}

#[track_caller]
fn check(sec: &str, prefix: &str, prog: ProgType, target: Option<&str>) {
    let m = lookup(sec).unwrap_or_else(|| panic!("{sec}: no match"));
    assert_eq!(m.def.prefix, prefix, "{sec}");
    assert_eq!(m.def.prog_type, prog, "{sec}");
    assert_eq!(m.target, target, "{sec}");
    assert_eq!(m.section, sec);
    assert!(std::ptr::eq(m.def, &SECTION_DEFS[m.index]));
}

#[test]
fn typical_names() {
    use ProgType as P;
    check("kprobe/vfs_read", "kprobe", P::Kprobe, Some("vfs_read"));
    check("kretprobe/x", "kretprobe", P::Kprobe, Some("x"));
    check("kprobe", "kprobe", P::Kprobe, None);
    check(
        "tp/syscalls/sys_enter_x",
        "tp",
        P::Tracepoint,
        Some("syscalls/sys_enter_x"),
    );
    check("tracepoint/a/b", "tracepoint", P::Tracepoint, Some("a/b"));
    check(
        "raw_tp/sys_enter",
        "raw_tp",
        P::RawTracepoint,
        Some("sys_enter"),
    );
    check(
        "raw_tp.w/x",
        "raw_tp.w",
        P::RawTracepointWritable,
        Some("x"),
    );
    check(
        "tp_btf/sched_switch",
        "tp_btf",
        P::Tracing,
        Some("sched_switch"),
    );
    check("fentry/x", "fentry", P::Tracing, Some("x"));
    check("fentry.s/x", "fentry.s", P::Tracing, Some("x"));
    check("xdp", "xdp", P::Xdp, None);
    check("xdp.frags", "xdp.frags", P::Xdp, None);
    check("xdp/devmap", "xdp/devmap", P::Xdp, None);
    check("tc", "tc", P::SchedCls, None);
    check("tc/ingress", "tc/ingress", P::SchedCls, None);
    check("tcx/ingress", "tcx/ingress", P::SchedCls, None);
    check("cgroup_skb/egress", "cgroup_skb/egress", P::CgroupSkb, None);
    check(
        "cgroup/sock_create",
        "cgroup/sock_create",
        P::CgroupSock,
        None,
    );
    check("cgroup/sock", "cgroup/sock", P::CgroupSock, None);
    check("socket", "socket", P::SocketFilter, None);
    check(
        "uprobe//bin/bash:readline",
        "uprobe",
        P::Kprobe,
        Some("/bin/bash:readline"),
    );
    check(
        "usdt/./a.out:prov:probe",
        "usdt",
        P::Kprobe,
        Some("./a.out:prov:probe"),
    );
    check("perf_event", "perf_event", P::PerfEvent, None);
    check("iter/task", "iter", P::Tracing, Some("task"));
    check("struct_ops/x", "struct_ops", P::StructOps, Some("x"));
    check("struct_ops.s/x", "struct_ops.s", P::StructOps, Some("x"));
    check("syscall", "syscall", P::Syscall, None);
    check("lsm/file_open", "lsm", P::Lsm, Some("file_open"));
    check(
        "kprobe.multi/vfs_*",
        "kprobe.multi",
        P::Kprobe,
        Some("vfs_*"),
    );
    check(
        "uprobe.multi.s/x:y",
        "uprobe.multi.s",
        P::Kprobe,
        Some("x:y"),
    );
    check(
        "sk_reuseport/migrate",
        "sk_reuseport/migrate",
        P::SkReuseport,
        None,
    );

    let xdp = lookup("xdp").unwrap().def;
    assert_eq!(xdp.expected_attach_type, Some(AttachType::Xdp));
    assert_eq!(xdp.flags, SecFlags::ATTACHABLE_OPT);
    assert!(lookup("xdp.frags")
        .unwrap()
        .def
        .flags
        .contains(SecFlags::XDP_FRAGS));
    assert!(lookup("fentry.s/x").unwrap().def.is_sleepable());
    assert_eq!(
        lookup("kprobe/x").unwrap().def.expected_attach_type_raw(),
        0
    );
    assert_eq!(
        lookup("tcx/egress").unwrap().def.expected_attach_type_raw(),
        AttachType::TcxEgress as u32
    );
    assert_eq!(
        format!("{:?}", SecFlags::ATTACH_BTF | SecFlags::SLEEPABLE),
        "ATTACH_BTF | SLEEPABLE"
    );
}

#[test]
fn names_that_must_not_match() {
    for sec in [
        "kprobefoo",
        "xdpx",
        "xdp/",
        "xdp/foo",
        "tc/foo",
        "socket1",
        "socket/x",
        "?kprobe/x",
        "",
        "/",
        ".text",
        "license",
        ".maps",
        "kprobe.multifoo",
        "cgroup/unknown",
        "Kprobe/x",
    ] {
        assert!(lookup(sec).is_none(), "{sec:?} matched {:?}", lookup(sec));
    }
}

#[track_caller]
fn target(sec: &str) -> AttachTarget<'_> {
    let m = lookup(sec).unwrap_or_else(|| panic!("{sec}: no match"));
    parse_target(&m).unwrap_or_else(|e| panic!("{sec}: {e}"))
}

#[track_caller]
fn bad(sec: &str) -> SectionError {
    let m = lookup(sec).unwrap_or_else(|| panic!("{sec}: no match"));
    match parse_target(&m) {
        Ok(t) => panic!("{sec}: parsed as {t:?}"),
        Err(e) => {
            assert!(e.to_string().contains(sec), "error names the section: {e}");
            e
        }
    }
}

#[test]
fn targets() {
    use AttachTarget as T;
    assert_eq!(
        target("kprobe/vfs_read"),
        T::Kprobe {
            func: "vfs_read",
            offset: 0,
            retprobe: false
        }
    );
    assert_eq!(
        target("kprobe/do_sys_open+0x10"),
        T::Kprobe {
            func: "do_sys_open",
            offset: 16,
            retprobe: false
        }
    );
    assert_eq!(
        target("kprobe/f.isra.0+12"),
        T::Kprobe {
            func: "f.isra.0",
            offset: 12,
            retprobe: false
        }
    );
    assert_eq!(
        target("kretprobe/x"),
        T::Kprobe {
            func: "x",
            offset: 0,
            retprobe: true
        }
    );
    assert_eq!(target("kprobe"), T::Manual);
    assert_eq!(
        target("ksyscall/getppid"),
        T::Ksyscall {
            syscall: "getppid",
            retprobe: false
        }
    );
    assert_eq!(
        target("kretsyscall/kill"),
        T::Ksyscall {
            syscall: "kill",
            retprobe: true
        }
    );
    assert_eq!(
        target("kprobe.multi/vfs_*"),
        T::KprobeMulti {
            pattern: "vfs_*",
            retprobe: false,
            session: false
        }
    );
    assert_eq!(
        target("kretprobe.multi/tcp_?"),
        T::KprobeMulti {
            pattern: "tcp_?",
            retprobe: true,
            session: false
        }
    );
    assert_eq!(
        target("kprobe.session/x*"),
        T::KprobeMulti {
            pattern: "x*",
            retprobe: false,
            session: true
        }
    );
    assert_eq!(
        target("uprobe//bin/bash:readline"),
        T::Uprobe {
            binary: "/bin/bash",
            func: "readline",
            offset: 0,
            retprobe: false
        }
    );
    assert_eq!(
        target("uretprobe.s/libc.so.6:malloc@@GLIBC_2.2.5"),
        T::Uprobe {
            binary: "libc.so.6",
            func: "malloc@@GLIBC_2.2.5",
            offset: 0,
            retprobe: true
        }
    );
    assert_eq!(
        target("uprobe/./app:main+0x20"),
        T::Uprobe {
            binary: "./app",
            func: "main",
            offset: 32,
            retprobe: false
        }
    );
    assert_eq!(target("uprobe"), T::Manual);
    assert_eq!(
        target("uprobe.multi//usr/lib/libc.so.6:str*"),
        T::UprobeMulti {
            binary: "/usr/lib/libc.so.6",
            pattern: "str*",
            retprobe: false,
            session: false
        }
    );
    assert_eq!(
        target("uprobe.session/app:f"),
        T::UprobeMulti {
            binary: "app",
            pattern: "f",
            retprobe: false,
            session: true
        }
    );
    assert_eq!(
        target("usdt//usr/bin/python3:python:function__entry"),
        T::Usdt {
            binary: "/usr/bin/python3",
            provider: "python",
            name: "function__entry"
        }
    );
    assert_eq!(target("usdt"), T::Manual);
    assert_eq!(
        target("tracepoint/syscalls/sys_enter_getppid"),
        T::Tracepoint {
            category: "syscalls",
            name: "sys_enter_getppid"
        }
    );
    assert_eq!(
        target("tp.s/syscalls/sys_enter_x"),
        T::Tracepoint {
            category: "syscalls",
            name: "sys_enter_x"
        }
    );
    assert_eq!(target("tp"), T::Manual);
    assert_eq!(
        target("raw_tp/sys_enter"),
        T::RawTracepoint { name: "sys_enter" }
    );
    assert_eq!(target("raw_tracepoint.w/x"), T::RawTracepoint { name: "x" });
    assert_eq!(
        target("tp_btf/sched_switch"),
        T::Btf {
            name: Some("sched_switch")
        }
    );
    assert_eq!(
        target("fentry/vfs_read"),
        T::Btf {
            name: Some("vfs_read")
        }
    );
    assert_eq!(target("fentry"), T::Btf { name: None });
    assert_eq!(target("fexit.s/x"), T::Btf { name: Some("x") });
    assert_eq!(
        target("freplace/handler"),
        T::Btf {
            name: Some("handler")
        }
    );
    assert_eq!(
        target("lsm/file_open"),
        T::Btf {
            name: Some("file_open")
        }
    );
    assert_eq!(target("iter/task"), T::Btf { name: Some("task") });
    assert_eq!(
        target("fentry.multi/bpf_fentry_test*"),
        T::TracingMulti {
            pattern: "bpf_fentry_test*"
        }
    );
    for manual in [
        "xdp",
        "tc",
        "tcx/ingress",
        "cgroup/sock_create",
        "socket",
        "struct_ops/x",
        "perf_event",
        "syscall",
        "lsm_cgroup/socket_bind",
        "sk_msg",
    ] {
        assert_eq!(target(manual), T::Manual, "{manual}");
    }
}

#[test]
fn btf_targets() {
    let name = |sec: &str| {
        lookup(sec)
            .and_then(|m| m.btf_target())
            .map(|t| (t.to_string(), t.kind))
    };
    assert_eq!(
        name("fentry/vfs_read"),
        Some(("vfs_read".into(), BtfTargetKind::Func))
    );
    assert_eq!(
        name("tp_btf/sched_switch"),
        Some(("btf_trace_sched_switch".into(), BtfTargetKind::Typedef))
    );
    assert_eq!(
        name("lsm/file_open"),
        Some(("bpf_lsm_file_open".into(), BtfTargetKind::Func))
    );
    assert_eq!(
        name("lsm_cgroup/socket_bind"),
        Some(("bpf_lsm_socket_bind".into(), BtfTargetKind::Func))
    );
    assert_eq!(
        name("iter/task"),
        Some(("bpf_iter_task".into(), BtfTargetKind::Func))
    );
    assert_eq!(name("freplace/f"), Some(("f".into(), BtfTargetKind::Func)));
    assert_eq!(name("fentry"), None);
    assert_eq!(name("kprobe/x"), None);
}

#[test]
fn malformed_targets() {
    for sec in [
        "kprobe/",
        "kprobe/foo-bar",
        "kprobe/f+",
        "kprobe/f+x",
        "kprobe/+4",
        "ksyscall/",
        "kprobe.multi/a b",
        "uprobe//bin/bash",
        "uprobe/:f",
        "uprobe/bin:",
        "uprobe/bin:+4",
        "uprobe.multi/bin",
        "usdt/a:b",
        "usdt/a:b:c:d",
        "usdt/a::c",
        "tracepoint/syscalls",
        "tp/syscalls/",
        "tp//x",
        "tp/a/b/c",
        "raw_tp/",
        "fentry/",
        "fentry.multi/",
    ] {
        assert!(matches!(bad(sec), SectionError::Malformed { .. }), "{sec}");
    }
    assert!(matches!(
        bad("kretprobe/f+8"),
        SectionError::RetprobeOffset { .. }
    ));
    assert!(matches!(
        bad("uretprobe/bin:f+8"),
        SectionError::RetprobeOffset { .. }
    ));
    let e = bad("tracepoint/syscalls");
    assert_eq!(
        e.to_string(),
        "section `tracepoint/syscalls`: malformed attach target, expected tracepoint/<category>/<name>"
    );
}
