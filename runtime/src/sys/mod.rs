//! The syscall layer: the only module of the crate with `unsafe`.
//!
//! - one gateway makes every `bpf(2)` call ([`with_fake`] replaces it in tests),
//!   and one function turns a new raw fd into an [`OwnedFd`](std::os::fd::OwnedFd);
//! - per-command `#[repr(C)]` attr structs (uapi layout) filled by typed
//!   builders: [`MapCreate`], [`ProgLoad`], [`TestRun`], [`LinkCreate`], ...;
//! - fds are `OwnedFd`/`BorrowedFd`, parameters `impl AsFd`; map element
//!   commands live on [`MapFd`], which knows the sizes the kernel will read and
//!   write and checks every buffer against them;
//! - shared mappings ([`Mmap`]), `perf_event_open`, perf ioctls, epoll, rlimit,
//!   possible CPUs and the page size;
//! - cached feature probes in [`probe`].

mod attr;
mod btf_load;
mod epoll;
mod error;
mod gateway;
mod host;
mod info;
mod link;
pub mod link_probe;
mod map;
mod mmap;
mod object;
mod perf;
pub mod probe;
mod prog;
mod ring;
mod socket;

pub use btf_load::btf_load;
pub use epoll::{Epoll, EpollEvent, EPOLLERR, EPOLLHUP, EPOLLIN, EPOLLOUT};
pub use error::SysError;
pub use gateway::{with_fake, Cmd, FakeCall, FakeReturn};
pub use host::{
    bump_memlock_rlimit, memlock_rlimit, num_possible_cpus, online_cpus, page_size, parse_cpu_list,
    possible_cpus, set_memlock_rlimit, MAX_CPU_ID, ONLINE_CPUS_PATH, POSSIBLE_CPUS_PATH,
};
pub use info::{link_type, BtfInfo, LinkInfo, MapInfo, ProgInfo};
pub use link::{
    attach_type, iter_create, link_detach, prog_attach, prog_detach, raw_tracepoint_open,
    AttachTarget, KprobeMulti, LinkCreate, LinkExtra, LinkTarget, UprobeMulti,
};
pub use map::{
    elem_flags, is_percpu, map_flags, map_type, BatchOpts, BatchResult, MapCreate, MapFd,
};
pub use mmap::{Access, KernelFileMap, Mmap};
pub use object::{
    btf_info, btf_name_and_data, get_fd_by_id, get_next_id, link_info, map_info, obj_get, obj_pin,
    prog_info, prog_map_ids, ObjKind,
};
pub use perf::{
    perf_event_disable, perf_event_enable, perf_event_open, perf_event_set_bpf, pmu_retprobe_bit,
    pmu_type, tracepoint_id, PerfEventAttr, PERF_COUNT_SW_BPF_OUTPUT, PERF_COUNT_SW_CPU_CLOCK,
    PERF_FLAG_FD_CLOEXEC, PERF_SAMPLE_RAW, PERF_TYPE_HARDWARE, PERF_TYPE_SOFTWARE,
    PERF_TYPE_TRACEPOINT, TRACEFS_ROOTS,
};
pub use prog::{
    enable_stats, prog_bind_map, prog_type, LoadedProg, ProgLoad, TestRun, TestRunOutput,
    DEFAULT_LOG_SIZE, INSN_SIZE, MAX_LOG_SIZE, STATS_RUN_TIME,
};
#[cfg(feature = "tokio")]
pub use ring::AsyncReadiness;
pub use ring::{
    decode_ringbuf_record, ringbuf_record_size, PerfMapping, RingBufMapping, RingCursor,
    RingPositions, RingRecord, RINGBUF_BUSY_BIT, RINGBUF_DISCARD_BIT, RINGBUF_HDR_SZ,
};
pub use socket::{
    attach_bpf_to_socket, detach_bpf_from_socket, set_tcp_congestion, tcp_congestion,
};
