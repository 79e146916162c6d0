//! Walking the records of one ring buffer: the part of consumption that needs
//! no kernel, so it is tested here on an in-memory ring.
//!
//! Record layout (`Documentation/bpf/ringbuf.rst`): an 8-byte header whose
//! first `u32` is the sample length with the busy bit (reserved, not yet
//! committed) and the discard bit, then the sample, the whole rounded up to 8
//! bytes. Positions only grow; `pos & (size - 1)` is the offset in the data area.

use crate::sys::{RingBufMapping, SysError, RINGBUF_BUSY_BIT, RINGBUF_DISCARD_BIT, RINGBUF_HDR_SZ};

/// What the walker needs from a ring: positions, headers and samples.
pub(crate) trait Ring {
    /// Size of the data area (a power of two).
    fn data_size(&self) -> usize;
    /// Consumer position.
    fn consumer_pos(&self) -> Result<u64, SysError>;
    /// Producer position (acquire).
    fn producer_pos(&self) -> Result<u64, SysError>;
    /// Header word of the record at `pos` (acquire).
    fn header(&self, pos: u64) -> Result<u32, SysError>;
    /// Lend the sample of the committed record at `pos` to `f`.
    fn with_sample<R>(&self, pos: u64, f: impl FnOnce(&[u8]) -> R) -> Result<R, SysError>;
    /// Publish the consumer position (release).
    fn set_consumer_pos(&mut self, pos: u64) -> Result<(), SysError>;
}

impl Ring for RingBufMapping {
    fn data_size(&self) -> usize {
        RingBufMapping::data_size(self)
    }
    fn consumer_pos(&self) -> Result<u64, SysError> {
        RingBufMapping::consumer_pos(self)
    }
    fn producer_pos(&self) -> Result<u64, SysError> {
        RingBufMapping::producer_pos(self)
    }
    fn header(&self, pos: u64) -> Result<u32, SysError> {
        RingBufMapping::header(self, pos)
    }
    fn with_sample<R>(&self, pos: u64, f: impl FnOnce(&[u8]) -> R) -> Result<R, SysError> {
        RingBufMapping::with_sample(self, pos, f)
    }
    fn set_consumer_pos(&mut self, pos: u64) -> Result<(), SysError> {
        RingBufMapping::set_consumer_pos(self, pos)
    }
}

/// Why a walk ended early.
#[derive(Debug)]
pub(crate) enum WalkError {
    /// A ring access failed.
    Sys { op: &'static str, source: SysError },
    /// The positions or a header make no sense.
    Corrupt { pos: u64, reason: String },
    /// A callback returned non-zero after `consumed` samples (counting its own).
    Stopped { code: i32, consumed: usize },
}

fn sys(op: &'static str) -> impl FnOnce(SysError) -> WalkError {
    move |source| WalkError::Sys { op, source }
}

/// Bytes a record with a `len`-byte sample takes in the ring.
pub(crate) fn record_size(len: u32) -> u64 {
    (u64::from(len) + u64::from(RINGBUF_HDR_SZ)).next_multiple_of(8)
}

/// What a ring holds at its consumer position.
#[cfg_attr(not(feature = "tokio"), allow(dead_code))] // async readiness and tests
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Pending {
    /// Nothing reserved.
    Empty,
    /// A record reserved and not yet committed: its commit will wake us.
    Busy,
    /// A committed record (possibly discarded): a walk makes progress.
    Committed,
}

/// What the ring holds at the consumer position.
#[cfg_attr(not(feature = "tokio"), allow(dead_code))] // async readiness and tests
pub(crate) fn pending<R: Ring>(ring: &R) -> Result<Pending, WalkError> {
    let cons = ring.consumer_pos().map_err(sys("read consumer position"))?;
    let prod = ring.producer_pos().map_err(sys("read producer position"))?;
    if cons >= prod {
        return Ok(Pending::Empty);
    }
    let header = ring.header(cons).map_err(sys("read record header"))?;
    Ok(if header & RINGBUF_BUSY_BIT == 0 {
        Pending::Committed
    } else {
        Pending::Busy
    })
}

/// Hand every committed sample from the consumer position on to `callback`,
/// skipping discarded records and stopping at the first busy one, publishing
/// the consumer position after each record (as libbpf does, so the producer
/// gets room as early as possible). Re-reads the producer position until a
/// pass finds nothing new. Returns the number of samples delivered.
pub(crate) fn walk<R: Ring>(
    ring: &mut R,
    callback: &mut dyn FnMut(&[u8]) -> i32,
) -> Result<usize, WalkError> {
    let size = ring.data_size() as u64;
    let mut consumed = 0usize;
    let mut cons = ring.consumer_pos().map_err(sys("read consumer position"))?;
    loop {
        let prod = ring.producer_pos().map_err(sys("read producer position"))?;
        if prod < cons || prod - cons > size {
            return Err(WalkError::Corrupt {
                pos: cons,
                reason: format!(
                    "producer position {prod} is not within {size} bytes after the \
                     consumer position {cons}"
                ),
            });
        }
        let start = cons;
        while cons < prod {
            let header = ring.header(cons).map_err(sys("read record header"))?;
            if header & RINGBUF_BUSY_BIT != 0 {
                return Ok(consumed);
            }
            let len = header & !(RINGBUF_BUSY_BIT | RINGBUF_DISCARD_BIT);
            let next = cons + record_size(len);
            if next > prod {
                return Err(WalkError::Corrupt {
                    pos: cons,
                    reason: format!(
                        "a {len}-byte sample ends at {next}, past the producer position {prod}"
                    ),
                });
            }
            let code = if header & RINGBUF_DISCARD_BIT == 0 {
                consumed += 1;
                ring.with_sample(cons, |sample| callback(sample))
                    .map_err(sys("read sample"))?
            } else {
                0
            };
            cons = next;
            ring.set_consumer_pos(cons)
                .map_err(sys("publish consumer position"))?;
            if code != 0 {
                return Err(WalkError::Stopped { code, consumed });
            }
        }
        if cons == start {
            return Ok(consumed);
        }
    }
}

#[cfg(test)]
pub(crate) mod fake {
    //! An in-memory ring with the kernel's layout, data area mirrored as the
    //! double mapping is, so that samples are lent out contiguously.

    use super::*;

    /// A fake ring and a producer that reserves, commits and discards.
    #[derive(Debug)]
    pub(crate) struct FakeRing {
        /// Data area, twice: byte `i` and `i + size` are the same.
        pub(crate) data: Vec<u8>,
        pub(crate) cons: u64,
        pub(crate) prod: u64,
        /// Every consumer position published, in order.
        pub(crate) published: Vec<u64>,
    }

    fn invalid(reason: String) -> SysError {
        SysError::InvalidArgument {
            op: "fake ring",
            reason,
        }
    }

    impl FakeRing {
        pub(crate) fn new(size: usize) -> Self {
            assert!(size.is_power_of_two());
            FakeRing {
                data: vec![0; 2 * size],
                cons: 0,
                prod: 0,
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
        /// `bpf_ringbuf_reserve` does; `None` if it does not fit.
        pub(crate) fn reserve(&mut self, sample: &[u8]) -> Option<u64> {
            let len = sample.len() as u32;
            let pos = self.prod;
            let next = pos + record_size(len);
            if next - self.cons > self.size() as u64 - 1 {
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
        fn consumer_pos(&self) -> Result<u64, SysError> {
            Ok(self.cons)
        }
        fn producer_pos(&self) -> Result<u64, SysError> {
            Ok(self.prod)
        }
        fn header(&self, pos: u64) -> Result<u32, SysError> {
            let at = pos as usize & (self.size() - 1);
            let raw = self
                .data
                .get(at..at + 4)
                .ok_or_else(|| invalid(format!("header at {pos}")))?;
            Ok(u32::from_ne_bytes(
                raw.try_into().map_err(|_| invalid(String::new()))?,
            ))
        }
        fn with_sample<R>(&self, pos: u64, f: impl FnOnce(&[u8]) -> R) -> Result<R, SysError> {
            let len = self.header(pos)? & !(RINGBUF_BUSY_BIT | RINGBUF_DISCARD_BIT);
            let at = (pos as usize & (self.size() - 1)) + 8;
            let sample = self
                .data
                .get(at..at + len as usize)
                .ok_or_else(|| invalid(format!("sample at {pos}")))?;
            Ok(f(sample))
        }
        fn set_consumer_pos(&mut self, pos: u64) -> Result<(), SysError> {
            self.cons = pos;
            self.published.push(pos);
            Ok(())
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
    fn delivers_in_order_and_publishes_after_each_record() {
        let mut ring = FakeRing::new(4096);
        ring.submit(b"one").unwrap();
        ring.submit(b"second").unwrap();
        ring.submit(&[7u8; 8]).unwrap();
        let got = collect(&mut ring).unwrap();
        assert_eq!(got, vec![b"one".to_vec(), b"second".to_vec(), vec![7u8; 8]]);
        // 3 -> 16 bytes, 6 -> 16 bytes, 8 -> 16 bytes.
        assert_eq!(ring.published, vec![16, 32, 48]);
        assert_eq!(ring.cons, ring.prod);
        assert_eq!(pending(&ring).unwrap(), Pending::Empty);
        assert!(collect(&mut ring).unwrap().is_empty());
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
        assert_eq!(pending(&ring).unwrap(), Pending::Busy);
        ring.commit(busy, false);
        assert_eq!(pending(&ring).unwrap(), Pending::Committed);
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
