//! Card identification and set-up (SD Physical Layer 4.2, SDHCI 3.6):
//! reset, power, 400 kHz clock, CMD0, CMD8, ACMD41, CMD2, CMD3, CMD9
//! (capacity from the CSD), CMD7, 25 MHz, ACMD6 (4-bit bus), CMD16 for
//! standard-capacity cards.
//!
//! Rules: signalling stays at 3.3 V (ACMD41 never sets S18R: the EMMC2 slot
//! has no 1.8 V switch); a card that does not leave the busy state within
//! [`INIT_TIMEOUT_NS`] is an error; a CSD of an unknown structure version is
//! an error, not a guess.

use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};

use super::cmd;
use super::regs::{CLOCK, HOST, PRESENT};
use super::{Host, SdError, clock};
use crate::arch::timer;

/// ACMD41 loops at most this long (spec: 1 s).
pub const INIT_TIMEOUT_NS: u64 = 1_000_000_000;

/// OCR: voltage window 2.7-3.6 V.
const OCR_VOLTAGES: u32 = 0x00ff_8000;
/// OCR: host capacity support / card capacity status.
const OCR_HCS: u32 = 1 << 30;
/// OCR: power-up done (not busy).
const OCR_READY: u32 = 1 << 31;

/// What identification found.
#[derive(Clone, Copy, Debug)]
pub struct CardInfo {
    /// 512-byte sectors.
    pub sectors: u64,
    /// Block-addressed (SDHC/SDXC) rather than byte-addressed (SDSC).
    pub high_capacity: bool,
    /// CMD8 answered: a version 2.00 or later card.
    pub v2: bool,
    pub rca: u16,
    /// Manufacturer ID and product name from the CID.
    pub manufacturer: u8,
    pub product: [u8; 5],
}

/// Capacity in 512-byte sectors from a CSD as SDHCI returns it (bits
/// 127..8 of the register in `r[0..4]`).
pub fn csd_sectors(r: [u32; 4]) -> Result<u64, SdError> {
    let raw = (r[0] as u128) | (r[1] as u128) << 32 | (r[2] as u128) << 64 | (r[3] as u128) << 96;
    let csd = raw << 8;
    let bits = |hi: u32, lo: u32| -> u64 { ((csd >> lo) & ((1u128 << (hi - lo + 1)) - 1)) as u64 };
    match bits(127, 126) {
        0 => {
            // CSD 1.0: (C_SIZE + 1) * 2^(C_SIZE_MULT + 2) * 2^READ_BL_LEN bytes.
            let read_bl_len = bits(83, 80);
            let c_size = bits(73, 62);
            let mult = bits(49, 47);
            if !(9..=11).contains(&read_bl_len) {
                return Err(SdError::BadCsd { structure: 0 });
            }
            Ok(((c_size + 1) << (mult + 2 + read_bl_len)) / 512)
        }
        1 => Ok((bits(69, 48) + 1) * 1024), // CSD 2.0: (C_SIZE + 1) * 512 KiB
        s => Err(SdError::BadCsd { structure: s as u8 }),
    }
}

impl Host {
    /// Resets the controller, powers the slot and identifies the card.
    pub(super) fn init_card(&mut self) -> Result<CardInfo, SdError> {
        let regs = self.regs();
        regs.clock.modify(CLOCK::RESET_ALL::SET);
        let start = timer::now_ns();
        while regs.clock.is_set(CLOCK::RESET_ALL) {
            if timer::now_ns() - start > cmd::CMD_TIMEOUT_NS {
                return Err(SdError::Timeout {
                    what: "controller reset",
                    cmd: None,
                });
            }
            core::hint::spin_loop();
        }
        if !regs.present.is_set(PRESENT::CARD_INSERTED) {
            return Err(SdError::NoCard);
        }
        regs.host
            .write(HOST::BUS_VOLTAGE::V3_3 + HOST::BUS_POWER::SET);
        // Status bits visible for polling, no interrupt signalled.
        regs.int_enable.set(0xffff_ffff);
        regs.int_signal.set(0);
        regs.int_status.set(0xffff_ffff);
        self.set_clock(clock::IDENT_HZ)?;

        self.rca = 0;
        self.command(cmd::GO_IDLE_STATE, 0, None)?;
        // CMD8: 2.7-3.6 V, check pattern 0xaa. No answer: a version 1 card.
        let v2 = match self.command(cmd::SEND_IF_COND, 0x1aa, None) {
            Ok(r) if r[0] & 0xfff == 0x1aa => true,
            Ok(r) => {
                return Err(SdError::BadResponse {
                    cmd: 8,
                    value: r[0],
                });
            }
            Err(SdError::Timeout { .. }) | Err(SdError::Controller { .. }) => false,
            Err(e) => return Err(e),
        };
        let arg = OCR_VOLTAGES | if v2 { OCR_HCS } else { 0 };
        let start = timer::now_ns();
        let ocr = loop {
            let r = self.command(cmd::SD_SEND_OP_COND, arg, None)?;
            if r[0] & OCR_READY != 0 {
                break r[0];
            }
            if timer::now_ns() - start > INIT_TIMEOUT_NS {
                return Err(SdError::Timeout {
                    what: "card power-up (ACMD41 busy)",
                    cmd: Some(41),
                });
            }
            timer::spin_ns(1_000_000);
        };
        let high_capacity = v2 && ocr & OCR_HCS != 0;
        let cid = self.command(cmd::ALL_SEND_CID, 0, None)?;
        let r = self.command(cmd::SEND_RELATIVE_ADDR, 0, None)?;
        self.rca = r[0] >> 16;
        let csd = self.command(cmd::SEND_CSD, self.rca << 16, None)?;
        let sectors = csd_sectors(csd)?;
        self.command(cmd::SELECT_CARD, self.rca << 16, None)?;
        self.set_clock(clock::TRANSFER_HZ)?;
        self.command(cmd::SET_BUS_WIDTH, 2, None)?;
        self.regs().host.modify(HOST::WIDTH4::SET);
        if !high_capacity {
            self.command(cmd::SET_BLOCKLEN, 512, None)?;
        }
        self.high_capacity = high_capacity;
        // CID (bits 127..8 in r[0..4]): MID [127:120] = r[3] bits 31..24
        // after the 8-bit shift, i.e. r[3] >> 16; PNM [103:64].
        let raw = (cid[0] as u128)
            | (cid[1] as u128) << 32
            | (cid[2] as u128) << 64
            | (cid[3] as u128) << 96;
        let cid = raw << 8;
        let mut product = [0u8; 5];
        for (i, b) in product.iter_mut().enumerate() {
            *b = (cid >> (96 - 8 * i)) as u8;
        }
        Ok(CardInfo {
            sectors,
            high_capacity,
            v2,
            rca: self.rca as u16,
            manufacturer: (cid >> 120) as u8,
            product,
        })
    }

    /// CMD13 until the card is back in the transfer state and ready for data
    /// (after a write it programs the flash).
    pub(super) fn wait_ready(&mut self) -> Result<(), SdError> {
        let start = timer::now_ns();
        loop {
            let s = self.command(cmd::SEND_STATUS, self.rca << 16, None)?[0];
            if s & cmd::R1_READY_FOR_DATA != 0 && cmd::r1_state(s) == cmd::STATE_TRAN {
                return Ok(());
            }
            if timer::now_ns() - start > self.timeout_ns {
                return Err(SdError::Timeout {
                    what: "card ready after write",
                    cmd: Some(13),
                });
            }
            core::hint::spin_loop();
        }
    }
}
