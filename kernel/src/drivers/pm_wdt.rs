//! The BCM2835/BCM2711 power-management watchdog (`brcm,bcm2835-pm-wdt`):
//! how a Raspberry Pi, which has no PSCI, is halted or reset.
//!
//! PM_WDOG counts down in 16 µs ticks; when it expires with PM_RSTC's
//! write-configuration set to full reset, the SoC resets. PM_RSTS tells the
//! boot firmware what to do next: partition 63 (the bits 0x555) means stay
//! halted, the convention of Linux's bcm2835_wdt.c. Every write carries the
//! password 0x5a in the top byte, or the block ignores it. QEMU's raspi4b
//! models the block: a reset with partition 63 ends QEMU.
//!
//! Rules: found once at boot from the device tree ([`init`]); used only on
//! the way out ([`crate::exit`]), with interrupts masked, after the
//! `@exit` line is printed.

use core::sync::atomic::{AtomicUsize, Ordering};

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_structs;
use tock_registers::registers::ReadWrite;

register_structs! {
    Registers {
        (0x00 => _reserved),
        (0x1c => rstc: ReadWrite<u32>),
        (0x20 => rsts: ReadWrite<u32>),
        (0x24 => wdog: ReadWrite<u32>),
        (0x28 => @END),
    }
}

const PASSWORD: u32 = 0x5a00_0000;
const RSTC_WRCFG_MASK: u32 = 0x30;
const RSTC_WRCFG_FULL_RESET: u32 = 0x20;
/// The partition bits of PM_RSTS; all set = partition 63 = halt.
const RSTS_PARTITION: u32 = 0x555;
/// Watchdog ticks before the reset (16 µs each).
const TICKS: u32 = 10;

static BASE: AtomicUsize = AtomicUsize::new(0);

/// Records the watchdog window the device tree names (`brcm,bcm2835-pm-wdt`
/// or `brcm,bcm2711-pm`, found by `devtree`), if any.
pub fn init(window: Option<physmap::PhysRange>) {
    if let Some(r) = window
        && r.base < (4 << 30)
    {
        BASE.store(r.base as usize, Ordering::Relaxed);
    }
}

fn reset(partition: u32) -> bool {
    let base = BASE.load(Ordering::Relaxed);
    if base == 0 {
        return false;
    }
    // SAFETY: the device tree's PM block, below 4 GiB and outside RAM
    // (device memory in the kernel's map); only the exit path uses it.
    let regs = unsafe { &*(base as *const Registers) };
    let rsts = regs.rsts.get() & !RSTS_PARTITION;
    regs.rsts.set(PASSWORD | rsts | partition);
    regs.wdog.set(PASSWORD | TICKS);
    let rstc = regs.rstc.get() & !RSTC_WRCFG_MASK;
    regs.rstc.set(PASSWORD | rstc | RSTC_WRCFG_FULL_RESET);
    true
}

/// Resets the board into a halt (the firmware stays off until power is
/// cycled). Returns false without a watchdog; otherwise the reset follows
/// within about 160 µs.
pub fn halt() -> bool {
    reset(RSTS_PARTITION)
}

/// Resets the board (it boots again from the SD card).
pub fn reboot() -> bool {
    reset(0)
}
