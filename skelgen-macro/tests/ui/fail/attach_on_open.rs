// attach() exists only on the loaded skeleton.
mod skel {
    skelgen_macro::include_bpf!("tests/../../tests/fixtures/tp_ringbuf.bpf.o");
}

fn main() {
    let mut open = skel::TpRingbufBpf::open().unwrap();
    open.attach().unwrap();
}
