//! Locks for a preemptive kernel whose tasks run on core 0.
//!
//! Rule: a lock shared between tasks is an [`IrqLock`]. Taking it masks IRQs
//! on this core (saving the previous mask) before taking a fair ticket spin
//! lock (`ticket::TicketLock`: waiters get it in arrival order), and
//! dropping the guard releases the lock, then restores the mask. So a task never loses the CPU while it holds a
//! lock: the timer interrupt that would preempt it waits until the lock is
//! released, and no other task (or interrupt handler) can find the lock
//! taken and spin forever on the only core. Corollary: never sleep, yield or
//! wait for a device interrupt while holding one (the scheduler checks).

use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicUsize, Ordering};

use ticket::{TicketGuard, TicketLock};

use crate::arch::exception::asynchronous::{SavedIrqMask, local_irq_mask_save, local_irq_restore};

/// Locks held right now on this core (the scheduler refuses to switch tasks
/// while it is not zero).
pub static LOCKS_HELD: AtomicUsize = AtomicUsize::new(0);

/// A spin lock that masks IRQs while held.
pub struct IrqLock<T> {
    inner: TicketLock<T>,
}

pub struct IrqLockGuard<'a, T> {
    guard: Option<TicketGuard<'a, T>>,
    saved: SavedIrqMask,
}

impl<T> IrqLock<T> {
    pub const fn new(value: T) -> Self {
        Self {
            inner: TicketLock::new(value),
        }
    }

    pub fn lock(&self) -> IrqLockGuard<'_, T> {
        let saved = local_irq_mask_save();
        let guard = self.inner.lock();
        LOCKS_HELD.fetch_add(1, Ordering::Relaxed);
        IrqLockGuard {
            guard: Some(guard),
            saved,
        }
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
        self.guard.take();
        LOCKS_HELD.fetch_sub(1, Ordering::Relaxed);
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
