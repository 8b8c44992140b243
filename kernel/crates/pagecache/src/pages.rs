//! Pages and frames: inserting and removing cached pages, eviction (clean
//! pages are put to cleancache as they leave), reclaim under the budget and
//! frame allocation.
//!
//! Rules: at most `Config::budget_pages` frames are held; reclaim evicts
//! from the old end of the inactive list, skipping busy pages (pinned,
//! under I/O, failed write-back) and starting write-back of dirty ones;
//! only a demand read waits for write-back, readahead is cut short instead.

use alloc::vec::Vec;

use blkdev::BlockDevice;

use blkdev::QueueMux;

use crate::filesystem::Filesystem;
use crate::{
    CleancacheHooks, Error, Frame, Key, Page, PageAllocator, PageCache, PageFlags, PageStateStore,
    frame_bytes,
};

impl<D, E, S, F> PageCache<D, E, S, F>
where
    D: BlockDevice,
    E: PageAllocator + CleancacheHooks,
    S: PageStateStore,
    F: Filesystem<Device = QueueMux<D>>,
{
    pub(crate) fn insert_page(&mut self, key: Key, frame: Frame, ra: bool) {
        self.states.attach(frame, key.0, key.1);
        self.pages.insert(
            key,
            Page {
                frame,
                stamp: 0,
                io_parts: 0,
                ra,
                demand_wait: false,
                valid: 0,
                err: None,
            },
        );
        self.lru_add(key, false);
    }

    /// Drops a page that has no I/O in flight.
    pub(crate) fn remove_page(&mut self, key: Key) {
        if let Some(f) = self.unlink_page(key) {
            self.env.free_page(f);
        }
    }

    /// Takes a page (with no I/O in flight) out of the index, the LRU and
    /// the state store; returns its frame, which the caller now owns.
    pub(crate) fn unlink_page(&mut self, key: Key) -> Option<Frame> {
        self.lru_remove(key);
        let p = self.pages.remove(&key)?;
        if self.states.flags(p.frame).contains(PageFlags::DIRTY) {
            self.dirty -= 1;
        }
        if p.ra {
            self.stats.ra_wasted += 1;
        }
        self.states.detach(p.frame);
        Some(p.frame)
    }

    pub(crate) fn evict(&mut self, key: Key) {
        if let Some(f) = self.evict_unlink(key) {
            self.env.free_page(f);
        }
    }

    /// Evicts an idle page: offered to cleancache if clean and valid, then
    /// unlinked; returns its frame.
    pub(crate) fn evict_unlink(&mut self, key: Key) -> Option<Frame> {
        let f = self.pages.get(&key)?.frame;
        let flags = self.states.flags(f);
        if flags.contains(PageFlags::UPTODATE)
            && !flags.intersects(PageFlags::ERROR | PageFlags::DIRTY)
        {
            // SAFETY: a cached frame without I/O in flight (callers skip busy
            // pages); read-only use while nothing else touches it.
            let data = unsafe { frame_bytes(f) };
            self.env.put_page(key.0, key.1, data);
            self.stats.cc_puts += 1;
            self.stats.evictions += 1;
        } else {
            self.stats.error_drops += 1;
        }
        self.unlink_page(key)
    }

    /// Evicts one page. Returns false if nothing could be evicted; with
    /// `wait`, waits for write-back of dirty candidates before giving up.
    fn reclaim_one(&mut self, wait: bool) -> Result<bool, Error> {
        loop {
            self.balance();
            let mut victim = None;
            let mut wb = Vec::new();
            // Each page is looked at once, from the old end. One passed over
            // (busy, or dirty) goes to the young end of its list, as Linux's
            // shrink_folio_list puts back the folios it could not reclaim
            // (folio_putback_lru): the next scan does not walk the same
            // pinned pages again, so an eviction costs O(1) amortized, not
            // O(pinned pages).
            'lists: for active in [false, true] {
                for _ in 0..self.lru_list(active).len() {
                    let Some((&stamp, &key)) = self.lru_list(active).first_key_value() else {
                        break;
                    };
                    self.stats.reclaim_scanned += 1;
                    let f = self.pages[&key].frame;
                    if !self.states.is_busy(f) {
                        let flags = self.states.flags(f);
                        if !flags.contains(PageFlags::DIRTY) {
                            victim = Some(key);
                            break 'lists;
                        }
                        if !flags.contains(PageFlags::ERROR) && wb.len() < self.cfg.writeback_batch
                        {
                            wb.push(key);
                        }
                    }
                    self.lru_rotate(active, stamp, key);
                }
            }
            for key in wb {
                // A failed submission leaves the page dirty with ERROR set;
                // reclaim then skips it, the next sync reports it.
                if self.start_writeback(key).is_ok() {
                    self.stats.reclaim_writebacks += 1;
                }
            }
            if let Some(key) = victim {
                self.evict(key);
                return Ok(true);
            }
            if !wait || self.inflight.is_empty() {
                return Ok(false);
            }
            self.wait_one()?;
        }
    }

    /// A frame for a new page, reclaiming to stay within the budget.
    /// Readahead (`wait == false`) gets `None` instead of waiting.
    pub(crate) fn alloc_frame(&mut self, wait: bool) -> Result<Option<Frame>, Error> {
        loop {
            if self.pages.len() < self.cfg.budget_pages
                && let Some(f) = self.env.alloc_page()
            {
                return Ok(Some(f));
            }
            if !self.reclaim_one(wait)? {
                return if wait { Err(Error::NoMemory) } else { Ok(None) };
            }
        }
    }

    /// Evicts up to `n` pages (writing dirty ones back first); returns how
    /// many left. For memory pressure from outside.
    pub fn shrink(&mut self, n: usize) -> Result<usize, Error> {
        self.reap();
        let mut done = 0;
        while done < n && self.reclaim_one(true)? {
            done += 1;
        }
        Ok(done)
    }
}
