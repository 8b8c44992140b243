//! The SD clock: base clock, divider, and the stop/program/start sequence
//! (SDHCI 3.00, section 3.2).
//!
//! The base clock is the VideoCore's EMMC2 clock rate when the mailbox
//! answers (the capabilities register of the BCM2711 does not describe the
//! clock the firmware programmed), else the capabilities register's
//! BASE_CLOCK field. Version 3 dividers are 10 bits: SD clock = base / (2N),
//! N = 0 meaning the base clock itself. The SD clock is never set below
//! [`MIN_CLOCK_HZ`] (the EMMC2 misbehaves under 200 kHz): a request for
//! less is refused.

use tock_registers::interfaces::{ReadWriteable, Readable};

use super::regs::CLOCK;
use super::{Host, SdError};
use crate::arch::timer;

/// Identification-mode clock.
pub const IDENT_HZ: u32 = 400_000;
/// Default-speed data transfer clock.
pub const TRANSFER_HZ: u32 = 25_000_000;
/// Lowest SD clock the driver programs.
pub const MIN_CLOCK_HZ: u32 = 200_000;

/// The divider field N for at most `hz` from `base` (SD clock base / 2N).
pub fn divider(base: u32, hz: u32) -> u32 {
    if hz >= base {
        0
    } else {
        base.div_ceil(2 * hz).min(0x3ff)
    }
}

/// The SD clock that divider `n` gives.
pub fn rate(base: u32, n: u32) -> u32 {
    if n == 0 { base } else { base / (2 * n) }
}

impl Host {
    /// Programs the SD clock to at most `hz`; returns the rate set.
    pub(super) fn set_clock(&mut self, hz: u32) -> Result<u32, SdError> {
        let n = divider(self.base_clock_hz, hz);
        let actual = rate(self.base_clock_hz, n);
        if actual < MIN_CLOCK_HZ || actual > hz {
            return Err(SdError::Clock {
                base: self.base_clock_hz,
                want: hz,
            });
        }
        let regs = self.regs();
        // Stop the SD clock, program the divider, wait for the internal clock.
        regs.clock.modify(CLOCK::SD_EN::CLEAR);
        regs.clock.modify(
            CLOCK::DIVIDER_LO.val(n & 0xff)
                + CLOCK::DIVIDER_HI.val(n >> 8)
                + CLOCK::INTERNAL_EN::SET
                + CLOCK::DATA_TIMEOUT.val(0xe),
        );
        let start = timer::now_ns();
        while !regs.clock.is_set(CLOCK::INTERNAL_STABLE) {
            if timer::now_ns() - start > super::cmd::CMD_TIMEOUT_NS {
                return Err(SdError::Timeout {
                    what: "internal clock stable",
                    cmd: None,
                });
            }
            core::hint::spin_loop();
        }
        regs.clock.modify(CLOCK::SD_EN::SET);
        // The card needs 74 clocks before the first command (spec 6.4.1).
        timer::spin_ns(1_000_000);
        self.clock_hz = actual;
        Ok(actual)
    }
}
