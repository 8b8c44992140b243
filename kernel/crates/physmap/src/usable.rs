//! RAM and usable ranges: `/memory` nodes read into RAM, RAM merged, and
//! every claim taken out of the usable list, page by page, as it is read.
//!
//! Rules:
//! * A claim removes every page it touches from the usable list before
//!   anything is placed, so nothing claimed is ever usable whatever the
//!   lists can hold; should the usable list fill, a piece of usable RAM is
//!   dropped (one diagnostic), never a claim.
//! * Excluded ranges are claimed first and listed second: a full excluded
//!   list loses the listing (one diagnostic), never the exclusion.

use crate::arrayvec::ArrayVec;
use crate::diagnostics::reg_problem;
use crate::tree::{Properties, RegIter};
use crate::{
    Area, ExcludedKind, ExcludedRange, MAX_EXCLUDED, MAX_RAM_RANGES, MAX_USABLE_RANGES, MemoryMap,
    Outcome, PAGE_SIZE, PhysRange, Problem,
};

impl<'a> MemoryMap<'a> {
    pub(crate) fn add_memory_node(
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
    pub(crate) fn merge_ram(&mut self) {
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
    pub(crate) fn claim(&mut self, range: PhysRange) {
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
    pub(crate) fn add_excluded(&mut self, kind: ExcludedKind, range: PhysRange) {
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
    pub(crate) fn list_excluded(&mut self, excluded: ExcludedRange<'a>) {
        if self.excluded.try_push(excluded).is_err() {
            let problem = Problem::TooMany {
                what: "excluded ranges",
                capacity: MAX_EXCLUDED,
            };
            let outcome = Outcome::ExcludedUnlisted;
            self.diagnose(Area::ReservedMemory, excluded.name, problem, outcome);
        }
    }
}
