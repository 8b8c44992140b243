//! Bookkeeping shared by the three kinds of area: the bitmap of allocated
//! pages, the live allocations (start -> count) and the records of freed
//! allocations that tell a double free from a free of memory never allocated.

use alloc::collections::BTreeMap;

use crate::bitmap::Bitmap;
use crate::{ContigError, Pfn};

#[derive(Clone, Debug)]
pub(crate) struct RangeBook {
    pub(crate) base_pfn: Pfn,
    pub(crate) pages: usize,
    pub(crate) used: Bitmap,
    /// Live allocations: first index -> page count. Disjoint.
    live: BTreeMap<usize, usize>,
    /// Freed allocations not since overlapped by a new one: first index ->
    /// page count. Disjoint, so at most `pages` entries.
    freed: BTreeMap<usize, usize>,
}

impl RangeBook {
    pub(crate) fn new(base_pfn: Pfn, pages: usize) -> Self {
        RangeBook {
            base_pfn,
            pages,
            used: Bitmap::new(pages),
            live: BTreeMap::new(),
            freed: BTreeMap::new(),
        }
    }

    pub(crate) fn allocated(&self) -> usize {
        self.used.count_ones()
    }

    pub(crate) fn contains_pfn(&self, pfn: Pfn) -> bool {
        pfn >= self.base_pfn && pfn - self.base_pfn < self.pages as u64
    }

    pub(crate) fn pfn(&self, index: usize) -> Pfn {
        self.base_pfn + index as u64
    }

    /// Checks a request against the area: zero count, larger than the area,
    /// alignment not a power of two or larger than the area.
    pub(crate) fn validate(&self, count: usize, align: usize) -> Result<(), ContigError> {
        if count == 0 {
            return Err(ContigError::ZeroCount);
        }
        if count > self.pages {
            return Err(ContigError::TooLarge {
                count,
                size: self.pages,
            });
        }
        if !align.is_power_of_two() || align > self.pages {
            return Err(ContigError::BadAlignment {
                align,
                size: self.pages,
            });
        }
        Ok(())
    }

    /// First fit at or after index `from`.
    pub(crate) fn find(&self, from: usize, count: usize, align: usize) -> Option<usize> {
        self.used.find_fit(from, count, align, self.base_pfn)
    }

    /// Checks that `pfn .. pfn + count` (inside the area) has no allocated
    /// page, for an explicit-range allocation; returns its first index.
    pub(crate) fn check_range(&self, pfn: Pfn, count: usize) -> Result<usize, ContigError> {
        debug_assert!(self.contains_pfn(pfn) && count > 0);
        let start = (pfn - self.base_pfn) as usize;
        debug_assert!(start + count <= self.pages);
        match self.used.next_set(start, start + count) {
            Some(i) => Err(ContigError::RangeAllocated {
                pfn,
                count,
                first: self.pfn(i),
            }),
            None => Ok(start),
        }
    }

    /// Records the allocation of `start .. start + count` (found free).
    pub(crate) fn commit(&mut self, start: usize, count: usize) {
        debug_assert!(self.used.range_clear(start, count));
        self.used.set_range(start, count);
        self.commit_reserved(start, count);
    }

    /// Records the allocation of `start .. start + count`, whose bits the
    /// caller already set (a CMA range isolated while it was emptied).
    pub(crate) fn commit_reserved(&mut self, start: usize, count: usize) {
        debug_assert!(self.used.next_clear(start, start + count).is_none());
        self.live.insert(start, count);
        // Forget freed records that the new allocation overlaps.
        let end = start + count;
        while let Some((&s, &c)) = self.freed.range(..end).next_back() {
            if s + c <= start {
                break;
            }
            self.freed.remove(&s);
        }
    }

    /// Index of the allocation that `pfn, count` names exactly, or the error
    /// telling why it names none.
    pub(crate) fn check_free(&self, pfn: Pfn, count: usize) -> Result<usize, ContigError> {
        if count == 0 {
            return Err(ContigError::ZeroCount);
        }
        let inside = self.contains_pfn(pfn)
            && (pfn - self.base_pfn)
                .checked_add(count as u64)
                .is_some_and(|end| end <= self.pages as u64);
        if !inside {
            return Err(ContigError::NotAllocated { pfn, count });
        }
        let start = (pfn - self.base_pfn) as usize;
        let end = start + count;
        if self.live.get(&start) == Some(&count) {
            return Ok(start);
        }
        let overlaps = |m: &BTreeMap<usize, usize>| {
            m.range(..end)
                .next_back()
                .is_some_and(|(&s, &c)| s + c > start)
        };
        if overlaps(&self.live) {
            Err(ContigError::PartialFree { pfn, count })
        } else if overlaps(&self.freed) {
            Err(ContigError::DoubleFree { pfn, count })
        } else {
            Err(ContigError::NotAllocated { pfn, count })
        }
    }

    /// Forgets the live allocation starting at `start` (checked by
    /// `check_free`) and remembers it as freed.
    pub(crate) fn release(&mut self, start: usize) {
        let count = self
            .live
            .remove(&start)
            .expect("release of an allocation check_free accepted");
        self.used.clear_range(start, count);
        self.freed.insert(start, count);
    }

    /// Live allocations as (first index, count), in address order.
    pub(crate) fn live(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.live.iter().map(|(&s, &c)| (s, c))
    }
}
