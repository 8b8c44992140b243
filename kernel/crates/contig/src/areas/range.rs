//! Explicit-range allocation: the caller names the pfns, as the GCMA patch's
//! `gcma_alloc_range(start_pfn, count)` does (a driver whose device can only
//! use one fixed window, or a donor such as MTE tag storage that must take
//! back exactly the pages that cover a given range of RAM).
//!
//! Rules:
//! - All or nothing: the range is checked whole (inside one area, no page
//!   allocated) before anything changes; a GCMA range is then taken back
//!   with one [`PoolBackend::take_back_range`], which itself changes nothing
//!   when it refuses.
//! - Distinct errors, in this order: zero pages ([`ContigError::ZeroCount`]),
//!   a range that overlaps no area ([`ContigError::RangeOutside`]), a range
//!   that is not inside one area ([`ContigError::RangeSpansAreas`]: it
//!   straddles two areas, or runs past the end of one), a range holding an
//!   allocated page ([`ContigError::RangeAllocated`], naming the first such
//!   pfn), and a CMA area ([`ContigError::RangeInCma`]: emptying a fixed
//!   range of a CMA area is `alloc_contig_range`'s job and can fail on one
//!   pinned page, which is exactly what this call promises not to do).
//! - No alignment: the caller's pfn is the alignment.
//! - The free side is unchanged: [`Areas::free`] of the returned
//!   [`Allocation`] (exactly the range given), as for any allocation.

use super::{AreaId, AreaImpl, Areas};
use crate::{Allocation, ContigError, Pfn, PoolBackend};

impl<B: PoolBackend> Areas<B> {
    /// Allocates exactly the pages `pfn .. pfn + count`, from the GCMA area
    /// or carveout that holds them (see the module rules for the errors).
    pub fn alloc_range(&mut self, pfn: Pfn, count: usize) -> Result<Allocation, ContigError> {
        let i = self.area_of_range(pfn, count)?;
        let r = match &mut self.areas[i].imp {
            AreaImpl::Gcma(a) => a.alloc_at(&mut self.backend, pfn, count),
            AreaImpl::Carveout(a) => a.alloc_at(pfn, count),
            AreaImpl::Cma(_) => Err(ContigError::RangeInCma { pfn, count }),
        };
        r.map(|()| Allocation {
            area: AreaId(i),
            pfn,
            count,
        })
    }

    /// The index of the one area that holds the whole range.
    fn area_of_range(&self, pfn: Pfn, count: usize) -> Result<usize, ContigError> {
        if count == 0 {
            return Err(ContigError::ZeroCount);
        }
        let end = pfn
            .checked_add(count as u64)
            .ok_or(ContigError::RangeOutside { pfn, count })?;
        let mut overlaps = false;
        for (i, e) in self.areas.iter().enumerate() {
            let (b, n) = e.span();
            let area_end = b + n as u64;
            if pfn >= b && end <= area_end {
                return Ok(i);
            }
            overlaps |= pfn < area_end && b < end;
        }
        Err(if overlaps {
            ContigError::RangeSpansAreas { pfn, count }
        } else {
            ContigError::RangeOutside { pfn, count }
        })
    }
}
