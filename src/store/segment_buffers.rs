//! A global allocator that keeps a few of sled's freed IO buffers for the next one.
//!
//! sled 0.34 writes its log through IO buffers of one segment (512 KiB, aligned to 8 KiB),
//! allocating a fresh one every time a buffer is sealed (when full, and at every flush) and
//! freeing the old one once written. At that size glibc serves each from its own `mmap`
//! (see [`super::tune_malloc`] for why the threshold stays there), so every buffer cost an
//! `mmap`, a `munmap`, and a page fault for each 4 KiB page the log wrote into it (about
//! 2.5 µs each on the 2-core test machine). [`SegmentBuffers`] keeps up to [`KEPT_BUFFERS`]
//! freed buffers of exactly that layout and hands them back out, already mapped; everything
//! else goes straight to the system allocator. A 1M-recipient list load test took 30.8k page
//! faults before and 17.2k with it (a 10M one 177k and 39k, medians of 2), and sled's 127
//! segment `mmap`s became none.
//!
//! A reused buffer holds the bytes of its last use, which is what `alloc` allows: sled
//! initialises every byte it writes to disk (a buffer's unused tail is padded first), and it
//! already meets old bytes whenever glibc serves these buffers from its heap (glibc's default
//! sliding threshold does, after the first one is freed).

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

/// The size of sled's IO buffers: its default segment size, which the store keeps.
pub const SEGMENT_BYTES: usize = 512 * 1024;
/// The alignment sled asks of them.
pub const SEGMENT_ALIGN: usize = 8192;
/// How many freed buffers are kept (at most 1 MiB held back from the system).
pub const KEPT_BUFFERS: usize = 2;

/// The system allocator, plus a small stash of freed segment buffers.
pub struct SegmentBuffers {
    kept: [AtomicPtr<u8>; KEPT_BUFFERS],
}

impl SegmentBuffers {
    /// An allocator with no buffers kept yet.
    pub const fn new() -> SegmentBuffers {
        SegmentBuffers { kept: [const { AtomicPtr::new(ptr::null_mut()) }; KEPT_BUFFERS] }
    }

    fn is_segment(layout: Layout) -> bool {
        layout.size() == SEGMENT_BYTES && layout.align() == SEGMENT_ALIGN
    }

    /// A kept buffer, now the caller's alone (the swap takes it out of its slot).
    fn take(&self) -> Option<*mut u8> {
        self.kept.iter().map(|slot| slot.swap(ptr::null_mut(), Ordering::Acquire)).find(|p| !p.is_null())
    }

    /// Keeps `block` in an empty slot; false when all are full (the caller frees it).
    fn keep(&self, block: *mut u8) -> bool {
        self.kept
            .iter()
            .any(|slot| slot.compare_exchange(ptr::null_mut(), block, Ordering::Release, Ordering::Relaxed).is_ok())
    }
}

impl Default for SegmentBuffers {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: every block handed out is either fresh from `System` for the same layout, or a block
// `System` allocated for the segment layout that was freed to us with that layout and kept in
// one slot. A slot holds a block from `keep`'s compare-exchange (which stores only into an
// empty slot, so no block is lost or stored twice) until `take`'s swap empties it, and the
// swap gives it to exactly one caller: no block is ever handed out twice or freed while
// kept. Blocks are given back to `System` with the layout they were allocated with.
unsafe impl GlobalAlloc for SegmentBuffers {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if Self::is_segment(layout) {
            if let Some(block) = self.take() {
                return block;
            }
        }
        // SAFETY: the caller's layout contract passes through unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        if Self::is_segment(layout) && self.keep(block) {
            return;
        }
        // SAFETY: `block` came from `System` with this layout (kept blocks included).
        unsafe { System.dealloc(block, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if Self::is_segment(layout) {
            if let Some(block) = self.take() {
                // SAFETY: a kept block is SEGMENT_BYTES long and ours alone.
                unsafe { ptr::write_bytes(block, 0, SEGMENT_BYTES) };
                return block;
            }
        }
        // SAFETY: as in `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = Layout::from_size_align(new_size, layout.align());
        if Self::is_segment(layout) || new_layout.as_ref().is_ok_and(|l| Self::is_segment(*l)) {
            // Growing into or shrinking out of the segment layout: allocate, copy, free, so a
            // kept block is never resized by `System` under a layout it was not given.
            let Ok(new_layout) = new_layout else { return ptr::null_mut() };
            // SAFETY: `new_layout` is valid (checked) and non-zero (`new_size` > 0 by contract).
            let fresh = unsafe { self.alloc(new_layout) };
            if !fresh.is_null() {
                // SAFETY: both blocks are at least min(old, new) long and distinct.
                unsafe {
                    ptr::copy_nonoverlapping(block, fresh, layout.size().min(new_size));
                    self.dealloc(block, layout);
                }
            }
            return fresh;
        }
        // SAFETY: neither layout is the segment's, so `block` is `System`'s, as allocated.
        unsafe { System.realloc(block, layout, new_size) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment() -> Layout {
        Layout::from_size_align(SEGMENT_BYTES, SEGMENT_ALIGN).expect("a valid layout")
    }

    #[test]
    fn the_layout_is_the_one_sled_allocates() {
        // The store leaves sled's segment size at its default; a sled that changed it would
        // leave this allocator keeping nothing.
        assert_eq!(sled::Config::default().segment_size, SEGMENT_BYTES);
    }

    #[test]
    fn a_freed_segment_buffer_is_handed_out_again_and_others_are_not_kept() {
        let a = SegmentBuffers::new();
        unsafe {
            let first = a.alloc(segment());
            assert!(!first.is_null());
            first.write(7);
            a.dealloc(first, segment());
            let again = a.alloc(segment());
            assert_eq!(again, first, "the kept buffer comes back");
            let other = Layout::from_size_align(SEGMENT_BYTES, 8).expect("a layout");
            let small = a.alloc(other);
            a.dealloc(small, other);
            assert!(a.kept.iter().all(|s| s.load(Ordering::Relaxed).is_null()), "another layout is not kept");
            a.dealloc(again, segment());
        }
    }

    #[test]
    fn at_most_the_kept_number_is_held_and_zeroed_buffers_are_zero() {
        let a = SegmentBuffers::new();
        unsafe {
            let blocks: Vec<*mut u8> = (0..KEPT_BUFFERS + 2).map(|_| a.alloc(segment())).collect();
            for &b in &blocks {
                b.write_bytes(0xAB, SEGMENT_BYTES);
            }
            for &b in &blocks {
                a.dealloc(b, segment());
            }
            let kept = a.kept.iter().filter(|s| !s.load(Ordering::Relaxed).is_null()).count();
            assert_eq!(kept, KEPT_BUFFERS);
            let zeroed = a.alloc_zeroed(segment());
            assert!(blocks.contains(&zeroed), "a kept buffer is reused");
            assert!(std::slice::from_raw_parts(zeroed, SEGMENT_BYTES).iter().all(|&b| b == 0));
            a.dealloc(zeroed, segment());
            while let Some(b) = a.take() {
                System.dealloc(b, segment());
            }
        }
    }

    #[test]
    fn resizing_into_and_out_of_the_segment_layout_keeps_the_bytes() {
        let a = SegmentBuffers::new();
        unsafe {
            let small = Layout::from_size_align(64, SEGMENT_ALIGN).expect("a layout");
            let p = a.alloc(small);
            p.write_bytes(5, 64);
            let grown = a.realloc(p, small, SEGMENT_BYTES);
            assert!(std::slice::from_raw_parts(grown, 64).iter().all(|&b| b == 5));
            let shrunk = a.realloc(grown, segment(), 32);
            assert!(std::slice::from_raw_parts(shrunk, 32).iter().all(|&b| b == 5));
            assert_eq!(a.kept.iter().filter(|s| !s.load(Ordering::Relaxed).is_null()).count(), 1, "the grown one kept");
            a.dealloc(shrunk, Layout::from_size_align(32, SEGMENT_ALIGN).expect("a layout"));
            while let Some(b) = a.take() {
                System.dealloc(b, segment());
            }
        }
    }
}
