//! Self-tests of work on several cores (arch::smp::run_on_secondaries): an
//! SGI wakes every online secondary core, which runs what core 0 handed it
//! exactly once; and a lock torture where core 0 and every secondary core
//! increment a two-field counter under one `ticket::TicketLock`, whose
//! totals must add up exactly with no torn update seen.

use alloc::format;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use ticket::TicketLock;

use super::TestResult;
use crate::BootInfo;
use crate::arch::smp;

/// How long the cores may take (TCG on a loaded host is slow).
const TIMEOUT_NS: u64 = 20_000_000_000;

static SEEN: AtomicUsize = AtomicUsize::new(0);

fn add_arg(arg: usize) {
    SEEN.fetch_add(arg, Ordering::Relaxed);
}

/// Every online secondary core, woken by the work SGI, runs the work once:
/// the sum of what they added, their done counts and their SGI counts each
/// move by exactly what was sent.
pub fn sgi_wakes_each_core(_: &BootInfo) -> TestResult {
    const TOKEN: usize = 1_000_003;
    let before_seen = SEEN.load(Ordering::Relaxed);
    let cores_before: alloc::vec::Vec<_> = (0..smp::MAX_CPUS).map(smp::work_counters).collect();
    let h = smp::run_on_secondaries(add_arg, TOKEN).map_err(|e| format!("hand-off: {e:?}"))?;
    h.wait(TIMEOUT_NS).map_err(|e| format!("wait: {e:?}"))?;
    let n = h.cores().count();
    check!(n > 0, "no secondary core took the work");
    let added = SEEN.load(Ordering::Relaxed) - before_seen;
    check!(
        added == n * TOKEN,
        "the cores added {added}, want {n} x {TOKEN}: a core ran it twice or not at all"
    );
    for i in h.cores() {
        let (done0, sgis0) = cores_before[i].ok_or("slot vanished")?;
        let (done, sgis) = smp::work_counters(i).ok_or("slot vanished")?;
        check!(
            done == done0 + 1,
            "core slot {i}: done {done0} -> {done}, want +1"
        );
        check!(
            sgis > sgis0,
            "core slot {i}: ran the work but took no SGI ({sgis0} -> {sgis})"
        );
    }
    Ok(())
}

/// Increments in the torture, over every core (virt's two cores take
/// 20,000 each). A fixed total, not a count per core: under TCG with more
/// vCPUs than host cores (raspi4b's four on a two-core host) a hand-off to a
/// vCPU the host is not running costs a host time slice, and 20,000 per
/// core took 150 s of the test command there.
const TOTAL_ROUNDS: u64 = 40_000;

static TORTURE: TicketLock<(u64, u64)> = TicketLock::new((0, 0));
static TORN: AtomicU32 = AtomicU32::new(0);

fn hammer(rounds: usize) {
    for _ in 0..rounds {
        let mut g = TORTURE.lock();
        let (a, b) = *g;
        if a != b {
            TORN.fetch_add(1, Ordering::Relaxed);
        }
        g.0 = a + 1;
        core::hint::spin_loop();
        g.1 = b + 1;
    }
}

/// Core 0 and every online secondary core each take the lock their share
/// of TOTAL_ROUNDS at once: both counters end at that share x cores, no
/// holder ever saw the two fields differ, and the lock counted every
/// acquisition.
pub fn lock_torture(_: &BootInfo) -> TestResult {
    let start = *TORTURE.lock();
    let c0 = TORTURE.contention();
    let rounds = TOTAL_ROUNDS / (1 + smp::online_secondaries() as u64);
    let h =
        smp::run_on_secondaries(hammer, rounds as usize).map_err(|e| format!("hand-off: {e:?}"))?;
    hammer(rounds as usize);
    h.wait(TIMEOUT_NS).map_err(|e| format!("wait: {e:?}"))?;
    let cores = 1 + h.cores().count() as u64;
    let end = *TORTURE.lock();
    let c = TORTURE.contention();
    let want = start.0 + rounds * cores;
    check!(
        end == (want, want),
        "counters {end:?} after {cores} cores x {rounds}, want ({want}, {want}): lost updates"
    );
    let torn = TORN.load(Ordering::Relaxed);
    check!(
        torn == 0,
        "{torn} holders saw another holder's half-done update"
    );
    let acquired = u64::from(c.acquisitions.wrapping_sub(c0.acquisitions));
    // +1 for the lock taken to read the end value.
    check!(
        acquired == rounds * cores + 1,
        "the lock counted {acquired} acquisitions, want {}",
        rounds * cores + 1
    );
    log::info!(
        "smp.lock_torture: {cores} cores x {rounds} increments: {} of {acquired} acquisitions waited, longest wait {} spins",
        c.contended - c0.contended,
        c.max_wait_spins
    );
    Ok(())
}
