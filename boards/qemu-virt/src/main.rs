//! QEMU `virt` (arm64): RAM at 0x4000_0000, PL011 at 0x0900_0000, PSCI via
//! hvc, GICv2/v3, virtio-mmio. The device tree says all of it; this crate
//! only supplies what is needed before the tree is read.

#![no_std]
#![no_main]

use kernel::board::Board;

struct QemuVirt;

/// Memory map facts used before the device tree is parsed.
mod memory_map {
    /// PL011 UART (QEMU hw/arm/virt.c: VIRT_UART).
    pub const UART0: usize = 0x0900_0000;
}

impl Board for QemuVirt {
    fn name(&self) -> &'static str {
        "qemu-virt"
    }
    fn early_uart_base(&self) -> usize {
        memory_map::UART0
    }
    fn uart_clock_hz(&self) -> Option<u32> {
        // QEMU's PL011 ignores the divisors; keep whatever is set.
        None
    }
}

static BOARD: QemuVirt = QemuVirt;

kernel::board_entry!(BOARD);
