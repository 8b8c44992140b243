//! Asynchronous exceptions on this core: masking and unmasking IRQs.
//!
//! The masks are the PSTATE.DAIF bits (Debug, SError, IRQ, FIQ). The kernel
//! takes IRQs only (the GIC's timer and device interrupts); FIQs, SErrors
//! and debug exceptions stay masked as the core entered the kernel (boot.rs
//! masks all four when it drops from EL2), and the fatal path masks all four. Nothing here is per task: a task switch
//! happens with IRQs masked, and each task's mask is restored by the code
//! that masked it (see `sync.rs` and `sched.rs`).

use aarch64_cpu::registers::{DAIF, ReadWriteable, Readable, Writeable};

/// The exception masks as they were before [`local_irq_mask_save`], to hand
/// back to [`local_irq_restore`].
#[must_use = "restore the mask with local_irq_restore"]
#[derive(Clone, Copy, Debug)]
pub struct SavedIrqMask(u64);

/// Unmasks IRQs on this core.
#[inline]
pub fn local_irq_unmask() {
    DAIF.modify(DAIF::I::Unmasked);
}

/// Masks IRQs on this core and returns the masks as they were before.
#[inline]
pub fn local_irq_mask_save() -> SavedIrqMask {
    let saved = SavedIrqMask(DAIF.get());
    DAIF.modify(DAIF::I::Masked);
    saved
}

/// Puts back the masks [`local_irq_mask_save`] returned.
#[inline]
pub fn local_irq_restore(saved: SavedIrqMask) {
    DAIF.set(saved.0);
}

/// Masks every asynchronous exception and debug exception on this core:
/// for the exit and fatal paths, after which nothing may interrupt.
#[inline]
pub fn local_mask_all() {
    DAIF.write(DAIF::D::Masked + DAIF::A::Masked + DAIF::I::Masked + DAIF::F::Masked);
}
