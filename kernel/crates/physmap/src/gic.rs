//! The interrupt controller and the timer the kernel drives:
//! [`DeviceTree::gicv2`] finds a GICv2 (`arm,cortex-a15-gic` on QEMU virt,
//! `arm,gic-400` on the Raspberry Pi 4) with its distributor and CPU
//! interface windows, and the interrupt of the EL1 physical (non-secure)
//! timer from `arm,armv8-timer`. A tree without them, or with something
//! this kernel cannot drive, gives a [`NoGic`] that says which.

use core::fmt;

use crate::tree::DeviceTree;

/// A GICv2 and the EL1 physical timer's interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gicv2 {
    /// Distributor window (first `reg` entry), a CPU address.
    pub dist: u64,
    /// CPU interface window (second `reg` entry).
    pub cpu: u64,
    /// Interrupt ID of the EL1 physical (non-secure) timer: a PPI.
    pub timer_intid: u32,
}

/// Why [`DeviceTree::gicv2`] found no usable GICv2 and timer interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoGic<'a> {
    /// Neither a GICv2 nor a GICv3 node.
    Absent,
    /// A GICv3 (`arm,gic-v3`), which this kernel does not drive.
    V3,
    /// The GICv2 node (named) lacks its distributor and CPU interface.
    Regs(&'a str),
    /// No `arm,armv8-timer` node with a physical timer interrupt.
    NoTimer,
    /// The physical timer interrupt is not a PPI (its type cell).
    TimerNotPpi(u32),
}

impl NoGic<'_> {
    /// A tree that lists something wrong, as opposed to one without an
    /// interrupt controller or timer: worth an error line of its own.
    pub fn is_problem(&self) -> bool {
        matches!(self, NoGic::V3 | NoGic::Regs(_) | NoGic::TimerNotPpi(_))
    }
}

impl fmt::Display for NoGic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoGic::Absent => f.write_str("gic: no GICv2 node"),
            NoGic::V3 => f.write_str(
                "gic: GICv3 found; this kernel drives GICv2 (QEMU: -machine virt,gic-version=2)",
            ),
            NoGic::Regs(name) => write!(
                f,
                "gic: node '{name}' lacks distributor and CPU interface regs"
            ),
            NoGic::NoTimer => f.write_str("timer: no physical timer interrupt"),
            NoGic::TimerNotPpi(kind) => write!(
                f,
                "timer: physical timer interrupt is not a PPI (type {kind})"
            ),
        }
    }
}

impl<'a> DeviceTree<'a> {
    /// The available GICv2 and the EL1 physical timer's interrupt: the
    /// timer's second `<type num flags>` triple, type 1 (PPI), is INTID
    /// 16 + num.
    pub fn gicv2(&self) -> Result<Gicv2, NoGic<'a>> {
        let gic = self
            .find_compatible("arm,cortex-a15-gic")
            .or_else(|| self.find_compatible("arm,gic-400"));
        let Some(gic) = gic else {
            return Err(match self.find_compatible("arm,gic-v3") {
                Some(_) => NoGic::V3,
                None => NoGic::Absent,
            });
        };
        let (Some(dist), Some(cpu)) = (gic.regs.first(), gic.regs.get(1)) else {
            return Err(NoGic::Regs(gic.name));
        };
        let timer = self
            .find_compatible("arm,armv8-timer")
            .ok_or(NoGic::NoTimer)?;
        let (Some(kind), Some(num)) = (timer.interrupts.get(3), timer.interrupts.get(4)) else {
            return Err(NoGic::NoTimer);
        };
        if kind != 1 {
            return Err(NoGic::TimerNotPpi(kind));
        }
        Ok(Gicv2 {
            dist: dist.base,
            cpu: cpu.base,
            timer_intid: 16 + num,
        })
    }
}
