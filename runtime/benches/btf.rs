//! BTF parse speed on the running kernel's BTF (`/sys/kernel/btf/vmlinux`):
//! parsing from memory (the file read excluded), and parsing plus building
//! the name index that lookups by name need.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use skelgen_runtime::btf::{Btf, VMLINUX_BTF_PATH};

fn vmlinux(c: &mut Criterion) {
    let bytes = match std::fs::read(VMLINUX_BTF_PATH) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("skipping BTF benchmarks: {VMLINUX_BTF_PATH}: {e}");
            return;
        }
    };
    let mut group = c.benchmark_group("vmlinux_btf");
    group.throughput(criterion::Throughput::Bytes(bytes.len() as u64));
    // from_vec: the buffer is cloned outside the timed part, as a caller
    // that has just read the file owns it.
    group.bench_function("parse", |b| {
        b.iter_batched(
            || bytes.clone(),
            // The Btf is returned, so that freeing it is not timed.
            Btf::from_vec,
            BatchSize::LargeInput,
        )
    });
    group.bench_function("parse_copy", |b| {
        b.iter(|| Btf::parse(&bytes).map(|btf| btf.len()))
    });
    group.bench_function("parse_and_name_index", |b| {
        b.iter_batched(
            || bytes.clone(),
            |v| {
                let btf = Btf::from_vec(v)?;
                btf.build_name_index();
                Ok::<_, skelgen_runtime::btf::BtfError>(btf.find_by_name("task_struct").len())
            },
            BatchSize::LargeInput,
        )
    });
    let btf = Btf::from_vec(bytes.clone()).ok();
    if let Some(btf) = &btf {
        btf.build_name_index();
        group.bench_function("find_by_name", |b| {
            b.iter(|| btf.find_by_name("task_struct").len())
        });
    }
    group.finish();
}

criterion_group!(benches, vmlinux);
criterion_main!(benches);
