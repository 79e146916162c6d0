// C `bool` / `_Bool` fields are `CBool`: set from a Rust `bool`, read as
// one, and any byte a BPF program stores is read without undefined
// behaviour (non-zero is true). `bool` names no generated type.
mod tp {
    skelgen_macro::include_bpf!("tests/../../tests/fixtures/tp_ringbuf.bpf.o");
}
mod layout {
    skelgen_macro::include_bpf!("tests/../../tests/fixtures/layout.bpf.o");
}

use skelgen_runtime::CBool;

fn on_the_kernel() -> Result<(), Box<dyn std::error::Error>> {
    let mut skel = layout::LayoutBpf::open()?.load()?;
    skel.data_mut().set_flag(&false.into())?;
    assert!(!skel.data().flag()?.get());
    skel.data_mut().set_flag(&CBool::TRUE)?;
    assert_eq!(skel.data().flag()?, true);
    Ok(())
}

fn main() {
    let mut open = tp::TpRingbufBpf::open().unwrap();
    // `const volatile bool use_ringbuf = true;`
    assert!(open.rodata().use_ringbuf.get());
    open.rodata_mut().use_ringbuf = false.into();
    assert_eq!(open.rodata().use_ringbuf, false);
    let on: bool = open.rodata().use_ringbuf.into();
    assert!(!on);
    // Rust's `bool` is still the primitive here, next to the types module.
    #[allow(unused_imports)]
    use tp::types::*;
    let plain: bool = true;
    assert!(plain);

    let l = layout::LayoutBpf::open().unwrap();
    // `bool flag = true;` in .data
    let flag: CBool = l.data().flag;
    assert!(flag.get());
    if std::env::var_os("SKELGEN_UI_RUN").is_some() {
        on_the_kernel().unwrap();
    }
}
