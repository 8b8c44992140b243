//! GCMA area: a reserved area whose idle frames are a cleancache pool.

use crate::book::RangeBook;
use crate::{AreaKind, AreaStats, ContigError, PageState, Pfn, PoolBackend, PoolError, PoolId};

/// How many busy pages a GCMA allocation skips past, looking for a fit
/// with no cleancache copy in flight, before it takes its first fit and
/// waits for the copy. A page is busy only while one put or get copies it
/// (one per core at most), so a few skips find a free fit when one exists.
pub const MAX_COPY_SKIPS: usize = 4;

/// A GCMA area over the frames of one cleancache pool.
///
/// Invariant (under the one lock): page `i` of the pool is `TakenBack` in
/// the backend if and only if bit `i` of the allocation bitmap is set. Hence
/// a take-back of a page outside every allocation always succeeds, and an
/// allocation cannot fail while the request fits a free range.
#[derive(Clone, Debug)]
pub struct GcmaArea {
    book: RangeBook,
    pool: PoolId,
    stats: AreaStats,
}

impl GcmaArea {
    /// An area over `pool`, whose pages must all be lendable (none taken back).
    pub fn new<B: PoolBackend + ?Sized>(backend: &B, pool: PoolId) -> Result<Self, ContigError> {
        let (base_pfn, pages) = backend.pool_span(pool)?;
        for page in 0..pages {
            if backend.page_state(pool, page)? == PageState::TakenBack {
                return Err(PoolError::AlreadyTakenBack { pool, page }.into());
            }
        }
        Ok(GcmaArea {
            book: RangeBook::new(base_pfn, pages),
            pool,
            stats: AreaStats::new(AreaKind::Gcma, pages),
        })
    }

    /// The cleancache pool of the area.
    pub fn pool(&self) -> PoolId {
        self.pool
    }

    /// First pfn and number of pages.
    pub fn span(&self) -> (Pfn, usize) {
        (self.book.base_pfn, self.book.pages)
    }

    /// Allocates `count` pages aligned to `align` pages (physical pfn):
    /// first fit in the bitmap, preferring a fit with no cleancache copy in
    /// flight (see [`MAX_COPY_SKIPS`]), then the range is taken back from
    /// cleancache in one [`PoolBackend::take_back_range`] (all or nothing:
    /// on an error no page stays taken back and the bitmap is unchanged).
    pub fn alloc<B: PoolBackend + ?Sized>(
        &mut self,
        backend: &mut B,
        count: usize,
        align: usize,
    ) -> Result<Pfn, ContigError> {
        let r = self.try_alloc(backend, count, align);
        match r {
            Ok(_) => self.stats.allocations += 1,
            Err(_) => self.stats.failures += 1,
        }
        r
    }

    fn try_alloc<B: PoolBackend + ?Sized>(
        &mut self,
        backend: &mut B,
        count: usize,
        align: usize,
    ) -> Result<Pfn, ContigError> {
        self.book.validate(count, align)?;
        let first = self
            .book
            .find(0, count, align)
            .ok_or(ContigError::NoSpace { count, align })?;
        let start = self.fit_without_copies(backend, first, count, align);
        let dropped = backend.take_back_range(self.pool, start, count)?;
        self.book.commit(start, count);
        self.stats.dropped_copies += dropped as u64;
        Ok(self.book.pfn(start))
    }

    /// From the first fit `first` on, the first fit that holds no page a
    /// cleancache copy is in flight on: past each such page, at most
    /// [`MAX_COPY_SKIPS`] times; `first` itself if there is none (the
    /// caller then waits for the copy, one page copy on another core).
    fn fit_without_copies<B: PoolBackend + ?Sized>(
        &self,
        backend: &B,
        first: usize,
        count: usize,
        align: usize,
    ) -> usize {
        let mut start = first;
        for _ in 0..MAX_COPY_SKIPS {
            let Some(busy) = backend.first_copy_in_flight(self.pool, start, count) else {
                return start;
            };
            match self.book.find(busy + 1, count, align) {
                Some(next) => start = next,
                None => return first,
            }
        }
        match backend.first_copy_in_flight(self.pool, start, count) {
            None => start,
            Some(_) => first,
        }
    }

    /// Allocates exactly `pfn .. pfn + count` (inside the area, checked by
    /// the caller): all or nothing, as [`alloc`](Self::alloc).
    pub fn alloc_at<B: PoolBackend + ?Sized>(
        &mut self,
        backend: &mut B,
        pfn: Pfn,
        count: usize,
    ) -> Result<(), ContigError> {
        let r = self.book.check_range(pfn, count).and_then(|start| {
            let dropped = backend.take_back_range(self.pool, start, count)?;
            self.book.commit(start, count);
            self.stats.dropped_copies += dropped as u64;
            Ok(())
        });
        match r {
            Ok(()) => self.stats.allocations += 1,
            Err(_) => self.stats.failures += 1,
        }
        r
    }

    /// Frees the allocation `pfn, count` (exactly as allocated) and gives its
    /// pages back to cleancache in one [`PoolBackend::give_back_range`]: all
    /// or nothing (if a page is not taken back, nothing changes).
    pub fn free<B: PoolBackend + ?Sized>(
        &mut self,
        backend: &mut B,
        pfn: Pfn,
        count: usize,
    ) -> Result<(), ContigError> {
        let start = self.book.check_free(pfn, count)?;
        backend.give_back_range(self.pool, start, count)?;
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

    /// Statistics now; `cached` comes from the backend.
    pub fn stats<B: PoolBackend + ?Sized>(&self, backend: &B) -> AreaStats {
        let mut s = self.stats;
        s.allocated = self.book.allocated();
        s.cached = backend.cached_pages(self.pool).unwrap_or(0);
        s.idle = s.size - s.allocated - s.cached;
        s
    }

    /// Checks the invariant against the backend: allocated exactly where
    /// taken back. Returns the first pfn that breaks it.
    pub fn check<B: PoolBackend + ?Sized>(&self, backend: &B) -> Result<(), Pfn> {
        for i in 0..self.book.pages {
            let taken = backend.page_state(self.pool, i) == Ok(PageState::TakenBack);
            if taken != self.book.used.get(i) {
                return Err(self.book.pfn(i));
            }
        }
        Ok(())
    }
}
