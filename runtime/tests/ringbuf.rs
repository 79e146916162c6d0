//! The ring buffer consumer on the running kernel: a million samples from the
//! `ringbuf_flood` fixture arrive in order with none dropped, records that
//! straddle the end of the ring and discarded records (from a small producer
//! assembled here) come out right, several maps share one epoll, callbacks can
//! stop consumption, and `poll`/async wait for the kernel's wake-up.
//!
//! Kernel tests print a reason and return when not root, unless
//! `SKELGEN_REQUIRE_KERNEL=1`, which turns the skip into a failure.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use skelgen_runtime::loader::{LoadedObject, OpenObject, OpenOptions};
use skelgen_runtime::map::RingBufMap;
use skelgen_runtime::ringbuf::{RingBufError, RingBuffer};
use skelgen_runtime::sys::{map_type, prog_type, MapCreate, ProgLoad, TestRun};
use skelgen_test_support::{fixture as bytes, kernel};

// ---------------------------------------------------------------------------
// Helpers

const MAGIC: u32 = 0x5eed_5eed;

/// The fixture's `struct flood_event` (24 bytes).
#[derive(Debug, Clone, Copy)]
struct FloodEvent {
    seq: u64,
    ts_ns: u64,
    magic: u32,
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(b[at..at + 8].try_into().unwrap())
}

impl FloodEvent {
    fn decode(sample: &[u8]) -> Option<Self> {
        if sample.len() != 24 {
            return None;
        }
        Some(FloodEvent {
            seq: u64_at(sample, 0),
            ts_ns: u64_at(sample, 8),
            magic: u32::from_ne_bytes(sample[20..24].try_into().unwrap()),
        })
    }
}

/// `ringbuf_flood` loaded, with its ring buffer taken as a typed handle.
struct Flood {
    obj: LoadedObject,
    rb: RingBufMap,
    prog: usize,
    bss: usize,
}

fn flood() -> Flood {
    flood_with_ring(None)
}

/// `ringbuf_flood` with its ring resized to `ring_bytes` before load.
fn flood_with_ring(ring_bytes: Option<u32>) -> Flood {
    let mut open = OpenObject::open(
        &bytes("ringbuf_flood"),
        "ringbuf_flood",
        OpenOptions::default(),
    )
    .unwrap();
    if let Some(size) = ring_bytes {
        let rb = open.object().maps.iter().position(|m| m.name == "rb");
        open.map_settings_mut(rb.unwrap()).unwrap().max_entries = size;
    }
    let mut obj = open.load().unwrap();
    let model = obj.object();
    let map = |name: &str| model.maps.iter().position(|m| m.name == name).unwrap();
    let (rb, bss) = (map("rb"), map(".bss"));
    let prog = model
        .programs
        .iter()
        .position(|p| p.name == "flood")
        .unwrap();
    let rb = RingBufMap::new(obj.take_map(rb).unwrap().fd, "rb").unwrap();
    Flood { obj, rb, prog, bss }
}

impl Flood {
    /// Run the producer `repeat` times: one sample per run unless the ring is full.
    fn produce(&self, repeat: u32) {
        let out = TestRun::new()
            .data_in(&[0u8; 64])
            .repeat(repeat)
            .run(self.obj.prog_fd(self.prog).unwrap())
            .unwrap();
        assert_eq!(out.retval, 2, "XDP_PASS");
    }

    /// `.bss` counter at `offset`: next_seq 0, submitted 8, dropped 16.
    fn bss(&self, offset: usize) -> u64 {
        let m = self.obj.map(self.bss).unwrap();
        let mut v = vec![0u8; m.fd.value_size() as usize];
        assert!(m.fd.lookup(&0u32.to_ne_bytes(), &mut v, 0).unwrap());
        u64_at(&v, offset)
    }
}

/// What a sample callback checked, read after the ring buffer is gone.
#[derive(Debug, Default)]
struct Checker {
    next_seq: u64,
    last_ts: u64,
    error: Option<String>,
}

impl Checker {
    fn check(&mut self, sample: &[u8]) -> i32 {
        let Some(e) = FloodEvent::decode(sample) else {
            self.error = Some(format!("sample of {} bytes", sample.len()));
            return -1;
        };
        if e.seq != self.next_seq || e.magic != MAGIC || e.ts_ns < self.last_ts {
            self.error = Some(format!("expected seq {}, got {e:?}", self.next_seq));
            return -1;
        }
        self.next_seq += 1;
        self.last_ts = e.ts_ns;
        0
    }
}

// ---------------------------------------------------------------------------
// The fixture

/// Each `BPF_PROG_TEST_RUN` of an XDP program with `repeat > 1` costs about
/// 30 ms here whatever the count (the kernel swaps the XDP dispatcher in and
/// out), so a million samples through the fixture's 16 KiB ring in chunks of
/// 200 would take minutes. The ring is resized to 256 KiB instead: chunks of
/// 8000 (of 8191 that fit), still about 120 wraps. The 16 KiB ring itself is
/// wrapped by the tests below.
#[test]
fn a_million_samples_arrive_in_order_with_none_dropped() {
    if !kernel() {
        return;
    }
    const TOTAL: u64 = 1_000_000;
    const RING: u32 = 256 * 1024;
    const CHUNK: u32 = 8000; // 8000 * 32 bytes < 256 KiB
    let f = flood_with_ring(Some(RING));
    assert_eq!(f.rb.byte_size(), RING);
    let start = Instant::now();
    let mut checker = Checker::default();
    {
        let mut rb = RingBuffer::builder()
            .add(&f.rb, |s| checker.check(s))
            .build()
            .unwrap();
        let mut consumed = 0u64;
        while consumed < TOTAL {
            f.produce(CHUNK);
            let n = rb
                .consume()
                .unwrap_or_else(|e| panic!("after {consumed}: {e}"));
            assert_eq!(n, CHUNK as usize, "after {consumed} samples");
            consumed += n as u64;
        }
        assert_eq!(rb.consume().unwrap(), 0);
    }
    assert_eq!(checker.error, None);
    assert_eq!(checker.next_seq, TOTAL);
    assert_eq!(f.bss(0), TOTAL, "next_seq");
    assert_eq!(f.bss(8), TOTAL, "submitted");
    assert_eq!(f.bss(16), 0, "dropped");
    eprintln!("1M samples in {:?}", start.elapsed());
}

#[test]
fn the_16k_ring_wraps_many_times_in_order() {
    if !kernel() {
        return;
    }
    // 500 of the 511 records that fit: each chunk nearly wraps the ring.
    const CHUNK: u32 = 500;
    const CHUNKS: u64 = 60;
    let f = flood();
    assert_eq!(f.rb.byte_size(), 16384);
    let mut checker = Checker::default();
    {
        let mut rb = RingBuffer::builder()
            .add(&f.rb, |s| checker.check(s))
            .build()
            .unwrap();
        for _ in 0..CHUNKS {
            f.produce(CHUNK);
            assert_eq!(rb.consume().unwrap(), CHUNK as usize);
        }
    }
    assert_eq!(checker.error, None);
    assert_eq!(checker.next_seq, CHUNKS * u64::from(CHUNK));
    assert_eq!(f.bss(16), 0, "dropped");
}

#[test]
fn a_stalled_consumer_sees_drops_and_then_resumes_in_order() {
    if !kernel() {
        return;
    }
    let f = flood();
    let mut checker = Checker::default();
    let mut rb = RingBuffer::builder()
        .add(&f.rb, |s| checker.check(s))
        .build()
        .unwrap();
    // As the fixture documents: 511 fit, the rest are dropped.
    f.produce(1000);
    assert_eq!(rb.consume().unwrap(), 511);
    f.produce(100);
    assert_eq!(rb.consume().unwrap(), 100);
    drop(rb);
    assert_eq!(checker.error, None);
    assert_eq!(f.bss(16), 489, "dropped");
}

#[test]
fn poll_waits_for_the_kernel_wakeup() {
    if !kernel() {
        return;
    }
    let f = flood();
    let mut seen = 0u64;
    let mut rb = RingBuffer::builder()
        .add(&f.rb, |_| {
            seen += 1;
            0
        })
        .build()
        .unwrap();
    // Nothing yet: poll times out.
    let t = Instant::now();
    assert_eq!(rb.poll(Duration::from_millis(50)).unwrap(), 0);
    assert!(t.elapsed() >= Duration::from_millis(45));
    // A producer on another thread wakes it up.
    let prog: OwnedFd = f.obj.prog_fd(f.prog).unwrap().try_clone().unwrap();
    let producer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        TestRun::new()
            .data_in(&[0u8; 64])
            .repeat(10)
            .run(&prog)
            .unwrap();
    });
    let mut got = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while got < 10 && Instant::now() < deadline {
        got += rb.poll(Duration::from_secs(5)).unwrap();
    }
    producer.join().unwrap();
    assert_eq!(got, 10);
    // The epoll fd is there for the caller's own loop.
    assert!(rb.epoll_fd().as_fd().try_clone_to_owned().is_ok());
    drop(rb);
    assert_eq!(seen, 10);
}

#[test]
fn several_maps_share_one_epoll() {
    if !kernel() {
        return;
    }
    let (a, b) = (flood(), flood());
    let (mut from_a, mut from_b) = (Checker::default(), Checker::default());
    {
        let mut rb = RingBuffer::builder()
            .add(&a.rb, |s| from_a.check(s))
            .add(&b.rb, |s| from_b.check(s))
            .build()
            .unwrap();
        assert_eq!(rb.ring_count(), 2);
        a.produce(30);
        b.produce(70);
        let mut got = 0;
        while got < 100 {
            let n = rb.poll(Duration::from_secs(5)).unwrap();
            assert!(n > 0, "poll timed out after {got} samples");
            got += n;
        }
        b.produce(5);
        assert_eq!(rb.consume_ring(0).unwrap(), 0);
        assert_eq!(rb.consume_ring(1).unwrap(), 5);
    }
    assert_eq!((from_a.next_seq, from_b.next_seq), (30, 75));
    assert_eq!((from_a.error, from_b.error), (None, None));
}

#[test]
fn a_callback_returning_nonzero_stops_and_is_reported() {
    if !kernel() {
        return;
    }
    let f = flood();
    let mut seqs = Vec::new();
    {
        let mut rb = RingBuffer::builder()
            .add(&f.rb, |s| {
                let e = FloodEvent::decode(s).unwrap();
                seqs.push(e.seq);
                if e.seq == 4 {
                    -22
                } else {
                    0
                }
            })
            .build()
            .unwrap();
        f.produce(10);
        match rb.consume() {
            Err(RingBufError::Stopped {
                map,
                code,
                consumed,
            }) => {
                assert_eq!((map.as_str(), code, consumed), ("rb", -22, 5));
            }
            other => panic!("expected Stopped, got {other:?}"),
        }
        // The stopping sample was consumed; the rest follow.
        assert_eq!(rb.consume().unwrap(), 5);
    }
    assert_eq!(seqs, (0..10).collect::<Vec<_>>());
}

#[test]
fn builder_errors_are_reported_by_build() {
    assert!(matches!(
        RingBuffer::builder().build(),
        Err(RingBufError::NoMaps)
    ));
}

// ---------------------------------------------------------------------------
// A producer of 40-byte samples: 48-byte records do not divide the ring, so
// every few wraps one straddles its end, and every fifth one is discarded.

const WRAP_SAMPLE: usize = 40;

/// One BPF instruction.
fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[0] = code;
    b[1] = (src << 4) | dst;
    b[2..4].copy_from_slice(&off.to_le_bytes());
    b[4..8].copy_from_slice(&imm.to_le_bytes());
    b
}

/// `seq = counter++ ; e = ringbuf_reserve(rb, 40); e = {seq, seq ^ M, M, seq,
/// seq ^ M}; seq % 5 == 3 ? discard(e) : submit(e); return XDP_PASS`.
fn wrap_producer(rb: &RingBufMap, counter: &impl AsFd) -> OwnedFd {
    use std::os::fd::AsRawFd;
    let rb_fd = rb.fd().as_raw_fd();
    let counter_fd = counter.as_fd().as_raw_fd();
    let magic = MAGIC as i32;
    let p: Vec<[u8; 8]> = vec![
        insn(0x62, 10, 0, -4, 0),                // *(u32 *)(r10 - 4) = 0
        insn(0xbf, 2, 10, 0, 0),                 // r2 = r10
        insn(0x07, 2, 0, 0, -4),                 // r2 += -4
        insn(0x18, 1, 1, 0, counter_fd),         // r1 = map_fd(counter)
        insn(0, 0, 0, 0, 0),                     //
        insn(0x85, 0, 0, 0, 1),                  // call map_lookup_elem
        insn(0x15, 0, 0, 26, 0),                 // if r0 == 0 goto exit
        insn(0xb7, 1, 0, 0, 1),                  // r1 = 1
        insn(0xdb, 0, 1, 0, 1),                  // r1 = atomic_fetch_add((u64 *)r0, r1)
        insn(0xbf, 7, 1, 0, 0),                  // r7 = r1 (seq)
        insn(0x18, 1, 1, 0, rb_fd),              // r1 = map_fd(rb)
        insn(0, 0, 0, 0, 0),                     //
        insn(0xb7, 2, 0, 0, WRAP_SAMPLE as i32), // r2 = 40
        insn(0xb7, 3, 0, 0, 0),                  // r3 = 0
        insn(0x85, 0, 0, 0, 131),                // call ringbuf_reserve
        insn(0x15, 0, 0, 17, 0),                 // if r0 == 0 goto exit
        insn(0xbf, 8, 0, 0, 0),                  // r8 = r0
        insn(0xb7, 2, 0, 0, magic),              // r2 = M
        insn(0xbf, 1, 7, 0, 0),                  // r1 = r7
        insn(0xaf, 1, 2, 0, 0),                  // r1 ^= r2
        insn(0x7b, 8, 7, 0, 0),                  // e[0] = seq
        insn(0x7b, 8, 1, 8, 0),                  // e[1] = seq ^ M
        insn(0x7b, 8, 2, 16, 0),                 // e[2] = M
        insn(0x7b, 8, 7, 24, 0),                 // e[3] = seq
        insn(0x7b, 8, 1, 32, 0),                 // e[4] = seq ^ M
        insn(0xbf, 1, 8, 0, 0),                  // r1 = r8
        insn(0xb7, 2, 0, 0, 0),                  // r2 = 0
        insn(0xbf, 9, 7, 0, 0),                  // r9 = r7
        insn(0x97, 9, 0, 0, 5),                  // r9 %= 5
        insn(0x15, 9, 0, 2, 3),                  // if r9 == 3 goto discard
        insn(0x85, 0, 0, 0, 132),                // call ringbuf_submit
        insn(0x05, 0, 0, 1, 0),                  // goto exit
        insn(0x85, 0, 0, 0, 133),                // discard: call ringbuf_discard
        insn(0xb7, 0, 0, 0, 2),                  // exit: r0 = XDP_PASS
        insn(0x95, 0, 0, 0, 0),                  // exit
    ];
    // Jump targets above are written relative to this layout.
    assert_eq!(p.len(), 35);
    let bytes = p.concat();
    ProgLoad::new(prog_type::XDP, &bytes, "GPL")
        .name("rb_wrap")
        .load()
        .unwrap_or_else(|e| panic!("{e}"))
        .fd
}

#[test]
fn records_straddling_the_ring_end_and_discards_come_out_right() {
    if !kernel() {
        return;
    }
    // 340 * 48 bytes < 16 KiB: each chunk nearly wraps the ring, and one
    // record straddles its end in two wraps out of three.
    const CHUNK: u32 = 340;
    const RUNS: u64 = 60 * CHUNK as u64;
    let rb = MapCreate::new(map_type::RINGBUF, 0, 0, 16384)
        .name("rb_wrap")
        .create()
        .unwrap();
    let rb = RingBufMap::new(rb, "rb_wrap").unwrap();
    let counter = MapCreate::new(map_type::ARRAY, 4, 8, 1)
        .name("rb_wrap_seq")
        .create()
        .unwrap();
    let prog = wrap_producer(&rb, &counter);

    let mut expected = 0u64;
    let mut error = None;
    let mut received = 0u64;
    {
        let mut ring = RingBuffer::builder()
            .add(&rb, |s| {
                if expected % 5 == 3 {
                    expected += 1; // discarded by the producer
                }
                let words: Vec<u64> = s.chunks(8).map(|c| u64_at(c, 0)).collect();
                let m = u64::from(MAGIC);
                let want = [expected, expected ^ m, m, expected, expected ^ m];
                if s.len() != WRAP_SAMPLE || words != want {
                    error = Some(format!("sample {expected}: {words:x?}"));
                    return -1;
                }
                expected += 1;
                received += 1;
                0
            })
            .build()
            .unwrap();
        let mut runs = 0u64;
        while runs < RUNS {
            TestRun::new()
                .data_in(&[0u8; 64])
                .repeat(CHUNK)
                .run(&prog)
                .unwrap();
            runs += u64::from(CHUNK);
            ring.consume()
                .unwrap_or_else(|e| panic!("after {runs} runs: {e}"));
        }
    }
    assert_eq!(error, None);
    // Every run reserved a record; one in five was discarded.
    assert_eq!(received, RUNS - RUNS / 5);
}

// ---------------------------------------------------------------------------
// Async

#[cfg(feature = "tokio")]
#[tokio::test]
async fn async_ring_buffer_wakes_on_samples() {
    use skelgen_runtime::ringbuf::AsyncRingBuffer;

    if !kernel() {
        return;
    }
    let f = flood();
    let mut checker = Checker::default();
    {
        let rb = RingBuffer::builder()
            .add(&f.rb, |s| checker.check(s))
            .build()
            .unwrap();
        let mut rb = AsyncRingBuffer::new(rb).unwrap();

        // Nothing produced: readable() does not complete.
        let idle = tokio::time::timeout(Duration::from_millis(50), rb.readable()).await;
        assert!(idle.is_err(), "readable() completed on an empty ring");

        // Data already there completes at once.
        f.produce(20);
        let n = tokio::time::timeout(Duration::from_secs(5), rb.next_batch())
            .await
            .expect("next_batch timed out")
            .unwrap();
        assert_eq!(n, 20);

        // Data from another thread while we wait wakes the task.
        for round in 0..20 {
            let prog: OwnedFd = f.obj.prog_fd(f.prog).unwrap().try_clone().unwrap();
            let producer = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(5));
                TestRun::new()
                    .data_in(&[0u8; 64])
                    .repeat(50)
                    .run(&prog)
                    .unwrap();
            });
            let mut got = 0;
            while got < 50 {
                got += tokio::time::timeout(Duration::from_secs(5), rb.next_batch())
                    .await
                    .unwrap_or_else(|_| panic!("round {round}: woke with {got} of 50"))
                    .unwrap();
            }
            producer.join().unwrap();
            assert_eq!(got, 50);
        }
    }
    assert_eq!(checker.error, None);
    assert_eq!(checker.next_seq, 20 + 20 * 50);
}
