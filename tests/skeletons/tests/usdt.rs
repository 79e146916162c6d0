//! USDT through a generated skeleton: the `attach` fixture's `handle_usdt`
//! attached to a probe of `tests/usdt/usdt_target` (a C program with
//! `<sys/sdt.h>` notes), using the skeleton's own usdt.bpf.h maps.

use skelgen_runtime::attach;
use skelgen_skeleton_tests::attach::AttachBpf;
use skelgen_test_support::usdt::{target, Target};
use skelgen_test_support::{kernel, require};

#[test]
fn usdt_probe_fires_with_its_argument() {
    if !kernel() {
        return;
    }
    let built = target();
    if !require(
        built.is_ok(),
        built.as_ref().err().map_or("", String::as_str),
    ) {
        return;
    }
    let path = built.as_ref().unwrap();
    let mut t = Target::spawn(path);
    let mut open = AttachBpf::open().unwrap();
    open.rodata_mut().targ_tgid = t.pid();
    let mut skel = open.load().unwrap();
    let link = attach::attach_usdt(
        skel.progs.handle_usdt.fd().unwrap(),
        Some(t.pid()),
        path.to_str().unwrap(),
        "skelgen",
        "one",
        0,
        skel.maps.__bpf_usdt_specs.map_fd(),
        Some(skel.maps.__bpf_usdt_ip_to_spec_id.map_fd()),
    )
    .unwrap();
    skel.links.handle_usdt = Some(link);
    t.fire("one");
    t.fire("one2");
    assert_eq!(
        skel.bss().usdt_hits().unwrap(),
        2,
        "both call sites of skelgen:one"
    );
    assert_eq!(skel.bss().usdt_arg0().unwrap(), -42);
    // Dropping the link detaches every site.
    skel.links.handle_usdt = None;
    t.fire("one");
    assert_eq!(skel.bss().usdt_hits().unwrap(), 2);
}
