//! Static carveout: reserved pages handed out only as contiguous
//! allocations, never lent to anyone. Always fast, wasted while idle.

use crate::book::RangeBook;
use crate::{AreaKind, AreaStats, ContigError, Pfn};

/// A carveout area.
#[derive(Clone, Debug)]
pub struct CarveoutArea {
    book: RangeBook,
    stats: AreaStats,
}

impl CarveoutArea {
    /// An area of `pages` pages from `base_pfn`, all idle.
    pub fn new(base_pfn: Pfn, pages: usize) -> Self {
        CarveoutArea {
            book: RangeBook::new(base_pfn, pages),
            stats: AreaStats::new(AreaKind::Carveout, pages),
        }
    }

    /// First pfn and number of pages.
    pub fn span(&self) -> (Pfn, usize) {
        (self.book.base_pfn, self.book.pages)
    }

    /// Allocates `count` pages aligned to `align` pages (physical pfn), first
    /// fit.
    pub fn alloc(&mut self, count: usize, align: usize) -> Result<Pfn, ContigError> {
        let r = self.book.validate(count, align).and_then(|()| {
            self.book
                .find(0, count, align)
                .ok_or(ContigError::NoSpace { count, align })
        });
        match r {
            Ok(start) => {
                self.book.commit(start, count);
                self.stats.allocations += 1;
                Ok(self.book.pfn(start))
            }
            Err(e) => {
                self.stats.failures += 1;
                Err(e)
            }
        }
    }

    /// Allocates exactly `pfn .. pfn + count` (inside the area, checked by
    /// the caller).
    pub fn alloc_at(&mut self, pfn: Pfn, count: usize) -> Result<(), ContigError> {
        match self.book.check_range(pfn, count) {
            Ok(start) => {
                self.book.commit(start, count);
                self.stats.allocations += 1;
                Ok(())
            }
            Err(e) => {
                self.stats.failures += 1;
                Err(e)
            }
        }
    }

    /// Frees the allocation `pfn, count` (exactly as allocated).
    pub fn free(&mut self, pfn: Pfn, count: usize) -> Result<(), ContigError> {
        let start = self.book.check_free(pfn, count)?;
        self.book.release(start);
        self.stats.frees += 1;
        Ok(())
    }

    /// Whether `pfn` is inside an allocation of this area.
    pub fn is_allocated(&self, pfn: Pfn) -> bool {
        self.book.contains_pfn(pfn) && self.book.used.get((pfn - self.book.base_pfn) as usize)
    }

    /// Live allocations as (first pfn, count).
    pub fn allocations(&self) -> impl Iterator<Item = (Pfn, usize)> + '_ {
        self.book.live().map(|(s, c)| (self.book.pfn(s), c))
    }

    /// Statistics now.
    pub fn stats(&self) -> AreaStats {
        let mut s = self.stats;
        s.allocated = self.book.allocated();
        s.idle = s.size - s.allocated;
        s
    }
}
