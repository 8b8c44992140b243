//! Stopping the kernel with a status the host can read.
//!
//! Every stop prints `@exit status=N reason=...` first, so a host tool reads
//! the outcome even where the machine cannot report an exit code. Then:
//! - with semihosting (boot argument `semihosting`, QEMU only): SYS_EXIT with
//!   the status as exit code, on every board;
//! - else, status 0 and PSCI present (QEMU virt): PSCI SYSTEM_OFF;
//! - else, a BCM2835 PM watchdog in the device tree (Raspberry Pi): a reset
//!   into the firmware's halt state (drivers::pm_wdt), whatever the status,
//!   or, with the boot argument `reboot`, a reset into a new boot;
//! - else the core halts (power-cycle the board).

use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use crate::arch::firmware::{self, PsciConduit};

/// Why the kernel stopped; the value is the exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ExitStatus {
    /// Demo finished, or every self-test passed.
    Success = 0,
    /// At least one self-test failed.
    TestsFailed = 1,
    /// A Rust panic.
    Panic = 2,
    /// An unexpected CPU exception.
    FatalException = 3,
    /// Boot could not go on (no usable memory, unparsable device tree).
    BootFailed = 4,
}

impl ExitStatus {
    pub fn reason(self) -> &'static str {
        match self {
            ExitStatus::Success => "success",
            ExitStatus::TestsFailed => "tests-failed",
            ExitStatus::Panic => "panic",
            ExitStatus::FatalException => "fatal-exception",
            ExitStatus::BootFailed => "boot-failed",
        }
    }
}

static SEMIHOSTING: AtomicBool = AtomicBool::new(false);
static REBOOT: AtomicBool = AtomicBool::new(false);
/// 0: no PSCI, 1: hvc, 2: smc.
static PSCI: AtomicU8 = AtomicU8::new(0);
static EXITING: AtomicBool = AtomicBool::new(false);

/// Records how this machine can be left (from boot arguments and /psci):
/// `reboot` picks a watchdog reset into a new boot over a halt.
pub fn configure(semihosting: bool, reboot: bool, psci: Option<PsciConduit>) {
    SEMIHOSTING.store(semihosting, Ordering::Relaxed);
    REBOOT.store(reboot, Ordering::Relaxed);
    let v = match psci {
        None => 0,
        Some(PsciConduit::Hvc) => 1,
        Some(PsciConduit::Smc) => 2,
    };
    PSCI.store(v, Ordering::Relaxed);
}

/// Stops the kernel with `status`.
pub fn exit(status: ExitStatus) -> ! {
    crate::arch::exception::asynchronous::local_mask_all();
    // A fault while exiting (e.g. a semihosting call without a host) must
    // not recurse: the second attempt just halts.
    if EXITING.swap(true, Ordering::SeqCst) {
        crate::arch::cpu::wait_forever();
    }
    crate::println!("@exit status={} reason={}", status as u32, status.reason());
    crate::console::flush();
    if SEMIHOSTING.load(Ordering::Relaxed) {
        // SAFETY: the `semihosting` boot argument is only given by
        // qemu-run.sh, which starts QEMU with semihosting enabled.
        unsafe { firmware::semihosting_exit(status as u32) };
    }
    match PSCI.load(Ordering::Relaxed) {
        1 if status == ExitStatus::Success => firmware::psci_system_off(PsciConduit::Hvc),
        2 if status == ExitStatus::Success => firmware::psci_system_off(PsciConduit::Smc),
        _ => {}
    }
    let reboot = REBOOT.load(Ordering::Relaxed);
    crate::println!(
        "{}",
        if reboot {
            "(rebooting through the PM watchdog)"
        } else {
            "(halted: power-cycle the board)"
        }
    );
    crate::console::flush();
    let reset = if reboot {
        crate::drivers::pm_wdt::reboot()
    } else {
        crate::drivers::pm_wdt::halt()
    };
    if reset {
        // The watchdog resets the SoC within a few hundred microseconds.
        crate::arch::timer::spin_ns(100_000_000);
        crate::println!("(the PM watchdog did not reset the board)");
    }
    crate::arch::cpu::wait_forever()
}
