//! GICv2 CPU interface (GICC): the core's view of the distributor, where it
//! acknowledges and ends interrupts. One per core, banked at one address.
//!
//! Registers and fields follow the GICv2 architecture specification (Arm IHI
//! 0048B, section 4.4).

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};
use tock_registers::{LocalRegisterCopy, register_bitfields, register_structs};

use crate::drivers::mmio::Mmio;

register_bitfields! {u32,
    /// CPU Interface Control Register (secure view; the non-secure view has
    /// its group 1 enable in bit 0, so setting both covers either).
    CTLR [
        /// Signal group 1 interrupts to the core.
        EnableGrp1 OFFSET(1) NUMBITS(1) [],
        /// Signal group 0 interrupts to the core.
        EnableGrp0 OFFSET(0) NUMBITS(1) []
    ],

    /// Interrupt Priority Mask Register: only interrupts more urgent (lower)
    /// than `Priority` are signalled.
    PMR [
        Priority OFFSET(0) NUMBITS(8) []
    ],

    /// Binary Point Register: how the priority splits into group priority
    /// (which preempts) and subpriority.
    BPR [
        BinaryPoint OFFSET(0) NUMBITS(3) []
    ],

    /// Interrupt Acknowledge Register.
    IAR [
        /// For SGIs, the core that sent it.
        CPUID OFFSET(10) NUMBITS(3) [],
        InterruptID OFFSET(0) NUMBITS(10) []
    ],

    /// End of Interrupt Register: written with the value IAR gave.
    EOIR [
        CPUID OFFSET(10) NUMBITS(3) [],
        EOIINTID OFFSET(0) NUMBITS(10) []
    ]
}

register_structs! {
    pub Registers {
        (0x000 => ctlr: ReadWrite<u32, CTLR::Register>),
        (0x004 => pmr: ReadWrite<u32, PMR::Register>),
        (0x008 => bpr: ReadWrite<u32, BPR::Register>),
        (0x00c => iar: ReadOnly<u32, IAR::Register>),
        (0x010 => eoir: WriteOnly<u32, EOIR::Register>),
        (0x014 => @END),
    }
}

/// Interrupt IDs from this one up are special: 1020..1023 are reserved or
/// mean "nothing pending" (1023, spurious).
const FIRST_SPECIAL_INTID: u32 = 1020;

/// The least urgent priority: a mask of it lets every priority through.
const PRIORITY_LOWEST: u32 = 0xff;

/// An interrupt acknowledged at the CPU interface, to be ended with
/// [`GicCpuInterface::end`].
#[must_use = "an acknowledged interrupt must be ended"]
pub struct Acknowledged(LocalRegisterCopy<u32, IAR::Register>);

impl Acknowledged {
    /// Its interrupt ID.
    pub fn intid(&self) -> u32 {
        self.0.read(IAR::InterruptID)
    }
}

/// This core's CPU interface.
pub struct GicCpuInterface {
    regs: Mmio<Registers>,
}

impl GicCpuInterface {
    /// # Safety
    /// `base` must be the GICv2 CPU interface the device tree reports,
    /// mapped as device memory for the kernel's life.
    pub unsafe fn new(base: usize) -> Self {
        Self {
            // SAFETY: forwarded contract.
            regs: unsafe { Mmio::new(base) },
        }
    }

    /// Lets every priority through, every priority level preempt, and
    /// signals both groups to the core.
    pub fn init(&self) {
        let r = &self.regs;
        r.pmr.write(PMR::Priority.val(PRIORITY_LOWEST));
        r.bpr.write(BPR::BinaryPoint.val(0));
        r.ctlr.write(CTLR::EnableGrp0::SET + CTLR::EnableGrp1::SET);
    }

    /// Acknowledges the most urgent pending interrupt; `None` if nothing is
    /// pending (a special ID).
    pub fn acknowledge(&self) -> Option<Acknowledged> {
        let iar = LocalRegisterCopy::new(self.regs.iar.get());
        (iar.read(IAR::InterruptID) < FIRST_SPECIAL_INTID).then_some(Acknowledged(iar))
    }

    /// Ends the interrupt `irq`: the distributor may signal it again.
    pub fn end(&self, irq: Acknowledged) {
        self.regs.eoir.set(irq.0.get());
    }
}
