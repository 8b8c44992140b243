//! Locks for a preemptive kernel whose tasks run on several cores.
//!
//! Rule: a lock shared between tasks is an [`IrqLock`]. Taking it masks IRQs
//! on this core (saving the previous mask) before taking a fair ticket spin
//! lock (`ticket::TicketLock`: waiters get it in arrival order, whichever
//! core they are on), and dropping the guard releases the lock, then
//! restores the mask. So a task never loses its core while it holds a lock:
//! the timer interrupt that would preempt it waits until the lock is
//! released, no task or interrupt handler of the same core can find the
//! lock taken and spin forever, and a waiter on another core waits at most
//! for the holders ahead of it, each of which runs to its release.
//! Corollary: never sleep, yield or wait for a device interrupt while
//! holding one (the scheduler checks, per core).
//!
//! A lock made with [`IrqLock::timed`] also records, for every
//! acquisition, the time waited for it and the time it was held, in two
//! probes (the memory-state lock's `memsys.lock_wait` and
//! `memsys.lock_hold`); [`IrqLock::contention`] gives the ticket lock's
//! counters.

use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicUsize, Ordering};

use probe::Probe;
use ticket::{Contention, TicketGuard, TicketLock};

use crate::arch::exception::asynchronous::{SavedIrqMask, local_irq_mask_save, local_irq_restore};
use crate::arch::{cpu, timer};

/// Locks held right now, per core (the scheduler refuses to switch tasks on
/// a core whose count is not zero). Only its own core changes a count.
static LOCKS_HELD: [AtomicUsize; cpu::MAX_CPUS] = [const { AtomicUsize::new(0) }; cpu::MAX_CPUS];

/// [`IrqLock`]s held right now by this core.
pub fn locks_held() -> usize {
    LOCKS_HELD[cpu::index()].load(Ordering::Relaxed)
}

/// Ring size of a timed lock's probes: the last 65,536 acquisitions (a
/// quick demo run's camera phase, a few seconds of a full one's).
pub const LOCK_PROBE_CAP: usize = 1 << 16;

/// A timed lock's probe.
pub type LockProbe = Probe<LOCK_PROBE_CAP>;

/// The probes of a timed lock: time waited, time held (ticks).
type LockProbes = (&'static LockProbe, &'static LockProbe);

/// A spin lock that masks IRQs while held.
pub struct IrqLock<T> {
    inner: TicketLock<T>,
    probes: Option<LockProbes>,
}

pub struct IrqLockGuard<'a, T> {
    guard: Option<TicketGuard<'a, T>>,
    saved: SavedIrqMask,
    core: usize,
    /// Timed locks: when the lock was taken, and the hold probe.
    held_since: Option<(u64, &'static LockProbe)>,
}

impl<T> IrqLock<T> {
    pub const fn new(value: T) -> Self {
        Self {
            inner: TicketLock::new(value),
            probes: None,
        }
    }

    /// A lock whose every acquisition records the ticks waited in `wait`
    /// and the ticks held in `hold`.
    pub const fn timed(value: T, wait: &'static LockProbe, hold: &'static LockProbe) -> Self {
        Self {
            inner: TicketLock::new(value),
            probes: Some((wait, hold)),
        }
    }

    pub fn lock(&self) -> IrqLockGuard<'_, T> {
        let saved = local_irq_mask_save();
        let asked = self.probes.map(|_| timer::ticks());
        let guard = self.inner.lock();
        let held_since = match (self.probes, asked) {
            (Some((wait, hold)), Some(t0)) => {
                let now = timer::ticks();
                wait.record_ticks(now.saturating_sub(t0));
                Some((now, hold))
            }
            _ => None,
        };
        let core = cpu::index();
        LOCKS_HELD[core].fetch_add(1, Ordering::Relaxed);
        IrqLockGuard {
            guard: Some(guard),
            saved,
            core,
            held_since,
        }
    }

    /// The ticket lock's counters: acquisitions (modulo 2^32), those that
    /// waited for another holder, the longest wait in spins.
    pub fn contention(&self) -> Contention {
        self.inner.contention()
    }

    /// Breaks the lock on a fatal path (nothing will run after).
    ///
    /// # Safety
    /// Only when the holder will never run again (panic, fatal exception).
    pub unsafe fn force_unlock(&self) {
        // SAFETY: forwarded contract.
        unsafe { self.inner.force_unlock() }
    }
}

impl<T> Drop for IrqLockGuard<'_, T> {
    fn drop(&mut self) {
        if let Some((since, hold)) = self.held_since {
            hold.record_ticks(timer::ticks().saturating_sub(since));
        }
        self.guard.take();
        LOCKS_HELD[self.core].fetch_sub(1, Ordering::Relaxed);
        local_irq_restore(self.saved);
    }
}

impl<T> Deref for IrqLockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.guard.as_ref().expect("guard is live until drop")
    }
}

impl<T> DerefMut for IrqLockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.guard.as_mut().expect("guard is live until drop")
    }
}
