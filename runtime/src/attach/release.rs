//! Dropping many links at once: [`release_all`].
//!
//! Closing the last perf event of a tracepoint makes the kernel wait for RCU
//! grace periods (`perf_trace_event_unreg` calls
//! `tracepoint_synchronize_unregister`) before `close()` returns: 50–70 ms per
//! tracepoint on the benchmark machine, so a skeleton with sixteen tracepoint
//! links took about a second to drop, one wait after the other (libbpf's
//! `bpf_object__destroy_skeleton` does the same). Closing them from a few
//! threads overlaps the waits: measured on `bench/objects/tp_many.bpf.o`
//! (16 tracepoint links, kernel 6.18, 2 CPUs), 1 thread 0.99–1.1 s, 2 threads
//! 0.60 s, 4 or 16 threads 0.59–0.68 s — part of the teardown is serialised
//! in the kernel (`event_mutex`), so more threads than CPUs buy nothing.

use super::Link;

/// Links below this count are dropped in the calling thread: spawning costs
/// tens of microseconds, a grace period tens of milliseconds, but objects
/// with one or two links are the common case and should not spawn at all.
const CONCURRENT_FROM: usize = 4;

/// At most this many threads: the measurement above found no gain past the
/// CPU count (2 there), and a few more cover larger machines.
const MAX_THREADS: usize = 4;

/// Drop every link, overlapping the kernel's waits by closing them from up
/// to `min(CPUs, 4)` scoped threads when there are at least four. Returns
/// when all are released. Errors while detaching are logged, as for a
/// single [`Link`]'s drop.
pub fn release_all(links: impl IntoIterator<Item = Link>) {
    let mut links: Vec<Link> = links.into_iter().collect();
    // Asked only when it may spawn: available_parallelism reads the cgroup
    // CPU quota (/proc/self/cgroup and two files under /sys/fs/cgroup).
    if links.len() < CONCURRENT_FROM {
        drop(links);
        return;
    }
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_THREADS)
        .min(links.len() / 2);
    if threads < 2 {
        drop(links);
        return;
    }
    let chunk = links.len().div_ceil(threads);
    std::thread::scope(|scope| {
        while !links.is_empty() {
            let part: Vec<Link> = links.drain(..chunk.min(links.len())).collect();
            let spawned = std::thread::Builder::new()
                .name("skelgen-unlink".into())
                .spawn_scoped(scope, move || drop(part));
            // Without a thread (resource limits), the part that could not be
            // moved is dropped here by the failed spawn's error path.
            if let Err(e) = spawned {
                log::debug!("release_all: dropping in the calling thread: {e}");
            }
        }
    });
}
