//! CMA area, the baseline: after Linux `mm/cma.c` (`cma_alloc`) and
//! `alloc_contig_range()`.
//!
//! Idle pages are lent to the kernel's page allocator as movable pages
//! ([`CmaArea::lend_page`] when ordinary memory runs short,
//! [`CmaArea::return_page`] when the user frees them). A contiguous allocation
//! finds a free range in the bitmap of CMA-allocated pages (`cma->bitmap`),
//! then migrates every lent page of the range out through the [`Migrator`].
//! A busy (pinned) page is retried for [`DEFAULT_MAX_PASSES`] passes over the
//! range (Linux's `__alloc_contig_migrate_range` gives up after 5 tries),
//! then the range is given up (`-EBUSY`) and the search goes on from the
//! failed start plus the alignment (Linux: `start = bitmap_no + mask + 1`),
//! until no candidate is left. Pages migrated out of a range that is then
//! given up stay reclaimed (idle in the area): they are never migrated twice.

use alloc::vec::Vec;

use crate::bitmap::Bitmap;
use crate::book::RangeBook;
use crate::{AreaKind, AreaStats, ContigError, MigrateError, Migrator, Pfn};

/// Passes over a range before a busy page makes CMA give the range up.
pub const DEFAULT_MAX_PASSES: u32 = 5;

/// Why a candidate range could not be emptied.
enum RangeFail {
    /// A page stayed busy for every pass: give the range up.
    Busy,
    /// No memory to migrate the page at this pfn: fail the allocation (Linux
    /// retries only on `-EBUSY`).
    NoMemory(Pfn),
}

/// A CMA area.
#[derive(Clone, Debug)]
pub struct CmaArea {
    book: RangeBook,
    /// Pages lent to the page allocator (never overlaps `book.used`).
    lent: Bitmap,
    max_passes: u32,
    stats: AreaStats,
}

impl CmaArea {
    /// An area of `pages` pages from `base_pfn`, all idle.
    pub fn new(base_pfn: Pfn, pages: usize) -> Self {
        CmaArea {
            book: RangeBook::new(base_pfn, pages),
            lent: Bitmap::new(pages),
            max_passes: DEFAULT_MAX_PASSES,
            stats: AreaStats::new(AreaKind::Cma, pages),
        }
    }

    /// Sets the number of migration passes before a range is given up (at
    /// least 1).
    pub fn set_max_passes(&mut self, passes: u32) {
        self.max_passes = passes.max(1);
    }

    /// First pfn and number of pages.
    pub fn span(&self) -> (Pfn, usize) {
        (self.book.base_pfn, self.book.pages)
    }

    /// Lends the lowest idle page to the page allocator, if any.
    pub fn lend_page(&mut self) -> Option<Pfn> {
        let mut i = 0;
        while i < self.book.pages {
            let a = self.book.used.next_clear(i, self.book.pages)?;
            match self.lent.next_clear(a, a + 1) {
                Some(_) => {
                    self.lent.set(a);
                    self.stats.lends += 1;
                    return Some(self.book.pfn(a));
                }
                None => i = a + 1,
            }
        }
        None
    }

    /// The page allocator no longer uses the lent page `pfn`: it is idle
    /// again.
    pub fn return_page(&mut self, pfn: Pfn) -> Result<(), ContigError> {
        if !self.is_lent(pfn) {
            return Err(ContigError::NotLent { pfn });
        }
        self.lent.clear((pfn - self.book.base_pfn) as usize);
        self.stats.returns += 1;
        Ok(())
    }

    /// Whether `pfn` is lent now.
    pub fn is_lent(&self, pfn: Pfn) -> bool {
        self.book.contains_pfn(pfn) && self.lent.get((pfn - self.book.base_pfn) as usize)
    }

    /// Whether `pfn` is inside an allocation of this area.
    pub fn is_allocated(&self, pfn: Pfn) -> bool {
        self.book.contains_pfn(pfn) && self.book.used.get((pfn - self.book.base_pfn) as usize)
    }

    /// Allocates `count` pages aligned to `align` pages (physical pfn),
    /// migrating lent pages out of the chosen range, see the module doc.
    pub fn alloc(
        &mut self,
        migrator: &mut dyn Migrator,
        count: usize,
        align: usize,
    ) -> Result<Pfn, ContigError> {
        let r = self.try_alloc(migrator, count, align);
        match r {
            Ok(_) => self.stats.allocations += 1,
            Err(_) => self.stats.failures += 1,
        }
        r
    }

    fn try_alloc(
        &mut self,
        migrator: &mut dyn Migrator,
        count: usize,
        align: usize,
    ) -> Result<Pfn, ContigError> {
        self.book.validate(count, align)?;
        let mut from = 0;
        let mut given_up = 0;
        loop {
            let Some(start) = self.book.find(from, count, align) else {
                return Err(if given_up > 0 {
                    ContigError::Busy {
                        ranges_given_up: given_up,
                    }
                } else {
                    ContigError::NoSpace { count, align }
                });
            };
            match self.migrate_range(migrator, start, count) {
                Ok(()) => {
                    self.book.commit(start, count);
                    return Ok(self.book.pfn(start));
                }
                Err(RangeFail::Busy) => {
                    given_up += 1;
                    self.stats.ranges_given_up += 1;
                    from = start + align;
                }
                Err(RangeFail::NoMemory(pfn)) => {
                    return Err(ContigError::MigrationNoMemory { pfn });
                }
            }
        }
    }

    /// Migrates every lent page of `start .. start + count` out, with up to
    /// `max_passes` passes for busy pages. Pages migrated stay reclaimed even
    /// if the range is given up; on `NoMemory` the pages not yet migrated
    /// stay lent.
    fn migrate_range(
        &mut self,
        migrator: &mut dyn Migrator,
        start: usize,
        count: usize,
    ) -> Result<(), RangeFail> {
        let mut pending: Vec<usize> = Vec::new();
        let mut i = start;
        while let Some(l) = self.lent.next_set(i, start + count) {
            pending.push(l);
            i = l + 1;
        }
        for _pass in 0..self.max_passes {
            let mut still = Vec::new();
            for &page in &pending {
                let pfn = self.book.pfn(page);
                match migrator.migrate(pfn) {
                    Ok(()) => {
                        self.lent.clear(page);
                        self.stats.migrated += 1;
                    }
                    Err(MigrateError::Busy) => {
                        self.stats.busy_retries += 1;
                        still.push(page);
                    }
                    Err(MigrateError::NoMemory) => return Err(RangeFail::NoMemory(pfn)),
                }
            }
            pending = still;
            if pending.is_empty() {
                return Ok(());
            }
        }
        Err(RangeFail::Busy)
    }

    /// Frees the allocation `pfn, count` (exactly as allocated); its pages
    /// become idle and lendable.
    pub fn free(&mut self, pfn: Pfn, count: usize) -> Result<(), ContigError> {
        let start = self.book.check_free(pfn, count)?;
        self.book.release(start);
        self.stats.frees += 1;
        Ok(())
    }

    /// Live allocations as (first pfn, count).
    pub fn allocations(&self) -> impl Iterator<Item = (Pfn, usize)> + '_ {
        self.book.live().map(|(s, c)| (self.book.pfn(s), c))
    }

    /// Statistics now.
    pub fn stats(&self) -> AreaStats {
        let mut s = self.stats;
        s.allocated = self.book.allocated();
        s.lent = self.lent.count_ones();
        s.idle = s.size - s.allocated - s.lent;
        s
    }
}
