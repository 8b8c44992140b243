//! The memory state and its one owner: the reserved-memory areas (GCMA,
//! CMA, carveouts), the cleancache they own and, once a filesystem is
//! mounted, the page cache, behind one lock.
//!
//! Who owns what:
//! - [`KernelPages`] owns the `Areas<Cleancache>` and is the page cache's
//!   environment: its frame allocator (ordinary memory up to a quota, then
//!   frames the CMA areas lend) and its cleancache hooks, in one value.
//! - [`MemSys`] holds `KernelPages` while no filesystem is mounted; at
//!   [`mount`] it moves into the page cache (as a `pagecache::Detachable`),
//!   which memsys then holds; [`unmount`] moves it back. One value owns the
//!   areas at every moment, and no pointer to them is kept anywhere.
//! - One lock covers all of it: [`lock`], [`with`] and every function here
//!   take it, from whichever core the caller's task runs on (a ticket lock:
//!   waiters are served in arrival order). Lock order: this lock, then the
//!   frame table (`mm::with_frames`), never the other way round. Every
//!   acquisition records its wait and hold time (`memsys.lock_wait`,
//!   `memsys.lock_hold`); [`lock_contention`] gives the ticket counters.
//!
//! Who may touch what while an allocation runs:
//! - A GCMA or carveout allocation, and every free, is one lock hold: only
//!   the areas change (for GCMA, the cleancache they own takes the range
//!   back or gets it back in one call).
//! - A CMA allocation ([`alloc_with`]) runs `cma_begin` in one lock hold,
//!   then one migration pass (`cma_step`, `migrator`) per hold; between
//!   passes the lock is released and the task yields (Linux's
//!   `cond_resched`), or sleeps for the Android policy's rescans; the
//!   candidate range stays isolated meanwhile.
//! - During a pass `KernelPages` is detached from the page cache and lent
//!   to the step: the step changes the areas, the migrator changes the page
//!   cache (drops clean pages, copies dirty ones) and the counters of
//!   `KernelPages` it names (disjoint fields). The page cache then reaches
//!   only the `Detachable` left in its place, which hands out no frame,
//!   queues frees, misses on cleancache gets, skips puts and queues every
//!   invalidation. `KernelPages` is attached again before the lock is
//!   released: the queued invalidations are applied first (never skipped:
//!   no stale copy survives), then the queued frames go back to their area.
//!   So whoever takes the lock finds the state whole.
//! - Outside this module, [`lock`] gives read access to the areas and the
//!   page cache (checks, reports) and access to the cleancache itself
//!   (tests and timings that fill it or take pool pages back; its observer
//!   keeps the descriptors right). The areas change only through [`init`],
//!   [`alloc`](fn@alloc), [`alloc_with`], [`alloc_range`], [`free`] and the page cache's environment.
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
    fn env(&self) -> &KernelPages {
        match &self.owner {
            Owner::Unmounted(env) => env,
            Owner::Mounted(pc) => pages(pc),
            Owner::Moving => unreachable!("memory state seen while it moves"),
        }
    }
    fn env_mut(&mut self) -> &mut KernelPages {
        match &mut self.owner {
            Owner::Unmounted(env) => env,
            Owner::Mounted(pc) => pages_mut(pc),
            Owner::Moving => unreachable!("memory state seen while it moves"),
        }
    }
    /// The areas (read only: they change through alloc/free).
    pub fn areas(&self) -> &Areas<Cleancache> {
        self.env().areas()
    }
    /// The cleancache the GCMA areas own.
    pub fn cleancache(&self) -> &Cleancache {
        self.env().areas().backend()
    }
    /// The cleancache, mutable (tests and timings; its observer keeps the
    /// frame descriptors right).
    pub fn cleancache_mut(&mut self) -> &mut Cleancache {
        self.env_mut().cleancache_mut()
    }
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
            Owner::Unmounted(env) => env.cma_pass(job, None),
            Owner::Mounted(pc) => {
                let mut env = pc
                    .env_mut()
                    .detach()
                    .expect("KernelPages attached between passes");
                let step = env.cma_pass(job, Some(pc));
                pc.env_mut().attach(env);
                step
            }
            Owner::Moving => unreachable!("memory state seen while it moves"),
        }
    }
}

/// Runs `f` with the page cache (under the lock); None if not mounted.
pub fn with<R>(f: impl FnOnce(&mut Pc) -> R) -> Option<R> {
    lock().page_cache_mut().map(f)
}

/// Pages lent by the CMA areas to the page cache; None if not mounted.
pub fn lent_pages() -> Option<usize> {
    lock().page_cache().map(|pc| pages(pc).lent_out)
}

/// Registers every reserved region of the memory map as an area.
pub fn init(regions: &[ReservedRegion]) {
    let mut m = lock();
    let env = m.env_mut();
    for r in regions {
        let pfn = frames::Pfn::from_addr(r.range.base);
        let pages = (r.range.size >> frames::PAGE_SHIFT) as usize;
        let areas = &mut env.areas;
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
    let cc = env.cleancache_mut();
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
    // One lock hold names the area's kind and, for GCMA or a carveout (or
    // no such area: the error comes from the areas), allocates: no window
    // between finding the area and taking its range.
    let mut m = lock();
    let kind = {
        let areas = m.areas();
        match sel {
            Select::Kind(k) => Some(k),
            Select::Id(id) => areas.kind(id),
            Select::Name(n) => areas.find(n).and_then(|id| areas.kind(id)),
        }
    };
    if kind == Some(AreaKind::Cma) {
        let t = CMA_ALLOC.start();
        let result = alloc_cma(m, sel, count, align, policy);
        CMA_ALLOC.stop(t);
        return result;
    }
    let probe = match kind {
        Some(AreaKind::Carveout) => &CARVEOUT_ALLOC,
        _ => &GCMA_ALLOC,
    };
    let t = probe.start();
    let result = m.env_mut().alloc(sel, count, align);
    probe.stop(t);
    result
}

/// A CMA allocation under `policy`, one migration pass per lock hold with
/// the lock released between passes: other tasks may run (`cond_resched`),
/// and the Android policy's sleeps are real sleeps.
fn alloc_cma(
    mut m: IrqLockGuard<'static, MemSys>,
    sel: Select<'_>,
    count: usize,
    align: usize,
    policy: CmaPolicy,
) -> Result<Allocation, ContigError> {
    // `cma_begin` in the hold that found the area; then one pass per hold.
    let mut job = m.env_mut().areas.cma_begin(sel, count, align, policy)?;
    drop(m);
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
    let mut m = lock();
    let t = RANGE_ALLOC.start();
    let result = m.env_mut().alloc_range(pfn, count);
    RANGE_ALLOC.stop(t);
    result
}

/// Frees an allocation made by [`alloc`](fn@alloc) or [`alloc_range`].
pub fn free(a: Allocation) -> Result<(), ContigError> {
    lock().env_mut().free(a)
}
