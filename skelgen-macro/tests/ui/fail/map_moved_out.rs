// No handle can be moved out of the skeleton (it implements Drop).
mod skel {
    skelgen_macro::include_bpf!("tests/../../tests/fixtures/tp_ringbuf.bpf.o");
}

fn main() {
    let skel = skel::TpRingbufBpf::open().unwrap().load().unwrap();
    let counts = skel.maps.counts;
    let _ = counts.lookup(&1);
}
