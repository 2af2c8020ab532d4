//! The gzip inflation cap (`decode_body` reads at most `max_bytes + 1` inflated bytes) measured
//! where it matters: memory. A counting global allocator records the peak number of bytes live
//! while a gzip bomb is decoded. Without the cap the whole bomb is inflated before the 413, and
//! the peak is the bomb's inflated size; with it, a small multiple of `max_bytes`.
//!
//! This binary holds one test only, so nothing else allocates while it measures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

use currents_segment::ingest::decode_body;
use flate2::Compression;
use flate2::write::GzEncoder;

/// `System`, counting the bytes live now and the most live at once since the last reset.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let live = LIVE.fetch_add(bytes, Ordering::SeqCst) + bytes;
    PEAK.fetch_max(live, Ordering::SeqCst);
}

fn shrank(bytes: usize) {
    LIVE.fetch_sub(bytes, Ordering::SeqCst);
}

// SAFETY: every call is passed to `System` unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which `System` shares.
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            grew(layout.size());
        }
        pointer
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let pointer = unsafe { System.alloc_zeroed(layout) };
        if !pointer.is_null() {
            grew(layout.size());
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: `pointer` came from `System` with this `layout`.
        unsafe { System.dealloc(pointer, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `pointer` came from `System` with this `layout`. A moving realloc holds both
        // blocks at once, so count the new block before the old one is released.
        let moved = unsafe { System.realloc(pointer, layout, new_size) };
        if !moved.is_null() {
            grew(new_size);
            shrank(layout.size());
        }
        moved
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const MIB: usize = 1024 * 1024;

/// `inflated` zero bytes, gzip-compressed, written in 64 KiB pieces so the bomb itself is never
/// held inflated.
fn gzip_zeros(inflated: usize) -> Vec<u8> {
    let piece = vec![0u8; 64 * 1024];
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    for _ in 0..inflated / piece.len() {
        encoder.write_all(&piece).unwrap();
    }
    encoder.finish().unwrap()
}

#[test]
fn a_gzip_bomb_is_refused_without_inflating_more_than_the_cap() {
    let max_bytes = MIB;
    let bomb = gzip_zeros(64 * MIB);
    assert!(
        bomb.len() < max_bytes,
        "the compressed bomb itself passes the size check"
    );

    let before = LIVE.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    let outcome = decode_body(&bomb, Some("gzip"), max_bytes);
    let peak = PEAK.load(Ordering::SeqCst) - before;

    let error = outcome.expect_err("a bomb is refused");
    assert_eq!(error.status().as_u16(), 413, "{error}");
    // Reading max_bytes + 1 bytes into a growing Vec holds at most about 2 × max_bytes, plus
    // the decoder's window and state: about 3.2 MB measured. Without the cap the whole bomb is
    // inflated first, over 64 MiB (about 200 MB measured, counting the Vec's doublings).
    assert!(
        peak <= 8 * max_bytes,
        "decoding a {} KiB bomb held {peak} bytes at peak; the cap is {max_bytes}",
        bomb.len() / 1024
    );
}
