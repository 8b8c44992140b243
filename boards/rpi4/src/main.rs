//! Raspberry Pi 4 Model B (BCM2711) and QEMU `raspi4b`: RAM from 0, kernel
//! loaded at 0x80000 and entered at EL2 with the DTB in x0, PL011 UART0 at
//! 0xFE20_1000 (bus address 0x7E20_1000), no PSCI.
//!
//! The PL011 reaches the header only if GPIO 14/15 are in their ALT0
//! function; Debian's bcm2711-rpi-4-b.dtb gives UART0 to the Bluetooth
//! pins and the firmware then leaves 14/15 to the mini UART, so the board
//! code muxes them itself before the first output
//! ([`Board::setup_uart_pins`]).

#![no_std]
#![no_main]

use kernel::board::Board;

mod firmware;
mod gpio;

struct Rpi4;

/// Memory map facts used before the device tree is parsed.
mod memory_map {
    /// PL011 UART0 in the "low peripheral" window (BCM2711 ARM peripherals,
    /// section 1.2.4: 0x7E20_1000 on the VPU bus).
    pub const UART0: usize = 0xFE20_1000;
    /// GPIO block (0x7E20_0000 on the VPU bus).
    pub const GPIO: usize = 0xFE20_0000;
}

impl Board for Rpi4 {
    fn name(&self) -> &'static str {
        "rpi4"
    }
    fn early_uart_base(&self) -> usize {
        memory_map::UART0
    }
    fn uart_clock_hz(&self) -> Option<u32> {
        Some(firmware::UART_CLOCK_HZ)
    }
    fn setup_uart_pins(&self) {
        // SAFETY: the BCM2711 GPIO block, below 4 GiB outside the kernel and
        // DTB, so device memory in the boot map; nothing else drives it yet.
        let gpio = unsafe { gpio::Gpio::new(memory_map::GPIO) };
        // TXD0 on GPIO 14 without pull, RXD0 on GPIO 15 pulled up (an
        // unconnected RX line then reads idle), as Linux's uart0_gpio14.
        gpio.set_function(14, gpio::Function::Alt0, gpio::Pull::None);
        gpio.set_function(15, gpio::Function::Alt0, gpio::Pull::Up);
    }
}

static BOARD: Rpi4 = Rpi4;

kernel::board_entry!(BOARD);
