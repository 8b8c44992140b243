//! Building the memory map: RAM, excluded ranges, reserved regions, usable
//! ranges and diagnostics. The rules are in the crate documentation.

use core::fmt;

use crate::arrayvec::ArrayVec;
use crate::tree::{Device, DeviceTree, Properties, RegError, RegIter};
use crate::{FatalError, PAGE_SIZE, PhysRange};

/// Most RAM ranges kept (after merging).
pub const MAX_RAM_RANGES: usize = 16;
/// Most `/memreserve/` entries listed (every entry is excluded).
pub const MAX_MEMRESERVE: usize = 16;
/// Most `/reserved-memory` children examined one by one; the `reg` of
/// every later child is still excluded.
pub const MAX_RESERVED_NODES: usize = 128;
/// Most reserved regions kept (a static node yields one per `reg` entry).
pub const MAX_RESERVED_REGIONS: usize = 128;
/// Kernel image, DTB, memreserve entries, and as many `/reserved-memory`
/// ranges not used as areas (firmware-owned or refused) as there are
/// regions.
pub const MAX_EXCLUDED: usize = 2 + MAX_MEMRESERVE + MAX_RESERVED_REGIONS;
/// Each excluded range or region splits at most one usable range in two.
pub const MAX_USABLE_RANGES: usize = MAX_RAM_RANGES + MAX_EXCLUDED + MAX_RESERVED_REGIONS;
/// Most ranges [`MemoryMap::no_map_ranges`] yields: every region and every
/// excluded range.
pub const MAX_NO_MAP_RANGES: usize = MAX_RESERVED_REGIONS + MAX_EXCLUDED;
/// Most diagnostics kept; later ones are only counted.
pub const MAX_DIAGNOSTICS: usize = 64;
/// Most static `reg` entries compared with one another for overlaps; in a
/// tree with more, no static region is used as an area.
const MAX_CLAIMS: usize = 2 * MAX_RESERVED_REGIONS;

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

/// Where in the tree a diagnostic comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Area {
    Memory,
    #[default]
    ReservedMemory,
    MemReserve,
}

impl Area {
    fn as_str(&self) -> &'static str {
        match self {
            Area::Memory => "memory",
            Area::ReservedMemory => "reserved-memory",
            Area::MemReserve => "memreserve",
        }
    }
}

/// What is wrong with a node or range. [`Diagnostic::outcome`] says what
/// became of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Problem<'a> {
    /// Neither `reg` nor `size`.
    #[default]
    MissingRegAndSize,
    /// The property's length is wrong (`expected` bytes, or a multiple of
    /// it when `multiple`).
    MalformedProperty {
        property: &'static str,
        len: usize,
        expected: usize,
        multiple: bool,
    },
    /// `#address-cells` / `#size-cells` outside 1..=2 / 0..=2.
    UnsupportedCells {
        address_cells: u32,
        size_cells: u32,
    },
    ZeroSize,
    /// base + size does not fit 64 bits.
    Wraps {
        base: u64,
        size: u64,
    },
    AlignmentNotPowerOfTwo {
        alignment: u64,
    },
    /// A static base not aligned to 4 KiB.
    Misaligned {
        base: u64,
        alignment: u64,
    },
    /// A static region whose end is not aligned to 4 KiB.
    PartialPage {
        end: u64,
    },
    NoMapWithReusable,
    /// A static region outside RAM, wholly or `partly`.
    OutsideRam {
        region: PhysRange,
        partly: bool,
    },
    /// Overlaps another `/reserved-memory` range (`other` names its node).
    Overlaps {
        region: PhysRange,
        other: &'a str,
    },
    /// Overlaps the kernel image, the DTB or a memreserve entry.
    OverlapsExcluded {
        region: PhysRange,
        what: ExcludedKind,
        excluded: PhysRange,
    },
    /// No free aligned range of this size in RAM / `alloc-ranges`.
    CannotPlace {
        size: u64,
        alignment: u64,
    },
    /// A fixed capacity is full.
    TooMany {
        what: &'static str,
        capacity: usize,
    },
    /// `guarantee` without `reusable`: kept as a static carveout.
    GuaranteeWithoutReusable,
}

impl fmt::Display for Problem<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Problem::MissingRegAndSize => write!(f, "neither 'reg' nor 'size'"),
            Problem::MalformedProperty {
                property,
                len,
                expected,
                multiple,
            } => {
                let how = if multiple {
                    "a non-zero multiple of "
                } else {
                    ""
                };
                write!(
                    f,
                    "property '{property}' is {len} bytes, expected {how}{expected}"
                )
            }
            Problem::UnsupportedCells {
                address_cells,
                size_cells,
            } => write!(
                f,
                "unsupported #address-cells={address_cells} #size-cells={size_cells}"
            ),
            Problem::ZeroSize => write!(f, "size is zero"),
            Problem::Wraps { base, size } => {
                write!(f, "base {base:#x} + size {size:#x} wraps past 2^64")
            }
            Problem::AlignmentNotPowerOfTwo { alignment } => {
                write!(f, "alignment {alignment:#x} is not a power of two")
            }
            Problem::Misaligned { base, alignment } => {
                write!(f, "base {base:#x} is not aligned to {alignment:#x}")
            }
            Problem::PartialPage { end } => {
                write!(f, "end {end:#x} is not aligned to {PAGE_SIZE:#x}")
            }
            Problem::NoMapWithReusable => write!(f, "'no-map' and 'reusable' both set"),
            Problem::OutsideRam { region, partly } => {
                let how = if partly { "partly outside" } else { "outside" };
                write!(f, "region {region} is {how} RAM")
            }
            Problem::Overlaps { region, other } => {
                write!(f, "region {region} overlaps '{other}'")
            }
            Problem::OverlapsExcluded {
                region,
                what,
                excluded,
            } => write!(
                f,
                "region {region} overlaps the {} at {excluded}",
                what.as_str()
            ),
            Problem::CannotPlace { size, alignment } => write!(
                f,
                "cannot place {size:#x} bytes aligned to {alignment:#x}: no free range"
            ),
            Problem::TooMany { what, capacity } => write!(f, "more than {capacity} {what}"),
            Problem::GuaranteeWithoutReusable => write!(f, "'guarantee' without 'reusable'"),
        }
    }
}

/// What became of the node or range a [`Diagnostic`] is about.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing of it is used or excluded (it claims no memory in RAM).
    #[default]
    Skipped,
    /// Its memory is excluded from usable RAM and listed as excluded; it is
    /// not an area.
    Excluded,
    /// Its memory is excluded from usable RAM but not listed (a list is
    /// full); it is not an area.
    ExcludedUnlisted,
    /// Usable memory given up because the usable list is full.
    Dropped,
    /// Kept as a static carveout.
    KeptAsCarveout,
}

impl Outcome {
    fn as_str(&self) -> &'static str {
        match self {
            Outcome::Skipped => "skipped",
            Outcome::Excluded => "excluded from usable RAM, not used as an area",
            Outcome::ExcludedUnlisted => "still excluded from usable RAM, not listed",
            Outcome::Dropped => "the smaller piece is left out of usable RAM",
            Outcome::KeptAsCarveout => "kept as a static carveout",
        }
    }
}

/// One problem found while building the map.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Diagnostic<'a> {
    pub area: Area,
    /// Node name ("/memreserve/" for header entries).
    pub node: &'a str,
    pub problem: Problem<'a>,
    pub outcome: Outcome,
}

impl fmt::Display for Diagnostic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: node '{}': {}: {}",
            self.area.as_str(),
            self.node,
            self.problem,
            self.outcome.as_str()
        )
    }
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

/// A `/reserved-memory` child waiting to be processed.
#[derive(Clone, Copy, Default)]
struct PendingNode<'a> {
    name: &'a str,
    props: Properties<'a>,
    address_cells: u32,
    size_cells: u32,
}

/// One static `reg` entry, for the overlap checks.
#[derive(Clone, Copy, Default)]
struct Claim<'a> {
    range: PhysRange,
    /// Index of the node in the pending list, and of the entry in its `reg`.
    node: usize,
    entry: usize,
    name: &'a str,
}

/// Every static `reg` entry of the examined nodes (`complete` false when
/// some did not fit).
struct Claims<'a> {
    list: ArrayVec<Claim<'a>, MAX_CLAIMS>,
    complete: bool,
}

/// The flags of a `/reserved-memory` node.
#[derive(Clone, Copy)]
struct Flags {
    no_map: bool,
    reusable: bool,
    guarantee: bool,
    shared_dma_pool: bool,
}

impl Flags {
    fn of(props: &Properties<'_>) -> Self {
        Flags {
            no_map: props.has("no-map"),
            reusable: props.has("reusable"),
            guarantee: props.has("guarantee"),
            shared_dma_pool: props.is_compatible("shared-dma-pool"),
        }
    }

    /// `no-map` without `shared-dma-pool`: firmware's memory, never an area.
    fn firmware(&self) -> bool {
        self.no_map && !self.shared_dma_pool
    }

    fn kind(&self) -> RegionKind {
        match (self.reusable, self.guarantee) {
            (true, true) => RegionKind::Gcma,
            (true, false) => RegionKind::Cma,
            (false, _) => RegionKind::Carveout,
        }
    }

    fn region<'a>(&self, name: &'a str, range: PhysRange, dynamic: bool) -> ReservedRegion<'a> {
        ReservedRegion {
            name,
            kind: self.kind(),
            range,
            no_map: self.no_map,
            reusable: self.reusable,
            guarantee: self.guarantee,
            dynamic,
            shared_dma_pool: self.shared_dma_pool,
        }
    }
}

/// The physical memory map.
#[derive(Clone, Copy, Debug)]
pub struct MemoryMap<'a> {
    /// RAM, sorted and merged.
    pub ram: ArrayVec<PhysRange, MAX_RAM_RANGES>,
    /// Kernel image, DTB, memreserve entries, then `/reserved-memory`
    /// ranges that are not areas (firmware-owned or refused), in tree order.
    pub excluded: ArrayVec<ExcludedRange<'a>, MAX_EXCLUDED>,
    /// Reserved regions: static ones in tree order, then dynamic ones.
    pub reserved: ArrayVec<ReservedRegion<'a>, MAX_RESERVED_REGIONS>,
    /// RAM left for the kernel's own allocators, page-aligned and sorted.
    pub usable: ArrayVec<PhysRange, MAX_USABLE_RANGES>,
    pub chosen: Chosen<'a>,
    pub diagnostics: ArrayVec<Diagnostic<'a>, MAX_DIAGNOSTICS>,
    /// Diagnostics beyond [`MAX_DIAGNOSTICS`] (counted, not kept).
    pub diagnostics_dropped: usize,
}

impl<'a> MemoryMap<'a> {
    /// Builds the map from `dtb` (the whole blob: see
    /// [`crate::dtb_total_size`]). `kernel_image` and `dtb_range` are the
    /// physical ranges of the running image and of the blob; either may be
    /// empty (size 0) when not applicable.
    pub fn parse(
        dtb: &'a [u8],
        kernel_image: PhysRange,
        dtb_range: PhysRange,
    ) -> Result<Self, FatalError> {
        let tree = DeviceTree::new(dtb)?;
        Self::from_tree(&tree, kernel_image, dtb_range)
    }

    /// As [`MemoryMap::parse`], for an already checked tree.
    pub fn from_tree(
        tree: &DeviceTree<'a>,
        kernel_image: PhysRange,
        dtb_range: PhysRange,
    ) -> Result<Self, FatalError> {
        let mut map = MemoryMap {
            ram: ArrayVec::new(),
            excluded: ArrayVec::new(),
            reserved: ArrayVec::new(),
            usable: ArrayVec::new(),
            chosen: Chosen::default(),
            diagnostics: ArrayVec::new(),
            diagnostics_dropped: 0,
        };
        let mut pending: ArrayVec<PendingNode<'a>, MAX_RESERVED_NODES> = ArrayVec::new();
        let mut unexamined = 0usize;

        // One walk: RAM now, reserved-memory children for later, /chosen.
        let _ = tree.walk(|node| {
            match node.depth {
                1 => {
                    let is_memory =
                        node.props.get("device_type").and_then(|p| p.as_str()) == Some("memory");
                    if is_memory && node.props.is_available() {
                        let root = node.parent().copied().unwrap_or_default();
                        map.add_memory_node(
                            node.name,
                            node.props,
                            root.address_cells,
                            root.size_cells,
                        );
                    } else if node.name == "chosen" {
                        map.chosen.bootargs = node.props.get("bootargs").and_then(|p| p.as_str());
                        map.chosen.stdout_path =
                            node.props.get("stdout-path").and_then(|p| p.as_str());
                    }
                }
                2 => {
                    if let Some(entry) = reserved_child(node)
                        && pending.try_push(entry).is_err()
                    {
                        unexamined += 1;
                    }
                }
                _ => {}
            }
            true
        });

        if map.ram.is_empty() {
            return Err(FatalError::NoMemory);
        }
        map.ram.as_mut_slice().sort_unstable();
        map.merge_ram();
        map.usable = ArrayVec::new();
        for ram in map.ram.iter() {
            let inner = ram.page_inner();
            if inner.size != 0 {
                // Cannot fail: MAX_USABLE_RANGES > MAX_RAM_RANGES.
                let _ = map.usable.try_push(inner);
            }
        }

        map.add_excluded(ExcludedKind::KernelImage, kernel_image);
        map.add_excluded(ExcludedKind::Dtb, dtb_range);
        for (index, entry) in tree.memreserve().enumerate() {
            let range = match entry.base.checked_add(entry.size) {
                Some(_) => entry,
                None => {
                    map.diagnose(
                        Area::MemReserve,
                        "/memreserve/",
                        Problem::Wraps {
                            base: entry.base,
                            size: entry.size,
                        },
                        Outcome::Excluded,
                    );
                    PhysRange::from_bounds(entry.base, u64::MAX)
                }
            };
            if index < MAX_MEMRESERVE {
                map.add_excluded(ExcludedKind::MemReserve, range);
            } else {
                map.claim(range);
                if index == MAX_MEMRESERVE {
                    map.diagnose(
                        Area::MemReserve,
                        "/memreserve/",
                        Problem::TooMany {
                            what: "memreserve entries",
                            capacity: MAX_MEMRESERVE,
                        },
                        Outcome::ExcludedUnlisted,
                    );
                }
            }
        }

        // Static regions: every entry is excluded from usable RAM first,
        // then typed if nothing is wrong with it.
        let claims = map.static_claims(&pending);
        for (index, node) in pending.iter().enumerate() {
            if node.props.has("reg") {
                map.add_static(tree, node, index, &claims);
            }
        }
        if unexamined != 0 {
            map.exclude_unexamined(tree);
        }
        // Dynamic regions, placed in what is left.
        for node in pending.iter().filter(|n| !n.props.has("reg")) {
            map.add_dynamic(node);
        }

        map.chosen.stdout = map.chosen.stdout_path.and_then(|p| tree.resolve_path(p));
        Ok(map)
    }

    fn diagnose(&mut self, area: Area, node: &'a str, problem: Problem<'a>, outcome: Outcome) {
        let diagnostic = Diagnostic {
            area,
            node,
            problem,
            outcome,
        };
        if self.diagnostics.try_push(diagnostic).is_err() {
            self.diagnostics_dropped = self.diagnostics_dropped.saturating_add(1);
        }
    }

    fn add_memory_node(
        &mut self,
        name: &'a str,
        props: Properties<'a>,
        address_cells: u32,
        size_cells: u32,
    ) {
        let skip = Outcome::Skipped;
        let Some(reg) = props.get("reg") else {
            self.diagnose(Area::Memory, name, Problem::MissingRegAndSize, skip);
            return;
        };
        let entries = match RegIter::new(reg.value, address_cells, size_cells) {
            Ok(entries) => entries,
            Err(error) => {
                let len = reg.value.len();
                let problem = reg_problem(error, "reg", len, address_cells, size_cells);
                self.diagnose(Area::Memory, name, problem, skip);
                return;
            }
        };
        for (base, size) in entries {
            if size == 0 {
                self.diagnose(Area::Memory, name, Problem::ZeroSize, skip);
            } else if base.checked_add(size).is_none() {
                self.diagnose(Area::Memory, name, Problem::Wraps { base, size }, skip);
            } else if self.ram.try_push(PhysRange { base, size }).is_err() {
                let problem = Problem::TooMany {
                    what: "RAM ranges",
                    capacity: MAX_RAM_RANGES,
                };
                self.diagnose(Area::Memory, name, problem, skip);
                return;
            }
        }
    }

    /// Merges overlapping or touching ranges of the sorted RAM list.
    fn merge_ram(&mut self) {
        let mut merged: ArrayVec<PhysRange, MAX_RAM_RANGES> = ArrayVec::new();
        for range in self.ram.iter() {
            if let Some(last) = merged.as_mut_slice().last_mut()
                && range.base <= last.end()
            {
                *last = PhysRange::from_bounds(last.base, last.end().max(range.end()));
                continue;
            }
            // Cannot fail: `merged` holds no more than `ram`.
            let _ = merged.try_push(*range);
        }
        self.ram = merged;
    }

    /// Removes every page `range` touches from the usable list. Callers
    /// claim before anything is placed, so nothing claimed is ever usable,
    /// whatever the lists can hold.
    fn claim(&mut self, range: PhysRange) {
        if range.size == 0 {
            return;
        }
        let start = range.base & !(PAGE_SIZE - 1);
        let end = match range.end().checked_add(PAGE_SIZE - 1) {
            Some(end) => end & !(PAGE_SIZE - 1),
            None => u64::MAX,
        };
        let mut out: ArrayVec<PhysRange, MAX_USABLE_RANGES> = ArrayVec::new();
        let mut dropped = false;
        for free in self.usable.iter() {
            if free.end() <= start || free.base >= end {
                dropped |= out.try_push(*free).is_err();
                continue;
            }
            let left = PhysRange::from_bounds(free.base, start);
            let right = PhysRange::from_bounds(end, free.end());
            for piece in [left, right] {
                if piece.size != 0 {
                    dropped |= out.try_push(piece).is_err();
                }
            }
        }
        self.usable = out;
        if dropped {
            let problem = Problem::TooMany {
                what: "usable ranges",
                capacity: MAX_USABLE_RANGES,
            };
            self.diagnose(Area::ReservedMemory, "", problem, Outcome::Dropped);
        }
    }

    /// Excludes `range` and lists it (kernel image, DTB, memreserve).
    fn add_excluded(&mut self, kind: ExcludedKind, range: PhysRange) {
        if range.size != 0 {
            self.claim(range);
            // Capacity is sized for 2 + MAX_MEMRESERVE, checked by the caller.
            let _ = self.excluded.try_push(ExcludedRange {
                kind,
                range,
                ..ExcludedRange::default()
            });
        }
    }

    /// Lists a `/reserved-memory` range that is not an area (already
    /// claimed by the caller).
    fn list_excluded(&mut self, excluded: ExcludedRange<'a>) {
        if self.excluded.try_push(excluded).is_err() {
            let problem = Problem::TooMany {
                what: "excluded ranges",
                capacity: MAX_EXCLUDED,
            };
            let outcome = Outcome::ExcludedUnlisted;
            self.diagnose(Area::ReservedMemory, excluded.name, problem, outcome);
        }
    }

    /// Every entry of every examined static node, for the overlap checks.
    fn static_claims(&self, pending: &[PendingNode<'a>]) -> Claims<'a> {
        let mut claims = Claims {
            list: ArrayVec::new(),
            complete: true,
        };
        for (node_index, node) in pending.iter().enumerate() {
            let Some(reg) = node.props.get("reg") else {
                continue;
            };
            for (entry, (base, size)) in static_entries(reg.value, node).enumerate() {
                let claim = Claim {
                    range: claimed(base, size),
                    node: node_index,
                    entry,
                    name: node.name,
                };
                if claims.list.try_push(claim).is_err() {
                    claims.complete = false;
                }
            }
        }
        claims
    }

    fn add_static(
        &mut self,
        tree: &DeviceTree<'a>,
        node: &PendingNode<'a>,
        index: usize,
        claims: &Claims<'a>,
    ) {
        let Some(reg) = node.props.get("reg") else {
            return;
        };
        if let Err(error) = RegIter::new(reg.value, node.address_cells, node.size_cells) {
            let len = reg.value.len();
            let problem = reg_problem(error, "reg", len, node.address_cells, node.size_cells);
            // The whole entries that can be read are still excluded below.
            let outcome = match error {
                RegError::BadLength { .. } if static_entries(reg.value, node).next().is_some() => {
                    Outcome::Excluded
                }
                _ => Outcome::Skipped,
            };
            self.diagnose(Area::ReservedMemory, node.name, problem, outcome);
        }
        let flags = Flags::of(&node.props);
        for (entry, (base, size)) in static_entries(reg.value, node).enumerate() {
            let range = claimed(base, size);
            self.claim(range);
            if size == 0 {
                let outcome = Outcome::Skipped;
                self.diagnose(Area::ReservedMemory, node.name, Problem::ZeroSize, outcome);
                continue;
            }
            let me = (index, entry);
            let problem = match self.check_static(tree, (base, size), flags, me, claims) {
                Ok(()) => {
                    let region = flags.region(node.name, range, false);
                    if self.reserved.try_push(region).is_ok() {
                        if flags.guarantee && !flags.reusable {
                            let problem = Problem::GuaranteeWithoutReusable;
                            let outcome = Outcome::KeptAsCarveout;
                            self.diagnose(Area::ReservedMemory, node.name, problem, outcome);
                        }
                        continue;
                    }
                    Some(Problem::TooMany {
                        what: "reserved regions",
                        capacity: MAX_RESERVED_REGIONS,
                    })
                }
                Err(problem) => problem,
            };
            let kind = match problem {
                None => ExcludedKind::Firmware,
                Some(Problem::OutsideRam { partly: false, .. }) => {
                    // Nothing of it is RAM: nothing to exclude or list.
                    let problem = problem.unwrap_or_default();
                    let outcome = Outcome::Skipped;
                    self.diagnose(Area::ReservedMemory, node.name, problem, outcome);
                    continue;
                }
                Some(problem) => {
                    let outcome = Outcome::Excluded;
                    self.diagnose(Area::ReservedMemory, node.name, problem, outcome);
                    ExcludedKind::Refused
                }
            };
            self.list_excluded(ExcludedRange {
                kind,
                range,
                name: node.name,
                no_map: flags.no_map,
                reason: problem,
            });
        }
    }

    /// Whether a static range can be an area: `Ok` if so, `Err(None)` when
    /// it is firmware's, `Err(Some(problem))` when it is refused. The
    /// node's `alignment` is ignored, as Linux does for static regions.
    fn check_static(
        &self,
        tree: &DeviceTree<'a>,
        (base, size): (u64, u64),
        flags: Flags,
        me: (usize, usize),
        claims: &Claims<'a>,
    ) -> Result<(), Option<Problem<'a>>> {
        if base.checked_add(size).is_none() {
            return Err(Some(Problem::Wraps { base, size }));
        }
        let region = PhysRange { base, size };
        if flags.no_map && flags.reusable {
            return Err(Some(Problem::NoMapWithReusable));
        }
        if flags.firmware() {
            return Err(None);
        }
        if !base.is_multiple_of(PAGE_SIZE) {
            return Err(Some(Problem::Misaligned {
                base,
                alignment: PAGE_SIZE,
            }));
        }
        if !region.end().is_multiple_of(PAGE_SIZE) {
            return Err(Some(Problem::PartialPage { end: region.end() }));
        }
        if !self.ram.iter().any(|ram| ram.contains(&region)) {
            let partly = self.ram.iter().any(|ram| ram.overlaps(&region));
            return Err(Some(Problem::OutsideRam { region, partly }));
        }
        let ours = self
            .excluded
            .iter()
            .filter(|e| matches!(e.kind, ExcludedKind::KernelImage | ExcludedKind::Dtb))
            .map(|e| (e.kind, e.range));
        let memreserve = tree.memreserve().map(|r| (ExcludedKind::MemReserve, r));
        if let Some((what, excluded)) = ours.chain(memreserve).find(|(_, r)| r.overlaps(&region)) {
            return Err(Some(Problem::OverlapsExcluded {
                region,
                what,
                excluded,
            }));
        }
        // An area never shares a byte with another node's claim: GCMA and
        // CMA would lend it, a carveout would hand it to its user.
        if let Some(other) = claims
            .list
            .iter()
            .find(|c| (c.node, c.entry) != me && c.range.overlaps(&region))
        {
            return Err(Some(Problem::Overlaps {
                region,
                other: other.name,
            }));
        }
        if !claims.complete {
            return Err(Some(Problem::TooMany {
                what: "static ranges to compare",
                capacity: MAX_CLAIMS,
            }));
        }
        Ok(())
    }

    /// The `reg` of every available `/reserved-memory` child beyond
    /// [`MAX_RESERVED_NODES`]: excluded and listed, never an area.
    fn exclude_unexamined(&mut self, tree: &DeviceTree<'a>) {
        let mut seen = 0usize;
        let _ = tree.walk(|node| {
            if node.depth != 2 {
                return true;
            }
            let Some(entry) = reserved_child(node) else {
                return true;
            };
            seen += 1;
            if seen <= MAX_RESERVED_NODES {
                return true;
            }
            self.exclude_late(&entry);
            true
        });
    }

    fn exclude_late(&mut self, node: &PendingNode<'a>) {
        let problem = Problem::TooMany {
            what: "reserved-memory nodes",
            capacity: MAX_RESERVED_NODES,
        };
        let Some(reg) = node.props.get("reg") else {
            self.diagnose(Area::ReservedMemory, node.name, problem, Outcome::Skipped);
            return;
        };
        let mut any = false;
        for (base, size) in static_entries(reg.value, node) {
            let range = claimed(base, size);
            if size == 0 {
                continue;
            }
            self.claim(range);
            if !any {
                self.diagnose(Area::ReservedMemory, node.name, problem, Outcome::Excluded);
                any = true;
            }
            self.list_excluded(ExcludedRange {
                kind: ExcludedKind::Refused,
                range,
                name: node.name,
                no_map: node.props.has("no-map"),
                reason: Some(problem),
            });
        }
        if !any {
            self.diagnose(Area::ReservedMemory, node.name, problem, Outcome::Skipped);
        }
    }

    /// The `alignment` property: `Some(None)` when absent, `None` when bad.
    fn node_alignment(&mut self, node: &PendingNode<'a>) -> Option<Option<u64>> {
        let Some(prop) = node.props.get("alignment") else {
            return Some(None);
        };
        let skip = Outcome::Skipped;
        let Some(alignment) = read_sized(prop.value, node.size_cells) else {
            let problem = sized_problem("alignment", prop.value.len(), node.size_cells);
            self.diagnose(Area::ReservedMemory, node.name, problem, skip);
            return None;
        };
        if !alignment.is_power_of_two() {
            let problem = Problem::AlignmentNotPowerOfTwo { alignment };
            self.diagnose(Area::ReservedMemory, node.name, problem, skip);
            return None;
        }
        Some(Some(alignment))
    }

    fn add_dynamic(&mut self, node: &PendingNode<'a>) {
        let skip = Outcome::Skipped;
        let flags = Flags::of(&node.props);
        if flags.no_map && flags.reusable {
            let problem = Problem::NoMapWithReusable;
            self.diagnose(Area::ReservedMemory, node.name, problem, skip);
            return;
        }
        let Some(size_prop) = node.props.get("size") else {
            let problem = Problem::MissingRegAndSize;
            self.diagnose(Area::ReservedMemory, node.name, problem, skip);
            return;
        };
        let Some(size) = read_sized(size_prop.value, node.size_cells) else {
            let problem = sized_problem("size", size_prop.value.len(), node.size_cells);
            self.diagnose(Area::ReservedMemory, node.name, problem, skip);
            return;
        };
        if size == 0 {
            self.diagnose(Area::ReservedMemory, node.name, Problem::ZeroSize, skip);
            return;
        }
        let Some(alignment) = self.node_alignment(node) else {
            return;
        };
        let alignment = alignment.unwrap_or(PAGE_SIZE).max(PAGE_SIZE);
        let full = if flags.firmware() {
            self.excluded.is_full()
        } else {
            self.reserved.is_full()
        };
        if full {
            let problem = if flags.firmware() {
                Problem::TooMany {
                    what: "excluded ranges",
                    capacity: MAX_EXCLUDED,
                }
            } else {
                Problem::TooMany {
                    what: "reserved regions",
                    capacity: MAX_RESERVED_REGIONS,
                }
            };
            self.diagnose(Area::ReservedMemory, node.name, problem, skip);
            return;
        }
        let placed = match node.props.get("alloc-ranges") {
            Some(prop) => {
                let ranges = match RegIter::new(prop.value, node.address_cells, node.size_cells) {
                    Ok(ranges) => ranges,
                    Err(error) => {
                        let problem = reg_problem(
                            error,
                            "alloc-ranges",
                            prop.value.len(),
                            node.address_cells,
                            node.size_cells,
                        );
                        self.diagnose(Area::ReservedMemory, node.name, problem, skip);
                        return;
                    }
                };
                let mut placed = None;
                for (base, range_size) in ranges {
                    let window = PhysRange::from_bounds(base, base.saturating_add(range_size));
                    placed = self.place_in(window, size, alignment);
                    if placed.is_some() {
                        break;
                    }
                }
                placed
            }
            None => self.place_in(PhysRange::from_bounds(0, u64::MAX), size, alignment),
        };
        let Some(base) = placed else {
            let problem = Problem::CannotPlace { size, alignment };
            self.diagnose(Area::ReservedMemory, node.name, problem, skip);
            return;
        };
        let range = PhysRange { base, size };
        self.claim(range);
        if flags.firmware() {
            self.list_excluded(ExcludedRange {
                kind: ExcludedKind::Firmware,
                range,
                name: node.name,
                no_map: true,
                reason: None,
            });
            return;
        }
        // Cannot fail: checked above.
        let _ = self.reserved.try_push(flags.region(node.name, range, true));
        if flags.guarantee && !flags.reusable {
            let problem = Problem::GuaranteeWithoutReusable;
            self.diagnose(
                Area::ReservedMemory,
                node.name,
                problem,
                Outcome::KeptAsCarveout,
            );
        }
    }

    /// The highest aligned base for `size` bytes inside `window` and one
    /// free (still usable) range: every claim and region taken so far is
    /// already out of the usable list.
    fn place_in(&self, window: PhysRange, size: u64, alignment: u64) -> Option<u64> {
        self.usable.iter().rev().find_map(|free| {
            let low = free.base.max(window.base);
            let high = free.end().min(window.end());
            let candidate = high.checked_sub(size)? & !(alignment - 1);
            (candidate >= low && high > low).then_some(candidate)
        })
    }

    /// Bytes of RAM.
    pub fn total_ram(&self) -> u64 {
        saturating_total(self.ram.iter().map(|r| r.size))
    }

    /// Bytes of usable RAM.
    pub fn total_usable(&self) -> u64 {
        saturating_total(self.usable.iter().map(|r| r.size))
    }

    /// Bytes reserved in regions of `kind`.
    pub fn total_reserved(&self, kind: RegionKind) -> u64 {
        saturating_total(
            self.reserved
                .iter()
                .filter(|r| r.kind == kind)
                .map(|r| r.range.size),
        )
    }

    /// Bytes in excluded ranges (overlaps counted twice).
    pub fn total_excluded(&self) -> u64 {
        saturating_total(self.excluded.iter().map(|e| e.range.size))
    }

    /// Reserved regions of `kind`, in map order.
    pub fn regions(&self, kind: RegionKind) -> impl Iterator<Item = &ReservedRegion<'a>> {
        self.reserved.iter().filter(move |r| r.kind == kind)
    }

    /// Every range a `no-map` node names that this map lists, regions and
    /// excluded ranges alike (at most [`MAX_NO_MAP_RANGES`]): the MMU must
    /// leave them unmapped.
    pub fn no_map_ranges(&self) -> impl Iterator<Item = PhysRange> + '_ {
        let regions = self.reserved.iter().filter(|r| r.no_map).map(|r| r.range);
        let excluded = self.excluded.iter().filter(|e| e.no_map).map(|e| e.range);
        regions.chain(excluded)
    }
}

/// The available `/reserved-memory` child `node` is, if it is one.
fn reserved_child<'a>(node: &crate::tree::Node<'a, '_>) -> Option<PendingNode<'a>> {
    let in_reserved = node.ancestors.get(1).map(|f| f.name) == Some("reserved-memory");
    if !in_reserved || !node.props.is_available() {
        return None;
    }
    let parent = node.parent().copied().unwrap_or_default();
    Some(PendingNode {
        name: node.name,
        props: node.props,
        address_cells: parent.address_cells,
        size_cells: parent.size_cells,
    })
}

/// The whole `(base, size)` entries of a static `reg` (a trailing partial
/// entry is ignored).
fn static_entries<'v>(
    value: &'v [u8],
    node: &PendingNode<'_>,
) -> impl Iterator<Item = (u64, u64)> + 'v {
    let (ac, sc) = (node.address_cells, node.size_cells);
    let entry = ((ac.min(3) + sc.min(3)) * 4) as usize;
    let whole = if entry == 0 {
        0
    } else {
        value.len() - value.len() % entry
    };
    RegIter::new(value.get(..whole).unwrap_or(&[]), ac, sc)
        .ok()
        .into_iter()
        .flatten()
}

/// The bytes an entry claims: to the end of the address space if it wraps.
fn claimed(base: u64, size: u64) -> PhysRange {
    PhysRange::from_bounds(base, base.saturating_add(size))
}

/// Sum that stops at `u64::MAX` (hostile trees can describe 2^64 bytes).
fn saturating_total(sizes: impl Iterator<Item = u64>) -> u64 {
    sizes.fold(0u64, u64::saturating_add)
}

/// A `size`/`alignment` value: exactly `size_cells` cells.
fn read_sized(value: &[u8], size_cells: u32) -> Option<u64> {
    if !(1..=2).contains(&size_cells) || value.len() != (size_cells * 4) as usize {
        return None;
    }
    crate::tree::read_cells(value, size_cells)
}

fn sized_problem(property: &'static str, len: usize, size_cells: u32) -> Problem<'static> {
    if (1..=2).contains(&size_cells) {
        Problem::MalformedProperty {
            property,
            len,
            expected: (size_cells * 4) as usize,
            multiple: false,
        }
    } else {
        Problem::UnsupportedCells {
            address_cells: 0,
            size_cells,
        }
    }
}

fn reg_problem(
    error: RegError,
    property: &'static str,
    len: usize,
    address_cells: u32,
    size_cells: u32,
) -> Problem<'static> {
    match error {
        RegError::UnsupportedCells => Problem::UnsupportedCells {
            address_cells,
            size_cells,
        },
        RegError::BadLength { entry } => Problem::MalformedProperty {
            property,
            len,
            expected: entry,
            multiple: true,
        },
    }
}
