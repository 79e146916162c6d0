//! The process's allocator: a bump arena in front of the system allocator.
//!
//! Generating a skeleton builds and drops some 130,000 small values (token
//! trees, syn nodes, strings) and exits: under glibc's malloc, `malloc` and
//! `free` were 40% of the instructions of a whole `skelgen OBJ` run. A job
//! that runs once and exits does not need its memory back, so small
//! allocations come from one reserved region by moving a cursor, and
//! freeing them costs nothing (the last block is given back, so
//! stack-like use and growing the newest `Vec`/`String` stay in place).
//! Each thread bumps through its own 2 MiB chunks of the region (the
//! formatter's helper thread allocates as much as the main one; one shared
//! cursor made the two slower together than one alone).
//! The region is virtual address space only (`MAP_NORESERVE`): pages cost
//! memory when touched, and what a run touches is what it allocated
//! (about 11 MB for a fixture skeleton).
//!
//! Ownership of a block is its address: inside the region it is the
//! arena's, outside it is the system allocator's. Large blocks (at least
//! [`LARGE`] bytes), blocks once the region is used up, and every block
//! after a failed reservation go to the system allocator, so behaviour
//! degrades to plain malloc, never to an error.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Blocks of this size or more go to the system allocator: big buffers
/// (an object's bytes, a kernel BTF) are freed for real, and the arena
/// holds only the many small ones.
const LARGE: usize = 256 * 1024;

/// Address space reserved for the arena. A run that allocates more small
/// blocks than this falls back to the system allocator.
const REGION: usize = 4 << 30;

/// The region starts on a huge-page boundary and asks for transparent huge
/// pages: touching 11 MB of fresh 4 KiB pages cost 2,300 page faults, more
/// time than malloc's bookkeeping saved; 2 MiB pages cost six.
const HUGE: usize = 2 << 20;

/// Not yet reserved.
const UNSET: usize = 0;
/// The reservation failed: use the system allocator only.
const FAILED: usize = 1;

/// The arena serves alignments up to a page: the region starts on one.
const MAX_ALIGN: usize = 4096;

/// Every block is aligned at least as glibc's malloc aligns (16 bytes on
/// x86-64): code that reads a byte buffer in place (the `object` crate's
/// ELF header, say) expects what malloc gives, whatever the `Layout` said.
const MIN_ALIGN: usize = 16;

/// Each thread bumps through chunks of the region of this size (a huge
/// page), taken with one atomic add: a cursor shared by all threads made two
/// threads allocating at once slower than one.
const CHUNK: usize = HUGE;

std::thread_local! {
    /// This thread's current chunk: the next free address and the chunk's
    /// end (both 0 before its first chunk). Const-initialised and without
    /// a destructor, so it is usable at any point of a thread's life.
    static CURRENT: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

/// The bump arena (see the module docs).
pub struct Arena {
    /// Start of the region, or [`UNSET`] / [`FAILED`].
    base: AtomicUsize,
    /// Offset of the first chunk not yet handed to a thread (an offset, so
    /// that it is valid whichever thread's reservation wins).
    used: AtomicUsize,
}

impl Arena {
    /// An arena whose region is reserved at the first allocation.
    pub const fn new() -> Self {
        Self {
            base: AtomicUsize::new(UNSET),
            used: AtomicUsize::new(0),
        }
    }

    /// The region's start, reserving it on first use; `None` when there is
    /// no region.
    fn base(&self) -> Option<usize> {
        match self.base.load(Ordering::Acquire) {
            FAILED => None,
            UNSET => self.reserve(),
            base => Some(base),
        }
    }

    #[cold]
    fn reserve(&self) -> Option<usize> {
        // SAFETY: an anonymous private mapping at an address the kernel
        // picks touches no existing memory; the result is checked.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                REGION + HUGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        let new = if p == libc::MAP_FAILED {
            FAILED
        } else {
            let base = (p as usize + HUGE - 1) & !(HUGE - 1);
            // Advice only: without huge pages the region works the same.
            // SAFETY: [base, base + REGION) lies inside the mapping.
            unsafe { libc::madvise(base as *mut libc::c_void, REGION, libc::MADV_HUGEPAGE) };
            base
        };
        match self
            .base
            .compare_exchange(UNSET, new, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => (new != FAILED).then_some(new),
            Err(won) => {
                // Another thread reserved first; this mapping is unused.
                if new != FAILED {
                    // SAFETY: `p` is the mapping made above, seen by no one.
                    unsafe { libc::munmap(p, REGION + HUGE) };
                }
                (won != FAILED).then_some(won)
            }
        }
    }

    /// The offset of `p` in the region, if it is a block of the arena.
    fn offset_of(&self, p: *mut u8) -> Option<usize> {
        let base = self.base.load(Ordering::Acquire);
        let off = (p as usize).wrapping_sub(base);
        (base > FAILED && off < REGION).then_some(off)
    }

    /// A block of `layout` from this thread's chunk (a new chunk when it
    /// does not fit), or null when the region is used up.
    #[inline]
    fn bump(&self, layout: Layout) -> *mut u8 {
        let align = layout.align().max(MIN_ALIGN);
        let base = self.base.load(Ordering::Acquire);
        // One access to the thread-local (each is a call).
        let p = CURRENT.with(|c| {
            let (cur, end) = c.get();
            // The chunk must be this arena's: the thread-local is shared by
            // every `Arena` (the process has one, its tests several), and
            // `end - 1`, the chunk's last byte, lies in the region holding it.
            if end == 0 || base <= FAILED || (end - 1).wrapping_sub(base) >= REGION {
                return ptr::null_mut();
            }
            // align is a power of two <= MAX_ALIGN, size < LARGE, and
            // addresses are below the region's end: no sum overflows.
            let start = (cur + align - 1) & !(align - 1);
            if start + layout.size() > end {
                return ptr::null_mut();
            }
            c.set((start + layout.size(), end));
            start as *mut u8
        });
        if p.is_null() {
            self.bump_new_chunk(layout)
        } else {
            p
        }
    }

    #[cold]
    fn bump_new_chunk(&self, layout: Layout) -> *mut u8 {
        let Some(base) = self.base() else {
            return ptr::null_mut();
        };
        // A chunk holds any small block: LARGE and MAX_ALIGN are below CHUNK.
        let off = self.used.fetch_add(CHUNK, Ordering::Relaxed);
        if off > REGION - CHUNK {
            // Used up; keep the counter from wrapping on later calls.
            self.used.store(REGION, Ordering::Relaxed);
            return ptr::null_mut();
        }
        let chunk = base + off;
        let align = layout.align().max(MIN_ALIGN);
        let start = (chunk + align - 1) & !(align - 1);
        CURRENT.set((start + layout.size(), chunk + CHUNK));
        start as *mut u8
    }

    /// Whether the arena serves `layout`.
    fn small(layout: Layout) -> bool {
        layout.size() < LARGE && layout.align() <= MAX_ALIGN
    }
}

impl Default for Arena {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: every block handed out is either a fresh, exclusively owned range
// of the region (each chunk is one thread's, taken by an atomic add; that
// thread's cursor only moves past a block, and moves back over it only when
// it is freed as the newest block), or a block of the system allocator,
// which only the system allocator frees and resizes (ownership by address,
// `offset_of`).
unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if Self::small(layout) {
            let p = self.bump(layout);
            if !p.is_null() {
                return p;
            }
        }
        // SAFETY: the caller's layout has a non-zero size (GlobalAlloc's
        // contract), which is all System needs.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if Self::small(layout) {
            let p = self.bump(layout);
            if !p.is_null() {
                // Fresh region pages are zero, but a block given back and
                // handed out again is not.
                // SAFETY: `p` is a new block of `layout.size()` bytes.
                unsafe { ptr::write_bytes(p, 0, layout.size()) };
                return p;
            }
        }
        // SAFETY: as in `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        if self.offset_of(p).is_some() {
            // This thread's newest block is given back; any other stays
            // until exit.
            // A block that ends at this thread's cursor is given back by
            // moving the cursor down over it: [p, cursor) is that freed
            // block and nothing else, so whatever the thread bumps there
            // next overlaps no live block (even in the corner where the
            // block is the last of the chunk just below this thread's).
            CURRENT.with(|c| {
                let (cur, end) = c.get();
                if p as usize + layout.size() == cur {
                    c.set((p as usize, end));
                }
            });
            return;
        }
        // SAFETY: a block outside the region came from System with this
        // layout (the caller's contract).
        unsafe { System.dealloc(p, layout) }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if self.offset_of(p).is_none() {
            // SAFETY: a block outside the region came from System with
            // this layout; the caller's new size is valid for it.
            return unsafe { System.realloc(p, layout, new_size) };
        }
        if new_size < LARGE {
            // This thread's newest block grows or shrinks where it is.
            // As in `dealloc`: a block ending at the cursor grows over
            // this thread's free space [cursor, end) only.
            let new_end = p as usize + new_size;
            let grown = CURRENT.with(|c| {
                let (cur, end) = c.get();
                let fits = p as usize + layout.size() == cur && new_end <= end;
                if fits {
                    c.set((new_end, end));
                }
                fits
            });
            if grown {
                return p;
            }
            if new_size <= layout.size() {
                // An older block shrinks where it is: its tail goes unused.
                return p;
            }
        }
        // SAFETY: the caller's contract makes (new_size, align) a valid
        // layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: a non-zero size, as the caller guarantees.
        let q = unsafe { self.alloc(new_layout) };
        if !q.is_null() {
            // SAFETY: both blocks are live and distinct (q is new), and at
            // least the copied length long.
            unsafe { ptr::copy_nonoverlapping(p, q, layout.size().min(new_size)) };
            // SAFETY: `p` is the caller's block of `layout`.
            unsafe { self.dealloc(p, layout) };
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn blocks_are_aligned_distinct_and_keep_their_bytes() {
        let a = Arena::new();
        let mut blocks = Vec::new();
        for (i, &(size, align)) in [(1, 1), (3, 2), (24, 8), (100, 64), (4096, 4096), (7, 1)]
            .iter()
            .enumerate()
        {
            // SAFETY: non-zero sizes; each block is written within bounds.
            let p = unsafe { a.alloc(layout(size, align)) };
            assert!(!p.is_null());
            assert_eq!(p as usize % align.max(MIN_ALIGN), 0, "block {i}");
            assert!(
                a.offset_of(p).is_some(),
                "small blocks come from the region"
            );
            // SAFETY: `p` is a live block of `size` bytes.
            unsafe { ptr::write_bytes(p, i as u8 + 1, size) };
            blocks.push((p, size, i as u8 + 1));
        }
        for &(p, size, byte) in &blocks {
            // SAFETY: every block is still live and `size` bytes long.
            let got = unsafe { std::slice::from_raw_parts(p, size) };
            assert!(
                got.iter().all(|&b| b == byte),
                "a later block overwrote this one"
            );
        }
    }

    #[test]
    fn the_newest_block_grows_in_place_and_is_given_back() {
        let a = Arena::new();
        // SAFETY: non-zero sizes; the blocks are used within their bounds.
        unsafe {
            let p = a.alloc(layout(16, 8));
            let q = a.realloc(p, layout(16, 8), 1000);
            assert_eq!(p, q, "the newest block grows where it is");
            let before = CURRENT.get().0;
            a.dealloc(q, layout(1000, 8));
            assert!(CURRENT.get().0 < before, "and is given back");
            let r = a.alloc(layout(8, 8));
            assert_eq!(r, p, "the space is handed out again");
        }
    }

    #[test]
    fn an_older_block_moves_with_its_contents() {
        let a = Arena::new();
        // SAFETY: non-zero sizes; the blocks are used within their bounds.
        unsafe {
            let p = a.alloc(layout(8, 1));
            ptr::copy_nonoverlapping(b"abcdefgh".as_ptr(), p, 8);
            let _later = a.alloc(layout(8, 1));
            let q = a.realloc(p, layout(8, 1), 64);
            assert_ne!(p, q);
            assert_eq!(std::slice::from_raw_parts(q, 8), b"abcdefgh");
            // Across the large threshold: now the system allocator's.
            let r = a.realloc(q, layout(64, 1), LARGE * 2);
            assert!(a.offset_of(r).is_none());
            assert_eq!(std::slice::from_raw_parts(r, 8), b"abcdefgh");
            let s = a.realloc(r, layout(LARGE * 2, 1), LARGE * 4);
            assert_eq!(std::slice::from_raw_parts(s, 8), b"abcdefgh");
            a.dealloc(s, layout(LARGE * 4, 1));
        }
    }

    #[test]
    fn zeroed_blocks_are_zero_even_when_reused() {
        let a = Arena::new();
        // SAFETY: non-zero sizes; the blocks are used within their bounds.
        unsafe {
            let p = a.alloc(layout(256, 16));
            ptr::write_bytes(p, 0xaa, 256);
            a.dealloc(p, layout(256, 16));
            let z = a.alloc_zeroed(layout(256, 16));
            assert_eq!(z, p);
            assert!(std::slice::from_raw_parts(z, 256).iter().all(|&b| b == 0));
        }
    }

    #[test]
    fn threads_get_disjoint_blocks() {
        let a = Arena::new();
        let ranges = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        (0..2000)
                            .map(|i| {
                                let size = 1 + i % 200;
                                // SAFETY: a non-zero size.
                                let p = unsafe { a.alloc(layout(size, 8)) } as usize;
                                (p, p + size)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect::<Vec<_>>()
        });
        let mut sorted = ranges;
        sorted.sort_unstable();
        for w in sorted.windows(2) {
            assert!(w[0].1 <= w[1].0, "overlapping blocks {w:?}");
        }
    }
}
