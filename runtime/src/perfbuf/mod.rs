//! Perf buffer consumer (`BPF_MAP_TYPE_PERF_EVENT_ARRAY` +
//! `bpf_perf_event_output`), as libbpf's `perf_buffer__new/poll`.
//!
//! ```no_run
//! # fn demo(events: &skelgen_runtime::map::PerfEventArrayMap) -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use skelgen_runtime::perfbuf::PerfBuffer;
//!
//! let mut pb = PerfBuffer::builder(events)
//!     .pages(8)
//!     .sample_cb(|cpu, data: &[u8]| println!("cpu {cpu}: {} bytes", data.len()))
//!     .lost_cb(|cpu, count| eprintln!("cpu {cpu}: lost {count} samples"))
//!     .build()?;
//! pb.poll(Duration::from_millis(100))?;
//! # Ok(()) }
//! ```
//!
//! For each online CPU (below the array's size) the builder opens a
//! `PERF_COUNT_SW_BPF_OUTPUT` event with raw samples that wakes the reader on
//! every sample, maps 1 + `pages` pages of it, enables it, stores its fd in the
//! array at the CPU's index (where `bpf_perf_event_output(...,
//! BPF_F_CURRENT_CPU, ...)` finds it) and watches it with epoll. Dropping the
//! [`PerfBuffer`] removes those array slots again. Samples are lent to the
//! callback in place when contiguous; those that wrap around the end of the
//! buffer are first copied into a scratch buffer.

mod records;

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::map::PerfEventArrayMap;
use crate::ringbuf::timeout_ms;
use crate::sys::{self, Epoll, EpollEvent, MapFd, PerfEventAttr, PerfMapping, SysError, EPOLLIN};
use records::{Event, ReadError};

/// Data pages per CPU unless [`PerfBufferBuilder::pages`] says otherwise
/// (256 KiB with 4 KiB pages).
pub const DEFAULT_PAGES: usize = 64;

fn cpu_note(cpu: &Option<u32>) -> String {
    cpu.map(|c| format!(" (cpu {c})")).unwrap_or_default()
}

/// What went wrong while setting up or reading a perf buffer.
#[derive(Debug, thiserror::Error)]
pub enum PerfBufError {
    /// A syscall or a checked access to a buffer failed.
    #[error("perf buffer `{map}`{}: {op} failed", cpu_note(cpu))]
    Sys {
        /// The perf event array's name.
        map: String,
        /// The CPU whose buffer it was, if one.
        cpu: Option<u32>,
        /// What was being done.
        op: &'static str,
        /// The cause.
        #[source]
        source: Box<SysError>,
    },
    /// A buffer's positions or a record make no sense.
    #[error("perf buffer `{map}` (cpu {cpu}): record at position {pos} is corrupt: {reason}")]
    Corrupt {
        /// The perf event array's name.
        map: String,
        /// The CPU whose buffer it was.
        cpu: u32,
        /// Ring position of the record.
        pos: u64,
        /// What was expected.
        reason: String,
    },
    /// The page count is not a power of two (the kernel requires one).
    #[error("perf buffer `{map}`: {pages} pages per CPU is not a power of two")]
    InvalidPages {
        /// The perf event array's name.
        map: String,
        /// The count given.
        pages: usize,
    },
    /// No CPU is both online and below the array's size.
    #[error("perf buffer `{map}`: no online CPU below its {slots} slots")]
    NoCpus {
        /// The perf event array's name.
        map: String,
        /// The array's size.
        slots: u32,
    },
}

type SampleCallback<'cb> = Box<dyn FnMut(u32, &[u8]) + 'cb>;
type LostCallback<'cb> = Box<dyn FnMut(u32, u64) + 'cb>;

/// Builds a [`PerfBuffer`] over a perf event array.
#[must_use = "call build() to get the perf buffer"]
pub struct PerfBufferBuilder<'m, 'cb> {
    map: &'m PerfEventArrayMap,
    pages: usize,
    sample_cb: Option<SampleCallback<'cb>>,
    lost_cb: Option<LostCallback<'cb>>,
}

impl std::fmt::Debug for PerfBufferBuilder<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerfBufferBuilder")
            .field("map", &self.map.name())
            .field("pages", &self.pages)
            .finish_non_exhaustive()
    }
}

impl<'cb> PerfBufferBuilder<'_, 'cb> {
    /// Data pages per CPU: a power of two ([`DEFAULT_PAGES`] by default).
    pub fn pages(mut self, pages: usize) -> Self {
        self.pages = pages;
        self
    }

    /// Called with the CPU and the raw data of each sample (lent, not copied,
    /// unless it wrapped; valid for the call only). As with libbpf, the data
    /// includes the kernel's padding: its length plus the 4-byte size before
    /// it is a multiple of 8 (a 16-byte struct arrives as 20 bytes).
    pub fn sample_cb<F>(mut self, callback: F) -> Self
    where
        F: FnMut(u32, &[u8]) + 'cb,
    {
        self.sample_cb = Some(Box::new(callback));
        self
    }

    /// Called with the CPU and a count when the kernel reports samples it
    /// dropped because that CPU's buffer was full.
    pub fn lost_cb<F>(mut self, callback: F) -> Self
    where
        F: FnMut(u32, u64) + 'cb,
    {
        self.lost_cb = Some(Box::new(callback));
        self
    }

    /// Open, map, enable and register one buffer per online CPU.
    pub fn build(self) -> Result<PerfBuffer<'cb>, PerfBufError> {
        let name = self.map.name().to_string();
        let sys_err = |cpu: Option<u32>, op: &'static str| {
            let map = name.clone();
            move |source| PerfBufError::Sys {
                map,
                cpu,
                op,
                source: Box::new(source),
            }
        };
        if !self.pages.is_power_of_two() {
            return Err(PerfBufError::InvalidPages {
                map: name,
                pages: self.pages,
            });
        }
        let slots = self.map.len();
        let cpus: Vec<u32> = sys::online_cpus()
            .map_err(sys_err(None, "read the online CPUs"))?
            .into_iter()
            .filter(|&cpu| cpu < slots)
            .collect();
        if cpus.is_empty() {
            return Err(PerfBufError::NoCpus { map: name, slots });
        }
        let map_fd = self
            .map
            .fd()
            .try_clone_to_owned()
            .map_err(|errno| SysError::Syscall {
                op: "fcntl(F_DUPFD_CLOEXEC)",
                errno,
                detail: None,
            })
            .and_then(MapFd::from_fd)
            .map_err(sys_err(None, "duplicate the map fd"))?;
        let epoll = Epoll::new().map_err(sys_err(None, "create the epoll instance"))?;
        // Built in place so that Drop clears the slots already set if a later
        // CPU fails.
        let mut pb = PerfBuffer {
            name: name.clone(),
            map: map_fd,
            buffers: Vec::with_capacity(cpus.len()),
            epoll,
            events: vec![EpollEvent::default(); cpus.len()],
            scratch: Vec::new(),
            sample_cb: self.sample_cb,
            lost_cb: self.lost_cb,
        };
        let attr = PerfEventAttr::bpf_output(1);
        for cpu in cpus {
            let cpu_i32 = i32::try_from(cpu).unwrap_or(i32::MAX);
            let event = sys::perf_event_open(&attr, -1, cpu_i32, None, 0)
                .map_err(sys_err(Some(cpu), "perf_event_open"))?;
            let ring = PerfMapping::new(&event, self.pages)
                .map_err(sys_err(Some(cpu), "map the buffer"))?;
            sys::perf_event_enable(&event).map_err(sys_err(Some(cpu), "enable the event"))?;
            pb.map
                .update(
                    &cpu.to_ne_bytes(),
                    &(event.as_raw_fd() as u32).to_ne_bytes(),
                    0,
                )
                .map_err(sys_err(Some(cpu), "store the event in the array"))?;
            let index = pb.buffers.len() as u64;
            pb.buffers.push(CpuBuffer { cpu, ring, event });
            if let Some(buf) = pb.buffers.last() {
                pb.epoll
                    .add(&buf.event, EPOLLIN, index)
                    .map_err(sys_err(Some(cpu), "add to epoll"))?;
            }
        }
        Ok(pb)
    }
}

/// One CPU's buffer.
#[derive(Debug)]
struct CpuBuffer {
    cpu: u32,
    ring: PerfMapping,
    event: OwnedFd,
}

/// A reader of per-CPU perf buffers sharing one epoll instance.
pub struct PerfBuffer<'cb> {
    name: String,
    map: MapFd,
    buffers: Vec<CpuBuffer>,
    epoll: Epoll,
    events: Vec<EpollEvent>,
    scratch: Vec<u8>,
    sample_cb: Option<SampleCallback<'cb>>,
    lost_cb: Option<LostCallback<'cb>>,
}

impl std::fmt::Debug for PerfBuffer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerfBuffer")
            .field("map", &self.name)
            .field("buffers", &self.buffers)
            .field("epoll", &self.epoll)
            .finish_non_exhaustive()
    }
}

impl<'cb> PerfBuffer<'cb> {
    /// Start building over `map`.
    pub fn builder(map: &PerfEventArrayMap) -> PerfBufferBuilder<'_, 'cb> {
        PerfBufferBuilder {
            map,
            pages: DEFAULT_PAGES,
            sample_cb: None,
            lost_cb: None,
        }
    }

    /// Wait up to `timeout` for data, then read the buffers that have some.
    /// Returns the number of samples handed to the sample callback (0 on
    /// timeout or an interrupting signal).
    pub fn poll(&mut self, timeout: Duration) -> Result<usize, PerfBufError> {
        let ready = self
            .epoll
            .wait(&mut self.events, timeout_ms(timeout))
            .map_err(|source| PerfBufError::Sys {
                map: self.name.clone(),
                cpu: None,
                op: "epoll_wait",
                source: Box::new(source),
            })?;
        let mut total = 0;
        for i in 0..ready {
            let index = self.events.get(i).map(|e| e.data);
            if let Some(index) = index.and_then(|d| usize::try_from(d).ok()) {
                total += self.consume_buffer(index)?;
            }
        }
        Ok(total)
    }

    /// Read every buffer without waiting; the number of samples.
    pub fn consume(&mut self) -> Result<usize, PerfBufError> {
        let mut total = 0;
        for index in 0..self.buffers.len() {
            total += self.consume_buffer(index)?;
        }
        Ok(total)
    }

    /// Read buffer `index` (see [`buffer_cpu`](Self::buffer_cpu)) without
    /// waiting; the number of samples.
    pub fn consume_buffer(&mut self, index: usize) -> Result<usize, PerfBufError> {
        let PerfBuffer {
            name,
            buffers,
            scratch,
            sample_cb,
            lost_cb,
            ..
        } = self;
        let Some(buf) = buffers.get_mut(index) else {
            return Ok(0);
        };
        let cpu = buf.cpu;
        let name = &*name;
        // The callback taken out of its Option once, not per sample.
        let mut ignore = |_: u32, _: &[u8]| {};
        let on_sample: &mut dyn FnMut(u32, &[u8]) = match sample_cb {
            Some(cb) => &mut **cb,
            None => &mut ignore,
        };
        let mut handler = move |event: Event<'_>| match event {
            Event::Sample(data) => on_sample(cpu, data),
            Event::Lost { count } => {
                if let Some(cb) = lost_cb.as_mut() {
                    cb(cpu, count);
                }
            }
            Event::Other { kind } => {
                log::debug!("perf buffer `{name}` cpu {cpu}: skipped record type {kind}");
            }
        };
        records::drain(&mut buf.ring, scratch, &mut handler).map_err(|ReadError { pos, reason }| {
            PerfBufError::Corrupt {
                map: name.to_string(),
                cpu,
                pos,
                reason,
            }
        })
    }

    /// Number of per-CPU buffers.
    pub fn buffer_count(&self) -> usize {
        self.buffers.len()
    }

    /// The CPU of buffer `index`.
    pub fn buffer_cpu(&self, index: usize) -> Option<u32> {
        self.buffers.get(index).map(|b| b.cpu)
    }

    /// The perf event fd of buffer `index` (e.g. for an event loop of the
    /// caller's watching one CPU).
    pub fn buffer_fd(&self, index: usize) -> Option<BorrowedFd<'_>> {
        self.buffers.get(index).map(|b| b.event.as_fd())
    }

    /// The epoll fd, readable when a buffer has data: for an event loop of the
    /// caller's, which then calls [`consume`](Self::consume).
    pub fn epoll_fd(&self) -> BorrowedFd<'_> {
        self.epoll.as_fd()
    }
}

impl AsFd for PerfBuffer<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.epoll.as_fd()
    }
}

impl AsRawFd for PerfBuffer<'_> {
    fn as_raw_fd(&self) -> RawFd {
        self.epoll.as_fd().as_raw_fd()
    }
}

impl Drop for PerfBuffer<'_> {
    fn drop(&mut self) {
        // The array holds its own reference to each event: without this the
        // events (and their buffers) would live as long as the map.
        for buf in &self.buffers {
            if let Err(e) = self.map.delete(&buf.cpu.to_ne_bytes()) {
                log::warn!(
                    "perf buffer `{}`: clearing slot {} failed: {e}",
                    self.name,
                    buf.cpu
                );
            }
        }
    }
}
