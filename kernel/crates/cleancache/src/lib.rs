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
//! # States of a pool page
//!
//! ```text
//!                 put_page (free page, or LRU reuse of a Cached page)
//!        +------------------------------------------------+
//!        |                                                v
//!      Free  <---- get_page (hit, exclusive) ----   Cached(file, index)
//!        ^   <---- invalidate_page / _file ------         |
//!        |                                                |
//!    give_back                                        take_back
//!        |                                                |
//!        +-------------------- TakenBack <----------------+
//!                                  ^
//!      Free ------ take_back ------+
//! ```
//!
//! * `Free`: owned by cleancache, holds nothing. On the free list.
//! * `Cached(file, index)`: owned by cleancache, holds the only copy cleancache
//!   has of that page. On the LRU list and in the index.
//! * `TakenBack`: owned by the GCMA area (a contiguous allocation). Cleancache
//!   never reads or writes it and keeps no reference to it, until the GCMA area
//!   calls [`Cleancache::give_back`].
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
//! bounded: O(log n) for the index removal, O(1) for the list unlinking.
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
//!   Delete uses `invalidate_file(file, 0)` before the `FileId` can be reused.
//! * Every operation runs under the one lock, so the order of puts and
//!   invalidations seen here is the order in which they happened: for a key,
//!   a hit returns the content of the last put, and nothing put before the
//!   last invalidation of that key.
//! * `take_back` only drops copies; it never makes an old copy reappear.
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
use alloc::collections::BTreeMap;
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
    /// Lendable, holds a copy of `(file, index)`.
    Cached { file: FileId, index: PageIndex },
    /// Owned by the GCMA area; cleancache does not touch it.
    TakenBack,
}

/// What a successful take-back of one page found there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reclaimed {
    /// The page was free.
    Idle,
    /// The page held a copy of `(file, index)`, which has been dropped.
    DroppedCopy { file: FileId, index: PageIndex },
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
    /// Copies dropped by `invalidate_page` / `invalidate_file`.
    pub invalidated: u64,
    /// Copies dropped to make room for a put (LRU reuse).
    pub evicted: u64,
    /// Copies dropped because GCMA took their page back.
    pub dropped_by_take_back: u64,
    /// Puts dropped because every page was taken back.
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
    index: BTreeMap<(FileId, PageIndex), u32>,
    free: List,
    lru: List,
    missed: u64,
    put_rejected: u64,
    observer: Option<Observer>,
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
            free: List::EMPTY,
            lru: List::EMPTY,
            missed: 0,
            put_rejected: 0,
            observer: None,
        }
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

    /// Whether a copy of `(file, index)` is held (no copy is made, LRU order
    /// unchanged).
    pub fn contains(&self, file: FileId, index: PageIndex) -> bool {
        self.index.contains_key(&(file, index))
    }

    /// A clean page evicted from the page cache: keep a copy if there is room
    /// (a free page, or else the least recently stored copy is dropped).
    pub fn put_page(&mut self, file: FileId, index: PageIndex, data: &[u8; PAGE_SIZE]) {
        let key = (file, index);
        let slot = if let Some(&s) = self.index.get(&key) {
            // Replace in place and make it the most recent.
            self.lru.unlink(&mut self.slots, s);
            s
        } else if self.free.head != NIL {
            let s = self.free.head;
            self.free.unlink(&mut self.slots, s);
            self.index.insert(key, s);
            let p = self.slots[s as usize].pool as usize;
            self.pools[p].stats.cached_now += 1;
            s
        } else if self.lru.head != NIL {
            let s = self.lru.head;
            self.lru.unlink(&mut self.slots, s);
            if let PageState::Cached { file, index } = self.slots[s as usize].state {
                self.index.remove(&(file, index));
            }
            self.index.insert(key, s);
            let p = self.slots[s as usize].pool as usize;
            self.pools[p].stats.evicted += 1;
            s
        } else {
            self.put_rejected += 1;
            return;
        };
        self.set_state(slot, PageState::Cached { file, index });
        self.lru.push_back(&mut self.slots, slot);
        let dst = self.page_ptr(slot);
        // SAFETY: `dst` points at the start of a page of a pool, inside the
        // `pages * PAGE_SIZE` bytes that `add_pool`'s caller guaranteed valid
        // for writes; the page is `Cached` (not taken back), so nobody else
        // accesses it, and `data` is a distinct Rust borrow, so the ranges do
        // not overlap.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), dst, PAGE_SIZE) };
        let p = self.slots[slot as usize].pool as usize;
        self.pools[p].stats.stored += 1;
    }

    /// Miss in the page cache: on a hit copy the page into `out`, drop the
    /// copy (exclusive) and return `true`; on a miss return `false` and leave
    /// `out` untouched.
    pub fn get_page(&mut self, file: FileId, index: PageIndex, out: &mut [u8; PAGE_SIZE]) -> bool {
        let Some(s) = self.index.remove(&(file, index)) else {
            self.missed += 1;
            return false;
        };
        let src = self.page_ptr(s);
        // SAFETY: `src` is the start of a `Cached` page of a pool, valid for
        // reads of PAGE_SIZE bytes (contract of `add_pool`) and accessed by
        // nobody else while not taken back; `out` is an exclusive Rust borrow
        // and cannot alias pool memory, which Rust code never references.
        unsafe { core::ptr::copy_nonoverlapping(src, out.as_mut_ptr(), PAGE_SIZE) };
        self.lru.unlink(&mut self.slots, s);
        self.make_free(s);
        let p = self.slots[s as usize].pool as usize;
        self.pools[p].stats.restored += 1;
        true
    }

    /// The copy of `(file, index)`, if any, is stale: drop it.
    pub fn invalidate_page(&mut self, file: FileId, index: PageIndex) {
        if let Some(s) = self.index.remove(&(file, index)) {
            self.lru.unlink(&mut self.slots, s);
            self.make_free(s);
            let p = self.slots[s as usize].pool as usize;
            self.pools[p].stats.invalidated += 1;
        }
    }

    /// Drops every copy of `file` with index `>= from` (truncate when
    /// `from > 0`, delete when `from == 0`). O(k log n) for k copies dropped.
    pub fn invalidate_file(&mut self, file: FileId, from: PageIndex) {
        while let Some((&key, &s)) = self
            .index
            .range((file, from)..=(file, PageIndex::MAX))
            .next()
        {
            self.index.remove(&key);
            self.lru.unlink(&mut self.slots, s);
            self.make_free(s);
            let p = self.slots[s as usize].pool as usize;
            self.pools[p].stats.invalidated += 1;
        }
    }

    /// GCMA reclaims page `page` of `pool`: drops its copy if it holds one;
    /// cleancache will not use it until [`give_back`](Self::give_back).
    /// Bounded time: O(log n) (index removal), no I/O, no copy, no waiting.
    pub fn take_back(&mut self, pool: PoolId, page: usize) -> Result<Reclaimed, PoolError> {
        let s = self.slot_of(pool, page)?;
        let p = pool.index();
        let found = match self.slots[s as usize].state {
            PageState::TakenBack => return Err(PoolError::AlreadyTakenBack { pool, page }),
            PageState::Free => {
                self.free.unlink(&mut self.slots, s);
                Reclaimed::Idle
            }
            PageState::Cached { file, index } => {
                self.index.remove(&(file, index));
                self.lru.unlink(&mut self.slots, s);
                self.pools[p].stats.cached_now -= 1;
                self.pools[p].stats.dropped_by_take_back += 1;
                Reclaimed::DroppedCopy { file, index }
            }
        };
        self.set_state(s, PageState::TakenBack);
        let st = &mut self.pools[p].stats;
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
        self.set_state(s, PageState::Free);
        self.free.push_back(&mut self.slots, s);
        let st = &mut self.pools[pool.index()].stats;
        st.given_back += 1;
        st.lendable_now += 1;
        Ok(())
    }

    /// Takes back pages `first .. first + count` of `pool`, all or nothing:
    /// if any page is out of range or already taken back, nothing changes.
    /// Returns how many cached copies were dropped.
    pub fn take_back_range(
        &mut self,
        pool: PoolId,
        first: usize,
        count: usize,
    ) -> Result<usize, PoolError> {
        self.check_range(pool, first, count, |st, page| {
            (st == PageState::TakenBack).then_some(PoolError::AlreadyTakenBack { pool, page })
        })?;
        let mut dropped = 0;
        for page in first..first + count {
            if let Reclaimed::DroppedCopy { .. } = self.take_back(pool, page)? {
                dropped += 1;
            }
        }
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
        self.check_range(pool, first, count, |st, page| {
            (st != PageState::TakenBack).then_some(PoolError::NotTakenBack { pool, page })
        })?;
        for page in first..first + count {
            self.give_back(pool, page)?;
        }
        Ok(())
    }

    fn check_range(
        &self,
        pool: PoolId,
        first: usize,
        count: usize,
        bad: impl Fn(PageState, usize) -> Option<PoolError>,
    ) -> Result<(), PoolError> {
        let p = self.pool(pool)?;
        let end = first.checked_add(count);
        if end.is_none_or(|e| e > p.pages) {
            return Err(PoolError::PageOutOfRange {
                pool,
                page: first.saturating_add(count),
                pages: p.pages,
            });
        }
        let base = p.first_slot as usize;
        for page in first..first + count {
            if let Some(e) = bad(self.slots[base + page].state, page) {
                return Err(e);
            }
        }
        Ok(())
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
                PageState::Cached { file, index } => {
                    if on_free[i] || !on_lru[i] {
                        return Err("cached page not on exactly the LRU");
                    }
                    if self.index.get(&(file, index)) != Some(&(i as u32)) {
                        return Err("cached page not indexed");
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
        if self.index.len() != cached.iter().sum::<usize>() {
            return Err("index holds keys without a cached page");
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
