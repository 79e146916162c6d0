//! `skelgen min-core-btf` on the kernel: core.bpf.o loads with user-space
//! CO-RE against only the minimal BTF computed for it from this kernel's
//! (`OpenOptions::btf_custom_path`), and what its program reads equals what
//! it reads when relocated against the full BTF. The one expected
//! difference is `bpf_core_type_id_kernel`, which names a type id of the
//! BTF relocated against.

use std::sync::Arc;

use skelgen_runtime::btf::{Btf, Kind, VMLINUX_BTF_PATH};
use skelgen_runtime::skel::{CoreMode, OpenOptions};
use skelgen_skeleton_tests::core;
use skelgen_test_support::{error_chain, fixture, kernel_serial};

fn getpid() -> i32 {
    std::process::id() as i32
}

/// Loads core.bpf.o relocated in user space against `btf`, triggers it once
/// from this thread and returns its `.bss`.
fn run_against(btf: &std::path::Path) -> core::types::bss {
    let mut open = core::CoreBpf::open_with(OpenOptions {
        core: CoreMode::User,
        btf_custom_path: Some(btf.to_path_buf()),
        ..OpenOptions::default()
    })
    .unwrap();
    open.rodata_mut().targ_tgid = getpid();
    let mut skel = open
        .load()
        .unwrap_or_else(|e| panic!("{}: {}", btf.display(), error_chain(&e)));
    skel.attach().unwrap();
    let _ = std::os::unix::process::parent_id();
    let bss = skel.bss().read().unwrap();
    drop(skel);
    bss
}

#[test]
fn core_fixture_loads_against_its_minimal_btf_with_the_same_results() {
    let Some(_serial) = kernel_serial() else {
        return;
    };
    let full = Arc::new(Btf::from_vmlinux().unwrap());
    let object = fixture("core");
    let minimal = skelgen::min_core::min_core_btf(full.clone(), &[("core.bpf.o", &object)])
        .unwrap_or_else(|e| panic!("{}", error_chain(&e)));
    let small = Btf::parse(&minimal).unwrap();
    assert!(
        minimal.len() * 100 < full.raw().len(),
        "minimal BTF is {} bytes of {}",
        minimal.len(),
        full.raw().len()
    );
    let dir = std::env::temp_dir().join(format!("skelgen-min-core-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let min_path = dir.join("core.min.btf");
    std::fs::write(&min_path, &minimal).unwrap();

    let with_full = run_against(std::path::Path::new(VMLINUX_BTF_PATH));
    let with_min = run_against(&min_path);
    assert_eq!(with_full.runs, 1);
    assert_eq!(with_min.runs, 1);
    assert_eq!(with_min.task_tgid, getpid());
    assert_eq!(
        with_min.parent_tgid,
        std::os::unix::process::parent_id() as i32
    );
    // TYPE_ID_TARGET gives each BTF's own id of task_struct.
    let id_in = |b: &Btf| b.find_by_name_kind("task_struct", Kind::Struct).unwrap();
    assert_eq!(with_full.task_btf_id, id_in(&full));
    assert_eq!(with_min.task_btf_id, id_in(&small));
    let mut expected = with_full;
    expected.task_btf_id = with_min.task_btf_id;
    assert_eq!(
        with_min, expected,
        "CO-RE results differ between the full and the minimal BTF"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
