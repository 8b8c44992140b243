//! Handing work to the secondary cores: core 0 posts a function and its
//! argument in each online core's slot and wakes the core with an SGI; the
//! core runs it from its idle loop and counts it done.
//!
//! Rules:
//! - Only core 0 posts, and only to a core whose previous work is done
//!   ([`WorkError::Busy`] otherwise); a core runs what it finds once.
//! - The function runs under the secondary-core rules of arch::smp (no
//!   heap, console, `IrqLock` or scheduler), with IRQs masked; it may use
//!   atomics and `ticket::TicketLock`s shared with core 0.
//! - Ordering: core 0 stores the argument (Relaxed), then the function
//!   (Release), then sends the SGI (the GIC driver puts a `dsb ishst`
//!   before the write). The core swaps the function out (Acquire), so it
//!   reads that argument, and counts the run done with Release, so core 0's
//!   Acquire load of the count sees everything the function wrote.
//! - No lost wake-up: the SGI stays pending until the core takes it, and
//!   `wfi` returns at once for a pending interrupt, so a core that was not
//!   yet asleep when the SGI came finds the work on its next pass.

use core::sync::atomic::Ordering;

use super::{CoreReport, CoreSlot, Outcome, SECONDARY_GIC, SLOTS, reports};
use crate::arch::timer;

/// The SGI that wakes a secondary core for work.
pub const WORK_SGI: u32 = 1;

/// Why work could not be handed over or did not finish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkError {
    /// No secondary core is online (or secondaries never started).
    NoCores,
    /// The core has not finished the work handed to it before.
    Busy { core: usize },
    /// The core did not finish within the time given.
    Timeout { core: usize },
}

/// Work handed to the online secondary cores; [`wait`](Self::wait) for it.
pub struct Handoff {
    /// Per slot: the done count that means finished (None: not handed).
    want: [Option<u32>; super::MAX_CPUS],
}

impl Handoff {
    /// The slots the work went to.
    pub fn cores(&self) -> impl Iterator<Item = usize> + '_ {
        self.want
            .iter()
            .enumerate()
            .filter_map(|(i, w)| w.map(|_| i))
    }

    /// Waits up to `timeout_ns` for every core to finish.
    pub fn wait(&self, timeout_ns: u64) -> Result<(), WorkError> {
        let deadline = timer::ticks() + timer::ns_to_ticks(timeout_ns);
        for (i, want) in self.want.iter().enumerate() {
            let Some(want) = *want else { continue };
            while SLOTS[i].work_done.load(Ordering::Acquire) != want {
                if timer::ticks() > deadline {
                    return Err(WorkError::Timeout { core: i });
                }
                core::hint::spin_loop();
            }
        }
        Ok(())
    }
}

/// The slots of the secondary cores that came online.
fn online_in(reports: &[Option<CoreReport>]) -> impl Iterator<Item = usize> + '_ {
    reports
        .iter()
        .enumerate()
        .filter(|(_, r)| r.is_some_and(|r| r.outcome == Outcome::Online))
        .map(|(i, _)| i)
}

/// How many secondary cores [`run_on_secondaries`] hands work to.
pub fn online_secondaries() -> usize {
    reports().map_or(0, |(r, _)| online_in(r).count())
}

/// Hands `f(arg)` to every online secondary core and wakes them; returns
/// at once (the caller may work meanwhile, then [`Handoff::wait`]).
pub fn run_on_secondaries(f: fn(usize), arg: usize) -> Result<Handoff, WorkError> {
    let (Some((reports, _)), Some(gic)) = (reports(), SECONDARY_GIC.get()) else {
        return Err(WorkError::NoCores);
    };
    let online = || online_in(reports);
    if online().next().is_none() {
        return Err(WorkError::NoCores);
    }
    if let Some(core) = online().find(|&i| SLOTS[i].work_fn.load(Ordering::Acquire) != 0) {
        return Err(WorkError::Busy { core });
    }
    let mut want = [None; super::MAX_CPUS];
    let mut targets = 0u8;
    for i in online() {
        let slot = &SLOTS[i];
        want[i] = Some(slot.work_done.load(Ordering::Acquire) + 1);
        slot.work_arg.store(arg, Ordering::Relaxed);
        slot.work_fn.store(f as usize, Ordering::Release);
        targets |= slot.gic_target.load(Ordering::Relaxed);
    }
    gic.send_sgi(WORK_SGI, targets);
    Ok(Handoff { want })
}

/// On a secondary core, from its idle loop: runs the work posted in its
/// slot, if any.
pub(super) fn run_handed_over(me: &CoreSlot) {
    let f = me.work_fn.swap(0, Ordering::Acquire);
    if f == 0 {
        return;
    }
    let arg = me.work_arg.load(Ordering::Relaxed);
    // SAFETY: only `run_on_secondaries` stores a non-zero `work_fn`, and
    // what it stores is a `fn(usize)` cast to usize; a function pointer and
    // usize have the same size and representation on aarch64.
    let f: fn(usize) = unsafe { core::mem::transmute::<usize, fn(usize)>(f) };
    f(arg);
    me.work_done.fetch_add(1, Ordering::Release);
}
