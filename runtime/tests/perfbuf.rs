//! The perf buffer consumer on the running kernel, with the `perfbuf`
//! fixture: samples arrive per CPU in sequence order, a stalled consumer is
//! told how many samples the kernel dropped (and the records after the lost
//! notice, which no longer line up with the buffer's end, still decode), and
//! dropping the consumer empties the perf event array again.
//!
//! Kernel tests print a reason and return when not root, unless
//! `SKELGEN_REQUIRE_KERNEL=1`, which turns the skip into a failure.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use skelgen_runtime::loader::{LoadedObject, OpenObject, OpenOptions};
use skelgen_runtime::map::PerfEventArrayMap;
use skelgen_runtime::perfbuf::{PerfBufError, PerfBuffer};
use skelgen_runtime::sys::{self, TestRun};
use skelgen_test_support::{fixture as bytes, kernel};

// ---------------------------------------------------------------------------
// Helpers

const MAGIC: u32 = 0xfeed_beef;

/// The fixture's `struct perf_sample` (16 bytes). The kernel pads raw data so
/// that it and its `u32` size end 8-aligned, so it arrives as 20 bytes (as
/// with libbpf).
#[derive(Debug, Clone, Copy)]
struct PerfSample {
    seq: u64,
    cpu: u32,
    magic: u32,
}

impl PerfSample {
    fn decode(data: &[u8]) -> Option<Self> {
        if data.len() != 20 {
            return None;
        }
        Some(PerfSample {
            seq: u64::from_ne_bytes(data[..8].try_into().ok()?),
            cpu: u32::from_ne_bytes(data[8..12].try_into().ok()?),
            magic: u32::from_ne_bytes(data[12..16].try_into().ok()?),
        })
    }
}

/// `perfbuf` loaded, with its perf event array taken as a typed handle.
struct Fixture {
    obj: LoadedObject,
    events: PerfEventArrayMap,
    prog: usize,
    bss: usize,
}

fn fixture() -> Fixture {
    let mut obj = OpenObject::open(&bytes("perfbuf"), "perfbuf", OpenOptions::default())
        .unwrap()
        .load()
        .unwrap();
    let model = obj.object();
    let map = |name: &str| model.maps.iter().position(|m| m.name == name).unwrap();
    let (events, bss) = (map("events"), map(".bss"));
    let prog = model
        .programs
        .iter()
        .position(|p| p.name == "perf_emit")
        .unwrap();
    let events = PerfEventArrayMap::new(obj.take_map(events).unwrap().fd, "events").unwrap();
    Fixture {
        obj,
        events,
        prog,
        bss,
    }
}

impl Fixture {
    /// Run the producer `repeat` times: one sample per run.
    fn produce(&self, repeat: u32) {
        let out = TestRun::new()
            .data_in(&[0u8; 64])
            .repeat(repeat)
            .run(self.obj.prog_fd(self.prog).unwrap())
            .unwrap();
        assert_eq!(out.retval, 2, "XDP_PASS");
    }

    /// `.bss` counter: next_seq at 0, failed at 8.
    fn bss(&self, offset: usize) -> u64 {
        let m = self.obj.map(self.bss).unwrap();
        let mut v = vec![0u8; m.fd.value_size() as usize];
        assert!(m.fd.lookup(&0u32.to_ne_bytes(), &mut v, 0).unwrap());
        u64::from_ne_bytes(v[offset..offset + 8].try_into().unwrap())
    }
}

/// What the callbacks saw.
#[derive(Debug, Default)]
struct Seen {
    /// Per buffer CPU: the sequence numbers, in arrival order.
    seqs: BTreeMap<u32, Vec<u64>>,
    lost: BTreeMap<u32, u64>,
    errors: Vec<String>,
}

impl Seen {
    fn sample(&mut self, cpu: u32, data: &[u8]) {
        match PerfSample::decode(data) {
            Some(s) if s.magic == MAGIC && s.cpu == cpu => {
                self.seqs.entry(cpu).or_default().push(s.seq)
            }
            other => self
                .errors
                .push(format!("cpu {cpu}: {other:?} from {data:x?}")),
        }
    }

    fn received(&self) -> u64 {
        self.seqs.values().map(|v| v.len() as u64).sum()
    }

    fn lost(&self) -> u64 {
        self.lost.values().sum()
    }

    /// Sequence numbers grow strictly within each CPU's buffer.
    fn assert_ordered(&self) {
        assert!(self.errors.is_empty(), "{:?}", self.errors);
        for (cpu, seqs) in &self.seqs {
            if let Some(w) = seqs.windows(2).find(|w| w[0] >= w[1]) {
                panic!("cpu {cpu}: seq {} came after {}", w[1], w[0]);
            }
        }
    }
}

fn poll_until(pb: &mut PerfBuffer<'_>, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for samples");
        pb.poll(Duration::from_millis(200)).unwrap();
    }
}

// ---------------------------------------------------------------------------

#[test]
fn samples_arrive_in_order_per_cpu() {
    if !kernel() {
        return;
    }
    const RUNS: u32 = 2000;
    let f = fixture();
    let seen = std::cell::RefCell::new(Seen::default());
    {
        let mut pb = PerfBuffer::builder(&f.events)
            .pages(64) // 8192 samples of 32 bytes: the last 4000 fit unread
            .sample_cb(|cpu, data| seen.borrow_mut().sample(cpu, data))
            .lost_cb(|cpu, n| *seen.borrow_mut().lost.entry(cpu).or_default() += n)
            .build()
            .unwrap();
        let online = sys::online_cpus().unwrap();
        assert_eq!(pb.buffer_count(), online.len());
        assert_eq!(pb.buffer_cpu(0), online.first().copied());
        // Three runs, from this thread and another, the last two unread
        // until both are done.
        f.produce(RUNS);
        poll_until(&mut pb, || seen.borrow().received() >= u64::from(RUNS));
        std::thread::scope(|s| {
            s.spawn(|| f.produce(RUNS));
        });
        f.produce(RUNS);
        poll_until(&mut pb, || seen.borrow().received() >= 3 * u64::from(RUNS));
        assert_eq!(pb.consume().unwrap(), 0);
    }
    let seen = seen.into_inner();
    seen.assert_ordered();
    assert_eq!(seen.received(), 3 * u64::from(RUNS));
    assert_eq!(seen.lost(), 0);
    assert_eq!(f.bss(0), 3 * u64::from(RUNS), "next_seq");
    assert_eq!(f.bss(8), 0, "failed");
    let mut all: Vec<u64> = seen.seqs.values().flatten().copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..3 * u64::from(RUNS)).collect::<Vec<_>>());
}

#[test]
fn a_stalled_consumer_is_told_what_was_lost() {
    if !kernel() {
        return;
    }
    // One 4 KiB page per CPU holds 128 samples of 32 bytes.
    const STALLED: u32 = 5000;
    let f = fixture();
    let seen = std::cell::RefCell::new(Seen::default());
    {
        let mut pb = PerfBuffer::builder(&f.events)
            .pages(1)
            .sample_cb(|cpu, data| seen.borrow_mut().sample(cpu, data))
            .lost_cb(|cpu, n| *seen.borrow_mut().lost.entry(cpu).or_default() += n)
            .build()
            .unwrap();
        f.produce(STALLED);
        let before = pb.consume().unwrap() as u64;
        assert!(before < u64::from(STALLED), "{before} samples fit");
        // The kernel reports the loss in front of the next sample it can
        // write. The 24-byte lost record then shifts every later 32-byte
        // record off the buffer's alignment, so chunks of 100 (that fit) wrap
        // the 4 KiB buffer with records straddling its end.
        let mut produced = u64::from(STALLED);
        for _ in 0..40 {
            f.produce(100);
            produced += 100;
            pb.consume().unwrap();
        }
        let seen = seen.borrow();
        assert!(seen.lost() > 0, "no loss reported");
        assert_eq!(seen.received() + seen.lost(), produced);
    }
    let seen = seen.into_inner();
    seen.assert_ordered();
    assert_eq!(f.bss(8), seen.lost(), "failed outputs == lost samples");
}

#[test]
fn dropping_the_buffer_empties_the_array() {
    if !kernel() {
        return;
    }
    let f = fixture();
    let mut n = 0;
    {
        let mut pb = PerfBuffer::builder(&f.events)
            .pages(2)
            .sample_cb(|_, _| n += 1)
            .build()
            .unwrap();
        f.produce(10);
        let mut got = 0;
        let deadline = Instant::now() + Duration::from_secs(10);
        while got < 10 {
            assert!(Instant::now() < deadline, "timed out after {got} samples");
            got += pb.poll(Duration::from_millis(200)).unwrap();
        }
        assert_eq!(got, 10);
    }
    assert_eq!(n, 10);
    assert_eq!(f.bss(8), 0, "failed");
    // No perf event left in any slot: every output fails (ENOENT).
    f.produce(10);
    assert_eq!(f.bss(8), 10, "failed");
}

#[test]
fn bad_page_counts_are_refused() {
    if !kernel() {
        return;
    }
    let f = fixture();
    for pages in [0, 3, 12] {
        match PerfBuffer::builder(&f.events).pages(pages).build() {
            Err(PerfBufError::InvalidPages { map, pages: p }) => {
                assert_eq!((map.as_str(), p), ("events", pages))
            }
            other => panic!("pages {pages}: expected InvalidPages, got {other:?}"),
        }
    }
}
