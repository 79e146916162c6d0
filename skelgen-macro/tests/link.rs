//! `include_bpf!` with several objects: they are statically linked (as
//! `bpftool gen object`) and the skeleton of the result is typed by the
//! whole program: the application's and the library's maps, programs and
//! variables, driven on the kernel.

mod linked {
    skelgen_macro::include_bpf!(
        "../tests/fixtures/link/main.bpf.o",
        "../tests/fixtures/link/lib.bpf.o",
        "../tests/fixtures/link/override.bpf.o",
    );
}

#[test]
fn the_linked_skeleton_counts_through_the_library() {
    let Some(_k) = skelgen_test_support::kernel_serial() else {
        return;
    };
    let mut open = linked::MainBpf::open().unwrap();
    open.bss_mut().main_pid = std::process::id();
    let mut skel = open.load().unwrap();
    skel.attach().unwrap();
    for _ in 0..3 {
        let _ = std::os::unix::process::parent_id();
    }
    let b = skel.bss().read().unwrap();
    assert_eq!(b.main_seen, 3);
    // override.bpf.o's strong lib_hook() beat lib.bpf.o's weak one.
    assert_eq!(b.main_last, 7);
    assert_eq!(
        b.lib_total, 30,
        "the extern variable, defined by the library"
    );
    assert_eq!(skel.maps.counts.lookup(&1).unwrap(), Some(90));
    assert_eq!(skel.maps.shared.lookup(&0).unwrap(), Some(3));
}

mod lib_view {
    skelgen_macro::include_bpf!("../tests/fixtures/link/lib.bpf.o", subskeleton);
}

/// The library's subskeleton, generated from lib.bpf.o alone, reads and
/// writes the library's variables and maps inside the final object.
#[test]
fn the_library_subskeleton_works_inside_the_final_object() {
    use std::os::fd::AsFd;

    let Some(_k) = skelgen_test_support::kernel_serial() else {
        return;
    };
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/link");
    let inputs: Vec<(String, Vec<u8>)> = ["main", "lib", "override"]
        .iter()
        .map(|n| {
            let p = dir.join(format!("{n}.bpf.o"));
            (n.to_string(), std::fs::read(p).unwrap())
        })
        .collect();
    let linked = skelgen::link::link(&inputs).unwrap();
    let loaded = skelgen_runtime::loader::OpenObject::open(&linked, "final", Default::default())
        .unwrap()
        .load()
        .unwrap();
    let mut lib = lib_view::LibBpfSubskel::new(&loaded).unwrap();
    assert_eq!(lib.lib_calls.read().unwrap(), 100, ".data initial value");
    assert_eq!(lib.lib_scale.read().unwrap(), 3, ".rodata value");
    assert!(lib.lib_scale.write(&4).is_err(), ".rodata is frozen");
    lib.lib_total.write(&1000).unwrap();
    lib.lib_calls.write(&7).unwrap();
    // The library's own program, through the subskeleton: lib_add(2, 1).
    let run = skelgen_runtime::sys::TestRun::new()
        .data_in(&[0u8; 64])
        .run(lib.progs.lib_xdp.as_fd())
        .unwrap();
    assert_eq!(run.retval, 2);
    assert_eq!(
        lib.lib_total.read().unwrap(),
        1001,
        "the program saw our write"
    );
    assert_eq!(lib.lib_calls.read().unwrap(), 8);
    assert_eq!(lib.maps.counts.lookup(&2).unwrap(), Some(3));
    lib.maps.counts.update(&5, &55, 0).unwrap();
    assert_eq!(lib.maps.counts.lookup(&5).unwrap(), Some(55));
    // A map the final object lacks is an error naming it.
    let main_only = skelgen_runtime::loader::OpenObject::open(
        &std::fs::read(dir.join("override.bpf.o")).unwrap(),
        "override",
        Default::default(),
    )
    .unwrap()
    .load()
    .unwrap();
    let e = lib_view::LibBpfSubskel::new(&main_only).err().unwrap();
    assert_eq!(
        e.to_string(),
        "the final object has no map 'counts' (was the library linked into it?)"
    );
}
