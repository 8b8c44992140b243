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

use frames::PageBytes;
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
            super::areas().backend_mut().put_page(fs, file, index, data);
        }
    }

    fn get_page(&mut self, file: FileId, index: PageIndex, out: &mut PageBytes) -> bool {
        match self.fs {
            Some(fs) if self.cleancache => {
                super::areas().backend_mut().get_page(fs, file, index, out)
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
