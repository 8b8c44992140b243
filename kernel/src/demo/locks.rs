//! The memory state's two locks over one camera run: one `@lock` line and
//! one table line per lock and run. `memsys` guards the page cache (the
//! load's readers hold it), `areas` the areas and their cleancache (every
//! allocation holds it, and the page cache briefly for each page it
//! evicts, restores or borrows). Both are ticket locks every core's tasks
//! take; their counters give the acquisitions and those that had to wait
//! for another holder, their probes the time each acquisition waited and
//! held it.
//!
//! Rules: the snapshot resets both probes while the load already runs
//! (`Probe::reset` may keep part of a sample recorded at that instant: a
//! documented loss of at most one sample per core); the distributions are
//! over the probes' rings, the last `sync::LOCK_PROBE_CAP` acquisitions of
//! the run, every core's, with `samples=` saying how many that is.

use alloc::vec;

use probe::Summary;

use crate::arch::timer;
use crate::memsys::{self, AREAS_HOLD, AREAS_WAIT, LOCK_HOLD, LOCK_WAIT};
use crate::println;
use crate::sync::LOCK_PROBE_CAP;
use crate::sync::LockProbe;
use crate::workload::load::Condition;

/// The locks' ticket counters when the run began.
pub(super) struct Snapshot {
    memsys: ticket::Contention,
    areas: ticket::Contention,
}

/// Starts a run's figures: resets the probes, keeps the counters.
pub(super) fn snapshot() -> Snapshot {
    for p in [&LOCK_WAIT, &LOCK_HOLD, &AREAS_WAIT, &AREAS_HOLD] {
        p.reset();
    }
    Snapshot {
        memsys: memsys::lock_contention(),
        areas: memsys::areas_contention(),
    }
}

/// Prints the run's `@lock` lines and their table lines.
pub(super) fn print_since(name: &str, cond: Condition, cores: usize, before: &Snapshot) {
    let mut scratch = vec![0u64; LOCK_PROBE_CAP];
    let locks = [
        (
            "memsys",
            before.memsys,
            memsys::lock_contention(),
            &LOCK_WAIT,
            &LOCK_HOLD,
        ),
        (
            "areas",
            before.areas,
            memsys::areas_contention(),
            &AREAS_WAIT,
            &AREAS_HOLD,
        ),
    ];
    for (lock, then, now, wait, hold) in locks {
        print_lock(
            lock,
            name,
            cond,
            cores,
            (then, now),
            (wait, hold),
            &mut scratch,
        );
    }
}

fn print_lock(
    lock: &str,
    name: &str,
    cond: Condition,
    cores: usize,
    (then, now): (ticket::Contention, ticket::Contention),
    (wait, hold): (&LockProbe, &LockProbe),
    scratch: &mut [u64],
) {
    let acquisitions = now.acquisitions.wrapping_sub(then.acquisitions);
    let contended = now.contended - then.contended;
    let freq = timer::frequency();
    let wait = Summary::of(wait, scratch, freq);
    let hold = Summary::of(hold, scratch, freq);
    let us = |ns: u64| ns as f64 / 1000.0;
    println!(
        "@lock name={lock} allocator={name} condition={} cores={cores} acquisitions={acquisitions} contended={contended} samples={} wait_p50_us={:.1} wait_p99_us={:.1} wait_max_us={:.1} hold_p50_us={:.1} hold_p99_us={:.1} hold_max_us={:.1}",
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
        "  {lock:<6} lock ({cores} core(s)): {acquisitions} acquisitions, {:.1}% waited; wait p99 {:.1} us, max {:.1} us; hold p99 {:.1} us, max {:.1} us",
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
