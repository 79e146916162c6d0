//! Typed map handles and global-data views on the real kernel (root only), plus
//! construction checks against the fake gateway (anywhere).
//!
//! Kernel tests print a reason and return when not root, unless
//! `SKELGEN_REQUIRE_KERNEL=1`, which turns the skip into a failure.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};

use skelgen_runtime::map::{
    BatchCursor, DataMap, FrozenData, Map, MapError, MapOfMaps, PerCpuMap, PerfEventArrayMap,
    ProgArray, Queue, RingBufMap, Stack, StackTraceMap, UntypedMap, UpdateFlags,
};
use skelgen_runtime::sys::{
    self, map_flags, map_type, prog_type, Access, FakeReturn, MapCreate, MapFd, Mmap, ProgLoad,
};
use skelgen_test_support::kernel;

// ---------------------------------------------------------------------------
// Helpers

fn create(t: u32, key: u32, value: u32, max: u32) -> MapFd {
    MapCreate::new(t, key, value, max)
        .name("map_test")
        .create()
        .unwrap()
}

/// `r0 = 2 (XDP_PASS); exit`, as raw instructions.
const XDP_PASS: [u8; 16] = [
    0xb7, 0, 0, 0, 2, 0, 0, 0, // r0 = 2
    0x95, 0, 0, 0, 0, 0, 0, 0, // exit
];

fn xdp_prog() -> OwnedFd {
    ProgLoad::new(prog_type::XDP, &XDP_PASS, "GPL")
        .name("map_test_xdp")
        .load()
        .unwrap()
        .fd
}

fn errno(e: &MapError) -> Option<i32> {
    e.errno()
}

// ---------------------------------------------------------------------------
// Map<K, V>

#[test]
fn typed_hash_element_ops() {
    if !kernel() {
        return;
    }
    let map: Map<u32, u64> = Map::new(create(map_type::HASH, 4, 8, 16), "counts").unwrap();
    assert_eq!(map.name(), "counts");
    let info = map.info().unwrap();
    assert_eq!((info.key_size, info.value_size), (4, 8));
    assert_eq!(info.name(), "map_test");
    assert_eq!(
        sys::map_info(map.fd()).unwrap().id,
        info.id,
        "fd() is the map's fd"
    );

    assert_eq!(map.lookup(&7).unwrap(), None);
    map.update(&7, &70, UpdateFlags::Any).unwrap();
    assert_eq!(map.lookup(&7).unwrap(), Some(70));

    let err = map.update(&7, &1, UpdateFlags::NoExist).unwrap_err();
    assert_eq!(errno(&err), Some(libc::EEXIST));
    assert!(
        err.to_string().contains("map `counts`: update failed"),
        "{err}"
    );
    assert!(std::error::Error::source(&err).is_some());
    let err = map.update(&8, &1, UpdateFlags::Exist).unwrap_err();
    assert_eq!(errno(&err), Some(libc::ENOENT));
    map.update(&7, &71, UpdateFlags::Exist).unwrap();
    map.update(&8, &80, UpdateFlags::NoExist).unwrap();
    assert_eq!(map.lookup(&7).unwrap(), Some(71));

    assert_eq!(map.lookup_and_delete(&8).unwrap(), Some(80));
    assert_eq!(map.lookup_and_delete(&8).unwrap(), None);
    assert!(map.delete(&7).unwrap());
    assert!(!map.delete(&7).unwrap());

    // Full: E2BIG names the map.
    for k in 0..16 {
        map.update(&k, &0, UpdateFlags::Any).unwrap();
    }
    let err = map.update(&100, &0, UpdateFlags::Any).unwrap_err();
    assert_eq!(errno(&err), Some(libc::E2BIG));
    assert_eq!(err.map(), "counts");

    map.freeze().unwrap();
    let err = map.update(&1, &1, UpdateFlags::Any).unwrap_err();
    assert_eq!(errno(&err), Some(libc::EPERM));
    assert_eq!(map.lookup(&1).unwrap(), Some(0), "reads still work");
}

#[test]
fn typed_handles_refuse_wrong_sizes_and_types() {
    if !kernel() {
        return;
    }
    let err = Map::<u64, u64>::new(create(map_type::HASH, 4, 8, 4), "pids").unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, MapError::SizeMismatch { .. }), "{msg}");
    assert!(msg.contains("`pids`") && msg.contains("key 8 B") && msg.contains("key_size 4 B"));

    let err = Map::<u32, u32>::new(create(map_type::HASH, 4, 8, 4), "vals").unwrap_err();
    assert!(
        err.to_string().contains("value 4 B") && err.to_string().contains("value_size 8 B"),
        "{err}"
    );

    let err = Map::<u32, u32>::new(create(map_type::PERCPU_ARRAY, 4, 4, 1), "pc").unwrap_err();
    assert!(matches!(err, MapError::WrongType { .. }), "{err}");
    assert!(err.to_string().contains("PerCpuMap"), "{err}");
    let err = Map::<(), u32>::new(create(map_type::QUEUE, 0, 4, 4), "q").unwrap_err();
    assert!(err.to_string().contains("use Queue"), "{err}");

    let err = PerCpuMap::<u32, u32>::new(create(map_type::HASH, 4, 4, 1), "h").unwrap_err();
    assert!(err.to_string().contains("PERCPU_HASH"), "{err}");
    let err = PerCpuMap::<u32, u64>::new(create(map_type::PERCPU_HASH, 4, 4, 1), "h").unwrap_err();
    assert!(matches!(err, MapError::SizeMismatch { .. }), "{err}");
    assert!(ProgArray::new(create(map_type::ARRAY, 4, 4, 1), "a").is_err());
    assert!(MapOfMaps::<u32>::new(create(map_type::HASH, 4, 4, 1), "a").is_err());
    assert!(Queue::<u32>::new(create(map_type::STACK, 0, 4, 1), "s").is_err());
    assert!(Stack::<u32>::new(create(map_type::QUEUE, 0, 4, 1), "q").is_err());
    assert!(Stack::<u64>::new(create(map_type::STACK, 0, 4, 1), "s").is_err());
    assert!(StackTraceMap::new(create(map_type::HASH, 4, 8, 1), "h").is_err());
    assert!(RingBufMap::new(create(map_type::HASH, 4, 8, 1), "h").is_err());
    assert!(PerfEventArrayMap::new(create(map_type::HASH, 4, 4, 1), "h").is_err());
    assert!(DataMap::<u64>::new(create(map_type::HASH, 4, 8, 1), "h").is_err());
    assert!(DataMap::<u32>::new(create(map_type::ARRAY, 4, 8, 1), "a").is_err());
}

#[test]
fn keys_and_iter_survive_deletion() {
    if !kernel() {
        return;
    }
    let map: Map<u32, u64> = Map::new(create(map_type::HASH, 4, 8, 64), "walk").unwrap();
    assert_eq!(map.keys().count(), 0);
    for k in 0..40u32 {
        map.update(&k, &(u64::from(k) * 3), UpdateFlags::Any)
            .unwrap();
    }
    let mut keys: Vec<u32> = map.keys().map(Result::unwrap).collect();
    keys.sort_unstable();
    assert_eq!(keys, (0..40).collect::<Vec<_>>());

    let pairs: BTreeMap<u32, u64> = map.iter().map(Result::unwrap).collect();
    assert_eq!(pairs.len(), 40);
    assert!(pairs.iter().all(|(k, v)| u64::from(*k) * 3 == *v));

    // Deleting odd keys as they come: the walk restarts after each deletion and
    // sees even keys again, but terminates and visits every odd key.
    let mut seen = std::collections::BTreeSet::new();
    for key in map.keys() {
        let key = key.unwrap();
        seen.insert(key);
        if key % 2 == 1 {
            assert!(map.delete(&key).unwrap());
        }
    }
    assert_eq!(seen.len(), 40);
    let mut left: Vec<u32> = map.keys().map(Result::unwrap).collect();
    left.sort_unstable();
    assert_eq!(left, (0..40).filter(|k| k % 2 == 0).collect::<Vec<_>>());

    // Deleting every key as it is returned visits each once and empties the map.
    let visited: Vec<u32> = map
        .keys()
        .map(|k| {
            let k = k.unwrap();
            map.delete(&k).unwrap();
            k
        })
        .collect();
    assert_eq!(visited.len(), 20);
    assert_eq!(map.iter().count(), 0);

    // Arrays walk every index.
    let arr: Map<u32, u32> = Map::new(create(map_type::ARRAY, 4, 4, 5), "arr").unwrap();
    assert_eq!(
        arr.keys().map(Result::unwrap).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4]
    );
    let err = arr.delete(&0).unwrap_err();
    assert_eq!(errno(&err), Some(libc::EINVAL));
}

#[test]
fn batch_ops_on_hash_and_array() {
    if !kernel() {
        return;
    }
    let map: Map<u32, u64> = Map::new(create(map_type::HASH, 4, 8, 256), "batch").unwrap();
    let keys: Vec<u32> = (0..100).collect();
    let values: Vec<u64> = keys.iter().map(|k| u64::from(*k) << 32 | 1).collect();
    assert_eq!(
        map.update_batch(&keys, &values, UpdateFlags::Any).unwrap(),
        100
    );
    // The kernel's batch update only creates-or-replaces.
    let err = map
        .update_batch(&keys[..1], &values[..1], UpdateFlags::NoExist)
        .unwrap_err();
    assert!(err.to_string().contains("Any or Lock"), "{err}");
    // Lock needs a bpf_spin_lock in the value: the kernel says EINVAL.
    let err = map
        .update_batch(&keys[..1], &values[..1], UpdateFlags::Lock)
        .unwrap_err();
    assert_eq!(errno(&err), Some(libc::EINVAL));
    let err = map
        .update_batch(&keys[..2], &values[..1], UpdateFlags::Any)
        .unwrap_err();
    assert!(matches!(err, MapError::InvalidArgument { .. }), "{err}");

    // Page through with a cursor.
    let mut got = BTreeMap::new();
    let mut cursor = BatchCursor::new();
    let (mut kbuf, mut vbuf) = ([0u32; 32], [0u64; 32]);
    let mut calls = 0;
    while !cursor.is_finished() {
        let n = map.lookup_batch(&mut cursor, &mut kbuf, &mut vbuf).unwrap();
        got.extend(kbuf[..n].iter().copied().zip(vbuf[..n].iter().copied()));
        calls += 1;
        assert!(calls < 100, "the cursor must advance");
    }
    assert_eq!(
        map.lookup_batch(&mut cursor, &mut kbuf, &mut vbuf).unwrap(),
        0
    );
    assert_eq!(got.len(), 100);
    assert!(got.iter().all(|(k, v)| *v == (u64::from(*k) << 32 | 1)));

    assert_eq!(map.delete_batch(&keys[..50]).unwrap(), 50);
    assert_eq!(map.lookup(&10).unwrap(), None);
    assert_eq!(map.lookup(&60).unwrap(), Some(60 << 32 | 1));
    // Stops at the first missing key.
    assert_eq!(map.delete_batch(&keys[..1]).unwrap(), 0);
    assert_eq!(map.delete_batch(&[60, 10, 61]).unwrap(), 1);
    assert_eq!(map.lookup(&60).unwrap(), None);
    assert_eq!(map.lookup(&61).unwrap(), Some(61 << 32 | 1));
    let err = map.delete_batch(&[]).unwrap_err();
    assert!(err.to_string().contains("delete_batch"), "{err}");

    // Lookup-and-delete drains the rest.
    cursor.reset();
    let mut drained = 0;
    while !cursor.is_finished() {
        drained += map
            .lookup_and_delete_batch(&mut cursor, &mut kbuf, &mut vbuf)
            .unwrap();
    }
    assert_eq!(drained, 49);
    assert_eq!(map.keys().count(), 0);

    // Arrays batch lookups and updates, and refuse batch deletes.
    let arr: Map<u32, u32> = Map::new(create(map_type::ARRAY, 4, 4, 10), "barr").unwrap();
    arr.update_batch(&[1, 3], &[11, 33], UpdateFlags::Any)
        .unwrap();
    let mut cursor = BatchCursor::new();
    let (mut ks, mut vs) = ([0u32; 4], [0u32; 4]);
    let mut all = Vec::new();
    while !cursor.is_finished() {
        let n = arr.lookup_batch(&mut cursor, &mut ks, &mut vs).unwrap();
        all.extend(ks[..n].iter().copied().zip(vs[..n].iter().copied()));
    }
    assert_eq!(all.len(), 10);
    assert_eq!(all[1], (1, 11));
    assert_eq!(all[3], (3, 33));
    assert_eq!(all[2], (2, 0));
    assert!(arr.delete_batch(&[1]).is_err());
    let err = arr
        .lookup_batch(&mut BatchCursor::new(), &mut [], &mut [])
        .unwrap_err();
    assert!(matches!(err, MapError::InvalidArgument { .. }), "{err}");
}

// ---------------------------------------------------------------------------
// PerCpuMap

#[test]
fn percpu_values_use_an_eight_byte_stride() {
    if !kernel() {
        return;
    }
    let cpus = sys::num_possible_cpus().unwrap();
    let arr: PerCpuMap<u32, u32> =
        PerCpuMap::new(create(map_type::PERCPU_ARRAY, 4, 4, 2), "pcarr").unwrap();
    assert_eq!(arr.num_cpus().unwrap(), cpus);
    assert_eq!(arr.lookup(&0).unwrap(), Some(vec![0; cpus]));
    let values: Vec<u32> = (0..cpus as u32).map(|c| 0xa000_0000 | c).collect();
    arr.update(&1, &values, UpdateFlags::Any).unwrap();
    assert_eq!(arr.lookup(&1).unwrap(), Some(values.clone()));
    assert_eq!(
        arr.lookup(&0).unwrap(),
        Some(vec![0; cpus]),
        "neighbour intact"
    );

    // The raw buffer: each CPU's 4 bytes at an 8-byte stride.
    let raw = UntypedMap::new(create(map_type::PERCPU_ARRAY, 4, 4, 1), "raw");
    assert_eq!(raw.value_len().unwrap(), 8 * cpus);
    let typed = PerCpuMap::<u32, u32>::new(
        MapFd::from_fd(sys::get_fd_by_id(sys::ObjKind::Map, raw.info().unwrap().id, 0).unwrap())
            .unwrap(),
        "raw",
    )
    .unwrap();
    typed.update(&0, &values, UpdateFlags::Any).unwrap();
    let bytes = raw.lookup(&0u32.to_ne_bytes()).unwrap().unwrap();
    for (cpu, v) in values.iter().enumerate() {
        assert_eq!(bytes[cpu * 8..cpu * 8 + 4], v.to_ne_bytes());
    }

    let err = arr.update(&0, &values[1..], UpdateFlags::Any).unwrap_err();
    assert!(matches!(err, MapError::InvalidArgument { .. }), "{err}");
    assert!(err.to_string().contains("per possible CPU"), "{err}");

    let hash: PerCpuMap<u32, u64> =
        PerCpuMap::new(create(map_type::PERCPU_HASH, 4, 8, 8), "pchash").unwrap();
    assert_eq!(hash.lookup(&5).unwrap(), None);
    let v64: Vec<u64> = (0..cpus as u64).map(|c| c * 100).collect();
    hash.update(&5, &v64, UpdateFlags::NoExist).unwrap();
    hash.update(&6, &v64, UpdateFlags::Any).unwrap();
    let err = hash.update(&5, &v64, UpdateFlags::NoExist).unwrap_err();
    assert_eq!(errno(&err), Some(libc::EEXIST));
    let mut keys: Vec<u32> = hash.keys().map(Result::unwrap).collect();
    keys.sort_unstable();
    assert_eq!(keys, [5, 6]);
    let entries: Vec<(u32, Vec<u64>)> = hash.iter().map(Result::unwrap).collect();
    assert_eq!(entries.len(), 2);
    assert!(entries.iter().all(|(_, v)| *v == v64));
    assert!(hash.delete(&5).unwrap());
    assert!(!hash.delete(&5).unwrap());
    assert_eq!(hash.info().unwrap().map_type, map_type::PERCPU_HASH);
    assert_eq!(hash.name(), "pchash");

    let lru: PerCpuMap<u32, u32> =
        PerCpuMap::new(create(map_type::LRU_PERCPU_HASH, 4, 4, 64), "lru").unwrap();
    lru.update(&1, &values, UpdateFlags::Any).unwrap();
    assert_eq!(lru.lookup(&1).unwrap(), Some(values));
}

// ---------------------------------------------------------------------------
// Queue, Stack

#[test]
fn queue_and_stack_push_pop_peek() {
    if !kernel() {
        return;
    }
    let q: Queue<u64> = Queue::new(create(map_type::QUEUE, 0, 8, 3), "q").unwrap();
    assert_eq!(q.pop().unwrap(), None);
    assert_eq!(q.peek().unwrap(), None);
    for v in [1, 2, 3] {
        q.push(&v, UpdateFlags::Any).unwrap();
    }
    let err = q.push(&4, UpdateFlags::Any).unwrap_err();
    assert_eq!(errno(&err), Some(libc::E2BIG));
    assert!(err.to_string().contains("push"), "{err}");
    q.push(&4, UpdateFlags::Exist).unwrap(); // drops the oldest (1)
    assert_eq!(q.peek().unwrap(), Some(2));
    assert_eq!(q.pop().unwrap(), Some(2));
    assert_eq!(q.pop().unwrap(), Some(3));
    assert_eq!(q.pop().unwrap(), Some(4));
    assert_eq!(q.pop().unwrap(), None);
    assert_eq!(q.name(), "q");
    assert_eq!(q.info().unwrap().map_type, map_type::QUEUE);

    let s: Stack<u32> = Stack::new(create(map_type::STACK, 0, 4, 3), "s").unwrap();
    for v in [1, 2, 3] {
        s.push(&v, UpdateFlags::Any).unwrap();
    }
    assert_eq!(s.peek().unwrap(), Some(3));
    assert_eq!(s.pop().unwrap(), Some(3));
    assert_eq!(s.pop().unwrap(), Some(2));
    assert_eq!(s.pop().unwrap(), Some(1));
    assert_eq!(s.pop().unwrap(), None);
    assert_eq!(sys::map_info(s.fd()).unwrap().map_type, map_type::STACK);
    assert_eq!(s.map_fd().max_entries(), 3);
}

// ---------------------------------------------------------------------------
// ProgArray, MapOfMaps, StackTraceMap, RingBufMap, PerfEventArrayMap

#[test]
fn prog_array_holds_an_xdp_program() {
    if !kernel() {
        return;
    }
    let prog = xdp_prog();
    let prog_id = sys::prog_info(&prog).unwrap().id;
    let jumps = ProgArray::new(create(map_type::PROG_ARRAY, 4, 4, 4), "jumps").unwrap();
    assert_eq!(jumps.len(), 4);
    assert!(!jumps.is_empty());
    assert_eq!(jumps.get(0).unwrap(), None);
    jumps.set(2, &prog).unwrap();
    assert_eq!(jumps.get(2).unwrap(), Some(prog_id));
    assert_eq!(jumps.get(1).unwrap(), None);
    let err = jumps.set(9, &prog).unwrap_err();
    assert_eq!(errno(&err), Some(libc::E2BIG));
    assert!(jumps.clear(2).unwrap());
    assert!(!jumps.clear(2).unwrap());
    assert_eq!(jumps.get(2).unwrap(), None);
    // A map fd is not a program.
    let not_prog = create(map_type::ARRAY, 4, 4, 1);
    assert!(jumps.set(0, &not_prog).is_err());
    assert_eq!(jumps.indices().count(), 4, "arrays walk every index");
}

#[test]
fn map_of_maps_returns_inner_ids() {
    if !kernel() {
        return;
    }
    let template = create(map_type::ARRAY, 4, 8, 4);
    let outer_fd = MapCreate::new(map_type::ARRAY_OF_MAPS, 4, 4, 2)
        .name("outer")
        .inner_map(template.as_fd())
        .create()
        .unwrap();
    let outer: MapOfMaps<u32> = MapOfMaps::new(outer_fd, "outer").unwrap();
    let inner = create(map_type::ARRAY, 4, 8, 4);
    let inner_id = sys::map_info(&inner).unwrap().id;
    assert_eq!(outer.get_id(&0).unwrap(), None);
    outer.set(&1, &inner).unwrap();
    assert_eq!(outer.get_id(&1).unwrap(), Some(inner_id));
    // An inner map of another shape is refused.
    let wrong = create(map_type::ARRAY, 4, 4, 4);
    let err = outer.set(&0, &wrong).unwrap_err();
    assert_eq!(errno(&err), Some(libc::EINVAL));
    assert!(outer.delete(&1).unwrap());
    assert_eq!(outer.get_id(&1).unwrap(), None);
    assert_eq!(outer.keys().count(), 2);

    let hash_fd = MapCreate::new(map_type::HASH_OF_MAPS, 8, 4, 4)
        .name("houter")
        .inner_map(template.as_fd())
        .create()
        .unwrap();
    let hash: MapOfMaps<u64> = MapOfMaps::new(hash_fd, "houter").unwrap();
    hash.set(&42, &inner).unwrap();
    assert_eq!(hash.get_id(&42).unwrap(), Some(inner_id));
    assert_eq!(hash.keys().map(Result::unwrap).collect::<Vec<_>>(), [42]);
    assert!(hash.delete(&42).unwrap());
    assert!(!hash.delete(&42).unwrap());
}

#[test]
fn stack_trace_ring_buffer_and_perf_array_handles() {
    if !kernel() {
        return;
    }
    let traces = StackTraceMap::new(create(map_type::STACK_TRACE, 4, 8 * 127, 16), "st").unwrap();
    assert_eq!(traces.max_depth(), 127);
    assert_eq!(traces.lookup(3).unwrap(), None);
    assert!(!traces.delete(3).unwrap());
    assert_eq!(traces.stack_ids().count(), 0);
    assert_eq!(traces.name(), "st");

    let ring = RingBufMap::new(create(map_type::RINGBUF, 0, 0, 4096), "events").unwrap();
    assert_eq!(ring.byte_size(), 4096);
    assert_eq!(ring.name(), "events");
    assert_eq!(ring.map_fd().map_type(), map_type::RINGBUF);
    assert_eq!(ring.info().unwrap().max_entries, 4096);
    // The handle lends an fd that a consumer can map.
    let page = sys::page_size();
    assert!(Mmap::new(ring.fd(), page, 0, Access::ReadWrite).is_ok());

    let cpus = sys::num_possible_cpus().unwrap() as u32;
    let perf =
        PerfEventArrayMap::new(create(map_type::PERF_EVENT_ARRAY, 4, 4, cpus), "perf").unwrap();
    assert_eq!(perf.len(), cpus);
    assert_eq!(perf.name(), "perf");
    assert_eq!(perf.info().unwrap().map_type, map_type::PERF_EVENT_ARRAY);
}

// ---------------------------------------------------------------------------
// UntypedMap

#[test]
fn untyped_map_works_in_bytes() {
    if !kernel() {
        return;
    }
    let map = UntypedMap::new(create(map_type::HASH, 8, 12, 8), "legacy");
    assert_eq!((map.key_size(), map.value_size()), (8, 12));
    assert_eq!(map.value_len().unwrap(), 12);
    let key = 5u64.to_ne_bytes();
    assert_eq!(map.lookup(&key).unwrap(), None);
    map.update(&key, &[7; 12], UpdateFlags::Any).unwrap();
    assert_eq!(map.lookup(&key).unwrap(), Some(vec![7; 12]));
    let err = map.update(&key, &[7; 11], UpdateFlags::Any).unwrap_err();
    assert!(matches!(err, MapError::InvalidArgument { .. }), "{err}");
    let err = map.lookup(&[0; 3]).unwrap_err();
    assert!(err.to_string().contains("`legacy`: lookup"), "{err}");
    assert_eq!(
        map.keys().map(Result::unwrap).collect::<Vec<_>>(),
        vec![key.to_vec()]
    );
    assert_eq!(map.lookup_and_delete(&key).unwrap(), Some(vec![7; 12]));
    assert!(!map.delete(&key).unwrap());
    map.freeze().unwrap();
    assert!(map.update(&key, &[0; 12], UpdateFlags::Any).is_err());

    // Queues pop with an empty key.
    let q = UntypedMap::new(create(map_type::QUEUE, 0, 4, 2), "uq");
    q.update(&[], &9u32.to_ne_bytes(), UpdateFlags::Any)
        .unwrap();
    assert_eq!(
        q.lookup_and_delete(&[]).unwrap(),
        Some(9u32.to_ne_bytes().to_vec())
    );
    assert_eq!(q.lookup_and_delete(&[]).unwrap(), None);
}

// ---------------------------------------------------------------------------
// Global data

/// A `.bss`-like value: a u64 counter, a u32 pid, four u32 slots.
type Bss = [u32; 8];

fn data_checks(mut data: DataMap<Bss>) {
    assert_eq!(data.read().unwrap(), [0; 8]);
    data.write(&[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
    assert_eq!(data.read().unwrap(), [1, 2, 3, 4, 5, 6, 7, 8]);
    // The kernel sees it.
    let mut raw = [0u8; 32];
    assert!(data
        .map_fd()
        .lookup(&0u32.to_ne_bytes(), &mut raw, 0)
        .unwrap());
    assert_eq!(raw[4..8], 2u32.to_ne_bytes());

    // Fields at offsets, unaligned too.
    assert_eq!(data.read_at::<u32>(8).unwrap(), 3);
    assert_eq!(data.read_at::<[u32; 2]>(24).unwrap(), [7, 8]);
    data.write_at(12, &0xffff_ffffu32).unwrap();
    data.write_at::<u8>(1, &0xab).unwrap();
    assert_eq!(data.read_at::<u32>(12).unwrap(), u32::MAX);
    assert_eq!(data.read_at::<u32>(0).unwrap(), 1 | 0xab00);
    assert_eq!(data.read_at::<u64>(24).unwrap(), 7 | (8 << 32));
    // Changes made through the map fd are seen.
    data.map_fd()
        .update(&0u32.to_ne_bytes(), &[0u8; 32], 0)
        .unwrap();
    assert_eq!(data.read().unwrap(), [0; 8]);

    // Out of bounds: errors, not panics.
    let err = data.read_at::<u32>(29).unwrap_err();
    assert!(matches!(err, MapError::OutOfBounds { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("read_at of 4 B at offset 29 is outside the 32-byte value"),
        "{err}"
    );
    assert!(data.read_at::<[u8; 33]>(0).is_err());
    assert!(data.read_at::<u8>(usize::MAX).is_err());
    let err = data.write_at(32, &1u8).unwrap_err();
    assert!(
        matches!(err, MapError::OutOfBounds { op: "write_at", .. }),
        "{err}"
    );
    assert!(data.write_at(usize::MAX - 1, &1u64).is_err());
    assert_eq!(data.read().unwrap(), [0; 8], "failed writes wrote nothing");
    assert_eq!(data.read_at::<u32>(28).unwrap(), 0, "last field in bounds");
}

#[test]
fn data_map_through_mapping_and_through_syscalls() {
    if !kernel() {
        return;
    }
    let mapped = DataMap::<Bss>::new(
        MapCreate::new(map_type::ARRAY, 4, 32, 1)
            .flags(map_flags::MMAPABLE)
            .name("m.bss")
            .create()
            .unwrap(),
        "m.bss",
    )
    .unwrap();
    assert!(mapped.is_mapped());
    assert_eq!(mapped.name(), "m.bss");
    assert_eq!(mapped.info().unwrap().value_size, 32);
    data_checks(mapped);

    let plain = DataMap::<Bss>::new(create(map_type::ARRAY, 4, 32, 1), ".data").unwrap();
    assert!(!plain.is_mapped());
    data_checks(plain);

    // A mapping the loader made.
    let fd = MapCreate::new(map_type::ARRAY, 4, 32, 1)
        .flags(map_flags::MMAPABLE)
        .create()
        .unwrap();
    let mmap = Mmap::new(&fd, 32, 0, Access::ReadWrite).unwrap();
    data_checks(DataMap::with_mmap(fd, ".data.x", Some(mmap)).unwrap());
    let fd = MapCreate::new(map_type::ARRAY, 4, 32, 1)
        .flags(map_flags::MMAPABLE)
        .create()
        .unwrap();
    let short = Mmap::new(&fd, 16, 0, Access::ReadWrite).unwrap();
    // 16 bytes map a whole page, but the handle only trusts what it was told.
    let err = DataMap::<Bss>::with_mmap(fd, ".data.y", Some(short)).unwrap_err();
    assert!(matches!(err, MapError::InvalidArgument { .. }), "{err}");
}

#[test]
fn frozen_data_is_a_stable_copy() {
    if !kernel() {
        return;
    }
    let rodata = |name: &str| {
        MapCreate::new(map_type::ARRAY, 4, 16, 1)
            .flags(map_flags::MMAPABLE | map_flags::RDONLY_PROG)
            .name(name)
            .create()
            .unwrap()
    };
    let fd = rodata("r.rodata");
    fd.update(&0u32.to_ne_bytes(), &[3u8; 16], 0).unwrap();
    let frozen: FrozenData<[u64; 2]> = FrozenData::new(fd, "r.rodata").unwrap();
    let expect = u64::from_ne_bytes([3; 8]);
    assert_eq!(frozen.get(), [expect; 2]);
    assert_eq!(frozen[1], expect, "Deref to the copy");
    assert_eq!(frozen.as_ref(), &[expect; 2]);
    assert_eq!(frozen.name(), "r.rodata");
    // Frozen: user space writes fail.
    let err = frozen
        .map_fd()
        .update(&0u32.to_ne_bytes(), &[0u8; 16], 0)
        .unwrap_err();
    assert!(err.is_permission_denied(), "{err}");
    assert_eq!(
        frozen.info().unwrap().map_flags & map_flags::RDONLY_PROG,
        map_flags::RDONLY_PROG
    );
    assert!(sys::map_info(frozen.fd()).is_ok());

    // Already frozen by the loader: accepted.
    let fd = rodata("r2");
    fd.freeze().unwrap();
    assert_eq!(
        FrozenData::<[u8; 16]>::new(fd, "r2").unwrap().get(),
        [0; 16]
    );

    // The kernel never maps a program-read-only map writable, so nothing can
    // change the copy behind FrozenData's back.
    let fd = rodata("r3");
    let err = Mmap::new(&fd, 16, 0, Access::ReadWrite).unwrap_err();
    assert_eq!(err.errno(), Some(libc::EACCES), "{err}");

    // Programs could write it: refused.
    let err = FrozenData::<[u8; 16]>::new(create(map_type::ARRAY, 4, 16, 1), "w").unwrap_err();
    assert!(err.to_string().contains("BPF_F_RDONLY_PROG"), "{err}");

    // A DataMap over a program-read-only map before freezing (the open
    // skeleton's .rodata): read through a read-only mapping, written through
    // the fd.
    let mut before = DataMap::<[u8; 16]>::new(rodata("r5"), "r5").unwrap();
    assert!(before.is_mapped());
    before.write_at(4, &[9u8; 2]).unwrap();
    assert_eq!(before.read_at::<[u8; 4]>(3).unwrap(), [0, 9, 9, 0]);
    before.map_fd().freeze().unwrap();
    let err = before.write(&[0; 16]).unwrap_err();
    assert_eq!(errno(&err), Some(libc::EPERM), "{err}");

    // A DataMap over a frozen map: a read-only mapping, writes refused.
    let fd = rodata("r4");
    fd.update(&0u32.to_ne_bytes(), &[1u8; 16], 0).unwrap();
    fd.freeze().unwrap();
    let mut ro = DataMap::<[u8; 16]>::new(fd, "r4").unwrap();
    assert!(ro.is_mapped());
    assert_eq!(ro.read().unwrap(), [1; 16]);
    assert!(ro.write(&[2; 16]).is_err());
    assert_eq!(ro.read().unwrap(), [1; 16]);
}

// ---------------------------------------------------------------------------
// Anywhere: construction checks against the fake gateway, and auto traits.

fn fake_map(t: u32, key: u32, value: u32) -> MapFd {
    sys::with_fake(
        |_| FakeReturn::Fd(File::open("/dev/null").unwrap().into()),
        || MapCreate::new(t, key, value, 1).create().unwrap(),
    )
}

#[test]
fn fake_size_and_type_errors_name_map_and_sizes() {
    let err = Map::<u32, [u8; 12]>::new(fake_map(map_type::HASH, 4, 16), "start").unwrap_err();
    assert_eq!(
        err.to_string(),
        "map `start`: the Map types have key 4 B and value 12 B, \
         but the map has key_size 4 B and value_size 16 B"
    );
    assert_eq!(err.map(), "start");
    assert_eq!(err.errno(), None);

    let err = Map::<u32, u32>::new(fake_map(map_type::PROG_ARRAY, 4, 4), "jmp").unwrap_err();
    assert_eq!(
        err.to_string(),
        "map `jmp` is a PROG_ARRAY map, but Map needs a map of plain values (use ProgArray)"
    );
    let err = Queue::<u32>::new(fake_map(4242, 0, 4), "odd").unwrap_err();
    assert!(err.to_string().contains("is a type 4242 map"), "{err}");
    assert!(StackTraceMap::new(fake_map(map_type::STACK_TRACE, 4, 12), "st").is_err());
    assert!(Map::<u32, u64>::new(fake_map(map_type::LRU_HASH, 4, 8), "lru").is_ok());
    assert!(Map::<[u8; 8], u64>::new(fake_map(map_type::LPM_TRIE, 8, 8), "lpm").is_ok());
}

#[test]
fn handles_are_send_and_sync() {
    fn both<T: Send + Sync>() {}
    both::<Map<u32, u64>>();
    both::<PerCpuMap<u32, u64>>();
    both::<MapOfMaps<u32>>();
    both::<Queue<u64>>();
    both::<Stack<u64>>();
    both::<ProgArray>();
    both::<StackTraceMap>();
    both::<RingBufMap>();
    both::<PerfEventArrayMap>();
    both::<UntypedMap>();
    both::<DataMap<[u64; 4]>>();
    both::<FrozenData<[u64; 4]>>();
    both::<MapError>();
}
