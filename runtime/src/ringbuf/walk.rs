//! Walking the records of one ring buffer: the part of consumption that needs
//! no kernel, so it is tested here on an in-memory ring.
//!
//! Record layout (`Documentation/bpf/ringbuf.rst`): an 8-byte header whose
//! first `u32` is the sample length with the busy bit (reserved, not yet
//! committed) and the discard bit, then the sample, the whole rounded up to 8
//! bytes. Positions only grow; `pos & (size - 1)` is the offset in the data area.

use crate::sys::{ringbuf_record_size, RingCursor, RingPositions, RingRecord};

/// What the walker needs from a ring: the mapping's position-keeping
/// interface (see [`RingCursor`]), so that the walk is tested on an
/// in-memory ring that decodes records with the same
/// [`decode_ringbuf_record`].
pub(crate) trait Ring {
    /// Size of the data area (a power of two).
    fn data_size(&self) -> usize;
    /// Our consumer position.
    fn position(&self) -> u64;
    /// Acquire-load the producer position (checked against ours).
    fn refresh(&mut self) -> Result<u64, RingPositions>;
    /// The record at our position.
    fn peek(&self) -> RingRecord<'_>;
    /// Move our position past `size` bytes.
    fn advance(&mut self, size: u64);
    /// Bytes consumed but not yet published.
    fn unpublished(&self) -> u64;
    /// Publish our position to the producer (release).
    fn publish(&mut self);
    /// Hint that the bytes ahead of our position will be read soon.
    fn prefetch_ahead(&self) {}
}

impl Ring for RingCursor<'_> {
    #[inline]
    fn data_size(&self) -> usize {
        RingCursor::data_size(self)
    }
    #[inline]
    fn position(&self) -> u64 {
        RingCursor::position(self)
    }
    #[inline]
    fn refresh(&mut self) -> Result<u64, RingPositions> {
        RingCursor::refresh(self)
    }
    #[inline]
    fn peek(&self) -> RingRecord<'_> {
        RingCursor::peek(self)
    }
    #[inline]
    fn advance(&mut self, size: u64) {
        RingCursor::advance(self, size)
    }
    #[inline]
    fn unpublished(&self) -> u64 {
        RingCursor::unpublished(self)
    }
    #[inline]
    fn publish(&mut self) {
        RingCursor::publish(self)
    }
    #[inline]
    fn prefetch_ahead(&self) {
        RingCursor::prefetch_ahead(self)
    }
}

/// Why a walk ended early.
#[derive(Debug)]
pub(crate) enum WalkError {
    /// The positions or a header make no sense.
    Corrupt { pos: u64, reason: String },
    /// A callback returned non-zero after `consumed` samples (counting its own).
    Stopped { code: i32, consumed: usize },
}

/// What a ring holds at its consumer position.
#[cfg_attr(not(feature = "tokio"), allow(dead_code))] // async readiness and tests
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Pending {
    /// Nothing reserved.
    Empty,
    /// A record reserved and not yet committed: its commit will wake us.
    Busy,
    /// A committed record (possibly discarded), or a corrupt one: a walk
    /// makes progress or reports it.
    Committed,
}

fn positions_error(p: RingPositions, size: u64) -> WalkError {
    WalkError::Corrupt {
        pos: p.cons,
        reason: format!(
            "producer position {} is not within {size} bytes after the consumer position {}",
            p.prod, p.cons
        ),
    }
}

/// What the ring holds at the consumer position.
#[cfg_attr(not(feature = "tokio"), allow(dead_code))] // async readiness and tests
pub(crate) fn pending<R: Ring>(ring: &mut R) -> Result<Pending, WalkError> {
    let size = ring.data_size() as u64;
    ring.refresh().map_err(|p| positions_error(p, size))?;
    Ok(match ring.peek() {
        RingRecord::Empty => Pending::Empty,
        RingRecord::Busy => Pending::Busy,
        _ => Pending::Committed,
    })
}

/// How many consumed bytes a walk may leave unpublished before it publishes
/// them. The producer only reads the consumer position to decide whether a
/// reservation fits, so holding back up to a quarter of the ring (at most
/// 64 KiB) costs it at most that much headroom, and only when the ring is
/// already three quarters full; in exchange the consumer writes the cache line
/// the producer reads once per batch instead of once per record (libbpf
/// publishes after every record). Every walk publishes before it returns and
/// before it re-reads the producer position, which keeps the kernel's wake-up
/// rule (wake when a record is committed at the published position) from
/// losing a wake-up: see `walk`.
pub(crate) fn publish_batch(size: u64) -> u64 {
    (size / 4).clamp(8, 64 * 1024)
}

/// Hand every committed sample from the consumer position on to `callback`,
/// skipping discarded records and stopping at the first busy one. Each record
/// is validated once (by the ring's `peek`); the consumer position is
/// published every [`publish_batch`] bytes and before each re-read of the
/// producer position, so a record committed after our last look either is
/// seen by that re-read or finds the published position equal to its own and
/// wakes the epoll fd. Re-reads the producer position until a pass finds
/// nothing new. Returns the number of samples delivered.
#[inline]
pub(crate) fn walk<R: Ring, F: FnMut(&[u8]) -> i32>(
    ring: &mut R,
    callback: &mut F,
) -> Result<usize, WalkError> {
    let size = ring.data_size() as u64;
    let batch = publish_batch(size);
    let mut consumed = 0usize;
    loop {
        let prod = match ring.refresh() {
            Ok(prod) => prod,
            Err(p) => {
                ring.publish();
                return Err(positions_error(p, size));
            }
        };
        let start = ring.position();
        loop {
            if ring.position() % 64 == 0 {
                ring.prefetch_ahead();
            }
            let (code, step) = match ring.peek() {
                RingRecord::Sample { data, size } => {
                    consumed += 1;
                    (callback(data), size)
                }
                RingRecord::Discarded { size } => (0, size),
                RingRecord::Empty => break,
                RingRecord::Busy => {
                    ring.publish();
                    return Ok(consumed);
                }
                RingRecord::Overrun { len } => {
                    ring.publish();
                    let pos = ring.position();
                    let end = pos.saturating_add(ringbuf_record_size(len));
                    return Err(WalkError::Corrupt {
                        pos,
                        reason: format!(
                            "a {len}-byte sample ends at {end}, past the producer position {prod}"
                        ),
                    });
                }
                RingRecord::Unaligned => {
                    ring.publish();
                    return Err(WalkError::Corrupt {
                        pos: ring.position(),
                        reason: "the consumer position is not 8-byte aligned".to_string(),
                    });
                }
            };
            ring.advance(step);
            if code != 0 {
                ring.publish();
                return Err(WalkError::Stopped { code, consumed });
            }
            if ring.unpublished() >= batch {
                ring.publish();
            }
        }
        ring.publish();
        if ring.position() == start {
            return Ok(consumed);
        }
    }
}

#[cfg(test)]
pub(crate) mod fake {
    //! An in-memory ring with the kernel's layout, data area mirrored as the
    //! double mapping is, so that samples are lent out contiguously; records
    //! are decoded by the mapping's own `decode_ringbuf_record`.

    use super::*;
    use crate::sys::{decode_ringbuf_record, RINGBUF_BUSY_BIT, RINGBUF_DISCARD_BIT};

    /// A fake ring and a producer that reserves, commits and discards.
    #[derive(Debug)]
    pub(crate) struct FakeRing {
        /// Data area, twice: byte `i` and `i + size` are the same.
        pub(crate) data: Vec<u8>,
        /// The walker's position.
        pub(crate) cons: u64,
        /// The position the producer sees (the last published).
        pub(crate) visible_cons: u64,
        /// The producer position.
        pub(crate) prod: u64,
        /// The producer position as last refreshed by the walker.
        seen_prod: u64,
        /// Every consumer position published, in order.
        pub(crate) published: Vec<u64>,
    }

    impl FakeRing {
        pub(crate) fn new(size: usize) -> Self {
            assert!(size.is_power_of_two());
            FakeRing {
                data: vec![0; 2 * size],
                cons: 0,
                visible_cons: 0,
                prod: 0,
                seen_prod: 0,
                published: Vec::new(),
            }
        }

        fn size(&self) -> usize {
            self.data.len() / 2
        }

        fn put(&mut self, pos: u64, bytes: &[u8]) {
            let size = self.size();
            for (i, &b) in bytes.iter().enumerate() {
                let at = (pos as usize + i) & (size - 1);
                self.data[at] = b;
                self.data[at + size] = b;
            }
        }

        /// Reserve a record for `sample` (written now, header busy), as
        /// `bpf_ringbuf_reserve` does, against the published consumer
        /// position; `None` if it does not fit.
        pub(crate) fn reserve(&mut self, sample: &[u8]) -> Option<u64> {
            let len = sample.len() as u32;
            let pos = self.prod;
            let next = pos + ringbuf_record_size(len);
            if next - self.visible_cons > self.size() as u64 - 1 {
                return None;
            }
            self.prod = next;
            self.put(pos, &(len | RINGBUF_BUSY_BIT).to_ne_bytes());
            self.put(pos + 4, &0u32.to_ne_bytes());
            self.put(pos + 8, sample);
            Some(pos)
        }

        /// Commit (or discard) the record at `pos`.
        pub(crate) fn commit(&mut self, pos: u64, discard: bool) {
            let at = pos as usize & (self.size() - 1);
            let raw: [u8; 4] = self.data[at..at + 4].try_into().unwrap();
            let mut header = u32::from_ne_bytes(raw) & !RINGBUF_BUSY_BIT;
            if discard {
                header |= RINGBUF_DISCARD_BIT;
            }
            self.put(pos, &header.to_ne_bytes());
        }

        /// Reserve and commit.
        pub(crate) fn submit(&mut self, sample: &[u8]) -> Option<u64> {
            let pos = self.reserve(sample)?;
            self.commit(pos, false);
            Some(pos)
        }
    }

    impl Ring for FakeRing {
        fn data_size(&self) -> usize {
            self.size()
        }
        fn position(&self) -> u64 {
            self.cons
        }
        fn refresh(&mut self) -> Result<u64, RingPositions> {
            if self.prod < self.cons || self.prod - self.cons > self.size() as u64 {
                return Err(RingPositions {
                    cons: self.cons,
                    prod: self.prod,
                });
            }
            self.seen_prod = self.prod;
            Ok(self.prod)
        }
        fn peek(&self) -> RingRecord<'_> {
            let at = self.cons as usize & (self.size() - 1);
            decode_ringbuf_record(
                self.cons,
                self.seen_prod,
                || u32::from_ne_bytes(self.data[at..at + 4].try_into().unwrap()),
                |len| &self.data[at + 8..at + 8 + len as usize],
            )
        }
        fn advance(&mut self, size: u64) {
            self.cons = self.cons.saturating_add(size).min(self.seen_prod);
        }
        fn unpublished(&self) -> u64 {
            self.cons - self.visible_cons
        }
        fn publish(&mut self) {
            if self.cons != self.visible_cons {
                self.visible_cons = self.cons;
                self.published.push(self.cons);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeRing;
    use super::*;
    use proptest::prelude::*;

    fn collect(ring: &mut FakeRing) -> Result<Vec<Vec<u8>>, WalkError> {
        let mut out = Vec::new();
        let n = walk(ring, &mut |s| {
            out.push(s.to_vec());
            0
        })?;
        assert_eq!(n, out.len());
        Ok(out)
    }

    #[test]
    fn delivers_in_order_and_publishes_once_per_batch() {
        let mut ring = FakeRing::new(4096);
        ring.submit(b"one").unwrap();
        ring.submit(b"second").unwrap();
        ring.submit(&[7u8; 8]).unwrap();
        let got = collect(&mut ring).unwrap();
        assert_eq!(got, vec![b"one".to_vec(), b"second".to_vec(), vec![7u8; 8]]);
        // 3 -> 16 bytes, 6 -> 16 bytes, 8 -> 16 bytes: one publication at the
        // end of the pass (the batch is 1 KiB here).
        assert_eq!(ring.published, vec![48]);
        assert_eq!(ring.cons, ring.prod);
        assert_eq!(pending(&mut ring).unwrap(), Pending::Empty);
        assert!(collect(&mut ring).unwrap().is_empty());
    }

    #[test]
    fn long_walks_publish_every_batch() {
        // 256-byte ring: the batch is 64 bytes, four 16-byte records.
        let mut ring = FakeRing::new(256);
        for i in 0..15 {
            ring.submit(&[i; 8]).unwrap();
        }
        assert!(ring.submit(&[0; 8]).is_none(), "the ring is full");
        assert_eq!(collect(&mut ring).unwrap().len(), 15);
        assert_eq!(ring.published, vec![64, 128, 192, 240]);
        assert!(ring.submit(&[0; 8]).is_some(), "the producer sees the room");
    }

    #[test]
    fn discarded_records_are_skipped_but_consumed() {
        let mut ring = FakeRing::new(4096);
        ring.submit(b"a").unwrap();
        let d = ring.reserve(b"dropped").unwrap();
        ring.commit(d, true);
        ring.submit(b"b").unwrap();
        assert_eq!(
            collect(&mut ring).unwrap(),
            vec![b"a".to_vec(), b"b".to_vec()]
        );
        assert_eq!(ring.cons, ring.prod);
    }

    #[test]
    fn busy_record_stops_the_walk_until_committed() {
        let mut ring = FakeRing::new(4096);
        ring.submit(b"first").unwrap();
        let busy = ring.reserve(b"busy").unwrap();
        ring.submit(b"after").unwrap();
        assert_eq!(collect(&mut ring).unwrap(), vec![b"first".to_vec()]);
        assert_eq!(ring.cons, busy);
        assert_eq!(pending(&mut ring).unwrap(), Pending::Busy);
        ring.commit(busy, false);
        assert_eq!(pending(&mut ring).unwrap(), Pending::Committed);
        assert_eq!(
            collect(&mut ring).unwrap(),
            vec![b"busy".to_vec(), b"after".to_vec()]
        );
    }

    #[test]
    fn callback_stop_consumes_its_record_and_reports() {
        let mut ring = FakeRing::new(4096);
        for i in 0u8..5 {
            ring.submit(&[i; 4]).unwrap();
        }
        let mut seen = Vec::new();
        let err = walk(&mut ring, &mut |s| {
            seen.push(s[0]);
            if s[0] == 2 {
                -7
            } else {
                0
            }
        })
        .unwrap_err();
        assert!(matches!(
            err,
            WalkError::Stopped {
                code: -7,
                consumed: 3
            }
        ));
        assert_eq!(seen, vec![0, 1, 2]);
        // The next walk resumes after the record whose callback stopped.
        let rest = collect(&mut ring).unwrap();
        assert_eq!(rest, vec![vec![3u8; 4], vec![4u8; 4]]);
    }

    #[test]
    fn records_that_wrap_are_contiguous() {
        // 64-byte ring; 21-byte samples take 32 bytes, 13-byte ones 24, so
        // records straddle the end in every phase.
        let mut ring = FakeRing::new(64);
        let mut expected = 0u32;
        for next in 0u32..200 {
            let len = if next % 2 == 0 { 21 } else { 13 };
            let mut sample = vec![0u8; len];
            sample[..4].copy_from_slice(&next.to_le_bytes());
            for (i, b) in sample.iter_mut().enumerate().skip(4) {
                *b = (next as usize + i) as u8;
            }
            ring.submit(&sample).unwrap();
            let got = collect(&mut ring).unwrap();
            for s in got {
                let seq = u32::from_le_bytes(s[..4].try_into().unwrap());
                assert_eq!(seq, expected);
                for (i, b) in s.iter().enumerate().skip(4) {
                    assert_eq!(*b, (seq as usize + i) as u8, "byte {i} of sample {seq}");
                }
                expected += 1;
            }
        }
        assert_eq!(expected, 200);
        assert!(ring.cons > 64 * 50, "the ring wrapped many times");
    }

    #[test]
    fn full_ring_refuses_then_drains() {
        let mut ring = FakeRing::new(64);
        // 8-byte samples take 16 bytes; 64 - 1 leaves room for 3.
        let mut n = 0;
        while ring.submit(&[n; 8]).is_some() {
            n += 1;
        }
        assert_eq!(n, 3);
        assert_eq!(collect(&mut ring).unwrap().len(), 3);
        assert!(ring.submit(&[9; 8]).is_some());
    }

    #[test]
    fn corrupt_positions_and_lengths_are_errors() {
        let mut ring = FakeRing::new(64);
        ring.prod = 1000;
        assert!(matches!(
            walk(&mut ring, &mut |_| 0),
            Err(WalkError::Corrupt { pos: 0, .. })
        ));

        let mut ring = FakeRing::new(64);
        ring.submit(&[1; 8]).unwrap();
        // Claim a 40-byte sample in a 16-byte record.
        ring.data[0] = 40;
        ring.data[64] = 40;
        match walk(&mut ring, &mut |_| 0) {
            Err(WalkError::Corrupt { pos: 0, reason }) => {
                assert!(reason.contains("past the producer position 16"), "{reason}")
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    proptest! {
        /// Any mix of sample sizes, discards and consume points delivers
        /// exactly the committed samples, in order, byte for byte.
        #[test]
        fn walk_matches_a_model(ops in prop::collection::vec((0usize..60, any::<bool>(), any::<bool>()), 1..200)) {
            let mut ring = FakeRing::new(256);
            let mut model: std::collections::VecDeque<Vec<u8>> = Default::default();
            let mut seq = 0u8;
            for (len, discard, consume) in ops {
                let sample: Vec<u8> = (0..len).map(|i| seq.wrapping_add(i as u8)).collect();
                seq = seq.wrapping_add(1);
                if let Some(pos) = ring.reserve(&sample) {
                    ring.commit(pos, discard);
                    if !discard {
                        model.push_back(sample);
                    }
                }
                if consume {
                    for got in collect(&mut ring).unwrap() {
                        prop_assert_eq!(Some(got), model.pop_front());
                    }
                }
            }
            for got in collect(&mut ring).unwrap() {
                prop_assert_eq!(Some(got), model.pop_front());
            }
            prop_assert!(model.is_empty());
        }
    }
}
