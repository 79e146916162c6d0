//! Commands on any BPF object: pinning, ids, fds by id, and info by fd.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::attr::{IdAttr, InfoAttr, ObjAttr};
use super::gateway::{attr_bytes, bpf_fd, bpf_value, Attr, Cmd};
use super::info::{BtfInfo, LinkInfo, MapInfo, ProgInfo};
use super::SysError;

fn path_cstring(op: &'static str, path: &Path) -> Result<CString, SysError> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| SysError::invalid(op, format!("path {} contains a NUL byte", path.display())))
}

/// `BPF_OBJ_PIN`: pin the map, program, link or BTF `fd` at `path` on a bpffs.
pub fn obj_pin(fd: impl AsFd, path: &Path) -> Result<(), SysError> {
    let op = Cmd::ObjPin.as_str();
    let name = path_cstring(op, path)?;
    let mut attr = ObjAttr {
        pathname: name.as_ptr() as u64,
        bpf_fd: fd.as_fd().as_raw_fd() as u32,
        ..ObjAttr::default()
    };
    bpf_value(Cmd::ObjPin, attr_bytes(&mut attr), None)
        .map(drop)
        .map_err(|errno| SysError::from_errno(op, errno, Some(format!("path {}", path.display()))))
}

/// `BPF_OBJ_GET`: open the object pinned at `path`; `file_flags` is 0,
/// `BPF_F_RDONLY` (1 << 3) or `BPF_F_WRONLY` (1 << 4).
pub fn obj_get(path: &Path, file_flags: u32) -> Result<OwnedFd, SysError> {
    let op = Cmd::ObjGet.as_str();
    let name = path_cstring(op, path)?;
    let mut attr = ObjAttr {
        pathname: name.as_ptr() as u64,
        file_flags,
        ..ObjAttr::default()
    };
    bpf_fd(Cmd::ObjGet, attr_bytes(&mut attr), None)
        .map_err(|errno| SysError::from_errno(op, errno, Some(format!("path {}", path.display()))))
}

/// Which kind of object an id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjKind {
    /// A program.
    Prog,
    /// A map.
    Map,
    /// A link.
    Link,
    /// A BTF object.
    Btf,
}

impl ObjKind {
    fn next_id_cmd(self) -> Cmd {
        match self {
            ObjKind::Prog => Cmd::ProgGetNextId,
            ObjKind::Map => Cmd::MapGetNextId,
            ObjKind::Link => Cmd::LinkGetNextId,
            ObjKind::Btf => Cmd::BtfGetNextId,
        }
    }
    fn fd_by_id_cmd(self) -> Cmd {
        match self {
            ObjKind::Prog => Cmd::ProgGetFdById,
            ObjKind::Map => Cmd::MapGetFdById,
            ObjKind::Link => Cmd::LinkGetFdById,
            ObjKind::Btf => Cmd::BtfGetFdById,
        }
    }
}

/// `BPF_{PROG,MAP,LINK,BTF}_GET_NEXT_ID`: the first id above `start` (0 for the
/// first); `Ok(None)` past the last.
pub fn get_next_id(kind: ObjKind, start: u32) -> Result<Option<u32>, SysError> {
    let cmd = kind.next_id_cmd();
    let mut attr = IdAttr {
        start_or_object_id: start,
        ..IdAttr::default()
    };
    match bpf_value(cmd, attr_bytes(&mut attr), None) {
        Ok(_) => Ok(Some(attr.next_id)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(errno) => Err(SysError::from_errno(cmd.as_str(), errno, None)),
    }
}

/// `BPF_{PROG,MAP,LINK,BTF}_GET_FD_BY_ID`; `open_flags` as for [`obj_get`]
/// (maps only; 0 otherwise).
pub fn get_fd_by_id(kind: ObjKind, id: u32, open_flags: u32) -> Result<OwnedFd, SysError> {
    let cmd = kind.fd_by_id_cmd();
    let mut attr = IdAttr {
        start_or_object_id: id,
        open_flags,
        ..IdAttr::default()
    };
    bpf_fd(cmd, attr_bytes(&mut attr), None)
        .map_err(|errno| SysError::from_errno(cmd.as_str(), errno, Some(format!("id {id}"))))
}

/// `BPF_OBJ_GET_INFO_BY_FD` into a zeroed `T`, which has no user pointers set, so
/// the kernel writes nothing but `T` itself.
fn info_by_fd<T: Attr + Default>(fd: impl AsFd, what: &str) -> Result<T, SysError> {
    let mut info = T::default();
    info_by_fd_into(fd.as_fd().as_raw_fd(), &mut info, what)?;
    Ok(info)
}

fn info_by_fd_into<T: Attr>(fd: i32, info: &mut T, what: &str) -> Result<(), SysError> {
    let bytes = attr_bytes(info);
    let mut attr = InfoAttr {
        bpf_fd: fd as u32,
        info_len: bytes.len() as u32,
        info: bytes.as_mut_ptr() as u64,
    };
    bpf_value(Cmd::ObjGetInfoByFd, attr_bytes(&mut attr), None)
        .map(drop)
        .map_err(|errno| {
            SysError::from_errno(Cmd::ObjGetInfoByFd.as_str(), errno, Some(what.to_string()))
        })
}

/// Info about a map.
pub fn map_info(fd: impl AsFd) -> Result<MapInfo, SysError> {
    info_by_fd(fd, "map info")
}

/// Info about a program (no arrays requested).
pub fn prog_info(fd: impl AsFd) -> Result<ProgInfo, SysError> {
    info_by_fd(fd, "program info")
}

/// Info about a link (names of raw tracepoints and iterators not requested).
pub fn link_info(fd: impl AsFd) -> Result<LinkInfo, SysError> {
    info_by_fd(fd, "link info")
}

/// Info about a BTF object (no raw data, no name).
pub fn btf_info(fd: impl AsFd) -> Result<BtfInfo, SysError> {
    info_by_fd(fd, "BTF info")
}

/// The ids of the maps a program uses.
pub fn prog_map_ids(fd: impl AsFd) -> Result<Vec<u32>, SysError> {
    let raw = fd.as_fd().as_raw_fd();
    let first: ProgInfo = info_by_fd(fd.as_fd(), "program info")?;
    let mut ids = vec![0u32; first.nr_map_ids as usize];
    if ids.is_empty() {
        return Ok(ids);
    }
    let mut info = ProgInfo {
        nr_map_ids: first.nr_map_ids,
        map_ids: ids.as_mut_ptr() as u64,
        ..ProgInfo::default()
    };
    // The kernel writes at most `nr_map_ids` u32s to `map_ids`: exactly `ids`.
    info_by_fd_into(raw, &mut info, "program map ids")?;
    ids.truncate(info.nr_map_ids.min(first.nr_map_ids) as usize);
    Ok(ids)
}

/// The name of a BTF object (`"vmlinux"`, a module name, or empty for program BTF)
/// and its raw bytes.
pub fn btf_name_and_data(fd: impl AsFd) -> Result<(String, Vec<u8>), SysError> {
    let raw = fd.as_fd().as_raw_fd();
    let first: BtfInfo = info_by_fd(fd.as_fd(), "BTF info")?;
    let mut data = vec![0u8; first.btf_size as usize];
    let mut name = vec![0u8; 64];
    let mut info = BtfInfo {
        btf: super::attr::mut_ptr_of(&mut data),
        btf_size: data.len() as u32,
        name: name.as_mut_ptr() as u64,
        name_len: name.len() as u32,
        ..BtfInfo::default()
    };
    // The kernel writes at most `btf_size` bytes to `btf` and `name_len` to `name`.
    info_by_fd_into(raw, &mut info, "BTF data")?;
    data.truncate(info.btf_size as usize);
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    name.truncate(end);
    Ok((String::from_utf8_lossy(&name).into_owned(), data))
}
