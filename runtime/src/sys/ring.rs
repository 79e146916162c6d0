//! Zero-copy views into the two rings the kernel produces into: BPF ring
//! buffers (`BPF_MAP_TYPE_RINGBUF`) and perf buffers (the mmap of a
//! `perf_event_open` fd).
//!
//! [`Mmap`] never hands out `&[u8]` because in general the kernel may write any
//! byte at any time. Both rings, though, have a protocol under which a range is
//! frozen: the producer writes a record, publishes it (a header commit or a head
//! advance, with release ordering), and then does not touch it again until the
//! consumer position passes it. The types here enforce that protocol before
//! lending out a slice:
//!
//! - the range must lie between the consumer position, which the mapping
//!   keeps itself, and the producer position, loaded with acquire ordering;
//! - a ring buffer record's header must be committed (busy bit clear);
//! - the consumer position is only published through `&mut self`, so the
//!   producer cannot reuse a range while a slice lent by `&self` is alive.
//!
//! Each record is validated once, with inlined accessors and no `Result` on
//! the hot path; publishing the consumer position is a separate step, so a
//! walk can publish once per batch rather than per record.
//!
//! What cannot be enforced here: that no *other* consumer (another process, or
//! a second mapping of the same map in this one) advances the consumer position
//! meanwhile. The kernel's rings are single-consumer by design; consuming one
//! ring from two places is already a logic error that loses records, and here
//! it would also let the producer overwrite bytes a callback is reading.

use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::{host, Access, Mmap, SysError};

/// `BPF_RINGBUF_BUSY_BIT`: the record is reserved and not yet committed.
pub const RINGBUF_BUSY_BIT: u32 = 1 << 31;
/// `BPF_RINGBUF_DISCARD_BIT`: the record was discarded; skip it.
pub const RINGBUF_DISCARD_BIT: u32 = 1 << 30;
/// `BPF_RINGBUF_HDR_SZ`: bytes of a record header (u32 len, u32 page offset).
pub const RINGBUF_HDR_SZ: u32 = 8;

const RB_OP: &str = "ring buffer";
const PERF_OP: &str = "perf buffer";

/// Bytes a record with a `len`-byte sample takes in the ring: header and
/// sample, rounded up to 8.
#[inline]
pub fn ringbuf_record_size(len: u32) -> u64 {
    // A u32 length plus 15 cannot overflow a u64.
    (u64::from(len) + u64::from(RINGBUF_HDR_SZ) + 7) & !7
}

/// The record at a ring buffer consumer's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingRecord<'a> {
    /// Nothing between the consumer position and the producer position.
    Empty,
    /// Reserved, not yet committed: its commit will wake the consumer.
    Busy,
    /// Committed as discarded: skip `size` bytes.
    Discarded {
        /// Bytes the record takes in the ring.
        size: u64,
    },
    /// A committed sample, lent in place (the ring's double mapping makes a
    /// record that wraps contiguous).
    Sample {
        /// The sample's bytes.
        data: &'a [u8],
        /// Bytes the record takes in the ring.
        size: u64,
    },
    /// The header claims a `len`-byte sample that runs past the producer
    /// position.
    Overrun {
        /// The claimed length.
        len: u32,
    },
    /// The consumer position is not 8-byte aligned.
    Unaligned,
}

/// Decode the record at consumer position `cons` of a ring whose producer
/// position is `prod` (`cons <= prod <= cons + size` already checked):
/// `header()` acquire-loads its header word and is only called when there is
/// a record; `sample(len)` lends its `len` bytes and is only called for a
/// committed, undiscarded record that ends at or before `prod`. This is the
/// record protocol of `Documentation/bpf/ringbuf.rst`, shared by the mapping
/// and the walker's in-memory test ring.
#[inline]
pub fn decode_ringbuf_record<'a>(
    cons: u64,
    prod: u64,
    header: impl FnOnce() -> u32,
    sample: impl FnOnce(u32) -> &'a [u8],
) -> RingRecord<'a> {
    if cons >= prod {
        return RingRecord::Empty;
    }
    if cons % u64::from(RINGBUF_HDR_SZ) != 0 {
        return RingRecord::Unaligned;
    }
    let word = header();
    if word & RINGBUF_BUSY_BIT != 0 {
        return RingRecord::Busy;
    }
    let len = word & !(RINGBUF_BUSY_BIT | RINGBUF_DISCARD_BIT);
    let size = ringbuf_record_size(len);
    if size > prod - cons {
        return RingRecord::Overrun { len };
    }
    if word & RINGBUF_DISCARD_BIT != 0 {
        RingRecord::Discarded { size }
    } else {
        RingRecord::Sample {
            data: sample(len),
            size,
        }
    }
}

/// How far ahead of the consumer position [`RingCursor::prefetch_ahead`]
/// asks for the ring's bytes.
pub const PREFETCH_AHEAD: u64 = 2048;

/// The ring's positions make no sense: the producer position is behind the
/// consumer's or more than the ring's size ahead of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingPositions {
    /// Our consumer position.
    pub cons: u64,
    /// The producer position read.
    pub prod: u64,
}

/// A mapped BPF ring buffer: the consumer page (read-write) and the producer
/// page followed by the data area mapped twice (read-only), so that a record
/// that wraps past the end is contiguous in memory.
///
/// The mapping keeps the consumer position itself (`cons`, starting at the
/// page's value) and the producer position as last acquired (`prod`), and
/// publishes `cons` to the consumer page only in [`RingCursor::publish`].
/// Invariants: `published <= cons <= prod <= cons + size`, where `published`
/// is what the kernel's producer sees; `prod` was acquire-loaded. Records are
/// read through a [`RingCursor`] (see there for why it is a separate value).
#[derive(Debug)]
pub struct RingBufMapping {
    consumer: Mmap,
    producer: Mmap,
    page: usize,
    size: usize,
    at: Positions,
}

/// The positions a ring buffer consumer keeps (see [`RingBufMapping`]).
#[derive(Debug, Clone, Copy)]
struct Positions {
    cons: u64,
    prod: u64,
    published: u64,
}

/// The position word at offset 0 of `map` (one of the two mappings, each at
/// least a page long, so in bounds and aligned: checked in
/// [`RingBufMapping::new`]).
#[inline]
fn position_word(map: &Mmap) -> &AtomicU64 {
    // SAFETY: offset 0 of a live, page-aligned mapping of at least a page
    // (both mappings are, see `RingBufMapping::new`), so 8 bytes in bounds
    // and 8-aligned; the kernel and this side only access the word
    // atomically. The reference lives no longer than `map`.
    unsafe { AtomicU64::from_ptr(map.as_ptr().cast_mut().cast::<u64>()) }
}

impl RingBufMapping {
    /// Map ring buffer `fd` whose data area is `size` bytes (`max_entries`: a
    /// power of two and a multiple of the page size).
    pub fn new(fd: impl AsFd, size: usize) -> Result<Self, SysError> {
        let page = host::page_size();
        if !size.is_power_of_two() || size % page != 0 {
            return Err(SysError::invalid(
                RB_OP,
                format!("data size {size} is not a power of two multiple of the page size {page}"),
            ));
        }
        let producer_len = size
            .checked_mul(2)
            .and_then(|n| n.checked_add(page))
            .ok_or_else(|| SysError::invalid(RB_OP, format!("data size {size} is too large")))?;
        let consumer = Mmap::new(fd.as_fd(), page, 0, Access::ReadWrite)?;
        let producer = Mmap::new(fd.as_fd(), producer_len, page as u64, Access::Read)?;
        // Both mappings are at least a page: the two positions at offset 0 are
        // in bounds and 8-aligned, which `position_word` relies on.
        let cons = consumer.load_acquire_u64(0)?;
        producer.load_acquire_u64(0)?;
        Ok(RingBufMapping {
            consumer,
            producer,
            page,
            size,
            at: Positions {
                cons,
                prod: cons,
                published: cons,
            },
        })
    }

    /// Size of the data area in bytes.
    #[inline]
    pub fn data_size(&self) -> usize {
        self.size
    }

    /// Our consumer position (bytes consumed since creation), which may be
    /// ahead of the published one.
    #[inline]
    pub fn position(&self) -> u64 {
        self.at.cons
    }

    /// A cursor over the ring, for one walk: it carries the positions and
    /// the data area's address by value, and writes the positions back when
    /// dropped. A walk hands each sample to a callback that may write
    /// anywhere (counters behind `Cell`s, a `Vec`); positions kept in the
    /// mapping were reloaded and stored around every callback, as the
    /// compiler cannot tell that the callback leaves them alone, while a
    /// local cursor's fields stay in registers (the ring buffer walk went
    /// from 54 to 33 instructions a record).
    #[inline]
    pub fn cursor(&mut self) -> RingCursor<'_> {
        RingCursor {
            // SAFETY: `page < producer.len()` (the producer mapping is
            // `page + 2 * size` bytes, see `new`): the data area's start.
            data: unsafe { self.producer.as_ptr().add(self.page) },
            mask: self.size as u64 - 1,
            consumer_word: position_word(&self.consumer),
            producer_word: position_word(&self.producer),
            at: self.at,
            home: &mut self.at,
        }
    }
}

/// A ring buffer mapping's positions and data area, borrowed for one walk
/// (see [`RingBufMapping::cursor`]); dropping it writes the positions back.
///
/// A record [`peek`](Self::peek) lends lies in `cons..prod`: committed, and
/// not reusable by the producer until a later `publish` passes it, which
/// needs `&mut self`, excluded while the lent slice (borrowing `&self`)
/// lives.
pub struct RingCursor<'a> {
    /// Start of the data area (mapped twice in a row), in the producer
    /// mapping borrowed for `'a`.
    data: *const u8,
    /// Data area size - 1 (a power of two - 1).
    mask: u64,
    consumer_word: &'a AtomicU64,
    producer_word: &'a AtomicU64,
    at: Positions,
    home: &'a mut Positions,
}

impl std::fmt::Debug for RingCursor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingCursor")
            .field("size", &(self.mask + 1))
            .field("at", &self.at)
            .finish_non_exhaustive()
    }
}

impl Drop for RingCursor<'_> {
    #[inline]
    fn drop(&mut self) {
        *self.home = self.at;
    }
}

impl RingCursor<'_> {
    /// Size of the data area in bytes.
    #[inline]
    pub fn data_size(&self) -> usize {
        (self.mask + 1) as usize
    }

    /// Our consumer position, which may be ahead of the published one.
    #[inline]
    pub fn position(&self) -> u64 {
        self.at.cons
    }

    /// Acquire-load the producer position. Fails (and keeps the previous one)
    /// unless it lies within the ring's size at or after our position.
    #[inline]
    pub fn refresh(&mut self) -> Result<u64, RingPositions> {
        let prod = self.producer_word.load(Ordering::Acquire);
        let cons = self.at.cons;
        if prod < cons || prod - cons > self.mask + 1 {
            return Err(RingPositions { cons, prod });
        }
        self.at.prod = prod;
        Ok(prod)
    }

    /// The record at our position, given the producer position of the last
    /// [`refresh`](Self::refresh). A sample is lent in place, borrowing
    /// `self`: see the type's docs for why its bytes cannot change meanwhile.
    #[inline]
    pub fn peek(&self) -> RingRecord<'_> {
        let offset = (self.at.cons & self.mask) as usize;
        decode_ringbuf_record(
            self.at.cons,
            self.at.prod,
            || {
                // SAFETY: `offset < size`, inside the data area of the live
                // producer mapping, and 8-aligned (the area is page-aligned,
                // `cons` was checked 8-aligned by the decoder before calling
                // this); the kernel writes header words with
                // `smp_store_release`, this side only loads them atomically;
                // the reference lives for this load only.
                let word = unsafe { AtomicU32::from_ptr(self.data.add(offset).cast_mut().cast()) };
                word.load(Ordering::Acquire)
            },
            |len| {
                // The decoder checked `8 + len <= prod - cons <= size`, so the
                // sample ends before `offset + size <= 2 * size`, the end of
                // the double mapping.
                let start = offset + RINGBUF_HDR_SZ as usize;
                // SAFETY: the range is in bounds of the live, readable
                // producer mapping (above). It is a committed record (busy bit
                // clear, acquire-loaded header, after the acquire-loaded
                // producer position) between our position and `prod`, so the
                // producer does not write it until the consumer page's
                // position passes it; that only happens in `publish` via
                // `&mut self`, which the `&self` borrow of the returned slice
                // excludes.
                unsafe { std::slice::from_raw_parts(self.data.add(start), len as usize) }
            },
        )
    }

    /// Hint the CPU to fetch the ring's bytes `PREFETCH_AHEAD` (2 KiB) past our
    /// position. The walk is a chain of dependent loads (each record's header
    /// gives the next one's position), so without this every cache line the
    /// hardware prefetcher has not already brought in costs a full memory
    /// latency; records are contiguous, so the bytes ahead are the next
    /// records'. Wrong guesses (the ring ends, or wraps) only waste a fetch.
    #[inline]
    pub fn prefetch_ahead(&self) {
        #[cfg(target_arch = "x86_64")]
        {
            let ahead = (self.at.cons.wrapping_add(PREFETCH_AHEAD) & self.mask) as usize;
            // SAFETY: `ahead < size`: the address is inside the live mapping's
            // data area; a prefetch reads nothing into Rust values and cannot
            // fault or race.
            unsafe {
                use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                _mm_prefetch::<_MM_HINT_T0>(self.data.add(ahead).cast());
            }
        }
    }

    /// Move our position past a record of `size` bytes (as `peek` reported;
    /// never past the producer position). Not visible to the producer until
    /// [`publish`](Self::publish).
    #[inline]
    pub fn advance(&mut self, size: u64) {
        // Positions count bytes since the ring was created: a u64 does not
        // wrap, and a size `peek` reported is at most `prod - cons`; the
        // bound keeps `cons <= prod` whatever the caller passes.
        self.at.cons = self.at.cons.wrapping_add(size).min(self.at.prod);
    }

    /// Bytes consumed but not yet published.
    #[inline]
    pub fn unpublished(&self) -> u64 {
        self.at.cons - self.at.published
    }

    /// Publish our position with release ordering: every record before it
    /// may be overwritten from now on.
    #[inline]
    pub fn publish(&mut self) {
        if self.at.cons != self.at.published {
            self.consumer_word.store(self.at.cons, Ordering::Release);
            self.at.published = self.at.cons;
        }
    }
}

/// Offsets in `struct perf_event_mmap_page`.
mod perf_page {
    pub const DATA_HEAD: usize = 1024;
    pub const DATA_TAIL: usize = 1032;
    pub const DATA_OFFSET: usize = 1040;
    pub const DATA_SIZE: usize = 1048;
}

/// The mapping of a perf event fd: the `perf_event_mmap_page` and a data area
/// of a power of two pages.
///
/// As [`RingBufMapping`], it keeps the reader's position (`tail`, starting at
/// the page's `data_tail`) and the last acquired `data_head` itself, and
/// publishes `tail` only in [`publish`](Self::publish). Invariants:
/// `published <= tail <= head <= tail + data_size`, `head` acquire-loaded, so
/// every span [`span`](Self::span) lends (inside `tail..head`) was written
/// before the kernel published `head` and is not reused until a `publish`
/// (`&mut self`) passes it.
#[derive(Debug)]
pub struct PerfMapping {
    mmap: Mmap,
    data_offset: usize,
    data_size: usize,
    tail: u64,
    head: u64,
    published: u64,
}

impl PerfMapping {
    /// Map perf event `fd` with `pages` data pages (a power of two).
    pub fn new(fd: impl AsFd, pages: usize) -> Result<Self, SysError> {
        let page = host::page_size();
        if !pages.is_power_of_two() {
            return Err(SysError::invalid(
                PERF_OP,
                format!("page count {pages} is not a power of two"),
            ));
        }
        let len = pages
            .checked_add(1)
            .and_then(|n| n.checked_mul(page))
            .ok_or_else(|| SysError::invalid(PERF_OP, format!("{pages} pages is too many")))?;
        let mmap = Mmap::new(fd, len, 0, Access::ReadWrite)?;
        let read_u64 = |offset: usize| -> Result<u64, SysError> {
            let mut bytes = [0u8; 8];
            mmap.read_volatile(offset, &mut bytes)?;
            Ok(u64::from_ne_bytes(bytes))
        };
        let (offset, size) = (
            read_u64(perf_page::DATA_OFFSET)?,
            read_u64(perf_page::DATA_SIZE)?,
        );
        // Kernels before 4.1 leave both zero: the data starts at the next page.
        let (data_offset, data_size) = if size == 0 {
            (page, pages * page)
        } else {
            let fits = offset
                .checked_add(size)
                .is_some_and(|end| end <= len as u64);
            if !fits || !size.is_power_of_two() || offset % 8 != 0 {
                return Err(SysError::invalid(
                    PERF_OP,
                    format!(
                        "kernel reports data_offset {offset} data_size {size} for a \
                         {len}-byte mapping"
                    ),
                ));
            }
            (offset as usize, size as usize)
        };
        // The control words are in the first page, which the mapping (at least
        // two pages) covers: checked once here, relied on by `word`.
        let tail = mmap.load_acquire_u64(perf_page::DATA_TAIL)?;
        mmap.load_acquire_u64(perf_page::DATA_HEAD)?;
        Ok(PerfMapping {
            mmap,
            data_offset,
            data_size,
            tail,
            head: tail,
            published: tail,
        })
    }

    /// Size of the data area in bytes (a power of two).
    #[inline]
    pub fn data_size(&self) -> usize {
        self.data_size
    }

    /// The reader's position, which may be ahead of the published `data_tail`.
    #[inline]
    pub fn position(&self) -> u64 {
        self.tail
    }

    /// `data_head` or `data_tail` of the control page.
    #[inline]
    fn word(&self, offset: usize) -> &AtomicU64 {
        debug_assert!(offset == perf_page::DATA_HEAD || offset == perf_page::DATA_TAIL);
        // SAFETY: both offsets are 8-aligned and inside the first page of the
        // live, page-aligned mapping (checked by the loads in `new`); the kernel
        // and this side access these words only atomically.
        unsafe { AtomicU64::from_ptr(self.mmap.as_ptr().add(offset).cast_mut().cast::<u64>()) }
    }

    /// Acquire-load `data_head`. Fails (and keeps the previous one) unless it
    /// lies within the data size at or after our position.
    #[inline]
    pub fn refresh(&mut self) -> Result<u64, RingPositions> {
        let head = self.word(perf_page::DATA_HEAD).load(Ordering::Acquire);
        if head < self.tail || head - self.tail > self.data_size as u64 {
            return Err(RingPositions {
                cons: self.tail,
                prod: head,
            });
        }
        self.head = head;
        Ok(head)
    }

    /// Lend the `len` bytes at ring position `pos`, without copying: `None`
    /// unless they lie within our position and the last acquired head and do
    /// not wrap past the end of the data area.
    #[inline]
    pub fn span(&self, pos: u64, len: usize) -> Option<&[u8]> {
        let end = pos.checked_add(len as u64)?;
        let start = (pos & (self.data_size as u64 - 1)) as usize;
        if pos < self.tail || end > self.head || start + len > self.data_size {
            return None;
        }
        // SAFETY: `data_offset + data_size <= mmap.len()` (checked in `new`),
        // so the range is in bounds of the live mapping. It lies in
        // `tail..head`: written by the kernel before it release-stored the head
        // we acquire-loaded, and not overwritten until `data_tail` passes it,
        // which only `publish` (`&mut self`) does — excluded while the
        // returned slice borrows `self`.
        Some(unsafe {
            std::slice::from_raw_parts(self.mmap.as_ptr().add(self.data_offset + start), len)
        })
    }

    /// Hint the CPU to fetch the data `PREFETCH_AHEAD` (2 KiB) bytes past our
    /// position: as [`RingCursor::prefetch_ahead`], each record's header
    /// gives the next one's position, so the reader is otherwise a chain of
    /// dependent cache misses.
    #[inline]
    pub fn prefetch_ahead(&self) {
        #[cfg(target_arch = "x86_64")]
        {
            let ahead =
                (self.tail.wrapping_add(PREFETCH_AHEAD) & (self.data_size as u64 - 1)) as usize;
            // SAFETY: `data_offset + ahead < data_offset + data_size <=
            // mmap.len()`: inside the live mapping; a prefetch reads nothing
            // into Rust values and cannot fault or race.
            unsafe {
                use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                _mm_prefetch::<_MM_HINT_T0>(
                    self.mmap.as_ptr().add(self.data_offset + ahead).cast(),
                );
            }
        }
    }

    /// Move our position past `len` bytes (never past the head). Not visible
    /// to the kernel until [`publish`](Self::publish).
    #[inline]
    pub fn advance(&mut self, len: u64) {
        self.tail = self.tail.saturating_add(len).min(self.head);
    }

    /// Bytes read but not yet published.
    #[inline]
    pub fn unpublished(&self) -> u64 {
        self.tail - self.published
    }

    /// Publish our position as `data_tail` with release ordering: everything
    /// before it may be overwritten from now on.
    #[inline]
    pub fn publish(&mut self) {
        if self.tail != self.published {
            self.word(perf_page::DATA_TAIL)
                .store(self.tail, Ordering::Release);
            self.published = self.tail;
        }
    }
}

/// An fd's readability in tokio's reactor (feature `tokio`): what an async
/// consumer awaits on its epoll fd.
#[cfg(feature = "tokio")]
#[derive(Debug)]
pub struct AsyncReadiness {
    fd: tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>,
}

#[cfg(feature = "tokio")]
impl AsyncReadiness {
    /// Register a duplicate of `fd` for readability with the current tokio
    /// runtime. Fails outside a runtime (or one without I/O enabled).
    pub fn new(fd: impl AsFd) -> std::io::Result<Self> {
        use tokio::io::unix::AsyncFd;
        use tokio::io::Interest;

        tokio::runtime::Handle::try_current().map_err(std::io::Error::other)?;
        let dup = fd.as_fd().try_clone_to_owned()?;
        // SAFETY: `dup` is an open fd that the AsyncFd owns from here on; this
        // type never hands it out mutably nor replaces it, so it stays open and
        // refers to the same file description until the AsyncFd is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(dup, Interest::READABLE) }
            .map_err(std::io::Error::from)?;
        Ok(AsyncReadiness { fd })
    }

    /// Wait until the fd is readable. The guard's `clear_ready()` forgets that
    /// readiness (unless a newer event arrived meanwhile).
    pub async fn readable(
        &self,
    ) -> std::io::Result<tokio::io::unix::AsyncFdReadyGuard<'_, std::os::fd::OwnedFd>> {
        self.fd.readable().await
    }
}
