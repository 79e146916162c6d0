//! `BPF_MAP_CREATE` for each map, with libbpf's adjustments (ring buffer
//! sizes, perf event arrays sized to the possible CPUs, BTF retried
//! without), inner map templates, pinning, and global data initialised,
//! frozen and mapped.

use std::os::fd::{AsFd, OwnedFd};

use log::debug;

use super::{LoadError, LoadedMap, MapSettings};
use crate::image::AlignedBuf;
use crate::obj::{DataKind, Map, MapDef, MapType, BPF_F_MMAPABLE};
use crate::sys::{self, Access, MapCreate, MapFd, Mmap, SysError};

fn map_err(map: &str, what: impl Into<String>) -> impl FnOnce(SysError) -> LoadError + '_ {
    let what = what.into();
    move |source| LoadError::Map {
        map: map.to_string(),
        what,
        source: Box::new(source),
    }
}

/// Ring buffer sizes must be a power-of-two multiple of the page size: the
/// smallest such size at least as large as asked, as libbpf rounds it.
pub(crate) fn ringbuf_size(asked: u32) -> u32 {
    let page = sys::page_size() as u64;
    let mut size = page;
    while size < u64::from(asked) && size <= u64::from(u32::MAX) / 2 {
        size *= 2;
    }
    u32::try_from(size).unwrap_or(u32::MAX)
}

fn create_one(
    name: &str,
    kernel_name: &str,
    def: &MapDef,
    s: Option<&MapSettings>,
    inner: Option<&MapFd>,
    btf: Option<&OwnedFd>,
) -> Result<MapFd, LoadError> {
    let map_type = s.map_or(def.map_type, |s| s.map_type);
    let mut key_size = s.map_or(def.key_size, |s| s.key_size);
    let mut value_size = s.map_or(def.value_size, |s| s.value_size);
    let mut max_entries = s.map_or(def.max_entries, |s| s.max_entries);
    let flags = s.map_or(def.map_flags, |s| s.map_flags);
    let numa = s.map_or(def.numa_node, |s| s.numa_node);
    let mut btf_ids = (def.btf_key_type_id, def.btf_value_type_id);
    if map_type != def.map_type {
        // A changed type (ringbuf -> perf buffer) invalidates the BTF types.
        btf_ids = (0, 0);
    }
    match map_type {
        MapType::PERF_EVENT_ARRAY => {
            if max_entries == 0 {
                max_entries = sys::num_possible_cpus()
                    .map_err(map_err(name, "counting possible CPUs"))?
                    as u32;
            }
            key_size = 4;
            value_size = 4;
            btf_ids = (0, 0);
        }
        MapType::RINGBUF | MapType::USER_RINGBUF => {
            max_entries = ringbuf_size(max_entries);
            key_size = 0;
            value_size = 0;
            btf_ids = (0, 0);
        }
        MapType::PROG_ARRAY | MapType::ARRAY_OF_MAPS | MapType::HASH_OF_MAPS => btf_ids = (0, 0),
        _ => {}
    }
    if value_size != def.value_size {
        btf_ids.1 = 0;
    }
    if key_size != def.key_size {
        btf_ids.0 = 0;
    }
    let base = || {
        let mut c = MapCreate::new(map_type.0, key_size, value_size, max_entries)
            .flags(flags)
            .name(kernel_name)
            .map_extra(def.map_extra);
        if numa != 0 {
            c = c.numa_node(numa);
        }
        if let Some(inner) = inner {
            c = c.inner_map(inner.as_fd());
        }
        c
    };
    let with_btf = match btf {
        Some(b) if btf_ids != (0, 0) => Some(base().btf(b.as_fd(), btf_ids.0, btf_ids.1).create()),
        _ => None,
    };
    let fd = match with_btf {
        Some(Ok(fd)) => fd,
        Some(Err(e)) => {
            debug!("map '{name}': create with BTF failed ({e}), retrying without BTF");
            base().create().map_err(map_err(name, "BPF_MAP_CREATE"))?
        }
        None => base().create().map_err(map_err(name, "BPF_MAP_CREATE"))?,
    };
    debug!(
        "map '{name}' ({kernel_name}): created: type {map_type}, key {key_size}, value {value_size}, max_entries {max_entries}, flags {flags:#x}"
    );
    Ok(fd)
}

/// Whether a pinned map can be reused for `def` as set.
fn compatible(fd: &MapFd, s: &MapSettings) -> bool {
    fd.map_type() == s.map_type.0
        && fd.key_size() == s.key_size
        && fd.value_size() == s.value_size
        && fd.max_entries() == s.max_entries
        && fd.flags() == s.map_flags
}

pub(crate) fn create(
    m: &Map,
    s: &MapSettings,
    image: Option<&AlignedBuf>,
    btf: Option<&OwnedFd>,
) -> Result<LoadedMap, LoadError> {
    if let Some(path) = &s.pin_path {
        if path.exists() {
            let fd = sys::obj_get(path, 0)
                .map_err(map_err(&m.name, format!("opening pin {}", path.display())))?;
            let fd =
                MapFd::from_fd(fd).map_err(map_err(&m.name, "reading the pinned map's info"))?;
            if !compatible(&fd, s) {
                return Err(LoadError::MapSetting {
                    map: m.name.clone(),
                    reason: format!(
                        "pinned map at {} is incompatible (type {}, key {}, value {}, max_entries {}, flags {:#x})",
                        path.display(),
                        fd.map_type(),
                        fd.key_size(),
                        fd.value_size(),
                        fd.max_entries(),
                        fd.flags()
                    ),
                });
            }
            debug!("map '{}': reusing pinned map at {}", m.name, path.display());
            return Ok(LoadedMap { fd, mmap: None });
        }
    }
    let inner = match &m.inner {
        Some(i) => Some(create_one(
            &i.name,
            &i.kernel_name,
            &i.def,
            None,
            None,
            btf,
        )?),
        None => None,
    };
    let fd = create_one(
        &m.name,
        &m.kernel_name,
        &m.def,
        Some(s),
        inner.as_ref(),
        btf,
    )?;
    drop(inner);

    let mut mmap = None;
    if let (Some(kind), Some(image)) = (m.data_kind(), image) {
        let key = 0u32.to_le_bytes();
        fd.update(&key, image.as_bytes(), 0)
            .map_err(map_err(&m.name, "writing the initial image"))?;
        let frozen = matches!(kind, DataKind::Rodata | DataKind::Kconfig);
        if frozen {
            fd.freeze().map_err(map_err(&m.name, "BPF_MAP_FREEZE"))?;
        }
        if s.map_flags & BPF_F_MMAPABLE != 0 {
            let page = sys::page_size();
            let len = (s.value_size as usize).div_ceil(page) * page;
            let access = if frozen {
                Access::Read
            } else {
                Access::ReadWrite
            };
            mmap = Some(
                Mmap::new(&fd, len, 0, access).map_err(map_err(&m.name, "mmap of the value"))?,
            );
        }
    }
    if let Some(path) = &s.pin_path {
        sys::obj_pin(&fd, path)
            .map_err(map_err(&m.name, format!("pinning at {}", path.display())))?;
    }
    Ok(LoadedMap { fd, mmap })
}

#[cfg(test)]
mod tests {
    #[test]
    fn ringbuf_sizes_round_like_libbpf() {
        let page = crate::sys::page_size() as u32;
        assert_eq!(super::ringbuf_size(0), page);
        assert_eq!(super::ringbuf_size(page), page);
        assert_eq!(super::ringbuf_size(page + 1), 2 * page);
        assert_eq!(super::ringbuf_size(3 * page), 4 * page);
        assert_eq!(super::ringbuf_size(256 * 1024), 256 * 1024);
    }
}
