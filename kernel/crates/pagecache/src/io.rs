//! Device I/O: submitting page reads and write-backs as sector requests
//! straight into page frames, reaping completions (`poll` at the start of
//! every operation, `wait` while one waits for a page) and finishing them.
//!
//! Rules: a page under I/O is pinned (`UNDER_IO`, and `LOCKED` for a read)
//! until every request of it completes; a failed read drops the page (the
//! reader gets the error); a failed write keeps it dirty with `ERROR` and
//! is reported by the next `sync`/`fsync`.

use blkdev::{BlockDevice, BlockError, Op, Request, SECTOR_SIZE};
use fat32::FsError;

use blkdev::QueueMux;

use crate::filesystem::Filesystem;
use crate::{
    CleancacheHooks, Error, Frame, Key, PageAllocator, PageCache, PageFlags, PageStateStore,
    frame_bytes, valid_bytes,
};

impl<D, E, S, F> PageCache<D, E, S, F>
where
    D: BlockDevice,
    E: PageAllocator + CleancacheHooks,
    S: PageStateStore,
    F: Filesystem<Device = QueueMux<D>>,
{
    pub(crate) fn reap(&mut self) {
        while let Some(c) = self.fs.device_mut().poll() {
            self.complete(c.tag, c.result);
        }
    }

    pub(crate) fn wait_one(&mut self) -> Result<(), Error> {
        match self.fs.device_mut().wait() {
            Some(c) => {
                self.complete(c.tag, c.result);
                Ok(())
            }
            None => Err(Error::Device(BlockError::NotReady)),
        }
    }

    /// Whether page `key` is cached with device I/O in flight.
    pub(crate) fn in_flight(&self, key: Key) -> bool {
        self.pages.get(&key).is_some_and(|p| p.io_parts > 0)
    }

    pub(crate) fn wait_io(&mut self, key: Key) -> Result<(), Error> {
        while self.in_flight(key) {
            self.wait_one()?;
        }
        Ok(())
    }

    pub(crate) fn drain(&mut self) -> Result<(), Error> {
        while !self.inflight.is_empty() {
            self.wait_one()?;
        }
        Ok(())
    }

    fn submit(&mut self, req: Request) -> Result<(), BlockError> {
        loop {
            // SAFETY: `req.buf` is inside a frame owned by the page cache that
            // is marked UNDER_IO and pinned by the caller; such frames are
            // neither touched, freed nor migrated until `complete` has seen
            // every part of the I/O.
            match unsafe { self.fs.device_mut().submit(req) } {
                Err(BlockError::QueueFull) => match self.fs.device_mut().wait() {
                    Some(c) => self.complete(c.tag, c.result),
                    None => return Err(BlockError::QueueFull),
                },
                r => return r,
            }
        }
    }

    /// Submits the requests of one page I/O: the first `bytes` (rounded up
    /// to sectors) of the page, along the page's sector runs.
    fn submit_page_io(
        &mut self,
        key: Key,
        op: Op,
        runs: &[(u64, u32)],
        bytes: usize,
    ) -> Result<(), BlockError> {
        let frame = self.pages[&key].frame;
        let want = bytes.div_ceil(SECTOR_SIZE) * SECTOR_SIZE;
        let mut off = 0;
        for &(sector, count) in runs {
            if off >= want {
                break;
            }
            let len = (count as usize * SECTOR_SIZE).min(want - off);
            let tag = self.next_tag;
            self.next_tag += 1;
            self.submit(Request {
                tag,
                op,
                sector,
                buf: (frame.addr() + off) as *mut u8,
                len,
            })?;
            self.inflight.insert(tag, (key, op));
            if let Some(p) = self.pages.get_mut(&key) {
                p.io_parts += 1;
            }
            let sectors = (len / SECTOR_SIZE) as u64;
            match op {
                Op::Read => self.stats.sectors_read += sectors,
                _ => self.stats.sectors_written += sectors,
            }
            off += len;
        }
        Ok(())
    }

    /// Ends a page's I/O state after its last part (or a failed submission).
    fn finish_io(&mut self, key: Key, op: Op) {
        let Some(p) = self.pages.get(&key) else {
            return;
        };
        let (f, err, valid) = (p.frame, p.err, p.valid as usize);
        match op {
            Op::Read => {
                if err.is_none() {
                    // SAFETY: the read's last part completed: no I/O in flight
                    // on this frame, and the page cache is its only user.
                    let data = unsafe { frame_bytes(f) };
                    data[valid..].fill(0);
                    self.states.set_flags(f, PageFlags::UPTODATE);
                }
                self.states
                    .clear_flags(f, PageFlags::LOCKED | PageFlags::UNDER_IO);
            }
            _ => {
                if err.is_none() && self.states.flags(f).contains(PageFlags::DIRTY) {
                    self.states.clear_flags(f, PageFlags::DIRTY);
                    self.dirty -= 1;
                }
                self.states.clear_flags(f, PageFlags::UNDER_IO);
            }
        }
        if err.is_some() {
            self.states.set_flags(f, PageFlags::ERROR);
        }
        self.states.unpin(f);
    }

    fn complete(&mut self, tag: u64, result: Result<(), BlockError>) {
        let Some((key, op)) = self.inflight.remove(&tag) else {
            return;
        };
        let Some(p) = self.pages.get_mut(&key) else {
            return;
        };
        if let Err(e) = result {
            p.err = Some(e);
            match op {
                Op::Read => self.stats.read_errors += 1,
                _ => {
                    self.stats.write_errors += 1;
                    self.wb_error = Some(e);
                }
            }
        }
        p.io_parts -= 1;
        if p.io_parts == 0 {
            self.finish_io(key, op);
        }
    }

    /// Starts reading a freshly inserted page from the device.
    pub(crate) fn start_read(&mut self, key: Key, size: u64) -> Result<(), Error> {
        let map = self.fs.bmap(key.0, key.1)?;
        let valid = valid_bytes(size, key.1);
        if map.bytes() < valid {
            return Err(Error::Fs(FsError::Corrupt(
                "file size exceeds its cluster chain",
            )));
        }
        let p = self.pages.get_mut(&key).ok_or(Error::NoMemory)?;
        let f = p.frame;
        p.valid = valid as u32;
        p.err = None;
        // SAFETY: a frame just inserted, no I/O on it yet.
        unsafe { frame_bytes(f) }.fill(0);
        self.states
            .set_flags(f, PageFlags::LOCKED | PageFlags::UNDER_IO);
        self.states.pin(f);
        self.stats.pages_read += 1;
        let r = self.submit_page_io(key, Op::Read, map.runs(), valid);
        if let Err(e) = r {
            if let Some(p) = self.pages.get_mut(&key) {
                p.err = Some(e);
                if p.io_parts == 0 {
                    self.finish_io(key, Op::Read);
                }
            }
            return Err(Error::Device(e));
        }
        if self.pages[&key].io_parts == 0 {
            self.finish_io(key, Op::Read);
        }
        Ok(())
    }

    /// Starts writing back a dirty page.
    pub(crate) fn start_writeback(&mut self, key: Key) -> Result<(), Error> {
        let size = self.file(key.0)?.size;
        let map = self.fs.bmap(key.0, key.1)?;
        let valid = valid_bytes(size, key.1);
        let p = self.pages.get_mut(&key).ok_or(Error::NoMemory)?;
        let f = p.frame;
        p.err = None;
        self.states.clear_flags(f, PageFlags::ERROR);
        self.states.set_flags(f, PageFlags::UNDER_IO);
        self.states.pin(f);
        self.stats.pages_written += 1;
        let r = self.submit_page_io(key, Op::Write, map.runs(), valid.min(map.bytes()));
        if let Err(e) = r {
            self.wb_error = Some(e);
            if let Some(p) = self.pages.get_mut(&key) {
                p.err = Some(e);
                if p.io_parts == 0 {
                    self.finish_io(key, Op::Write);
                }
            }
            return Err(Error::Device(e));
        }
        if self.pages[&key].io_parts == 0 {
            self.finish_io(key, Op::Write);
        }
        Ok(())
    }

    /// Waits for a page's read; on failure drops the page and returns the
    /// error.
    pub(crate) fn finish_read(&mut self, key: Key) -> Result<Frame, Error> {
        self.wait_io(key)?;
        let p = self
            .pages
            .get(&key)
            .ok_or(Error::Fs(FsError::Corrupt("page vanished during its read")))?;
        let f = p.frame;
        if !self.states.flags(f).contains(PageFlags::UPTODATE) {
            let err = p.err.unwrap_or(BlockError::NotReady);
            self.remove_page(key);
            self.stats.error_drops += 1;
            return Err(Error::Device(err));
        }
        Ok(f)
    }
}
