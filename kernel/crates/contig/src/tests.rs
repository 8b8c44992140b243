//! Host tests: unit tests for every error and behaviour of the unified
//! interface, fault injection for GCMA's all-or-nothing rule, and property
//! tests against simple models.

extern crate std;

mod cma_linux;
mod flight;
mod props;
mod unit;

use super::*;
use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec;
use alloc::vec::Vec;
use cleancache::{FileId, FsId, PAGE_SIZE, PageBytes, PageIndex};
use core::ptr::NonNull;

/// The mount the tests' copies belong to: the first one registered on a
/// fresh cleancache, as [`mounted`] registers it (an `FsId` can only come
/// from `register_fs`).
fn fs() -> FsId {
    Cleancache::new().register_fs(0)
}

/// A cleancache with one filesystem mounted ([`fs`]).
fn mounted() -> Cleancache {
    let mut cc = Cleancache::new();
    assert_eq!(cc.register_fs(0), fs());
    cc
}

/// Leaked host memory standing in for reserved frames.
/// The frames of `range` in order (a `Range<Pfn>` is no iterator).
fn pfns(range: core::ops::Range<Pfn>) -> impl Iterator<Item = Pfn> + Clone {
    (range.start.0..range.end.0).map(Pfn)
}

fn mem(pages: usize) -> NonNull<u8> {
    let m: &'static mut [u8] = Box::leak(vec![0u8; pages * PAGE_SIZE as usize].into_boxed_slice());
    NonNull::new(m.as_mut_ptr()).unwrap()
}

/// A registry with one GCMA area `"gcma"` of `pages` pages from `base_pfn`.
fn gcma_registry(pages: usize, base_pfn: Pfn) -> (Areas, AreaId) {
    let mut areas = Areas::new(mounted());
    // SAFETY: freshly leaked memory of `pages` pages, never freed, touched by
    // nobody else.
    let id = unsafe { areas.add_gcma_memory("gcma", mem(pages), base_pfn, pages) }.unwrap();
    (areas, id)
}

fn content(file: FileId, index: PageIndex, version: u64) -> Box<PageBytes> {
    let mut p = Box::new([0u8; PAGE_SIZE as usize]);
    for (i, w) in p.chunks_exact_mut(8).enumerate() {
        let v = version ^ (file << 40) ^ ((index as u64) << 20) ^ (i as u64) << 3;
        w.copy_from_slice(&v.to_le_bytes());
    }
    p
}

/// Fills every cleancache page with copies of file 1000+.
fn fill_cleancache<B: PoolBackend>(areas: &mut Areas<B>, cc: impl Fn(&mut B) -> &mut Cleancache) {
    let size = cc(areas.backend_mut()).stats().lendable_now;
    for i in 0..size as u32 {
        cc(areas.backend_mut()).put_page(fs(), 1000, i, &content(1000, i, 0));
    }
    assert_eq!(cc(areas.backend_mut()).stats().cached_now, size);
}

/// Fake kernel side of CMA: the pages in use (lent and not returned), pins,
/// transient busy counts, pages with no migration target, and a record of
/// every migration.
#[derive(Default, Debug)]
struct FakeMigrator {
    in_use: BTreeSet<Pfn>,
    pinned: BTreeSet<Pfn>,
    busy_for: BTreeMap<Pfn, u32>,
    no_memory: BTreeSet<Pfn>,
    migrated: BTreeMap<Pfn, u32>,
    /// Clean page-cache pages: dropped, not copied.
    clean: BTreeSet<Pfn>,
    /// Every drop.
    dropped: BTreeMap<Pfn, u32>,
    /// Calls for pages that were not in use: must stay empty.
    bogus: Vec<Pfn>,
}

impl Migrator for FakeMigrator {
    fn migrate(&mut self, pfn: Pfn) -> Result<Moved, MigrateError> {
        if !self.in_use.contains(&pfn) {
            self.bogus.push(pfn);
            return Err(MigrateError::Busy);
        }
        if self.pinned.contains(&pfn) {
            return Err(MigrateError::Busy);
        }
        if let Some(n) = self.busy_for.get_mut(&pfn).filter(|n| **n > 0) {
            *n -= 1;
            return Err(MigrateError::Busy);
        }
        if self.no_memory.contains(&pfn) {
            return Err(MigrateError::NoMemory);
        }
        self.in_use.remove(&pfn);
        if self.clean.contains(&pfn) {
            *self.dropped.entry(pfn).or_default() += 1;
            return Ok(Moved::Dropped);
        }
        *self.migrated.entry(pfn).or_default() += 1;
        Ok(Moved::Copied)
    }
}

/// Cleancache with injected failures: the `n`-th take-back (or give-back)
/// from now fails as if the page were in the wrong state.
struct Faulty {
    cc: Cleancache,
    fail_take_in: Option<usize>,
    fail_give_in: Option<usize>,
}

fn countdown(c: &mut Option<usize>) -> bool {
    match c {
        Some(0) => {
            *c = None;
            true
        }
        Some(n) => {
            *n -= 1;
            false
        }
        None => false,
    }
}

/// A registry whose one GCMA area `"g"` (`pages` pages from `base_pfn`)
/// sits on a [`Faulty`] backend with no fault armed; its pool id and area.
fn faulty_gcma(pages: usize, base_pfn: Pfn) -> (Areas<Faulty>, PoolId, AreaId) {
    let mut cc = mounted();
    // SAFETY: freshly leaked memory of `pages` pages, never freed, touched
    // by nobody else.
    let pool = unsafe { cc.add_pool(mem(pages), pages, base_pfn) }.unwrap();
    let mut areas = Areas::new(Faulty {
        cc,
        fail_take_in: None,
        fail_give_in: None,
    });
    let g = areas.add_gcma("g", pool).unwrap();
    (areas, pool, g)
}

impl PoolBackend for Faulty {
    fn pool_span(&self, pool: PoolId) -> Result<(Pfn, usize), PoolError> {
        self.cc.pool_span(pool)
    }
    fn page_state(&self, pool: PoolId, page: usize) -> Result<PageState, PoolError> {
        self.cc.page_state(pool, page)
    }
    fn take_back(&mut self, pool: PoolId, page: usize) -> Result<Reclaimed, PoolError> {
        if countdown(&mut self.fail_take_in) {
            return Err(PoolError::AlreadyTakenBack { pool, page });
        }
        self.cc.take_back(pool, page)
    }
    fn give_back(&mut self, pool: PoolId, page: usize) -> Result<(), PoolError> {
        if countdown(&mut self.fail_give_in) {
            return Err(PoolError::NotTakenBack { pool, page });
        }
        self.cc.give_back(pool, page)
    }
    fn cached_pages(&self, pool: PoolId) -> Result<usize, PoolError> {
        self.cc.cached_pages(pool)
    }
}

mod range;
