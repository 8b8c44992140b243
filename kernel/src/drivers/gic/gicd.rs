//! GICv2 distributor (GICD): which interrupts are enabled, their priority
//! and the cores they go to. One per system.
//!
//! Registers and fields follow the GICv2 architecture specification (Arm IHI
//! 0048B, section 4.3). Interrupts 0..32 are banked per core (SGIs and
//! PPIs, such as the timer's); 32 and above are shared (SPIs) and are
//! routed with ITARGETSR.

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};
use tock_registers::{register_bitfields, register_structs};

use crate::drivers::mmio::Mmio;

register_bitfields! {u32,
    /// Distributor Control Register.
    CTLR [
        /// Forward group 1 interrupts to the CPU interfaces.
        EnableGrp1 OFFSET(1) NUMBITS(1) [],
        /// Forward group 0 interrupts to the CPU interfaces.
        EnableGrp0 OFFSET(0) NUMBITS(1) []
    ],

    /// Interrupt Controller Type Register.
    TYPER [
        /// Cores with a CPU interface, minus one.
        CPUNumber OFFSET(5) NUMBITS(3) [],
        /// Interrupt lines implemented: 32 * (ITLinesNumber + 1).
        ITLinesNumber OFFSET(0) NUMBITS(5) []
    ]
}

register_bitfields! {u32,
    /// Software Generated Interrupt Register.
    SGIR [
        /// Which cores receive it: the target list, all but this core, or
        /// this core only.
        TargetListFilter OFFSET(24) NUMBITS(2) [
            TargetList = 0,
            AllButSelf = 1,
            SelfOnly = 2
        ],
        /// One bit per CPU interface (used with `TargetList`).
        CPUTargetList OFFSET(16) NUMBITS(8) [],
        /// The SGI's INTID, 0 to 15.
        SGIINTID OFFSET(0) NUMBITS(4) []
    ]
}

register_bitfields! {u8,
    /// Interrupt Processor Targets Register: one byte per interrupt, one bit
    /// per core that receives it.
    ITARGETSR [
        Core0 OFFSET(0) NUMBITS(1) []
    ]
}

register_structs! {
    pub Registers {
        (0x000 => ctlr: ReadWrite<u32, CTLR::Register>),
        (0x004 => typer: ReadOnly<u32, TYPER::Register>),
        (0x008 => _reserved0),
        (0x100 => isenabler: [ReadWrite<u32>; 32]),
        (0x180 => icenabler: [ReadWrite<u32>; 32]),
        (0x200 => _reserved1),
        (0x280 => icpendr: [ReadWrite<u32>; 32]),
        (0x300 => _reserved2),
        (0x400 => ipriorityr: [ReadWrite<u8>; 1024]),
        (0x800 => itargetsr: [ReadWrite<u8, ITARGETSR::Register>; 1024]),
        (0xc00 => _reserved3),
        (0xf00 => sgir: WriteOnly<u32, SGIR::Register>),
        (0xf04 => @END),
    }
}

/// Interrupts per set-enable, clear-enable and clear-pending register (one
/// bit each).
const INTIDS_PER_REG: u32 = 32;

/// The first shared peripheral interrupt: below it, interrupts are banked
/// per core and their target bits are read-only.
const FIRST_SPI: u32 = 32;

/// The register and the bit of `intid` in a one-bit-per-interrupt array.
fn reg_and_bit(intid: u32) -> (usize, u32) {
    (
        (intid / INTIDS_PER_REG) as usize,
        1 << (intid % INTIDS_PER_REG),
    )
}

/// The distributor.
pub struct GicDistributor {
    regs: Mmio<Registers>,
}

impl GicDistributor {
    /// # Safety
    /// `base` must be the GICv2 distributor the device tree reports, mapped
    /// as device memory for the kernel's life.
    pub unsafe fn new(base: usize) -> Self {
        Self {
            // SAFETY: forwarded contract.
            regs: unsafe { Mmio::new(base) },
        }
    }

    /// Interrupt lines the distributor implements.
    pub fn lines(&self) -> u32 {
        INTIDS_PER_REG * (self.regs.typer.read(TYPER::ITLinesNumber) + 1)
    }

    /// Disables and clears every interrupt, then forwards both groups (the
    /// boot code left each interrupt in the group the firmware chose).
    pub fn init(&self) {
        let r = &self.regs;
        r.ctlr.set(0);
        for i in 0..(self.lines() / INTIDS_PER_REG) as usize {
            r.icenabler[i].set(u32::MAX);
            r.icpendr[i].set(u32::MAX);
        }
        r.ctlr.write(CTLR::EnableGrp0::SET + CTLR::EnableGrp1::SET);
    }

    /// Enables `intid` (below [`lines`](Self::lines)) at `priority` (lower
    /// is more urgent), routed to core 0.
    pub fn enable(&self, intid: u32, priority: u8) {
        let r = &self.regs;
        r.ipriorityr[intid as usize].set(priority);
        if intid >= FIRST_SPI {
            r.itargetsr[intid as usize].write(ITARGETSR::Core0::SET);
        }
        let (reg, bit) = reg_and_bit(intid);
        r.isenabler[reg].set(bit);
    }

    /// Sends SGI `intid` (0..16) to the CPU interfaces in `targets` (one bit
    /// each, as [`this_core_target`](Self::this_core_target) reports them).
    pub fn send_sgi(&self, intid: u32, targets: u8) {
        // The SGI's write must follow every store the receiver will read.
        aarch64_cpu::asm::barrier::dsb(aarch64_cpu::asm::barrier::ISHST);
        self.regs.sgir.write(
            SGIR::TargetListFilter::TargetList
                + SGIR::CPUTargetList.val(targets as u32)
                + SGIR::SGIINTID.val(intid & 0xf),
        );
    }

    /// The calling core's bit among the CPU interfaces: the banked target
    /// byte of an SGI reads as the core's own interface (GICv2, 4.3.12).
    pub fn this_core_target(&self) -> u8 {
        self.regs.itargetsr[0].get()
    }

    /// Disables `intid` (below [`lines`](Self::lines)).
    pub fn disable(&self, intid: u32) {
        let (reg, bit) = reg_and_bit(intid);
        self.regs.icenabler[reg].set(bit);
    }
}
