//! The camera pipeline: contiguous frame buffers, 30 frames per second.
//!
//! Timing is a sensor's: frame `f` arrives at `(f + 1) * period` (33.3 ms)
//! of sensor time whatever the pipeline does. A frame is written (by DMA,
//! here emulated by the CPU) into a buffer that was queued before it
//! arrived: the ring's buffer queued longest. A frame that finds no buffer
//! queued is dropped, counted once in [`CameraStats::dropped_frames`]; a
//! captured frame the pipeline gets to more than one period after its
//! arrival is late ([`CameraStats::deadline_misses`]). A buffer is queued
//! again once its frame is handled. A slow allocation therefore drops the
//! frames that arrive while nothing is queued and makes at most the frames
//! already captured late: frames arriving after it find their buffers, so
//! nothing cascades along the timeline. Sensor time is the counter without
//! the CPU's stand-in for the hardware (the DMA write and its checksum) and
//! without late wake-ups ([`SensorClock`]): what is left on the timeline is
//! the pipeline's own work, its allocations above all.
//!
//! A stream start allocates a ring of [`RING`] frame buffers (1080p NV12,
//! 3 MiB each); every frame is "captured" (the buffer filled at memory
//! bandwidth with a pattern that depends on the frame number) and
//! "processed" (a checksum pass that must match the pattern). The stream
//! stops and restarts every [`SESSION_FRAMES`] frames, as a camera app does,
//! so allocations recur; every other session allocates a buffer per frame
//! instead of using a ring (when a frame has arrived, the next frame's
//! buffer is allocated and queued, then the frame is processed and its
//! buffer freed). Halfway through every session, once that frame is
//! handled, a still photo is taken during preview: its 4K buffer (12 MiB)
//! is allocated while the session's frame buffers (per frame: the next
//! frame's) are allocated and queued, filled once, checked and freed.
//! Every allocation is timed and aligned as Linux aligns a
//! `dma_alloc_contiguous` request ([`contig::linux_cma_align_pages`]), the
//! same for every allocator.
//! Capture writes each page with the arch `copy_page` from a per-frame
//! template, plus a per-page tag word.
//!
//! The pipeline runs as its own task at [`PRIO_CAMERA`], above every load
//! task ([`spawn`], [`run_task`]). Rule: one camera task at a time; its
//! stats go to one shared slot when it ends, taken once by the caller
//! ([`take_result`]).

use alloc::vec::Vec;

use contig::{Allocation, AreaKind, CmaPolicy, Select, linux_cma_align_pages};

use frames::{PAGE_SIZE, PageBytes};

use crate::arch::page_ops::copy_page;
use crate::arch::timer;
use crate::sync::IrqLock;
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
    /// Frames the sensor delivered (captured or dropped).
    pub frames: u64,
    /// Captured frames handled more than one period after they arrived.
    pub deadline_misses: u64,
    /// Frames whose checksum did not match what was captured.
    pub corrupt_frames: u64,
    /// Frames that arrived with no buffer queued.
    pub dropped_frames: u64,
    /// Time kept off the sensor timeline ([`SensorClock`]): the CPU's
    /// stand-in for the hardware, and wake-ups later than asked for.
    pub hardware_ns: u64,
    pub wake_late_ns: u64,
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
    let base = buf.pfn.addr() as *mut PageBytes;
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
    let mem = unsafe { core::slice::from_raw_parts(buf.pfn.addr() as *const u64, words) };
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

/// Sensor time, in counter ticks since the run started, without the time
/// the camera task did not run the pipeline:
/// - the CPU standing in for the hardware: the DMA write of a capture and
///   the checksum that verifies it, which a real pipeline spends no CPU
///   time on ([`SensorClock::off_timeline`]);
/// - a wake-up later than asked for ([`SensorClock::sleep_until`]): under
///   TCG on a shared host the emulator itself is descheduled for tens of
///   milliseconds at times, guest time running on meanwhile.
///
/// Both would drop frames for every allocator alike (they are reported
/// apart, [`CameraStats::hardware_ns`], [`CameraStats::wake_late_ns`]).
/// Allocations, frees and the pipeline's bookkeeping stay on the timeline,
/// host stalls during them included.
struct SensorClock {
    start: u64,
    excluded: u64,
    hardware: u64,
    wake_late: u64,
}

impl SensorClock {
    fn new() -> Self {
        SensorClock {
            start: timer::ticks(),
            excluded: 0,
            hardware: 0,
            wake_late: 0,
        }
    }

    fn now(&self) -> u64 {
        timer::ticks() - self.start - self.excluded
    }

    /// Sleeps until sensor time `t`; returns at once if it has passed (the
    /// pipeline's own work made it late). A wake-up past `t` moves the
    /// timeline with it.
    fn sleep_until(&mut self, t: u64) {
        let target = self.start + self.excluded + t;
        if timer::ticks() >= target {
            return;
        }
        sched::sleep_until(target);
        let late = timer::ticks().saturating_sub(target);
        self.excluded += late;
        self.wake_late += late;
    }

    /// Runs the hardware's share of the work, off the timeline.
    fn off_timeline<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let t0 = timer::ticks();
        let r = f();
        let spent = timer::ticks() - t0;
        self.excluded += spent;
        self.hardware += spent;
        r
    }
}

/// [`run`] with the CMA policy given (unused for GCMA and carveouts).
pub fn run_with(kind: AreaKind, policy: CmaPolicy, frames: usize) -> CameraStats {
    let mut st = CameraStats::default();
    let period = timer::ns_to_ticks(PERIOD_NS);
    let mut clock = SensorClock::new();
    // The session's buffers, each with the sensor time it was (re)queued.
    let mut ring: Vec<(Allocation, u64)> = Vec::new();
    for f in 0..frames as u64 {
        let pos = f as usize % SESSION_FRAMES;
        let per_frame = (f as usize / SESSION_FRAMES) % 2 == 1;
        if ring.is_empty() {
            let n = if per_frame { 1 } else { RING };
            for _ in 0..n {
                st.frame_attempts += 1;
                if let Some(a) = alloc_timed(kind, policy, FRAME_PAGES, &mut st.frame_alloc_ns) {
                    st.frame_successes += 1;
                    ring.push((a, clock.now()));
                }
            }
        }
        let at = (f + 1) * period;
        clock.sleep_until(at);
        st.frames += 1;
        let queued = ring
            .iter()
            .enumerate()
            .filter(|(_, (_, since))| *since <= at)
            .min_by_key(|(_, (_, since))| *since)
            .map(|(i, _)| i);
        match queued {
            None => st.dropped_frames += 1,
            Some(i) => {
                // The frame is in buffer i since it arrived. A per-frame
                // session queues the next frame's buffer now, before
                // processing this one (not after a session's last frame).
                let buf = ring[i].0;
                if per_frame {
                    ring.swap_remove(i);
                    if pos + 1 < SESSION_FRAMES && f + 1 < frames as u64 {
                        st.frame_attempts += 1;
                        if let Some(a) =
                            alloc_timed(kind, policy, FRAME_PAGES, &mut st.frame_alloc_ns)
                        {
                            st.frame_successes += 1;
                            ring.push((a, clock.now()));
                        }
                    }
                }
                if clock.now() > at + period {
                    st.deadline_misses += 1;
                }
                if !clock.off_timeline(|| capture_and_process(&buf, f)) {
                    st.corrupt_frames += 1;
                }
                if per_frame {
                    let _ = memsys::free(buf);
                } else {
                    ring[i].1 = clock.now();
                }
            }
        }
        if pos == SESSION_FRAMES / 2 {
            // A still during preview, once this frame is handled: the
            // session's buffers (per frame: the next frame's) stay queued.
            st.photo_attempts += 1;
            if let Some(a) = alloc_timed(kind, policy, PHOTO_PAGES, &mut st.photo_alloc_ns) {
                st.photo_successes += 1;
                if !clock.off_timeline(|| capture_and_process(&a, f)) {
                    st.corrupt_frames += 1;
                }
                let _ = memsys::free(a);
            }
        }
        if pos == SESSION_FRAMES - 1 {
            for (a, _) in ring.drain(..) {
                let _ = memsys::free(a);
            }
        }
    }
    for (a, _) in ring.drain(..) {
        let _ = memsys::free(a);
    }
    st.hardware_ns = timer::ticks_to_ns(clock.hardware);
    st.wake_late_ns = timer::ticks_to_ns(clock.wake_late);
    st
}

/// Stats of the last camera task, set when it ends.
static CAMERA_RESULT: IrqLock<Option<CameraStats>> = IrqLock::new(None);

/// Starts the camera as its own high-priority task with a CMA policy
/// (ignored for the other kinds); its stats appear in [`take_result`] when
/// it ends. One camera task at a time.
pub fn spawn(kind: AreaKind, policy: CmaPolicy, frames: usize) -> sched::TaskId {
    *CAMERA_RESULT.lock() = None;
    sched::spawn("camera", PRIO_CAMERA, move || {
        let st = match policy {
            CmaPolicy::Linux => run(kind, frames),
            p => run_with(kind, p, frames),
        };
        *CAMERA_RESULT.lock() = Some(st);
    })
}

/// The stats of the camera task once it has ended (taken once).
pub fn take_result() -> Option<CameraStats> {
    CAMERA_RESULT.lock().take()
}

/// Whether the camera task [`spawn`] started has ended.
pub fn done() -> bool {
    CAMERA_RESULT.lock().is_some()
}

/// Runs the camera as its own high-priority task and returns its stats.
pub fn run_task(kind: AreaKind, policy: CmaPolicy, frames: usize) -> CameraStats {
    let id = spawn(kind, policy, frames);
    sched::join(id);
    take_result().unwrap_or_default()
}
