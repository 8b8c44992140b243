//! Page cache: file pages of a FAT32 filesystem kept in page frames, with
//! readahead, write-back, an active/inactive LRU under a memory budget,
//! cleancache hooks and page migration (for the CMA baseline).
//!
//! # Locking
//!
//! None inside: every operation takes `&mut self`, and the kernel keeps the
//! whole `PageCache` under one lock. Hooks are called with it held. Device
//! completions are reaped at the start of every operation (`poll`) and while
//! an operation waits for a page (`wait`); nothing runs in interrupt context.
//!
//! # Page states (in the [`PageStateStore`], i.e. the frame descriptor)
//!
//! * `LOCKED | UNDER_IO` + one pin: a read is filling the frame. Content not
//!   valid; nobody copies from or to it; it cannot be evicted or migrated.
//! * `UPTODATE`: content valid. Bytes past end of file are always zero.
//! * `DIRTY`: newer than the disk. Never evicted or dropped by reclaim before
//!   write-back completes; only truncate/delete discard dirty pages.
//! * `UNDER_IO` + one pin (without `LOCKED`): write-back in flight. A write to
//!   the page waits for it first, so `DIRTY` is cleared on success.
//! * `REFERENCED`, `ACTIVE`: LRU aging, as Linux's `mark_page_accessed`:
//!   first access sets REFERENCED, a second one moves the page to the active
//!   list. Reclaim keeps `active <= inactive` by moving the oldest active
//!   pages to the inactive list (clearing REFERENCED), then evicts from the
//!   old end of the inactive list, skipping busy pages and starting
//!   write-back of dirty ones.
//! * `READAHEAD`: looking this page up starts the next asynchronous
//!   readahead window (Linux's PG_readahead marker).
//! * `ERROR`: the last I/O failed. A failed read drops the page (the reader
//!   gets the error); a failed write keeps the page dirty, is reported by the
//!   next `sync`/`fsync`, and reclaim skips the page until a sync retries it.
//! * Pins from readers ([`PageCache::pin_page`]) make a page busy too:
//!   migration answers `Busy`, truncate/delete answer `Error::Busy`.
//!
//! # Cleancache
//!
//! See [`hooks`]: clean pages leaving by eviction are put; misses (demand
//! and readahead) try `get_page` before the device; writes invalidate the
//! page; truncate invalidates from the first changed page; delete and create
//! invalidate the whole file. Truncated or deleted pages are never put.
//! [`PageCache::new`] starts a mount (`init_fs`: the hooks take an identity
//! no earlier mount had, so another disk, or this one rewritten, never
//! finds this mount's copies) and [`PageCache::unmount`] ends it
//! (`invalidate_fs`, also when its sync fails).
//!
//! # Growing a file
//!
//! Rule: a file's size never covers a byte that nobody wrote. Clusters that
//! `set_len_uninit` allocates hold whatever the disk had (a deleted file's
//! bytes), so a write that grows a file goes page by page, and for each page
//! does everything that can fail first (get the page: cached, read, or a new
//! zeroed frame; then the clusters and the new size, up to the end of this
//! page's bytes) and the copy last. At every moment the bytes between the
//! old and the current size are in cached pages this call filled. So:
//!
//! * a write that fails after `n > 0` bytes of its data returns `Ok(n)`
//!   (exactly what was written, as a POSIX short write);
//! * a write that fails before any of its data went in returns the error
//!   with the file as before: not enough free clusters is found before
//!   anything changes (`check_grow`), and zeros it wrote into a gap past
//!   the old end are taken back (`undo_growth`), which reader pins cannot
//!   refuse (only bytes past the old end change); the same for `truncate`
//!   growing a file. Only if the device stops answering during that undo
//!   does the file keep the zeros (never old bytes).
//!
//! # Memory
//!
//! Frames come from a [`PageAllocator`]; at most `Config::budget_pages` are
//! held. A new page beyond the budget (or when the allocator has none)
//! reclaims one first, waiting for write-back if all candidates are dirty;
//! readahead never waits and is cut short instead.
//!
//! # Readahead (as Linux's on-demand readahead)
//!
//! A miss that continues a sequential pattern (page 0, the page after the
//! previous access, or the page just after the last window) reads a window
//! of `ra_init_pages`, or twice the last window (up to `ra_max_pages`), and
//! marks the window's second page READAHEAD. Looking up a marked page
//! submits the next window (twice as large, same cap) without waiting. A
//! random miss reads one page.
//!
//! # Wiring (kernel)
//!
//! ```text
//! let fs = fat32::Fat32::mount(blkdev::QueueMux::new(virtio_blk))?;
//! let pc = PageCache::new(
//!     fs,
//!     // SAFETY: the kernel maps RAM 1:1 (BuddyPages::new's contract).
//!     unsafe { BuddyPages::new(frame_table_handle) },  // or the kernel's own PageAllocator
//!     FrameDescStates::new(frame_table_handle),         // page state in FrameDesc
//!     cleancache_hooks,                                 // impl CleancacheHooks (or NoCleancache)
//!     Config { budget_pages, ..Config::default() },
//! );
//! ```
//!
//! The kernel implements [`FrameTableAccess`] on a handle that locks its
//! frame table, or its own [`PageAllocator`] (to lend CMA-area frames when
//! ordinary memory runs short: such frames must come back through
//! `free_page`, and the CMA side moves pages out with [`PageCache::migrate`]
//! after looking up their owner with [`PageCache::frame_owner`]).
//! [`LocalPageStates`] and [`HeapPageAllocator`] are the stand-alone versions.
#![no_std]

extern crate alloc;

pub mod frame;
pub mod frametable;
pub mod hooks;
mod stats;

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use blkdev::{BlockDevice, BlockError, Op, QueueMux, Request, SECTOR_SIZE};
use fat32::{DirEntry, Fat32, FsError};
use frames::PageBytes;

pub use frame::{
    Frame, HeapPageAllocator, LocalPageStates, PageAllocator, PageFlags, PageStateStore,
};
pub use frametable::{BuddyPages, FrameDescStates, FrameTableAccess, PAGECACHE_OWNER};
pub use hooks::{CleancacheHooks, FileId, NoCleancache, PAGE_SIZE, PageIndex};
pub use stats::Stats;

/// Page-cache errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The filesystem refused (not found, no space, corrupt, ...).
    Fs(FsError),
    /// A device request failed.
    Device(BlockError),
    /// No frame could be had: the budget is full of busy pages, or the
    /// allocator is empty and nothing can be reclaimed.
    NoMemory,
    /// The page is pinned by a reader (truncate, delete).
    Busy,
    /// A read starting past the end of the file.
    BeyondEof {
        /// Requested offset.
        offset: u64,
        /// File size.
        size: u64,
    },
    /// The file would exceed FAT32's 4 GiB - 1.
    FileTooLarge,
    /// Opening a directory as a file.
    IsADirectory,
    /// `unpin_page` of a frame that is not a pinned cached page.
    NotPinned,
}

impl From<FsError> for Error {
    fn from(e: FsError) -> Self {
        match e {
            FsError::Device(d) => Error::Device(d),
            FsError::FileTooLarge => Error::FileTooLarge,
            FsError::BeyondEof { offset, size } => Error::BeyondEof { offset, size },
            FsError::IsADirectory => Error::IsADirectory,
            e => Error::Fs(e),
        }
    }
}

impl From<BlockError> for Error {
    fn from(e: BlockError) -> Self {
        Error::Device(e)
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Fs(e) => write!(f, "{e}"),
            Error::Device(e) => write!(f, "device: {e}"),
            Error::NoMemory => write!(f, "out of page-cache memory"),
            Error::Busy => write!(f, "page is pinned"),
            Error::BeyondEof { offset, size } => {
                write!(f, "offset {offset} is beyond end of file ({size} bytes)")
            }
            Error::FileTooLarge => write!(f, "file too large for FAT32"),
            Error::IsADirectory => write!(f, "is a directory"),
            Error::NotPinned => write!(f, "frame is not a pinned page"),
        }
    }
}

/// Why a migration did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrateError {
    /// The page is pinned, under I/O or locked: try again later or elsewhere.
    Busy,
    /// The old frame is not a page-cache page (nothing to move).
    NotCached,
}

/// Tunables.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Most pages cached at once (>= 1).
    pub budget_pages: usize,
    /// First readahead window in pages (0 or 1: readahead off).
    pub ra_init_pages: u32,
    /// Largest readahead window in pages (0 or 1: readahead off).
    pub ra_max_pages: u32,
    /// Dirty pages that reclaim starts writing back at once.
    pub writeback_batch: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            budget_pages: 1024,
            ra_init_pages: 4,
            ra_max_pages: 32,
            writeback_batch: 16,
        }
    }
}

type Key = (FileId, PageIndex);

/// What [`PageCache::unmount`] gives back: the filesystem (on its
/// [`QueueMux`]), the allocator, the page-state store and the hooks.
pub type Parts<D, A, S, H> = (Fat32<QueueMux<D>>, A, S, H);

struct Page {
    frame: Frame,
    /// Position in the active or inactive list (by the ACTIVE flag).
    stamp: u64,
    /// Requests of the current I/O still in flight.
    io_parts: u32,
    /// Brought in by readahead, not looked up yet.
    ra: bool,
    /// For a read: bytes of the page inside the file when it was submitted.
    valid: u32,
    /// Error of the last I/O.
    err: Option<BlockError>,
}

#[derive(Default, Clone, Copy)]
struct RaState {
    start: u32,
    size: u32,
    prev: Option<u32>,
}

struct FileState {
    size: u64,
    ra: RaState,
}

/// Bytes of page `idx` inside a file of `size` bytes.
fn valid_bytes(size: u64, idx: PageIndex) -> usize {
    size.saturating_sub(idx as u64 * PAGE_SIZE).min(PAGE_SIZE) as usize
}

/// Pages of a file of `size` bytes.
fn pages_of(size: u64) -> u32 {
    size.div_ceil(PAGE_SIZE) as u32
}

/// The frame's bytes.
///
/// # Safety
///
/// `f` must come from the page cache's allocator (or a migration) and be
/// owned by the page cache, with no I/O in flight on it and no other
/// reference to its bytes alive.
// SAFETY (contract): the `# Safety` section above; callers uphold it.
unsafe fn frame_bytes<'a>(f: Frame) -> &'a mut PageBytes {
    // SAFETY: per the function's contract the frame is PAGE_SIZE bytes of
    // RAM owned by the caller and not aliased.
    unsafe { &mut *(f.addr() as *mut PageBytes) }
}

/// The page cache over one FAT32 filesystem.
pub struct PageCache<D: BlockDevice, A: PageAllocator, S: PageStateStore, H: CleancacheHooks> {
    // Declared first so that it is dropped first: a device that goes away
    // stops touching frames before the allocator frees them.
    fs: Fat32<QueueMux<D>>,
    alloc: A,
    states: S,
    hooks: H,
    cfg: Config,
    pages: BTreeMap<Key, Page>,
    inactive: BTreeMap<u64, Key>,
    active: BTreeMap<u64, Key>,
    stamp: u64,
    inflight: BTreeMap<u64, (Key, Op)>,
    next_tag: u64,
    files: BTreeMap<FileId, FileState>,
    dirty: usize,
    wb_error: Option<BlockError>,
    stats: Stats,
}

impl<D: BlockDevice, A: PageAllocator, S: PageStateStore, H: CleancacheHooks>
    PageCache<D, A, S, H>
{
    /// A page cache over a mounted filesystem. Mount it on
    /// `QueueMux::new(device)` so metadata I/O can run while data I/O is in
    /// flight.
    /// Tells the hooks a new mount begins ([`CleancacheHooks::init_fs`]).
    pub fn new(fs: Fat32<QueueMux<D>>, alloc: A, states: S, mut hooks: H, mut cfg: Config) -> Self {
        hooks.init_fs(fs.geometry().volume_id);
        cfg.budget_pages = cfg.budget_pages.max(1);
        cfg.writeback_batch = cfg.writeback_batch.max(1);
        PageCache {
            fs,
            alloc,
            states,
            hooks,
            cfg,
            pages: BTreeMap::new(),
            inactive: BTreeMap::new(),
            active: BTreeMap::new(),
            stamp: 0,
            inflight: BTreeMap::new(),
            next_tag: 1,
            files: BTreeMap::new(),
            dirty: 0,
            wb_error: None,
            stats: Stats::default(),
        }
    }

    // ---- accessors ----

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }
    /// Changes the budget; takes effect at the next allocation.
    pub fn set_budget(&mut self, pages: usize) {
        self.cfg.budget_pages = pages.max(1);
    }
    /// Pages cached.
    pub fn cached_pages(&self) -> usize {
        self.pages.len()
    }
    /// Dirty pages.
    pub fn dirty_pages(&self) -> usize {
        self.dirty
    }
    /// Readahead pages cached and not looked up yet.
    pub fn readahead_pending(&self) -> usize {
        self.pages.values().filter(|p| p.ra).count()
    }
    /// Checks the [`Stats`] invariants against the current state.
    pub fn check_stats(&self) -> Result<(), &'static str> {
        self.stats
            .check(self.pages.len() as u64, self.readahead_pending() as u64)?;
        if self.pages.len() != self.active.len() + self.inactive.len() {
            return Err("LRU lists do not hold every page");
        }
        let dirty = self
            .pages
            .values()
            .filter(|p| self.states.flags(p.frame).contains(PageFlags::DIRTY))
            .count();
        if dirty != self.dirty {
            return Err("dirty count");
        }
        Ok(())
    }
    /// The filesystem (its stats, geometry).
    pub fn fs(&self) -> &Fat32<QueueMux<D>> {
        &self.fs
    }
    /// The block device under the filesystem, for fault injection and
    /// diagnostics. Requests submitted through it bypass the page cache.
    pub fn device_mut(&mut self) -> &mut D {
        self.fs.device_mut().inner_mut()
    }
    /// The hooks.
    pub fn hooks(&self) -> &H {
        &self.hooks
    }
    /// The hooks, mutable.
    pub fn hooks_mut(&mut self) -> &mut H {
        &mut self.hooks
    }
    /// The page allocator (e.g. to free a frame that migration handed back).
    pub fn allocator_mut(&mut self) -> &mut A {
        &mut self.alloc
    }
    /// The page-state store.
    pub fn states(&self) -> &S {
        &self.states
    }
    /// Which page a frame caches (reverse map).
    pub fn frame_owner(&self, frame: Frame) -> Option<(FileId, PageIndex)> {
        let key = self.states.owner(frame)?;
        (self.pages.get(&key)?.frame == frame).then_some(key)
    }
    /// The frame caching a page, if cached.
    pub fn page_frame(&self, file: FileId, index: PageIndex) -> Option<Frame> {
        self.pages.get(&(file, index)).map(|p| p.frame)
    }
    /// The flags of a cached page.
    pub fn page_flags(&self, file: FileId, index: PageIndex) -> Option<PageFlags> {
        self.pages
            .get(&(file, index))
            .map(|p| self.states.flags(p.frame))
    }
    /// Cached pages from the oldest inactive to the newest active: eviction
    /// order, for tests and diagnostics.
    pub fn lru_order(&self) -> Vec<(FileId, PageIndex)> {
        self.inactive
            .values()
            .chain(self.active.values())
            .copied()
            .collect()
    }

    // ---- files ----

    fn file(&mut self, id: FileId) -> Result<&mut FileState, Error> {
        if !self.files.contains_key(&id) {
            let m = self.fs.metadata(id)?;
            if m.is_dir {
                return Err(Error::IsADirectory);
            }
            self.files.insert(
                id,
                FileState {
                    size: m.size,
                    ra: RaState::default(),
                },
            );
        }
        self.files.get_mut(&id).ok_or(Error::Fs(FsError::StaleFile))
    }

    /// Opens a file by path.
    pub fn open(&mut self, path: &str) -> Result<FileId, Error> {
        self.reap();
        let m = self.fs.lookup(path)?;
        if m.is_dir {
            return Err(Error::IsADirectory);
        }
        self.file(m.id)?;
        Ok(m.id)
    }

    /// Creates an empty file (error if the name exists).
    pub fn create(&mut self, path: &str) -> Result<FileId, Error> {
        self.reap();
        let id = self.fs.create(path)?;
        // The id may be a deleted file's: nothing of that file may survive.
        self.hooks.invalidate_file(id, 0);
        self.files.insert(
            id,
            FileState {
                size: 0,
                ra: RaState::default(),
            },
        );
        Ok(id)
    }

    /// Creates a directory.
    pub fn mkdir(&mut self, path: &str) -> Result<FileId, Error> {
        self.reap();
        Ok(self.fs.mkdir(path)?)
    }

    /// Lists a directory.
    pub fn read_dir(&mut self, path: &str) -> Result<Vec<DirEntry>, Error> {
        self.reap();
        Ok(self.fs.read_dir(path)?)
    }

    /// Size of a file.
    pub fn file_size(&mut self, id: FileId) -> Result<u64, Error> {
        Ok(self.file(id)?.size)
    }

    /// Deletes a file (its cached pages, dirty or not, are dropped, never put
    /// into cleancache) or an empty directory.
    pub fn remove(&mut self, path: &str) -> Result<(), Error> {
        self.reap();
        let m = self.fs.lookup(path)?;
        let keys = if m.is_dir {
            Vec::new()
        } else {
            self.file_keys(m.id, 0)
        };
        for k in &keys {
            self.wait_io(*k)?;
        }
        if keys
            .iter()
            .any(|k| self.states.pin_count(self.pages[k].frame) > 0)
        {
            return Err(Error::Busy);
        }
        self.fs.remove(path)?;
        if !m.is_dir {
            for k in keys {
                self.remove_page(k);
                self.stats.truncated_pages += 1;
            }
            self.hooks.invalidate_file(m.id, 0);
            self.files.remove(&m.id);
        }
        Ok(())
    }

    fn file_keys(&self, file: FileId, from: PageIndex) -> Vec<Key> {
        self.pages
            .range((file, from)..=(file, PageIndex::MAX))
            .map(|(k, _)| *k)
            .collect()
    }

    // ---- LRU ----

    fn next_stamp(&mut self) -> u64 {
        self.stamp += 1;
        self.stamp
    }

    fn lru_remove(&mut self, key: Key) {
        if let Some(p) = self.pages.get(&key) {
            if self.states.flags(p.frame).contains(PageFlags::ACTIVE) {
                self.active.remove(&p.stamp);
            } else {
                self.inactive.remove(&p.stamp);
            }
        }
    }

    fn lru_add(&mut self, key: Key, active: bool) {
        let stamp = self.next_stamp();
        if let Some(p) = self.pages.get_mut(&key) {
            p.stamp = stamp;
            if active {
                self.states.set_flags(p.frame, PageFlags::ACTIVE);
                self.active.insert(stamp, key);
            } else {
                self.states.clear_flags(p.frame, PageFlags::ACTIVE);
                self.inactive.insert(stamp, key);
            }
        }
    }

    fn mark_accessed(&mut self, key: Key) {
        let Some(p) = self.pages.get(&key) else {
            return;
        };
        let f = p.frame;
        let flags = self.states.flags(f);
        if !flags.contains(PageFlags::REFERENCED) {
            self.states.set_flags(f, PageFlags::REFERENCED);
        } else if !flags.contains(PageFlags::ACTIVE) {
            self.lru_remove(key);
            self.states.clear_flags(f, PageFlags::REFERENCED);
            self.lru_add(key, true);
        }
    }

    /// Keeps the active list no longer than the inactive one.
    fn balance(&mut self) {
        while self.active.len() > self.inactive.len() {
            let Some((_, key)) = self.active.pop_first() else {
                break;
            };
            if let Some(p) = self.pages.get(&key) {
                self.states
                    .clear_flags(p.frame, PageFlags::ACTIVE | PageFlags::REFERENCED);
            }
            let stamp = self.next_stamp();
            if let Some(p) = self.pages.get_mut(&key) {
                p.stamp = stamp;
            }
            self.inactive.insert(stamp, key);
        }
    }

    // ---- pages and frames ----

    fn insert_page(&mut self, key: Key, frame: Frame, ra: bool) {
        self.states.attach(frame, key.0, key.1);
        self.pages.insert(
            key,
            Page {
                frame,
                stamp: 0,
                io_parts: 0,
                ra,
                valid: 0,
                err: None,
            },
        );
        self.lru_add(key, false);
    }

    /// Drops a page that has no I/O in flight.
    fn remove_page(&mut self, key: Key) {
        if let Some(f) = self.unlink_page(key) {
            self.alloc.free_page(f);
        }
    }

    /// Takes a page (with no I/O in flight) out of the index, the LRU and
    /// the state store; returns its frame, which the caller now owns.
    fn unlink_page(&mut self, key: Key) -> Option<Frame> {
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

    fn evict(&mut self, key: Key) {
        if let Some(f) = self.evict_unlink(key) {
            self.alloc.free_page(f);
        }
    }

    /// Evicts an idle page: offered to cleancache if clean and valid, then
    /// unlinked; returns its frame.
    fn evict_unlink(&mut self, key: Key) -> Option<Frame> {
        let f = self.pages.get(&key)?.frame;
        let flags = self.states.flags(f);
        if flags.contains(PageFlags::UPTODATE)
            && !flags.intersects(PageFlags::ERROR | PageFlags::DIRTY)
        {
            // SAFETY: a cached frame without I/O in flight (callers skip busy
            // pages); read-only use while nothing else touches it.
            let data = unsafe { frame_bytes(f) };
            self.hooks.put_page(key.0, key.1, data);
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
            for list in [&self.inactive, &self.active] {
                for key in list.values() {
                    let f = self.pages[key].frame;
                    if self.states.is_busy(f) {
                        continue;
                    }
                    let flags = self.states.flags(f);
                    if flags.contains(PageFlags::DIRTY) {
                        if !flags.contains(PageFlags::ERROR) && wb.len() < self.cfg.writeback_batch
                        {
                            wb.push(*key);
                        }
                        continue;
                    }
                    victim = Some(*key);
                    break;
                }
                if victim.is_some() {
                    break;
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
    fn alloc_frame(&mut self, wait: bool) -> Result<Option<Frame>, Error> {
        loop {
            if self.pages.len() < self.cfg.budget_pages
                && let Some(f) = self.alloc.alloc_page()
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

    // ---- I/O ----

    fn reap(&mut self) {
        while let Some(c) = self.fs.device_mut().poll() {
            self.complete(c.tag, c.result);
        }
    }

    fn wait_one(&mut self) -> Result<(), Error> {
        match self.fs.device_mut().wait() {
            Some(c) => {
                self.complete(c.tag, c.result);
                Ok(())
            }
            None => Err(Error::Device(BlockError::NotReady)),
        }
    }

    fn wait_io(&mut self, key: Key) -> Result<(), Error> {
        while self.pages.get(&key).is_some_and(|p| p.io_parts > 0) {
            self.wait_one()?;
        }
        Ok(())
    }

    fn drain(&mut self) -> Result<(), Error> {
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
    fn start_read(&mut self, key: Key, size: u64) -> Result<(), Error> {
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
    fn start_writeback(&mut self, key: Key) -> Result<(), Error> {
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
    fn finish_read(&mut self, key: Key) -> Result<Frame, Error> {
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

    // ---- lookup ----

    /// A cached page that is (or becomes) valid, counting a hit; `None` if
    /// it is not cached (or was dropped because its read had failed).
    fn lookup_cached(&mut self, key: Key) -> Result<Option<Frame>, Error> {
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
    /// readahead.
    fn get_read_page(&mut self, file: FileId, idx: PageIndex) -> Result<Frame, Error> {
        let key = (file, idx);
        let size = self.file(file)?.size;
        let f = match self.lookup_cached(key)? {
            Some(f) => f,
            None => {
                let (start, len) = self.ondemand_window(file, idx, size);
                let f = self.fill_page(key, size, true)?;
                if len > 1 {
                    // Readahead may reclaim: a page restored from cleancache
                    // is not under I/O, so pin it while readahead runs.
                    self.states.pin(f);
                    self.readahead(file, idx + 1, start + len, Some(idx + 1));
                    self.states.unpin(f);
                }
                self.finish_read(key)?
            }
        };
        if let Some(fs) = self.files.get_mut(&file) {
            fs.ra.prev = Some(idx);
        }
        self.mark_accessed(key);
        Ok(f)
    }

    /// Inserts page `key` and fills it from cleancache or starts a device
    /// read. `demand` selects the counters.
    fn fill_page(&mut self, key: Key, size: u64, demand: bool) -> Result<Frame, Error> {
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

    fn fill_inserted(&mut self, key: Key, f: Frame, size: u64, demand: bool) -> Result<(), Error> {
        // SAFETY: a frame just inserted, no I/O on it.
        let data = unsafe { frame_bytes(f) };
        if self.hooks.get_page(key.0, key.1, data) {
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

    /// Decides the readahead window for a miss at `idx`: `(start, len)`.
    fn ondemand_window(&mut self, file: FileId, idx: PageIndex, size: u64) -> (PageIndex, u32) {
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
    fn async_readahead(&mut self, file: FileId) {
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
    fn readahead(
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

    // ---- read / write ----

    /// Reads from `offset`; returns the bytes read (short at end of file,
    /// 0 at end of file). An offset past the end is [`Error::BeyondEof`].
    pub fn read(&mut self, file: FileId, offset: u64, buf: &mut [u8]) -> Result<usize, Error> {
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
            let f = self.get_read_page(file, idx)?;
            // SAFETY: an up-to-date cached page with no I/O in flight; read
            // only, before anything else can run.
            let data = unsafe { frame_bytes(f) };
            buf[done..done + k].copy_from_slice(&data[o..o + k]);
            done += k;
        }
        Ok(n)
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
        self.hooks.invalidate_page(file, idx);
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
        self.hooks
            .invalidate_file(file, (len / PAGE_SIZE) as PageIndex);
        if let Some(fs) = self.files.get_mut(&file) {
            fs.size = len;
            fs.ra = RaState::default();
        }
    }

    // ---- write-back ----

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
    /// parts back.
    pub fn unmount(mut self) -> Result<Parts<D, A, S, H>, Error> {
        let synced = self.sync().and_then(|()| self.drain());
        // Nothing of this mount may be found again, whatever the disk
        // holds next time.
        self.hooks.invalidate_fs();
        synced?;
        for k in self.pages.keys().copied().collect::<Vec<_>>() {
            let p = self.pages.remove(&k);
            if let Some(p) = p {
                self.states.detach(p.frame);
                self.alloc.free_page(p.frame);
            }
        }
        Ok((self.fs, self.alloc, self.states, self.hooks))
    }

    // ---- pins and migration ----

    /// Brings page `index` in (reading it if needed) and pins it: it stays
    /// cached, unmovable and unevictable until [`unpin_page`](Self::unpin_page).
    pub fn pin_page(&mut self, file: FileId, index: PageIndex) -> Result<Frame, Error> {
        self.reap();
        let size = self.file(file)?.size;
        if index >= pages_of(size) {
            return Err(Error::BeyondEof {
                offset: index as u64 * PAGE_SIZE,
                size,
            });
        }
        let f = self.get_read_page(file, index)?;
        self.states.pin(f);
        Ok(f)
    }

    /// Drops a pin taken by `pin_page`.
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
