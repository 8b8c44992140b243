//! What the map lists besides RAM and usable ranges: reserved regions and
//! their [`RegionKind`] (GCMA, CMA, carveout), excluded ranges and their
//! [`ExcludedKind`], and what `/chosen` says.

use core::fmt;

use crate::tree::Device;
use crate::{PhysRange, Problem};

/// How a reserved region is used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RegionKind {
    /// `reusable` + `guarantee`: lent to cleancache, taken back at once.
    Gcma,
    /// `reusable` only: lent to movable pages, migrated out on allocation.
    Cma,
    /// Neither: reserved and idle.
    #[default]
    Carveout,
}

impl RegionKind {
    /// Lower-case name used in tables and machine lines.
    pub fn as_str(&self) -> &'static str {
        match self {
            RegionKind::Gcma => "gcma",
            RegionKind::Cma => "cma",
            RegionKind::Carveout => "carveout",
        }
    }

    /// GCMA and CMA lend their memory to other users while idle.
    pub fn is_lent(&self) -> bool {
        matches!(self, RegionKind::Gcma | RegionKind::Cma)
    }
}

impl fmt::Display for RegionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reserved region from `/reserved-memory`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReservedRegion<'a> {
    /// Node name with unit address, e.g. "gcma@50000000".
    pub name: &'a str,
    pub kind: RegionKind,
    pub range: PhysRange,
    pub no_map: bool,
    pub reusable: bool,
    pub guarantee: bool,
    /// Placed by this crate from `size` (not a static `reg`).
    pub dynamic: bool,
    /// `compatible` lists "shared-dma-pool".
    pub shared_dma_pool: bool,
}

/// What an excluded range holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExcludedKind {
    #[default]
    KernelImage,
    Dtb,
    MemReserve,
    /// A `/reserved-memory` node with `no-map` and without
    /// `compatible = "shared-dma-pool"`: memory that firmware or another
    /// processor owns.
    Firmware,
    /// A `/reserved-memory` range refused as an area (the reason is kept).
    Refused,
}

impl ExcludedKind {
    /// Lower-case name used in tables and messages.
    pub fn as_str(&self) -> &'static str {
        match self {
            ExcludedKind::KernelImage => "kernel image",
            ExcludedKind::Dtb => "dtb",
            ExcludedKind::MemReserve => "memreserve",
            ExcludedKind::Firmware => "firmware",
            ExcludedKind::Refused => "refused",
        }
    }
}

/// A range never handed out and not a reserved region.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExcludedRange<'a> {
    pub kind: ExcludedKind,
    pub range: PhysRange,
    /// The `/reserved-memory` node ("" for the kernel, DTB, memreserve).
    pub name: &'a str,
    /// The node has `no-map`: the range must stay out of the MMU's map.
    pub no_map: bool,
    /// Why a [`ExcludedKind::Refused`] range is not an area.
    pub reason: Option<Problem<'a>>,
}

/// What `/chosen` says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Chosen<'a> {
    pub bootargs: Option<&'a str>,
    /// `stdout-path` as written (alias or path, with any ":options").
    pub stdout_path: Option<&'a str>,
    /// The node `stdout-path` names, if it resolves.
    pub stdout: Option<Device<'a>>,
}

impl<'a> Chosen<'a> {
    /// The ":options" part of `stdout-path` (e.g. "115200n8").
    pub fn stdout_options(&self) -> Option<&'a str> {
        self.stdout_path?.split_once(':').map(|(_, o)| o)
    }
}
