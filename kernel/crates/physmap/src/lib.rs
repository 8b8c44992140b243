//! physmap: the physical memory map from a flattened device tree.
//!
//! The kernel calls [`MemoryMap::parse`] once, before any heap exists; every
//! list here is a fixed-capacity array ([`ArrayVec`]) whose capacity is a
//! named constant. The rules follow Linux (drivers/of/fdt.c,
//! drivers/of/of_reserved_mem.c, kernel/dma/contiguous.c):
//!
//! RAM
//!   Every root child with `device_type = "memory"` and an available
//!   `status` contributes each `(address, size)` pair of its `reg`, read
//!   with the root's `#address-cells` / `#size-cells` (default 2 and 1).
//!   Ranges are sorted and overlapping or touching ones merged. No RAM at
//!   all is fatal.
//!
//! The one rule: no byte that a node claims is ever handed out. Every
//! `reg` entry of every available `/reserved-memory` child and every
//! `/memreserve/` entry leaves usable RAM (each page it touches), whatever
//! else is wrong with it and whatever list is full; only its *typing*
//! (GCMA, CMA, carveout) can be refused. Usable RAM is computed by taking
//! claims out of RAM as they are read, so no capacity limits it.
//!
//! Excluded ranges (never handed out, listed in `excluded`)
//!   The kernel image and the DTB itself (both given by the caller), every
//!   `/memreserve/` entry (the first [`MAX_MEMRESERVE`] listed), every
//!   firmware-owned region (`no-map` without `compatible =
//!   "shared-dma-pool"`: TrustZone, modem, DSP memory; no warning, it is
//!   normal), and every `/reserved-memory` range refused as an area, with
//!   its reason. `no-map` ranges, regions or excluded, are what
//!   [`MemoryMap::no_map_ranges`] returns for the MMU to leave unmapped.
//!
//! Reserved regions (`/reserved-memory` children with an available status)
//!   Static regions (`reg`, one region per entry) are taken first, in tree
//!   order; dynamic ones (`size`, optional `alignment`, optional
//!   `alloc-ranges`) are placed afterwards, in tree order, like
//!   early_init_dt_alloc_reserved_memory_arch: top-down (highest address
//!   first) inside each `alloc-ranges` entry in turn, or else inside RAM,
//!   aligned to max(`alignment`, 4 KiB), in memory no claim and no earlier
//!   region holds. A region is typed by its flags: `reusable` +
//!   `guarantee` is GCMA, `reusable` alone is CMA, neither is a static
//!   carveout. `guarantee` without `reusable` is kept as a static carveout
//!   with a diagnostic. `no-map`, `compatible = "shared-dma-pool"` and the
//!   unit name are recorded. A static region's `alignment` is ignored, as
//!   Linux's __reserved_mem_reserve_reg does.
//!
//! A static range is refused as an area (excluded and listed with its
//! reason, one diagnostic line) when: base + size wraps (excluded to the
//! end of the address space), `no-map` is set with `reusable`, its base or
//! end is not on a 4 KiB page (every page it touches is excluded), it is
//! partly outside RAM, it overlaps the kernel image, the DTB or a
//! memreserve entry, it overlaps any other node's static range (earlier or
//! later in tree order: overlapping static regions are all excluded; GCMA
//! and CMA would lend the other node's bytes, and the kernel hands a
//! carveout to its demo, so no area may share a byte with another claim;
//! firmware regions may overlap one another), or [`MAX_RESERVED_REGIONS`]
//! regions already exist. A static range wholly outside RAM is ignored
//! (one line). More than [`MAX_RESERVED_NODES`] children: the later ones'
//! `reg` entries are still excluded and listed, never areas, and the line
//! says so. A list that is full never frees memory: a diagnostic says
//! what was not listed.
//!
//! Usable RAM
//!   RAM, each range shrunk inward to 4 KiB pages, minus every claim and
//!   every placed region rounded outward to pages (all kinds, `no-map`
//!   included: lending GCMA/CMA memory is the allocators' job, not the
//!   boot allocator's); sorted and non-overlapping. Should the usable list
//!   ever fill, a piece of usable RAM is dropped, never a claim.
//!
//! Bad input
//!   A blob that does not parse (bad magic, truncated, inconsistent
//!   structure block) or that has no RAM is a [`FatalError`]. Anything else
//!   wrong is a [`Diagnostic`] (node name + [`Problem`] + [`Outcome`],
//!   printed as one line) and parsing goes on. A dynamic region is skipped
//!   (nothing placed) for size zero, a malformed `size` / `alignment` /
//!   `alloc-ranges`, an alignment that is not a power of two, `no-map`
//!   with `reusable`, no room to place it, or a full list. A static node
//!   with an unreadable `reg` (unsupported cells) claims nothing it can be
//!   held to; a `reg` with a trailing partial entry still excludes its
//!   whole entries. Nothing in this crate panics
//!   on any input: the structure block is read by a bounds-checked walker
//!   ([`DeviceTree`]), not by `fdt`'s iterators, which unwrap on malformed
//!   data; `fdt` checks the header.
//!
//! Devices
//!   [`DeviceTree::find_compatible`] / [`DeviceTree::for_each_compatible`]
//!   return available nodes with their `reg` entries translated to CPU
//!   addresses through every parent bus's `ranges` (empty `ranges` is the
//!   identity; a bus without `ranges` leaves the address untranslatable,
//!   as in Linux) and their raw `interrupts` cells.
//!   [`DeviceTree::console_pl011`] is the PL011 named by `stdout-path`, or
//!   else the first available PL011; [`DeviceTree::gicv2`] the GICv2 and
//!   the EL1 physical timer's interrupt, or why not ([`NoGic`]);
//!   [`DeviceTree::cpus`] lists the cores of `/cpus` with their MPIDR and
//!   enable method (rules in `cpus`).
//!
//! Files, one concept each: `tree` (the bounds-checked device-tree walker
//! and device queries), `gic` (the interrupt controller and timer query),
//! `cpus` (the cores), `memmap` ([`MemoryMap`] and the order it is built
//! in), `usable` (RAM, claims, usable ranges), `reserved` (static
//! `/reserved-memory` regions), `dynamic` (placing dynamic regions),
//! `region` (what the map lists), `diagnostics` ([`Diagnostic`] and its
//! parts), `report` (tables and machine lines), `arrayvec`.
//!
//! Use from the kernel (the DTB address arrives in x0; memory is
//! identity-mapped or the MMU is off):
//!
//! ```no_run
//! use core::fmt::Write;
//! use physmap::{FatalError, MemoryMap, PhysRange, Table, FDT_HEADER_SIZE};
//!
//! fn boot_map(
//!     dtb_address: usize,
//!     kernel_image: PhysRange,
//!     console: &mut impl Write,
//! ) -> Result<MemoryMap<'static>, FatalError> {
//!     // SAFETY: the boot loader put a device tree at `dtb_address`; its
//!     // header is FDT_HEADER_SIZE readable bytes, and nothing writes there.
//!     let header =
//!         unsafe { core::slice::from_raw_parts(dtb_address as *const u8, FDT_HEADER_SIZE) };
//!     let size = physmap::dtb_total_size(header)?;
//!     // SAFETY: as above, for the `totalsize` bytes the header announces;
//!     // the map keeps the DTB range excluded so it is never overwritten.
//!     let dtb = unsafe { core::slice::from_raw_parts(dtb_address as *const u8, size) };
//!     let dtb_range = PhysRange::new(dtb_address as u64, size as u64);
//!     let map = MemoryMap::parse(dtb, kernel_image, dtb_range)?;
//!     let _ = write!(console, "{}", Table(&map));
//!     Ok(map)
//! }
//! ```

#![no_std]
#![forbid(unsafe_code)]

mod arrayvec;
mod boot_devices;
mod cpus;
mod diagnostics;
mod dynamic;
mod gic;
mod memmap;
mod region;
mod report;
mod reserved;
mod tree;
mod usable;

#[cfg(test)]
mod cpus_tests;
#[cfg(test)]
mod tests;

pub use arrayvec::ArrayVec;
pub use boot_devices::{BOOT_DEVICES, DEVICE_LIMIT, HighDevice, first_above_limit};
pub use cpus::{Cpu, Cpus, EnableMethod, MAX_CPUS};
pub use diagnostics::{Area, Diagnostic, Outcome, Problem};
pub use gic::{Gicv2, NoGic};
pub use memmap::{
    MAX_DIAGNOSTICS, MAX_EXCLUDED, MAX_MEMRESERVE, MAX_NO_MAP_RANGES, MAX_RAM_RANGES,
    MAX_RESERVED_NODES, MAX_RESERVED_REGIONS, MAX_USABLE_RANGES, MemoryMap,
};
pub use region::{Chosen, ExcludedKind, ExcludedRange, RegionKind, ReservedRegion};
pub use report::{HumanSize, MachineLines, Table};
pub use tree::{
    Cells, Device, DeviceTree, FDT_HEADER_SIZE, MAX_DEPTH, MAX_DEVICE_REGS, Property,
    dtb_total_size,
};

use core::fmt;

/// Page size used for alignment checks and for trimming usable ranges
/// (the frame size, defined in `frames`).
pub use frames::PAGE_SIZE;

/// A physical address range `[base, base + size)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct PhysRange {
    pub base: u64,
    pub size: u64,
}

impl PhysRange {
    /// The range `[base, base + size)`.
    pub const fn new(base: u64, size: u64) -> Self {
        Self { base, size }
    }

    /// The range `[start, end)` (empty if `end <= start`).
    pub const fn from_bounds(start: u64, end: u64) -> Self {
        Self {
            base: start,
            size: end.saturating_sub(start),
        }
    }

    /// One past the last byte (saturating at `u64::MAX`).
    pub const fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }

    /// True when the ranges share at least one byte.
    pub const fn overlaps(&self, other: &PhysRange) -> bool {
        self.size != 0 && other.size != 0 && self.base < other.end() && other.base < self.end()
    }

    /// True when `other` lies entirely inside `self`.
    pub const fn contains(&self, other: &PhysRange) -> bool {
        other.base >= self.base && other.end() <= self.end()
    }

    /// The range shrunk inward to whole pages (possibly empty).
    pub const fn page_inner(&self) -> PhysRange {
        let start = match self.base.checked_add(PAGE_SIZE - 1) {
            Some(v) => v & !(PAGE_SIZE - 1),
            None => !(PAGE_SIZE - 1),
        };
        let end = self.end() & !(PAGE_SIZE - 1);
        PhysRange::from_bounds(start, end)
    }
}

impl fmt::Display for PhysRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}..{:#x}", self.base, self.end())
    }
}

/// Why no memory map could be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FatalError {
    /// The buffer is shorter than the header or than `totalsize`.
    Truncated { needed: usize, available: usize },
    /// The first word is not 0xd00dfeed.
    BadMagic,
    /// Header version older than 17.
    UnsupportedVersion(u32),
    /// The header or structure block is inconsistent (offset into the
    /// structure block where it was noticed).
    Structure { offset: usize, what: &'static str },
    /// No available `device_type = "memory"` node with a usable range.
    NoMemory,
}

impl fmt::Display for FatalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FatalError::Truncated { needed, available } => write!(
                f,
                "device tree truncated: needs {needed} bytes, {available} available"
            ),
            FatalError::BadMagic => write!(f, "not a device tree: bad magic (expected 0xd00dfeed)"),
            FatalError::UnsupportedVersion(v) => {
                write!(f, "device tree version {v} unsupported (need 17)")
            }
            FatalError::Structure { offset, what } => {
                write!(
                    f,
                    "device tree does not parse: {what} (structure offset {offset:#x})"
                )
            }
            FatalError::NoMemory => write!(
                f,
                "device tree has no usable memory node (device_type = \"memory\" with a valid reg)"
            ),
        }
    }
}
