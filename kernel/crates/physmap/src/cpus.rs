//! The cores the device tree lists under `/cpus`, and how to start each.
//!
//! Rules (Linux: arch/arm64/kernel/smp.c `of_parse_and_init_cpus`,
//! cpu_ops.c, smp_spin_table.c; Documentation/devicetree/bindings/cpu/
//! idle-states and arm/cpus.yaml):
//! - A core is a child of `/cpus` whose `device_type` is `"cpu"`; other
//!   children (`cpu-map`, `l2-cache`) are not cores.
//! - Its `reg` is its MPIDR affinity (Aff0..Aff2, and Aff3 in the upper
//!   cell when `/cpus` has `#address-cells = <2>`), read with `/cpus`'s
//!   `#address-cells` (1 or 2; default 2 like any node) and no size cells.
//!   A `reg` that cannot be read leaves [`Cpu::mpidr`] `None`: such a core
//!   cannot be matched to a running one and is never started.
//! - Its `enable-method` is read from the core's own node only (as arm64
//!   Linux does; the Raspberry Pi's `/cpus` says `brcm,bcm2836-smp`, which
//!   is for 32-bit kernels). `"psci"` is [`EnableMethod::Psci`];
//!   `"spin-table"` needs a 64-bit `cpu-release-addr` (two cells), or it is
//!   [`EnableMethod::SpinTableNoReleaseAddr`].
//! - `status` is kept in [`Cpu::available`]; the kernel skips a core that
//!   is not available, with a line.
//! - At most [`MAX_CPUS`] cores are listed (a GICv2 serves 8 CPU
//!   interfaces); [`Cpus::dropped`] counts the ones beyond, never silently.
//!   Two cores with the same MPIDR are both kept; [`Cpus::duplicate`]
//!   names the first such MPIDR, and the kernel starts neither.
//!
//! Nothing here panics on any input: a malformed property becomes one of
//! the values above.

use crate::arrayvec::ArrayVec;
use crate::tree::{DeviceTree, Node, read_cells};

/// Most cores listed (the CPU interfaces of a GICv2).
pub const MAX_CPUS: usize = 8;

/// How a core is brought up, from its `enable-method`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EnableMethod<'a> {
    /// PSCI CPU_ON through the conduit `/psci/method` names.
    Psci,
    /// Write the entry point to `release_addr` (physical) and send an event.
    SpinTable { release_addr: u64 },
    /// `spin-table` without a readable 64-bit `cpu-release-addr`.
    SpinTableNoReleaseAddr,
    /// A method this kernel does not know (the text, if it reads).
    Unknown(&'a str),
    /// No `enable-method` (normal for the boot core on some trees).
    #[default]
    Missing,
}

/// One core of `/cpus`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cpu<'a> {
    /// Node name, e.g. "cpu@1".
    pub name: &'a str,
    /// MPIDR affinity from `reg` (None when `reg` cannot be read).
    pub mpidr: Option<u64>,
    pub enable: EnableMethod<'a>,
    /// `status` is absent, "okay" or "ok".
    pub available: bool,
}

/// Every core of `/cpus`, in tree order.
#[derive(Clone, Copy, Default)]
pub struct Cpus<'a> {
    pub list: ArrayVec<Cpu<'a>, MAX_CPUS>,
    /// Cores beyond [`MAX_CPUS`], not listed.
    pub dropped: usize,
    /// The first MPIDR that two listed cores share, if any.
    pub duplicate: Option<u64>,
}

impl<'a> Cpus<'a> {
    /// The listed core whose MPIDR affinity is `mpidr` (the first, if two).
    pub fn by_mpidr(&self, mpidr: u64) -> Option<&Cpu<'a>> {
        self.list.iter().find(|c| c.mpidr == Some(mpidr))
    }
}

fn cpu_of<'a>(node: &Node<'a, '_>) -> Option<Cpu<'a>> {
    let parent = node.parent()?;
    let is_cpu = node.depth == 2
        && node.ancestors.len() == 2
        && parent.name == "cpus"
        && node.props.get("device_type").and_then(|p| p.as_str()) == Some("cpu");
    if !is_cpu {
        return None;
    }
    let cells = parent.address_cells;
    let mpidr = node.props.get("reg").and_then(|reg| {
        let whole = (1..=2).contains(&cells) && reg.value.len() == cells as usize * 4;
        whole.then(|| read_cells(reg.value, cells)).flatten()
    });
    let enable = match node.props.get("enable-method") {
        None => EnableMethod::Missing,
        Some(p) => match p.as_str() {
            Some("psci") => EnableMethod::Psci,
            Some("spin-table") => match node.props.get("cpu-release-addr") {
                Some(a) if a.value.len() == 8 => match read_cells(a.value, 2) {
                    Some(release_addr) => EnableMethod::SpinTable { release_addr },
                    None => EnableMethod::SpinTableNoReleaseAddr,
                },
                _ => EnableMethod::SpinTableNoReleaseAddr,
            },
            Some(other) => EnableMethod::Unknown(other),
            None => EnableMethod::Unknown(""),
        },
    };
    Some(Cpu {
        name: node.name,
        mpidr,
        enable,
        available: node.props.is_available(),
    })
}

impl<'a> DeviceTree<'a> {
    /// The cores `/cpus` lists (see the module rules).
    pub fn cpus(&self) -> Cpus<'a> {
        let mut out = Cpus::default();
        // The structure was checked by `new`: a walk cannot fail.
        let _ = self.walk(|node| {
            if let Some(cpu) = cpu_of(node) {
                if let Some(m) = cpu.mpidr
                    && out.duplicate.is_none()
                    && out.by_mpidr(m).is_some()
                {
                    out.duplicate = Some(m);
                }
                if out.list.try_push(cpu).is_err() {
                    out.dropped += 1;
                }
            }
            true
        });
        out
    }
}
