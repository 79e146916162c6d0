//! Kernel feature probes: each loads or creates the smallest object that needs
//! the feature, closes it, and caches the answer for the process. A probe never
//! panics; any failure means "not supported". Under a [`super::with_fake`] fake
//! the answer is computed but not cached.

use std::os::fd::{AsFd, AsRawFd};
use std::sync::OnceLock;

use super::attr::LinkCreateAttr;
use super::btf_load::btf_load;
use super::gateway::{attr_bytes, bpf_fd, fake_installed, Cmd};
use super::link::attach_type;
use super::map::{map_flags, map_type, MapCreate};
use super::prog::{prog_type, ProgLoad, TestRun};

fn cached(cell: &OnceLock<bool>, probe: fn() -> bool) -> bool {
    if fake_installed() {
        return probe();
    }
    *cell.get_or_init(probe)
}

/// One raw instruction, native byte order (dst in the low nibble on
/// little-endian hosts, as `struct bpf_insn`'s bitfields lay it out).
fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
    #[cfg(target_endian = "little")]
    let regs = (dst & 0xf) | (src << 4);
    #[cfg(target_endian = "big")]
    let regs = (dst << 4) | (src & 0xf);
    let mut out = [0u8; 8];
    out[0] = code;
    out[1] = regs;
    out[2..4].copy_from_slice(&off.to_ne_bytes());
    out[4..8].copy_from_slice(&imm.to_ne_bytes());
    out
}

const MOV64_IMM: u8 = 0xb7;
const EXIT: u8 = 0x95;
const CALL: u8 = 0x85;
const LD_IMM64: u8 = 0x18;
const ST_MEM_DW: u8 = 0x7a;
const PSEUDO_MAP_VALUE: u8 = 2;
const HELPER_GET_ATTACH_COOKIE: i32 = 174;

fn program(insns: &[[u8; 8]]) -> Vec<u8> {
    insns.concat()
}

/// `r0 = 0; exit`.
fn return_zero() -> Vec<u8> {
    program(&[insn(MOV64_IMM, 0, 0, 0, 0), insn(EXIT, 0, 0, 0, 0)])
}

/// Raw BTF from type records and a string section.
fn raw_btf(types: &[u32], strings: &[u8]) -> Vec<u8> {
    let type_len = (types.len() * 4) as u32;
    let header: [u32; 6] = [
        0x0001_eb9f, // magic 0xeb9f, version 1, flags 0 (as u16, u8, u8 in native order)
        24,          // hdr_len
        0,           // type_off
        type_len,
        type_len, // str_off
        strings.len() as u32,
    ];
    let mut out = Vec::new();
    // magic (u16) version (u8) flags (u8)
    out.extend_from_slice(&0xeb9fu16.to_ne_bytes());
    out.push(1);
    out.push(0);
    for word in header.iter().skip(1) {
        out.extend_from_slice(&word.to_ne_bytes());
    }
    for word in types {
        out.extend_from_slice(&word.to_ne_bytes());
    }
    out.extend_from_slice(strings);
    out
}

const KIND_INT: u32 = 1;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;

/// `int` (id 1), `int (void)` (id 2), `static int f(void)` (id 3).
fn btf_with_func() -> Vec<u8> {
    let strings = b"\0int\0f\0";
    raw_btf(
        &[
            1,
            KIND_INT << 24,
            4,
            0x0100_0020, // int: name "int", size 4, signed 32 bits
            0,
            KIND_FUNC_PROTO << 24,
            1, // proto: 0 params, returns type 1
            5,
            KIND_FUNC << 24,
            2, // func "f": static, type 2
        ],
        strings,
    )
}

/// `int` only.
fn btf_int_only() -> Vec<u8> {
    raw_btf(&[1, KIND_INT << 24, 4, 0x0100_0020], b"\0int\0")
}

/// `bpf_func_info { insn_off: 0, type_id: 3 }`.
fn func_info_main() -> Vec<u8> {
    [0u32, 3].iter().flat_map(|w| w.to_ne_bytes()).collect()
}

fn loads(prog_type: u32, insns: &[u8]) -> bool {
    ProgLoad::new(prog_type, insns, "GPL").load().is_ok()
}

/// Program names (`prog_name`, 4.15+).
pub fn prog_name() -> bool {
    static CELL: OnceLock<bool> = OnceLock::new();
    cached(&CELL, || {
        ProgLoad::new(prog_type::SOCKET_FILTER, &return_zero(), "GPL")
            .name("probe_name")
            .load()
            .is_ok()
    })
}

/// Array maps with `BPF_F_MMAPABLE` (5.5+).
pub fn mmapable_arrays() -> bool {
    static CELL: OnceLock<bool> = OnceLock::new();
    cached(&CELL, || {
        MapCreate::new(map_type::ARRAY, 4, 4, 1)
            .flags(map_flags::MMAPABLE)
            .create()
            .is_ok()
    })
}

/// `BPF_MAP_TYPE_RINGBUF` (5.8+).
pub fn ringbuf() -> bool {
    static CELL: OnceLock<bool> = OnceLock::new();
    cached(&CELL, || {
        let size = super::host::page_size() as u32;
        MapCreate::new(map_type::RINGBUF, 0, 0, size)
            .create()
            .is_ok()
    })
}

/// `BPF_BTF_LOAD` (4.18+).
pub fn btf() -> bool {
    static CELL: OnceLock<bool> = OnceLock::new();
    cached(&CELL, || btf_load(&btf_int_only(), 0).is_ok())
}

/// BTF `FUNC`/`FUNC_PROTO` and `func_info` at `BPF_PROG_LOAD` (5.0+).
pub fn btf_func() -> bool {
    static CELL: OnceLock<bool> = OnceLock::new();
    cached(&CELL, || {
        let Ok(btf) = btf_load(&btf_with_func(), 0) else {
            return false;
        };
        let info = func_info_main();
        ProgLoad::new(prog_type::SOCKET_FILTER, &return_zero(), "GPL")
            .prog_btf(btf.as_fd())
            .func_info(&info, 8)
            .load()
            .is_ok()
    })
}

/// Global data: an array map value referenced by `ld_imm64` (`BPF_PSEUDO_MAP_VALUE`, 5.2+).
pub fn global_data() -> bool {
    static CELL: OnceLock<bool> = OnceLock::new();
    cached(&CELL, || {
        let Ok(map) = MapCreate::new(map_type::ARRAY, 4, 32, 1).create() else {
            return false;
        };
        let fd = map.as_fd().as_raw_fd();
        let insns = program(&[
            insn(LD_IMM64, 1, PSEUDO_MAP_VALUE, 0, fd),
            insn(0, 0, 0, 0, 0),
            insn(ST_MEM_DW, 1, 0, 0, 42),
            insn(MOV64_IMM, 0, 0, 0, 0),
            insn(EXIT, 0, 0, 0, 0),
        ]);
        loads(prog_type::SOCKET_FILTER, &insns)
    })
}

/// `BPF_LINK_CREATE` for perf events (5.15+): with a bad target fd, a kernel that
/// knows perf links answers `EBADF`, an older one `EINVAL`.
pub fn perf_link() -> bool {
    static CELL: OnceLock<bool> = OnceLock::new();
    cached(&CELL, || {
        let Ok(prog) = ProgLoad::new(prog_type::TRACEPOINT, &return_zero(), "GPL").load() else {
            return false;
        };
        let mut attr = LinkCreateAttr {
            prog_or_map_fd: prog.fd.as_raw_fd() as u32,
            target_fd_or_ifindex: u32::MAX, // -1
            attach_type: attach_type::PERF_EVENT,
            ..LinkCreateAttr::default()
        };
        match bpf_fd(Cmd::LinkCreate, attr_bytes(&mut attr), None) {
            Ok(_) => true,
            Err(e) => e.raw_os_error() == Some(libc::EBADF),
        }
    })
}

/// The `bpf_get_attach_cookie()` helper for perf-event-based programs (5.15+).
pub fn bpf_cookie() -> bool {
    static CELL: OnceLock<bool> = OnceLock::new();
    cached(&CELL, || {
        let insns = program(&[
            insn(CALL, 0, 0, 0, HELPER_GET_ATTACH_COOKIE),
            insn(MOV64_IMM, 0, 0, 0, 0),
            insn(EXIT, 0, 0, 0, 0),
        ]);
        loads(prog_type::TRACEPOINT, &insns)
    })
}

/// Kernel-side CO-RE: `core_relos` at `BPF_PROG_LOAD` (5.17+). Loads `r0 = 0`
/// with a `BPF_CORE_TYPE_ID_LOCAL` relocation on it; a kernel that applies it
/// makes the program return the local type id (1), which a test run checks.
pub fn kernel_core_relo() -> bool {
    static CELL: OnceLock<bool> = OnceLock::new();
    cached(&CELL, || {
        // "int" at 1, access string "0" at 5, "f" at 7.
        let strings = b"\0int\0\x30\0f\0";
        let btf_bytes = raw_btf(
            &[
                1,
                KIND_INT << 24,
                4,
                0x0100_0020,
                0,
                KIND_FUNC_PROTO << 24,
                1,
                7,
                KIND_FUNC << 24,
                2,
            ],
            strings,
        );
        let Ok(btf) = btf_load(&btf_bytes, 0) else {
            return false;
        };
        const TYPE_ID_LOCAL: u32 = 6;
        let relo: Vec<u8> = [0u32, 1, 5, TYPE_ID_LOCAL]
            .iter()
            .flat_map(|w| w.to_ne_bytes())
            .collect();
        let info = func_info_main();
        let insns = return_zero();
        let Ok(prog) = ProgLoad::new(prog_type::SOCKET_FILTER, &insns, "GPL")
            .prog_btf(btf.as_fd())
            .func_info(&info, 8)
            .core_relos(&relo, 16)
            .load()
        else {
            return false;
        };
        // A socket filter test run needs at least an Ethernet header.
        let packet = [0u8; 64];
        match TestRun::new().data_in(&packet).run(&prog.fd) {
            Ok(out) => out.retval == 1,
            // Accepted but not runnable here: the kernel still knew the fields.
            Err(_) => true,
        }
    })
}

/// Every probe's answer, for diagnostics.
pub fn all() -> Vec<(&'static str, bool)> {
    vec![
        ("prog_name", prog_name()),
        ("mmapable_arrays", mmapable_arrays()),
        ("ringbuf", ringbuf()),
        ("btf", btf()),
        ("btf_func", btf_func()),
        ("global_data", global_data()),
        ("perf_link", perf_link()),
        ("bpf_cookie", bpf_cookie()),
        ("kernel_core_relo", kernel_core_relo()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn btf_header_layout() {
        let b = btf_int_only();
        assert_eq!(&b[..2], &0xeb9fu16.to_ne_bytes());
        assert_eq!(b.len(), 24 + 16 + 5);
    }
}
