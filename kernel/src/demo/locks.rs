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
//! the run, every core's, with `samples=` saying how many that is. After
//! each `@lock` line an `@locksite` line names where the run's longest
//! hold took the lock (`hold_max_at=`), where its longest wait asked for
//! it (`wait_max_at=`) and where the holder it waited behind had taken it
//! (`wait_max_behind=`), from `sync::IrqLock::longest` (`-` when none).
//! After the areas lock's, an `@copywait` line counts the run's GCMA
//! allocations that took back a page a cleancache put or get was copying
//! outside the lock, and so waited for that copy (`memsys::copy_waits`),
//! with the longest such wait.

use alloc::vec;

use probe::Summary;

use crate::arch::timer;
use crate::memsys::{self, AREAS_HOLD, AREAS_WAIT, LOCK_HOLD, LOCK_WAIT};
use crate::println;
use crate::sync::LOCK_PROBE_CAP;
use crate::sync::{LockProbe, Longest, Site};
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
    memsys::reset_longest();
    memsys::reset_copy_waits();
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
            memsys::lock_longest(),
        ),
        (
            "areas",
            before.areas,
            memsys::areas_contention(),
            &AREAS_WAIT,
            &AREAS_HOLD,
            memsys::areas_longest(),
        ),
    ];
    for (lock, then, now, wait, hold, longest) in locks {
        print_lock(
            lock,
            name,
            cond,
            cores,
            (then, now),
            (wait, hold),
            &mut scratch,
        );
        print_sites(lock, &longest);
    }
    let (waits, max) = memsys::copy_waits();
    let max_us = timer::ticks_to_ns(max) as f64 / 1000.0;
    println!(
        "@copywait allocator={name} condition={} cores={cores} waits={waits} wait_max_us={max_us:.1}",
        cond.name()
    );
    println!(
        "         allocations that waited for a cleancache copy in flight: {waits}, longest {max_us:.1} us"
    );
}

/// `site` as `file:line`, or `-`.
struct At(Option<Site>);

impl core::fmt::Display for At {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(s) => write!(f, "{}:{}", s.file(), s.line()),
            None => f.write_str("-"),
        }
    }
}

/// The sites of the run's longest hold and wait: an `@locksite` line and
/// a table line under the lock's.
fn print_sites(lock: &str, l: &Longest) {
    let us = |t: u64| timer::ticks_to_ns(t) as f64 / 1000.0;
    println!(
        "@locksite name={lock} hold_max_us={:.1} hold_max_at={} wait_max_us={:.1} wait_max_at={} wait_max_behind={}",
        us(l.hold_ticks),
        At(l.hold_site),
        us(l.wait_ticks),
        At(l.wait_site),
        At(l.behind_site)
    );
    println!(
        "         longest hold {:.1} us taken at {}; longest wait {:.1} us at {}, behind a hold taken at {}",
        us(l.hold_ticks),
        At(l.hold_site),
        us(l.wait_ticks),
        At(l.wait_site),
        At(l.behind_site)
    );
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
