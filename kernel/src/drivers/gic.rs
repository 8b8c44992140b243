//! Arm GICv2 interrupt controller (QEMU virt with gic-version=2, the
//! Raspberry Pi 4's GIC-400): distributor and CPU interface.
//!
//! Only what a single-core kernel needs: enable an interrupt with a
//! priority, route it to core 0, acknowledge and end it. The boot code left
//! interrupts in the group the firmware (or QEMU's direct kernel boot, which
//! makes them non-secure group 1) chose; both groups are enabled here.

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

register_structs! {
    Distributor {
        (0x000 => ctlr: ReadWrite<u32>),
        (0x004 => typer: ReadOnly<u32>),
        (0x008 => _r0),
        (0x100 => isenabler: [ReadWrite<u32>; 32]),
        (0x180 => icenabler: [ReadWrite<u32>; 32]),
        (0x200 => _r1),
        (0x280 => icpendr: [ReadWrite<u32>; 32]),
        (0x300 => _r2),
        (0x400 => ipriorityr: [ReadWrite<u8>; 1024]),
        (0x800 => itargetsr: [ReadWrite<u8>; 1024]),
        (0xc00 => icfgr: [ReadWrite<u32>; 64]),
        (0xd00 => @END),
    }
}

register_structs! {
    CpuInterface {
        (0x000 => ctlr: ReadWrite<u32>),
        (0x004 => pmr: ReadWrite<u32>),
        (0x008 => bpr: ReadWrite<u32>),
        (0x00c => iar: ReadOnly<u32>),
        (0x010 => eoir: WriteOnly<u32>),
        (0x014 => @END),
    }
}

/// Interrupt IDs at or above this are special (1023: spurious).
pub const SPECIAL_INTID: u32 = 1020;

/// A GICv2.
pub struct Gic {
    dist: *const Distributor,
    cpu: *const CpuInterface,
    lines: u32,
}

// SAFETY: only MMIO bases; the kernel uses the GIC from one core, and every
// register access is a single volatile load or store.
unsafe impl Send for Gic {}
// SAFETY: as above; concurrent use from IRQ and task context touches
// disjoint registers (IAR/EOIR vs. enable/priority) or is masked.
unsafe impl Sync for Gic {}

impl Gic {
    /// # Safety
    /// `dist` and `cpu` must be the GICv2 distributor and CPU interface the
    /// device tree reports, mapped as device memory for the kernel's life.
    pub unsafe fn new(dist: usize, cpu: usize) -> Self {
        let mut gic = Self {
            dist: dist as *const _,
            cpu: cpu as *const _,
            lines: 0,
        };
        gic.lines = 32 * ((gic.d().typer.get() & 0x1f) + 1);
        gic
    }

    fn d(&self) -> &Distributor {
        // SAFETY: `new`'s contract.
        unsafe { &*self.dist }
    }

    fn c(&self) -> &CpuInterface {
        // SAFETY: `new`'s contract.
        unsafe { &*self.cpu }
    }

    /// Number of interrupt lines the distributor implements.
    pub fn lines(&self) -> u32 {
        self.lines
    }

    /// Disables every interrupt, clears pending state and enables the
    /// distributor and this core's interface (priority mask: all).
    pub fn init(&self) {
        let d = self.d();
        d.ctlr.set(0);
        for i in 0..(self.lines / 32) as usize {
            d.icenabler[i].set(u32::MAX);
            d.icpendr[i].set(u32::MAX);
        }
        d.ctlr.set(0b11);
        let c = self.c();
        c.pmr.set(0xff);
        c.bpr.set(0);
        c.ctlr.set(0b11);
    }

    /// Enables `intid` at `priority` (lower is more urgent), routed to core 0.
    pub fn enable(&self, intid: u32, priority: u8) {
        if intid >= self.lines {
            return;
        }
        let d = self.d();
        d.ipriorityr[intid as usize].set(priority);
        if intid >= 32 {
            d.itargetsr[intid as usize].set(1);
        }
        d.isenabler[(intid / 32) as usize].set(1 << (intid % 32));
    }

    /// Disables `intid`.
    pub fn disable(&self, intid: u32) {
        if intid < self.lines {
            self.d().icenabler[(intid / 32) as usize].set(1 << (intid % 32));
        }
    }

    /// Acknowledges the highest-priority pending interrupt: its IAR value
    /// (the interrupt ID is the low 10 bits).
    pub fn ack(&self) -> u32 {
        self.c().iar.get()
    }

    /// Ends the interrupt acknowledged as `iar`.
    pub fn eoi(&self, iar: u32) {
        self.c().eoir.set(iar);
    }
}
