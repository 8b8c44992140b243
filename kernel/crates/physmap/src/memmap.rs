//! Building the memory map: RAM, excluded ranges, reserved regions, usable
//! ranges and diagnostics. The rules are in the crate documentation.

use core::fmt;

use crate::arrayvec::ArrayVec;
use crate::tree::{Device, DeviceTree, Properties, RegError, RegIter};
use crate::{FatalError, PAGE_SIZE, PhysRange};

/// Most RAM ranges kept (after merging).
pub const MAX_RAM_RANGES: usize = 16;
/// Most `/memreserve/` entries kept.
pub const MAX_MEMRESERVE: usize = 16;
/// Kernel image + DTB + memreserve entries.
pub const MAX_EXCLUDED: usize = MAX_MEMRESERVE + 2;
/// Most `/reserved-memory` children examined.
pub const MAX_RESERVED_NODES: usize = 32;
/// Most reserved regions kept (a static node yields one per `reg` entry).
pub const MAX_RESERVED_REGIONS: usize = 32;
/// Each excluded range or region splits at most one usable range in two.
pub const MAX_USABLE_RANGES: usize = MAX_RAM_RANGES + MAX_EXCLUDED + MAX_RESERVED_REGIONS;
/// Most diagnostics kept; later ones are only counted.
pub const MAX_DIAGNOSTICS: usize = 32;

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
}

impl ExcludedKind {
    /// Lower-case name used in tables and messages.
    pub fn as_str(&self) -> &'static str {
        match self {
            ExcludedKind::KernelImage => "kernel image",
            ExcludedKind::Dtb => "dtb",
            ExcludedKind::MemReserve => "memreserve",
        }
    }
}

/// A range never handed out and not a reserved region.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExcludedRange {
    pub kind: ExcludedKind,
    pub range: PhysRange,
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

/// What is wrong with a node. Every problem except
/// [`Problem::GuaranteeWithoutReusable`] skips the range or node.
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
    /// A static base not aligned to 4 KiB or to its `alignment`.
    Misaligned {
        base: u64,
        alignment: u64,
    },
    NoMapWithReusable,
    /// A static region outside RAM, wholly or `partly`.
    OutsideRam {
        region: PhysRange,
        partly: bool,
    },
    /// Overlaps a region earlier in tree order.
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
            Problem::MissingRegAndSize => write!(f, "neither 'reg' nor 'size': skipped"),
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
                    "property '{property}' is {len} bytes, expected {how}{expected}: skipped"
                )
            }
            Problem::UnsupportedCells {
                address_cells,
                size_cells,
            } => write!(
                f,
                "unsupported #address-cells={address_cells} #size-cells={size_cells}: skipped"
            ),
            Problem::ZeroSize => write!(f, "size is zero: skipped"),
            Problem::Wraps { base, size } => {
                write!(
                    f,
                    "base {base:#x} + size {size:#x} wraps past 2^64: skipped"
                )
            }
            Problem::AlignmentNotPowerOfTwo { alignment } => {
                write!(f, "alignment {alignment:#x} is not a power of two: skipped")
            }
            Problem::Misaligned { base, alignment } => {
                write!(
                    f,
                    "base {base:#x} is not aligned to {alignment:#x}: skipped"
                )
            }
            Problem::NoMapWithReusable => {
                write!(f, "'no-map' and 'reusable' both set: skipped")
            }
            Problem::OutsideRam { region, partly } => {
                let how = if partly { "partly outside" } else { "outside" };
                write!(f, "region {region} is {how} RAM: skipped")
            }
            Problem::Overlaps { region, other } => {
                write!(f, "region {region} overlaps '{other}': skipped")
            }
            Problem::OverlapsExcluded {
                region,
                what,
                excluded,
            } => write!(
                f,
                "region {region} overlaps the {} at {excluded}: skipped",
                what.as_str()
            ),
            Problem::CannotPlace { size, alignment } => write!(
                f,
                "cannot place {size:#x} bytes aligned to {alignment:#x}: no free range: skipped"
            ),
            Problem::TooMany { what, capacity } => {
                write!(f, "more than {capacity} {what}: skipped")
            }
            Problem::GuaranteeWithoutReusable => {
                write!(
                    f,
                    "'guarantee' without 'reusable': kept as a static carveout"
                )
            }
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
}

impl fmt::Display for Diagnostic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: node '{}': {}",
            self.area.as_str(),
            self.node,
            self.problem
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

/// The physical memory map.
#[derive(Clone, Copy, Debug)]
pub struct MemoryMap<'a> {
    /// RAM, sorted and merged.
    pub ram: ArrayVec<PhysRange, MAX_RAM_RANGES>,
    /// Kernel image, DTB and memreserve entries.
    pub excluded: ArrayVec<ExcludedRange, MAX_EXCLUDED>,
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
                    let in_reserved =
                        node.ancestors.get(1).map(|f| f.name) == Some("reserved-memory");
                    if in_reserved && node.props.is_available() {
                        let parent = node.parent().copied().unwrap_or_default();
                        let entry = PendingNode {
                            name: node.name,
                            props: node.props,
                            address_cells: parent.address_cells,
                            size_cells: parent.size_cells,
                        };
                        if pending.try_push(entry).is_err() {
                            map.diagnose(
                                Area::ReservedMemory,
                                node.name,
                                Problem::TooMany {
                                    what: "reserved-memory nodes",
                                    capacity: MAX_RESERVED_NODES,
                                },
                            );
                        }
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

        map.add_excluded(ExcludedKind::KernelImage, kernel_image);
        map.add_excluded(ExcludedKind::Dtb, dtb_range);
        for (index, entry) in tree.memreserve().enumerate() {
            if index >= MAX_MEMRESERVE {
                map.diagnose(
                    Area::MemReserve,
                    "/memreserve/",
                    Problem::TooMany {
                        what: "memreserve entries",
                        capacity: MAX_MEMRESERVE,
                    },
                );
                break;
            }
            if entry.base.checked_add(entry.size).is_none() {
                map.diagnose(
                    Area::MemReserve,
                    "/memreserve/",
                    Problem::Wraps {
                        base: entry.base,
                        size: entry.size,
                    },
                );
                continue;
            }
            map.add_excluded(ExcludedKind::MemReserve, entry);
        }

        for node in pending.iter().filter(|n| n.props.has("reg")) {
            map.add_static(node);
        }
        for node in pending.iter().filter(|n| !n.props.has("reg")) {
            map.add_dynamic(node);
        }

        map.chosen.stdout = map.chosen.stdout_path.and_then(|p| tree.resolve_path(p));
        map.compute_usable();
        Ok(map)
    }

    fn diagnose(&mut self, area: Area, node: &'a str, problem: Problem<'a>) {
        let diagnostic = Diagnostic {
            area,
            node,
            problem,
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
        let Some(reg) = props.get("reg") else {
            self.diagnose(Area::Memory, name, Problem::MissingRegAndSize);
            return;
        };
        let entries = match RegIter::new(reg.value, address_cells, size_cells) {
            Ok(entries) => entries,
            Err(error) => {
                self.diagnose(
                    Area::Memory,
                    name,
                    reg_problem(error, "reg", reg.value.len(), address_cells, size_cells),
                );
                return;
            }
        };
        for (base, size) in entries {
            if size == 0 {
                self.diagnose(Area::Memory, name, Problem::ZeroSize);
            } else if base.checked_add(size).is_none() {
                self.diagnose(Area::Memory, name, Problem::Wraps { base, size });
            } else if self.ram.try_push(PhysRange { base, size }).is_err() {
                self.diagnose(
                    Area::Memory,
                    name,
                    Problem::TooMany {
                        what: "RAM ranges",
                        capacity: MAX_RAM_RANGES,
                    },
                );
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

    fn add_excluded(&mut self, kind: ExcludedKind, range: PhysRange) {
        if range.size != 0 {
            // Capacity is sized for 2 + MAX_MEMRESERVE, checked by the caller.
            let _ = self.excluded.try_push(ExcludedRange { kind, range });
        }
    }

    /// Flags shared by static and dynamic nodes; `None` when the node must
    /// be skipped (after a diagnostic).
    fn node_flags(&mut self, node: &PendingNode<'a>) -> Option<ReservedRegion<'a>> {
        let no_map = node.props.has("no-map");
        let reusable = node.props.has("reusable");
        let guarantee = node.props.has("guarantee");
        if no_map && reusable {
            self.diagnose(Area::ReservedMemory, node.name, Problem::NoMapWithReusable);
            return None;
        }
        let kind = match (reusable, guarantee) {
            (true, true) => RegionKind::Gcma,
            (true, false) => RegionKind::Cma,
            (false, guarantee) => {
                if guarantee {
                    self.diagnose(
                        Area::ReservedMemory,
                        node.name,
                        Problem::GuaranteeWithoutReusable,
                    );
                }
                RegionKind::Carveout
            }
        };
        Some(ReservedRegion {
            name: node.name,
            kind,
            range: PhysRange::default(),
            no_map,
            reusable,
            guarantee,
            dynamic: false,
            shared_dma_pool: node.props.is_compatible("shared-dma-pool"),
        })
    }

    /// The `alignment` property: `Some(None)` when absent, `None` when bad.
    fn node_alignment(&mut self, node: &PendingNode<'a>) -> Option<Option<u64>> {
        let Some(prop) = node.props.get("alignment") else {
            return Some(None);
        };
        let Some(alignment) = read_sized(prop.value, node.size_cells) else {
            self.diagnose(
                Area::ReservedMemory,
                node.name,
                sized_problem("alignment", prop.value.len(), node.size_cells),
            );
            return None;
        };
        if !alignment.is_power_of_two() {
            self.diagnose(
                Area::ReservedMemory,
                node.name,
                Problem::AlignmentNotPowerOfTwo { alignment },
            );
            return None;
        }
        Some(Some(alignment))
    }

    fn add_static(&mut self, node: &PendingNode<'a>) {
        let Some(template) = self.node_flags(node) else {
            return;
        };
        let Some(alignment) = self.node_alignment(node) else {
            return;
        };
        let alignment = alignment.unwrap_or(PAGE_SIZE).max(PAGE_SIZE);
        let Some(reg) = node.props.get("reg") else {
            return;
        };
        let entries = match RegIter::new(reg.value, node.address_cells, node.size_cells) {
            Ok(entries) => entries,
            Err(error) => {
                let problem = reg_problem(
                    error,
                    "reg",
                    reg.value.len(),
                    node.address_cells,
                    node.size_cells,
                );
                self.diagnose(Area::ReservedMemory, node.name, problem);
                return;
            }
        };
        for (base, size) in entries {
            if let Err(problem) = self.check_static(base, size, alignment) {
                self.diagnose(Area::ReservedMemory, node.name, problem);
                continue;
            }
            let region = ReservedRegion {
                range: PhysRange { base, size },
                ..template
            };
            self.push_region(region);
        }
    }

    fn check_static(&self, base: u64, size: u64, alignment: u64) -> Result<(), Problem<'a>> {
        if size == 0 {
            return Err(Problem::ZeroSize);
        }
        if base.checked_add(size).is_none() {
            return Err(Problem::Wraps { base, size });
        }
        if !base.is_multiple_of(alignment) {
            return Err(Problem::Misaligned { base, alignment });
        }
        let region = PhysRange { base, size };
        if !self.ram.iter().any(|ram| ram.contains(&region)) {
            let partly = self.ram.iter().any(|ram| ram.overlaps(&region));
            return Err(Problem::OutsideRam { region, partly });
        }
        self.check_free(region)
    }

    /// The region must not overlap an excluded range or an earlier region.
    fn check_free(&self, region: PhysRange) -> Result<(), Problem<'a>> {
        if let Some(excluded) = self.excluded.iter().find(|e| e.range.overlaps(&region)) {
            return Err(Problem::OverlapsExcluded {
                region,
                what: excluded.kind,
                excluded: excluded.range,
            });
        }
        if let Some(other) = self.reserved.iter().find(|r| r.range.overlaps(&region)) {
            return Err(Problem::Overlaps {
                region,
                other: other.name,
            });
        }
        Ok(())
    }

    fn push_region(&mut self, region: ReservedRegion<'a>) {
        if self.reserved.try_push(region).is_err() {
            self.diagnose(
                Area::ReservedMemory,
                region.name,
                Problem::TooMany {
                    what: "reserved regions",
                    capacity: MAX_RESERVED_REGIONS,
                },
            );
        }
    }

    fn add_dynamic(&mut self, node: &PendingNode<'a>) {
        let Some(template) = self.node_flags(node) else {
            return;
        };
        let Some(size_prop) = node.props.get("size") else {
            self.diagnose(Area::ReservedMemory, node.name, Problem::MissingRegAndSize);
            return;
        };
        let Some(size) = read_sized(size_prop.value, node.size_cells) else {
            let problem = sized_problem("size", size_prop.value.len(), node.size_cells);
            self.diagnose(Area::ReservedMemory, node.name, problem);
            return;
        };
        if size == 0 {
            self.diagnose(Area::ReservedMemory, node.name, Problem::ZeroSize);
            return;
        }
        let Some(alignment) = self.node_alignment(node) else {
            return;
        };
        let alignment = alignment.unwrap_or(PAGE_SIZE).max(PAGE_SIZE);
        if self.reserved.is_full() {
            self.push_region(template);
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
                        self.diagnose(Area::ReservedMemory, node.name, problem);
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
        match placed {
            Some(base) => self.push_region(ReservedRegion {
                range: PhysRange { base, size },
                dynamic: true,
                ..template
            }),
            None => self.diagnose(
                Area::ReservedMemory,
                node.name,
                Problem::CannotPlace { size, alignment },
            ),
        }
    }

    /// The highest aligned base for `size` bytes inside `window` ∩ RAM that
    /// avoids every excluded range and region already taken.
    fn place_in(&self, window: PhysRange, size: u64, alignment: u64) -> Option<u64> {
        for ram in self.ram.iter().rev() {
            let low = ram.base.max(window.base);
            let high = ram.end().min(window.end());
            if high <= low || high - low < size {
                continue;
            }
            let mut top = high;
            // Each step moves `top` below a blocking range, so this ends.
            while let Some(candidate) = top.checked_sub(size).map(|c| c & !(alignment - 1)) {
                if candidate < low {
                    break;
                }
                let wanted = PhysRange {
                    base: candidate,
                    size,
                };
                let blocker = self
                    .excluded
                    .iter()
                    .map(|e| e.range)
                    .chain(self.reserved.iter().map(|r| r.range))
                    .filter(|r| r.overlaps(&wanted))
                    .map(|r| r.base)
                    .min();
                match blocker {
                    None => return Some(candidate),
                    Some(blocked_base) => top = blocked_base,
                }
            }
        }
        None
    }

    fn compute_usable(&mut self) {
        let mut blocked: ArrayVec<PhysRange, { MAX_EXCLUDED + MAX_RESERVED_REGIONS }> =
            ArrayVec::new();
        for range in self
            .excluded
            .iter()
            .map(|e| e.range)
            .chain(self.reserved.iter().map(|r| r.range))
        {
            let _ = blocked.try_push(range);
        }
        blocked.as_mut_slice().sort_unstable();
        let mut usable: ArrayVec<PhysRange, MAX_USABLE_RANGES> = ArrayVec::new();
        for ram in self.ram.iter() {
            let mut cursor = ram.base;
            for block in blocked.iter() {
                if block.end() <= cursor || block.base >= ram.end() {
                    continue;
                }
                if block.base > cursor {
                    push_usable(&mut usable, PhysRange::from_bounds(cursor, block.base));
                }
                cursor = cursor.max(block.end());
            }
            if cursor < ram.end() {
                push_usable(&mut usable, PhysRange::from_bounds(cursor, ram.end()));
            }
        }
        self.usable = usable;
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

    /// Bytes in excluded ranges (kernel, DTB, memreserve; overlaps counted
    /// twice).
    pub fn total_excluded(&self) -> u64 {
        saturating_total(self.excluded.iter().map(|e| e.range.size))
    }

    /// Reserved regions of `kind`, in map order.
    pub fn regions(&self, kind: RegionKind) -> impl Iterator<Item = &ReservedRegion<'a>> {
        self.reserved.iter().filter(move |r| r.kind == kind)
    }
}

/// Sum that stops at `u64::MAX` (hostile trees can describe 2^64 bytes).
fn saturating_total(sizes: impl Iterator<Item = u64>) -> u64 {
    sizes.fold(0u64, u64::saturating_add)
}

fn push_usable(usable: &mut ArrayVec<PhysRange, MAX_USABLE_RANGES>, range: PhysRange) {
    let inner = range.page_inner();
    if inner.size != 0 {
        // Capacity covers every split (see MAX_USABLE_RANGES).
        let _ = usable.try_push(inner);
    }
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
