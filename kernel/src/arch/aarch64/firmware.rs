//! Leaving the machine: PSCI SYSTEM_OFF and Arm semihosting SYS_EXIT.
//!
//! PSCI is the firmware interface QEMU virt implements (conduit `hvc` or
//! `smc`, as /psci/method says); SYSTEM_OFF ends QEMU with status 0, so it
//! cannot carry a failure. Semihosting (enabled with QEMU's
//! `-semihosting-config enable=on`) carries an exit code to the host and
//! exists on every QEMU board, including raspi4b which has no PSCI. On real
//! hardware without a debugger a semihosting call is an undefined
//! instruction, so it is only used when the boot arguments say it is there.

use core::arch::asm;

/// How to call PSCI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciConduit {
    Hvc,
    Smc,
}

const PSCI_SYSTEM_OFF: u64 = 0x8400_0008;
const SEMIHOSTING_SYS_EXIT: u64 = 0x18;
const ADP_STOPPED_APPLICATION_EXIT: u64 = 0x2_0026;

/// PSCI SYSTEM_OFF. Returns only if the firmware refuses.
pub fn psci_system_off(conduit: PsciConduit) {
    let mut x0 = PSCI_SYSTEM_OFF;
    match conduit {
        // SAFETY: a PSCI call with function id SYSTEM_OFF in x0; the firmware
        // either powers the machine off or returns an error in x0. It clobbers
        // at most x0-x17 per the SMC calling convention, declared here.
        PsciConduit::Hvc => unsafe {
            asm!("hvc #0", inout("x0") x0, out("x1") _, out("x2") _, out("x3") _,
                 out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _,
                 out("x9") _, out("x10") _, out("x11") _, out("x12") _, out("x13") _,
                 out("x14") _, out("x15") _, out("x16") _, out("x17") _)
        },
        // SAFETY: as above, through the secure monitor conduit.
        PsciConduit::Smc => unsafe {
            asm!("smc #0", inout("x0") x0, out("x1") _, out("x2") _, out("x3") _,
                 out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _,
                 out("x9") _, out("x10") _, out("x11") _, out("x12") _, out("x13") _,
                 out("x14") _, out("x15") _, out("x16") _, out("x17") _)
        },
    }
    let _ = x0;
}

/// Semihosting SYS_EXIT with an exit code (AArch64 form: x1 points at a
/// two-word block {reason, subcode}). Returns only if the host ignores it.
///
/// # Safety
/// A semihosting host must be attached (QEMU with semihosting enabled):
/// otherwise `hlt #0xf000` raises an undefined-instruction exception.
pub unsafe fn semihosting_exit(code: u32) {
    let block: [u64; 2] = [ADP_STOPPED_APPLICATION_EXIT, code as u64];
    // SAFETY: the caller guarantees a semihosting host; the call reads the
    // two-word block, which lives on this stack frame until it returns.
    unsafe {
        asm!("hlt #0xf000", inout("x0") SEMIHOSTING_SYS_EXIT => _, in("x1") block.as_ptr(),
             options(nostack));
    }
}
