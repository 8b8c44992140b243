//! Looking a page up: a cached page (waiting for its read if one is in
//! flight), else filling a new one from cleancache or the device.
//!
//! Rule: every miss (demand and readahead) asks cleancache before the
//! device; a hit there means the device is not read.

use blkdev::BlockDevice;

use blkdev::QueueMux;

use crate::filesystem::Filesystem;
use crate::{
    CleancacheHooks, Error, FileId, Frame, Key, PageAllocator, PageCache, PageFlags, PageIndex,
    PageStateStore, frame_bytes, valid_bytes,
};

/// Whether a read waits for the device when a page's read is in flight.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Wait {
    /// Wait: the page comes back up to date (or with its read's error).
    Yes,
    /// Do not wait: say so (`None`, [`Error::InFlight`]) and let the caller
    /// come back, so that it can drop a lock while the device works.
    No,
}

impl<D, E, S, F> PageCache<D, E, S, F>
where
    D: BlockDevice,
    E: PageAllocator + CleancacheHooks,
    S: PageStateStore,
    F: Filesystem<Device = QueueMux<D>>,
{
    /// A cached page that is (or becomes) valid, counting a hit; `None` if
    /// it is not cached (or was dropped because its read had failed).
    pub(crate) fn lookup_cached(&mut self, key: Key) -> Result<Option<Frame>, Error> {
        if !self.pages.contains_key(&key) {
            return Ok(None);
        }
        self.wait_io(key)?;
        let f = self.pages[&key].frame;
        let flags = self.states.flags(f);
        if !flags.contains(PageFlags::UPTODATE) {
            // A readahead read failed: forget it and treat as a miss.
            self.remove_page(key);
            self.stats.error_drops += 1;
            return Ok(None);
        }
        self.stats.hits += 1;
        let p = self.pages.get_mut(&key).ok_or(Error::NoMemory)?;
        if p.ra {
            p.ra = false;
            self.stats.ra_used += 1;
        }
        if flags.contains(PageFlags::READAHEAD) {
            self.states.clear_flags(f, PageFlags::READAHEAD);
            // Readahead may reclaim: keep this page while it runs.
            self.states.pin(f);
            self.async_readahead(key.0);
            self.states.unpin(f);
        }
        Ok(Some(f))
    }

    /// Page `idx` for reading: hit, or miss with cleancache / device read and
    /// readahead. With [`Wait::No`] it never waits for the device: `None`
    /// while the page's read is in flight (its read, and its readahead,
    /// started here if it was not cached). A demand read started that way is
    /// finished (checked, its error returned) by the next call that reaches
    /// the page, in either mode; its miss was counted when it started, so
    /// finishing it counts no hit. With [`Wait::Yes`] the answer is always
    /// `Some`.
    pub(crate) fn read_page(
        &mut self,
        file: FileId,
        idx: PageIndex,
        wait: Wait,
    ) -> Result<Option<Frame>, Error> {
        let key = (file, idx);
        let size = self.file(file)?.size;
        if wait == Wait::No && self.in_flight(key) {
            return Ok(None);
        }
        // Taken: the read it marks is finished now, whatever the outcome.
        let started_here = self
            .pages
            .get_mut(&key)
            .is_some_and(|p| core::mem::take(&mut p.demand_wait));
        let f = if started_here {
            self.finish_read(key)?
        } else if let Some(f) = self.lookup_cached(key)? {
            f
        } else {
            let (start, len) = self.ondemand_window(file, idx, size);
            let f = self.fill_page(key, size, true)?;
            if len > 1 {
                // Readahead may reclaim: a page restored from cleancache
                // is not under I/O, so pin it while readahead runs.
                self.states.pin(f);
                self.readahead(file, idx + 1, start + len, Some(idx + 1));
                self.states.unpin(f);
            }
            if wait == Wait::No && self.in_flight(key) {
                if let Some(p) = self.pages.get_mut(&key) {
                    p.demand_wait = true;
                }
                return Ok(None);
            }
            self.finish_read(key)?
        };
        if let Some(fs) = self.files.get_mut(&file) {
            fs.ra.prev = Some(idx);
        }
        self.mark_accessed(key);
        Ok(Some(f))
    }

    /// Inserts page `key` and fills it from cleancache or starts a device
    /// read. `demand` selects the counters.
    pub(crate) fn fill_page(&mut self, key: Key, size: u64, demand: bool) -> Result<Frame, Error> {
        let f = self.alloc_frame(true)?.ok_or(Error::NoMemory)?;
        if demand {
            // Counted once a frame is had: a miss that found no memory is an
            // error, not a miss.
            self.stats.misses += 1;
        }
        self.insert_page(key, f, !demand);
        self.fill_inserted(key, f, size, demand)?;
        Ok(f)
    }

    pub(crate) fn fill_inserted(
        &mut self,
        key: Key,
        f: Frame,
        size: u64,
        demand: bool,
    ) -> Result<(), Error> {
        // SAFETY: a frame just inserted, no I/O on it.
        let data = unsafe { frame_bytes(f) };
        if self.env.get_page(key.0, key.1, data) {
            // Past end of file must read as zero whatever the copy holds.
            data[valid_bytes(size, key.1)..].fill(0);
            self.states.set_flags(f, PageFlags::UPTODATE);
            if demand {
                self.stats.cc_demand_restores += 1;
            } else {
                self.stats.cc_ra_restores += 1;
            }
            return Ok(());
        }
        self.stats.cc_get_misses += 1;
        if demand {
            self.stats.demand_reads += 1;
        } else {
            self.stats.ra_pages_read += 1;
        }
        if let Err(e) = self.start_read(key, size) {
            self.wait_io(key)?;
            if demand {
                // The page is counted as read; drop it as an error.
                self.remove_page(key);
                self.stats.error_drops += 1;
            }
            return Err(e);
        }
        Ok(())
    }
}
