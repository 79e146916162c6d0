//! What [`CoreMode::Auto`] picks: CO-RE in the kernel at `BPF_PROG_LOAD`, or
//! in user space against the kernel BTF.
//!
//! Measured (bench/RESULTS.md, kernel 6.18, 2 CPUs): the kernel's candidate
//! search scans every vmlinux type by name for each local type it has not
//! cached, 0.6–1.1 ms per type (`core_many`, 57 types: 34–64 ms inside
//! `BPF_PROG_LOAD`), and it caches candidates for only 31 types
//! (`VMLINUX_CAND_CACHE_SIZE` in kernel/bpf/btf.c), so an object relocating
//! more types than that pays the full search on every load. User-space CO-RE
//! finds candidates through the name index: 0.1 ms per type (5.8 ms for the
//! 57), plus reading and indexing the kernel BTF once per process (6.6 ms).
//! Break-even with a cold kernel cache is at 7–13 types, but with a warm one
//! the kernel costs almost nothing for up to 31 types (`core`, a handful of
//! types: 0.6 ms for the whole load), so user space is picked only for more
//! types than the kernel caches (the kernel is then always cold: 57 types
//! took 47 ms with Auto = user space vs 93 ms in the kernel, libbpf 155 ms,
//! in the run of 2026-12-02).
//!
//! Not a rule: "the kernel BTF is already parsed in this process". Tried and
//! measured in that run: `attach.bpf.o` (a `tp_btf` program parses the BTF,
//! plus a few CO-RE relocations) then relocated in user space at 15 ms per
//! later load against 1.0 ms in the kernel, whose candidate cache was warm.

use crate::fast::HashSet;

use super::{CoreMode, OpenOptions};
use crate::obj::Object;
use crate::sys;

/// Candidate cache entries of the kernel's CO-RE (`VMLINUX_CAND_CACHE_SIZE`):
/// above this many distinct relocated types, every load searches again.
const KERNEL_CAND_CACHE: usize = 31;

/// Distinct local types the object's CO-RE records start from.
fn relocated_types(obj: &Object) -> usize {
    let Some(ext) = obj.btf_ext.as_ref() else {
        return 0;
    };
    ext.core_relos
        .iter()
        .flat_map(|sec| sec.records.iter().map(|r| r.type_id))
        .collect::<HashSet<u32>>()
        .len()
}

/// The mode a load uses for `opts.core`.
pub(crate) fn resolve(opts: &OpenOptions, obj: &Object) -> CoreMode {
    match opts.core {
        CoreMode::Auto => {
            if opts.btf_custom_path.is_some() || !sys::probe::kernel_core_relo() {
                return CoreMode::User;
            }
            let types = relocated_types(obj);
            if types == 0 {
                CoreMode::Kernel
            } else if types > KERNEL_CAND_CACHE {
                CoreMode::User
            } else {
                CoreMode::Kernel
            }
        }
        m => m,
    }
}
