// counts is keyed by __u32 (the map's BTF key type): a u64 key does not compile.
mod skel {
    skelgen_macro::include_bpf!("tests/../../tests/fixtures/tp_ringbuf.bpf.o");
}

fn main() {
    let skel = skel::TpRingbufBpf::open().unwrap().load().unwrap();
    let _ = skel.maps.counts.lookup(&1u64);
}
