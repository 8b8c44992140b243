//! Timing probes in the kernel: the generic timer as the probes' clock,
//! console reports, and the kernel's own basic measurements.
//!
//! Probes themselves (ring buffers, percentiles, tables, `@probe` lines) are
//! the `probe` crate; this module installs CNTPCT_EL0/CNTFRQ_EL0 as its clock
//! once the MMU is on (the probes' atomics need cacheable memory).

use alloc::format;
use alloc::string::String;
use alloc::vec;

use probe::{AnyProbe, Probe, Summary};

use crate::arch::timer;
use crate::{BootInfo, console, mm, println};

probe::probe!(pub EMPTY = "probe.empty");
probe::probe!(pub FRAME_ALLOC_FREE = "frames.alloc_free");
probe::probe!(pub PAGE_ZERO = "page.zero_4k");
probe::probe!(pub PAGE_COPY = "page.copy_4k");
probe::probe!(pub HEAP_ALLOC_FREE = "heap.alloc_free_4k");

/// Installs the generic timer as the probes' clock.
pub fn init() {
    probe::set_clock(timer::ticks, timer::frequency());
}

/// Prints an aligned table, a distribution line per probe and one `@probe`
/// line per probe.
pub fn report(probes: &[&dyn AnyProbe]) {
    let mut scratch = vec![0u64; probe::DEFAULT_CAPACITY.max(4096)];
    let freq = probe::freq_hz();
    let mut out = console::Writer;
    let _ = probe::write_report(&mut out, probes, &mut scratch, freq);
    let _ = probe::write_distributions(&mut out, probes, &mut scratch, freq);
}

/// Measures the probe's own overhead and the page operations every later
/// allocator is compared with (zeroing and copying a page).
pub fn measure_basics() {
    const ROUNDS: usize = 1000;
    let src = vec![0x5au8; 4096];
    let mut dst = vec![0u8; 4096];
    for _ in 0..ROUNDS {
        let t = EMPTY.start();
        EMPTY.stop(t);

        let t = PAGE_ZERO.start();
        // SAFETY: `dst` is a live 4 KiB buffer; volatile-free write_bytes is
        // fine because the result is read below (black_box keeps it).
        unsafe { core::ptr::write_bytes(dst.as_mut_ptr(), 0, 4096) };
        core::hint::black_box(&mut dst);
        PAGE_ZERO.stop(t);

        let t = PAGE_COPY.start();
        dst.copy_from_slice(&src);
        core::hint::black_box(&mut dst);
        PAGE_COPY.stop(t);

        let t = FRAME_ALLOC_FREE.start();
        let pfn = mm::with_frames(|f| f.alloc(0, frames::FrameState::Kernel));
        if let Ok(pfn) = pfn {
            let _ = mm::with_frames(|f| f.free(pfn, 0));
        }
        FRAME_ALLOC_FREE.stop(t);

        let t = HEAP_ALLOC_FREE.start();
        core::hint::black_box(vec![0u8; 4096]);
        HEAP_ALLOC_FREE.stop(t);
    }
    println!(
        "probes: {ROUNDS} rounds each, timer at {} Hz",
        timer::frequency()
    );
    report(&[
        &EMPTY,
        &PAGE_ZERO,
        &PAGE_COPY,
        &FRAME_ALLOC_FREE,
        &HEAP_ALLOC_FREE,
    ]);
}

/// Self-test: probes record what happens, in the right order of magnitude.
pub fn selftest(_: &BootInfo) -> Result<(), String> {
    static WAIT: Probe<64> = Probe::new("selftest.spin_100us");
    static KNOWN: Probe<128> = Probe::new("selftest.known");
    WAIT.reset();
    KNOWN.reset();
    for _ in 0..20 {
        let t = WAIT.start();
        timer::spin_ns(100_000);
        WAIT.stop(t);
    }
    let mut scratch = vec![0u64; 256];
    let freq = probe::freq_hz();
    if freq != timer::frequency() {
        return Err(format!(
            "probe clock at {freq} Hz, timer at {} Hz",
            timer::frequency()
        ));
    }
    let s = Summary::of(&WAIT, &mut scratch, freq);
    if s.count != 20 {
        return Err(format!("recorded {} intervals, want 20", s.count));
    }
    if s.min_ns < 100_000 {
        return Err(format!("a 100 us spin measured {} ns", s.min_ns));
    }
    if !(s.p50_ns <= s.p99_ns && s.p99_ns <= s.max_ns && s.min_ns <= s.p50_ns) {
        return Err(format!("percentiles out of order: {s:?}"));
    }
    // Exact statistics for known durations: 1..=100 units, then a ring wrap.
    let unit = 1000u64; // ticks
    let ns = |units: u64| probe::ticks_to_ns(units * unit, freq);
    for t in 1..=100u64 {
        KNOWN.record_ticks(t * unit);
    }
    let k = Summary::of(&KNOWN, &mut scratch, freq);
    if (k.count, k.p50_ns, k.p99_ns, k.max_ns) != (100, ns(50), ns(99), ns(100)) {
        return Err(format!("known samples summarised as {k:?}"));
    }
    for _ in 0..200 {
        KNOWN.record_ticks(unit);
    }
    let k = Summary::of(&KNOWN, &mut scratch, freq);
    if (k.count, k.max_ns, k.p99_ns) != (300, ns(100), ns(1)) {
        return Err(format!("after the ring wrapped: {k:?}"));
    }
    Ok(())
}
