//! The camera pipeline: contiguous frame buffers, 30 frames per second.
//!
//! A stream start allocates a ring of [`RING`] frame buffers (1080p NV12,
//! 3 MiB each); every frame is "captured" (the buffer filled at memory
//! bandwidth with a pattern that depends on the frame number, as a DMA
//! engine would) and "processed" (a checksum pass that must match the
//! pattern), against a 33.3 ms deadline. The stream stops and restarts
//! every [`SESSION_FRAMES`] frames, as a camera app does, so allocations
//! recur; every other session allocates per frame instead of using a ring,
//! and every session ends with a still photo that needs one 4K buffer
//! (12 MiB). Every allocation is timed and aligned as Linux aligns a
//! `dma_alloc_contiguous` request ([`contig::linux_cma_align_pages`]), the
//! same for every allocator. Capture writes each page with the arch
//! `copy_page` from a per-frame template, plus a per-page tag word.

use alloc::vec::Vec;

use contig::{Allocation, AreaKind, CmaPolicy, Select, linux_cma_align_pages};

use frames::{PAGE_SIZE, PageBytes, Pfn};

use crate::arch::page_ops::copy_page;
use crate::arch::timer;
use crate::{memsys, sched};

/// 1920 x 1080 NV12 (12 bits per pixel), in pages.
pub const FRAME_PAGES: usize = (1920 * 1080 * 3 / 2usize).div_ceil(PAGE_SIZE as usize);
/// 3840 x 2160 NV12, in pages (the 12 MiB request).
pub const PHOTO_PAGES: usize = (3840 * 2160 * 3 / 2usize).div_ceil(PAGE_SIZE as usize);
/// Buffers in the streaming ring.
pub const RING: usize = 4;
/// Frames per stream session.
pub const SESSION_FRAMES: usize = 15;
/// Frame period: 30 frames per second.
pub const PERIOD_NS: u64 = 1_000_000_000 / 30;
/// Priority of the camera task: above everything else.
pub const PRIO_CAMERA: u8 = 30;

/// What one run measured.
#[derive(Default, Clone)]
pub struct CameraStats {
    /// Latency of every frame-buffer allocation attempt, ns.
    pub frame_alloc_ns: Vec<u64>,
    pub frame_attempts: u64,
    pub frame_successes: u64,
    /// The same for the 12 MiB photo buffer.
    pub photo_alloc_ns: Vec<u64>,
    pub photo_attempts: u64,
    pub photo_successes: u64,
    pub frames: u64,
    pub deadline_misses: u64,
    /// Frames whose checksum did not match what was captured.
    pub corrupt_frames: u64,
    pub dropped_frames: u64,
}

fn alloc_timed(
    kind: AreaKind,
    policy: CmaPolicy,
    pages: usize,
    lat: &mut Vec<u64>,
) -> Option<Allocation> {
    let t0 = timer::ticks();
    let r = memsys::alloc_with(
        Select::Kind(kind),
        pages,
        linux_cma_align_pages(pages),
        policy,
    );
    lat.push(timer::ticks_to_ns(timer::ticks() - t0));
    r.ok()
}

fn pattern(frame: u64, i: usize) -> u64 {
    (frame << 32) ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// A page of the capture template, aligned for `copy_page`.
#[repr(C, align(4096))]
struct TemplatePage(PageBytes);

/// Capture: every page of the buffer written from the frame's template
/// page with `copy_page` (as a DMA engine would, at memory bandwidth), then
/// its first word set to a per-page tag; process: checksum every word
/// against the pattern.
fn capture_and_process(buf: &Allocation, frame: u64) -> bool {
    const WORDS: usize = PAGE_SIZE as usize / 8;
    let mut tpl = TemplatePage([0; PAGE_SIZE as usize]);
    let mut tpl_sum = 0u64;
    for (j, w) in tpl.0.chunks_exact_mut(8).enumerate() {
        let v = pattern(frame, j);
        w.copy_from_slice(&v.to_ne_bytes());
        if j > 0 {
            tpl_sum = tpl_sum.wrapping_add(v);
        }
    }
    let base = Pfn(buf.pfn).addr() as *mut PageBytes;
    let mut want = 0u64;
    for p in 0..buf.count {
        // SAFETY: the allocation owns `count` identity-mapped pages until it
        // is freed, and only this task uses it; page `p < count` is one of
        // them.
        let page = unsafe { &mut *base.add(p) };
        copy_page(page, &tpl.0);
        let tag = pattern(frame, p * WORDS);
        page[..8].copy_from_slice(&tag.to_ne_bytes());
        want = want.wrapping_add(tag).wrapping_add(tpl_sum);
    }
    let words = buf.count * WORDS;
    // SAFETY: as above: the `count` pages of the allocation, read as words
    // (page-aligned, so aligned for u64), only by this task.
    let mem = unsafe { core::slice::from_raw_parts(Pfn(buf.pfn).addr() as *const u64, words) };
    let sum = mem.iter().fold(0u64, |s, w| s.wrapping_add(*w));
    sum == want
}

/// One untimed allocation and free of each buffer size, done before the
/// system is loaded (for every allocator alike): under TCG the first run of
/// a code path includes translating it.
pub fn warm_up(kind: AreaKind) {
    for pages in [FRAME_PAGES, PHOTO_PAGES] {
        if let Ok(a) = memsys::alloc(Select::Kind(kind), pages, linux_cma_align_pages(pages)) {
            let _ = memsys::free(a);
        }
    }
}

/// Runs the pipeline for `frames` frames on areas of `kind` (CMA: the
/// Linux policy).
pub fn run(kind: AreaKind, frames: usize) -> CameraStats {
    run_with(kind, CmaPolicy::Linux, frames)
}

/// [`run`] with the CMA policy given (unused for GCMA and carveouts).
pub fn run_with(kind: AreaKind, policy: CmaPolicy, frames: usize) -> CameraStats {
    let mut st = CameraStats::default();
    let start = timer::ticks();
    let period = timer::ns_to_ticks(PERIOD_NS);
    let mut ring: Vec<Allocation> = Vec::new();
    let mut session = 0usize;
    for f in 0..frames as u64 {
        let deadline = start + (f + 1) * period;
        let per_frame = session % 2 == 1;
        if ring.is_empty() {
            let n = if per_frame { 1 } else { RING };
            for _ in 0..n {
                st.frame_attempts += 1;
                if let Some(a) = alloc_timed(kind, policy, FRAME_PAGES, &mut st.frame_alloc_ns) {
                    st.frame_successes += 1;
                    ring.push(a);
                }
            }
        }
        let slot = (f as usize) % ring.len().max(1);
        match ring.get(slot) {
            Some(buf) => {
                if !capture_and_process(buf, f) {
                    st.corrupt_frames += 1;
                }
            }
            None => st.dropped_frames += 1,
        }
        st.frames += 1;
        if timer::ticks() > deadline || ring.is_empty() {
            st.deadline_misses += 1;
        }
        let session_end = (f as usize + 1).is_multiple_of(SESSION_FRAMES);
        if per_frame || session_end {
            for a in ring.drain(..) {
                let _ = memsys::free(a);
            }
        }
        if session_end {
            // A still photo: one 4K buffer, filled once, then freed.
            st.photo_attempts += 1;
            if let Some(a) = alloc_timed(kind, policy, PHOTO_PAGES, &mut st.photo_alloc_ns) {
                st.photo_successes += 1;
                if !capture_and_process(&a, f) {
                    st.corrupt_frames += 1;
                }
                let _ = memsys::free(a);
            }
            session += 1;
        }
        sched::sleep_until(deadline);
    }
    for a in ring.drain(..) {
        let _ = memsys::free(a);
    }
    st
}
