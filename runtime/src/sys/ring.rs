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
//! - the range must lie between the consumer position and the producer
//!   position, both loaded with acquire ordering just before;
//! - a ring buffer record's header must be committed (busy bit clear);
//! - the consumer position only moves through `&mut self`, so it cannot move
//!   while a slice lent by `&self` is alive.
//!
//! What cannot be enforced here: that no *other* consumer (another process, or
//! a second mapping of the same map in this one) advances the consumer position
//! meanwhile. The kernel's rings are single-consumer by design; consuming one
//! ring from two places is already a logic error that loses records, and here
//! it would also let the producer overwrite bytes a callback is reading.

use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU32, Ordering};

use super::{host, Access, Mmap, SysError};

/// `BPF_RINGBUF_BUSY_BIT`: the record is reserved and not yet committed.
pub const RINGBUF_BUSY_BIT: u32 = 1 << 31;
/// `BPF_RINGBUF_DISCARD_BIT`: the record was discarded; skip it.
pub const RINGBUF_DISCARD_BIT: u32 = 1 << 30;
/// `BPF_RINGBUF_HDR_SZ`: bytes of a record header (u32 len, u32 page offset).
pub const RINGBUF_HDR_SZ: u32 = 8;

const RB_OP: &str = "ring buffer";
const PERF_OP: &str = "perf buffer";

/// Acquire-load the `u32` at `offset` of `map` (4-aligned, in bounds).
fn load_acquire_u32(map: &Mmap, offset: usize, op: &'static str) -> Result<u32, SysError> {
    let in_bounds = offset.checked_add(4).is_some_and(|end| end <= map.len());
    if !in_bounds || offset % 4 != 0 {
        return Err(SysError::invalid(
            op,
            format!(
                "u32 at offset {offset} is outside the {}-byte mapping or unaligned",
                map.len()
            ),
        ));
    }
    // SAFETY: the 4 bytes at `offset` are in bounds and 4-aligned (the mapping is
    // page-aligned), live as long as `map`, and the kernel writes them atomically
    // (`smp_store_release` of the header), so an atomic load does not race.
    let atomic = unsafe { AtomicU32::from_ptr(map.as_ptr().add(offset).cast_mut().cast::<u32>()) };
    Ok(atomic.load(Ordering::Acquire))
}

/// Lend `len` bytes of `map` from `offset` to `f`. The caller has checked that
/// the producer will not write them while `f` runs (see the module docs).
fn lend<R>(
    map: &Mmap,
    offset: usize,
    len: usize,
    op: &'static str,
    f: impl FnOnce(&[u8]) -> R,
) -> Result<R, SysError> {
    let in_bounds = offset.checked_add(len).is_some_and(|end| end <= map.len());
    if !in_bounds {
        return Err(SysError::invalid(
            op,
            format!(
                "range {offset}+{len} is outside the {}-byte mapping",
                map.len()
            ),
        ));
    }
    // SAFETY: the range is in bounds of a live, readable mapping that outlives
    // the call. Every caller has established (consumer/producer positions loaded
    // with acquire, header committed) that the range is a published record which
    // the producer does not write until the consumer position passes it, and the
    // consumer position can only move through `&mut` of the owner, which the
    // shared borrow held for `f`'s duration excludes. So the bytes are immutable
    // for the slice's lifetime, which the higher-ranked `f` cannot extend.
    let slice = unsafe { std::slice::from_raw_parts(map.as_ptr().add(offset), len) };
    Ok(f(slice))
}

/// A mapped BPF ring buffer: the consumer page (read-write) and the producer
/// page followed by the data area mapped twice (read-only), so that a record
/// that wraps past the end is contiguous in memory.
#[derive(Debug)]
pub struct RingBufMapping {
    consumer: Mmap,
    producer: Mmap,
    page: usize,
    size: usize,
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
        Ok(RingBufMapping {
            consumer,
            producer,
            page,
            size,
        })
    }

    /// Size of the data area in bytes.
    pub fn data_size(&self) -> usize {
        self.size
    }

    /// The consumer position (bytes consumed since creation), acquire-loaded.
    pub fn consumer_pos(&self) -> Result<u64, SysError> {
        self.consumer.load_acquire_u64(0)
    }

    /// The producer position (bytes reserved since creation), acquire-loaded.
    pub fn producer_pos(&self) -> Result<u64, SysError> {
        self.producer.load_acquire_u64(0)
    }

    /// Publish the consumer position with release ordering: every record
    /// before `pos` may be overwritten from now on.
    pub fn set_consumer_pos(&mut self, pos: u64) -> Result<(), SysError> {
        self.consumer.store_release_u64(0, pos)
    }

    /// Offset in the producer mapping of ring position `pos`.
    fn data_offset(&self, pos: u64) -> usize {
        // The mask keeps the value below `size`, which is a usize.
        self.page + (pos & (self.size as u64 - 1)) as usize
    }

    /// The header word (length and busy/discard bits) of the record at `pos`
    /// (8-aligned), acquire-loaded so that a committed record's bytes are
    /// visible after it.
    pub fn header(&self, pos: u64) -> Result<u32, SysError> {
        if pos % u64::from(RINGBUF_HDR_SZ) != 0 {
            return Err(SysError::invalid(
                RB_OP,
                format!("record position {pos} is not 8-byte aligned"),
            ));
        }
        load_acquire_u32(&self.producer, self.data_offset(pos), RB_OP)
    }

    /// Lend the sample of the committed record at `pos` to `f`, without
    /// copying. Fails unless the record lies between the consumer and producer
    /// positions and its header is committed.
    pub fn with_sample<R>(&self, pos: u64, f: impl FnOnce(&[u8]) -> R) -> Result<R, SysError> {
        let cons = self.consumer_pos()?;
        let prod = self.producer_pos()?;
        let header = self.header(pos)?;
        if header & RINGBUF_BUSY_BIT != 0 {
            return Err(SysError::invalid(
                RB_OP,
                format!("record at {pos} is not committed"),
            ));
        }
        let len = header & !(RINGBUF_BUSY_BIT | RINGBUF_DISCARD_BIT);
        let end = pos
            .checked_add(u64::from(RINGBUF_HDR_SZ) + u64::from(len))
            .ok_or_else(|| SysError::invalid(RB_OP, format!("record at {pos} overflows")))?;
        let published = pos >= cons && end <= prod;
        if !published || u64::from(len) + u64::from(RINGBUF_HDR_SZ) > self.size as u64 {
            return Err(SysError::invalid(
                RB_OP,
                format!(
                    "record {pos}..{end} is outside the unconsumed range {cons}..{prod} \
                     of the {}-byte ring",
                    self.size
                ),
            ));
        }
        let offset = self.data_offset(pos) + RINGBUF_HDR_SZ as usize;
        // The double mapping makes `offset + len` at most page + 2 * size.
        lend(&self.producer, offset, len as usize, RB_OP, f)
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
#[derive(Debug)]
pub struct PerfMapping {
    mmap: Mmap,
    data_offset: usize,
    data_size: usize,
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
        Ok(PerfMapping {
            mmap,
            data_offset,
            data_size,
        })
    }

    /// Size of the data area in bytes (a power of two).
    pub fn data_size(&self) -> usize {
        self.data_size
    }

    /// `data_head`, acquire-loaded: the kernel has written everything before it.
    pub fn head(&self) -> Result<u64, SysError> {
        self.mmap.load_acquire_u64(perf_page::DATA_HEAD)
    }

    /// `data_tail`: what this consumer has released.
    pub fn tail(&self) -> Result<u64, SysError> {
        self.mmap.load_acquire_u64(perf_page::DATA_TAIL)
    }

    /// Publish `data_tail` with release ordering: everything before `tail`
    /// may be overwritten from now on.
    pub fn set_tail(&mut self, tail: u64) -> Result<(), SysError> {
        self.mmap.store_release_u64(perf_page::DATA_TAIL, tail)
    }

    /// Lend the `len` bytes at ring position `pos` to `f`, without copying.
    /// Fails unless they lie between tail and head and do not wrap.
    pub fn with_span<R>(
        &self,
        pos: u64,
        len: usize,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, SysError> {
        let tail = self.tail()?;
        let head = self.head()?;
        let end = pos.checked_add(len as u64);
        let published = pos >= tail
            && end.is_some_and(|end| end <= head)
            && head - tail <= self.data_size as u64;
        let start = (pos & (self.data_size as u64 - 1)) as usize;
        if !published || start + len > self.data_size {
            return Err(SysError::invalid(
                PERF_OP,
                format!(
                    "span {pos}+{len} is outside the unread range {tail}..{head} of the \
                     {}-byte buffer or wraps",
                    self.data_size
                ),
            ));
        }
        lend(&self.mmap, self.data_offset + start, len, PERF_OP, f)
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
