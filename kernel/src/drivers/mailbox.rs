//! The VideoCore mailbox (`brcm,bcm2835-mbox`), property channel 8: the
//! firmware interface the Raspberry Pi uses for clocks.
//!
//! A property call writes a message buffer's bus address (low 4 bits: the
//! channel) to mailbox 1's write register and waits for the same word in
//! mailbox 0's read register; the firmware has then filled the buffer in
//! place. The buffer is 16-byte aligned in RAM below the limit of the
//! soc bus's `dma-ranges` (the VideoCore sees ARM RAM at the bus address the
//! tree gives, 0xC000_0000 on the BCM2711), and is cleaned from and
//! invalidated in the data cache around the call, since the VideoCore does
//! not snoop the ARM caches.
//!
//! Rules: one call at a time (the caller owns the value); a call that gets
//! no answer within [`TIMEOUT_NS`] or an answer without the response bit is
//! an error, and the value asked for is then not used.

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_bitfields;
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, WriteOnly};

use crate::arch::timer;
use crate::mm;

register_bitfields! {u32,
    STATUS [
        EMPTY OFFSET(30) NUMBITS(1) [],
        FULL OFFSET(31) NUMBITS(1) []
    ]
}

register_structs! {
    Registers {
        (0x00 => read: ReadOnly<u32>),
        (0x04 => _reserved0),
        (0x18 => status0: ReadOnly<u32, STATUS::Register>),
        (0x1c => _reserved1),
        (0x20 => write: WriteOnly<u32>),
        (0x24 => _reserved2),
        (0x38 => status1: ReadOnly<u32, STATUS::Register>),
        (0x3c => @END),
    }
}

/// Property channel (ARM to VideoCore).
const CHANNEL_PROPERTY: u32 = 8;
/// Tag GET_CLOCK_RATE.
const TAG_GET_CLOCK_RATE: u32 = 0x0003_0002;
/// Clock id of EMMC2 (firmware's RPI_FIRMWARE_EMMC2_CLK_ID).
pub const CLOCK_EMMC2: u32 = 12;
/// Longest wait for the firmware's answer.
pub const TIMEOUT_NS: u64 = 100_000_000;

/// Where the mailbox is and how the VideoCore addresses RAM.
#[derive(Clone, Copy, Debug)]
pub struct MailboxInfo {
    pub base: u64,
    /// Bus address of CPU address 0 (soc `dma-ranges`).
    pub dma_bus: u64,
    /// RAM below this CPU address is visible to the VideoCore.
    pub dma_limit: u64,
}

impl MailboxInfo {
    /// The mailbox and the soc bus's `dma-ranges` (`<bus cpu-hi cpu-lo
    /// size>`, the BCM2711's shape); None if either is missing or of another
    /// shape.
    pub fn from_tree(tree: &physmap::DeviceTree) -> Option<Self> {
        let mbox = tree.find_compatible("brcm,bcm2835-mbox")?;
        let base = mbox.reg()?.base;
        let ranges = tree.property_at("/soc", "dma-ranges")?;
        let v = ranges.value;
        if v.len() != 16 {
            return None;
        }
        let cell = |i: usize| {
            u32::from_be_bytes([v[4 * i], v[4 * i + 1], v[4 * i + 2], v[4 * i + 3]]) as u64
        };
        let (bus, cpu, size) = (cell(0), cell(1) << 32 | cell(2), cell(3));
        if cpu != 0 {
            return None;
        }
        Some(Self {
            base,
            dma_bus: bus,
            dma_limit: size,
        })
    }
}

#[repr(C, align(64))]
struct Message([u32; 8]);

fn clean_invalidate(addr: usize, len: usize) {
    for line in (addr & !63..addr + len).step_by(64) {
        // SAFETY: cache maintenance by virtual address of memory this module
        // owns (the message buffer); it changes no data.
        unsafe { core::arch::asm!("dc civac, {}", in(reg) line) };
    }
    // SAFETY: a barrier; no memory is accessed.
    unsafe { core::arch::asm!("dsb sy") };
}

/// Asks the firmware for the rate of clock `id` in Hz.
///
/// # Safety
/// `info.base` must be the device tree's mailbox, mapped as device memory,
/// and no other code may use the mailbox during the call.
pub unsafe fn clock_rate(info: &MailboxInfo, id: u32) -> Result<u32, &'static str> {
    let page = mm::alloc_dma_zeroed(4096).ok_or("no memory for the message")?;
    if page as u64 + 64 > info.dma_limit {
        return Err("message buffer outside the VideoCore's DMA window");
    }
    let msg = page as *mut Message;
    // SAFETY: a fresh, zeroed, page-aligned allocation that this function
    // owns and the firmware only touches during the call below.
    unsafe {
        (*msg).0 = [32, 0, TAG_GET_CLOCK_RATE, 8, 0, id, 0, 0];
    }
    clean_invalidate(page as usize, 64);
    // SAFETY: the caller's contract: a mapped, unshared mailbox.
    let regs = unsafe { &*(info.base as *const Registers) };
    let word = (info.dma_bus + page as u64) as u32 | CHANNEL_PROPERTY;
    let start = timer::now_ns();
    while regs.status1.is_set(STATUS::FULL) {
        if timer::now_ns() - start > TIMEOUT_NS {
            return Err("mailbox stays full");
        }
    }
    regs.write.set(word);
    loop {
        if timer::now_ns() - start > TIMEOUT_NS {
            return Err("no answer from the firmware");
        }
        if regs.status0.is_set(STATUS::EMPTY) {
            continue;
        }
        if regs.read.get() == word {
            break;
        }
    }
    clean_invalidate(page as usize, 64);
    // SAFETY: the firmware has answered; it no longer writes the buffer.
    let m = unsafe { core::ptr::read_volatile(msg) };
    // The page stays allocated (64 bytes of a page, once per boot).
    if m.0[1] != 0x8000_0000 || m.0[4] & 0x8000_0000 == 0 || m.0[5] != id {
        return Err("the firmware did not answer GET_CLOCK_RATE");
    }
    Ok(m.0[6])
}
