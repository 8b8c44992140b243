//! The page cache's cleancache hooks, on [`KernelPages`]: the GCMA pools'
//! cleancache, reached through the areas that own it.
//!
//! Rules:
//! - Every key names the mount: `init_fs` registers a new cleancache
//!   `FsId` at mount (dropping any earlier one's copies), `invalidate_fs`
//!   drops the mount's copies at unmount (also when its sync fails), so
//!   another disk, or this one rewritten, never reads them.
//! - Stores and restores follow the `cleancache` switch; invalidations are
//!   always forwarded, so no stale copy survives a write, truncate or
//!   delete whatever the switch says.
//! - While `KernelPages` is detached for a CMA pass these calls do not
//!   arrive here: `pagecache::Detachable` queues the invalidations and
//!   replays them (see the memsys rules).
//! - A put or a get copies its page outside the areas lock, in the
//!   cleancache's three steps (`begin_*` under the lock, the copy, then
//!   `finish_*` under the lock; the crate's `flight.rs` rules). IRQs stay
//!   masked on this core from the first step to the last (the memsys lock,
//!   held by every caller, masks them already; the mask here makes it not
//!   depend on that), so the copy is never preempted: a GCMA allocation
//!   that takes back a page being copied waits for that one copy, on
//!   another core, and nothing else ([`super::wait_for_copies`]).

use frames::PageBytes;

use crate::arch::exception::asynchronous::{local_irq_mask_save, local_irq_restore};
use pagecache::{CleancacheHooks, FileId, PageIndex};

use super::KernelPages;

impl CleancacheHooks for KernelPages {
    fn init_fs(&mut self, volume: u32) {
        self.invalidate_fs();
        self.fs = Some(super::areas().backend_mut().register_fs(volume));
    }

    fn invalidate_fs(&mut self) {
        if let Some(fs) = self.fs.take() {
            let dropped = super::areas().backend_mut().invalidate_fs(fs);
            log::debug!("cleancache: {fs} unmounted, {dropped} copies dropped");
        }
    }

    fn put_page(&mut self, file: FileId, index: PageIndex, data: &PageBytes) {
        if self.cleancache
            && let Some(fs) = self.fs
        {
            let saved = local_irq_mask_save();
            let slot = super::areas().backend_mut().begin_put(fs, file, index);
            if let Some(slot) = slot {
                let filled = slot.fill(data);
                super::areas().backend_mut().finish_put(filled);
            }
            local_irq_restore(saved);
        }
    }

    fn get_page(&mut self, file: FileId, index: PageIndex, out: &mut PageBytes) -> bool {
        match self.fs {
            Some(fs) if self.cleancache => {
                let saved = local_irq_mask_save();
                let slot = super::areas().backend_mut().begin_get(fs, file, index);
                let hit = match slot {
                    Some(slot) => {
                        let read = slot.read(out);
                        super::areas().backend_mut().finish_get(read)
                    }
                    None => false,
                };
                local_irq_restore(saved);
                hit
            }
            _ => false,
        }
    }

    fn invalidate_page(&mut self, file: FileId, index: PageIndex) {
        if let Some(fs) = self.fs {
            super::areas()
                .backend_mut()
                .invalidate_page(fs, file, index);
        }
    }

    fn invalidate_file(&mut self, file: FileId, from: PageIndex) {
        if let Some(fs) = self.fs {
            super::areas().backend_mut().invalidate_file(fs, file, from);
        }
    }
}
