//! builder-demo: a skeleton compiled by `skelgen::Builder` in build.rs.
//!
//! `build.rs` compiles `src/bpf/demo.bpf.c` with clang and writes
//! `OUT_DIR/demo.skel.rs`; this file includes it. The object the skeleton
//! embeds (stripped of DWARF) sits beside it as `demo.embed.bpf.o`.

/// The generated skeleton: `DemoBpf`, `OpenDemoBpf` and their types, in a
/// module of their own so that its items cannot collide with ours.
#[allow(dead_code)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/demo.skel.rs"));
}

/// The object the skeleton embeds, as the Builder left it in OUT_DIR.
const OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/demo.embed.bpf.o"));

fn main() {
    // Works on any host, with no privileges: parse the embedded object with
    // the runtime's object model and describe it.
    match skelgen_runtime::obj::Object::parse(OBJECT, "demo") {
        Ok(obj) => {
            println!("demo.bpf.o: {} bytes embedded", OBJECT.len());
            for prog in &obj.programs {
                println!("  program {} (SEC \"{}\")", prog.name, prog.section);
            }
            for map in &obj.maps {
                println!("  map {} ({})", map.name, map.kernel_name);
            }
        }
        Err(e) => {
            eprintln!("builder-demo: {e}");
            std::process::exit(1);
        }
    }
}
