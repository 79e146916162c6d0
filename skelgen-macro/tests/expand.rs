//! `include_bpf!` on committed fixtures: the expansion compiles, names follow
//! the file or `name = "..."`, and the embedded object opens.

#[allow(dead_code)]
mod vfsstat {
    skelgen_macro::include_bpf!("../tests/fixtures/vfsstat.bpf.o");
}

#[allow(dead_code)]
mod renamed {
    skelgen_macro::include_bpf!("../tests/fixtures/xdp_counter.bpf.o", name = "xdp",);
}

#[test]
fn names_follow_the_file_or_the_name_argument() {
    fn exists<T>() {}
    exists::<vfsstat::VfsstatBpf>();
    exists::<vfsstat::OpenVfsstatBpf>();
    exists::<renamed::Xdp>();
    exists::<renamed::OpenXdp>();
}

#[test]
fn the_embedded_object_opens() {
    if let Err(e) = vfsstat::VfsstatBpf::open() {
        panic!("open: {e}");
    }
}
