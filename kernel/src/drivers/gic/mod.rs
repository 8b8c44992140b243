//! Arm GICv2 interrupt controller (QEMU virt with gic-version=2, the
//! Raspberry Pi 4's GIC-400): the distributor ([`gicd`]) and this core's CPU
//! interface ([`gicc`]).
//!
//! Enable an interrupt with a priority, route it to core 0, acknowledge and
//! end it, and send software-generated interrupts (SGIs) to other cores. The boot code left
//! interrupts in the group the firmware (or QEMU's direct kernel boot, which
//! makes them non-secure group 1) chose; both groups are enabled here.
//!
//! Rules: core 0 owns the distributor's shared state (init, SPIs). Task
//! context only enables and disables interrupts (distributor registers);
//! the IRQ handler acknowledges and ends them (CPU interface registers) and
//! disables unexpected ones. A secondary core (arch::smp) touches only what
//! the GIC banks per core: its CPU interface ([`Gic::init_this_core`],
//! acknowledge, end) and the enable and priority of its own SGIs and PPIs
//! (INTID below 32). Any core may send an SGI (one write of GICD_SGIR). Every access is a single volatile load or store of its
//! own register, so none corrupts another's state.

pub mod gicc;
pub mod gicd;

pub use gicc::Acknowledged;
use gicc::GicCpuInterface;
use gicd::GicDistributor;

/// A GICv2.
pub struct Gic {
    gicd: GicDistributor,
    gicc: GicCpuInterface,
    lines: u32,
}

// SAFETY: see the rules above: task and IRQ context touch disjoint
// registers, each access a single volatile load or store; other cores touch
// only the registers the GIC banks per core.
unsafe impl Sync for Gic {}

impl Gic {
    /// # Safety
    /// `dist` and `cpu` must be the GICv2 distributor and CPU interface the
    /// device tree reports, mapped as device memory for the kernel's life.
    pub unsafe fn new(dist: usize, cpu: usize) -> Self {
        // SAFETY: forwarded contract.
        let (gicd, gicc) = unsafe { (GicDistributor::new(dist), GicCpuInterface::new(cpu)) };
        let lines = gicd.lines();
        Self { gicd, gicc, lines }
    }

    /// Number of interrupt lines the distributor implements.
    pub fn lines(&self) -> u32 {
        self.lines
    }

    /// Disables every interrupt, clears pending state and enables the
    /// distributor and this core's interface (every priority let through).
    pub fn init(&self) {
        self.gicd.init();
        self.gicc.init();
    }

    /// Enables this core's CPU interface only (every priority let
    /// through): what a secondary core does, the distributor being core 0's.
    pub fn init_this_core(&self) {
        self.gicc.init();
    }

    /// Enables `intid` at `priority` (lower is more urgent), routed to core
    /// 0; an ID beyond the lines implemented is ignored.
    pub fn enable(&self, intid: u32, priority: u8) {
        if intid < self.lines {
            self.gicd.enable(intid, priority);
        }
    }

    /// Disables `intid`; an ID beyond the lines implemented is ignored.
    pub fn disable(&self, intid: u32) {
        if intid < self.lines {
            self.gicd.disable(intid);
        }
    }

    /// Sends SGI `intid` (0..16) to the cores whose CPU interface bits are
    /// in `targets`.
    pub fn send_sgi(&self, intid: u32, targets: u8) {
        self.gicd.send_sgi(intid, targets);
    }

    /// The calling core's CPU interface bit (for [`send_sgi`](Self::send_sgi)).
    pub fn this_core_target(&self) -> u8 {
        self.gicd.this_core_target()
    }

    /// Acknowledges the most urgent pending interrupt, if any.
    pub fn acknowledge(&self) -> Option<Acknowledged> {
        self.gicc.acknowledge()
    }

    /// Ends an acknowledged interrupt.
    pub fn end(&self, irq: Acknowledged) {
        self.gicc.end(irq);
    }
}
