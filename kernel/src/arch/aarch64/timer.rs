//! The arm64 generic timer: the physical counter and its frequency.
//!
//! CNTPCT_EL0 counts at CNTFRQ_EL0 Hz on every core and never goes
//! backwards; an `isb` before reading keeps the read from being hoisted
//! above earlier instructions, so intervals measure what they enclose.

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{CNTFRQ_EL0, CNTPCT_EL0, Readable};

/// Counter ticks since reset.
#[inline(always)]
pub fn ticks() -> u64 {
    barrier::isb(barrier::SY);
    CNTPCT_EL0.get()
}

/// Counter frequency in Hz (set by firmware or QEMU; never zero once booted).
#[inline]
pub fn frequency() -> u64 {
    CNTFRQ_EL0.get()
}

/// Converts a tick count to nanoseconds without overflow for any 64-bit span.
pub fn ticks_to_ns(ticks: u64) -> u64 {
    let f = frequency().max(1) as u128;
    ((ticks as u128 * 1_000_000_000) / f) as u64
}

/// Nanoseconds since reset.
pub fn now_ns() -> u64 {
    ticks_to_ns(ticks())
}

/// Busy-waits for at least `ns` nanoseconds.
pub fn spin_ns(ns: u64) {
    let f = frequency().max(1) as u128;
    let wait = ((ns as u128 * f).div_ceil(1_000_000_000)) as u64;
    let start = ticks();
    while ticks().wrapping_sub(start) < wait {
        core::hint::spin_loop();
    }
}

/// Arms the EL1 physical timer to fire when the counter reaches `deadline`
/// (its interrupt stays pending until re-armed or disarmed).
pub fn arm(deadline: u64) {
    use aarch64_cpu::registers::{CNTP_CTL_EL0, CNTP_CVAL_EL0, Writeable};
    CNTP_CVAL_EL0.set(deadline);
    CNTP_CTL_EL0.write(CNTP_CTL_EL0::ENABLE::SET + CNTP_CTL_EL0::IMASK::CLEAR);
}

/// Stops the EL1 physical timer (its interrupt deasserts).
pub fn disarm() {
    use aarch64_cpu::registers::{CNTP_CTL_EL0, Writeable};
    CNTP_CTL_EL0.write(CNTP_CTL_EL0::ENABLE::CLEAR + CNTP_CTL_EL0::IMASK::SET);
}

/// Converts nanoseconds to counter ticks (rounded up).
pub fn ns_to_ticks(ns: u64) -> u64 {
    let f = frequency().max(1) as u128;
    (ns as u128 * f).div_ceil(1_000_000_000) as u64
}
