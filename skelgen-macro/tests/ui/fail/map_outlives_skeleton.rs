// A map handle borrows the skeleton: it cannot be used after the skeleton is dropped.
mod skel {
    skelgen_macro::include_bpf!("tests/../../tests/fixtures/tp_ringbuf.bpf.o");
}

fn main() {
    let skel = skel::TpRingbufBpf::open().unwrap().load().unwrap();
    let counts = &skel.maps.counts;
    drop(skel);
    let _ = counts.lookup(&1);
}
