//! Cleancache backend that lives only in memory donated by GCMA areas.
//!
//! A second-chance cache for *clean* file pages: when the page cache evicts a
//! clean page it may hand a copy to [`Cleancache::put_page`]; a later miss in
//! the page cache asks [`Cleancache::get_page`] before reading the device.
//! Every byte of storage comes from *pools*: contiguous runs of page frames
//! that a GCMA area lends while it does not need them. GCMA can take any pool
//! page back at any moment ([`Cleancache::take_back`]), in bounded time,
//! without I/O, copying or waiting: the cached copy is simply dropped, which is
//! always allowed because the same data is on disk.
//!
//! # Keys: filesystem, file, offset
//!
//! A copy is stored under a [`Key`]: `(fs, file, index)`. `fs` is an
//! [`FsId`], the identity of **one mount** of a filesystem, handed out by
//! [`Cleancache::register_fs`] when the filesystem is mounted: a generation
//! number that this `Cleancache` never hands out twice (a `u64` counter that
//! only grows), plus the volume's serial number (informative; two disks may
//! share one). `FsId` has no public constructor, so a key can only name a
//! mount that was registered here. `file` is the filesystem's file id (the
//! FAT32 directory-entry position, the same on two disks laid out alike)
//! and `index` the page offset in the file. Rules:
//!
//! * Every mount registers and gets a new `FsId`: a second disk, the same
//!   disk rewritten, or the same disk mounted again never shares a key with
//!   an earlier mount, whatever its file ids.
//! * Unmount calls [`Cleancache::invalidate_fs`]: every copy of that mount is
//!   dropped (with every stale index entry of it), and the id is retired:
//!   later puts naming it are rejected (counted in [`Stats::put_rejected`]),
//!   gets miss. Cost: O(k log n) for the k index entries of that mount
//!   (k <= slots, see below), one B-tree range; no I/O, no copy. It runs
//!   under the cleancache lock, so a GCMA take-back waits at most that long.
//! * A mount that ends without unmount (its page cache dropped) leaves its
//!   copies behind under a generation nobody registers again: never hit,
//!   reused by the LRU like any old copy.
//!
//! # States of a pool page
//!
//! ```text
//!                 put_page (free page, or LRU reuse of a Cached page)
//!        +------------------------------------------------+
//!        |                                                v
//!      Free  <---- get_page (hit, exclusive) ----   Cached(key)
//!        ^   <---- invalidate_page/_file/_fs ----         |
//!        |                                                |
//!    give_back                                        take_back
//!        |                                                |
//!        +-------------------- TakenBack <----------------+
//!                                  ^
//!      Free ------ take_back ------+
//! ```
//!
//! * `Free`: owned by cleancache, holds nothing. On the free list.
//! * `Cached(key)`: owned by cleancache, holds the only copy cleancache
//!   has of that page (`key` = `(fs, file, index)`). On the LRU list and in
//!   the index.
//! * `TakenBack`: owned by the GCMA area (a contiguous allocation). Cleancache
//!   never reads or writes it, until the GCMA area calls
//!   [`Cleancache::give_back`]. The index may still hold a *stale* entry
//!   naming it (see below), which is never followed without a check.
//!
//! Who moves a page:
//! * the page cache (through `put_page`, `get_page`, `invalidate_*`) moves
//!   pages between `Free` and `Cached` only;
//! * GCMA (through `take_back*` / `give_back*`) moves `Free`/`Cached` to
//!   `TakenBack` and `TakenBack` back to `Free`; nothing else touches
//!   `TakenBack`.
//!
//! Nothing outside this crate can hold a reference to a pool page: data goes
//! in and out by copy. That is what makes `take_back` unconditional and
//! bounded: O(1), a list unlinking and a state change (the index is left
//! alone, see below), no I/O, no copy, no waiting, never a sweep.
//!
//! # The index and lazy deletion
//!
//! The index maps a `(fs, file, index)` key to a slot. `take_back` of a `Cached` slot
//! does *not* remove the slot's key from it (a B-tree removal is the one
//! O(log n) step GCMA would otherwise pay per page): the entry becomes
//! *stale*, and the key is queued for removal. Rules:
//!
//! * An entry `key -> s` is **valid** iff slot `s` is `Cached` with exactly
//!   `key`; otherwise it is stale. Every `Cached` slot has a valid entry (a
//!   put of `key` into slot `s` always inserts `key -> s`), so a key has at
//!   most one slot holding it and that slot's entry is the one in the index.
//! * Every lookup (`get_page`, `put_page`, `invalidate_page`,
//!   `invalidate_file`, `invalidate_fs`, `contains`) checks validity and treats a stale entry
//!   as absent (and removes it, except `contains`, which cannot mutate).
//! * A taken-back slot that is given back and reused holds a different key
//!   (or the same key through a new put, which rewrote the entry), so an old
//!   stale entry naming it still fails the check: reuse never revives a copy.
//! * Garbage is bounded without any O(n) sweep: `take_back` pushes
//!   `(key, slot)` on a pending queue (O(1), never reallocates: its capacity
//!   is the number of slots), and every `put_page` first pops one pending
//!   item and removes its entry if that entry still names the slot and is
//!   stale (O(log n), on the page cache's path, never on GCMA's). A valid
//!   entry only goes stale through a take-back, which queues it, so every
//!   stale entry has its pending item. With `P` pending items and `C` cached
//!   slots, a take-back moves one from `C` to `P`, a put drains one from `P`
//!   and adds at most one to `C` (or finds `P == 0` and `C <= slots`), and
//!   nothing else adds to either: `P + C <= slots` at all times, so the index
//!   (`C` valid + at most `P` stale entries) never holds more entries than
//!   there are slots.
//!
//! # Eviction
//!
//! One LRU across every page of every pool: `put_page` takes a free page if
//! there is one, otherwise it reuses the least recently stored page (counted in
//! [`Stats::evicted`]). A put for a key already held replaces the copy in place
//! and makes it most recent. When every pool page is taken back, puts are
//! dropped (counted in [`Stats::put_rejected`]).
//!
//! # Locking
//!
//! This type does no locking. The kernel holds **one lock around cleancache
//! and the GCMA areas together** (`contig::Areas` owns the cleancache for that
//! reason), so a take-back never races with a put or a get, and the page
//! cache's hooks and GCMA's allocations are serialized.
//!
//! # Why a hit never returns stale data
//!
//! * Only clean pages are put: the copy equals what is on disk at that moment.
//! * `get_page` is exclusive: a hit removes the copy. While a page is in the
//!   page cache (where it may be written), cleancache holds no copy of it; the
//!   next put (on the next eviction) carries the current content.
//! * Every path that changes a file's data without going through a page
//!   cache read (a whole-page overwrite that skips the read, a write that
//!   bypasses the page cache, truncate, delete) calls `invalidate_page` or
//!   `invalidate_file` *before* the new data can be read, under the same lock.
//!   Delete uses `invalidate_file(fs, file, 0)` before the `FileId` can be
//!   reused.
//! * Data that changes while the filesystem is not mounted (another disk in
//!   the slot, the disk rewritten) cannot be seen: the key names the mount,
//!   a new mount has a new `FsId`, and unmount dropped the old mount's copies.
//! * Every operation runs under the one lock, so the order of puts and
//!   invalidations seen here is the order in which they happened: for a key,
//!   a hit returns the content of the last put, and nothing put before the
//!   last invalidation of that key.
//! * `take_back` only drops copies; it never makes an old copy reappear: the
//!   index entry it leaves behind is stale, and every lookup checks that the
//!   slot still holds exactly that key in state `Cached`, which a slot only
//!   reaches again through a put (that rewrites the entry).
//!
//! # Frame descriptors
//!
//! The kernel mirrors pool page states into its frame descriptors through an
//! [`Observer`] ([`Cleancache::set_observer`]): `Free` -> idle reserved
//! frame, `Cached` -> cleancache frame, `TakenBack` -> allocated frame. It is
//! called on every change, inside the operation, so descriptors never lag.
//!
//! # Why raw pointers are sound here
//!
//! A pool is given as a raw base pointer (the frames are mapped by the kernel,
//! not allocated by Rust). [`Cleancache::add_pool`] is `unsafe` and its caller
//! promises that the memory is valid for reads and writes, is used by nobody
//! else while it is lent (pages not `TakenBack`) and outlives the
//! `Cleancache`. Cleancache only touches a page while it is `Free` or
//! `Cached`, with a bounds-checked page number, through `&mut self`, so no two
//! accesses to the same bytes can overlap, and it never hands out a pointer or
//! reference into a pool.

#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use core::fmt;
use core::ptr::NonNull;

/// A file as the page cache names it (inode number or similar).
pub type FileId = u64;
/// Page number inside a file.
pub type PageIndex = u32;
/// Physical page frame number.
pub type Pfn = u64;
/// Size of a page and of a cleancache slot.
pub const PAGE_SIZE: usize = 4096;

/// Identity of one mount of a filesystem, from [`Cleancache::register_fs`];
/// see the module documentation. Never handed out twice by one `Cleancache`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FsId {
    generation: u64,
    volume: u32,
}

impl FsId {
    /// The mount's generation: 1 for the first `register_fs`, then 2, ...
    pub const fn generation(self) -> u64 {
        self.generation
    }
    /// The volume serial number given at registration.
    pub const fn volume(self) -> u32 {
        self.volume
    }
}

impl fmt::Display for FsId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mount {} (volume {:08x})", self.generation, self.volume)
    }
}

/// What a cached copy is a copy of: filesystem (mount), file, page.
pub type Key = (FsId, FileId, PageIndex);

/// Handle of a pool, returned by [`Cleancache::add_pool`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PoolId(u32);

impl PoolId {
    /// Position of the pool in registration order (0, 1, ...).
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// What a pool page currently holds, see the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageState {
    /// Lendable and empty.
    Free,
    /// Lendable, holds a copy of page `index` of `file` on mount `fs`.
    Cached {
        fs: FsId,
        file: FileId,
        index: PageIndex,
    },
    /// Owned by the GCMA area; cleancache does not touch it.
    TakenBack,
}

/// What a successful take-back of one page found there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reclaimed {
    /// The page was free.
    Idle,
    /// The page held a copy of `(fs, file, index)`, which has been dropped.
    DroppedCopy {
        fs: FsId,
        file: FileId,
        index: PageIndex,
    },
}

/// Errors of pool management.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolError {
    /// No pool has this id.
    UnknownPool(PoolId),
    /// `page` (or the end of a range) is not inside the pool of `pages` pages.
    PageOutOfRange {
        pool: PoolId,
        page: usize,
        pages: usize,
    },
    /// The page is already taken back.
    AlreadyTakenBack { pool: PoolId, page: usize },
    /// `give_back` of a page that was not taken back.
    NotTakenBack { pool: PoolId, page: usize },
    /// `add_pool` with zero pages.
    EmptyPool,
    /// `add_pool` would exceed the number of slots cleancache can index.
    TooManyPages,
    /// `add_pool` with frames overlapping an existing pool.
    Overlap { base_pfn: Pfn, pages: usize },
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PoolError::UnknownPool(p) => write!(f, "unknown cleancache pool {}", p.0),
            PoolError::PageOutOfRange { pool, page, pages } => write!(
                f,
                "page {page} is outside cleancache pool {} ({pages} pages)",
                pool.0
            ),
            PoolError::AlreadyTakenBack { pool, page } => {
                write!(f, "page {page} of pool {} is already taken back", pool.0)
            }
            PoolError::NotTakenBack { pool, page } => {
                write!(f, "page {page} of pool {} was not taken back", pool.0)
            }
            PoolError::EmptyPool => f.write_str("a cleancache pool needs at least one page"),
            PoolError::TooManyPages => f.write_str("too many cleancache pages to index"),
            PoolError::Overlap { base_pfn, pages } => write!(
                f,
                "pool at pfn {base_pfn:#x} ({pages} pages) overlaps an existing pool"
            ),
        }
    }
}

/// Counters. Cumulative counters count events since the pool was added;
/// `cached_now`, `lendable_now` and `size` are snapshots.
///
/// `missed` and `put_rejected` are not attributable to a pool: they are zero in
/// [`Cleancache::pool_stats`] and set in [`Cleancache::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Pages in the pool(s).
    pub size: usize,
    /// Successful puts (new copy or replacement of a held copy).
    pub stored: u64,
    /// Gets that hit (the page was copied out and dropped).
    pub restored: u64,
    /// Gets that missed.
    pub missed: u64,
    /// Copies dropped by `invalidate_page` / `invalidate_file` /
    /// `invalidate_fs`.
    pub invalidated: u64,
    /// Copies dropped to make room for a put (LRU reuse).
    pub evicted: u64,
    /// Copies dropped because GCMA took their page back.
    pub dropped_by_take_back: u64,
    /// Puts dropped because every page was taken back, or because they named
    /// a mount that is not registered (unmounted).
    pub put_rejected: u64,
    /// Pages taken back by GCMA.
    pub taken_back: u64,
    /// Pages given back by GCMA.
    pub given_back: u64,
    /// Pages holding a copy now.
    pub cached_now: usize,
    /// Pages cleancache may use now (`Free` + `Cached`, i.e. not taken back).
    pub lendable_now: usize,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.size += o.size;
        self.stored += o.stored;
        self.restored += o.restored;
        self.missed += o.missed;
        self.invalidated += o.invalidated;
        self.evicted += o.evicted;
        self.dropped_by_take_back += o.dropped_by_take_back;
        self.put_rejected += o.put_rejected;
        self.taken_back += o.taken_back;
        self.given_back += o.given_back;
        self.cached_now += o.cached_now;
        self.lendable_now += o.lendable_now;
    }
}

const NIL: u32 = u32::MAX;

/// Per page metadata. `prev`/`next` link the page into the free list (state
/// `Free`) or the LRU list (state `Cached`); a `TakenBack` page is on no list.
#[derive(Clone, Copy, Debug)]
struct Slot {
    state: PageState,
    pool: u32,
    prev: u32,
    next: u32,
}

/// Intrusive doubly linked list over `slots`, O(1) push/unlink.
#[derive(Clone, Copy, Debug)]
struct List {
    head: u32,
    tail: u32,
}

impl List {
    const EMPTY: List = List {
        head: NIL,
        tail: NIL,
    };

    fn push_back(&mut self, slots: &mut [Slot], s: u32) {
        let i = s as usize;
        slots[i].prev = self.tail;
        slots[i].next = NIL;
        if self.tail == NIL {
            self.head = s;
        } else {
            slots[self.tail as usize].next = s;
        }
        self.tail = s;
    }

    fn unlink(&mut self, slots: &mut [Slot], s: u32) {
        let Slot { prev, next, .. } = slots[s as usize];
        if prev == NIL {
            self.head = next;
        } else {
            slots[prev as usize].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            slots[next as usize].prev = prev;
        }
        slots[s as usize].prev = NIL;
        slots[s as usize].next = NIL;
    }
}

struct Pool {
    base: NonNull<u8>,
    pages: usize,
    base_pfn: Pfn,
    first_slot: u32,
    stats: Stats,
}

/// The cleancache: pools, their pages' states, the per-key index and the LRU.
pub struct Cleancache {
    pools: Vec<Pool>,
    slots: Vec<Slot>,
    /// Key -> slot; valid entries plus `stale` stale ones (see the module
    /// documentation).
    index: BTreeMap<Key, u32>,
    /// Index entries whose slot no longer holds their key.
    stale: usize,
    /// `(key, slot)` of entries `take_back` left stale, to remove on later
    /// puts; capacity >= number of slots, see the module documentation.
    pending: Vec<(Key, u32)>,
    /// Mounts registered and not yet invalidated.
    mounts: BTreeSet<FsId>,
    /// Generation of the last `register_fs` (0: none yet).
    generation: u64,
    free: List,
    lru: List,
    missed: u64,
    put_rejected: u64,
    observer: Option<Observer>,
    copy: PageCopy,
}

/// Copies one whole page (`dst`, `src`): how pages enter and leave the
/// pools. The default is `copy_from_slice`; a kernel sets its fast page
/// copy with [`Cleancache::set_page_copy`].
pub type PageCopy = fn(&mut [u8; PAGE_SIZE], &[u8; PAGE_SIZE]);

fn slice_copy(dst: &mut [u8; PAGE_SIZE], src: &[u8; PAGE_SIZE]) {
    dst.copy_from_slice(src);
}

/// Called with a page's pfn and new state on every state change of a pool
/// page (not for the initial `Free` state at `add_pool`): how the kernel
/// keeps its frame descriptors in sync. Runs under the cleancache lock; it
/// must not call back into cleancache.
pub type Observer = Box<dyn FnMut(Pfn, PageState) + Send>;

// SAFETY: the only non-`Send` fields are the pools' base pointers. By the
// contract of `add_pool` the memory behind them is owned by this `Cleancache`
// alone (for pages not taken back), so moving the whole structure to another
// CPU moves that ownership with it; all access goes through `&mut self`.
unsafe impl Send for Cleancache {}

impl Default for Cleancache {
    fn default() -> Self {
        Self::new()
    }
}

impl Cleancache {
    /// An empty cleancache: without pools every put is rejected.
    pub const fn new() -> Self {
        Cleancache {
            pools: Vec::new(),
            slots: Vec::new(),
            index: BTreeMap::new(),
            stale: 0,
            pending: Vec::new(),
            mounts: BTreeSet::new(),
            generation: 0,
            free: List::EMPTY,
            lru: List::EMPTY,
            missed: 0,
            put_rejected: 0,
            observer: None,
            copy: slice_copy,
        }
    }

    /// Sets the function that copies pages into and out of the pools.
    pub fn set_page_copy(&mut self, copy: PageCopy) {
        self.copy = copy;
    }

    /// Donates `pages` page frames starting at `base` (physical frame
    /// `base_pfn`) to cleancache. Every page starts `Free`.
    ///
    /// # Safety
    ///
    /// `base` must be valid for reads and writes of `pages * PAGE_SIZE` bytes
    /// for as long as this `Cleancache` exists. Nobody else may access a page
    /// of the pool except while it is taken back (between a successful
    /// `take_back` of that page and the matching `give_back`).
    // SAFETY (contract): the `# Safety` section above; callers uphold it.
    pub unsafe fn add_pool(
        &mut self,
        base: NonNull<u8>,
        pages: usize,
        base_pfn: Pfn,
    ) -> Result<PoolId, PoolError> {
        if pages == 0 {
            return Err(PoolError::EmptyPool);
        }
        let first = self.slots.len();
        if first + pages >= NIL as usize || self.pools.len() >= NIL as usize {
            return Err(PoolError::TooManyPages);
        }
        let end = base_pfn
            .checked_add(pages as Pfn)
            .ok_or(PoolError::Overlap { base_pfn, pages })?;
        if self
            .pools
            .iter()
            .any(|p| base_pfn < p.base_pfn + p.pages as Pfn && p.base_pfn < end)
        {
            return Err(PoolError::Overlap { base_pfn, pages });
        }
        let id = self.pools.len() as u32;
        self.slots.reserve(pages);
        for s in first..first + pages {
            self.slots.push(Slot {
                state: PageState::Free,
                pool: id,
                prev: NIL,
                next: NIL,
            });
            self.free.push_back(&mut self.slots, s as u32);
        }
        // `take_back` pushes without allocating: room for one pending item
        // per slot, the most there can be.
        self.pending.reserve(self.slots.len() - self.pending.len());
        self.pools.push(Pool {
            base,
            pages,
            base_pfn,
            first_slot: first as u32,
            stats: Stats {
                size: pages,
                lendable_now: pages,
                ..Stats::default()
            },
        });
        Ok(PoolId(id))
    }

    /// Installs (or removes) the observer of page state changes; see
    /// [`Observer`].
    pub fn set_observer(&mut self, observer: Option<Observer>) {
        self.observer = observer;
    }

    /// Number of pools.
    pub fn pool_count(&self) -> usize {
        self.pools.len()
    }

    /// First pfn and page count of a pool.
    pub fn pool_span(&self, pool: PoolId) -> Result<(Pfn, usize), PoolError> {
        let p = self.pool(pool)?;
        Ok((p.base_pfn, p.pages))
    }

    /// The pool and page number holding `pfn`, if a pool covers it.
    pub fn locate_pfn(&self, pfn: Pfn) -> Option<(PoolId, usize)> {
        self.pools.iter().enumerate().find_map(|(i, p)| {
            (pfn >= p.base_pfn && pfn - p.base_pfn < p.pages as Pfn)
                .then(|| (PoolId(i as u32), (pfn - p.base_pfn) as usize))
        })
    }

    /// State of one pool page.
    pub fn page_state(&self, pool: PoolId, page: usize) -> Result<PageState, PoolError> {
        let s = self.slot_of(pool, page)?;
        Ok(self.slots[s as usize].state)
    }

    /// Counters of one pool (`missed` and `put_rejected` are zero here).
    pub fn pool_stats(&self, pool: PoolId) -> Result<Stats, PoolError> {
        Ok(self.pool(pool)?.stats)
    }

    /// Counters summed over every pool, plus `missed` and `put_rejected`.
    pub fn stats(&self) -> Stats {
        let mut t = Stats::default();
        for p in &self.pools {
            t.add(&p.stats);
        }
        t.missed = self.missed;
        t.put_rejected = self.put_rejected;
        t
    }

    /// Machine-readable statistics: one `@cleancache pool=N ...` line per
    /// pool, then `@cleancache pool=all ...` with the totals.
    pub fn write_machine(&self, w: &mut dyn fmt::Write) -> fmt::Result {
        let line = |w: &mut dyn fmt::Write, pool: &dyn fmt::Display, s: &Stats| {
            writeln!(
                w,
                "@cleancache pool={pool} size_pages={} stored={} restored={} missed={} \
                 invalidated={} evicted={} dropped_by_take_back={} put_rejected={} \
                 taken_back={} given_back={} cached={} lendable={}",
                s.size,
                s.stored,
                s.restored,
                s.missed,
                s.invalidated,
                s.evicted,
                s.dropped_by_take_back,
                s.put_rejected,
                s.taken_back,
                s.given_back,
                s.cached_now,
                s.lendable_now
            )
        };
        for (i, p) in self.pools.iter().enumerate() {
            line(w, &i, &p.stats)?;
        }
        line(w, &"all", &self.stats())
    }

    /// A filesystem is mounted: its identity for every key of this mount.
    /// `volume` is the volume serial number (informative). Never returns an
    /// id it returned before.
    pub fn register_fs(&mut self, volume: u32) -> FsId {
        self.generation += 1;
        let fs = FsId {
            generation: self.generation,
            volume,
        };
        self.mounts.insert(fs);
        fs
    }

    /// Whether `fs` is registered and not invalidated.
    pub fn is_registered(&self, fs: FsId) -> bool {
        self.mounts.contains(&fs)
    }

    /// The mount `fs` ends (unmount): drops every copy of it and every stale
    /// index entry naming it, and retires the id (later puts naming it are
    /// rejected). Returns the copies dropped. O(k log n) for its k entries,
    /// k <= slots; see the module documentation.
    pub fn invalidate_fs(&mut self, fs: FsId) -> usize {
        self.mounts.remove(&fs);
        let mut dropped = 0;
        while let Some((&key, _)) = self
            .index
            .range((fs, 0, 0)..=(fs, FileId::MAX, PageIndex::MAX))
            .next()
        {
            if let Some(s) = self.index_remove(key) {
                self.drop_invalidated(s);
                dropped += 1;
            }
        }
        dropped
    }

    /// Whether a copy of `(fs, file, index)` is held (no copy is made, LRU
    /// order unchanged).
    pub fn contains(&self, fs: FsId, file: FileId, index: PageIndex) -> bool {
        let key = (fs, file, index);
        self.index.get(&key).is_some_and(|&s| self.holds(s, key))
    }

    /// A clean page evicted from the page cache: keep a copy if there is room
    /// (a free page, or else the least recently stored copy is dropped).
    /// Rejected if `fs` is not registered (unmounted).
    pub fn put_page(&mut self, fs: FsId, file: FileId, index: PageIndex, data: &[u8; PAGE_SIZE]) {
        self.drain_one();
        if !self.mounts.contains(&fs) {
            self.put_rejected += 1;
            return;
        }
        let key = (fs, file, index);
        let held = self
            .index
            .get(&key)
            .copied()
            .filter(|&s| self.holds(s, key));
        let slot = if let Some(s) = held {
            // Replace in place and make it the most recent.
            self.lru.unlink(&mut self.slots, s);
            s
        } else if self.free.head != NIL {
            let s = self.free.head;
            self.free.unlink(&mut self.slots, s);
            self.index_insert(key, s);
            let p = self.slots[s as usize].pool as usize;
            self.pools[p].stats.cached_now += 1;
            s
        } else if self.lru.head != NIL {
            let s = self.lru.head;
            self.lru.unlink(&mut self.slots, s);
            if let PageState::Cached { fs, file, index } = self.slots[s as usize].state {
                // A `Cached` slot's entry is valid: it names `s`.
                let old = self.index.remove(&(fs, file, index));
                debug_assert_eq!(old, Some(s));
            }
            self.index_insert(key, s);
            let p = self.slots[s as usize].pool as usize;
            self.pools[p].stats.evicted += 1;
            s
        } else {
            // A stale entry for `key`, if any, stays counted.
            self.put_rejected += 1;
            return;
        };
        self.set_state(slot, PageState::Cached { fs, file, index });
        self.lru.push_back(&mut self.slots, slot);
        let dst = self.page_ptr(slot);
        // SAFETY: `dst` is a pool page, valid for writes (add_pool's contract)
        // and untouched by others while Cached (not taken back); `data` is a
        // distinct Rust borrow, so the ranges do not overlap.
        let dst = unsafe { &mut *(dst as *mut [u8; PAGE_SIZE]) };
        (self.copy)(dst, data);
        let p = self.slots[slot as usize].pool as usize;
        self.pools[p].stats.stored += 1;
    }

    /// Miss in the page cache: on a hit copy the page into `out`, drop the
    /// copy (exclusive) and return `true`; on a miss return `false` and leave
    /// `out` untouched.
    pub fn get_page(
        &mut self,
        fs: FsId,
        file: FileId,
        index: PageIndex,
        out: &mut [u8; PAGE_SIZE],
    ) -> bool {
        let Some(s) = self.index_remove((fs, file, index)) else {
            self.missed += 1;
            return false;
        };
        let src = self.page_ptr(s);
        // SAFETY: `src` is a Cached pool page (checked by `index_remove`),
        // valid for reads (add_pool's contract) and untouched by others while
        // not taken back; `out` is an exclusive borrow outside pool memory.
        let src = unsafe { &*(src as *const [u8; PAGE_SIZE]) };
        (self.copy)(out, src);
        self.lru.unlink(&mut self.slots, s);
        self.make_free(s);
        let p = self.slots[s as usize].pool as usize;
        self.pools[p].stats.restored += 1;
        true
    }

    /// The copy of `(fs, file, index)`, if any, is stale: drop it.
    pub fn invalidate_page(&mut self, fs: FsId, file: FileId, index: PageIndex) {
        if let Some(s) = self.index_remove((fs, file, index)) {
            self.drop_invalidated(s);
        }
    }

    /// Drops every copy of `file` on mount `fs` with index `>= from`
    /// (truncate when `from > 0`, delete when `from == 0`), and every stale
    /// index entry in that range. O(k log n) for k entries removed.
    pub fn invalidate_file(&mut self, fs: FsId, file: FileId, from: PageIndex) {
        while let Some((&key, _)) = self
            .index
            .range((fs, file, from)..=(fs, file, PageIndex::MAX))
            .next()
        {
            if let Some(s) = self.index_remove(key) {
                self.drop_invalidated(s);
            }
        }
    }

    /// Whether slot `s` holds exactly `key`: the check that makes an index
    /// entry naming `s` valid.
    fn holds(&self, s: u32, (fs, file, index): Key) -> bool {
        self.slots[s as usize].state == PageState::Cached { fs, file, index }
    }

    /// Removes the entry of `key` and returns its slot if the entry was
    /// valid (the slot holds the key, still on the LRU); a stale entry is
    /// removed and uncounted, and reads as absent.
    fn index_remove(&mut self, key: Key) -> Option<u32> {
        let s = self.index.remove(&key)?;
        if self.holds(s, key) {
            Some(s)
        } else {
            self.stale -= 1;
            None
        }
    }

    /// Inserts `key -> s` for a key with no valid entry; replaces (and
    /// uncounts) a stale one.
    fn index_insert(&mut self, key: Key, s: u32) {
        if let Some(old) = self.index.insert(key, s) {
            debug_assert!(!self.holds(old, key), "valid entry replaced");
            self.stale -= 1;
        }
    }

    /// Pops one pending item and removes its entry if the entry still names
    /// that slot and is stale. O(log n).
    fn drain_one(&mut self) {
        let Some((key, s)) = self.pending.pop() else {
            return;
        };
        if self.index.get(&key) == Some(&s) && !self.holds(s, key) {
            self.index.remove(&key);
            self.stale -= 1;
        }
    }

    /// A `Cached` slot whose entry was just removed is invalidated.
    fn drop_invalidated(&mut self, s: u32) {
        self.lru.unlink(&mut self.slots, s);
        self.make_free(s);
        let p = self.slots[s as usize].pool as usize;
        self.pools[p].stats.invalidated += 1;
    }

    /// GCMA reclaims page `page` of `pool`: drops its copy if it holds one;
    /// cleancache will not use it until [`give_back`](Self::give_back).
    /// Bounded time: O(1) (the index entry is left stale), no I/O, no copy,
    /// no waiting.
    pub fn take_back(&mut self, pool: PoolId, page: usize) -> Result<Reclaimed, PoolError> {
        let s = self.slot_of(pool, page)?;
        if self.slots[s as usize].state == PageState::TakenBack {
            return Err(PoolError::AlreadyTakenBack { pool, page });
        }
        let found = self.take_slot(s);
        let st = &mut self.pools[pool.index()].stats;
        st.taken_back += 1;
        st.lendable_now -= 1;
        Ok(found)
    }

    /// GCMA no longer needs page `page` of `pool`: it becomes `Free`.
    pub fn give_back(&mut self, pool: PoolId, page: usize) -> Result<(), PoolError> {
        let s = self.slot_of(pool, page)?;
        if self.slots[s as usize].state != PageState::TakenBack {
            return Err(PoolError::NotTakenBack { pool, page });
        }
        self.give_slot(s);
        let st = &mut self.pools[pool.index()].stats;
        st.given_back += 1;
        st.lendable_now += 1;
        Ok(())
    }

    /// Takes back pages `first .. first + count` of `pool`, all or nothing:
    /// if any page is out of range or already taken back, nothing changes
    /// (no copy is dropped, no counter moves, the observer is not called).
    /// Returns how many cached copies were dropped. One check pass over the
    /// page states, then O(1) per page; the observer is called per page as
    /// for [`take_back`](Self::take_back).
    pub fn take_back_range(
        &mut self,
        pool: PoolId,
        first: usize,
        count: usize,
    ) -> Result<usize, PoolError> {
        let base = self.check_range(pool, first, count, |st, page| {
            (st == PageState::TakenBack).then_some(PoolError::AlreadyTakenBack { pool, page })
        })?;
        let mut dropped = 0;
        for s in base..base + count as u32 {
            if let Reclaimed::DroppedCopy { .. } = self.take_slot(s) {
                dropped += 1;
            }
        }
        let st = &mut self.pools[pool.index()].stats;
        st.taken_back += count as u64;
        st.lendable_now -= count;
        Ok(dropped)
    }

    /// Gives back pages `first .. first + count` of `pool`, all or nothing:
    /// if any page is out of range or not taken back, nothing changes.
    pub fn give_back_range(
        &mut self,
        pool: PoolId,
        first: usize,
        count: usize,
    ) -> Result<(), PoolError> {
        let base = self.check_range(pool, first, count, |st, page| {
            (st != PageState::TakenBack).then_some(PoolError::NotTakenBack { pool, page })
        })?;
        for s in base..base + count as u32 {
            self.give_slot(s);
        }
        let st = &mut self.pools[pool.index()].stats;
        st.given_back += count as u64;
        st.lendable_now += count;
        Ok(())
    }

    /// Moves a slot that is not `TakenBack` to `TakenBack`: O(1). A `Cached`
    /// slot's index entry is left in place, stale, and queued for removal.
    /// Updates the per-copy counters; the caller counts `taken_back` and
    /// `lendable_now`.
    fn take_slot(&mut self, s: u32) -> Reclaimed {
        let slot = self.slots[s as usize];
        let found = match slot.state {
            PageState::Free => {
                self.free.unlink(&mut self.slots, s);
                Reclaimed::Idle
            }
            PageState::Cached { fs, file, index } => {
                self.lru.unlink(&mut self.slots, s);
                debug_assert!(self.pending.len() < self.pending.capacity());
                self.pending.push(((fs, file, index), s));
                self.stale += 1;
                let st = &mut self.pools[slot.pool as usize].stats;
                st.cached_now -= 1;
                st.dropped_by_take_back += 1;
                Reclaimed::DroppedCopy { fs, file, index }
            }
            PageState::TakenBack => unreachable!("take_slot of a taken-back slot"),
        };
        self.set_state(s, PageState::TakenBack);
        found
    }

    /// A `TakenBack` slot becomes `Free`; the caller counts it.
    fn give_slot(&mut self, s: u32) {
        self.set_state(s, PageState::Free);
        self.free.push_back(&mut self.slots, s);
    }

    /// Checks that `first .. first + count` lies in `pool` and that no page's
    /// state is `bad`; returns the slot of page `first`.
    fn check_range(
        &self,
        pool: PoolId,
        first: usize,
        count: usize,
        bad: impl Fn(PageState, usize) -> Option<PoolError>,
    ) -> Result<u32, PoolError> {
        let p = self.pool(pool)?;
        let end = first.checked_add(count);
        if end.is_none_or(|e| e > p.pages) {
            return Err(PoolError::PageOutOfRange {
                pool,
                page: first.saturating_add(count),
                pages: p.pages,
            });
        }
        let base = p.first_slot as usize + first;
        for (k, slot) in self.slots[base..base + count].iter().enumerate() {
            if let Some(e) = bad(slot.state, first + k) {
                return Err(e);
            }
        }
        Ok(base as u32)
    }

    fn pool(&self, pool: PoolId) -> Result<&Pool, PoolError> {
        self.pools
            .get(pool.index())
            .ok_or(PoolError::UnknownPool(pool))
    }

    fn slot_of(&self, pool: PoolId, page: usize) -> Result<u32, PoolError> {
        let p = self.pool(pool)?;
        if page >= p.pages {
            return Err(PoolError::PageOutOfRange {
                pool,
                page,
                pages: p.pages,
            });
        }
        Ok(p.first_slot + page as u32)
    }

    /// A `Cached` slot already removed from the index and the LRU becomes
    /// `Free`.
    fn make_free(&mut self, s: u32) {
        self.set_state(s, PageState::Free);
        self.free.push_back(&mut self.slots, s);
        let p = self.slots[s as usize].pool as usize;
        self.pools[p].stats.cached_now -= 1;
    }

    /// Sets a slot's state and tells the observer if it changed.
    fn set_state(&mut self, s: u32, state: PageState) {
        let slot = &mut self.slots[s as usize];
        if slot.state == state {
            return;
        }
        slot.state = state;
        if let Some(obs) = self.observer.as_mut() {
            let pool = &self.pools[slot.pool as usize];
            obs(pool.base_pfn + (s - pool.first_slot) as Pfn, state);
        }
    }

    fn page_ptr(&self, s: u32) -> *mut u8 {
        let slot = &self.slots[s as usize];
        let pool = &self.pools[slot.pool as usize];
        let page = (s - pool.first_slot) as usize;
        debug_assert!(page < pool.pages);
        // SAFETY: `page < pool.pages`, so the offset stays inside the pool's
        // `pages * PAGE_SIZE` bytes, one allocation/mapping by the contract
        // of `add_pool`.
        unsafe { pool.base.as_ptr().add(page * PAGE_SIZE) }
    }

    /// Checks the internal invariants (lists, index, counters) and returns a
    /// description of the first violation. O(n); for tests and self-tests.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        let mut on_free = alloc::vec![false; self.slots.len()];
        let mut on_lru = alloc::vec![false; self.slots.len()];
        for (list, mark) in [(&self.free, &mut on_free), (&self.lru, &mut on_lru)] {
            let mut s = list.head;
            let mut prev = NIL;
            while s != NIL {
                if mark[s as usize] {
                    return Err("cycle in a list");
                }
                mark[s as usize] = true;
                if self.slots[s as usize].prev != prev {
                    return Err("broken prev link");
                }
                prev = s;
                s = self.slots[s as usize].next;
            }
            if list.tail != prev {
                return Err("list tail is not the last element");
            }
        }
        let mut cached = alloc::vec![0usize; self.pools.len()];
        let mut lendable = alloc::vec![0usize; self.pools.len()];
        for (i, slot) in self.slots.iter().enumerate() {
            match slot.state {
                PageState::Free => {
                    if !on_free[i] || on_lru[i] {
                        return Err("free page not on exactly the free list");
                    }
                    lendable[slot.pool as usize] += 1;
                }
                PageState::Cached { fs, file, index } => {
                    if on_free[i] || !on_lru[i] {
                        return Err("cached page not on exactly the LRU");
                    }
                    if self.index.get(&(fs, file, index)) != Some(&(i as u32)) {
                        return Err("cached page not indexed");
                    }
                    if !self.mounts.contains(&fs) {
                        return Err("copy of a mount that is not registered");
                    }
                    cached[slot.pool as usize] += 1;
                    lendable[slot.pool as usize] += 1;
                }
                PageState::TakenBack => {
                    if on_free[i] || on_lru[i] {
                        return Err("taken-back page on a list");
                    }
                }
            }
        }
        // Every cached page has its valid entry (above); every other entry is
        // stale, counted, and queued for removal.
        let queued: alloc::collections::BTreeSet<_> = self.pending.iter().copied().collect();
        let mut stale = 0;
        for (&key, &s) in &self.index {
            let (fs, file, index) = key;
            if !self.mounts.contains(&fs) {
                return Err("index entry of a mount that is not registered");
            }
            let valid = self
                .slots
                .get(s as usize)
                .is_some_and(|slot| slot.state == PageState::Cached { fs, file, index });
            if !valid {
                stale += 1;
                if !queued.contains(&(key, s)) {
                    return Err("stale index entry not queued for removal");
                }
            }
        }
        if stale != self.stale {
            return Err("stale index entries miscounted");
        }
        if self.index.len() != cached.iter().sum::<usize>() + stale {
            return Err("index entries neither valid nor stale");
        }
        // The bound of the module documentation: the index never holds more
        // entries than there are slots.
        if self.pending.len() + cached.iter().sum::<usize>() > self.slots.len() {
            return Err("more pending removals than slots not cached");
        }
        if self.pending.capacity() < self.slots.len() {
            return Err("pending queue could reallocate in take_back");
        }
        for (p, pool) in self.pools.iter().enumerate() {
            if pool.stats.cached_now != cached[p] || pool.stats.lendable_now != lendable[p] {
                return Err("pool counters disagree with page states");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
