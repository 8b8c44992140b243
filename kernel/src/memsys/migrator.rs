//! CMA's migration pass over the kernel's page cache, as Linux's
//! MIGRATE_SYNC `__alloc_contig_migrate_range`.
//!
//! Rules:
//! - A pass runs with `KernelPages` detached from the page cache (see the
//!   memsys rules): the step borrows the areas, [`PcMigrator`] the page
//!   cache and the two frame counters of `KernelPages`, nothing else.
//! - Per page: wait for I/O in flight (a read filling it, or write-back);
//!   drop it if clean and unpinned (`reclaim_clean_pages_from_list`), else
//!   copy it with the fast page copy to a buddy frame
//!   (`kernel_pages::take_ordinary`, outside the quota: the page cache
//!   trims back to its budget on its next allocations) and re-index it.
//!   Pinned pages, and frames no longer in the page cache (a failed read
//!   dropped the page: its frame comes back through the queued free after
//!   the pass), are busy.
//! - A page moved out leaves its old frame to the area (the area's step
//!   takes it into the isolated range): `lent_out` counts one less and its
//!   descriptor becomes ReservedArea (`mark`).

use cleancache::Cleancache;
use contig::{AllocStep, Areas, CmaAlloc, MigrateError, Migrator, Moved, Pfn};
use frames::FrameState;

use super::frame_mirror::mark;
use super::kernel_pages::{put_ordinary, take_ordinary};
use super::{KernelPages, Pc};

struct PcMigrator<'a> {
    pc: Option<&'a mut Pc>,
    ordinary_out: &'a mut usize,
    lent_out: &'a mut usize,
}

impl Migrator for PcMigrator<'_> {
    fn migrate(&mut self, pfn: Pfn) -> Result<Moved, MigrateError> {
        let Some(pc) = self.pc.as_deref_mut() else {
            return Err(MigrateError::Busy);
        };
        let old = pagecache::Frame::from_addr(pfn.addr() as usize).ok_or(MigrateError::Busy)?;
        let moved = match pc.drop_clean_frame(old) {
            Ok(true) => Moved::Dropped,
            Ok(false) => {
                let new = take_ordinary(self.ordinary_out).ok_or(MigrateError::NoMemory)?;
                if pc
                    .migrate_with(old, new, crate::arch::page_ops::copy_page)
                    .is_err()
                {
                    put_ordinary(self.ordinary_out, new);
                    return Err(MigrateError::Busy);
                }
                Moved::Copied
            }
            Err(_) => return Err(MigrateError::Busy),
        };
        *self.lent_out = self.lent_out.saturating_sub(1);
        mark(pfn, 1, FrameState::ReservedArea);
        Ok(moved)
    }
}

impl KernelPages {
    /// One migration pass of `job` over `pc` (None: no page cache, so no
    /// lent page to move), with `self` detached from `pc`.
    pub(super) fn cma_pass(
        &mut self,
        areas: &mut Areas<Cleancache>,
        job: &mut CmaAlloc,
        pc: Option<&mut Pc>,
    ) -> AllocStep {
        let KernelPages {
            ordinary_out,
            lent_out,
            ..
        } = self;
        let step = areas.cma_step(
            job,
            &mut PcMigrator {
                pc,
                ordinary_out,
                lent_out,
            },
        );
        super::kernel_pages::finish(areas, &step);
        step
    }
}
