//! What the running kernel can do for the attach kinds that differ between
//! kernels (kprobes, multi-probes, trampolines, struct_ops links, tcx,
//! netkit, netfilter) and for the kernel facts typed ksyms and kfuncs
//! depend on.
//!
//! Each probe asks the kernel itself (a file it exposes, or a syscall whose
//! errno tells the feature apart, see [`crate::sys::link_probe`]) and says
//! what it saw, so that a disagreement with an expectation (the test suite's
//! kernel matrix) can show both sides. Probes are not cached and may create
//! and close programs, maps and links.

use std::os::fd::AsFd;
use std::path::Path;

pub use crate::sys::link_probe::Answer;

use crate::btf::Kind;
use crate::sys::{
    attach_type, btf_load, prog_type, LinkCreate, LinkTarget, MapCreate, ProgLoad, TRACEFS_ROOTS,
};

use super::{module_btfs, vmlinux_btf, Kallsyms};

/// The kernel function fentry is probed on: `bpf_fentry_test1` exists for
/// exactly this purpose (the kernel's own BPF tests attach to it) and only
/// `BPF_PROG_TEST_RUN` of a tracing program calls it.
pub const FENTRY_PROBE_TARGET: &str = "bpf_fentry_test1";

/// The struct_ops value type probed for links: `tcp_congestion_ops` is the
/// struct_ops every kernel with struct_ops has.
const STRUCT_OPS_VALUE_TYPE: &str = "bpf_struct_ops_tcp_congestion_ops";
/// `BPF_MAP_TYPE_STRUCT_OPS`.
const MAP_TYPE_STRUCT_OPS: u32 = 26;
/// `BPF_F_LINK`: a struct_ops map to be attached through a link (6.4+).
const MAP_F_LINK: u32 = 1 << 13;

/// The PMU file libbpf reads to create kprobes as perf events.
const KPROBE_PMU_TYPE: &str = "/sys/bus/event_source/devices/kprobe/type";

/// kprobes: the kprobe PMU, or the legacy tracefs `kprobe_events` file.
pub fn kprobes() -> Answer {
    if Path::new(KPROBE_PMU_TYPE).exists() {
        return Answer {
            supported: true,
            evidence: format!("{KPROBE_PMU_TYPE} exists"),
        };
    }
    for root in TRACEFS_ROOTS {
        let events = format!("{root}/kprobe_events");
        if Path::new(&events).exists() {
            return Answer {
                supported: true,
                evidence: format!("no kprobe PMU, but {events} exists"),
            };
        }
    }
    Answer {
        supported: false,
        evidence: format!(
            "neither {KPROBE_PMU_TYPE} nor kprobe_events under {} (tracefs mounted?)",
            TRACEFS_ROOTS.join(" or ")
        ),
    }
}

/// `kprobe.multi` links.
pub fn kprobe_multi() -> Answer {
    crate::sys::link_probe::kprobe_multi()
}

/// `kprobe.session` links.
pub fn kprobe_session() -> Answer {
    crate::sys::link_probe::kprobe_session()
}

/// `uprobe.multi` links.
pub fn uprobe_multi() -> Answer {
    crate::sys::link_probe::uprobe_multi()
}

/// tcx links.
pub fn tcx() -> Answer {
    crate::sys::link_probe::tcx()
}

/// netkit links.
pub fn netkit() -> Answer {
    crate::sys::link_probe::netkit()
}

fn no(evidence: String) -> Answer {
    Answer {
        supported: false,
        evidence,
    }
}

/// BPF trampolines: an fentry program on [`FENTRY_PROBE_TARGET`] loads and
/// attaches (the load is where a kernel that refuses trampolines says
/// `EPERM`; the attach is where one without ftrace direct calls fails).
pub fn trampolines() -> Answer {
    let btf = match vmlinux_btf() {
        Ok(b) => b,
        Err(e) => return no(format!("no vmlinux BTF: {e}")),
    };
    let Some(id) = btf.find_by_name_kind(FENTRY_PROBE_TARGET, Kind::Func) else {
        return no(format!("vmlinux BTF has no function {FENTRY_PROBE_TARGET}"));
    };
    let insns = [0xb7u8, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0];
    let prog = match ProgLoad::new(prog_type::TRACING, &insns, "GPL")
        .expected_attach_type(attach_type::TRACE_FENTRY)
        .attach_btf_id(id)
        .load()
    {
        Ok(p) => p,
        Err(e) => {
            return no(format!(
                "fentry on {FENTRY_PROBE_TARGET} (BTF id {id}) does not load: {e}"
            ))
        }
    };
    match LinkCreate::new(prog.fd.as_fd(), LinkTarget::None, attach_type::TRACE_FENTRY).create() {
        Ok(_link) => Answer {
            supported: true,
            evidence: format!("fentry on {FENTRY_PROBE_TARGET} loaded and attached"),
        },
        Err(e) => no(format!(
            "fentry on {FENTRY_PROBE_TARGET} loads but does not attach: {e}"
        )),
    }
}

/// struct_ops links: a struct_ops map created with `BPF_F_LINK` (which
/// kernels before 6.4 reject with `EINVAL`).
pub fn struct_ops_link() -> Answer {
    let btf = match vmlinux_btf() {
        Ok(b) => b,
        Err(e) => return no(format!("no vmlinux BTF: {e}")),
    };
    let Some(id) = btf.find_by_name_kind(STRUCT_OPS_VALUE_TYPE, Kind::Struct) else {
        return no(format!(
            "vmlinux BTF has no {STRUCT_OPS_VALUE_TYPE} (no struct_ops at all)"
        ));
    };
    let size = match btf.size_of(id) {
        Ok(s) => s,
        Err(e) => return no(format!("size of {STRUCT_OPS_VALUE_TYPE}: {e}")),
    };
    // The kernel wants the object's own BTF beside the vmlinux value type
    // (it is where libbpf's struct_ops maps come from); any BTF will do.
    let own_btf = match btf_load(&minimal_btf(), 0) {
        Ok(fd) => fd,
        Err(e) => return no(format!("BPF_BTF_LOAD of a one-type BTF failed: {e}")),
    };
    let map = |flags| {
        MapCreate::new(MAP_TYPE_STRUCT_OPS, 4, size, 1)
            .flags(flags)
            .btf(own_btf.as_fd(), 0, 0)
            .btf_vmlinux_value_type_id(id)
            .create()
    };
    match map(MAP_F_LINK) {
        Ok(_) => Answer {
            supported: true,
            evidence: format!("struct_ops map of {STRUCT_OPS_VALUE_TYPE} with BPF_F_LINK created"),
        },
        Err(linked) => {
            // Say whether struct_ops maps exist at all, or only links do not.
            let plain = map(0);
            no(format!(
                "struct_ops map of {STRUCT_OPS_VALUE_TYPE} with BPF_F_LINK refused ({}); without it: {}",
                errno_of(&linked),
                match plain {
                    Ok(_) => "created".to_string(),
                    Err(e) => format!("refused too ({})", errno_of(&e)),
                }
            ))
        }
    }
}

/// Raw BTF holding one type, `int`.
fn minimal_btf() -> Vec<u8> {
    let strings = b"\0int\0";
    // kind INT (1) << 24; size 4; encoding: signed, 32 bits.
    let types: [u32; 4] = [1, 1 << 24, 4, 0x0100_0020];
    let type_len = (types.len() * 4) as u32;
    let mut out = Vec::new();
    out.extend_from_slice(&0xeb9fu16.to_ne_bytes());
    out.push(1); // version
    out.push(0); // flags
    for word in [24, 0, type_len, type_len, strings.len() as u32] {
        out.extend_from_slice(&u32::to_ne_bytes(word));
    }
    for word in types {
        out.extend_from_slice(&word.to_ne_bytes());
    }
    out.extend_from_slice(strings);
    out
}

fn errno_of(e: &crate::sys::SysError) -> String {
    match e.errno() {
        Some(n) => std::io::Error::from_raw_os_error(n).to_string(),
        None => e.to_string(),
    }
}

/// The data symbol [`kallsyms_all`] looks for: the initial task, a variable
/// every kernel has. (Without `CONFIG_KALLSYMS_ALL` kallsyms still lists a
/// few linker-made `D` markers such as `__start_rodata`, so "any data
/// symbol" would answer yes.)
pub const KALLSYMS_DATA_PROBE: &str = "init_task";

/// `CONFIG_KALLSYMS_ALL`: `/proc/kallsyms` lists vmlinux variables, which
/// typed and typeless ksyms of variables need.
pub fn kallsyms_all() -> Answer {
    let syms = match Kallsyms::read() {
        Ok(s) => s,
        Err(e) => return no(format!("cannot read kallsyms: {e}")),
    };
    let data = syms
        .entries()
        .filter(|e| e.module.is_none() && matches!(e.kind, 'd' | 'D' | 'b' | 'B'))
        .count();
    let found = syms.entries().find(|e| {
        e.module.is_none() && e.name == KALLSYMS_DATA_PROBE && matches!(e.kind, 'd' | 'D')
    });
    Answer {
        supported: found.is_some(),
        evidence: format!(
            "{KALLSYMS_DATA_PROBE} {} /proc/kallsyms ({data} vmlinux data symbols of {})",
            if found.is_some() {
                "is in"
            } else {
                "is not in"
            },
            syms.len()
        ),
    }
}

/// Module BTF: loaded modules' BTF objects, as the bpf() BTF id walk finds
/// them (needs `CAP_SYS_ADMIN`).
pub fn module_btf() -> Answer {
    match module_btfs() {
        Ok(all) if !all.is_empty() => Answer {
            supported: true,
            evidence: format!(
                "{} modules with BTF (first: {})",
                all.len(),
                all.first().map_or("", |m| m.name.as_str())
            ),
        },
        Ok(_) => no("no module BTF object in the kernel".into()),
        Err(e) => no(format!("module BTF walk failed: {e}")),
    }
}

/// The task kfuncs (6.2): `bpf_task_from_pid`, `bpf_task_acquire` and
/// `bpf_task_release` are functions of vmlinux BTF (where the verifier looks
/// kfuncs up).
pub fn task_kfuncs() -> Answer {
    let btf = match vmlinux_btf() {
        Ok(b) => b,
        Err(e) => return no(format!("no vmlinux BTF: {e}")),
    };
    let names = ["bpf_task_from_pid", "bpf_task_acquire", "bpf_task_release"];
    let missing: Vec<&str> = names
        .into_iter()
        .filter(|n| btf.find_by_name_kind(n, Kind::Func).is_none())
        .collect();
    Answer {
        supported: missing.is_empty(),
        evidence: if missing.is_empty() {
            format!("vmlinux BTF has {}", names.join(", "))
        } else {
            format!("vmlinux BTF has no {}", missing.join(", "))
        },
    }
}

/// fmod_ret on `bpf_modify_return_test` and sleepable fentry on
/// `bpf_fentry_test1` load: kernels with `CONFIG_FUNCTION_ERROR_INJECTION`
/// allow both through the error-injection list, others only if the kernel
/// puts the functions in its modify-return BTF id set (with `KF_SLEEPABLE`
/// for the sleepable one). The verifier says "is not modifiable" or "is not
/// sleepable" where it refuses.
pub fn fmod_ret_sleepable() -> Answer {
    let btf = match vmlinux_btf() {
        Ok(b) => b,
        Err(e) => return no(format!("no vmlinux BTF: {e}")),
    };
    let insns = [0xb7u8, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0];
    // BPF_MODIFY_RETURN and BPF_F_SLEEPABLE.
    const MODIFY_RETURN: u32 = 26;
    const SLEEPABLE: u32 = 1 << 4;
    let cases = [
        ("fmod_ret", "bpf_modify_return_test", MODIFY_RETURN, 0),
        (
            "fentry.s",
            FENTRY_PROBE_TARGET,
            attach_type::TRACE_FENTRY,
            SLEEPABLE,
        ),
    ];
    let mut seen = Vec::new();
    for (kind, func, attach, flags) in cases {
        let Some(id) = btf.find_by_name_kind(func, Kind::Func) else {
            return no(format!("vmlinux BTF has no function {func}"));
        };
        if let Err(e) = ProgLoad::new(prog_type::TRACING, &insns, "GPL")
            .expected_attach_type(attach)
            .attach_btf_id(id)
            .prog_flags(flags)
            .load()
        {
            return no(format!("{kind} on {func} does not load: {e}"));
        }
        seen.push(format!("{kind} on {func}"));
    }
    Answer {
        supported: true,
        evidence: format!("{} load", seen.join(" and ")),
    }
}

/// Netfilter programs (6.4): `r0 = NF_ACCEPT; exit` loads as
/// `BPF_PROG_TYPE_NETFILTER`.
pub fn netfilter() -> Answer {
    // BPF_PROG_TYPE_NETFILTER and BPF_NETFILTER.
    const PROG_TYPE_NETFILTER: u32 = 32;
    let insns = [0xb7u8, 0, 0, 0, 1, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0];
    match ProgLoad::new(PROG_TYPE_NETFILTER, &insns, "GPL")
        .expected_attach_type(attach_type::NETFILTER)
        .load()
    {
        Ok(_) => Answer {
            supported: true,
            evidence: "a netfilter program loaded".into(),
        },
        Err(e) => no(format!("a netfilter program does not load: {e}")),
    }
}

/// Every probe, by the names the test suite's kernel matrix uses.
pub fn all() -> Vec<(&'static str, Answer)> {
    vec![
        ("kprobes", kprobes()),
        ("kprobe_multi", kprobe_multi()),
        ("kprobe_session", kprobe_session()),
        ("uprobe_multi", uprobe_multi()),
        ("trampolines", trampolines()),
        ("struct_ops_link", struct_ops_link()),
        ("kallsyms_all", kallsyms_all()),
        ("module_btf", module_btf()),
        ("tcx", tcx()),
        ("netkit", netkit()),
        ("task_kfuncs", task_kfuncs()),
        ("fmod_ret_sleepable", fmod_ret_sleepable()),
    ]
}
