//! Readahead, as Linux's on-demand readahead: a miss that continues a
//! sequential pattern reads a window (doubling up to `ra_max_pages`) and
//! marks its second page READAHEAD; looking up a marked page submits the
//! next window without waiting. A random miss reads one page.

use blkdev::BlockDevice;

use blkdev::QueueMux;

use crate::filesystem::Filesystem;
use crate::{
    CleancacheHooks, FileId, PageAllocator, PageCache, PageFlags, PageIndex, PageStateStore,
    pages_of,
};

impl<D, E, S, F> PageCache<D, E, S, F>
where
    D: BlockDevice,
    E: PageAllocator + CleancacheHooks,
    S: PageStateStore,
    F: Filesystem<Device = QueueMux<D>>,
{
    /// Decides the readahead window for a miss at `idx`: `(start, len)`.
    pub(crate) fn ondemand_window(
        &mut self,
        file: FileId,
        idx: PageIndex,
        size: u64,
    ) -> (PageIndex, u32) {
        let max = self.cfg.ra_max_pages;
        let init = self.cfg.ra_init_pages.min(max);
        let npages = pages_of(size);
        let Some(fs) = self.files.get_mut(&file) else {
            return (idx, 1);
        };
        let ra = &mut fs.ra;
        if max <= 1 || init <= 1 {
            return (idx, 1);
        }
        let after_window = ra.size > 0 && idx == ra.start + ra.size;
        let sequential = idx == 0 || ra.prev.is_some_and(|p| p + 1 == idx) || after_window;
        let mut len = if !sequential {
            1
        } else if after_window {
            (ra.size * 2).min(max)
        } else {
            init
        };
        len = len.min(npages.saturating_sub(idx)).max(1);
        if len > 1 {
            ra.start = idx;
            ra.size = len;
        }
        (idx, len)
    }

    /// Submits the next window after a READAHEAD-marked page was hit.
    pub(crate) fn async_readahead(&mut self, file: FileId) {
        let max = self.cfg.ra_max_pages;
        let Some(fs) = self.files.get_mut(&file) else {
            return;
        };
        let npages = pages_of(fs.size);
        let start = fs.ra.start + fs.ra.size;
        if start >= npages || max <= 1 {
            return;
        }
        let len = (fs.ra.size * 2).min(max).min(npages - start);
        fs.ra.start = start;
        fs.ra.size = len;
        self.readahead(file, start, start + len, Some(start));
    }

    /// Brings pages `from..to` in without waiting; stops early when memory is
    /// short or a read cannot be submitted.
    pub(crate) fn readahead(
        &mut self,
        file: FileId,
        from: PageIndex,
        to: PageIndex,
        marker: Option<PageIndex>,
    ) {
        let Some(size) = self.files.get(&file).map(|f| f.size) else {
            return;
        };
        let to = to.min(pages_of(size));
        for idx in from..to {
            let key = (file, idx);
            if self.pages.contains_key(&key) {
                continue;
            }
            let Ok(Some(f)) = self.alloc_frame(false) else {
                break;
            };
            self.insert_page(key, f, true);
            if marker == Some(idx) {
                self.states.set_flags(f, PageFlags::READAHEAD);
            }
            if self.fill_inserted(key, f, size, false).is_err() {
                break;
            }
        }
    }
}
