//! The target side: a BTF to relocate against and its candidates by
//! essential name.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::btf::Btf;

use super::names::essential_name;

/// The BTF that programs are relocated against (`/sys/kernel/btf/vmlinux`,
/// a BTFHub file, or a module's split BTF), with the candidate lists
/// computed so far.
///
/// Candidates for a local type are the target types whose essential name
/// (the name without a `___flavor` suffix) equals the local one's. Exact
/// names come from the BTF's own name index; flavored target names (rare:
/// BTFHub-style files) from an index built on first use. Lists are cached
/// by essential name, so one `CoreTarget` serves every program and object
/// relocated against the same BTF, from any thread.
pub struct CoreTarget {
    btf: Arc<Btf>,
    flavored: OnceLock<HashMap<String, Vec<u32>>>,
    cache: Mutex<HashMap<String, Arc<[u32]>>>,
}

impl CoreTarget {
    /// A target over `target`; nothing is indexed until the first lookup.
    pub fn new(target: Arc<Btf>) -> Self {
        CoreTarget {
            btf: target,
            flavored: OnceLock::new(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The target BTF.
    pub fn btf(&self) -> &Btf {
        &self.btf
    }

    /// The target BTF, shared.
    pub fn btf_arc(&self) -> &Arc<Btf> {
        &self.btf
    }

    /// Every named target type whose essential name is `essential`, of any
    /// kind, in id order.
    pub(crate) fn candidates(&self, essential: &str) -> Arc<[u32]> {
        // A poisoned lock only means another thread panicked mid-insert;
        // the map itself is still a valid cache.
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = cache.get(essential) {
            return Arc::clone(c);
        }
        let mut ids: Vec<u32> = self.btf.find_by_name(essential).to_vec();
        if let Some(more) = self.flavored().get(essential) {
            ids.extend_from_slice(more);
            ids.sort_unstable();
            ids.dedup();
        }
        let ids: Arc<[u32]> = ids.into();
        cache.insert(essential.to_owned(), Arc::clone(&ids));
        ids
    }

    fn flavored(&self) -> &HashMap<String, Vec<u32>> {
        self.flavored.get_or_init(|| {
            let mut map: HashMap<String, Vec<u32>> = HashMap::new();
            for id in 1..self.btf.len() {
                let Ok(name) = self.btf.type_name(id) else {
                    continue;
                };
                let essential = essential_name(name);
                if essential.len() != name.len() {
                    map.entry(essential.to_owned()).or_default().push(id);
                }
            }
            map
        })
    }
}

// The loader shares one target between threads.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<CoreTarget>()
};

impl std::fmt::Debug for CoreTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cached = self.cache.lock().map(|c| c.len()).unwrap_or(0);
        f.debug_struct("CoreTarget")
            .field("types", &self.btf.len())
            .field("cached_names", &cached)
            .field("flavored_index_built", &self.flavored.get().is_some())
            .finish()
    }
}
