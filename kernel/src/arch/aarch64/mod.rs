//! Everything specific to the arm64 architecture.

pub mod boot;
pub mod context;
pub mod cpu;
pub mod exception;
pub mod firmware;
pub mod mmu;
pub mod page_ops;
pub mod smp;
pub mod timer;

use core::sync::atomic::{AtomicU64, Ordering};

use aarch64_cpu::registers::{CurrentEL, Readable};

static BOOT_EL: AtomicU64 = AtomicU64::new(0);

/// Records the exception level the loader entered the kernel at.
pub fn set_boot_el(el: u64) {
    BOOT_EL.store(el, Ordering::Relaxed);
}

/// Exception level at entry (2 on the Raspberry Pi, 1 on QEMU virt).
pub fn boot_el() -> u64 {
    BOOT_EL.load(Ordering::Relaxed)
}

/// Exception level the kernel runs at now (1 after boot.rs).
pub fn current_el() -> u64 {
    CurrentEL.read(CurrentEL::EL)
}
