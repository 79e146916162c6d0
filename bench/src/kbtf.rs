//! Kernel BTF: read + parse + name index of `/sys/kernel/btf/vmlinux`, and
//! user-space CO-RE relocation of one program against it.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context as _};

use crate::measure::since;

/// The kernel structs `objects/core_many.bpf.c` relocates against, also the
/// names every library looks up after parsing.
pub const STRUCT_NAMES: &[&str] = &[
    "task_struct",
    "vm_area_struct",
    "file",
    "inode",
    "dentry",
    "super_block",
    "vfsmount",
    "mount",
    "pid_namespace",
    "net",
    "net_device",
    "sk_buff",
    "sock",
    "socket",
    "files_struct",
    "fs_struct",
    "signal_struct",
    "rq",
    "cfs_rq",
    "sched_entity",
    "page",
    "address_space",
    "bio",
    "request_queue",
    "block_device",
    "gendisk",
    "kiocb",
    "iov_iter",
    "pipe_inode_info",
    "seq_file",
    "cgroup",
    "css_set",
    "cgroup_subsys_state",
    "kernfs_node",
    "user_namespace",
    "ipc_namespace",
    "mnt_namespace",
    "tcp_sock",
    "inet_sock",
    "udp_sock",
    "sk_buff_head",
    "napi_struct",
    "netdev_queue",
    "Qdisc",
    "bpf_prog",
    "bpf_map",
    "bpf_prog_aux",
    "perf_event",
    "hrtimer",
    "timer_list",
    "workqueue_struct",
    "task_group",
    "linux_binprm",
    "irq_desc",
    "module",
    "device",
    "pci_dev",
];

/// `worker btf LIB ITERS`: per iteration `ok PARSE INDEX LOOKUP FOUND`
/// (INDEX is 0 for aya, which has no separate index step).
pub fn worker(lib: &str, iters: usize) -> anyhow::Result<()> {
    for _ in 0..iters {
        let (parse, index, lookup, found) = match lib {
            "skelgen" => skelgen()?,
            "aya" => aya()?,
            "libbpf-1.7" => libbpf_vendored()?,
            _ => bail!("unknown library {lib}"),
        };
        println!("ok {parse} {index} {lookup} {found}");
    }
    Ok(())
}

fn skelgen() -> anyhow::Result<(u64, u64, u64, u64)> {
    use skelgen_runtime::btf::{Btf, Kind, VMLINUX_BTF_PATH};
    let t0 = Instant::now();
    let btf = Btf::from_file(VMLINUX_BTF_PATH).context("skelgen Btf::from_file")?;
    let parse = since(t0);
    let t1 = Instant::now();
    btf.build_name_index();
    let index = since(t1);
    let t2 = Instant::now();
    let found = STRUCT_NAMES
        .iter()
        .filter(|n| btf.find_by_name_kind(n, Kind::Struct).is_some())
        .count();
    let lookup = since(t2);
    Ok((parse, index, lookup, found as u64))
}

/// libbpf 1.7 (libbpf-rs's vendored copy), which maps
/// `/sys/kernel/btf/vmlinux` where the kernel allows it (libbpf 1.6+), as
/// skelgen does; the harness's system libbpf 1.1 reads it.
fn libbpf_vendored() -> anyhow::Result<(u64, u64, u64, u64)> {
    use libbpf_rs::libbpf_sys as sys;
    let names: Vec<std::ffi::CString> = STRUCT_NAMES
        .iter()
        .map(|n| std::ffi::CString::new(*n))
        .collect::<Result<_, _>>()?;
    let t0 = Instant::now();
    // SAFETY: no arguments; the result is checked before use.
    let btf = unsafe { sys::btf__load_vmlinux_btf() };
    if btf.is_null() {
        bail!("btf__load_vmlinux_btf: {}", std::io::Error::last_os_error());
    }
    let parse = since(t0);
    let t2 = Instant::now();
    let found = names
        .iter()
        .filter(|n| {
            // SAFETY: `btf` is the live object loaded above; `n` is a C string.
            unsafe { sys::btf__find_by_name_kind(btf, n.as_ptr(), sys::BTF_KIND_STRUCT) > 0 }
        })
        .count();
    let lookup = since(t2);
    // SAFETY: freed once, not used after.
    unsafe { sys::btf__free(btf) };
    Ok((parse, 0, lookup, found as u64))
}

fn aya() -> anyhow::Result<(u64, u64, u64, u64)> {
    use aya_obj::btf::{Btf, BtfKind};
    let t0 = Instant::now();
    let btf = Btf::from_sys_fs().context("aya Btf::from_sys_fs")?;
    let parse = since(t0);
    let t2 = Instant::now();
    let found = STRUCT_NAMES
        .iter()
        .filter(|n| btf.id_by_type_name_kind(n, BtfKind::Struct).is_ok())
        .count();
    let lookup = since(t2);
    Ok((parse, 0, lookup, found as u64))
}

/// `worker core OBJ PROG ITERS`: user-space CO-RE of program PROG.
/// Per iteration `ok PARSE INDEX RELOCATE RELOS`: the first iteration reads,
/// parses and indexes the kernel BTF (as a process's first load does), the
/// later ones reuse it (as later loads in the same process do); every
/// iteration starts from a fresh `CoreTarget` (empty candidate cache).
pub fn core_worker(path: &str, prog: &str, iters: usize) -> anyhow::Result<()> {
    use skelgen_runtime::btf::{Btf, VMLINUX_BTF_PATH};
    use skelgen_runtime::co_re::{relocate_program, CoreTarget};
    use skelgen_runtime::insn::Insn;

    let bytes = std::fs::read(path).with_context(|| format!("cannot read {path}"))?;
    let name = skelgen_runtime::obj::object_name_from_path(path);
    let obj = skelgen_runtime::obj::Object::parse(&bytes, &name).context("parse object")?;
    let p = obj
        .program(prog)
        .with_context(|| format!("{path} has no program {prog}"))?;
    let (Some(local), Some(ext)) = (obj.btf.as_ref(), obj.btf_ext.as_ref()) else {
        bail!("{path} has no BTF/BTF.ext");
    };
    let start = u32::try_from(p.insn_offset * 8)?;
    let end = start + u32::try_from(p.insns.len())?;
    let mut relos = Vec::new();
    for sec in &ext.core_relos {
        if local.name(sec.sec_name_off).ok() != Some(p.section.as_str()) {
            continue;
        }
        for r in &sec.records {
            if (start..end).contains(&r.insn_off) {
                let mut r = *r;
                r.insn_off -= start;
                relos.push(r);
            }
        }
    }
    if relos.is_empty() {
        bail!("program {prog} has no CO-RE relocations");
    }
    let insns = Insn::from_bytes(&p.insns).context("instructions")?;
    let mut vmlinux: Option<Arc<Btf>> = None;
    for _ in 0..iters {
        let (mut parse, mut index) = (0, 0);
        let target = match &vmlinux {
            Some(b) => b.clone(),
            None => {
                let t0 = Instant::now();
                let b = Arc::new(Btf::from_file(VMLINUX_BTF_PATH).context("kernel BTF")?);
                parse = since(t0);
                let t1 = Instant::now();
                b.build_name_index();
                index = since(t1);
                vmlinux = Some(b.clone());
                b
            }
        };
        let mut work = insns.clone();
        let t2 = Instant::now();
        let core = CoreTarget::new(target);
        let stats =
            relocate_program(local, &core, prog, &mut work, &relos).context("relocate_program")?;
        let relocate = since(t2);
        println!(
            "ok {parse} {index} {relocate} {}",
            stats.applied + stats.poisoned
        );
    }
    Ok(())
}
