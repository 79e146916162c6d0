//! Time to open each committed fixture: ELF, BTF, BTF.ext, DATASEC fixups,
//! maps, programs, externs and relocations (`Object::parse`).

use criterion::{criterion_group, criterion_main, Criterion};
use skelgen_runtime::obj::Object;

fn open_fixtures(c: &mut Criterion) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures");
    let mut fixtures: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let p = e.ok()?.path();
            let name = p.file_name()?.to_str()?.strip_suffix(".bpf.o")?.to_string();
            Some((name, std::fs::read(&p).ok()?))
        })
        .collect();
    fixtures.sort();
    let mut group = c.benchmark_group("object_open");
    for (name, bytes) in &fixtures {
        group.bench_function(name.as_str(), |b| {
            b.iter(|| Object::parse(bytes, name).map(|o| o.programs.len()))
        });
    }
    group.finish();
}

criterion_group!(benches, open_fixtures);
criterion_main!(benches);
