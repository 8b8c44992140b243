//! SDHCI registers (SD Host Controller Simplified Specification 3.00,
//! section 2), as 32-bit words.
//!
//! Rule: every access is a whole, aligned 32-bit word. The BCM2711's EMMC2
//! drops or corrupts 8- and 16-bit accesses (Linux's sdhci-iproc shadows
//! the 16-bit halves for it), so the spec's 16-bit registers appear here in
//! pairs: transfer mode + command (0x0C, written in one store, which issues
//! the command), host control + power control (0x28), clock control +
//! timeout control + software reset (0x2C), normal + error interrupt status
//! (0x30). Read-modify-write of 0x28 and 0x2C keeps the other half as it is;
//! the interrupt status word is write-1-to-clear and is only ever written
//! with the bits to clear (never `modify`).

use tock_registers::register_bitfields;
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite};

register_bitfields! {u32,
    /// 0x04: block size (low half) and block count (high half).
    pub BLOCK [
        SIZE OFFSET(0) NUMBITS(12) [],
        SDMA_BOUNDARY OFFSET(12) NUMBITS(3) [],
        COUNT OFFSET(16) NUMBITS(16) []
    ],
    /// 0x0C: transfer mode (low half) and command (high half).
    pub CMD [
        DMA OFFSET(0) NUMBITS(1) [],
        BLOCK_COUNT_EN OFFSET(1) NUMBITS(1) [],
        AUTO_CMD OFFSET(2) NUMBITS(2) [None = 0, Cmd12 = 1],
        READ OFFSET(4) NUMBITS(1) [],
        MULTI OFFSET(5) NUMBITS(1) [],
        RESPONSE OFFSET(16) NUMBITS(2) [None = 0, Long136 = 1, Short48 = 2, Short48Busy = 3],
        CRC_CHECK OFFSET(19) NUMBITS(1) [],
        INDEX_CHECK OFFSET(20) NUMBITS(1) [],
        DATA_PRESENT OFFSET(21) NUMBITS(1) [],
        TYPE OFFSET(22) NUMBITS(2) [Normal = 0, Abort = 3],
        INDEX OFFSET(24) NUMBITS(6) []
    ],
    /// 0x24: present state.
    pub PRESENT [
        CMD_INHIBIT OFFSET(0) NUMBITS(1) [],
        DAT_INHIBIT OFFSET(1) NUMBITS(1) [],
        DAT_ACTIVE OFFSET(2) NUMBITS(1) [],
        WRITE_ACTIVE OFFSET(8) NUMBITS(1) [],
        READ_ACTIVE OFFSET(9) NUMBITS(1) [],
        BUFFER_WRITE_EN OFFSET(10) NUMBITS(1) [],
        BUFFER_READ_EN OFFSET(11) NUMBITS(1) [],
        CARD_INSERTED OFFSET(16) NUMBITS(1) [],
        CARD_STABLE OFFSET(17) NUMBITS(1) [],
        WRITE_PROTECT_OFF OFFSET(19) NUMBITS(1) [],
        DAT_LEVEL OFFSET(20) NUMBITS(4) []
    ],
    /// 0x28: host control (bits 0-7) and power control (bits 8-15).
    pub HOST [
        LED OFFSET(0) NUMBITS(1) [],
        WIDTH4 OFFSET(1) NUMBITS(1) [],
        HIGH_SPEED OFFSET(2) NUMBITS(1) [],
        DMA_SELECT OFFSET(3) NUMBITS(2) [],
        WIDTH8 OFFSET(5) NUMBITS(1) [],
        BUS_POWER OFFSET(8) NUMBITS(1) [],
        BUS_VOLTAGE OFFSET(9) NUMBITS(3) [V1_8 = 0b101, V3_0 = 0b110, V3_3 = 0b111]
    ],
    /// 0x2C: clock control (bits 0-15), timeout control (16-19), software
    /// reset (24-26).
    pub CLOCK [
        INTERNAL_EN OFFSET(0) NUMBITS(1) [],
        INTERNAL_STABLE OFFSET(1) NUMBITS(1) [],
        SD_EN OFFSET(2) NUMBITS(1) [],
        DIVIDER_HI OFFSET(6) NUMBITS(2) [],
        DIVIDER_LO OFFSET(8) NUMBITS(8) [],
        DATA_TIMEOUT OFFSET(16) NUMBITS(4) [],
        RESET_ALL OFFSET(24) NUMBITS(1) [],
        RESET_CMD OFFSET(25) NUMBITS(1) [],
        RESET_DAT OFFSET(26) NUMBITS(1) []
    ],
    /// 0x30 (status), 0x34 (status enable), 0x38 (signal enable): normal
    /// interrupts in bits 0-15, error interrupts in bits 16-31.
    pub INT [
        CMD_DONE OFFSET(0) NUMBITS(1) [],
        DATA_DONE OFFSET(1) NUMBITS(1) [],
        BLOCK_GAP OFFSET(2) NUMBITS(1) [],
        DMA OFFSET(3) NUMBITS(1) [],
        WRITE_READY OFFSET(4) NUMBITS(1) [],
        READ_READY OFFSET(5) NUMBITS(1) [],
        CARD_INSERT OFFSET(6) NUMBITS(1) [],
        CARD_REMOVE OFFSET(7) NUMBITS(1) [],
        CARD OFFSET(8) NUMBITS(1) [],
        ERROR OFFSET(15) NUMBITS(1) [],
        CMD_TIMEOUT OFFSET(16) NUMBITS(1) [],
        CMD_CRC OFFSET(17) NUMBITS(1) [],
        CMD_END_BIT OFFSET(18) NUMBITS(1) [],
        CMD_INDEX OFFSET(19) NUMBITS(1) [],
        DATA_TIMEOUT OFFSET(20) NUMBITS(1) [],
        DATA_CRC OFFSET(21) NUMBITS(1) [],
        DATA_END_BIT OFFSET(22) NUMBITS(1) [],
        CURRENT_LIMIT OFFSET(23) NUMBITS(1) [],
        AUTO_CMD OFFSET(24) NUMBITS(1) [],
        ADMA OFFSET(25) NUMBITS(1) []
    ],
    /// 0x40: capabilities (low word).
    pub CAPS [
        TIMEOUT_CLOCK OFFSET(0) NUMBITS(6) [],
        BASE_CLOCK_MHZ OFFSET(8) NUMBITS(8) [],
        MAX_BLOCK OFFSET(16) NUMBITS(2) [],
        HIGH_SPEED OFFSET(21) NUMBITS(1) [],
        SDMA OFFSET(22) NUMBITS(1) [],
        V3_3 OFFSET(24) NUMBITS(1) []
    ],
    /// 0xFC: slot interrupt status (low half) and host controller version.
    pub VERSION [
        SPEC OFFSET(16) NUMBITS(8) [],
        VENDOR OFFSET(24) NUMBITS(8) []
    ]
}

register_structs! {
    pub Registers {
        (0x00 => pub arg2: ReadWrite<u32>),
        (0x04 => pub block: ReadWrite<u32, BLOCK::Register>),
        (0x08 => pub arg: ReadWrite<u32>),
        (0x0c => pub cmd: ReadWrite<u32, CMD::Register>),
        (0x10 => pub resp: [ReadOnly<u32>; 4]),
        (0x20 => pub data: ReadWrite<u32>),
        (0x24 => pub present: ReadOnly<u32, PRESENT::Register>),
        (0x28 => pub host: ReadWrite<u32, HOST::Register>),
        (0x2c => pub clock: ReadWrite<u32, CLOCK::Register>),
        (0x30 => pub int_status: ReadWrite<u32, INT::Register>),
        (0x34 => pub int_enable: ReadWrite<u32, INT::Register>),
        (0x38 => pub int_signal: ReadWrite<u32, INT::Register>),
        (0x3c => pub host2: ReadWrite<u32>),
        (0x40 => pub caps: ReadOnly<u32, CAPS::Register>),
        (0x44 => pub caps_hi: ReadOnly<u32>),
        (0x48 => _reserved),
        (0xfc => pub version: ReadOnly<u32, VERSION::Register>),
        (0x100 => @END),
    }
}

/// Every error interrupt bit (the high half of INT).
pub const INT_ERRORS: u32 = 0xffff_0000;
