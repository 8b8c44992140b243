//! The one wrapper for memory-mapped register blocks.
//!
//! A driver describes its registers as a `register_structs!` type and keeps
//! an [`Mmio`] of it: the block's address, dereferencing to the registers.
//! Every access is then a volatile load or store through tock-registers.

use core::marker::PhantomData;
use core::ops::Deref;

/// The register block of type `T` at a fixed (identity-mapped) address.
pub struct Mmio<T> {
    base: usize,
    _regs: PhantomData<fn() -> T>,
}

// SAFETY: an Mmio holds only an address; the registers behind it are device
// memory that any core may access. Drivers that share one between contexts
// say why their accesses do not race (or wrap it in a lock).
unsafe impl<T> Send for Mmio<T> {}

impl<T> Mmio<T> {
    /// # Safety
    /// `base` must be the address of a register block laid out as `T`,
    /// mapped as device memory for as long as this value lives, and no other
    /// code may drive the same device concurrently.
    pub const unsafe fn new(base: usize) -> Self {
        Self {
            base,
            _regs: PhantomData,
        }
    }

    /// The block's address.
    pub fn base(&self) -> usize {
        self.base
    }
}

impl<T> Deref for Mmio<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: `new`'s contract: a mapped register block of type T.
        unsafe { &*(self.base as *const T) }
    }
}
