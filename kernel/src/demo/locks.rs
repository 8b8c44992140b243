//! The memory-state lock over one camera run: one `@lock` line and one
//! table line per run. The lock (memsys: areas, cleancache, page cache)
//! is a ticket lock every core's tasks take; its counters give the
//! acquisitions and those that had to wait for another holder, its two
//! probes the time each acquisition waited and held it.
//!
//! Rules: the snapshot resets both probes while the load already runs
//! (`Probe::reset` may keep part of a sample recorded at that instant: a
//! documented loss of at most one sample per core); the distributions are
//! over the probes' rings, the last `sync::LOCK_PROBE_CAP` acquisitions of
//! the run, every core's, with `samples=` saying how many that is.

use alloc::vec;

use probe::Summary;

use crate::arch::timer;
use crate::memsys::{self, LOCK_HOLD, LOCK_WAIT};
use crate::println;
use crate::sync::LOCK_PROBE_CAP;
use crate::workload::load::Condition;

/// The lock's ticket counters when the run began.
pub(super) struct Snapshot {
    contention: ticket::Contention,
}

/// Starts a run's figures: resets the probes, keeps the counters.
pub(super) fn snapshot() -> Snapshot {
    LOCK_WAIT.reset();
    LOCK_HOLD.reset();
    Snapshot {
        contention: memsys::lock_contention(),
    }
}

/// Prints the run's `@lock` line and its table line.
pub(super) fn print_since(name: &str, cond: Condition, cores: usize, before: &Snapshot) {
    let now = memsys::lock_contention();
    let acquisitions = now
        .acquisitions
        .wrapping_sub(before.contention.acquisitions);
    let contended = now.contended - before.contention.contended;
    let mut scratch = vec![0u64; LOCK_PROBE_CAP];
    let freq = timer::frequency();
    let wait = Summary::of(&LOCK_WAIT, &mut scratch, freq);
    let hold = Summary::of(&LOCK_HOLD, &mut scratch, freq);
    let us = |ns: u64| ns as f64 / 1000.0;
    println!(
        "@lock name=memsys allocator={name} condition={} cores={cores} acquisitions={acquisitions} contended={contended} samples={} wait_p50_us={:.1} wait_p99_us={:.1} wait_max_us={:.1} hold_p50_us={:.1} hold_p99_us={:.1} hold_max_us={:.1}",
        cond.name(),
        wait.samples,
        us(wait.p50_ns),
        us(wait.p99_ns),
        us(wait.max_ns),
        us(hold.p50_ns),
        us(hold.p99_ns),
        us(hold.max_ns)
    );
    println!(
        "  memsys lock ({cores} core(s)): {acquisitions} acquisitions, {:.1}% waited; wait p99 {:.1} us, max {:.1} us; hold p99 {:.1} us, max {:.1} us",
        if acquisitions > 0 {
            100.0 * contended as f64 / acquisitions as f64
        } else {
            0.0
        },
        us(wait.p99_ns),
        us(wait.max_ns),
        us(hold.p99_ns),
        us(hold.max_ns)
    );
}
