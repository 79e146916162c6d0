// The libbpf-tools shape: const volatile config before load, attach,
// counters in .bss and a hash map after, a ring buffer handle.
mod skel {
    skelgen_macro::include_bpf!("tests/../../tests/fixtures/tp_ringbuf.bpf.o");
}

use skel::TpRingbufBpf;

fn use_it() -> Result<(), Box<dyn std::error::Error>> {
    let mut open = TpRingbufBpf::open()?;
    open.rodata_mut().targ_tgid = std::process::id() as i32;
    open.rodata_mut().use_ringbuf = false.into();
    open.progs.handle_getppid_short.set_autoload(false);
    open.maps.counts.set_max_entries(4096)?;
    assert_eq!(open.maps.events.max_entries(), 262144);
    let mut skel = open.load()?;
    skel.attach()?;
    let hits: u64 = skel.bss().tp_hits()?;
    let all: skel::types::bss = skel.bss().read()?;
    assert_eq!(hits, all.tp_hits);
    skel.bss_mut().set_tp_hits(&0)?;
    let per_thread: Option<u64> = skel.maps.counts.lookup(&1)?;
    let _ = per_thread;
    for key in skel.maps.counts.keys() {
        let _: u32 = key?;
    }
    let _ = skel.maps.events.fd();
    assert!(skel.links.handle_getppid.is_some());
    assert_eq!(skel.rodata().use_ringbuf, false);
    let event = skel::types::event::default();
    let _ = skelgen_runtime::Plain::as_bytes(&event);
    Ok(())
}

fn main() {
    // Parsing needs no privileges; the rest runs only where asked to.
    let open = TpRingbufBpf::open().unwrap();
    assert_eq!(open.rodata().targ_tgid, 0);
    if std::env::var_os("SKELGEN_UI_RUN").is_some() {
        use_it().unwrap();
    }
}
