//! Page cache: file pages of a filesystem kept in page frames, with
//! readahead, write-back, an active/inactive LRU under a memory budget,
//! cleancache hooks and page migration (for the CMA baseline).
//!
//! The filesystem is anything that implements [`Filesystem`] (block map,
//! sizes, length changes, names); `fat32::Fat32` does, and is the default.
//! The tests run it over a fake filesystem (tests/fake.rs) as well as over
//! real FAT32.
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
//! Frames come from the environment's [`PageAllocator`] half; at most
//! `Config::budget_pages` are held. A new page beyond the budget (or when the allocator has none)
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
//! # Files
//!
//! One concept each, with its rules at its top: `files` (open, create,
//! remove, sizes), `lru` (active/inactive lists), `pages` (insert, evict,
//! reclaim, frames), `io` (requests and completions), `lookup` (cached page
//! or a fill from cleancache/the device), `readahead`, `rw` (read, write,
//! truncate), `writeback` (fsync, sync, unmount), `migrate` (pins and
//! migration), `error`; beside [`frame`], [`frametable`], [`hooks`],
//! [`env`](mod@env), [`detachable`] and `stats`. This file holds the
//! types, `new` and the accessors.
//!
//! # Wiring (kernel)
//!
//! ```text
//! let fs = fat32::Fat32::mount(blkdev::QueueMux::new(virtio_blk))?;
//! let pc = PageCache::new(
//!     fs,
//!     // The environment: where frames come from and where clean pages go.
//!     // SAFETY: the kernel maps RAM 1:1 (BuddyPages::new's contract).
//!     (unsafe { BuddyPages::new(frame_table_handle) }, cleancache_hooks),
//!     FrameDescStates::new(frame_table_handle),         // page state in FrameDesc
//!     Config { budget_pages, ..Config::default() },
//! );
//! ```
//!
//! The environment `E` is one object implementing both [`PageAllocator`]
//! and [`CleancacheHooks`] (see [`env`](mod@env)): a pair `(A, H)` of two separate
//! halves, or the kernel's own type when both halves share state (its CMA
//! areas lend frames and own the cleancache). [`Detachable`] lets the
//! kernel take that object away for a while (a CMA pass) with the calls
//! made meanwhile queued. The kernel implements [`FrameTableAccess`] on a
//! handle that locks its frame table; lent CMA-area frames come back
//! through `free_page`, and the CMA side moves pages out with
//! [`PageCache::migrate`] after looking up their owner with
//! [`PageCache::frame_owner`]. [`LocalPageStates`] and
//! [`HeapPageAllocator`] are the stand-alone versions.
#![no_std]

extern crate alloc;

pub mod detachable;
pub mod env;
pub mod frame;
pub mod frametable;
pub mod hooks;
mod stats;

mod error;
mod files;
pub mod filesystem;
mod io;
mod lookup;
mod lru;
mod migrate;
mod pages;
mod readahead;
mod rw;
mod writeback;

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use blkdev::{BlockDevice, BlockError, Op, QueueMux};
use fat32::Fat32;
use frames::PageBytes;

pub use detachable::Detachable;
pub use error::{Error, MigrateError};
pub use filesystem::Filesystem;
pub use frame::{
    Frame, HeapPageAllocator, LocalPageStates, PageAllocator, PageFlags, PageStateStore,
};
pub use frametable::{BuddyPages, FrameDescStates, FrameTableAccess, PAGECACHE_OWNER};
pub use hooks::{CleancacheHooks, FileId, NoCleancache, PAGE_SIZE, PageIndex};
pub use stats::Stats;

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
/// [`QueueMux`]), the environment (allocator and hooks) and the page-state
/// store.
pub type Parts<F, E, S> = (F, E, S);

struct Page {
    frame: Frame,
    /// Position in the active or inactive list (by the ACTIVE flag).
    stamp: u64,
    /// Requests of the current I/O still in flight.
    io_parts: u32,
    /// Brought in by readahead, not looked up yet.
    ra: bool,
    /// A demand read [`PageCache::read_nowait`] started and returned
    /// before it completed: the next `read_nowait` of the page finishes it
    /// (checks it, counting no hit).
    demand_wait: bool,
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

/// The page cache over one filesystem (FAT32 unless `F` says otherwise),
/// in the environment `E` (frames and cleancache, see [`env`](mod@env)).
pub struct PageCache<D, E, S, F = Fat32<QueueMux<D>>>
where
    D: BlockDevice,
    E: PageAllocator + CleancacheHooks,
    S: PageStateStore,
    F: Filesystem<Device = QueueMux<D>>,
{
    // Declared first so that it is dropped first: a device that goes away
    // stops touching frames before the allocator frees them.
    fs: F,
    env: E,
    states: S,
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

impl<D, E, S, F> PageCache<D, E, S, F>
where
    D: BlockDevice,
    E: PageAllocator + CleancacheHooks,
    S: PageStateStore,
    F: Filesystem<Device = QueueMux<D>>,
{
    /// A page cache over a mounted filesystem. Mount it on
    /// `QueueMux::new(device)` so metadata I/O can run while data I/O is in
    /// flight.
    /// Tells the environment a new mount begins ([`CleancacheHooks::init_fs`]).
    pub fn new(fs: F, mut env: E, states: S, mut cfg: Config) -> Self {
        env.init_fs(fs.volume_id());
        cfg.budget_pages = cfg.budget_pages.max(1);
        cfg.writeback_batch = cfg.writeback_batch.max(1);
        PageCache {
            fs,
            env,
            states,
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
    pub fn fs(&self) -> &F {
        &self.fs
    }
    /// The block device under the filesystem, for fault injection and
    /// diagnostics. Requests submitted through it bypass the page cache.
    pub fn device_mut(&mut self) -> &mut D {
        self.fs.device_mut().inner_mut()
    }
    /// The environment (allocator and cleancache hooks).
    pub fn env(&self) -> &E {
        &self.env
    }
    /// The environment, mutable (e.g. to free a frame that migration
    /// handed back).
    pub fn env_mut(&mut self) -> &mut E {
        &mut self.env
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
}

/// A page cache whose environment is a pair `(allocator, hooks)`.
impl<D, A, H, S, F> PageCache<D, (A, H), S, F>
where
    D: BlockDevice,
    A: PageAllocator,
    H: CleancacheHooks,
    S: PageStateStore,
    F: Filesystem<Device = QueueMux<D>>,
{
    /// The hooks.
    pub fn hooks(&self) -> &H {
        &self.env.1
    }
    /// The hooks, mutable.
    pub fn hooks_mut(&mut self) -> &mut H {
        &mut self.env.1
    }
    /// The page allocator (e.g. to free a frame that migration handed back).
    pub fn allocator_mut(&mut self) -> &mut A {
        &mut self.env.0
    }
}
