//! Ring buffer consumption, skelgen side (the C harness has libbpf's).
//!
//! The producer is the `ringbuf_flood` fixture run by BPF_PROG_TEST_RUN with
//! `repeat = SAMPLES` into a ring sized to hold them all; then the consumer
//! polls until it has seen every sample. Only the consumption is timed.

use std::cell::Cell;
use std::os::fd::AsFd as _;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use skelgen_runtime::loader::{OpenObject, OpenOptions};
use skelgen_runtime::map::RingBufMap;
use skelgen_runtime::ringbuf::RingBuffer;
use skelgen_runtime::sys::TestRun;

use crate::measure::since;

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

/// `worker ringbuf OBJ SAMPLES ROUNDS`: per round `ok SAMPLES CONSUME_NS`.
pub fn worker(path: &str, samples: u64, rounds: usize) -> anyhow::Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {path}"))?;
    let name = skelgen_runtime::obj::object_name_from_path(path);
    let mut open = OpenObject::open(&bytes, &name, OpenOptions::default()).context("open")?;
    let rb_index = open
        .object()
        .maps
        .iter()
        .position(|m| m.name == "rb")
        .context("no map rb")?;
    let prog_index = open
        .object()
        .programs
        .iter()
        .position(|p| p.name == "flood")
        .context("no program flood")?;
    open.map_settings_mut(rb_index)
        .context("map settings")?
        .max_entries = ring_size(samples)?;
    let mut loaded = open.load().context("load")?;
    let prog = loaded.take_prog(prog_index).context("flood not loaded")?;
    let map = loaded.take_map(rb_index).context("rb not created")?;
    let rb_map = RingBufMap::new(map.fd, "rb").context("RingBufMap")?;

    let count = Cell::new(0u64);
    let seq_sum = Cell::new(0u64);
    let mut rb = RingBuffer::builder()
        .add(&rb_map, |sample: &[u8]| {
            let Some(seq) = sample.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()) else {
                return -22;
            };
            count.set(count.get() + 1);
            seq_sum.set(seq_sum.get().wrapping_add(u64::from_ne_bytes(seq)));
            0
        })
        .build()
        .context("RingBuffer::build")?;
    let pkt = [0u8; 64];
    let repeat = u32::try_from(samples)?;
    for _ in 0..rounds {
        TestRun::new()
            .data_in(&pkt)
            .repeat(repeat)
            .run(prog.as_fd())
            .context("BPF_PROG_TEST_RUN")?;
        count.set(0);
        let t0 = Instant::now();
        while count.get() < samples {
            let n = rb.poll(Duration::from_millis(1000)).context("poll")?;
            if n == 0 {
                bail!("poll timed out after {} of {samples} samples", count.get());
            }
        }
        let ns = since(t0);
        println!("ok {} {ns}", count.get());
    }
    Ok(())
}
