// OpenOptions (CO-RE mode), kconfig values after load, autoload off for
// programs this kernel cannot load.
mod core_skel {
    skelgen_macro::include_bpf!("tests/../../tests/fixtures/core.bpf.o");
}
mod kconfig_skel {
    skelgen_macro::include_bpf!("tests/../../tests/fixtures/kconfig.bpf.o", name = "kcfg_bpf");
}
mod vfsstat {
    skelgen_macro::include_bpf!("tests/../../tests/fixtures/vfsstat.bpf.o");
}

use skelgen_runtime::skel::{CoreMode, OpenOptions};

fn use_it() -> Result<(), Box<dyn std::error::Error>> {
    let opts = OpenOptions { core: CoreMode::User, ..OpenOptions::default() };
    let mut open = core_skel::CoreBpf::open_with(opts)?;
    open.rodata_mut().targ_tgid = std::process::id() as i32;
    let mut skel = open.load()?;
    skel.attach()?;
    let _: i32 = skel.bss().task_pid()?;
    let k = kconfig_skel::KcfgBpf::open()?.load()?;
    let hz: i32 = k.kconfig().CONFIG_HZ;
    assert!(hz > 0);
    let mut v = vfsstat::VfsstatBpf::open()?;
    v.progs.fentry_vfs_read.set_autoload(false);
    v.progs.fentry_vfs_write.set_autoload(false);
    v.progs.fentry_vfs_fsync.set_autoload(false);
    v.progs.fentry_vfs_open.set_autoload(false);
    v.progs.fentry_vfs_create.set_autoload(false);
    let v = v.load()?;
    let stats: [u64; 5] = v.bss().stats()?;
    let _ = stats;
    Ok(())
}

fn main() {
    let _ = vfsstat::VfsstatBpf::open().unwrap();
    if std::env::var_os("SKELGEN_UI_RUN").is_some() {
        use_it().unwrap();
    }
}
