//! Pins and migration: reader pins, releasing or dropping a frame the CMA
//! side wants back, and moving a page to another frame.
//!
//! Rule: a pinned page, or one under I/O, is busy: migration answers
//! `Busy`, truncate and delete `Error::Busy`.

use blkdev::BlockDevice;
use frames::PageBytes;

use blkdev::QueueMux;

use crate::filesystem::Filesystem;
use crate::lookup::Wait;
use crate::{
    CleancacheHooks, Error, FileId, Frame, MigrateError, PAGE_SIZE, PageAllocator, PageCache,
    PageFlags, PageIndex, PageStateStore, frame_bytes, pages_of,
};

impl<D, E, S, F> PageCache<D, E, S, F>
where
    D: BlockDevice,
    E: PageAllocator + CleancacheHooks,
    S: PageStateStore,
    F: Filesystem<Device = QueueMux<D>>,
{
    /// Brings page `index` in (reading it if needed) and pins it: it stays
    /// cached, unmovable and unevictable until [`unpin_page`](Self::unpin_page).
    pub fn pin_page(&mut self, file: FileId, index: PageIndex) -> Result<Frame, Error> {
        self.pin_with(file, index, Wait::Yes)
    }

    /// As [`pin_page`](Self::pin_page), but never waits for the device:
    /// [`Error::InFlight`] (nothing pinned) while the page is being read, its
    /// read started if it was not cached (see
    /// [`read_nowait`](Self::read_nowait)); call again.
    pub fn pin_page_nowait(&mut self, file: FileId, index: PageIndex) -> Result<Frame, Error> {
        self.pin_with(file, index, Wait::No)
    }

    fn pin_with(&mut self, file: FileId, index: PageIndex, wait: Wait) -> Result<Frame, Error> {
        self.reap();
        let size = self.file(file)?.size;
        if index >= pages_of(size) {
            return Err(Error::BeyondEof {
                offset: index as u64 * PAGE_SIZE,
                size,
            });
        }
        let f = self.read_page(file, index, wait)?.ok_or(Error::InFlight)?;
        self.states.pin(f);
        Ok(f)
    }

    /// Drops a pin taken by `pin_page` or `pin_page_nowait`.
    pub fn unpin_page(&mut self, frame: Frame) -> Result<(), Error> {
        let key = self.frame_owner(frame).ok_or(Error::NotPinned)?;
        let io = (self.pages[&key].io_parts > 0) as u32;
        if self.states.pin_count(frame) <= io {
            return Err(Error::NotPinned);
        }
        self.states.unpin(frame);
        Ok(())
    }

    /// Evicts the clean page cached in `frame` (an eviction: the page is
    /// offered to cleancache) and hands the frame to the caller instead of
    /// the allocator: Linux CMA's `reclaim_clean_pages_from_list`, the cheap
    /// alternative to migration. Dirty pages are `Busy` (write back or
    /// migrate them), as are pinned, locked and under-I/O ones.
    pub fn release_frame(&mut self, frame: Frame) -> Result<(), MigrateError> {
        self.reap();
        let key = self.frame_owner(frame).ok_or(MigrateError::NotCached)?;
        if self.states.is_busy(frame) || self.states.flags(frame).contains(PageFlags::DIRTY) {
            self.stats.migrate_busy += 1;
            return Err(MigrateError::Busy);
        }
        self.evict_unlink(key);
        Ok(())
    }

    /// For CMA's migration in MIGRATE_SYNC mode (Linux
    /// `__alloc_contig_migrate_range`: `reclaim_clean_pages_from_list`, then
    /// `migrate_pages`): waits for I/O in flight on the page in `frame` (a
    /// read filling it, or write-back), then, if it is clean and unpinned,
    /// drops it without offering it to cleancache and hands the frame to
    /// the caller: `Ok(true)`. `Ok(false)`: the page is dirty, migrate it.
    /// `Busy`: a reader pins it or the wait failed; `NotCached`: not (or no
    /// longer, after a failed read) a page-cache frame.
    pub fn drop_clean_frame(&mut self, frame: Frame) -> Result<bool, MigrateError> {
        self.reap();
        let key = self.frame_owner(frame).ok_or(MigrateError::NotCached)?;
        if self.wait_io(key).is_err() {
            self.stats.migrate_busy += 1;
            return Err(MigrateError::Busy);
        }
        if self.frame_owner(frame) != Some(key) {
            return Err(MigrateError::NotCached);
        }
        if self.states.is_busy(frame) {
            self.stats.migrate_busy += 1;
            return Err(MigrateError::Busy);
        }
        if self.states.flags(frame).contains(PageFlags::DIRTY) {
            return Ok(false);
        }
        self.unlink_page(key);
        self.stats.migrate_drops += 1;
        Ok(true)
    }

    /// Moves the page cached in `old` into `new` (copying its content and
    /// state) and updates the index. `new` becomes the page cache's; `old`
    /// is handed to the caller. Refuses busy pages (pinned, under I/O,
    /// locked).
    pub fn migrate(&mut self, old: Frame, new: Frame) -> Result<(), MigrateError> {
        self.migrate_with(old, new, |dst, src| dst.copy_from_slice(src))
    }

    /// [`migrate`](Self::migrate) with the page copied by `copy` (the
    /// kernel's fast page copy).
    pub fn migrate_with(
        &mut self,
        old: Frame,
        new: Frame,
        copy: fn(&mut PageBytes, &PageBytes),
    ) -> Result<(), MigrateError> {
        self.reap();
        let key = self.frame_owner(old).ok_or(MigrateError::NotCached)?;
        if self.states.is_busy(old) {
            self.stats.migrate_busy += 1;
            return Err(MigrateError::Busy);
        }
        if old != new {
            // SAFETY: `old` is a cached frame with no I/O, no pin and no lock
            // (checked above); only read here.
            let src = unsafe { frame_bytes(old) };
            // SAFETY: `new` is a frame the caller hands over (a page-sized,
            // writable frame nobody else uses, as for PageAllocator), and it
            // is not `old`.
            let dst = unsafe { frame_bytes(new) };
            copy(dst, src);
        }
        let flags = self.states.flags(old);
        self.states.detach(old);
        self.states.attach(new, key.0, key.1);
        self.states.set_flags(new, flags);
        if let Some(p) = self.pages.get_mut(&key) {
            p.frame = new;
        }
        self.stats.migrations += 1;
        Ok(())
    }
}
