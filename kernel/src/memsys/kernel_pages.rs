//! [`KernelPages`]: the page cache's environment over the areas, and the
//! area operations every allocator path shares.
//!
//! Rules:
//! - Page-cache frames come from the buddy up to an ordinary quota; beyond
//!   it, when CMA lending is on, from frames the CMA areas lend (movable
//!   pages, as Linux's MIGRATE_CMA pageblocks serve movable allocations).
//!   A lent frame goes back to its area when the page cache frees it.
//! - `ordinary_out` and `lent_out` count the frames the page cache holds of
//!   each kind; `take_ordinary` / `put_ordinary` are the only way to a buddy
//!   frame for the page cache (the migrator uses them for copy targets).
//! - Every CMA or carveout descriptor change goes through
//!   `frame_mirror::mark` (lend, return, allocation, free); GCMA ranges are
//!   left to the cleancache observer.
//! - `KernelPages` runs under the memsys lock (it is reached only through
//!   `MemSys` or the page cache memsys holds); every access to the areas
//!   and their cleancache takes the areas lock inside it ([`super::areas`],
//!   one short hold per call: a frame lent or returned, a page put, got or
//!   invalidated).

use cleancache::{Cleancache, FsId};
use contig::{AllocStep, Allocation, AreaKind, Areas, ContigError, NoMigrator, PfnState, Select};
use frames::{FrameState, Pfn};
use pagecache::{Frame, PageAllocator};

use super::areas;
use super::frame_mirror::mark;
use crate::mm;

/// The page cache's environment: the page-cache frame quota, CMA lending
/// and the cleancache mount (the areas themselves are behind their own
/// lock, [`super::areas`]).
pub struct KernelPages {
    /// Most buddy frames held for file pages.
    pub ordinary_limit: usize,
    /// Borrow frames from the CMA areas once the quota is used.
    pub cma_lending: bool,
    /// Store evicted pages in cleancache and restore them on misses
    /// (invalidations are forwarded whatever this says).
    pub cleancache: bool,
    /// Buddy frames the page cache holds.
    pub ordinary_out: usize,
    /// CMA frames the page cache holds.
    pub lent_out: usize,
    /// This mount's identity in cleancache (from `init_fs`).
    pub(super) fs: Option<FsId>,
}

/// A buddy frame for the page cache, counted in `out`.
pub(super) fn take_ordinary(out: &mut usize) -> Option<Frame> {
    let p = mm::with_frames(|t| t.alloc(0, FrameState::PageCache)).ok()?;
    *out += 1;
    Frame::from_addr(p.addr() as usize)
}

/// Gives a buddy frame of the page cache back, counted in `out`.
pub(super) fn put_ordinary(out: &mut usize, frame: Frame) {
    let pfn = frames::Pfn(frame.addr() as u64 >> frames::PAGE_SHIFT);
    if mm::with_frames(|t| t.free(pfn, 0)).is_ok() {
        *out = out.saturating_sub(1);
    }
}

impl KernelPages {
    /// No areas yet, nothing lent, no mount.
    pub const fn new() -> Self {
        KernelPages {
            ordinary_limit: 0,
            cma_lending: false,
            cleancache: false,
            ordinary_out: 0,
            lent_out: 0,
            fs: None,
        }
    }

    /// The areas.
    pub(super) fn configure(&mut self, ordinary_limit: usize, cma_lending: bool, cleancache: bool) {
        self.ordinary_limit = ordinary_limit;
        self.cma_lending = cma_lending;
        self.cleancache = cleancache;
    }
}

/// Allocates from the area `sel` names (GCMA or a carveout: no migrator)
/// and marks the frames.
pub(super) fn alloc(
    areas: &mut Areas<Cleancache>,
    sel: Select<'_>,
    count: usize,
    align: usize,
) -> Result<Allocation, ContigError> {
    let a = areas.alloc(sel, count, align, &mut NoMigrator)?;
    mark_range(areas, &a, FrameState::Allocated);
    Ok(a)
}

/// Allocates exactly `pfn .. pfn + count` and marks the frames.
pub(super) fn alloc_range(
    areas: &mut Areas<Cleancache>,
    pfn: Pfn,
    count: usize,
) -> Result<Allocation, ContigError> {
    let a = areas.alloc_range(pfn, count)?;
    mark_range(areas, &a, FrameState::Allocated);
    Ok(a)
}

/// Frees an allocation and marks the frames.
pub(super) fn free(areas: &mut Areas<Cleancache>, a: Allocation) -> Result<(), ContigError> {
    areas.free(a)?;
    mark_range(areas, &a, FrameState::ReservedArea);
    Ok(())
}

/// Marks the frames of a finished CMA allocation.
pub(super) fn finish(areas: &Areas<Cleancache>, step: &AllocStep) {
    if let AllocStep::Done(Ok(a)) = step {
        mark_range(areas, a, FrameState::Allocated);
    }
}

fn mark_range(areas: &Areas<Cleancache>, a: &Allocation, state: FrameState) {
    if areas.kind(a.area) != Some(AreaKind::Gcma) {
        mark(a.pfn, a.count, state);
    }
}

impl Default for KernelPages {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: frames come from the buddy (each handed out once until freed) or
// from a CMA area's lend_page (each lent once until returned); both are
// identity-mapped RAM used by nobody else while the page cache holds them.
unsafe impl PageAllocator for KernelPages {
    fn alloc_page(&mut self) -> Option<Frame> {
        if self.ordinary_out < self.ordinary_limit
            && let Some(f) = take_ordinary(&mut self.ordinary_out)
        {
            return Some(f);
        }
        if !self.cma_lending {
            return None;
        }
        let mut areas = areas();
        let pfn = areas.lend_page()?;
        match Frame::from_addr(pfn.addr() as usize) {
            Some(f) if mark(pfn, 1, FrameState::PageCache) => {
                self.lent_out += 1;
                Some(f)
            }
            _ => {
                let _ = areas.return_page(pfn);
                None
            }
        }
    }

    fn free_page(&mut self, frame: Frame) {
        let pfn = Pfn::from_addr(frame.addr() as u64);
        let mut areas = areas();
        if matches!(areas.pfn_state(pfn), Some((_, PfnState::Lent))) {
            if areas.return_page(pfn).is_ok() {
                self.lent_out = self.lent_out.saturating_sub(1);
                mark(pfn, 1, FrameState::ReservedArea);
            }
        } else {
            put_ordinary(&mut self.ordinary_out, frame);
        }
    }
}
