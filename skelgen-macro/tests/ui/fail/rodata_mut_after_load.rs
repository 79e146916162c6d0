// .rodata is frozen at load: there is no rodata_mut() on the loaded skeleton.
mod skel {
    skelgen_macro::include_bpf!("tests/../../tests/fixtures/tp_ringbuf.bpf.o");
}

fn main() {
    let mut skel = skel::TpRingbufBpf::open().unwrap().load().unwrap();
    skel.rodata_mut().targ_tgid = 1;
}
