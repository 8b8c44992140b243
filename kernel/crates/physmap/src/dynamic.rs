//! Dynamic `/reserved-memory` regions (`size`, `alignment`,
//! `alloc-ranges`): placed after every static claim, in tree order, top-down
//! (highest address first) inside each `alloc-ranges` entry in turn or else
//! inside RAM, aligned to max(`alignment`, 4 KiB), in memory that is still
//! usable. A node that cannot be placed is skipped with one diagnostic and
//! claims nothing.

use crate::diagnostics::{reg_problem, sized_problem};
use crate::reserved::{Flags, PendingNode};
use crate::tree::RegIter;
use crate::{
    Area, ExcludedKind, ExcludedRange, MAX_EXCLUDED, MAX_RESERVED_REGIONS, MemoryMap, Outcome,
    PAGE_SIZE, PhysRange, Problem,
};

impl<'a> MemoryMap<'a> {
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

    pub(crate) fn add_dynamic(&mut self, node: &PendingNode<'a>) {
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
}

/// A `size`/`alignment` value: exactly `size_cells` cells.
fn read_sized(value: &[u8], size_cells: u32) -> Option<u64> {
    if !(1..=2).contains(&size_cells) || value.len() != (size_cells * 4) as usize {
        return None;
    }
    crate::tree::read_cells(value, size_cells)
}
