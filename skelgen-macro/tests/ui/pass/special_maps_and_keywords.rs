// Prog arrays, map-in-map, perf event arrays, and names that are Rust keywords.
mod mim {
    skelgen_macro::include_bpf!("tests/../../tests/fixtures/mapinmap.bpf.o");
}
mod kw {
    skelgen_macro::include_bpf!("tests/../../tests/fixtures/keywords.bpf.o");
}
mod perf {
    skelgen_macro::include_bpf!("tests/../../tests/fixtures/perfbuf.bpf.o");
}

fn use_it() -> Result<(), Box<dyn std::error::Error>> {
    let skel = mim::MapinmapBpf::open()?.load()?;
    let _: Option<u32> = skel.maps.jmp_table.get(1)?;
    skel.maps.outer_arr.set(&1, skel.maps.inner_a.fd())?;
    let _: Option<u64> = skel.maps.inner_b.lookup(&0)?;
    let kw = kw::KeywordsBpf::open()?.load()?;
    let _ = kw.progs.r#match.fd()?;
    let _: Option<u64> = kw.maps.r#type.lookup(&1)?;
    let _: u64 = kw.bss().self_()?;
    let p = perf::PerfbufBpf::open()?.load()?;
    let _ = p.maps.events.fd();
    Ok(())
}

fn main() {
    let mut open = kw::KeywordsBpf::open().unwrap();
    open.progs.fooBar.set_autoload(false);
    assert_eq!(open.rodata().static_, 7);
    if std::env::var_os("SKELGEN_UI_RUN").is_some() {
        use_it().unwrap();
    }
}
