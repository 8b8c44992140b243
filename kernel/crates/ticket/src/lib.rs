//! A ticket spin lock: fair (first come, first served) mutual exclusion
//! between cores, with counters that say how contended it was.
//!
//! # Rules
//!
//! - **Tickets.** `lock` takes the next ticket (`next.fetch_add(1)`) and
//!   spins until `serving` equals it; `unlock` (dropping the guard) moves
//!   `serving` on by one. Tickets are handed out in the order the
//!   `fetch_add`s happen, so waiters get the lock in that order: no core
//!   waits while later arrivals get in ahead of it (spin::Mutex, a
//!   compare-and-swap lock, gives no such bound).
//! - **Memory ordering.** The successful load of `serving` that ends the
//!   wait is Acquire and the store that hands the lock on is Release, so
//!   everything the previous holder wrote inside its critical section is
//!   visible to the next holder. Taking the ticket needs no ordering of
//!   its own (Relaxed): the Acquire load orders the critical section.
//! - **Counters.** The acquisitions are the tickets handed out (`next`,
//!   modulo 2^32: no counter of their own, so an uncontended lock costs one
//!   atomic add); `contended` counts those that found a ticket ahead of
//!   theirs, `max_wait_spins` the most spins any one acquisition made. They
//!   are Relaxed statistics: exact once the lock is quiet, approximate while
//!   it is in use.
//! - **Wrapping.** Tickets are u32 and wrap; the comparison is equality, so
//!   the lock is correct as long as fewer than 2^32 cores wait at once.
//! - **No interrupt masking here.** A holder that is interrupted and whose
//!   handler takes the same lock on the same core deadlocks; the kernel
//!   wraps this lock in one that masks IRQs first (`sync::IrqLock`).
//!
//! The only `unsafe` is the `Sync` impl and the guard's access to the
//! `UnsafeCell`, both sound by the exclusion above.

#![no_std]

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// A fair spin lock around a `T`.
pub struct TicketLock<T> {
    next: AtomicU32,
    serving: AtomicU32,
    contended: AtomicU64,
    max_wait_spins: AtomicU64,
    value: UnsafeCell<T>,
}

// SAFETY: the lock hands out at most one guard at a time (rules: tickets),
// and the guard is the only way to reach `value`; so sharing the lock
// between threads is sound whenever moving a `T` between them is.
unsafe impl<T: Send> Sync for TicketLock<T> {}

/// How contended a lock has been since it was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Contention {
    /// Locks taken (or being waited for), modulo 2^32: compare two
    /// snapshots with `wrapping_sub`.
    pub acquisitions: u32,
    /// Of those, the ones that had to wait for another holder.
    pub contended: u64,
    /// The most spins one acquisition made before it got the lock.
    pub max_wait_spins: u64,
}

/// Exclusive access to the value until dropped.
pub struct TicketGuard<'a, T> {
    lock: &'a TicketLock<T>,
}

impl<T> TicketLock<T> {
    pub const fn new(value: T) -> Self {
        Self {
            next: AtomicU32::new(0),
            serving: AtomicU32::new(0),
            contended: AtomicU64::new(0),
            max_wait_spins: AtomicU64::new(0),
            value: UnsafeCell::new(value),
        }
    }

    /// Waits for this caller's turn, then returns the guard.
    pub fn lock(&self) -> TicketGuard<'_, T> {
        let ticket = self.next.fetch_add(1, Ordering::Relaxed);
        let mut spins = 0u64;
        while self.serving.load(Ordering::Acquire) != ticket {
            spins += 1;
            core::hint::spin_loop();
        }
        if spins > 0 {
            self.contended.fetch_add(1, Ordering::Relaxed);
            self.max_wait_spins.fetch_max(spins, Ordering::Relaxed);
        }
        TicketGuard { lock: self }
    }

    /// The guard if nobody holds or waits for the lock, else None (never
    /// spins, never takes a ticket it cannot use at once).
    pub fn try_lock(&self) -> Option<TicketGuard<'_, T>> {
        let serving = self.serving.load(Ordering::Acquire);
        self.next
            .compare_exchange(
                serving,
                serving.wrapping_add(1),
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .ok()?;
        Some(TicketGuard { lock: self })
    }

    /// Whether a holder has the lock now (a snapshot).
    pub fn is_locked(&self) -> bool {
        self.next.load(Ordering::Relaxed) != self.serving.load(Ordering::Relaxed)
    }

    /// Callers holding or waiting for the lock now (a snapshot).
    pub fn queued(&self) -> u32 {
        self.next
            .load(Ordering::Relaxed)
            .wrapping_sub(self.serving.load(Ordering::Relaxed))
    }

    /// The contention counters so far.
    pub fn contention(&self) -> Contention {
        Contention {
            acquisitions: self.next.load(Ordering::Relaxed),
            contended: self.contended.load(Ordering::Relaxed),
            max_wait_spins: self.max_wait_spins.load(Ordering::Relaxed),
        }
    }

    /// Makes the lock free, whoever holds or waits for it.
    ///
    /// # Safety
    /// Only when no holder or waiter will ever run again (a fatal path that
    /// stops the machine): a holder still running would share the value
    /// with the next one.
    pub unsafe fn force_unlock(&self) {
        self.serving
            .store(self.next.load(Ordering::Relaxed), Ordering::Release);
    }
}

impl<T> Drop for TicketGuard<'_, T> {
    fn drop(&mut self) {
        // Only the holder moves `serving`, so a plain increment is enough;
        // Release publishes the critical section to the next ticket.
        let s = self.lock.serving.load(Ordering::Relaxed);
        self.lock
            .serving
            .store(s.wrapping_add(1), Ordering::Release);
    }
}

impl<T> Deref for TicketGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this guard is the lock's only live guard (rules: tickets).
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for TicketGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this the only access.
        unsafe { &mut *self.lock.value.get() }
    }
}

#[cfg(test)]
mod tests;
