//! `/reserved-memory` children: their flags and static regions.
//!
//! Rules:
//! * Every whole `reg` entry of a static node is claimed (out of usable RAM)
//!   first, whatever is wrong with it; only then is it checked and typed.
//!   A refused entry is excluded and listed with its reason, never an area.
//! * An area never shares a byte with another node's static claim (earlier
//!   or later in tree order), the kernel image, the DTB or a memreserve
//!   entry; when the claims do not all fit in the comparison list, no
//!   static region is an area.
//! * Children beyond [`MAX_RESERVED_NODES`] still have their `reg` entries
//!   excluded and listed.

use crate::arrayvec::ArrayVec;
use crate::diagnostics::reg_problem;
use crate::tree::{DeviceTree, Properties, RegError, RegIter};
use crate::{
    Area, ExcludedKind, ExcludedRange, MAX_RESERVED_NODES, MAX_RESERVED_REGIONS, MemoryMap,
    Outcome, PAGE_SIZE, PhysRange, Problem, RegionKind, ReservedRegion,
};

/// Most static `reg` entries compared with one another for overlaps; in a
/// tree with more, no static region is used as an area.
const MAX_CLAIMS: usize = 2 * MAX_RESERVED_REGIONS;

/// A `/reserved-memory` child waiting to be processed.
#[derive(Clone, Copy, Default)]
pub(crate) struct PendingNode<'a> {
    pub(crate) name: &'a str,
    pub(crate) props: Properties<'a>,
    pub(crate) address_cells: u32,
    pub(crate) size_cells: u32,
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
pub(crate) struct Claims<'a> {
    list: ArrayVec<Claim<'a>, MAX_CLAIMS>,
    complete: bool,
}

/// The flags of a `/reserved-memory` node.
#[derive(Clone, Copy)]
pub(crate) struct Flags {
    pub(crate) no_map: bool,
    pub(crate) reusable: bool,
    pub(crate) guarantee: bool,
    pub(crate) shared_dma_pool: bool,
}

impl Flags {
    pub(crate) fn of(props: &Properties<'_>) -> Self {
        Flags {
            no_map: props.has("no-map"),
            reusable: props.has("reusable"),
            guarantee: props.has("guarantee"),
            shared_dma_pool: props.is_compatible("shared-dma-pool"),
        }
    }

    /// `no-map` without `shared-dma-pool`: firmware's memory, never an area.
    pub(crate) fn firmware(&self) -> bool {
        self.no_map && !self.shared_dma_pool
    }

    fn kind(&self) -> RegionKind {
        match (self.reusable, self.guarantee) {
            (true, true) => RegionKind::Gcma,
            (true, false) => RegionKind::Cma,
            (false, _) => RegionKind::Carveout,
        }
    }

    pub(crate) fn region<'a>(
        &self,
        name: &'a str,
        range: PhysRange,
        dynamic: bool,
    ) -> ReservedRegion<'a> {
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

impl<'a> MemoryMap<'a> {
    /// Every entry of every examined static node, for the overlap checks.
    pub(crate) fn static_claims(&self, pending: &[PendingNode<'a>]) -> Claims<'a> {
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

    pub(crate) fn add_static(
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
    pub(crate) fn exclude_unexamined(&mut self, tree: &DeviceTree<'a>) {
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
}

/// The available `/reserved-memory` child `node` is, if it is one.
pub(crate) fn reserved_child<'a>(node: &crate::tree::Node<'a, '_>) -> Option<PendingNode<'a>> {
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
