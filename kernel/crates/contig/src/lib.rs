//! Contiguous allocation from reserved areas, one interface over three kinds:
//!
//! * [`GcmaArea`]: the area's frames are a cleancache pool. A contiguous
//!   allocation takes its pages back from cleancache, dropping whatever clean
//!   copies they held: no I/O, no copy, no waiting, so it cannot fail while
//!   the request fits a free range of the area's bitmap.
//! * [`CmaArea`]: the baseline, after Linux 6.12 `mm/cma.c` and
//!   `alloc_contig_range()` (rules in the `cma` module): free pages are lent
//!   to the kernel's page allocator as movable pages; a contiguous
//!   allocation isolates a candidate range (stepped by the request's
//!   alignment, [`linux_cma_align_pages`]), drops its clean lent pages and
//!   migrates the others out through a [`Migrator`], retries pinned (busy)
//!   pages up to 5 x 10 passes, then gives the range up and tries the next
//!   one. [`Areas::cma_begin`] / [`Areas::cma_step`] run it one pass at a
//!   time so that the kernel can release its lock in between;
//!   [`CmaPolicy::AndroidRetry`] adds Android's sleep-and-rescan on busy.
//! * [`CarveoutArea`]: a static carveout, never lent to anyone.
//!
//! [`Areas`] holds up to [`MAX_AREAS`] named areas of any kind behind
//! [`Areas::alloc`] / [`Areas::free`], counts per-area statistics
//! ([`AreaStats`]), prints them ([`Areas::write_table`],
//! [`Areas::write_machine`]) and reports memory ([`MemReport`]).
//!
//! ```
//! use contig::{AreaKind, Areas, Cleancache, NoMigrator, Pfn, Select};
//! # let frames: &'static mut [u8] = Box::leak(vec![0u8; 16 * 4096].into_boxed_slice());
//! # let base = core::ptr::NonNull::new(frames.as_mut_ptr()).unwrap();
//! let mut areas: Areas = Areas::new(Cleancache::new());
//! // SAFETY: `base` maps 16 frames from pfn 0x40000 that nobody else uses.
//! let gcma = unsafe { areas.add_gcma_memory("gcma", base, Pfn(0x40000), 16) }.unwrap();
//! // The page cache evicts a clean page: cleancache keeps a copy.
//! let fs = areas.backend_mut().register_fs(0); // the page cache's mount
//! areas.backend_mut().put_page(fs, 7, 0, &[1u8; 4096]);
//! // A contiguous allocation drops it at once.
//! let a = areas.alloc(Select::Kind(AreaKind::Gcma), 16, 16, &mut NoMigrator).unwrap();
//! assert_eq!((a.area, a.pfn), (gcma, Pfn(0x40000)));
//! assert!(!areas.backend().contains(fs, 7, 0));
//! areas.free(a).unwrap();
//! assert_eq!(areas.backend().stats().lendable_now, 16);
//! ```
//!
//! # Rules
//!
//! * Every allocation is all or nothing. A GCMA allocation takes its range
//!   back with one [`PoolBackend::take_back_range`] and a free gives it back
//!   with one [`PoolBackend::give_back_range`]: [`Cleancache`] checks the
//!   whole range, then changes it 64 pages (one bitmap word) at a time, so
//!   a refused range
//!   changes nothing; a backend going page by page (the default methods)
//!   gives back the pages it already took when a take-back fails half way,
//!   and takes back again what it gave if a give-back fails half way.
//! * A free must name exactly one live allocation (`pfn`, `count`): a double
//!   free, a range never allocated and a part of an allocation (or a range
//!   spanning several) are distinct errors and change nothing.
//! * Alignment is in pages, a power of two, and applies to the *physical* pfn
//!   of the first page, not to its index in the area.
//! * Locking: none inside. The kernel holds one lock around [`Areas`], which
//!   owns the cleancache ([`Areas::backend_mut`] is how the page cache hooks
//!   reach it), so page cache hooks, take-backs and allocations are
//!   serialized. The [`Migrator`] runs inside [`Areas::alloc`] or
//!   [`Areas::cma_step`] under that lock and cannot call back into `Areas`
//!   (it is passed as `&mut dyn Migrator` while `Areas` is mutably
//!   borrowed). Between two `cma_step` calls the lock may be released: the
//!   job's candidate range stays isolated (never lent, never picked by
//!   another allocation) until the job is done or aborted.
//!
//! # Accounting
//!
//! Each area's pages are always in exactly one of these states, and the
//! identities hold at every moment (checked by property tests):
//!
//! | kind     | identity                            | meaning of the states |
//! |----------|-------------------------------------|-----------------------|
//! | GCMA     | `allocated + cached + idle == size` | `cached`: holds a cleancache copy; `idle`: empty pool page |
//! | CMA      | `allocated + lent + idle == size`   | `lent`: in use as a movable page by the page allocator's user |
//! | carveout | `allocated + idle == size`          | `idle`: reserved, usable only by this carveout |
//!
//! How they enter the kernel's memory report (see [`MemReport`]):
//!
//! * **GCMA** memory is a carveout: it is *not* part of the system's RAM total
//!   and never *free* for ordinary allocations (no ordinary allocation can
//!   ever get it). `cached` pages are reported as
//!   cache (like `Cached:` in meminfo) and as *available for contiguous
//!   allocation*, because GCMA drops them instantly; `idle` pages are free
//!   for GCMA and cleancache only. GCMA `allocated` pages belong to the
//!   driver that allocated them and are charged to it, not to the page cache.
//! * **CMA** memory is part of the system's RAM total (as Linux counts CMA in
//!   `MemTotal` and `CmaTotal`); `idle` pages are system free memory (Linux:
//!   `MemFree` includes `CmaFree`); `lent` pages are used memory charged to
//!   their user (page cache); `allocated` pages are charged to the driver.
//!   For contiguous allocation `idle + lent` is only *possibly* available:
//!   lent pages need migration, which can fail.
//! * **Carveout** memory is not part of the system's RAM total; `idle` pages
//!   are reported as reserved-idle (wasted while idle), never free.
//!
//! Summed over all areas: `total == allocated + cached + lent + free +
//! reserved_idle`, with `free` = GCMA idle + CMA idle ([`MemReport::free`]).
//!
//! # Keeping frame descriptors in sync
//!
//! Lock order: the areas lock, then the frame table lock; the kernel never
//! calls into [`Areas`] with the frame table locked.
//!
//! * GCMA: install a cleancache [`Observer`](cleancache::Observer) with
//!   `areas.backend_mut().set_observer(..)`; it is told every pool page
//!   change: `Free` -> `ReservedArea`, `Cached` -> `Cleancache`, `TakenBack`
//!   -> `Allocated`; a GCMA `alloc`/`free` arrives as one
//!   [`on_range`](cleancache::Observer::on_range) for the whole range.
//!   GCMA `alloc`/`free` need nothing more.
//! * CMA: the page allocator marks the pfn from `lend_page` as its own
//!   (`PageCache`) and the pfn it passes to `return_page` as `ReservedArea`;
//!   the [`Migrator`] marks the old frame `ReservedArea` when a migration
//!   succeeds (that is its "free the old frame"); the range from a
//!   successful `alloc` becomes `Allocated`, and `ReservedArea` after `free`.
//! * Carveout: `alloc` -> `Allocated`, `free` -> `ReservedArea`.
//!
//! [`Areas::pfn_state`] gives the state of any reserved pfn, for a self-test
//! that compares every reserved frame's descriptor with it.

#![no_std]

extern crate alloc;

mod areas;
mod bitmap;
mod book;
mod carveout;
mod cma;
mod gcma;
mod memreport;

pub use areas::{
    AllocStep, Allocation, AreaId, AreaKind, AreaStats, Areas, CmaAlloc, MAX_AREAS, PfnState,
    Select,
};
pub use bitmap::Bitmap;
pub use carveout::CarveoutArea;
pub use cleancache::{Cleancache, PageState, PoolError, PoolId, Reclaimed};
pub use cma::{
    ANDROID_MAX_RETRIES, ANDROID_RETRY_SLEEP_MS, CMA_ALIGNMENT, CmaArea, CmaJob, CmaPolicy,
    CmaStep, DEFAULT_MAX_PASSES, MIGRATE_ATTEMPTS, MIGRATE_PASSES, linux_cma_align_pages,
};
pub use gcma::{GcmaArea, MAX_COPY_SKIPS};
pub use memreport::{KindReport, MemReport};

use core::fmt;

/// Physical page frame number: the `pfn` crate's newtype, through
/// `cleancache` (one type for every crate of the kernel).
pub use cleancache::Pfn;

/// Errors of the contiguous allocators and of the registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContigError {
    /// A request for zero pages.
    ZeroCount,
    /// More pages than the area has.
    TooLarge { count: usize, size: usize },
    /// Alignment zero, not a power of two, or larger than the area.
    BadAlignment { align: usize, size: usize },
    /// No free range of `count` pages aligned to `align` is left.
    NoSpace { count: usize, align: usize },
    /// The range was an allocation that is already freed.
    DoubleFree { pfn: Pfn, count: usize },
    /// The range was never allocated (or lies outside the area).
    NotAllocated { pfn: Pfn, count: usize },
    /// The range is a part of an allocation, or spans more than one.
    PartialFree { pfn: Pfn, count: usize },
    /// CMA: every candidate range held a page that stayed busy (pinned) after
    /// the retry passes; `ranges_given_up` ranges were tried.
    Busy { ranges_given_up: usize },
    /// CMA: the migrator found no memory to move the page at `pfn` to.
    MigrationNoMemory { pfn: Pfn },
    /// No area has this name, kind or id.
    UnknownArea,
    /// The registry already holds [`MAX_AREAS`] areas.
    TooManyAreas,
    /// An area with this name exists.
    DuplicateName,
    /// The new area overlaps an existing one (or has no pages / wraps).
    BadRange { base_pfn: Pfn, pages: usize },
    /// CMA: `return_page` of a page that is not lent.
    NotLent { pfn: Pfn },
    /// GCMA: cleancache refused a take-back or give-back (the pages already
    /// taken were given back: nothing changed).
    Pool(PoolError),
    /// [`Areas::alloc_range`]: no page of the range lies in an area.
    RangeOutside { pfn: Pfn, count: usize },
    /// [`Areas::alloc_range`]: the range overlaps an area but is not inside
    /// one (it straddles two, or runs past an area's end).
    RangeSpansAreas { pfn: Pfn, count: usize },
    /// [`Areas::alloc_range`]: the page at `first` is already allocated.
    RangeAllocated { pfn: Pfn, count: usize, first: Pfn },
    /// [`Areas::alloc_range`]: the range is in a CMA area (explicit ranges
    /// are for GCMA areas and carveouts, which never fail on a pin).
    RangeInCma { pfn: Pfn, count: usize },
}

impl From<PoolError> for ContigError {
    fn from(e: PoolError) -> Self {
        ContigError::Pool(e)
    }
}

impl fmt::Display for ContigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ContigError::*;
        match *self {
            ZeroCount => f.write_str("allocation of zero pages"),
            TooLarge { count, size } => {
                write!(f, "{count} pages requested from an area of {size} pages")
            }
            BadAlignment { align, size } => write!(
                f,
                "alignment {align} is not a power of two no larger than the area ({size} pages)"
            ),
            NoSpace { count, align } => {
                write!(f, "no free range of {count} pages aligned to {align} pages")
            }
            DoubleFree { pfn, count } => {
                write!(f, "double free of {count} pages at pfn {pfn:#x}")
            }
            NotAllocated { pfn, count } => {
                write!(f, "free of {count} pages at pfn {pfn:#x}: never allocated")
            }
            PartialFree { pfn, count } => write!(
                f,
                "free of {count} pages at pfn {pfn:#x}: not exactly one allocation"
            ),
            Busy { ranges_given_up } => write!(
                f,
                "busy: pinned pages in every candidate range ({ranges_given_up} given up)"
            ),
            MigrationNoMemory { pfn } => {
                write!(f, "no memory to migrate the page at pfn {pfn:#x}")
            }
            UnknownArea => f.write_str("unknown area"),
            TooManyAreas => write!(f, "more than {MAX_AREAS} areas"),
            DuplicateName => f.write_str("an area with this name exists"),
            BadRange { base_pfn, pages } => write!(
                f,
                "area at pfn {base_pfn:#x} ({pages} pages) is empty or overlaps another"
            ),
            NotLent { pfn } => write!(f, "page at pfn {pfn:#x} is not lent"),
            Pool(e) => write!(f, "cleancache: {e}"),
            RangeOutside { pfn, count } => {
                write!(
                    f,
                    "range of {count} pages at pfn {pfn:#x} is outside every area"
                )
            }
            RangeSpansAreas { pfn, count } => write!(
                f,
                "range of {count} pages at pfn {pfn:#x} is not inside one area"
            ),
            RangeAllocated { pfn, count, first } => write!(
                f,
                "range of {count} pages at pfn {pfn:#x}: page {first:#x} is allocated"
            ),
            RangeInCma { pfn, count } => write!(
                f,
                "range of {count} pages at pfn {pfn:#x} is in a CMA area (explicit ranges: GCMA and carveouts)"
            ),
        }
    }
}

/// Why a [`Migrator`] could not move a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrateError {
    /// The page is pinned (under I/O, held by a reader): retry later.
    Busy,
    /// No replacement frame could be found, even after evicting.
    NoMemory,
}

/// How a [`Migrator`] emptied a lent page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Moved {
    /// A clean page-cache page, dropped without a copy (Linux
    /// `reclaim_clean_pages_from_list`): it is read again on its next use.
    Dropped,
    /// Copied to a frame outside every CMA area (`migrate_pages`), dirty
    /// pages included.
    Copied,
}

/// Moves a lent CMA page out of the area; implemented by the kernel.
///
/// `migrate(pfn)` is called only for pages the CMA area has lent (through
/// `lend_page`) and not had returned. As Linux's
/// `__alloc_contig_migrate_range` in MIGRATE_SYNC mode, the kernel first
/// waits for a locked or under-write-back page; then a clean, unpinned
/// page-cache page is dropped (`Ok(Moved::Dropped)`: unlinked from the page
/// cache, nothing copied), and any other movable page is copied
/// (`Ok(Moved::Copied)`: a replacement frame allocated *outside every CMA
/// area* (Linux allocates migration targets outside the isolated range),
/// the page copied, the page cache index pointed at the copy). On `Ok` the
/// kernel dropped every reference to `pfn`; the CMA area owns `pfn` again,
/// and the kernel must **not** call `return_page(pfn)` for it. A pinned page
/// is `Err(Busy)`. It runs under the areas lock: it must not call into
/// [`Areas`] or the cleancache (pages it evicts or drops are not put into
/// cleancache).
pub trait Migrator {
    fn migrate(&mut self, pfn: Pfn) -> Result<Moved, MigrateError>;
}

/// A migrator that can move nothing (every page is busy): for kernels or
/// tests without CMA areas, or with nothing ever lent.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoMigrator;

impl Migrator for NoMigrator {
    fn migrate(&mut self, _pfn: Pfn) -> Result<Moved, MigrateError> {
        Err(MigrateError::Busy)
    }
}

/// What a GCMA area needs from the cleancache that borrows its frames.
/// Implemented by [`Cleancache`]; tests wrap it to inject faults.
///
/// GCMA allocates and frees through the range methods. Their default
/// implementations go page by page through `take_back` / `give_back` and roll
/// back on a failure half way; [`Cleancache`] overrides them with its own
/// range operations, which check the whole range first and then change it a
/// bitmap word at a time, so a refused range changes nothing at all.
pub trait PoolBackend {
    /// First pfn and number of pages of the pool.
    fn pool_span(&self, pool: PoolId) -> Result<(Pfn, usize), PoolError>;
    /// State of one page of the pool.
    fn page_state(&self, pool: PoolId, page: usize) -> Result<PageState, PoolError>;
    /// Reclaims one page (bounded time, drops its copy).
    fn take_back(&mut self, pool: PoolId, page: usize) -> Result<Reclaimed, PoolError>;
    /// Returns one taken-back page to the pool.
    fn give_back(&mut self, pool: PoolId, page: usize) -> Result<(), PoolError>;
    /// Pages of the pool holding a cached copy now.
    fn cached_pages(&self, pool: PoolId) -> Result<usize, PoolError>;

    /// The first page of `first .. first + count` a cleancache put or get
    /// is copying outside the lock right now, if any (such a page, once
    /// taken back, is the copier's until that copy is finished; see the
    /// cleancache's `flight.rs`). Backends that copy under the lock: none.
    fn first_copy_in_flight(&self, _pool: PoolId, _first: usize, _count: usize) -> Option<usize> {
        None
    }

    /// Takes back pages `first .. first + count`, all or nothing; returns how
    /// many cached copies were dropped. On an error every page this call
    /// took is given back (the copies it dropped stay dropped).
    fn take_back_range(
        &mut self,
        pool: PoolId,
        first: usize,
        count: usize,
    ) -> Result<usize, PoolError> {
        let mut dropped = 0;
        for k in 0..count {
            match self.take_back(pool, first + k) {
                Ok(Reclaimed::DroppedCopy { .. }) => dropped += 1,
                Ok(Reclaimed::Idle) => {}
                Err(e) => {
                    for j in 0..k {
                        // Taken back just above under the same lock, so
                        // giving it back cannot fail.
                        let undo = self.give_back(pool, first + j);
                        debug_assert!(undo.is_ok(), "rollback give_back: {undo:?}");
                    }
                    return Err(e);
                }
            }
        }
        Ok(dropped)
    }

    /// Gives back pages `first .. first + count`, all or nothing: first
    /// checks that every page is taken back, then gives them back; if a
    /// give-back still fails, the pages already given are taken back again.
    fn give_back_range(
        &mut self,
        pool: PoolId,
        first: usize,
        count: usize,
    ) -> Result<(), PoolError> {
        for page in first..first + count {
            if self.page_state(pool, page)? != PageState::TakenBack {
                return Err(PoolError::NotTakenBack { pool, page });
            }
        }
        for k in 0..count {
            if let Err(e) = self.give_back(pool, first + k) {
                for j in 0..k {
                    // Given back just above and nobody ran since: the page
                    // is Free, so taking it back cannot fail.
                    let undo = self.take_back(pool, first + j);
                    debug_assert!(undo.is_ok(), "rollback take_back: {undo:?}");
                }
                return Err(e);
            }
        }
        Ok(())
    }
}

impl PoolBackend for Cleancache {
    fn pool_span(&self, pool: PoolId) -> Result<(Pfn, usize), PoolError> {
        Cleancache::pool_span(self, pool)
    }
    fn page_state(&self, pool: PoolId, page: usize) -> Result<PageState, PoolError> {
        Cleancache::page_state(self, pool, page)
    }
    fn take_back(&mut self, pool: PoolId, page: usize) -> Result<Reclaimed, PoolError> {
        Cleancache::take_back(self, pool, page)
    }
    fn give_back(&mut self, pool: PoolId, page: usize) -> Result<(), PoolError> {
        Cleancache::give_back(self, pool, page)
    }
    fn cached_pages(&self, pool: PoolId) -> Result<usize, PoolError> {
        Ok(self.pool_stats(pool)?.cached_now)
    }
    fn first_copy_in_flight(&self, pool: PoolId, first: usize, count: usize) -> Option<usize> {
        Cleancache::first_copy_in_flight(self, pool, first, count)
    }
    fn take_back_range(
        &mut self,
        pool: PoolId,
        first: usize,
        count: usize,
    ) -> Result<usize, PoolError> {
        Cleancache::take_back_range(self, pool, first, count)
    }
    fn give_back_range(
        &mut self,
        pool: PoolId,
        first: usize,
        count: usize,
    ) -> Result<(), PoolError> {
        Cleancache::give_back_range(self, pool, first, count)
    }
}

#[cfg(test)]
mod tests;
