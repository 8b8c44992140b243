//! SD commands (Physical Layer Simplified Specification 4.7.4) and the
//! command engine: issue one command, wait for its response, map failures.
//!
//! Rules:
//! - A command is issued only when CMD_INHIBIT (and, for data or busy
//!   commands, DAT_INHIBIT) is clear; waiting longer than [`CMD_TIMEOUT_NS`]
//!   is [`SdError::Timeout`].
//! - The interrupt status is cleared before every command; the command's
//!   outcome is CMD_DONE or the first error bit.
//! - Any failure resets the CMD line, and the DAT line too if the command
//!   moves data or signals busy (spec 3.10, error recovery), so the next
//!   command starts on a clean controller (data commands: by xfer.rs, once
//!   per transfer).
//! - R1/R1b responses are checked for card-status error bits: a card that
//!   refuses an address (QEMU still clocks out a block of zeros then) is an
//!   error, never data.

use tock_registers::interfaces::{Readable, Writeable};

use super::regs::{CMD, INT, INT_ERRORS, PRESENT};
use super::{Host, SdError};
use crate::arch::timer;

/// Longest wait for a command's response (and for the lines to go idle).
pub const CMD_TIMEOUT_NS: u64 = 100_000_000;

/// Response formats (spec 4.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resp {
    None,
    /// Normal response: card status.
    R1,
    /// R1 with busy on DAT0.
    R1b,
    /// CID or CSD (136 bits).
    R2,
    /// OCR (no CRC).
    R3,
    /// Published RCA.
    R6,
    /// Card interface condition.
    R7,
}

/// One command: index, response, and whether it is application-specific
/// (sent after CMD55).
#[derive(Clone, Copy, Debug)]
pub struct Cmd {
    pub index: u8,
    pub resp: Resp,
    pub app: bool,
}

const fn cmd(index: u8, resp: Resp) -> Cmd {
    Cmd {
        index,
        resp,
        app: false,
    }
}
const fn acmd(index: u8, resp: Resp) -> Cmd {
    Cmd {
        index,
        resp,
        app: true,
    }
}

pub const GO_IDLE_STATE: Cmd = cmd(0, Resp::None);
pub const ALL_SEND_CID: Cmd = cmd(2, Resp::R2);
pub const SEND_RELATIVE_ADDR: Cmd = cmd(3, Resp::R6);
pub const SELECT_CARD: Cmd = cmd(7, Resp::R1b);
pub const SEND_IF_COND: Cmd = cmd(8, Resp::R7);
pub const SEND_CSD: Cmd = cmd(9, Resp::R2);
pub const SEND_STATUS: Cmd = cmd(13, Resp::R1);
pub const SET_BLOCKLEN: Cmd = cmd(16, Resp::R1);
pub const READ_SINGLE_BLOCK: Cmd = cmd(17, Resp::R1);
pub const READ_MULTIPLE_BLOCK: Cmd = cmd(18, Resp::R1);
pub const WRITE_BLOCK: Cmd = cmd(24, Resp::R1);
pub const WRITE_MULTIPLE_BLOCK: Cmd = cmd(25, Resp::R1);
pub const APP_CMD: Cmd = cmd(55, Resp::R1);
pub const SET_BUS_WIDTH: Cmd = acmd(6, Resp::R1);
pub const SD_SEND_OP_COND: Cmd = acmd(41, Resp::R3);

/// Card status bits that mean the command failed (spec 4.10.1, type E):
/// OUT_OF_RANGE, ADDRESS_ERROR, BLOCK_LEN_ERROR, ERASE_SEQ_ERROR,
/// ERASE_PARAM, WP_VIOLATION, LOCK_UNLOCK_FAILED, COM_CRC_ERROR,
/// ILLEGAL_COMMAND, CARD_ECC_FAILED, CC_ERROR, ERROR, CSD_OVERWRITE,
/// WP_ERASE_SKIP, AKE_SEQ_ERROR.
pub const R1_ERRORS: u32 = 0xfdf9_8008;
/// Card status: READY_FOR_DATA.
pub const R1_READY_FOR_DATA: u32 = 1 << 8;
/// Card status: CURRENT_STATE (bits 12:9).
pub fn r1_state(status: u32) -> u32 {
    (status >> 9) & 0xf
}
/// CURRENT_STATE of a selected, idle card.
pub const STATE_TRAN: u32 = 4;

/// A data phase: blocks of 512 bytes, direction, auto-CMD12.
#[derive(Clone, Copy, Debug)]
pub struct DataPhase {
    pub blocks: u16,
    pub read: bool,
}

impl Host {
    /// Waits until `mask` bits of the present state are clear.
    pub(super) fn wait_idle(&self, mask: u32, what: &'static str) -> Result<(), SdError> {
        let start = timer::now_ns();
        while self.regs().present.get() & mask != 0 {
            if timer::now_ns() - start > CMD_TIMEOUT_NS {
                return Err(SdError::Timeout { what, cmd: None });
            }
            core::hint::spin_loop();
        }
        Ok(())
    }

    /// Sends `c` (preceded by CMD55 if it is an application command) and
    /// returns the response words (R2: bits 127..8 of the register in
    /// `resp[0..4]`, as SDHCI stores them).
    pub(super) fn command(
        &mut self,
        c: Cmd,
        arg: u32,
        data: Option<DataPhase>,
    ) -> Result<[u32; 4], SdError> {
        if c.app {
            self.command(APP_CMD, self.rca << 16, None)?;
        }
        let r = self.issue(c, arg, data);
        // A data command's caller (xfer.rs) recovers once for the whole
        // transfer, whichever phase failed.
        if r.is_err() && data.is_none() {
            self.stats.errors += 1;
            self.recover(c.resp == Resp::R1b);
        }
        r
    }

    fn issue(&mut self, c: Cmd, arg: u32, data: Option<DataPhase>) -> Result<[u32; 4], SdError> {
        let busy = data.is_some() || c.resp == Resp::R1b;
        let mut inhibit = PRESENT::CMD_INHIBIT::SET.value;
        if busy {
            inhibit |= PRESENT::DAT_INHIBIT::SET.value;
        }
        self.wait_idle(inhibit, "command and data lines busy")
            .map_err(|e| e.with_cmd(c.index))?;
        let regs = self.regs();
        regs.int_status.set(0xffff_ffff);
        let mut v = CMD::INDEX.val(c.index as u32);
        v += match c.resp {
            Resp::None => CMD::RESPONSE::None,
            Resp::R2 => CMD::RESPONSE::Long136 + CMD::CRC_CHECK::SET,
            Resp::R3 => CMD::RESPONSE::Short48,
            Resp::R1b => CMD::RESPONSE::Short48Busy + CMD::CRC_CHECK::SET + CMD::INDEX_CHECK::SET,
            Resp::R1 | Resp::R6 | Resp::R7 => {
                CMD::RESPONSE::Short48 + CMD::CRC_CHECK::SET + CMD::INDEX_CHECK::SET
            }
        };
        if let Some(d) = data {
            regs.block.write(
                super::regs::BLOCK::SIZE.val(512) + super::regs::BLOCK::COUNT.val(d.blocks as u32),
            );
            v += CMD::DATA_PRESENT::SET;
            if d.read {
                v += CMD::READ::SET;
            }
            if d.blocks > 1 {
                v += CMD::MULTI::SET + CMD::BLOCK_COUNT_EN::SET + CMD::AUTO_CMD::Cmd12;
            }
        }
        regs.arg.set(arg);
        // One 32-bit store of transfer mode and command: this issues it.
        regs.cmd.write(v);

        self.wait_int(INT::CMD_DONE::SET.value, "response", c.index)?;
        regs.int_status.set(INT::CMD_DONE::SET.value);
        let resp = [
            regs.resp[0].get(),
            regs.resp[1].get(),
            regs.resp[2].get(),
            regs.resp[3].get(),
        ];
        if matches!(c.resp, Resp::R1 | Resp::R1b) && resp[0] & R1_ERRORS != 0 {
            return Err(SdError::CardStatus {
                cmd: c.index,
                status: resp[0],
            });
        }
        if c.resp == Resp::R1b && data.is_none() {
            // Busy ends with transfer complete (spec 2.2.17).
            self.wait_int(INT::DATA_DONE::SET.value, "end of busy", c.index)?;
            self.regs().int_status.set(INT::DATA_DONE::SET.value);
        }
        Ok(resp)
    }

    /// Waits for any of `bits` in the interrupt status, or an error.
    pub(super) fn wait_int(&self, bits: u32, what: &'static str, cmd: u8) -> Result<u32, SdError> {
        let start = timer::now_ns();
        loop {
            let s = self.regs().int_status.get();
            if s & INT_ERRORS != 0 {
                return Err(SdError::from_int(s, cmd));
            }
            if s & bits != 0 {
                return Ok(s);
            }
            if timer::now_ns() - start > self.timeout_ns {
                return Err(SdError::Timeout {
                    what,
                    cmd: Some(cmd),
                });
            }
            core::hint::spin_loop();
        }
    }

    /// Error recovery (spec 3.10.1): reset the CMD line, and the DAT line
    /// when a data phase or busy was involved; clear every status bit. The
    /// two resets are separate writes, each waited for: QEMU's SDHCI acts on
    /// a reset byte only when it names exactly one line.
    pub(super) fn recover(&mut self, dat: bool) {
        use super::regs::CLOCK;
        use tock_registers::interfaces::ReadWriteable;
        let mut lines = [Some(CLOCK::RESET_CMD), None];
        if dat {
            lines[1] = Some(CLOCK::RESET_DAT);
        }
        for line in lines.into_iter().flatten() {
            let regs = self.regs();
            regs.clock.modify(line.val(1));
            let start = timer::now_ns();
            while regs.clock.is_set(line) {
                if timer::now_ns() - start > CMD_TIMEOUT_NS {
                    log::warn!("sdhci: CMD/DAT line reset did not finish");
                    break;
                }
                core::hint::spin_loop();
            }
        }
        self.regs().int_status.set(0xffff_ffff);
        self.stats.recoveries += 1;
    }
}
