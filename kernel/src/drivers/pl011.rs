//! Arm PrimeCell UART (PL011) driver: polled transmit (the kernel reads no
//! input).
//!
//! QEMU's virt and raspi4b machines and the Raspberry Pi 4 (UART0) have one.
//! Output is polled (wait while the transmit FIFO is full), which keeps the
//! console usable from exception and panic paths.

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_bitfields;
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

use crate::drivers::mmio::Mmio;

register_bitfields! {u32,
    FR [
        TXFF OFFSET(5) NUMBITS(1) [],
        BUSY OFFSET(3) NUMBITS(1) []
    ],
    LCR_H [
        WLEN OFFSET(5) NUMBITS(2) [EightBit = 0b11],
        FEN OFFSET(4) NUMBITS(1) []
    ],
    CR [
        RXE OFFSET(9) NUMBITS(1) [],
        TXE OFFSET(8) NUMBITS(1) [],
        UARTEN OFFSET(0) NUMBITS(1) []
    ],
    /// Interrupt clear: writing 1 clears that interrupt.
    ICR [
        /// Overrun error.
        OEIC OFFSET(10) NUMBITS(1) [],
        /// Break error.
        BEIC OFFSET(9) NUMBITS(1) [],
        /// Parity error.
        PEIC OFFSET(8) NUMBITS(1) [],
        /// Framing error.
        FEIC OFFSET(7) NUMBITS(1) [],
        /// Receive timeout.
        RTIC OFFSET(6) NUMBITS(1) [],
        /// Transmit.
        TXIC OFFSET(5) NUMBITS(1) [],
        /// Receive.
        RXIC OFFSET(4) NUMBITS(1) [],
        /// nUARTDSR modem.
        DSRMIC OFFSET(3) NUMBITS(1) [],
        /// nUARTDCD modem.
        DCDMIC OFFSET(2) NUMBITS(1) [],
        /// nUARTCTS modem.
        CTSMIC OFFSET(1) NUMBITS(1) [],
        /// nUARTRI modem.
        RIMIC OFFSET(0) NUMBITS(1) []
    ]
}

register_structs! {
    Registers {
        (0x00 => dr: ReadWrite<u32>),
        (0x04 => _reserved0),
        (0x18 => fr: ReadOnly<u32, FR::Register>),
        (0x1c => _reserved1),
        (0x24 => ibrd: ReadWrite<u32>),
        (0x28 => fbrd: ReadWrite<u32>),
        (0x2c => lcr_h: ReadWrite<u32, LCR_H::Register>),
        (0x30 => cr: ReadWrite<u32, CR::Register>),
        (0x34 => _reserved2),
        (0x44 => icr: WriteOnly<u32, ICR::Register>),
        (0x48 => @END),
    }
}

/// One PL011 at a fixed MMIO base. Callers serialise access (the console
/// wraps it in a lock).
pub struct Pl011 {
    regs: Mmio<Registers>,
}

impl Pl011 {
    /// # Safety
    /// `base` must be the physical (identity-mapped) base of a PL011 whose
    /// registers are mapped as device memory for as long as this value lives,
    /// and no other code may drive the same UART concurrently.
    pub const unsafe fn new(base: usize) -> Self {
        Self {
            // SAFETY: forwarded contract.
            regs: unsafe { Mmio::new(base) },
        }
    }

    fn regs(&self) -> &Registers {
        &self.regs
    }

    /// MMIO base address.
    pub fn base(&self) -> usize {
        self.regs.base()
    }

    /// Programs 8N1 with FIFOs at `baud` for a UART clocked at `clock_hz`.
    /// Skipped (firmware settings kept) when the clock is unknown.
    pub fn init(&self, clock_hz: Option<u32>, baud: u32) {
        let Some(clock) = clock_hz else { return };
        let r = self.regs();
        r.cr.set(0);
        while r.fr.is_set(FR::BUSY) {}
        // Divisor = clock / (16 * baud) in 16.6 fixed point.
        let div64 = (clock as u64 * 4).div_ceil(baud as u64);
        r.ibrd.set((div64 >> 6) as u32);
        r.fbrd.set((div64 & 0x3f) as u32);
        r.lcr_h.write(LCR_H::WLEN::EightBit + LCR_H::FEN::SET);
        // Clear every pending interrupt (the kernel enables none).
        r.icr.write(
            ICR::OEIC::SET
                + ICR::BEIC::SET
                + ICR::PEIC::SET
                + ICR::FEIC::SET
                + ICR::RTIC::SET
                + ICR::TXIC::SET
                + ICR::RXIC::SET
                + ICR::DSRMIC::SET
                + ICR::DCDMIC::SET
                + ICR::CTSMIC::SET
                + ICR::RIMIC::SET,
        );
        r.cr.write(CR::UARTEN::SET + CR::TXE::SET + CR::RXE::SET);
    }

    /// Sends one byte, waiting while the transmit FIFO is full.
    pub fn put(&self, byte: u8) {
        let r = self.regs();
        while r.fr.is_set(FR::TXFF) {
            core::hint::spin_loop();
        }
        r.dr.set(byte as u32);
    }

    /// Waits until every queued byte has left the transmitter.
    pub fn flush(&self) {
        while self.regs().fr.is_set(FR::BUSY) {
            core::hint::spin_loop();
        }
    }
}
