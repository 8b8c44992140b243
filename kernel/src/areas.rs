//! Reserved-memory areas in the running kernel: GCMA (lent to cleancache),
//! CMA (lent to movable page-cache pages) and static carveouts, behind one
//! interface.
//!
//! Rules:
//! - Areas come from the device tree's `/reserved-memory` (typed by
//!   `physmap`). A `no-map` region is never registered: cleancache copies
//!   and CPU fills need it mapped.
//! - One lock, [`MM`], covers the areas, the cleancache they own and (once
//!   storage runs) the page cache, because a contiguous allocation may have
//!   to take pages back from cleancache or migrate page-cache pages. Lock
//!   order: `MM`, then the frame table.
//! - Frame descriptors follow every change, written in one place per event:
//!   GCMA pool pages only through the cleancache observer ([`FrameMirror`]):
//!   one page per store, hit, eviction or invalidation (Free ->
//!   ReservedArea, Cached -> Cleancache), and a whole GCMA allocation or
//!   free as one range event (TakenBack -> Allocated, Free -> ReservedArea)
//!   under one frame-table lock; CMA and carveout ranges in [`mark`], one
//!   pass after the allocation or free.
//! - A CMA allocation runs one migration pass per `MM` lock hold
//!   ([`alloc_with`]): between passes the lock is released and the task
//!   yields (Linux's `cond_resched`), or sleeps for the Android policy's
//!   rescans; the candidate range stays isolated meanwhile. Frames the page
//!   cache freed during a pass go back to their area before the lock is
//!   released.
//! - Memory accounting (see the `contig` crate): GCMA = allocated + cached +
//!   idle; CMA = allocated + lent + idle (idle CMA memory is free system
//!   memory); carveout = allocated + idle (idle carveout memory is wasted).

use alloc::boxed::Box;
use alloc::string::String;
use core::fmt::Write as _;
use core::ptr::NonNull;
use core::sync::atomic::Ordering;

use cleancache::{Cleancache, PageState};
use contig::{
    AllocStep, Allocation, AreaId, AreaKind, Areas, CmaPolicy, ContigError, MemReport,
    MigrateError, Migrator, Moved, Select,
};
use frames::{FrameState, Pfn};
use physmap::{RegionKind, ReservedRegion};

use crate::sync::IrqLock;
use crate::{console, mm};

/// Everything a contiguous allocation may touch.
pub struct Mm {
    pub areas: Areas<Cleancache>,
    /// The page cache, once a filesystem is mounted (see `fs`).
    pub pc: Option<crate::fs::Pc>,
}

pub static MM: IrqLock<Mm> = IrqLock::new(Mm {
    areas: Areas::new(Cleancache::new()),
    pc: None,
});

probe::probe!(pub GCMA_ALLOC = "gcma.alloc");
probe::probe!(pub CMA_ALLOC = "cma.alloc");
probe::probe!(pub CARVEOUT_ALLOC = "carveout.alloc");

fn frame_state(st: PageState) -> FrameState {
    match st {
        PageState::Free => FrameState::ReservedArea,
        PageState::Cached { .. } => FrameState::Cleancache,
        PageState::TakenBack => FrameState::Allocated,
    }
}

/// Registers every reserved region of the memory map as an area.
pub fn init(regions: &[ReservedRegion]) {
    let mut mm = MM.lock();
    for r in regions {
        let pfn = r.range.base >> frames::PAGE_SHIFT;
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
                unsafe { mm.areas.add_gcma_memory(r.name, base, pfn, pages) }
            }
            RegionKind::Cma => mm.areas.add_cma(r.name, pfn, pages),
            RegionKind::Carveout => mm.areas.add_carveout(r.name, pfn, pages),
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
    mm.areas
        .backend_mut()
        .set_page_copy(crate::arch::page_ops::copy_page);
    mm.areas
        .backend_mut()
        .set_observer(Some(Box::new(FrameMirror)));
}

/// The cleancache observer: GCMA pool page states into frame descriptors,
/// one frame-table lock per event (a page, or a whole range).
struct FrameMirror;

impl cleancache::Observer for FrameMirror {
    fn on_page(&mut self, pfn: u64, st: PageState) {
        let _ = mm::with_frames(|t| t.set_state(Pfn(pfn), frame_state(st)));
    }
    fn on_range(&mut self, pfn: u64, count: usize, st: PageState) {
        let range = Pfn(pfn)..Pfn(pfn + count as u64);
        let _ = mm::with_frames(|t| t.set_state_range(range, frame_state(st)));
    }
}

/// CMA's migration step over the kernel's page cache, as Linux's
/// MIGRATE_SYNC `__alloc_contig_migrate_range`: waits for a page under I/O
/// (locked, or under write-back), drops it if clean and unpinned
/// (`reclaim_clean_pages_from_list`), else copies it with the fast page copy
/// to a replacement frame from ordinary memory and re-indexes it; the old
/// frame is left to its area. Pinned pages are busy.
struct PcMigrator<'a> {
    pc: Option<&'a mut crate::fs::Pc>,
}

impl Migrator for PcMigrator<'_> {
    fn migrate(&mut self, pfn: u64) -> Result<Moved, MigrateError> {
        let Some(pc) = self.pc.as_deref_mut() else {
            return Err(MigrateError::Busy);
        };
        let old = pagecache::Frame::from_addr((pfn << frames::PAGE_SHIFT) as usize)
            .ok_or(MigrateError::Busy)?;
        let moved = match pc.drop_clean_frame(old) {
            Ok(true) => Moved::Dropped,
            Ok(false) => {
                let new = pc
                    .allocator_mut()
                    .take_ordinary()
                    .ok_or(MigrateError::NoMemory)?;
                if pc
                    .migrate_with(old, new, crate::arch::page_ops::copy_page)
                    .is_err()
                {
                    let new_pfn = Pfn(new.addr() as u64 >> frames::PAGE_SHIFT);
                    if mm::with_frames(|t| t.free(new_pfn, 0)).is_ok() {
                        let pages = pc.allocator_mut();
                        pages.ordinary_out = pages.ordinary_out.saturating_sub(1);
                    }
                    return Err(MigrateError::Busy);
                }
                Moved::Copied
            }
            // Pinned, or no longer a page-cache page (a failed read dropped
            // it; its frame comes back through return_page between steps).
            Err(_) => return Err(MigrateError::Busy),
        };
        let pages = pc.allocator_mut();
        pages.lent_out = pages.lent_out.saturating_sub(1);
        let _ = mm::with_frames(|t| t.set_state(Pfn(pfn), FrameState::ReservedArea));
        Ok(moved)
    }
}

/// A CMA allocation under `policy`, one migration pass per step with the
/// `MM` lock released between steps: other tasks may run (`cond_resched`),
/// and the Android policy's sleeps are real sleeps.
fn alloc_cma(
    sel: Select<'_>,
    count: usize,
    align: usize,
    policy: CmaPolicy,
) -> Result<Allocation, ContigError> {
    let mut job = MM.lock().areas.cma_begin(sel, count, align, policy)?;
    loop {
        let step = {
            let mut guard = MM.lock();
            let Mm { areas, pc } = &mut *guard;
            crate::fs::IN_AREAS_ALLOC.store(true, Ordering::Relaxed);
            let step = areas.cma_step(&mut job, &mut PcMigrator { pc: pc.as_mut() });
            crate::fs::IN_AREAS_ALLOC.store(false, Ordering::Relaxed);
            // Frames freed during the pass go back now, so that the next
            // pass sees returned pages as returned.
            if let Some(pc) = pc.as_mut() {
                pc.allocator_mut().return_deferred();
            }
            if let AllocStep::Done(Ok(a)) = &step {
                mark(&guard, a, FrameState::Allocated);
            }
            step
        };
        match step {
            AllocStep::Again => crate::sched::yield_now(),
            AllocStep::Sleep { ms } => crate::sched::sleep_or_spin_ns(ms * 1_000_000),
            AllocStep::Done(r) => return r,
        }
    }
}

/// Allocates `count` contiguous pages aligned to `align` pages from the area
/// `sel` selects, timing it with the area kind's probe (CMA: the Linux
/// policy).
pub fn alloc(sel: Select<'_>, count: usize, align: usize) -> Result<Allocation, ContigError> {
    alloc_with(sel, count, align, CmaPolicy::Linux)
}

/// [`alloc`] with the CMA policy given (unused for GCMA and carveouts).
pub fn alloc_with(
    sel: Select<'_>,
    count: usize,
    align: usize,
    policy: CmaPolicy,
) -> Result<Allocation, ContigError> {
    let kind = {
        let mm = MM.lock();
        match sel {
            Select::Kind(k) => Some(k),
            Select::Id(id) => mm.areas.kind(id),
            Select::Name(n) => mm.areas.find(n).and_then(|id| mm.areas.kind(id)),
        }
    };
    if kind == Some(AreaKind::Cma) {
        let t = CMA_ALLOC.start();
        let result = alloc_cma(sel, count, align, policy);
        CMA_ALLOC.stop(t);
        return result;
    }
    // GCMA or a carveout (or no such area): no migration, one lock hold.
    let mut guard = MM.lock();
    let mm = &mut *guard;
    let probe = match kind {
        Some(AreaKind::Carveout) => &CARVEOUT_ALLOC,
        _ => &GCMA_ALLOC,
    };
    let t = probe.start();
    // A GCMA allocation takes its range back from cleancache in one call;
    // the observer marks the frames Allocated in one range event. (A failed
    // one takes nothing back and reports nothing.)
    let result = mm.areas.alloc(sel, count, align, &mut contig::NoMigrator);
    probe.stop(t);
    if let Ok(a) = &result {
        mark(mm, a, FrameState::Allocated);
    }
    result
}

/// Frees an allocation made by [`alloc`].
pub fn free(a: Allocation) -> Result<(), ContigError> {
    let mut guard = MM.lock();
    let mm = &mut *guard;
    mm.areas.free(a)?;
    mark(mm, &a, FrameState::ReservedArea);
    Ok(())
}

/// Descriptors of an allocated or freed CMA or carveout range, in one
/// pass. A GCMA range is left alone: the cleancache observer's range event
/// already wrote it, inside the same `MM` critical section.
fn mark(mm: &Mm, a: &Allocation, state: FrameState) {
    if mm.areas.kind(a.area) == Some(AreaKind::Gcma) {
        return;
    }
    let range = Pfn(a.pfn)..Pfn(a.pfn + a.count as u64);
    let _ = mm::with_frames(|t| t.set_state_range(range, state));
}

/// The memory report (total, free, lent, cached, allocated per kind).
pub fn mem_report() -> MemReport {
    MM.lock().areas.mem_report()
}

/// Prints the kernel's memory report (every frame by state, and each kind
/// of reserved memory split the way the `contig` crate's accounting says),
/// the per-area table, the cleancache statistics and machine lines.
pub fn print_stats() {
    let mm = MM.lock();
    let mut out = console::Writer;
    let stats = mm::with_frames(|t| t.stats());
    let mib = |pages: u64| pages as f64 / 256.0;
    let _ = writeln!(out, "memory report (MiB)");
    for st in FrameState::ALL {
        let n = stats.state(*st);
        if n > 0 && *st != FrameState::Absent {
            let _ = writeln!(out, "  {:<14} {:>9.1}", st.name(), mib(n));
        }
    }
    let r = mm.areas.mem_report();
    let _ = writeln!(
        out,
        "  {:<9} {:>9} {:>9} {:>9} {:>9} {:>9}   (pages)",
        "reserved", "size", "allocated", "cached", "lent", "idle"
    );
    for (name, k) in [("gcma", r.gcma), ("cma", r.cma), ("carveout", r.carveout)] {
        let _ = writeln!(
            out,
            "  {:<9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            name, k.size, k.allocated, k.cached, k.lent, k.idle
        );
    }
    let _ = writeln!(
        out,
        "  GCMA cached pages count as available (dropped instantly), never as free; idle CMA pages are free system memory; idle carveout pages are wasted"
    );
    let _ = mm.areas.write_table(&mut out);
    let _ = mm.areas.write_machine(&mut out);
    let _ = mm.areas.backend().write_machine(&mut out);
    let _ = mm.areas.mem_report().write_machine(&mut out);
}

/// The first area of `kind`: its id, name, first pfn and size in pages.
pub fn first_of(kind: AreaKind) -> Option<(AreaId, String, u64, usize)> {
    let mm = MM.lock();
    let id = mm.areas.ids().find(|id| mm.areas.kind(*id) == Some(kind))?;
    let (pfn, pages) = mm.areas.span(id)?;
    Some((id, String::from(mm.areas.name(id)?), pfn, pages))
}
