//! Event consumption, skelgen side (the C harness has libbpf's): the ring
//! buffer (`RingBuffer` with the closure's own type, with a boxed closure,
//! and `AsyncRingBuffer` on tokio) and the perf buffer (`PerfBuffer`).
//!
//! The producers are the `ringbuf_flood` and `perfbuf` fixtures run by
//! BPF_PROG_TEST_RUN with `repeat = SAMPLES` into buffers sized to hold them
//! all; then the consumer polls until it has seen every sample. Only the
//! consumption is timed.

use std::cell::Cell;
use std::os::fd::AsFd as _;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use skelgen_runtime::loader::{LoadedObject, OpenObject, OpenOptions};
use skelgen_runtime::map::{PerfEventArrayMap, RingBufMap};
use skelgen_runtime::perfbuf::PerfBuffer;
use skelgen_runtime::ringbuf::{AsyncRingBuffer, RingBuffer};
use skelgen_runtime::sys::TestRun;

use crate::measure::{since, thread_cpu_ns};

/// Ring bytes for `samples` records of 8 + 24 bytes: a power of two above
/// (the same rule as the C harness).
pub fn ring_size(samples: u64) -> anyhow::Result<u32> {
    let need = samples * 32 + 4096;
    let mut size = 4096u64;
    while size < need {
        size <<= 1;
    }
    Ok(u32::try_from(size)?)
}

/// Perf buffer pages per CPU for `samples` records of 8 + 4 + 16 (+ 4
/// padding) bytes, all on one CPU: a power of two above (as the C harness).
pub fn perf_pages(samples: u64) -> usize {
    let need = (samples * 32).div_ceil(4096) + 1;
    need.next_power_of_two() as usize
}

/// Which consumer a `worker ringbuf` run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consumer {
    /// `RingBuffer::new`: the walk compiled for the closure.
    Generic,
    /// `RingBuffer::builder().add(..)`: a boxed closure.
    Boxed,
    /// `AsyncRingBuffer` over `RingBuffer::new`, on a current-thread tokio
    /// runtime: `next_batch().await` until every sample is seen.
    Tokio,
}

impl Consumer {
    pub fn parse(s: &str) -> anyhow::Result<Consumer> {
        Ok(match s {
            "generic" => Consumer::Generic,
            "boxed" => Consumer::Boxed,
            "tokio" => Consumer::Tokio,
            _ => bail!("unknown ring buffer consumer {s}"),
        })
    }
}

struct Flood {
    loaded: LoadedObject,
    prog: usize,
}

fn load(
    path: &str,
    map: &str,
    prog: &str,
    max_entries: Option<u32>,
) -> anyhow::Result<(Flood, skelgen_runtime::loader::LoadedMap)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {path}"))?;
    let name = skelgen_runtime::obj::object_name_from_path(path);
    let mut open = OpenObject::open(&bytes, &name, OpenOptions::default()).context("open")?;
    let map_index = open
        .object()
        .maps
        .iter()
        .position(|m| m.name == map)
        .with_context(|| format!("no map {map}"))?;
    let prog_index = open
        .object()
        .programs
        .iter()
        .position(|p| p.name == prog)
        .with_context(|| format!("no program {prog}"))?;
    if let Some(n) = max_entries {
        open.map_settings_mut(map_index)
            .context("map settings")?
            .max_entries = n;
    }
    let mut loaded = open.load().context("load")?;
    let map = loaded.take_map(map_index).context("map not created")?;
    Ok((
        Flood {
            loaded,
            prog: prog_index,
        },
        map,
    ))
}

impl Flood {
    fn produce(&self, samples: u64) -> anyhow::Result<()> {
        let pkt = [0u8; 64];
        let fd = self
            .loaded
            .prog_fd(self.prog)
            .context("program not loaded")?;
        TestRun::new()
            .data_in(&pkt)
            .repeat(u32::try_from(samples)?)
            .run(fd.as_fd())
            .context("BPF_PROG_TEST_RUN")?;
        Ok(())
    }
}

/// The callback every consumer runs: count, and sum the sequence numbers
/// (so that the sample is read).
fn on_sample<'a>(count: &'a Cell<u64>, seq_sum: &'a Cell<u64>) -> impl FnMut(&[u8]) -> i32 + 'a {
    move |sample: &[u8]| {
        let Some(seq) = sample.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()) else {
            return -22;
        };
        count.set(count.get() + 1);
        seq_sum.set(seq_sum.get().wrapping_add(u64::from_ne_bytes(seq)));
        0
    }
}

/// `worker ringbuf CONSUMER OBJ SAMPLES ROUNDS`: per round `ok SAMPLES CONSUME_NS CONSUME_CPU_NS`.
pub fn worker(consumer: Consumer, path: &str, samples: u64, rounds: usize) -> anyhow::Result<()> {
    let (flood, map) = load(path, "rb", "flood", Some(ring_size(samples)?))?;
    let rb_map = RingBufMap::new(map.fd, "rb").context("RingBufMap")?;
    let count = Cell::new(0u64);
    let seq_sum = Cell::new(0u64);
    match consumer {
        Consumer::Generic => {
            let mut rb =
                RingBuffer::new(&rb_map, on_sample(&count, &seq_sum)).context("RingBuffer::new")?;
            rounds_of(&flood, samples, rounds, &count, || {
                rb.poll(Duration::from_millis(1000)).map_err(Into::into)
            })
        }
        Consumer::Boxed => {
            let mut rb = RingBuffer::builder()
                .add(&rb_map, on_sample(&count, &seq_sum))
                .build()
                .context("RingBuffer::build")?;
            rounds_of(&flood, samples, rounds, &count, || {
                rb.poll(Duration::from_millis(1000)).map_err(Into::into)
            })
        }
        Consumer::Tokio => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("tokio runtime")?;
            rt.block_on(async {
                let rb = RingBuffer::new(&rb_map, on_sample(&count, &seq_sum))
                    .context("RingBuffer::new")?;
                let mut rb = AsyncRingBuffer::new(rb).context("AsyncRingBuffer::new")?;
                for _ in 0..rounds {
                    flood.produce(samples)?;
                    count.set(0);
                    let c0 = thread_cpu_ns();
                    let t0 = Instant::now();
                    while count.get() < samples {
                        tokio::time::timeout(Duration::from_millis(1000), rb.next_batch())
                            .await
                            .map_err(|_| {
                                anyhow::anyhow!(
                                    "timed out after {} of {samples} samples",
                                    count.get()
                                )
                            })?
                            .context("next_batch")?;
                    }
                    let ns = since(t0);
                    println!("ok {} {ns} {}", count.get(), thread_cpu_ns() - c0);
                }
                anyhow::Ok(())
            })
        }
    }
}

fn rounds_of(
    flood: &Flood,
    samples: u64,
    rounds: usize,
    count: &Cell<u64>,
    mut poll: impl FnMut() -> anyhow::Result<usize>,
) -> anyhow::Result<()> {
    for _ in 0..rounds {
        flood.produce(samples)?;
        count.set(0);
        let c0 = thread_cpu_ns();
        let t0 = Instant::now();
        while count.get() < samples {
            if poll().context("poll")? == 0 {
                bail!("poll timed out after {} of {samples} samples", count.get());
            }
        }
        let ns = since(t0);
        println!("ok {} {ns} {}", count.get(), thread_cpu_ns() - c0);
    }
    Ok(())
}

/// `worker perfbuf OBJ SAMPLES ROUNDS`: per round `ok SAMPLES CONSUME_NS CONSUME_CPU_NS`.
pub fn perf_worker(path: &str, samples: u64, rounds: usize) -> anyhow::Result<()> {
    let (flood, map) = load(path, "events", "perf_emit", None)?;
    let events = PerfEventArrayMap::new(map.fd, "events").context("PerfEventArrayMap")?;
    let count = Cell::new(0u64);
    let seq_sum = Cell::new(0u64);
    let lost = Cell::new(0u64);
    let mut pb = PerfBuffer::builder(&events)
        .pages(perf_pages(samples))
        .sample_cb(|_cpu, data: &[u8]| {
            if let Some(seq) = data.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
                count.set(count.get() + 1);
                seq_sum.set(seq_sum.get().wrapping_add(u64::from_ne_bytes(seq)));
            }
        })
        .lost_cb(|_cpu, n| lost.set(lost.get() + n))
        .build()
        .context("PerfBuffer::build")?;
    for _ in 0..rounds {
        flood.produce(samples)?;
        count.set(0);
        let c0 = thread_cpu_ns();
        let t0 = Instant::now();
        while count.get() + lost.get() < samples {
            if pb.poll(Duration::from_millis(1000)).context("poll")? == 0 && lost.get() == 0 {
                bail!("poll timed out after {} of {samples} samples", count.get());
            }
        }
        let ns = since(t0);
        let cpu = thread_cpu_ns() - c0;
        if lost.get() != 0 {
            bail!("{} samples lost: the buffer is too small", lost.get());
        }
        println!("ok {} {ns} {cpu}", count.get());
    }
    Ok(())
}
