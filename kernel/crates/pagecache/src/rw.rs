//! Reading and writing file data through cached pages, and truncation.
//!
//! Rules (see "Growing a file" in the crate documentation): a size never
//! covers bytes nobody wrote; a growing write goes page by page, doing
//! everything that can fail before the copy; a write invalidates the
//! page's cleancache copy; truncation invalidates from the first changed
//! page and zeroes the tail of a partial last page.

use blkdev::BlockDevice;

use blkdev::QueueMux;

use crate::filesystem::Filesystem;
use crate::lookup::Wait;
use crate::{
    CleancacheHooks, Error, FileId, Key, PAGE_SIZE, PageAllocator, PageCache, PageFlags, PageIndex,
    PageStateStore, RaState, frame_bytes, pages_of, valid_bytes,
};

impl<D, E, S, F> PageCache<D, E, S, F>
where
    D: BlockDevice,
    E: PageAllocator + CleancacheHooks,
    S: PageStateStore,
    F: Filesystem<Device = QueueMux<D>>,
{
    /// Reads from `offset`; returns the bytes read (short at end of file,
    /// 0 at end of file). An offset past the end is [`Error::BeyondEof`].
    pub fn read(&mut self, file: FileId, offset: u64, buf: &mut [u8]) -> Result<usize, Error> {
        self.read_with(file, offset, buf, Wait::Yes)
    }

    /// As [`read`](Self::read), but never waits for the device, so a
    /// caller that holds a lock around the page cache can release it while
    /// the device works: copies the pages that are cached and up to date
    /// from `offset` on, and stops at the first one that is not. That page's
    /// read (and its readahead) is started if it was not cached; the bytes
    /// copied so far are returned (fewer than asked, not at end of file),
    /// or [`Error::InFlight`] when there were none. Call again for the rest:
    /// the call reaps completions first, and a demand read it started is
    /// finished (checked, its error returned) by the next call that reaches
    /// the page. Counters move as for `read`: a miss once, no hit for the
    /// page it started.
    pub fn read_nowait(
        &mut self,
        file: FileId,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, Error> {
        self.read_with(file, offset, buf, Wait::No)
    }

    fn read_with(
        &mut self,
        file: FileId,
        offset: u64,
        buf: &mut [u8],
        wait: Wait,
    ) -> Result<usize, Error> {
        self.reap();
        let size = self.file(file)?.size;
        if offset > size {
            return Err(Error::BeyondEof { offset, size });
        }
        let n = ((size - offset) as usize).min(buf.len());
        let mut done = 0;
        while done < n {
            let pos = offset + done as u64;
            let idx = (pos / PAGE_SIZE) as PageIndex;
            let o = (pos % PAGE_SIZE) as usize;
            let k = (PAGE_SIZE as usize - o).min(n - done);
            let Some(f) = self.read_page(file, idx, wait)? else {
                break;
            };
            // SAFETY: an up-to-date cached page with no I/O in flight; read
            // only, before anything else can run.
            let data = unsafe { frame_bytes(f) };
            buf[done..done + k].copy_from_slice(&data[o..o + k]);
            done += k;
        }
        if done == 0 && n > 0 {
            return Err(Error::InFlight);
        }
        Ok(done)
    }

    /// Writes at `offset`, growing the file if needed (a gap past the old
    /// end reads as zero). Returns the bytes written:
    ///
    /// * `Ok(data.len())`: everything was written.
    /// * `Ok(n)`, `0 < n < data.len()`: a failure (no memory, no space, a
    ///   device error) stopped the write after exactly the first `n` bytes of
    ///   `data`; the file holds them and is `max(old size, offset + n)` long.
    ///   Writing the rest again reports the error.
    /// * `Err(e)`: nothing was written and the file is as before the call
    ///   (size, clusters, content).
    ///
    /// See "Growing a file" in the crate documentation for why no outcome
    /// leaves the size over bytes nobody wrote.
    pub fn write(&mut self, file: FileId, offset: u64, data: &[u8]) -> Result<usize, Error> {
        self.reap();
        if data.is_empty() {
            self.file(file)?;
            return Ok(0);
        }
        let size = self.file(file)?.size;
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or(Error::FileTooLarge)?;
        if end > u32::MAX as u64 {
            return Err(Error::FileTooLarge);
        }
        if end > size {
            // Not enough free clusters: fail before anything changes.
            self.fs.check_grow(file, end)?;
        }
        if offset > size {
            self.grow_zeroed(file, offset)?;
        }
        match self.write_pages(file, offset, Some(data), data.len()) {
            (n, None) => Ok(n),
            (0, Some(e)) => {
                if offset > size {
                    // Nothing of `data` went in: take the gap back too. If
                    // even that fails (the device stopped answering), the
                    // file ends in zeros this call wrote, never in old bytes.
                    self.undo_growth(file, size)?;
                }
                Err(e)
            }
            (n, Some(_)) => Ok(n),
        }
    }

    /// Grows a file to `to` bytes of zeros (`to` > its size), all or
    /// nothing.
    fn grow_zeroed(&mut self, file: FileId, to: u64) -> Result<(), Error> {
        let old = self.file(file)?.size;
        match self.write_pages(file, old, None, (to - old) as usize) {
            (_, None) => Ok(()),
            (n, Some(e)) => {
                if n > 0 {
                    self.undo_growth(file, old)?;
                }
                Err(e)
            }
        }
    }

    /// Writes `len` bytes (`src`, or zeros) at `offset`, page by page.
    /// Returns the bytes written and the error that stopped it, if any.
    fn write_pages(
        &mut self,
        file: FileId,
        offset: u64,
        src: Option<&[u8]>,
        len: usize,
    ) -> (usize, Option<Error>) {
        let mut done = 0;
        while done < len {
            match self.write_page(
                file,
                offset + done as u64,
                src.map(|d| &d[done..]),
                len - done,
            ) {
                Ok(k) => done += k,
                Err(e) => return (done, Some(e)),
            }
        }
        (done, None)
    }

    /// Writes the part of `left` bytes at `pos` that falls in one page and
    /// returns its length. Everything that can fail comes first (the page,
    /// then the clusters and the new size), the copy last, so a failure
    /// changes nothing the file shows.
    fn write_page(
        &mut self,
        file: FileId,
        pos: u64,
        src: Option<&[u8]>,
        left: usize,
    ) -> Result<usize, Error> {
        let size = self.file(file)?.size;
        let idx = (pos / PAGE_SIZE) as PageIndex;
        let o = (pos % PAGE_SIZE) as usize;
        let k = (PAGE_SIZE as usize - o).min(left);
        let key = (file, idx);
        let full = o == 0 && k == PAGE_SIZE as usize;
        let mut fresh = false;
        let f = match self.lookup_cached(key)? {
            Some(f) => f,
            None => {
                if full || valid_bytes(size, idx) == 0 {
                    let f = self.alloc_frame(true)?.ok_or(Error::NoMemory)?;
                    self.insert_page(key, f, false);
                    // SAFETY: a frame just inserted, no I/O on it.
                    unsafe { frame_bytes(f) }.fill(0);
                    self.states.set_flags(f, PageFlags::UPTODATE);
                    self.stats.new_pages += 1;
                    fresh = true;
                    f
                } else {
                    self.fill_page(key, size, true)?;
                    self.finish_read(key)?
                }
            }
        };
        let end = pos + k as u64;
        if end > size {
            // Clusters and size only for bytes about to be written, in a
            // page that is ready: the size never covers bytes nobody wrote.
            if let Err(e) = self.fs.set_len_uninit(file, end) {
                if fresh {
                    self.remove_page(key);
                    self.stats.truncated_pages += 1;
                }
                return Err(e.into());
            }
        }
        // SAFETY: an up-to-date cached page; `lookup_cached`/`finish_read`
        // waited for any I/O on it, and nothing else runs meanwhile.
        let bytes = unsafe { frame_bytes(f) };
        match src {
            Some(d) => bytes[o..o + k].copy_from_slice(&d[..k]),
            None => bytes[o..o + k].fill(0),
        }
        if !self.states.flags(f).contains(PageFlags::DIRTY) {
            self.states.set_flags(f, PageFlags::DIRTY);
            self.dirty += 1;
        }
        self.states.clear_flags(f, PageFlags::ERROR);
        if end > size
            && let Some(fs) = self.files.get_mut(&file)
        {
            fs.size = end;
        }
        self.mark_accessed(key);
        self.env.invalidate_page(file, idx);
        Ok(k)
    }

    /// Takes a file that this call grew back to `old` bytes. Every byte past
    /// `old` was written by the call, so reader pins do not stop it (a pinned
    /// old last page only gets back the zeros it had past `old`). Fails only
    /// if the device stops answering: waiting for a write-back that reclaim
    /// started on a new page, or metadata I/O to shorten the chain.
    fn undo_growth(&mut self, file: FileId, old: u64) -> Result<(), Error> {
        let keys = self.file_keys(file, pages_of(old));
        let partial =
            (!old.is_multiple_of(PAGE_SIZE)).then_some((file, (old / PAGE_SIZE) as PageIndex));
        for k in keys.iter().chain(partial.iter()) {
            self.wait_io(*k)?;
        }
        self.fs.set_len_uninit(file, old)?;
        for k in keys {
            self.remove_page(k);
            self.stats.truncated_pages += 1;
        }
        self.shrunk(file, old, partial);
        Ok(())
    }

    /// Sets a file's size. Shrinking drops the pages past the end (dirty or
    /// not, never offered to cleancache) and invalidates their cleancache
    /// copies; growing fills with zeros, all or nothing (on an error the
    /// file is as before).
    pub fn truncate(&mut self, file: FileId, len: u64) -> Result<(), Error> {
        self.reap();
        if len > u32::MAX as u64 {
            return Err(Error::FileTooLarge);
        }
        let size = self.file(file)?.size;
        if len > size {
            self.fs.check_grow(file, len)?;
            return self.grow_zeroed(file, len);
        }
        self.truncate_inner(file, len)
    }

    fn truncate_inner(&mut self, file: FileId, len: u64) -> Result<(), Error> {
        let size = self.file(file)?.size;
        if len >= size {
            return Ok(());
        }
        let keys = self.file_keys(file, pages_of(len));
        let partial =
            (!len.is_multiple_of(PAGE_SIZE)).then_some((file, (len / PAGE_SIZE) as PageIndex));
        for k in keys.iter().chain(partial.iter()) {
            self.wait_io(*k)?;
        }
        if keys.iter().chain(partial.iter()).any(|k| {
            self.pages
                .get(k)
                .is_some_and(|p| self.states.pin_count(p.frame) > 0)
        }) {
            return Err(Error::Busy);
        }
        self.fs.set_len_uninit(file, len)?;
        for k in keys {
            self.remove_page(k);
            self.stats.truncated_pages += 1;
        }
        self.shrunk(file, len, partial);
        Ok(())
    }

    /// The end of a file that was just shortened to `len` (chain shortened,
    /// pages past the end removed): zeroes the last page past `len`,
    /// invalidates cleancache from it, and records the size.
    fn shrunk(&mut self, file: FileId, len: u64, partial: Option<Key>) {
        if let Some(k) = partial
            && let Some(p) = self.pages.get(&k)
        {
            // SAFETY: no I/O on the page (the caller waited for it); a reader
            // pin only reads, and the bytes past `len` are past end of file.
            let data = unsafe { frame_bytes(p.frame) };
            data[(len % PAGE_SIZE) as usize..].fill(0);
        }
        self.env
            .invalidate_file(file, (len / PAGE_SIZE) as PageIndex);
        if let Some(fs) = self.files.get_mut(&file) {
            fs.size = len;
            fs.ra = RaState::default();
        }
    }
}
