//! CMA area, the baseline: after Linux 6.12 `mm/cma.c` (`cma_alloc`,
//! `__cma_alloc`), `mm/page_alloc.c` (`alloc_contig_range_noprof`,
//! `__alloc_contig_migrate_range`), `mm/page_isolation.c`
//! (`start_isolate_page_range`) and `mm/migrate.c` (`migrate_pages`).
//!
//! Idle pages are lent to the kernel's page allocator as movable pages
//! ([`CmaArea::lend_page`] when ordinary memory runs short,
//! [`CmaArea::return_page`] when the user frees them). A contiguous
//! allocation is a [`CmaJob`] the caller drives one migration pass at a time
//! ([`CmaArea::step`]), so that the kernel can drop its lock and let other
//! tasks run between passes; [`CmaArea::alloc`] drives one to the end.
//!
//! # Rules (each with the Linux function it mirrors)
//!
//! 1. **Alignment** (`dma_alloc_contiguous` -> `cma_alloc_aligned`): a
//!    request of `count` pages is aligned to `1 << min(get_order(count *
//!    PAGE_SIZE), CONFIG_CMA_ALIGNMENT)` pages, CONFIG_CMA_ALIGNMENT = 8
//!    ([`linux_cma_align_pages`]); the kernel passes the same alignment to
//!    every allocator (GCMA, CMA, carveout) for the same request. The
//!    alignment applies to the physical pfn (`cma_bitmap_aligned_mask` and
//!    `cma_bitmap_aligned_offset`: mask `align - 1`, offset `base_pfn &
//!    (align - 1)`; one bitmap bit per page, `order_per_bit` = 0).
//! 2. **Candidates** (`__cma_alloc`): first fit in the bitmap of allocated
//!    pages from `start` (`bitmap_find_next_zero_area_off`); the range is
//!    marked in the bitmap before it is emptied (`bitmap_set`) and cleared
//!    again if emptying fails (`cma_clear_bitmap`). On `-EBUSY` the search
//!    goes on from the failed start plus the alignment (`start = bitmap_no
//!    + mask + 1`); any other error ends the allocation.
//! 3. **Isolation** (`start_isolate_page_range`, MIGRATE_ISOLATE): while a
//!    candidate is being emptied, [`lend_page`](CmaArea::lend_page) never
//!    lends a page inside it (its bits are set in the allocation bitmap)
//!    and no other job picks it. The isolation is undone on every exit
//!    path: success (the range becomes the allocation), `-EBUSY` (range
//!    given up), `-ENOMEM` and [`CmaArea::abort`]
//!    (`undo_isolate_page_range`).
//! 4. **Clean pages dropped, the rest migrated** (`__alloc_contig_migrate_range`
//!    -> `reclaim_clean_pages_from_list`, then `migrate_pages` in
//!    MIGRATE_SYNC): the [`Migrator`] drops a clean unpinned page-cache page
//!    ([`Moved::Dropped`]), waits for a locked or under-write-back page as
//!    MIGRATE_SYNC does (`folio_lock`, `folio_wait_writeback`) and copies
//!    what cannot be dropped, dirty pages included ([`Moved::Copied`]); a
//!    page with extra references (pinned) is [`MigrateError::Busy`]
//!    (`-EAGAIN` in `migrate_folio_move`).
//! 5. **Passes** (`__alloc_contig_migrate_range`'s `tries`, `migrate_pages`'
//!    NR_MAX_MIGRATE_PAGES_RETRY): up to [`MIGRATE_ATTEMPTS`] = 5 migrate
//!    attempts of up to [`MIGRATE_PASSES`] = 10 passes each over the pages
//!    still busy (6.12's `migrate_pages_sync`: NR_MAX_MIGRATE_ASYNC_RETRY
//!    = 3 asynchronous passes, then 7 synchronous ones, per attempt), i.e.
//!    [`DEFAULT_MAX_PASSES`] = 50 passes, one per
//!    [`step`](CmaArea::step); between two steps the caller releases its
//!    lock and lets the scheduler run (Linux's `cond_resched()` in the
//!    migration loop). A range whose page stays busy is given up
//!    (`-EBUSY`). Pages moved out of a range that is then given up stay
//!    idle in the area: they are never moved twice.
//! 6. **No memory** (`migrate_pages` returns `-ENOMEM`, `__alloc_contig_migrate_range`
//!    breaks at once): the allocation fails with
//!    [`ContigError::MigrationNoMemory`]; pages not yet moved stay lent.
//! 7. **Android retry policy** ([`CmaPolicy::AndroidRetry`]): when the
//!    search runs out of candidates and the last range was busy, sleep
//!    [`ANDROID_RETRY_SLEEP_MS`] = 100 ms and rescan from the start, at most
//!    [`ANDROID_MAX_RETRIES`] = 5 times. This is the Android common kernel's
//!    `__cma_alloc`, as read in BayLibre/android_kernel_common mm/cma.c
//!    (commit 00c86a52b36c93bf4b288fc28dc874fd33205390): `int max_retries =
//!    5;` and, when `bitmap_find_next_zero_area_off` finds nothing with
//!    `(num_attempts < max_retries) && (ret == -EBUSY)` and no
//!    `__GFP_NORETRY`: `start = 0; ret = -ENOMEM;
//!    schedule_timeout_killable(msecs_to_jiffies(100)); num_attempts++;`
//!    (the comment there: a page "may be momentarily pinned by some other
//!    process which has been scheduled out ... Sleep for 100ms and retry
//!    the allocation"). It comes from Chris Goldsworthy's patch "ANDROID:
//!    mm: cma: retry allocations in cma_alloc" (2020), posted upstream as
//!    "mm: cma: indefinitely retry allocations in cma_alloc" and not
//!    merged. The sleep is the caller's ([`CmaStep::Sleep`]).
//!
//! Locking: none inside (see the crate rules). A job's candidate range is
//! owned by the job between steps: the caller may drop its lock between
//! [`step`](CmaArea::step) calls, and lends, returns, frees and other jobs
//! may run meanwhile.

use alloc::vec::Vec;

use crate::bitmap::Bitmap;
use crate::book::RangeBook;
use crate::{AreaKind, AreaStats, ContigError, MigrateError, Migrator, Moved, Pfn};

/// Linux CONFIG_CMA_ALIGNMENT (default 8): the largest alignment order of a
/// `dma_alloc_contiguous` request.
pub const CMA_ALIGNMENT: u32 = 8;
/// `__alloc_contig_migrate_range`'s `tries`: migrate attempts per range.
pub const MIGRATE_ATTEMPTS: u32 = 5;
/// `migrate_pages`' NR_MAX_MIGRATE_PAGES_RETRY: passes per attempt.
pub const MIGRATE_PASSES: u32 = 10;
/// Passes over a range before a busy page makes CMA give the range up.
pub const DEFAULT_MAX_PASSES: u32 = MIGRATE_ATTEMPTS * MIGRATE_PASSES;
/// Android `__cma_alloc`: rescans after a busy failure.
pub const ANDROID_MAX_RETRIES: u32 = 5;
/// Android `__cma_alloc`: sleep before each rescan, milliseconds.
pub const ANDROID_RETRY_SLEEP_MS: u64 = 100;

/// Alignment in pages that Linux uses for a `dma_alloc_contiguous` request
/// of `count` pages: `1 << min(get_order(count * PAGE_SIZE),
/// CONFIG_CMA_ALIGNMENT)` (rule 1). `count` 0 is treated as 1.
pub fn linux_cma_align_pages(count: usize) -> usize {
    // get_order(n pages) = ceil(log2(n)).
    let order = count.max(1).next_power_of_two().trailing_zeros();
    1 << order.min(CMA_ALIGNMENT)
}

/// Which CMA allocation policy a job follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CmaPolicy {
    /// Linux 6.12 `cma_alloc`: one scan of the candidates.
    #[default]
    Linux,
    /// Android vendors' `__cma_alloc`: sleep and rescan on `-EBUSY` (rule 7).
    AndroidRetry,
}

impl CmaPolicy {
    /// Name of the policy's allocator row in reports.
    pub const fn row_name(self) -> &'static str {
        match self {
            CmaPolicy::Linux => "cma",
            CmaPolicy::AndroidRetry => "cma-retry",
        }
    }
}

/// What the caller does after a [`CmaArea::step`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmaStep {
    /// More passes to go: let other tasks run (`cond_resched`), then step
    /// again.
    Again,
    /// Android policy: sleep `ms` milliseconds, then step again.
    Sleep { ms: u64 },
    /// Finished: the first pfn of the allocation, or why it failed.
    Done(Result<Pfn, ContigError>),
}

/// The range a job is emptying now.
#[derive(Clone, Debug)]
struct Candidate {
    start: usize,
    /// Lent pages of the range not yet moved out.
    pending: Vec<usize>,
    /// Passes made over the range.
    passes: u32,
}

/// One contiguous allocation in progress (see [`CmaArea::begin`]). A job
/// must be driven until [`CmaStep::Done`] or given to [`CmaArea::abort`]:
/// until then its candidate range stays isolated.
#[must_use = "a CMA job holds an isolated range until it is done or aborted"]
#[derive(Clone, Debug)]
pub struct CmaJob {
    count: usize,
    align: usize,
    policy: CmaPolicy,
    /// Where the next candidate search starts (`start` in `__cma_alloc`).
    from: usize,
    /// Ranges given up in this scan, and in all scans.
    busy_this_scan: usize,
    given_up: usize,
    /// Android policy: rescans made (`num_attempts`).
    rescans: u32,
    cur: Option<Candidate>,
    /// The outcome, once finished.
    result: Option<Result<Pfn, ContigError>>,
}

impl CmaJob {
    /// Pages requested.
    pub fn count(&self) -> usize {
        self.count
    }
    /// Alignment in pages.
    pub fn align(&self) -> usize {
        self.align
    }
    /// The job's policy.
    pub fn policy(&self) -> CmaPolicy {
        self.policy
    }
    /// Ranges given up so far.
    pub fn ranges_given_up(&self) -> usize {
        self.given_up
    }
    /// Android policy: sleeps and rescans so far.
    pub fn rescans(&self) -> u32 {
        self.rescans
    }
    /// The candidate range being emptied (first pfn index in the area,
    /// pages), if any.
    pub fn isolated(&self) -> Option<(usize, usize)> {
        self.cur.as_ref().map(|c| (c.start, self.count))
    }
    /// Whether the job has finished.
    pub fn is_done(&self) -> bool {
        self.result.is_some()
    }
}

/// A CMA area.
#[derive(Clone, Debug)]
pub struct CmaArea {
    /// `book.used` holds the allocated pages and the isolated ranges.
    book: RangeBook,
    /// Pages of ranges isolated by running jobs (a subset of `book.used`).
    isolated: Bitmap,
    /// Pages lent to the page allocator. Never overlaps an allocation; may
    /// overlap an isolated range (pages waiting to be moved out).
    lent: Bitmap,
    /// Lowest index that may be idle and not lent: every page below it is
    /// allocated, isolated or lent (the lending hint, O(1) amortised).
    lend_hint: usize,
    max_passes: u32,
    stats: AreaStats,
}

impl CmaArea {
    /// An area of `pages` pages from `base_pfn`, all idle.
    pub fn new(base_pfn: Pfn, pages: usize) -> Self {
        CmaArea {
            book: RangeBook::new(base_pfn, pages),
            isolated: Bitmap::new(pages),
            lent: Bitmap::new(pages),
            lend_hint: 0,
            max_passes: DEFAULT_MAX_PASSES,
            stats: AreaStats::new(AreaKind::Cma, pages),
        }
    }

    /// Sets the number of migration passes before a range is given up (at
    /// least 1; default [`DEFAULT_MAX_PASSES`]).
    pub fn set_max_passes(&mut self, passes: u32) {
        self.max_passes = passes.max(1);
    }

    /// First pfn and number of pages.
    pub fn span(&self) -> (Pfn, usize) {
        (self.book.base_pfn, self.book.pages)
    }

    /// Lends the lowest idle page (not allocated, not isolated, not lent)
    /// to the page allocator, if any. Word-wise scan from a hint that only
    /// moves back when a page becomes lendable below it: O(1) amortised.
    pub fn lend_page(&mut self) -> Option<Pfn> {
        let i = self
            .book
            .used
            .next_clear_in_both(&self.lent, self.lend_hint)?;
        self.lent.set(i);
        self.lend_hint = i + 1;
        self.stats.lends += 1;
        Some(self.book.pfn(i))
    }

    /// A page at index `i` may have become lendable.
    fn lendable_again(&mut self, i: usize) {
        self.lend_hint = self.lend_hint.min(i);
    }

    /// The page allocator no longer uses the lent page `pfn`: it is idle
    /// again.
    pub fn return_page(&mut self, pfn: Pfn) -> Result<(), ContigError> {
        if !self.is_lent(pfn) {
            return Err(ContigError::NotLent { pfn });
        }
        let i = (pfn - self.book.base_pfn) as usize;
        self.lent.clear(i);
        self.lendable_again(i);
        self.stats.returns += 1;
        Ok(())
    }

    /// Whether `pfn` is lent now.
    pub fn is_lent(&self, pfn: Pfn) -> bool {
        self.book.contains_pfn(pfn) && self.lent.get((pfn - self.book.base_pfn) as usize)
    }

    /// Whether `pfn` is inside an allocation of this area.
    pub fn is_allocated(&self, pfn: Pfn) -> bool {
        self.book.contains_pfn(pfn) && {
            let i = (pfn - self.book.base_pfn) as usize;
            self.book.used.get(i) && !self.isolated.get(i)
        }
    }

    /// Whether `pfn` is inside a range a job is emptying now.
    pub fn is_isolated(&self, pfn: Pfn) -> bool {
        self.book.contains_pfn(pfn) && self.isolated.get((pfn - self.book.base_pfn) as usize)
    }

    /// Starts an allocation of `count` pages aligned to `align` pages
    /// (physical pfn) under `policy`; drive it with [`step`](Self::step).
    pub fn begin(
        &mut self,
        count: usize,
        align: usize,
        policy: CmaPolicy,
    ) -> Result<CmaJob, ContigError> {
        if let Err(e) = self.book.validate(count, align) {
            self.stats.failures += 1;
            return Err(e);
        }
        Ok(CmaJob {
            count,
            align,
            policy,
            from: 0,
            busy_this_scan: 0,
            given_up: 0,
            rescans: 0,
            cur: None,
            result: None,
        })
    }

    /// Allocates `count` pages aligned to `align` pages with the Linux
    /// policy, driving a job to the end without letting anyone run between
    /// passes (for callers without a scheduler, and tests).
    pub fn alloc(
        &mut self,
        migrator: &mut dyn Migrator,
        count: usize,
        align: usize,
    ) -> Result<Pfn, ContigError> {
        let mut job = self.begin(count, align, CmaPolicy::Linux)?;
        loop {
            if let CmaStep::Done(r) = self.step(&mut job, migrator) {
                return r;
            }
        }
    }

    /// One step of `job`: picks the next candidate if there is none (and
    /// isolates it), then makes one migration pass over its pending pages.
    /// A finished job answers its outcome again (counted once).
    pub fn step(&mut self, job: &mut CmaJob, migrator: &mut dyn Migrator) -> CmaStep {
        if let Some(r) = job.result {
            return CmaStep::Done(r);
        }
        if job.cur.is_none() {
            match self.book.find(job.from, job.count, job.align) {
                Some(start) => self.isolate(job, start),
                None => {
                    if job.policy == CmaPolicy::AndroidRetry
                        && job.busy_this_scan > 0
                        && job.rescans < ANDROID_MAX_RETRIES
                    {
                        job.rescans += 1;
                        self.stats.rescans += 1;
                        job.busy_this_scan = 0;
                        job.from = 0;
                        return CmaStep::Sleep {
                            ms: ANDROID_RETRY_SLEEP_MS,
                        };
                    }
                    return self.finish(job, Err(self.final_error(job)));
                }
            }
        }
        let cand = job.cur.as_mut().expect("candidate isolated above");
        cand.passes += 1;
        let mut still = Vec::new();
        for &page in &cand.pending {
            if !self.lent.get(page) {
                // Returned by its user meanwhile: nothing to move.
                continue;
            }
            let pfn = self.book.pfn(page);
            match migrator.migrate(pfn) {
                Ok(moved) => {
                    self.lent.clear(page);
                    match moved {
                        Moved::Dropped => self.stats.dropped_clean += 1,
                        Moved::Copied => self.stats.migrated += 1,
                    }
                }
                Err(MigrateError::Busy) => {
                    self.stats.busy_retries += 1;
                    still.push(page);
                }
                Err(MigrateError::NoMemory) => {
                    self.unisolate(job);
                    return self.finish(job, Err(ContigError::MigrationNoMemory { pfn }));
                }
            }
        }
        let cand = job.cur.as_mut().expect("candidate still isolated");
        cand.pending = still;
        if cand.pending.is_empty() {
            let start = cand.start;
            job.cur = None;
            self.isolated.clear_range(start, job.count);
            self.book.commit_reserved(start, job.count);
            return self.finish(job, Ok(self.book.pfn(start)));
        }
        if cand.passes >= self.max_passes {
            // -EBUSY: clear the range, try from start + alignment.
            let start = cand.start;
            self.unisolate(job);
            job.busy_this_scan += 1;
            job.given_up += 1;
            self.stats.ranges_given_up += 1;
            job.from = start + job.align;
        }
        CmaStep::Again
    }

    /// Ends `job` early (the caller gives up): its range, if any, is no
    /// longer isolated; the pages already moved out stay idle. Counts as a
    /// failed allocation unless the job had finished.
    pub fn abort(&mut self, job: &mut CmaJob) {
        if job.result.is_some() {
            return;
        }
        self.unisolate(job);
        job.result = Some(Err(self.final_error(job)));
        self.stats.failures += 1;
    }

    fn final_error(&self, job: &CmaJob) -> ContigError {
        if job.given_up > 0 {
            ContigError::Busy {
                ranges_given_up: job.given_up,
            }
        } else {
            ContigError::NoSpace {
                count: job.count,
                align: job.align,
            }
        }
    }

    fn finish(&mut self, job: &mut CmaJob, r: Result<Pfn, ContigError>) -> CmaStep {
        job.result = Some(r);
        match r {
            Ok(_) => self.stats.allocations += 1,
            Err(_) => self.stats.failures += 1,
        }
        CmaStep::Done(r)
    }

    /// Marks `start .. start + count` as the job's (rule 3) and lists its
    /// lent pages.
    fn isolate(&mut self, job: &mut CmaJob, start: usize) {
        self.book.used.set_range(start, job.count);
        self.isolated.set_range(start, job.count);
        let mut pending = Vec::new();
        let mut i = start;
        while let Some(l) = self.lent.next_set(i, start + job.count) {
            pending.push(l);
            i = l + 1;
        }
        job.cur = Some(Candidate {
            start,
            pending,
            passes: 0,
        });
    }

    /// Undoes the job's isolation, if any; its idle pages are lendable
    /// again.
    fn unisolate(&mut self, job: &mut CmaJob) {
        if let Some(c) = job.cur.take() {
            self.isolated.clear_range(c.start, job.count);
            self.book.used.clear_range(c.start, job.count);
            self.lendable_again(c.start);
        }
    }

    /// Frees the allocation `pfn, count` (exactly as allocated); its pages
    /// become idle and lendable.
    pub fn free(&mut self, pfn: Pfn, count: usize) -> Result<(), ContigError> {
        let start = self.book.check_free(pfn, count)?;
        self.book.release(start);
        self.lendable_again(start);
        self.stats.frees += 1;
        Ok(())
    }

    /// Live allocations as (first pfn, count).
    pub fn allocations(&self) -> impl Iterator<Item = (Pfn, usize)> + '_ {
        self.book.live().map(|(s, c)| (self.book.pfn(s), c))
    }

    /// Statistics now. Pages of isolated ranges count as lent or idle.
    pub fn stats(&self) -> AreaStats {
        let mut s = self.stats;
        s.allocated = self.book.allocated() - self.isolated.count_ones();
        s.lent = self.lent.count_ones();
        s.idle = s.size - s.allocated - s.lent;
        s
    }
}
