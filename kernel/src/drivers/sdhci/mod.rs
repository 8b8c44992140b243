//! SD Host Controller (SDHCI 3.00) driver for the Raspberry Pi 4's EMMC2
//! (`brcm,bcm2711-emmc2`), the controller wired to the micro-SD slot, and a
//! [`BlockDevice`] over the card in it.
//!
//! Files: [`regs`] (registers, 32-bit accesses only), `cmd` (commands and the
//! command engine, error recovery), `clock` (SD clock), `card`
//! (identification, capacity), `xfer` (PIO block transfers).
//!
//! # How it runs
//!
//! Programmed I/O: the BCM2711's EMMC2 as QEMU models it (capabilities
//! 0x052134b4) has neither SDMA nor ADMA, and PIO needs no bounce buffers or
//! bus-address translation. A PIO transfer keeps the CPU busy anyway, so
//! [`BlockDevice::submit`] performs the request at once and queues its
//! completion; [`BlockDevice::poll`] hands completions out in submission
//! order. Requests in flight are therefore requests whose completion has
//! not been reaped yet, up to [`QUEUE_DEPTH`] of them, which is the contract
//! the page cache relies on (it pins each buffer until the completion is
//! reaped) exactly as with virtio-blk.
//!
//! # Rules
//!
//! - Bad requests (out of range, bad buffer) are refused at submission, as
//!   [`check_request`] says; nothing reaches the card.
//! - A failed command or transfer resets the CMD and DAT lines (see `cmd`
//!   and `xfer`) and completes with [`BlockError::Io`] whose status is an
//!   [`SdError::code`]; one console line says what failed and why. The next
//!   request starts on a clean controller.
//! - Every wait is bounded: a timeout becomes [`SdError::Timeout`] naming
//!   the wait and the command.
//! - Flush completes at once: the card is polled back to the transfer state
//!   after every write, so completed writes have reached it.
//! - The owner serialises access (storage.rs keeps the device behind a lock).

mod card;
mod clock;
mod cmd;
pub mod regs;
mod xfer;

use alloc::collections::VecDeque;

use blkdev::{
    BlockDevice, BlockError, Completion, DevStats, Op, Request, SECTOR_SIZE, check_request,
};
use tock_registers::interfaces::Readable;

pub use card::CardInfo;
use regs::{CAPS, Registers, VERSION};

use super::mailbox::{self, MailboxInfo};

/// Completions the device holds before the caller must reap some.
pub const QUEUE_DEPTH: usize = 32;
/// Longest wait for one block or for the end of a transfer.
pub const DATA_TIMEOUT_NS: u64 = 500_000_000;

/// What went wrong on the SD bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SdError {
    /// The slot reports no card.
    NoCard,
    /// A wait ran out of time.
    Timeout { what: &'static str, cmd: Option<u8> },
    /// The controller flagged an error (error interrupt status bits).
    Controller { cmd: u8, bits: u16 },
    /// The card's R1 status has error bits.
    CardStatus { cmd: u8, status: u32 },
    /// A response that makes no sense (CMD8 echo).
    BadResponse { cmd: u8, value: u32 },
    /// A CSD of an unknown structure.
    BadCsd { structure: u8 },
    /// No divider gives a clock in range.
    Clock { base: u32, want: u32 },
    /// A sector whose card address does not fit 32 bits.
    AddressTooLarge { sector: u64 },
}

impl SdError {
    /// The status code of a [`BlockError::Io`] carrying this error.
    pub fn code(&self) -> u8 {
        match self {
            SdError::NoCard => 10,
            SdError::Timeout { .. } => 11,
            SdError::Controller { .. } => 12,
            SdError::CardStatus { .. } => 13,
            SdError::BadResponse { .. } | SdError::BadCsd { .. } => 14,
            SdError::Clock { .. } => 15,
            SdError::AddressTooLarge { .. } => 16,
        }
    }

    fn from_int(status: u32, cmd: u8) -> Self {
        SdError::Controller {
            cmd,
            bits: (status >> 16) as u16,
        }
    }

    fn with_cmd(self, c: u8) -> Self {
        match self {
            SdError::Timeout { what, .. } => SdError::Timeout { what, cmd: Some(c) },
            e => e,
        }
    }
}

impl core::fmt::Display for SdError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            SdError::NoCard => write!(f, "no card in the slot"),
            SdError::Timeout { what, cmd: Some(c) } => {
                write!(f, "timeout waiting for {what} (CMD{c})")
            }
            SdError::Timeout { what, cmd: None } => write!(f, "timeout waiting for {what}"),
            SdError::Controller { cmd, bits } => {
                write!(f, "CMD{cmd}: controller error {bits:#06x} (")?;
                let names = [
                    "command timeout",
                    "command CRC",
                    "command end bit",
                    "command index",
                    "data timeout",
                    "data CRC",
                    "data end bit",
                    "current limit",
                    "auto CMD12",
                    "ADMA",
                ];
                let mut first = true;
                for (i, n) in names.iter().enumerate() {
                    if bits & (1 << i) != 0 {
                        write!(f, "{}{n}", if first { "" } else { ", " })?;
                        first = false;
                    }
                }
                write!(f, ")")
            }
            SdError::CardStatus { cmd, status } => {
                write!(f, "CMD{cmd}: card status {status:#010x}")?;
                if status & (1 << 31) != 0 {
                    write!(f, " (out of range)")?;
                }
                if status & (1 << 30) != 0 {
                    write!(f, " (address error)")?;
                }
                if status & (1 << 22) != 0 {
                    write!(f, " (illegal command)")?;
                }
                Ok(())
            }
            SdError::BadResponse { cmd, value } => {
                write!(f, "CMD{cmd}: unexpected response {value:#010x}")
            }
            SdError::BadCsd { structure } => write!(f, "CSD structure {structure} not supported"),
            SdError::Clock { base, want } => {
                write!(
                    f,
                    "no SD clock divider gives {want} Hz from a {base} Hz base clock"
                )
            }
            SdError::AddressTooLarge { sector } => {
                write!(
                    f,
                    "sector {sector} is beyond a standard-capacity card's byte addresses"
                )
            }
        }
    }
}

/// Counters of the host side.
#[derive(Clone, Copy, Debug, Default)]
pub struct HostStats {
    /// Commands or transfers that failed.
    pub errors: u64,
    /// CMD/DAT line resets.
    pub recoveries: u64,
}

/// The controller and the selected card's addressing.
pub struct Host {
    regs: *const Registers,
    rca: u32,
    high_capacity: bool,
    base_clock_hz: u32,
    clock_hz: u32,
    timeout_ns: u64,
    stats: HostStats,
}

impl Host {
    fn regs(&self) -> &Registers {
        // SAFETY: `Sdhci::new`'s contract: `regs` points at the mapped
        // registers of a controller only this value drives.
        unsafe { &*self.regs }
    }
}

/// Where the controller is, from the device tree.
#[derive(Clone, Copy, Debug)]
pub struct SdhciInfo {
    pub base: u64,
    pub mailbox: Option<MailboxInfo>,
}

impl SdhciInfo {
    /// The available `brcm,bcm2711-emmc2` node (its `reg` translated through
    /// the emmc2bus ranges) and the VideoCore mailbox, if the tree has them.
    pub fn from_tree(tree: &physmap::DeviceTree) -> Option<Self> {
        let dev = tree.find_compatible("brcm,bcm2711-emmc2")?;
        Some(Self {
            base: dev.reg()?.base,
            mailbox: MailboxInfo::from_tree(tree),
        })
    }
}

/// The SD card behind an SDHCI controller.
pub struct Sdhci {
    host: Host,
    card: CardInfo,
    base: u64,
    done: VecDeque<Completion>,
    stats: DevStats,
}

// SAFETY: the value holds only the MMIO base of a controller it alone
// drives; the owner serialises access.
unsafe impl Send for Sdhci {}

impl Sdhci {
    /// Brings up the controller at `info.base` and identifies the card.
    ///
    /// # Safety
    /// `info.base` must be the device tree's EMMC2 window, mapped as device
    /// memory, driven by nobody else; likewise the mailbox, if given.
    pub unsafe fn new(info: &SdhciInfo) -> Result<Self, SdError> {
        let regs = info.base as *const Registers;
        // SAFETY: the caller's contract.
        let r = unsafe { &*regs };
        let caps_mhz = r.caps.read(CAPS::BASE_CLOCK_MHZ);
        let spec = r.version.read(VERSION::SPEC) + 1;
        let firmware = info.mailbox.and_then(|m| {
            // SAFETY: the caller's contract covers the mailbox too.
            match unsafe { mailbox::clock_rate(&m, mailbox::CLOCK_EMMC2) } {
                Ok(hz) if hz > 0 => Some(hz),
                Ok(_) => None,
                Err(e) => {
                    log::warn!(
                        "sdhci: EMMC2 clock from the mailbox: {e}; using the capabilities register"
                    );
                    None
                }
            }
        });
        let base_clock_hz = match firmware {
            Some(hz) => hz,
            None if caps_mhz > 0 => caps_mhz * 1_000_000,
            None => {
                return Err(SdError::Clock {
                    base: 0,
                    want: clock::IDENT_HZ,
                });
            }
        };
        let mut host = Host {
            regs,
            rca: 0,
            high_capacity: false,
            base_clock_hz,
            clock_hz: 0,
            timeout_ns: DATA_TIMEOUT_NS,
            stats: HostStats::default(),
        };
        let card = host.init_card()?;
        log::info!(
            "sdhci at {:#x}: SDHCI {spec}.00, base clock {} MHz ({}), SD clock {} kHz, 4-bit bus, PIO",
            info.base,
            base_clock_hz / 1_000_000,
            if firmware.is_some() {
                "VideoCore mailbox"
            } else {
                "capabilities register"
            },
            host.clock_hz / 1000
        );
        Ok(Self {
            host,
            card,
            base: info.base,
            done: VecDeque::new(),
            stats: DevStats::default(),
        })
    }

    /// Finds and starts the EMMC2 controller the tree names; logs the card.
    pub fn discover(info: &SdhciInfo) -> Option<Self> {
        // SAFETY: the window comes from the device tree's emmc2 node, below
        // 4 GiB and outside RAM (device memory in the kernel's map); the
        // kernel starts one driver for it (this one).
        match unsafe { Self::new(info) } {
            Ok(dev) => {
                let c = dev.card;
                log::info!(
                    "sd card: {} sectors ({} MiB), {}, version {}, RCA {:#06x}, manufacturer {:#04x}, product {:?}",
                    c.sectors,
                    (c.sectors * SECTOR_SIZE as u64) >> 20,
                    if c.high_capacity {
                        "high capacity (block addressing)"
                    } else {
                        "standard capacity (byte addressing)"
                    },
                    if c.v2 { "2.00+" } else { "1.x" },
                    c.rca,
                    c.manufacturer,
                    core::str::from_utf8(&c.product).unwrap_or("?")
                );
                Some(dev)
            }
            Err(e) => {
                log::warn!("sdhci at {:#x}: {e}", info.base);
                None
            }
        }
    }

    /// The card as identified.
    pub fn card(&self) -> CardInfo {
        self.card
    }

    /// MMIO base of the controller.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// Host-side error and recovery counters.
    pub fn host_stats(&self) -> HostStats {
        self.host.stats
    }

    /// Reads from the card without the capacity check: for the self-test
    /// that makes the card refuse an address and checks the driver recovers.
    pub fn read_unchecked(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), SdError> {
        self.host.read_blocks(sector, buf)
    }

    fn transfer(&mut self, req: &Request) -> Result<(), BlockError> {
        let len = req.len;
        let r = match req.op {
            Op::Flush => Ok(()),
            Op::Read => {
                // SAFETY: BlockDevice::submit's contract: `buf` holds `len`
                // writable bytes nobody else touches until the completion
                // is reaped; the transfer happens now, inside that window.
                let buf = unsafe { core::slice::from_raw_parts_mut(req.buf, len) };
                self.host.read_blocks(req.sector, buf)
            }
            Op::Write => {
                // SAFETY: as above; the device only reads a write's buffer.
                let buf = unsafe { core::slice::from_raw_parts(req.buf, len) };
                self.host.write_blocks(req.sector, buf)
            }
        };
        r.map_err(|e| {
            log::warn!(
                "sdhci: {:?} of sectors {}..{} failed: {e}",
                req.op,
                req.sector,
                req.sector + req.sectors()
            );
            BlockError::Io {
                sector: req.sector,
                status: e.code(),
            }
        })
    }
}

impl BlockDevice for Sdhci {
    fn sector_count(&self) -> u64 {
        self.card.sectors
    }

    fn queue_depth(&self) -> usize {
        QUEUE_DEPTH
    }

    fn in_flight(&self) -> usize {
        self.done.len()
    }

    // SAFETY (contract): BlockDevice::submit's; the transfer runs inside the
    // window the caller guarantees.
    unsafe fn submit(&mut self, req: Request) -> Result<(), BlockError> {
        check_request(&req, self.card.sectors)?;
        if self.done.len() >= QUEUE_DEPTH {
            return Err(BlockError::QueueFull);
        }
        let result = self.transfer(&req);
        match req.op {
            Op::Read => {
                self.stats.read_requests += 1;
                if result.is_ok() {
                    self.stats.sectors_read += req.sectors();
                }
            }
            Op::Write => {
                self.stats.write_requests += 1;
                if result.is_ok() {
                    self.stats.sectors_written += req.sectors();
                }
            }
            Op::Flush => self.stats.flushes += 1,
        }
        self.done.push_back(Completion {
            tag: req.tag,
            result,
        });
        Ok(())
    }

    fn poll(&mut self) -> Option<Completion> {
        self.done.pop_front()
    }

    fn stats(&self) -> DevStats {
        self.stats
    }
}
