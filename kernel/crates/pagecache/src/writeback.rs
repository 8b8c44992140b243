//! Write-back: `fsync`, `sync`, dropping clean pages and unmounting.
//!
//! Rule: `sync` reports the first write-back error since the last one and
//! retries pages that failed; unmount ends the cleancache mount
//! (`invalidate_fs`) even when its sync fails (`try_unmount` then begins a
//! new one, `init_fs`, for the page cache it gives back).

use alloc::vec::Vec;

use blkdev::BlockDevice;

use blkdev::QueueMux;

use crate::filesystem::Filesystem;
use crate::{
    CleancacheHooks, Error, FileId, Key, PageAllocator, PageCache, PageFlags, PageStateStore, Parts,
};

impl<D, E, S, F> PageCache<D, E, S, F>
where
    D: BlockDevice,
    E: PageAllocator + CleancacheHooks,
    S: PageStateStore,
    F: Filesystem<Device = QueueMux<D>>,
{
    fn writeback(&mut self, file: Option<FileId>) -> Result<(), Error> {
        self.reap();
        let keys: Vec<Key> = self
            .pages
            .iter()
            .filter(|(k, p)| {
                file.is_none_or(|f| k.0 == f)
                    && self.states.flags(p.frame).contains(PageFlags::DIRTY)
                    && p.io_parts == 0
            })
            .map(|(k, _)| *k)
            .collect();
        let mut first_err = None;
        for k in keys {
            if let Err(e) = self.start_writeback(k) {
                first_err.get_or_insert(e);
            }
        }
        self.drain()?;
        if let Some(e) = self.wb_error.take() {
            first_err.get_or_insert(Error::Device(e));
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        self.fs.sync()?;
        Ok(())
    }

    /// Writes back the dirty pages of one file and syncs metadata.
    pub fn fsync(&mut self, file: FileId) -> Result<(), Error> {
        self.file(file)?;
        self.writeback(Some(file))
    }

    /// Writes back every dirty page and syncs metadata.
    pub fn sync(&mut self) -> Result<(), Error> {
        self.writeback(None)
    }

    /// Evicts every clean page that is not busy (they go to cleancache).
    pub fn drop_clean_pages(&mut self) -> usize {
        self.reap();
        let keys: Vec<Key> = self
            .lru_order()
            .into_iter()
            .filter(|k| {
                let f = self.pages[k].frame;
                !self.states.is_busy(f) && !self.states.flags(f).contains(PageFlags::DIRTY)
            })
            .collect();
        let n = keys.len();
        for k in keys {
            self.evict(k);
        }
        n
    }

    /// Syncs, ends the mount for cleancache
    /// ([`CleancacheHooks::invalidate_fs`], also when the sync fails), frees
    /// every frame (without offering pages to cleancache) and gives the
    /// parts back. On failure the page cache is dropped: use
    /// [`try_unmount`](Self::try_unmount) to keep it.
    pub fn unmount(self) -> Result<Parts<F, E, S>, Error> {
        self.try_unmount().map_err(|(e, _)| e)
    }

    /// [`unmount`](Self::unmount), giving the page cache back when the sync
    /// fails: still mounted, every page and frame as before, under a new
    /// cleancache mount (`invalidate_fs`, then `init_fs` again), so no copy
    /// stored before the failed unmount is ever found again.
    // The page cache comes back by value, on a rare path.
    #[allow(clippy::result_large_err)]
    pub fn try_unmount(mut self) -> Result<Parts<F, E, S>, (Error, Self)> {
        let synced = self.sync().and_then(|()| self.drain());
        // Nothing of this mount may be found again, whatever the disk
        // holds next time.
        self.env.invalidate_fs();
        if let Err(e) = synced {
            self.env.init_fs(self.fs.volume_id());
            return Err((e, self));
        }
        for k in self.pages.keys().copied().collect::<Vec<_>>() {
            let p = self.pages.remove(&k);
            if let Some(p) = p {
                self.states.detach(p.frame);
                self.env.free_page(p.frame);
            }
        }
        Ok((self.fs, self.env, self.states))
    }
}
