//! The memory state: the reserved-memory areas (GCMA, CMA, carveouts) and
//! the cleancache they own, behind the areas lock; the page cache, once a
//! filesystem is mounted, and its environment, behind the memsys lock.
//!
//! Who owns what:
//! - The `Areas<Cleancache>` live in one static behind their own lock
//!   ([`areas`]). Nothing else holds them, and no pointer to them is kept.
//! - [`KernelPages`] is the page cache's environment: its frame allocator
//!   (ordinary memory up to a quota, then frames the CMA areas lend) and
//!   its cleancache hooks, in one value that reaches the areas through
//!   their lock, one short hold per call.
//! - [`MemSys`] holds `KernelPages` while no filesystem is mounted; at
//!   [`mount`] it moves into the page cache (as a `pagecache::Detachable`),
//!   which memsys then holds; [`unmount`] moves it back.
//!
//! Locks (ticket locks, IRQs masked: any core, waiters in arrival order;
//! every acquisition records its wait and hold time, `memsys.lock_*` and
//! `areas.lock_*`, and [`lock_contention`] / [`areas_contention`] give the
//! ticket counters):
//! - The memsys lock ([`lock`], [`with`]) covers the page cache and
//!   `KernelPages`. Its holds can be long (a 32-page readahead evicts and
//!   reads 32 pages), which is why it is not the areas lock.
//! - The areas lock covers the areas and the cleancache. Its holds are
//!   short: one allocation or free, one page lent, returned or
//!   invalidated, the bookkeeping of one cleancache put or get (two holds
//!   each: the 4 KiB copy runs between them, outside the lock), one CMA
//!   pass.
//! - Order: memsys, then areas, then the frame table (`mm::with_frames`);
//!   never the other way round. Code holding the areas lock takes no
//!   memsys lock and calls nothing that does.
//!
//! Who may touch what while an allocation runs:
//! - A GCMA or carveout allocation, and every free, is one areas-lock
//!   hold and takes no memsys lock: it never waits behind page-cache work,
//!   only behind another hold of the areas lock (for GCMA, the cleancache
//!   takes the range back or gets it back in one call; a put or a get holds
//!   it for bookkeeping only). GCMA prefers a fit with no page a put or a
//!   get is copying right then (`contig::MAX_COPY_SKIPS`); if the range it
//!   takes back still holds one, the allocation returns once that copy is
//!   finished ([`wait_for_copies`], outside the lock: one page copy
//!   on another core at most, counted by [`copy_waits`]).
//! - Cleancache copies are read only by the page cache (under the memsys
//!   lock); an allocation that takes copies back only drops them, so no
//!   copy is ever handed out stale.
//! - A CMA allocation ([`alloc_with`]) runs `cma_begin` in one areas hold,
//!   then one migration pass (`cma_step`, `migrator`) per memsys hold, with
//!   the areas lock held inside it for the pass; between passes both locks
//!   are released and the task yields (Linux's `cond_resched`), or sleeps
//!   for the Android policy's rescans; the candidate range stays isolated
//!   meanwhile.
//! - During a pass `KernelPages` is detached from the page cache and lent
//!   to the step: the step changes the areas (through the areas guard it
//!   is given), the migrator changes the page cache (drops clean pages,
//!   copies dirty ones) and the counters of `KernelPages` it names. The
//!   page cache then reaches only the `Detachable` left in its place, which
//!   hands out no frame, queues frees, misses on cleancache gets, skips
//!   puts and queues every invalidation (so nothing inside the pass takes
//!   the areas lock again). The areas lock is released, then `KernelPages`
//!   is attached again before the memsys lock is released: the queued
//!   invalidations are applied first (never skipped: no stale copy
//!   survives, and none can be read in between, since only the page cache
//!   reads copies), then the queued frames go back to their area. So
//!   whoever takes the memsys lock finds the page cache whole; an
//!   allocation between the two may find freed CMA frames not yet returned
//!   (they are returned a moment later).
//! - Outside this module, [`areas`] gives access to the areas (checks,
//!   reports) and to the cleancache itself (tests and timings that fill it
//!   or take pool pages back; its observer keeps the descriptors right),
//!   and [`lock`] to the page cache. The areas change only through [`init`],
//!   [`alloc`](fn@alloc), [`alloc_with`], [`alloc_range`], [`free`] and the
//!   page cache's environment.
//!
//! Frame descriptors (the frame table's state per frame) are written in two
//! places, both in `frame_mirror`:
//! - `FrameMirror`, the cleancache observer, for GCMA pool pages: one page
//!   per store, hit, eviction or invalidation (Free -> ReservedArea,
//!   Cached -> Cleancache), a whole GCMA allocation or free as one range
//!   event (TakenBack -> Allocated, Free -> ReservedArea);
//! - `mark`, for CMA and carveout frames: a CMA frame lent to the page
//!   cache (PageCache), given back or moved out by the migrator
//!   (ReservedArea), a CMA or carveout allocation (Allocated) and its free
//!   (ReservedArea), each in one pass.
//!
//! (Ordinary frames get their state from the frame table's own buddy
//! allocation and free; page-cache flags, pins and owners from
//! `pagecache::FrameDescStates`.)
//!
//! Memory accounting (see the `contig` crate): GCMA = allocated + cached +
//! idle; CMA = allocated + lent + idle (idle CMA memory is free system
//! memory); carveout = allocated + idle (idle carveout memory is wasted).

mod cleancache_hooks;
mod frame_mirror;
mod kernel_pages;
mod migrator;
mod mount;
mod report;

use alloc::boxed::Box;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};

use cleancache::Cleancache;
use contig::{AllocStep, Allocation, AreaKind, Areas, CmaAlloc, CmaPolicy, ContigError, Select};
use physmap::{RegionKind, ReservedRegion};
use probe::AnyProbe;

use crate::arch::timer;
use crate::sync::{IrqLock, IrqLockGuard};

pub use kernel_pages::KernelPages;
pub use mount::{FramesHandle, MountError, Pc, Setup, mount, unmount};
pub use report::{AreaInfo, area_named, first_of, mem_report, print_stats};

probe::probe!(pub GCMA_ALLOC = "gcma.alloc");
probe::probe!(pub CMA_ALLOC = "cma.alloc");
probe::probe!(pub CARVEOUT_ALLOC = "carveout.alloc");
probe::probe!(pub RANGE_ALLOC = "range.alloc");

// One CMA migration pass (lock held); with `cma.alloc` (the whole
// allocation), the source of `cma_work`.
probe::probe!(pub CMA_PASS = "cma.pass");

/// CMA allocations' time, summed since boot (the `cma.pass` and `cma.alloc`
/// probes' totals): subtract two snapshots to get one run's. `pass_ns` is
/// the time spent inside migration passes (lock held: the model's own work,
/// isolating, dropping, copying, answering busy); the rest of `total_ns`
/// went between passes (other tasks ran at `cond_resched`, the Android
/// policy's sleeps, waits for the lock).
#[derive(Clone, Copy, Debug, Default)]
pub struct CmaWork {
    pub passes: u64,
    pub pass_ns: u64,
    pub total_ns: u64,
}

impl CmaWork {
    /// `self - earlier`.
    pub fn since(self, earlier: CmaWork) -> CmaWork {
        CmaWork {
            passes: self.passes - earlier.passes,
            pass_ns: self.pass_ns - earlier.pass_ns,
            total_ns: self.total_ns - earlier.total_ns,
        }
    }
}

/// The CMA time counters now, from the `cma.pass` and `cma.alloc` probes'
/// totals (never reset).
pub fn cma_work() -> CmaWork {
    let (pass, all) = (CMA_PASS.totals(), CMA_ALLOC.totals());
    CmaWork {
        passes: pass.count,
        pass_ns: timer::ticks_to_ns(pass.sum),
        total_ns: timer::ticks_to_ns(all.sum),
    }
}

/// Who holds the environment (and so the areas). One lives in a static:
/// the size of the unboxed `KernelPages` costs nothing, and boxing it would
/// take the static's `const` initialiser away.
#[allow(clippy::large_enum_variant)]
enum Owner {
    /// No filesystem mounted.
    Unmounted(KernelPages),
    /// The page cache, whose environment is `KernelPages`.
    Mounted(Box<Pc>),
    /// Only inside one lock hold of `mount` or `unmount`, never seen by
    /// anyone else.
    Moving,
}

/// Everything a contiguous allocation may touch (see the module rules).
pub struct MemSys {
    owner: Owner,
}

// The memory-state lock's own figures: every acquisition's wait for the
// lock and its hold time (ticks), on every core.
probe::probe!(pub LOCK_WAIT = "memsys.lock_wait", crate::sync::LOCK_PROBE_CAP);
probe::probe!(pub LOCK_HOLD = "memsys.lock_hold", crate::sync::LOCK_PROBE_CAP);

// The areas lock's figures, the same way.
probe::probe!(pub AREAS_WAIT = "areas.lock_wait", crate::sync::LOCK_PROBE_CAP);
probe::probe!(pub AREAS_HOLD = "areas.lock_hold", crate::sync::LOCK_PROBE_CAP);

/// The areas and the cleancache they own (see the module rules).
static AREAS: IrqLock<Areas<Cleancache>> =
    IrqLock::timed(Areas::new(Cleancache::new()), &AREAS_WAIT, &AREAS_HOLD);

/// The areas and their cleancache, locked (the areas lock: never take the
/// memsys lock while holding it).
#[track_caller]
pub fn areas() -> IrqLockGuard<'static, Areas<Cleancache>> {
    AREAS.lock()
}

/// The areas lock's ticket counters.
pub fn areas_contention() -> ticket::Contention {
    AREAS.contention()
}

/// The areas lock's longest hold and wait since [`reset_longest`], with
/// their sites.
pub fn areas_longest() -> crate::sync::Longest {
    AREAS.longest()
}

/// The memsys lock's longest hold and wait since [`reset_longest`].
pub fn lock_longest() -> crate::sync::Longest {
    MEMSYS.longest()
}

/// Starts both locks' longest hold and wait again.
pub fn reset_longest() {
    AREAS.reset_longest();
    MEMSYS.reset_longest();
}

static MEMSYS: IrqLock<MemSys> = IrqLock::timed(
    MemSys {
        owner: Owner::Unmounted(KernelPages::new()),
    },
    &LOCK_WAIT,
    &LOCK_HOLD,
);

/// The memory-state lock's ticket counters (acquisitions modulo 2^32,
/// contended ones, longest wait in spins).
pub fn lock_contention() -> ticket::Contention {
    MEMSYS.contention()
}

/// The memory state, locked.
#[track_caller]
pub fn lock() -> IrqLockGuard<'static, MemSys> {
    MEMSYS.lock()
}

/// The environment of a page cache of this module (attached: it is
/// detached only inside a CMA pass, under the lock).
pub fn pages(pc: &Pc) -> &KernelPages {
    pc.env()
        .get()
        .expect("KernelPages detached outside a CMA pass")
}

/// [`pages`], mutable: the page cache's quota, lending and cleancache
/// switches.
pub fn pages_mut(pc: &mut Pc) -> &mut KernelPages {
    pc.env_mut()
        .get_mut()
        .expect("KernelPages detached outside a CMA pass")
}

impl MemSys {
    /// The page cache, if a filesystem is mounted.
    pub fn page_cache(&self) -> Option<&Pc> {
        match &self.owner {
            Owner::Mounted(pc) => Some(pc),
            _ => None,
        }
    }
    /// The page cache, mutable, if a filesystem is mounted.
    pub fn page_cache_mut(&mut self) -> Option<&mut Pc> {
        match &mut self.owner {
            Owner::Mounted(pc) => Some(pc),
            _ => None,
        }
    }

    /// One CMA migration pass (see the module rules: `KernelPages` is
    /// detached from the page cache for the pass, attached again after).
    fn cma_pass(&mut self, job: &mut CmaAlloc) -> AllocStep {
        match &mut self.owner {
            Owner::Unmounted(env) => env.cma_pass(&mut areas(), job, None),
            Owner::Mounted(pc) => {
                let mut env = pc
                    .env_mut()
                    .detach()
                    .expect("KernelPages attached between passes");
                // The areas lock for the pass only: attaching replays the
                // queued calls, each of which takes it.
                let step = env.cma_pass(&mut areas(), job, Some(pc));
                pc.env_mut().attach(env);
                step
            }
            Owner::Moving => unreachable!("memory state seen while it moves"),
        }
    }
}

/// Runs `f` with the page cache (under the lock); None if not mounted.
#[track_caller]
pub fn with<R>(f: impl FnOnce(&mut Pc) -> R) -> Option<R> {
    lock().page_cache_mut().map(f)
}

/// Pages lent by the CMA areas to the page cache; None if not mounted.
pub fn lent_pages() -> Option<usize> {
    lock().page_cache().map(|pc| pages(pc).lent_out)
}

/// Registers every reserved region of the memory map as an area.
pub fn init(regions: &[ReservedRegion]) {
    let mut areas = areas();
    for r in regions {
        let pfn = frames::Pfn::from_addr(r.range.base);
        let pages = (r.range.size >> frames::PAGE_SHIFT) as usize;
        let result = match r.kind {
            _ if r.no_map => {
                log::warn!(
                    "'{}' is no-map: not registered (its pages cannot be filled or lent)",
                    r.name
                );
                continue;
            }
            RegionKind::Gcma => {
                let base = NonNull::new(r.range.base as *mut u8).expect("region at address 0");
                // SAFETY: a `reusable` region the device tree reserved:
                // identity-mapped RAM (not no-map), marked ReservedArea in
                // the frame table so no other allocator hands it out, and
                // lent to cleancache alone for the kernel's lifetime.
                unsafe { areas.add_gcma_memory(r.name, base, pfn, pages) }
            }
            RegionKind::Cma => areas.add_cma(r.name, pfn, pages),
            RegionKind::Carveout => areas.add_carveout(r.name, pfn, pages),
        };
        match result {
            Ok(_) => log::info!(
                "{} '{}' with {} pages at {:#x}",
                r.kind.as_str(),
                r.name,
                pages,
                r.range.base
            ),
            Err(e) => log::error!("'{}' not registered: {e}", r.name),
        }
    }
    let cc = areas.backend_mut();
    cc.set_page_copy(crate::arch::page_ops::copy_page);
    cc.set_observer(Some(Box::new(frame_mirror::FrameMirror)));
}

/// Allocates `count` contiguous pages aligned to `align` pages from the area
/// `sel` selects, timing it with the area kind's probe (CMA: the Linux
/// policy).
pub fn alloc(sel: Select<'_>, count: usize, align: usize) -> Result<Allocation, ContigError> {
    alloc_with(sel, count, align, CmaPolicy::Linux)
}

/// [`alloc`](fn@alloc) with the CMA policy given (unused for GCMA and carveouts).
pub fn alloc_with(
    sel: Select<'_>,
    count: usize,
    align: usize,
    policy: CmaPolicy,
) -> Result<Allocation, ContigError> {
    // One areas-lock hold names the area's kind and, for GCMA or a
    // carveout (or no such area: the error comes from the areas),
    // allocates: no window between finding the area and taking its range,
    // and no wait behind page-cache work (the memsys lock is not taken).
    let t = timer::ticks();
    let mut a = areas();
    let kind = match sel {
        Select::Kind(k) => Some(k),
        Select::Id(id) => a.kind(id),
        Select::Name(n) => a.find(n).and_then(|id| a.kind(id)),
    };
    if kind == Some(AreaKind::Cma) {
        let result = alloc_cma(a, sel, count, align, policy);
        CMA_ALLOC.record_ticks(timer::ticks() - t);
        return result;
    }
    let probe = match kind {
        Some(AreaKind::Carveout) => &CARVEOUT_ALLOC,
        _ => &GCMA_ALLOC,
    };
    let result = kernel_pages::alloc(&mut a, sel, count, align);
    let busy = result.as_ref().map_or(0, |al| copies_in_flight(&a, al));
    drop(a);
    if busy > 0 {
        wait_for_copies(result.as_ref().expect("busy pages of an allocation"));
    }
    probe.record_ticks(timer::ticks() - t);
    result
}

/// Copies a put or a get is still making on the pages of GCMA allocation
/// `al` (0 for a carveout): pages taken back while they were copied.
fn copies_in_flight(areas: &Areas<Cleancache>, al: &Allocation) -> usize {
    if areas.kind(al.area) != Some(AreaKind::Gcma) {
        return 0;
    }
    let cc = areas.backend();
    if cc.copies_in_flight_total() == 0 {
        return 0;
    }
    match cc.locate_pfn(al.pfn) {
        Some((pool, first)) => cc.copies_in_flight(pool, first, al.count),
        None => 0,
    }
}

/// Times a GCMA allocation waited for copies in flight on its pages, and
/// the longest such wait (ticks); see [`wait_for_copies`].
static COPY_WAITS: AtomicU64 = AtomicU64::new(0);
static COPY_WAIT_MAX: AtomicU64 = AtomicU64::new(0);

/// Waits, outside the areas lock, until no copy is in flight on the pages
/// of GCMA allocation `al`. By the cleancache's `flight.rs` rules a page
/// taken back while a put or a get copied it is the copier's until that
/// copy is finished; the copier runs with IRQs masked on another core (the
/// hooks' rule: on this core it would have finished before this task ran),
/// so this waits for at most one page copy per busy page. Each look takes
/// the areas lock for a bit count; between looks, a short spin.
pub(crate) fn wait_for_copies(al: &Allocation) {
    let t = timer::ticks();
    while copies_in_flight(&areas(), al) > 0 {
        for _ in 0..64 {
            core::hint::spin_loop();
        }
    }
    let waited = timer::ticks() - t;
    COPY_WAITS.fetch_add(1, Ordering::Relaxed);
    COPY_WAIT_MAX.fetch_max(waited, Ordering::Relaxed);
}

/// GCMA allocations that waited for a copy in flight since the last
/// [`reset_copy_waits`], and the longest wait (ticks).
pub fn copy_waits() -> (u64, u64) {
    (
        COPY_WAITS.load(Ordering::Relaxed),
        COPY_WAIT_MAX.load(Ordering::Relaxed),
    )
}

/// Starts [`copy_waits`] again.
pub fn reset_copy_waits() {
    COPY_WAITS.store(0, Ordering::Relaxed);
    COPY_WAIT_MAX.store(0, Ordering::Relaxed);
}

/// A CMA allocation under `policy`, one migration pass per lock hold with
/// the lock released between passes: other tasks may run (`cond_resched`),
/// and the Android policy's sleeps are real sleeps.
fn alloc_cma(
    mut a: IrqLockGuard<'static, Areas<Cleancache>>,
    sel: Select<'_>,
    count: usize,
    align: usize,
    policy: CmaPolicy,
) -> Result<Allocation, ContigError> {
    // `cma_begin` in the areas hold that found the area; then one pass per
    // memsys hold (the areas lock inside it for the pass).
    let mut job = a.cma_begin(sel, count, align, policy)?;
    drop(a);
    loop {
        let mut m = lock();
        let t = CMA_PASS.start();
        let step = m.cma_pass(&mut job);
        CMA_PASS.stop(t);
        drop(m);
        match step {
            AllocStep::Again => crate::sched::yield_now(),
            AllocStep::Sleep { ms } => crate::sched::sleep_or_spin_ns(ms * 1_000_000),
            AllocStep::Done(r) => return r,
        }
    }
}

/// Allocates exactly the pages `pfn .. pfn + count` from the GCMA area or
/// carveout that holds them, as the GCMA patch's `gcma_alloc_range` does:
/// all or nothing, one lock hold, timed with its own probe. Errors: a range
/// outside every area, one not inside one area, one holding an allocated
/// page, one in a CMA area (`contig`'s `alloc_range` rules). Freed with
/// [`free`].
pub fn alloc_range(pfn: frames::Pfn, count: usize) -> Result<Allocation, ContigError> {
    let t = timer::ticks();
    let mut a = areas();
    let result = kernel_pages::alloc_range(&mut a, pfn, count);
    let busy = result.as_ref().map_or(0, |al| copies_in_flight(&a, al));
    drop(a);
    if busy > 0 {
        wait_for_copies(result.as_ref().expect("busy pages of an allocation"));
    }
    RANGE_ALLOC.record_ticks(timer::ticks() - t);
    result
}

/// Frees an allocation made by [`alloc`](fn@alloc) or [`alloc_range`].
pub fn free(a: Allocation) -> Result<(), ContigError> {
    kernel_pages::free(&mut areas(), a)
}
