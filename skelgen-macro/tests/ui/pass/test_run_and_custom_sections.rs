// XDP driven by BPF_PROG_TEST_RUN; custom .data.foo / .rodata.bar sections.
mod skel {
    skelgen_macro::include_bpf!("tests/../../tests/fixtures/xdp_counter.bpf.o");
}

use skelgen_runtime::skel::TestRun;

fn use_it() -> Result<(), Box<dyn std::error::Error>> {
    let mut open = skel::XdpCounterBpf::open()?;
    open.rodata_bar_mut().bar_drop_len = 60;
    open.data_foo_mut().foo_magic = 7;
    let skel = open.load()?;
    let out = skel.progs.xdp_count.test_run(TestRun::new().data_in(&[0u8; 64]).repeat(2))?;
    assert_eq!(out.retval, 1);
    let packets: u64 = skel.data_foo().foo_packets()?;
    let stats: Option<skel::types::stats> = skel.maps.pkt_stats.lookup(&1)?;
    assert_eq!(stats.map(|s| s.packets), Some(packets));
    Ok(())
}

fn main() {
    let open = skel::XdpCounterBpf::open().unwrap();
    assert_eq!(open.rodata_bar().bar_magic, 0xba4ba4);
    if std::env::var_os("SKELGEN_UI_RUN").is_some() {
        use_it().unwrap();
    }
}
