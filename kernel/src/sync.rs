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
//! counters; and [`IrqLock::longest`] names, since its last reset, the
//! longest hold and where the lock was taken for it, and the longest wait,
//! where its waiter asked and where the holder it waited behind (the last
//! one to release before it) had taken the lock. Sites are the callers of
//! `lock` (`#[track_caller]`, as are the wrappers that hand a guard on).
//! The holder's site is kept beside the value, under the ticket lock
//! itself (the next holder reads it there: no other lock on the way in).
//! The longest hold and wait are written by the holder, before it
//! releases, so two cores never write them at once; they sit behind a leaf
//! spin lock, always taken with IRQs masked, so a reader on another core
//! sees a whole record and no interrupt finds the leaf taken on its core.

use core::ops::{Deref, DerefMut};
use core::panic::Location;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

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

/// A call site of [`IrqLock::lock`].
pub type Site = &'static Location<'static>;

/// A timed lock's longest hold and wait since the last reset (ticks; 0 and
/// no site before any).
#[derive(Clone, Copy, Debug, Default)]
pub struct Longest {
    pub hold_ticks: u64,
    /// Where the lock was taken for that hold.
    pub hold_site: Option<Site>,
    pub wait_ticks: u64,
    /// Where the waiter asked for the lock.
    pub wait_site: Option<Site>,
    /// Where the holder it waited behind (the last to release before it)
    /// had taken it.
    pub behind_site: Option<Site>,
}

/// What a timed lock keeps besides its probes.
struct Records {
    /// `longest.hold_ticks` and `longest.wait_ticks`, read without the
    /// leaf lock to skip it on every acquisition that sets no record.
    hold_max: AtomicU64,
    wait_max: AtomicU64,
    longest: spin::Mutex<Longest>,
}

/// The value a lock guards, and where its current (or last) holder took
/// it (timed locks only; `None` before the first).
struct Held<T> {
    value: T,
    site: Option<Site>,
}

impl Records {
    const fn new() -> Self {
        Self {
            hold_max: AtomicU64::new(0),
            wait_max: AtomicU64::new(0),
            longest: spin::Mutex::new(Longest {
                hold_ticks: 0,
                hold_site: None,
                wait_ticks: 0,
                wait_site: None,
                behind_site: None,
            }),
        }
    }
}

/// A spin lock that masks IRQs while held.
pub struct IrqLock<T> {
    inner: TicketLock<Held<T>>,
    probes: Option<LockProbes>,
    records: Records,
}

pub struct IrqLockGuard<'a, T> {
    guard: Option<TicketGuard<'a, Held<T>>>,
    saved: SavedIrqMask,
    core: usize,
    /// Timed locks: when the lock was taken, the hold probe, the records
    /// and where it was taken.
    held_since: Option<(u64, &'static LockProbe, &'a Records, Site)>,
}

impl<T> IrqLock<T> {
    pub const fn new(value: T) -> Self {
        Self {
            inner: TicketLock::new(Held { value, site: None }),
            probes: None,
            records: Records::new(),
        }
    }

    /// A lock whose every acquisition records the ticks waited in `wait`
    /// and the ticks held in `hold`.
    pub const fn timed(value: T, wait: &'static LockProbe, hold: &'static LockProbe) -> Self {
        Self {
            inner: TicketLock::new(Held { value, site: None }),
            probes: Some((wait, hold)),
            records: Records::new(),
        }
    }

    #[track_caller]
    pub fn lock(&self) -> IrqLockGuard<'_, T> {
        let site = Location::caller();
        let saved = local_irq_mask_save();
        let asked = self.probes.map(|_| timer::ticks());
        let mut guard = self.inner.lock();
        let held_since = match (self.probes, asked) {
            (Some((wait, hold)), Some(t0)) => {
                let now = timer::ticks();
                let waited = now.saturating_sub(t0);
                wait.record_ticks(waited);
                let r = &self.records;
                let behind = guard.site.replace(site);
                if waited > r.wait_max.load(Ordering::Relaxed) {
                    r.wait_max.store(waited, Ordering::Relaxed);
                    let mut l = r.longest.lock();
                    (l.wait_ticks, l.wait_site, l.behind_site) = (waited, Some(site), behind);
                }
                Some((now, hold, r, site))
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

    /// The longest hold and wait since the last [`reset_longest`]
    /// (timed locks; an untimed one keeps none).
    ///
    /// [`reset_longest`]: Self::reset_longest
    pub fn longest(&self) -> Longest {
        let saved = local_irq_mask_save();
        let l = *self.records.longest.lock();
        local_irq_restore(saved);
        l
    }

    /// Starts the longest hold and wait again (a hold or wait ending at
    /// this instant may be kept from before).
    pub fn reset_longest(&self) {
        let r = &self.records;
        let saved = local_irq_mask_save();
        *r.longest.lock() = Longest::default();
        r.hold_max.store(0, Ordering::Relaxed);
        r.wait_max.store(0, Ordering::Relaxed);
        local_irq_restore(saved);
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
        if let Some((since, hold, r, site)) = self.held_since {
            let held = timer::ticks().saturating_sub(since);
            hold.record_ticks(held);
            if held > r.hold_max.load(Ordering::Relaxed) {
                r.hold_max.store(held, Ordering::Relaxed);
                let mut l = r.longest.lock();
                (l.hold_ticks, l.hold_site) = (held, Some(site));
            }
        }
        self.guard.take();
        LOCKS_HELD[self.core].fetch_sub(1, Ordering::Relaxed);
        local_irq_restore(self.saved);
    }
}

impl<T> Deref for IrqLockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard.as_ref().expect("guard is live until drop").value
    }
}

impl<T> DerefMut for IrqLockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard.as_mut().expect("guard is live until drop").value
    }
}
