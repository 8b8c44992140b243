//! Self-tests of the scheduler: sleeping, preemption, round robin, FP state.

use alloc::format;
use alloc::vec::Vec;

use super::TestResult;
use crate::BootInfo;
use crate::arch::timer;
use crate::sched;
use probe::AnyProbe;

pub fn sched_sleep(_: &BootInfo) -> TestResult {
    check!(sched::started(), "scheduler not running");
    let before = sched::WAKE_LATENCY.totals().count;
    for ms in [1u64, 3, 5] {
        let t0 = timer::now_ns();
        sched::sleep_ns(ms * 1_000_000);
        let dt = timer::now_ns() - t0;
        check!(
            dt >= ms * 1_000_000,
            "sleep of {ms} ms returned after {dt} ns"
        );
    }
    let after = sched::WAKE_LATENCY.totals().count;
    check!(
        after == before + 3,
        "wake-up latency probe recorded {} wake-ups, want 3",
        after - before
    );
    Ok(())
}

pub fn sched_preemption(_: &BootInfo) -> TestResult {
    use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    static PROGRESS: AtomicU64 = AtomicU64::new(0);
    static STOP: AtomicBool = AtomicBool::new(false);
    static SEEN: crate::sync::IrqLock<Vec<u64>> = crate::sync::IrqLock::new(Vec::new());
    PROGRESS.store(0, Ordering::Relaxed);
    STOP.store(false, Ordering::Relaxed);
    SEEN.lock().clear();
    // A low-priority task that never yields, and a high-priority one that
    // wakes 20 times: it can only run if the timer interrupt preempts.
    let busy = sched::spawn("busy", 5, || {
        while !STOP.load(Ordering::Relaxed) {
            PROGRESS.fetch_add(1, Ordering::Relaxed);
        }
    });
    let high = sched::spawn("periodic", 20, || {
        for _ in 0..20 {
            sched::sleep_ns(1_000_000);
            let p = PROGRESS.load(Ordering::Relaxed);
            SEEN.lock().push(p);
        }
        STOP.store(true, Ordering::Relaxed);
    });
    sched::join(high);
    sched::join(busy);
    let seen = SEEN.lock().clone();
    check!(
        seen.len() == 20,
        "periodic task woke {} times, want 20",
        seen.len()
    );
    // The busy task never yields, so every wake-up after the first sleep
    // was a preemption. Under TCG the host may stall the guest for a whole
    // period, so progress between two particular wake-ups is not
    // guaranteed; progress over the run is.
    check!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "progress counter went backwards: {seen:?}"
    );
    check!(
        seen[19] > seen[0],
        "busy task made no progress while being preempted: {seen:?}"
    );
    Ok(())
}

pub fn sched_round_robin(_: &BootInfo) -> TestResult {
    use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    static A: AtomicU64 = AtomicU64::new(0);
    static B: AtomicU64 = AtomicU64::new(0);
    static STOP: AtomicBool = AtomicBool::new(false);
    A.store(0, Ordering::Relaxed);
    B.store(0, Ordering::Relaxed);
    STOP.store(false, Ordering::Relaxed);
    let a = sched::spawn("spin-a", 5, || {
        while !STOP.load(Ordering::Relaxed) {
            A.fetch_add(1, Ordering::Relaxed);
        }
    });
    let b = sched::spawn("spin-b", 5, || {
        while !STOP.load(Ordering::Relaxed) {
            B.fetch_add(1, Ordering::Relaxed);
        }
    });
    // Main (above both) sleeps across several slices, then stops them. On a
    // loaded host QEMU may deliver the first slice interrupt only after
    // main's deadline (main then wins and A is picked again when it sleeps),
    // so main sleeps again, twice as long each time (10 slices up to 640,
    // 2.5 s in all), until both have run. With round robin broken B never
    // runs and this fails.
    let mut slices = 10;
    while slices <= 640 {
        sched::sleep_ns(slices * sched::SLICE_NS);
        if A.load(Ordering::Relaxed) > 0 && B.load(Ordering::Relaxed) > 0 {
            break;
        }
        slices *= 2;
    }
    STOP.store(true, Ordering::Relaxed);
    sched::join(a);
    sched::join(b);
    let (a, b) = (A.load(Ordering::Relaxed), B.load(Ordering::Relaxed));
    check!(
        a > 0 && b > 0,
        "equal-priority tasks did not share the CPU: {a} and {b} iterations"
    );
    Ok(())
}

pub fn sched_fp_preserved(_: &BootInfo) -> TestResult {
    use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    static RESULT: AtomicU64 = AtomicU64::new(0);
    static STOP: AtomicBool = AtomicBool::new(false);
    fn series(n: u32) -> f64 {
        let mut acc = 0.0f64;
        for k in 1..=n {
            let x = k as f64;
            acc += core::hint::black_box(1.0 / (x * x));
        }
        acc
    }
    let expected = series(400_000).to_bits();
    STOP.store(false, Ordering::Relaxed);
    // The computing task is preempted many times by a task that also uses
    // FP/SIMD registers; its result must be bit-identical.
    let noise = sched::spawn("fp-noise", 20, || {
        let mut v = [1.5f64; 8];
        while !STOP.load(Ordering::Relaxed) {
            for x in v.iter_mut() {
                *x = core::hint::black_box(*x * 1.000_001 + 0.25);
            }
            // 2 ms: long enough that even a slow TCG host leaves the
            // computing task most of the CPU (a period shorter than the
            // emulated wake-up cost would starve it).
            sched::sleep_ns(2_000_000);
        }
    });
    let calc = sched::spawn("fp-calc", 5, || {
        RESULT.store(series(400_000).to_bits(), Ordering::Relaxed);
    });
    sched::join(calc);
    STOP.store(true, Ordering::Relaxed);
    sched::join(noise);
    let got = RESULT.load(Ordering::Relaxed);
    check!(
        got == expected,
        "FP result changed under preemption: {:e} vs {:e}",
        f64::from_bits(got),
        f64::from_bits(expected)
    );
    Ok(())
}
