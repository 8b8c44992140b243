//! Firmware calls: PSCI SYSTEM_OFF and CPU_ON, and Arm semihosting SYS_EXIT.
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
/// CPU_ON, SMC64 form: x1 target MPIDR, x2 entry point (physical), x3
/// context id (the new core's x0).
const PSCI_CPU_ON_64: u64 = 0xc400_0003;
const SEMIHOSTING_SYS_EXIT: u64 = 0x18;
const ADP_STOPPED_APPLICATION_EXIT: u64 = 0x2_0026;

/// One PSCI call: function id and up to three arguments; returns x0.
fn psci_call(conduit: PsciConduit, function: u64, a1: u64, a2: u64, a3: u64) -> i64 {
    let mut x0 = function;
    match conduit {
        // SAFETY: a PSCI call (function id in x0, arguments in x1-x3); the
        // firmware carries it out or returns an error in x0. It clobbers at
        // most x0-x17 per the SMC calling convention, declared here.
        PsciConduit::Hvc => unsafe {
            asm!("hvc #0", inout("x0") x0, inout("x1") a1 => _, inout("x2") a2 => _,
                 inout("x3") a3 => _, out("x4") _, out("x5") _, out("x6") _, out("x7") _,
                 out("x8") _, out("x9") _, out("x10") _, out("x11") _, out("x12") _,
                 out("x13") _, out("x14") _, out("x15") _, out("x16") _, out("x17") _)
        },
        // SAFETY: as above, through the secure monitor conduit.
        PsciConduit::Smc => unsafe {
            asm!("smc #0", inout("x0") x0, inout("x1") a1 => _, inout("x2") a2 => _,
                 inout("x3") a3 => _, out("x4") _, out("x5") _, out("x6") _, out("x7") _,
                 out("x8") _, out("x9") _, out("x10") _, out("x11") _, out("x12") _,
                 out("x13") _, out("x14") _, out("x15") _, out("x16") _, out("x17") _)
        },
    }
    x0 as i64
}

/// PSCI SYSTEM_OFF. Returns only if the firmware refuses.
pub fn psci_system_off(conduit: PsciConduit) {
    let _ = psci_call(conduit, PSCI_SYSTEM_OFF, 0, 0, 0);
}

/// PSCI CPU_ON: starts the core `target_mpidr` at the physical address
/// `entry` with `context` in its x0, MMU off, at EL1 (or EL2). Ok once the
/// firmware accepted; Err with the PSCI status (-2 invalid parameters, -4
/// already on, -5 on pending, -9 invalid address, ...) otherwise.
pub fn psci_cpu_on(
    conduit: PsciConduit,
    target_mpidr: u64,
    entry: u64,
    context: u64,
) -> Result<(), i64> {
    match psci_call(conduit, PSCI_CPU_ON_64, target_mpidr, entry, context) {
        0 => Ok(()),
        e => Err(e),
    }
}

/// Name of a PSCI status code.
pub fn psci_error_name(code: i64) -> &'static str {
    match code {
        -1 => "NOT_SUPPORTED",
        -2 => "INVALID_PARAMETERS",
        -3 => "DENIED",
        -4 => "ALREADY_ON",
        -5 => "ON_PENDING",
        -6 => "INTERNAL_FAILURE",
        -7 => "NOT_PRESENT",
        -8 => "DISABLED",
        -9 => "INVALID_ADDRESS",
        _ => "unknown status",
    }
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
