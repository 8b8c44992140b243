//! The global clock hook, with a manual clock and a std clock. One test
//! function: the clock is process-wide.

use probe::*;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

static MANUAL: AtomicU64 = AtomicU64::new(0);

fn manual_now() -> u64 {
    MANUAL.load(Ordering::Relaxed)
}

fn std_now() -> u64 {
    static T0: OnceLock<Instant> = OnceLock::new();
    T0.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

#[test]
fn start_stop_use_the_installed_clock() {
    static P: Probe<8> = Probe::new("clock.manual");
    assert_eq!(now(), 0, "no clock installed yet");
    assert_eq!(freq_hz(), DEFAULT_FREQ_HZ);

    set_clock(manual_now, 24_000_000);
    assert_eq!(freq_hz(), 24_000_000);
    MANUAL.store(1_000, Ordering::Relaxed);
    let t = P.start();
    assert_eq!(t, Start(1_000));
    MANUAL.store(1_240, Ordering::Relaxed);
    assert_eq!(P.stop(t), 240);
    // A clock that went backwards records 0, not a huge value.
    let t = P.start();
    MANUAL.store(10, Ordering::Relaxed);
    assert_eq!(P.stop(t), 0);
    let s = Summary::of(&P, &mut [0u64; 8], freq_hz());
    assert_eq!((s.count, s.max_ns, s.min_ns), (2, 10_000, 0));

    static Q: Probe<8> = Probe::new("clock.std");
    set_clock(std_now, 1_000_000_000);
    let r = Q.measure(|| {
        std::thread::sleep(std::time::Duration::from_millis(2));
        7
    });
    assert_eq!(r, 7);
    let t = Q.totals();
    assert_eq!(t.count, 1);
    assert!(t.max >= 2_000_000, "slept 2 ms, measured {} ns", t.max);
}
