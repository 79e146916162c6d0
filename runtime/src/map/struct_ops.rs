//! [`StructOpsMap`]: a loaded struct_ops map, holding the kernel value the
//! loader prepared, registered with [`register`](StructOpsMap::register).

use std::os::fd::{AsFd, BorrowedFd};

use super::MapError;
use crate::attach::{AttachError, Link};
use crate::loader::StructOpsValue;
use crate::sys::{self, LinkCreate, LinkTarget, MapFd};

/// `BPF_STRUCT_OPS`, the attach type of a struct_ops link.
const BPF_STRUCT_OPS: u32 = 44;
/// `enum bpf_map_type`'s `BPF_MAP_TYPE_STRUCT_OPS`.
const STRUCT_OPS: u32 = 26;

/// A struct_ops map (`SEC(".struct_ops")` or `SEC(".struct_ops.link")`)
/// after load: its value (the kernel's struct, with program fds in its
/// function pointers) is ready; [`register`](StructOpsMap::register) hands it
/// to the kernel, and the returned [`Link`] unregisters it when dropped.
#[derive(Debug)]
pub struct StructOpsMap {
    fd: MapFd,
    name: String,
    value: StructOpsValue,
}

impl StructOpsMap {
    /// Wraps `fd` of a struct_ops map with its prepared `value`
    /// ([`LoadedObject::struct_ops_value`](crate::loader::LoadedObject::struct_ops_value)).
    pub fn new(fd: MapFd, name: &str, value: Option<&StructOpsValue>) -> Result<Self, MapError> {
        if fd.map_type() != STRUCT_OPS {
            return Err(MapError::WrongType {
                map: name.into(),
                handle: "StructOpsMap",
                actual: crate::obj::MapType(fd.map_type()).to_string(),
                expected: "a STRUCT_OPS map",
            });
        }
        let value = value.cloned().ok_or_else(|| MapError::InvalidArgument {
            map: name.into(),
            op: "StructOpsMap::new",
            reason: "the loader prepared no struct_ops value for this map".into(),
        })?;
        let len = value.value.len();
        if len != fd.value_size() as usize {
            return Err(MapError::SizeMismatch {
                map: name.into(),
                handle: "StructOpsMap",
                rust_key: 4,
                rust_value: len,
                key_size: fd.key_size(),
                value_size: fd.value_size(),
            });
        }
        Ok(StructOpsMap {
            fd,
            name: name.into(),
            value,
        })
    }

    /// The map's name (the C variable's).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The map fd.
    pub fn map_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The kernel struct this map implements (`tcp_congestion_ops`).
    pub fn type_name(&self) -> &str {
        &self.value.type_name
    }

    /// Whether it registers through a BPF link (`.struct_ops.link`).
    pub fn uses_link(&self) -> bool {
        self.value.link
    }

    /// The value registration writes: the kernel's
    /// `bpf_struct_ops_<type>` struct, data members copied from the object
    /// (and the settings made before load), function pointers holding the
    /// programs' fds.
    pub fn kernel_value(&self) -> &[u8] {
        &self.value.value
    }

    /// Registers the struct_ops with the kernel, as libbpf's
    /// `bpf_map__attach_struct_ops`: the value is written to key 0 (for a
    /// `.struct_ops` map this registers it: a TCP congestion control becomes
    /// selectable by name), then, for a `.struct_ops.link` map, a
    /// `BPF_LINK_CREATE` registers it. Dropping the returned link
    /// unregisters it (closing the link, or deleting key 0).
    ///
    /// The kernel writes a struct_ops value once: a second registration of
    /// a `.struct_ops` map fails with `EBUSY`, while a `.struct_ops.link` map
    /// can back a new link after the first is gone.
    pub fn register(&self) -> Result<Link, AttachError> {
        let err = |op, source| AttachError::StructOps {
            map: self.name.clone(),
            type_name: self.value.type_name.clone(),
            op,
            source: Box::new(source),
        };
        let key = 0u32.to_le_bytes();
        match self.fd.update(&key, &self.value.value, 0) {
            Ok(()) => {}
            // A link map keeps the value it was given first: already set.
            Err(e) if self.value.link && e.errno() == Some(libc::EBUSY) => {}
            // The kernel keeps a registered (or once registered) value.
            Err(e) if e.errno() == Some(libc::EBUSY) => {
                return Err(err(
                    "BPF_MAP_UPDATE_ELEM of key 0: the map was registered before, and a \
                     .struct_ops map registers once; load the object again to register anew",
                    e,
                ))
            }
            Err(e) => return Err(err("BPF_MAP_UPDATE_ELEM of key 0 with the struct", e)),
        }
        let dup = self.fd.as_fd().try_clone_to_owned().map_err(|e| {
            err(
                "duplicating the map fd",
                sys::SysError::from_errno("dup", e, None),
            )
        })?;
        let map = MapFd::from_fd(dup).map_err(|e| err("reading the map's info", e))?;
        if !self.value.link {
            return Ok(Link::struct_ops(None, map));
        }
        let link = LinkCreate::new(self.fd.as_fd(), LinkTarget::None, BPF_STRUCT_OPS)
            .create()
            .map_err(|e| err("BPF_LINK_CREATE (BPF_STRUCT_OPS) on the map", e))?;
        Ok(Link::struct_ops(Some(link), map))
    }
}
