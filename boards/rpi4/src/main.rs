//! Raspberry Pi 4 Model B (BCM2711) and QEMU `raspi4b`: RAM from 0, kernel
//! loaded at 0x80000 and entered at EL2 with the DTB in x0, PL011 UART0 at
//! 0xFE20_1000 (bus address 0x7E20_1000), no PSCI.

#![no_std]
#![no_main]

use kernel::board::Board;

struct Rpi4;

/// Memory map facts used before the device tree is parsed.
mod memory_map {
    /// PL011 UART0 in the "low peripheral" window (BCM2711 ARM peripherals,
    /// section 1.2.4: 0x7E20_1000 on the VPU bus).
    pub const UART0: usize = 0xFE20_1000;
    /// UART reference clock the firmware sets with `init_uart_clock`.
    pub const UART_CLOCK_HZ: u32 = 48_000_000;
}

impl Board for Rpi4 {
    fn name(&self) -> &'static str {
        "rpi4"
    }
    fn early_uart_base(&self) -> usize {
        memory_map::UART0
    }
    fn uart_clock_hz(&self) -> Option<u32> {
        Some(memory_map::UART_CLOCK_HZ)
    }
}

static BOARD: Rpi4 = Rpi4;

kernel::board_entry!(BOARD);
