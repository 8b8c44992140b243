//! Locks for a preemptive single-core kernel.
//!
//! Rule: a lock shared between tasks is an [`IrqLock`]. Taking it masks IRQs
//! on this core (saving the previous mask) before spinning, and dropping the
//! guard restores the mask. So a task never loses the CPU while it holds a
//! lock: the timer interrupt that would preempt it waits until the lock is
//! released, and no other task (or interrupt handler) can find the lock
//! taken and spin forever on the only core. Corollary: never sleep, yield or
//! wait for a device interrupt while holding one (the scheduler checks).

use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicUsize, Ordering};

use aarch64_cpu::registers::{DAIF, Readable, Writeable};

/// Locks held right now on this core (the scheduler refuses to switch tasks
/// while it is not zero).
pub static LOCKS_HELD: AtomicUsize = AtomicUsize::new(0);

/// Masks IRQs and returns the previous DAIF value for [`restore_irqs`].
#[inline]
pub fn mask_irqs() -> u64 {
    let saved = DAIF.get();
    // Set only the I bit (bit 7); D, A and F stay as they were.
    DAIF.set(saved | (1 << 7));
    saved
}

/// Restores the IRQ mask saved by [`mask_irqs`].
#[inline]
pub fn restore_irqs(saved: u64) {
    DAIF.set(saved);
}

/// Unmasks IRQs on this core.
#[inline]
pub fn enable_irqs() {
    DAIF.set(DAIF.get() & !(1 << 7));
}

/// A spin lock that masks IRQs while held.
pub struct IrqLock<T> {
    inner: spin::Mutex<T>,
}

pub struct IrqLockGuard<'a, T> {
    guard: Option<spin::MutexGuard<'a, T>>,
    saved: u64,
}

impl<T> IrqLock<T> {
    pub const fn new(value: T) -> Self {
        Self {
            inner: spin::Mutex::new(value),
        }
    }

    pub fn lock(&self) -> IrqLockGuard<'_, T> {
        let saved = mask_irqs();
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
        restore_irqs(self.saved);
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
