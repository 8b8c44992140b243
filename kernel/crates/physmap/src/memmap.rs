//! The memory map and its build: one walk of the tree collects RAM, the
//! `/reserved-memory` children and `/chosen`; then, in this order, RAM is
//! merged and made usable, the kernel image, the DTB and `/memreserve/`
//! are excluded, static regions are claimed and typed
//! ([`reserved`](crate::reserved)), later nodes beyond the capacity are
//! excluded, and dynamic regions are placed in what is left
//! ([`dynamic`](crate::dynamic)). The rules are in the crate documentation;
//! the order is what keeps "no claimed byte is ever usable": every claim
//! leaves the usable list before anything is placed.

use crate::arrayvec::ArrayVec;
use crate::reserved::{PendingNode, reserved_child};
use crate::tree::DeviceTree;
use crate::{
    Area, Chosen, Diagnostic, ExcludedKind, ExcludedRange, FatalError, Outcome, PhysRange, Problem,
    RegionKind, ReservedRegion,
};

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

    pub(crate) fn diagnose(
        &mut self,
        area: Area,
        node: &'a str,
        problem: Problem<'a>,
        outcome: Outcome,
    ) {
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

/// Sum that stops at `u64::MAX` (hostile trees can describe 2^64 bytes).
fn saturating_total(sizes: impl Iterator<Item = u64>) -> u64 {
    sizes.fold(0u64, u64::saturating_add)
}
