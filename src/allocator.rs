//! The binary's global allocator: mimalloc, called the way the standard
//! library calls the system `malloc`.
//!
//! The `mimalloc` crate passes every request to `mi_malloc_aligned`. In
//! mimalloc 3 that takes the ordinary path only for power-of-two block
//! sizes, and over-allocates everything else over 1 KiB (a bigger block,
//! an interior pointer, a slower free): about four allocations of each
//! webhook (benches/README.md, fourth pass). Plain `mi_malloc` already aligns to
//! 16 bytes, as C's `malloc` must, so, like std's `System` allocator, this
//! asks for an aligned block only when the layout needs more.
//!
//! Built with libmimalloc-sys's `override` feature, so librdkafka's and
//! OpenSSL's `malloc` land in mimalloc too (librdkafka allocates each
//! record, its header list and every header on the request's thread and
//! frees them on its own), and `no_thp`, so mimalloc does not back its
//! arenas with 2 MiB pages (which made idle RSS 23-30 MiB instead of 16).
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys::{
    mi_free, mi_malloc, mi_malloc_aligned, mi_realloc, mi_realloc_aligned, mi_zalloc, mi_zalloc_aligned,
};

/// The alignment every `mi_malloc` block of at least this size has (C's `max_align_t`).
const MALLOC_ALIGN: usize = 16;

/// mimalloc as the Rust global allocator.
pub(crate) struct MiMalloc;

/// True when a plain `mi_malloc(size)` block is aligned enough for `align`.
fn plain_fits(align: usize, size: usize) -> bool {
    align <= MALLOC_ALIGN && align <= size
}

// SAFETY: every function hands mimalloc the size and alignment Rust asked for,
// frees only what mimalloc returned, and returns null on failure as mimalloc does.
unsafe impl GlobalAlloc for MiMalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if plain_fits(layout.align(), layout.size()) {
            mi_malloc(layout.size()).cast()
        } else {
            mi_malloc_aligned(layout.size(), layout.align()).cast()
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if plain_fits(layout.align(), layout.size()) {
            mi_zalloc(layout.size()).cast()
        } else {
            mi_zalloc_aligned(layout.size(), layout.align()).cast()
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        mi_free(ptr.cast::<c_void>());
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if plain_fits(layout.align(), new_size) {
            mi_realloc(ptr.cast::<c_void>(), new_size).cast()
        } else {
            mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Allocates, grows and frees blocks of many sizes at every alignment up to
    /// a page, checking each address, as the request path's mix of types does.
    #[test]
    fn every_block_has_the_alignment_its_layout_asks_for() {
        let sizes = [
            1,
            7,
            8,
            15,
            16,
            24,
            40,
            48,
            100,
            1000,
            1025,
            1500,
            4096,
            5000,
            70_000,
            1 << 21,
        ];
        for align in (0..=12).map(|shift| 1usize << shift) {
            for &size in &sizes {
                let layout = Layout::from_size_align(size, align).unwrap();
                for zeroed in [false, true] {
                    // SAFETY: the layouts have a non-zero size; each block is freed once, with its layout.
                    unsafe {
                        let block = if zeroed {
                            MiMalloc.alloc_zeroed(layout)
                        } else {
                            MiMalloc.alloc(layout)
                        };
                        assert!(!block.is_null());
                        assert_eq!(block as usize % align, 0, "size {size}, align {align}");
                        if zeroed {
                            assert!(std::slice::from_raw_parts(block, size).iter().all(|&byte| byte == 0));
                        }
                        block.write_bytes(0xa5, size);
                        let grown = MiMalloc.realloc(block, layout, size * 3);
                        assert_eq!(grown as usize % align, 0, "grown from {size}, align {align}");
                        assert!(std::slice::from_raw_parts(grown, size).iter().all(|&byte| byte == 0xa5));
                        MiMalloc.dealloc(grown, Layout::from_size_align(size * 3, align).unwrap());
                    }
                }
            }
        }
    }
}
