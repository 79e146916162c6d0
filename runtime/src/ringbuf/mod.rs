//! BPF ring buffer consumer (`BPF_MAP_TYPE_RINGBUF`), as libbpf's
//! `ring_buffer__new/poll/consume`.
//!
//! ```no_run
//! # fn demo(events: &skelgen_runtime::map::RingBufMap) -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use skelgen_runtime::ringbuf::RingBuffer;
//!
//! let mut count = 0;
//! let mut rb = RingBuffer::builder()
//!     .add(events, |sample: &[u8]| {
//!         count += sample.len();
//!         0 // non-zero stops consumption and is reported as an error
//!     })
//!     .build()?;
//! rb.poll(Duration::from_millis(100))?;
//! # Ok(()) }
//! ```
//!
//! With one closure type, [`RingBuffer::new`] compiles the walk for it (no
//! box, no dynamic call per sample): `RingBuffer::new(events, |s: &[u8]| 0)?`.
//!
//! Samples are handed to callbacks without copying: the `&[u8]` points into
//! the shared ring. That is sound because the kernel's producer never writes a
//! record between committing its header and the consumer position passing it,
//! and the consumer position is only published after the callback returns; the
//! slice cannot outlive the callback. (The ring is single-consumer: consuming
//! the same map from a second [`RingBuffer`] or process at the same time is not
//! supported, by the kernel or here.) See
//! [`RingBufMapping`].

mod walk;

#[cfg(feature = "tokio")]
mod async_tokio;

#[cfg(feature = "tokio")]
pub use async_tokio::AsyncRingBuffer;

use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::map::RingBufMap;
use crate::sys::{map_flags, Epoll, EpollEvent, RingBufMapping, SysError, EPOLLIN};
use walk::WalkError;

/// What went wrong while setting up or consuming a ring buffer.
#[derive(Debug, thiserror::Error)]
pub enum RingBufError {
    /// A syscall or a checked access to the ring failed.
    #[error("ring buffer `{map}`: {op} failed")]
    Sys {
        /// The map's name.
        map: String,
        /// What was being done.
        op: &'static str,
        /// The cause.
        #[source]
        source: Box<SysError>,
    },
    /// The ring's positions or a record header make no sense (the consumer
    /// page was written by someone else, or the kernel and this code disagree
    /// on the layout).
    #[error("ring buffer `{map}`: record at position {pos} is corrupt: {reason}")]
    Corrupt {
        /// The map's name.
        map: String,
        /// Ring position of the record.
        pos: u64,
        /// What was expected.
        reason: String,
    },
    /// A sample callback returned non-zero: consumption stopped there (that
    /// sample is consumed; the next call resumes after it).
    #[error(
        "ring buffer `{map}`: the sample callback returned {code}, stopping after \
         {consumed} samples"
    )]
    Stopped {
        /// The map whose callback stopped.
        map: String,
        /// What the callback returned.
        code: i32,
        /// Samples delivered by this call, counting the one that stopped it.
        consumed: usize,
    },
    /// The map cannot be consumed by this code.
    #[error("ring buffer `{map}` cannot be consumed: {reason}")]
    Unsupported {
        /// The map's name.
        map: String,
        /// Why, and what was expected.
        reason: String,
    },
    /// `build()` with no map added.
    #[error("ring buffer has no maps: call add() before build()")]
    NoMaps,
    /// Creating or waiting on the epoll instance failed.
    #[error("ring buffer epoll: {op} failed")]
    Epoll {
        /// What was being done.
        op: &'static str,
        /// The cause.
        #[source]
        source: Box<SysError>,
    },
    /// Registering with or waiting on the async runtime failed.
    #[cfg(feature = "tokio")]
    #[error("ring buffer: async readiness ({op}) failed")]
    Async {
        /// What was being done.
        op: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl RingBufError {
    fn from_walk(map: &str, err: WalkError) -> Self {
        let map = map.to_string();
        match err {
            WalkError::Corrupt { pos, reason } => RingBufError::Corrupt { map, pos, reason },
            WalkError::Stopped { code, consumed } => RingBufError::Stopped {
                map,
                code,
                consumed,
            },
        }
    }
}

/// The callback type of [`RingBuffer::builder`]'s rings: boxed, so that each
/// map can have its own closure type. [`RingBuffer::new`] takes the
/// closure's own type instead, and the walk is compiled for it.
pub type SampleCallback<'cb> = Box<dyn FnMut(&[u8]) -> i32 + 'cb>;

/// One map of a [`RingBuffer`].
struct Ring<F> {
    name: String,
    mapping: RingBufMapping,
    callback: F,
    /// Our own reference to the map, registered with epoll.
    fd: OwnedFd,
}

impl<F> std::fmt::Debug for Ring<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("name", &self.name)
            .field("size", &self.mapping.data_size())
            .field("fd", &self.fd)
            .finish_non_exhaustive()
    }
}

impl<F: FnMut(&[u8]) -> i32> Ring<F> {
    #[inline]
    fn consume(&mut self) -> Result<usize, RingBufError> {
        walk::walk(&mut self.mapping.cursor(), &mut self.callback)
            .map_err(|e| RingBufError::from_walk(&self.name, e))
    }
}

/// Builds a [`RingBuffer`] over one or more `RINGBUF` maps.
#[derive(Debug)]
#[must_use = "call build() to get the ring buffer"]
pub struct RingBufferBuilder<'cb> {
    rings: Vec<Ring<SampleCallback<'cb>>>,
    error: Option<RingBufError>,
}

/// Map flags a ring buffer may carry and still be consumed zero-copy: others
/// (say, a future overwrite mode) could let the producer write records the
/// consumer has not passed.
const KNOWN_FLAGS: u32 = map_flags::NUMA_NODE;

fn open_ring<F>(map: &RingBufMap, callback: F) -> Result<Ring<F>, RingBufError> {
    let name = map.name().to_string();
    let flags = map.map_fd().flags();
    if flags & !KNOWN_FLAGS != 0 {
        return Err(RingBufError::Unsupported {
            map: name,
            reason: format!(
                "map flags {flags:#x} include bits other than BPF_F_NUMA_NODE; the \
                 zero-copy consumer relies on the producer never passing the consumer"
            ),
        });
    }
    let size = map.byte_size() as usize;
    let sys_err = |op| {
        let map = name.clone();
        move |source| RingBufError::Sys {
            map,
            op,
            source: Box::new(source),
        }
    };
    let fd = map
        .fd()
        .try_clone_to_owned()
        .map_err(|e| RingBufError::Sys {
            map: name.clone(),
            op: "duplicate the map fd",
            source: Box::new(SysError::Syscall {
                op: "fcntl(F_DUPFD_CLOEXEC)",
                errno: e,
                detail: None,
            }),
        })?;
    let mapping = RingBufMapping::new(&fd, size).map_err(sys_err("map the ring"))?;
    Ok(Ring {
        name,
        mapping,
        callback,
        fd,
    })
}

impl<'cb> RingBufferBuilder<'cb> {
    /// Consume `map` with `callback`, which gets each sample (no copy; the
    /// slice lives only for the call) and returns 0 to go on or anything else
    /// to stop. The map is shared, not taken: the ring buffer keeps its own fd.
    /// Errors surface from [`build`](Self::build).
    pub fn add<F>(mut self, map: &RingBufMap, callback: F) -> Self
    where
        F: FnMut(&[u8]) -> i32 + 'cb,
    {
        if self.error.is_none() {
            match open_ring::<SampleCallback<'cb>>(map, Box::new(callback)) {
                Ok(ring) => self.rings.push(ring),
                Err(e) => self.error = Some(e),
            }
        }
        self
    }

    /// One epoll instance watching every added map.
    pub fn build(self) -> Result<RingBuffer<'cb>, RingBufError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        RingBuffer::from_rings(self.rings)
    }
}

/// A consumer of one or more BPF ring buffers sharing one epoll instance.
///
/// `F` is the sample callback's type: boxed ([`SampleCallback`], the
/// default) when built with [`builder`](RingBuffer::builder), so that maps can
/// have different closures, or the closure's own type with
/// [`new`](RingBuffer::new), which lets the compiler inline it into the walk.
pub struct RingBuffer<'cb, F = SampleCallback<'cb>> {
    rings: Vec<Ring<F>>,
    epoll: Epoll,
    events: Vec<EpollEvent>,
    _callbacks: PhantomData<&'cb ()>,
}

impl<F> std::fmt::Debug for RingBuffer<'_, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingBuffer")
            .field("rings", &self.rings)
            .field("epoll", &self.epoll)
            .finish_non_exhaustive()
    }
}

/// `timeout` in whole milliseconds for epoll, rounded up so that a sub-ms
/// timeout still waits, and capped at `i32::MAX`.
pub(crate) fn timeout_ms(timeout: Duration) -> i32 {
    let ms = timeout.as_nanos().div_ceil(1_000_000);
    i32::try_from(ms).unwrap_or(i32::MAX)
}

impl<'cb> RingBuffer<'cb> {
    /// Start building: `RingBuffer::builder().add(&map, callback).build()`.
    /// Each map may have its own closure (boxed); for one closure type,
    /// [`new`](RingBuffer::new) is faster per sample.
    pub fn builder() -> RingBufferBuilder<'cb> {
        RingBufferBuilder {
            rings: Vec::new(),
            error: None,
        }
    }
}

impl<'cb, F: FnMut(&[u8]) -> i32 + 'cb> RingBuffer<'cb, F> {
    /// Consume `map` with `callback`, whose type the walk is compiled for (no
    /// boxing, no dynamic call per sample). The callback gets each sample (no
    /// copy; the slice lives only for the call) and returns 0 to go on or
    /// anything else to stop. More maps with the same callback type:
    /// [`add`](Self::add).
    pub fn new(map: &RingBufMap, callback: F) -> Result<Self, RingBufError> {
        RingBuffer::from_rings(vec![open_ring(map, callback)?])
    }

    /// Also consume `map`, with a callback of the same type.
    pub fn add(&mut self, map: &RingBufMap, callback: F) -> Result<(), RingBufError> {
        let ring = open_ring(map, callback)?;
        let index = self.rings.len() as u64;
        self.epoll
            .add(&ring.fd, EPOLLIN, index)
            .map_err(|source| RingBufError::Sys {
                map: ring.name.clone(),
                op: "add to epoll",
                source: Box::new(source),
            })?;
        self.rings.push(ring);
        self.events.push(EpollEvent::default());
        Ok(())
    }

    fn from_rings(rings: Vec<Ring<F>>) -> Result<Self, RingBufError> {
        if rings.is_empty() {
            return Err(RingBufError::NoMaps);
        }
        let epoll = Epoll::new().map_err(|source| RingBufError::Epoll {
            op: "epoll_create1",
            source: Box::new(source),
        })?;
        for (index, ring) in rings.iter().enumerate() {
            epoll
                .add(&ring.fd, EPOLLIN, index as u64)
                .map_err(|source| RingBufError::Sys {
                    map: ring.name.clone(),
                    op: "add to epoll",
                    source: Box::new(source),
                })?;
        }
        let events = vec![EpollEvent::default(); rings.len()];
        Ok(RingBuffer {
            rings,
            epoll,
            events,
            _callbacks: PhantomData,
        })
    }

    /// Wait up to `timeout` for samples, then consume the rings that have
    /// them. Returns the number of samples consumed (0 on timeout or an
    /// interrupting signal).
    pub fn poll(&mut self, timeout: Duration) -> Result<usize, RingBufError> {
        let ready = self
            .epoll
            .wait(&mut self.events, timeout_ms(timeout))
            .map_err(|source| RingBufError::Epoll {
                op: "epoll_wait",
                source: Box::new(source),
            })?;
        let mut total = 0;
        for event in self.events.iter().take(ready) {
            let Some(ring) = usize::try_from(event.data)
                .ok()
                .and_then(|i| self.rings.get_mut(i))
            else {
                continue;
            };
            total += ring.consume().map_err(|e| add_consumed(e, total))?;
        }
        Ok(total)
    }

    /// Consume every ring without waiting. Returns the number of samples.
    pub fn consume(&mut self) -> Result<usize, RingBufError> {
        let mut total = 0;
        for ring in &mut self.rings {
            total += ring.consume().map_err(|e| add_consumed(e, total))?;
        }
        Ok(total)
    }

    /// Consume ring `index` (in the order of `add`) without waiting.
    pub fn consume_ring(&mut self, index: usize) -> Result<usize, RingBufError> {
        match self.rings.get_mut(index) {
            Some(ring) => ring.consume(),
            None => Ok(0),
        }
    }

    /// Number of rings.
    pub fn ring_count(&self) -> usize {
        self.rings.len()
    }

    /// The epoll fd, readable when a ring has data: for an event loop of the
    /// caller's, which then calls [`consume`](Self::consume).
    pub fn epoll_fd(&self) -> BorrowedFd<'_> {
        self.epoll.as_fd()
    }

    /// The most a walk could do now over all rings.
    #[cfg(feature = "tokio")]
    pub(crate) fn pending(&mut self) -> Result<walk::Pending, RingBufError> {
        let mut most = walk::Pending::Empty;
        for ring in &mut self.rings {
            let state = walk::pending(&mut ring.mapping.cursor())
                .map_err(|e| RingBufError::from_walk(&ring.name, e))?;
            most = most.max(state);
        }
        Ok(most)
    }
}

/// Count samples consumed from earlier rings into a callback stop.
fn add_consumed(err: RingBufError, earlier: usize) -> RingBufError {
    match err {
        RingBufError::Stopped {
            map,
            code,
            consumed,
        } => RingBufError::Stopped {
            map,
            code,
            consumed: consumed + earlier,
        },
        other => other,
    }
}

impl<F> AsFd for RingBuffer<'_, F> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.epoll.as_fd()
    }
}

impl<F> AsRawFd for RingBuffer<'_, F> {
    fn as_raw_fd(&self) -> RawFd {
        self.epoll.as_fd().as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_round_up_and_saturate() {
        assert_eq!(timeout_ms(Duration::ZERO), 0);
        assert_eq!(timeout_ms(Duration::from_micros(1)), 1);
        assert_eq!(timeout_ms(Duration::from_millis(250)), 250);
        assert_eq!(timeout_ms(Duration::from_secs(u64::MAX)), i32::MAX);
    }
}
