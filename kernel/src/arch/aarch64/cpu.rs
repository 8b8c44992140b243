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
