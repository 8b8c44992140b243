//! Instructions that stop or trap this core.

/// Sleeps until an interrupt is pending (the idle task's loop).
#[inline]
pub fn wait_for_interrupt() {
    aarch64_cpu::asm::wfi();
}

/// Stops this core: waits for events forever, never returns.
pub fn wait_forever() -> ! {
    loop {
        aarch64_cpu::asm::wfe();
    }
}

/// Executes a permanently undefined instruction (`udf`), which traps to the
/// synchronous exception vector; the kernel reports it as fatal and stops,
/// so this returns only if the instruction did not trap.
pub fn execute_undefined_instruction() {
    // SAFETY: `udf` touches no memory and no register; it only raises an
    // undefined-instruction exception, which the vector table handles.
    unsafe { core::arch::asm!("udf #0x4743") };
}

/// Most cores the kernel runs on (the device tree's list is cut there).
pub const MAX_CPUS: usize = physmap::MAX_CPUS;

/// This core's index: its position in the device tree's `/cpus` list (the
/// boot core sets 0 before anything else runs, a secondary core its slot
/// in its entry code), kept in TPIDR_EL1, which nothing else uses.
#[inline]
pub fn index() -> usize {
    use aarch64_cpu::registers::{Readable, TPIDR_EL1};
    (TPIDR_EL1.get() as usize).min(MAX_CPUS - 1)
}

/// Sets this core's index (boot: core 0 before its first lock; a
/// secondary core on entry).
pub fn set_index(i: usize) {
    use aarch64_cpu::registers::{TPIDR_EL1, Writeable};
    TPIDR_EL1.set(i as u64);
}
