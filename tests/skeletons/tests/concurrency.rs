//! Skeletons shared between threads: map operations and global-data reads
//! from several threads while the programs run. A skeleton is `Send + Sync`
//! because every part is: fds are safe to use from any thread (the kernel
//! serialises element operations), global data is reached by volatile
//! copies, frozen data by immutable copies.

use std::sync::atomic::{AtomicBool, Ordering};

use skelgen_runtime::skel::TestRun;
use skelgen_skeleton_tests::xdp_counter::XdpCounterBpf;
use skelgen_test_support::kernel as kernel_or_skip;

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn skeletons_are_send_and_sync() {
    assert_send_sync::<XdpCounterBpf>();
    assert_send_sync::<skelgen_skeleton_tests::tp_ringbuf::TpRingbufBpf>();
    assert_send_sync::<skelgen_skeleton_tests::mapinmap::MapinmapBpf>();
    assert_send_sync::<skelgen_skeleton_tests::xdp_counter::OpenXdpCounterBpf>();
}

#[test]
fn readers_and_writers_while_programs_run() {
    if !kernel_or_skip() {
        return;
    }
    let skel = XdpCounterBpf::open().unwrap().load().unwrap();
    let stop = AtomicBool::new(false);
    let runs_per_batch = 50u32;
    let batches = 40u32;
    std::thread::scope(|s| {
        // Two threads run the program; every run adds one packet of 64 bytes.
        let runners: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    for _ in 0..batches {
                        let out = skel
                            .progs
                            .xdp_count
                            .test_run(TestRun::new().data_in(&[0u8; 64]).repeat(runs_per_batch))
                            .unwrap();
                        assert_eq!(out.retval, 2);
                    }
                })
            })
            .collect();
        // Readers: monotonic counters through the map and the .data.foo view.
        for _ in 0..2 {
            s.spawn(|| {
                let mut last_map = 0;
                let mut last_data = 0;
                while !stop.load(Ordering::Relaxed) {
                    let v = skel.maps.pkt_stats.lookup(&0).unwrap().unwrap();
                    assert!(v.packets >= last_map, "map counter went backwards");
                    assert_eq!(v.bytes % 64, 0);
                    last_map = v.packets;
                    let p = skel.data_foo().foo_packets().unwrap();
                    assert!(p >= last_data, ".data.foo counter went backwards");
                    last_data = p;
                    assert_eq!(skel.data_foo().foo_magic().unwrap(), 0xf00f00);
                    assert_eq!(skel.rodata_bar().bar_magic, 0xba4ba4);
                }
            });
        }
        // A writer on a map slot the program does not touch.
        s.spawn(|| {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let v = skelgen_skeleton_tests::xdp_counter::types::stats {
                    packets: n,
                    bytes: n,
                };
                skel.maps
                    .pkt_stats
                    .update(&1, &v, skelgen_runtime::map::UpdateFlags::Any)
                    .unwrap();
            }
        });
        for r in runners {
            r.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
    });
    let total = u64::from(2 * batches * runs_per_batch);
    let v = skel.maps.pkt_stats.lookup(&0).unwrap().unwrap();
    // The program adds with atomics: no update is lost.
    assert_eq!(v.packets, total);
    assert_eq!(v.bytes, total * 64);
    assert_eq!(skel.data_foo().foo_packets().unwrap(), total);
}
