//! PIO data transfers: CMD17/18 reads and CMD24/25 writes of 512-byte
//! blocks through the buffer data port, 32 bits at a time.
//!
//! Rules:
//! - Multi-block transfers use a block count and auto-CMD12 (the
//!   controller sends STOP_TRANSMISSION after the last block), at most
//!   [`MAX_BLOCKS`] blocks per command.
//! - Standard-capacity cards take byte addresses, high-capacity cards block
//!   numbers (spec 4.3.14).
//! - Each block waits for BUFFER_READ_READY / BUFFER_WRITE_READY, the whole
//!   transfer for TRANSFER_COMPLETE; an error bit or a wait longer than the
//!   host's timeout fails the transfer, and the CMD and DAT lines are reset
//!   before the error is returned ([`Host::recover`]). A failed read leaves
//!   the caller's buffer with undefined content but reports the failure: the
//!   page cache never marks such a page up to date.
//! - After a write the card is polled (CMD13) until it is back in the
//!   transfer state, so a completion means the data reached the card.

use tock_registers::interfaces::{Readable, Writeable};

use super::cmd::{self, DataPhase};
use super::regs::INT;
use super::{Host, SdError};

/// Most blocks moved by one command (the block count register is 16 bits;
/// 128 blocks keep a single transfer's timeout meaningful).
pub const MAX_BLOCKS: usize = 128;

impl Host {
    fn card_address(&self, sector: u64) -> Result<u32, SdError> {
        let a = if self.high_capacity {
            sector
        } else {
            sector * 512
        };
        u32::try_from(a).map_err(|_| SdError::AddressTooLarge { sector })
    }

    /// Runs `f` on each piece of at most [`MAX_BLOCKS`] blocks of a
    /// `len`-byte transfer from `sector`; the first failure resets the CMD
    /// and DAT lines and ends the transfer.
    fn per_command(
        &mut self,
        sector: u64,
        len: usize,
        mut f: impl FnMut(&mut Self, u64, core::ops::Range<usize>) -> Result<(), SdError>,
    ) -> Result<(), SdError> {
        for start in (0..len).step_by(MAX_BLOCKS * 512) {
            let end = (start + MAX_BLOCKS * 512).min(len);
            if let Err(e) = f(self, sector + (start / 512) as u64, start..end) {
                self.stats.errors += 1;
                self.recover(true);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Sends the read or write command for `blocks` blocks at `sector`.
    fn start_transfer(
        &mut self,
        sector: u64,
        blocks: usize,
        read: bool,
    ) -> Result<cmd::Cmd, SdError> {
        let c = match (read, blocks) {
            (true, 1) => cmd::READ_SINGLE_BLOCK,
            (true, _) => cmd::READ_MULTIPLE_BLOCK,
            (false, 1) => cmd::WRITE_BLOCK,
            (false, _) => cmd::WRITE_MULTIPLE_BLOCK,
        };
        let addr = self.card_address(sector)?;
        let phase = DataPhase {
            blocks: blocks as u16,
            read,
        };
        self.command(c, addr, Some(phase))?;
        Ok(c)
    }

    /// Reads `buf.len() / 512` blocks from `sector`.
    pub(super) fn read_blocks(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), SdError> {
        self.per_command(sector, buf.len(), |h, s, r| h.read_chunk(s, &mut buf[r]))
    }

    fn read_chunk(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), SdError> {
        let c = self.start_transfer(sector, buf.len() / 512, true)?;
        for block in buf.chunks_exact_mut(512) {
            self.wait_int(INT::READ_READY::SET.value, "read buffer ready", c.index)?;
            self.regs().int_status.set(INT::READ_READY::SET.value);
            for w in block.chunks_exact_mut(4) {
                w.copy_from_slice(&self.regs().data.get().to_le_bytes());
            }
        }
        self.wait_int(INT::DATA_DONE::SET.value, "read transfer complete", c.index)?;
        self.regs().int_status.set(INT::DATA_DONE::SET.value);
        Ok(())
    }

    /// Writes `buf` (whole blocks) from `sector`.
    pub(super) fn write_blocks(&mut self, sector: u64, buf: &[u8]) -> Result<(), SdError> {
        self.per_command(sector, buf.len(), |h, s, r| h.write_chunk(s, &buf[r]))
    }

    fn write_chunk(&mut self, sector: u64, buf: &[u8]) -> Result<(), SdError> {
        let c = self.start_transfer(sector, buf.len() / 512, false)?;
        for block in buf.chunks_exact(512) {
            self.wait_int(INT::WRITE_READY::SET.value, "write buffer ready", c.index)?;
            self.regs().int_status.set(INT::WRITE_READY::SET.value);
            for w in block.chunks_exact(4) {
                let word = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
                self.regs().data.set(word);
            }
        }
        self.wait_int(
            INT::DATA_DONE::SET.value,
            "write transfer complete",
            c.index,
        )?;
        self.regs().int_status.set(INT::DATA_DONE::SET.value);
        self.wait_ready()
    }
}
