//! Cleancache backend that lives only in memory donated by GCMA areas.
//!
//! A second-chance cache for *clean* file pages: when the page cache evicts a
//! clean page it may hand a copy to [`Cleancache::put_page`]; a later miss in
//! the page cache asks [`Cleancache::get_page`] before reading the device.
//! Every byte of storage comes from *pools*: contiguous runs of page frames
//! that a GCMA area lends while it does not need them. GCMA can take any pool
//! page back at any moment ([`Cleancache::take_back`],
//! [`Cleancache::take_back_range`]), in bounded time, without I/O, copying or
//! waiting: the cached copy is simply dropped, which is always allowed
//! because the same data is on disk.
//!
//! # Keys: filesystem, file, offset
//!
//! A copy is stored under a [`Key`]: `(fs, file, index)`. `fs` is an
//! [`FsId`], the identity of **one mount** of a filesystem, handed out by
//! [`Cleancache::register_fs`] when the filesystem is mounted: a generation
//! number that this `Cleancache` never hands out twice (a `u64` counter that
//! only grows, starting at 1), plus the volume's serial number (informative;
//! two disks may share one). `FsId` has no public constructor, so a key can
//! only name a mount that was registered here. `file` is the filesystem's
//! file id (the FAT32 directory-entry position, the same on two disks laid
//! out alike) and `index` the page offset in the file. Rules:
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
//!   reused by CLOCK like any old copy.
//!
//! # Slots and their states: three bitmaps
//!
//! Every pool page is a *slot*. Slots are numbered across pools; each pool
//! starts at a multiple of 64, so every 64-slot word of a bitmap belongs to
//! one pool (the slots between the end of a pool and the next word are
//! padding, in no state). State lives in bitmaps, one bit per slot:
//!
//! * `free`: owned by cleancache, holds nothing.
//! * `cached`: owned by cleancache, holds the only copy cleancache has of
//!   the page `keys[slot]` names.
//! * `taken`: taken back, owned by the GCMA area (a contiguous allocation).
//!   Cleancache never reads or writes the page until it is given back.
//!
//! Every pool slot has exactly one of the three bits set; padding none.
//! A fourth bitmap, `busy`, is orthogonal to them: a put or a get is
//! copying the slot's page outside the lock (`flight.rs` and its rules;
//! [`Cleancache::begin_put`], [`Cleancache::begin_get`]).
//! Beside them, `referenced` (CLOCK's second-chance bit, only ever set on a
//! `cached` slot) and `keys`, one [`Key`] per slot: the key of the last copy
//! put there. A `keys` entry is left as it is when its copy goes (hit,
//! invalidation, take-back); it is overwritten only when the slot is reused.
//!
//! ```text
//!                 put_page (a free slot, or CLOCK reuse of a cached one)
//!        +------------------------------------------------+
//!        |                                                v
//!      free  <---- get_page (hit, exclusive) ----     cached
//!        ^   <---- invalidate_page/_file/_fs ----         |
//!        |                                                |
//!    give_back(_range)                           take_back(_range)
//!        |                                                |
//!        +--------------------- taken <-------------------+
//!                                 ^
//!      free ---- take_back(_range) ----+
//! ```
//!
//! Who changes what:
//! * the page cache (through `put_page`, `get_page`, `invalidate_*`) moves
//!   slots between `free` and `cached` only, and is the only writer of
//!   `keys`, `referenced` (set) and the index;
//! * GCMA (through `take_back*` / `give_back*`) moves `free`/`cached` to
//!   `taken` and `taken` back to `free`, clearing `referenced`: bit
//!   operations on the three bitmaps and counters, nothing else. A range is
//!   checked whole first (all or nothing), then changed a 64-slot word at a
//!   time (and-not / or plus a popcount of the cached copies dropped). It
//!   never touches the index or `keys`.
//!
//! Nothing outside this crate can hold a reference to a pool page: data goes
//! in and out by copy. That is what makes a take-back unconditional and
//! bounded: O(words of the range), no I/O, no copy, no waiting, no index
//! work, never a sweep.
//!
//! # The index and its validity rule
//!
//! The index maps a key to a slot. Rules:
//!
//! * **Validity.** An entry `key -> s` is valid iff slot `s` is `cached` and
//!   `keys[s] == key`. Only a valid entry is a copy: every lookup
//!   (`get_page`, `put_page`, `invalidate_*`, `contains`) checks it and
//!   treats a stale entry as absent.
//! * **Who drops stale entries.** A take-back makes entries stale without
//!   touching them. A stale entry goes (1) when it is looked up by a
//!   mutating operation (`get_page`, `put_page`, `invalidate_page`; the
//!   range invalidations remove every entry in their range), or (2) when
//!   its slot is reused: a put into slot `s` first removes the entry of the
//!   slot's old key `keys[s]` if that entry still names `s`. There is no
//!   queue of stale entries.
//! * **Every entry names its slot's key**: for every entry `key -> s`,
//!   `keys[s] == key`. A put writes `keys[s] = key` and `key -> s`
//!   together; `keys[s]` is overwritten only by a reuse of `s`, which first
//!   removes the entry naming `s` (rule 2); an entry `key -> s` is replaced
//!   by `key -> t` only by a put of `key`. Hence validity is the `cached`
//!   bit, and a reuse can never make an old entry valid again: after the
//!   reuse no entry but the new one names the slot.
//! * **Bound.** By the previous rule, two entries naming the same slot
//!   would name the same key, so they are one entry: the index never holds
//!   more entries than there are slots (valid ones: one per `cached` slot;
//!   stale ones: at most one per other slot), whatever the sequence of
//!   operations, with no sweep and nothing deferred.
//!
//! # Eviction: CLOCK
//!
//! `put_page` takes the lowest free slot if there is one (a word scan from
//! a hint below which no slot is free). Otherwise CLOCK picks a cached slot:
//! a hand moves over the slots of every pool in order; a cached slot whose
//! `referenced` bit is set loses it and is passed (its second chance), the
//! first cached slot without it is reused (counted in [`Stats::evicted`]).
//! Scanned a word at a time; at most two turns of the hand. A new copy
//! starts unreferenced; a put for a key already held replaces the copy in
//! place and sets its `referenced` bit. When every pool slot is taken back,
//! puts are dropped (counted in [`Stats::put_rejected`]).
//!
//! # Locking
//!
//! This type does no locking. The kernel holds **one lock around cleancache
//! and the GCMA areas together** (`contig::Areas` owns the cleancache for that
//! reason), so a take-back never races with the bookkeeping of a put or a
//! get, and the page cache's hooks and GCMA's allocations are serialized.
//! Every field above (bitmaps, keys, index, counters, hand, hint) changes
//! only under it, through `&mut self`. The [`Observer`] runs under it too.
//! Only the 4 KiB copy of a put or a get may run outside it, between a
//! `begin_*` and a `finish_*`, on a slot marked busy (`flight.rs`): a GCMA
//! allocation then waits for no copy at all unless its own range holds a
//! busy page, and then for that one copy only.
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
//! * Every operation's bookkeeping runs under the one lock, so the order of
//!   puts and invalidations seen here is the order in which they happened:
//!   for a key, a hit returns the content of the last put, and nothing put
//!   before the last invalidation of that key. A copy outside the lock
//!   changes nothing of this: a put in flight cannot be read (a get of a
//!   busy slot misses), and a get in flight returns its bytes only if,
//!   when it finishes under the lock, the copy is still there (`flight.rs`).
//! * A take-back only drops copies; it never makes an old copy reappear: it
//!   clears the `cached` bit, so the slot's entry is stale, and a slot only
//!   becomes `cached` again through a put, which rewrites `keys[s]` and the
//!   index (the validity rule above).
//!
//! # Frame descriptors
//!
//! The kernel mirrors slot states into its frame descriptors through an
//! [`Observer`] ([`Cleancache::set_observer`]): `Free` -> idle reserved
//! frame, `Cached` -> cleancache frame, `TakenBack` -> allocated frame. It is
//! told every change, inside the operation, so descriptors never lag: one
//! [`Observer::on_page`] per page for puts, hits, invalidations and
//! single-page take-backs/give-backs, and one [`Observer::on_range`] for a
//! whole range taken back or given back.
//!
//! # Why raw pointers are sound here
//!
//! A pool is given as a raw base pointer (the frames are mapped by the kernel,
//! not allocated by Rust). [`Cleancache::add_pool`] is `unsafe` and its caller
//! promises that the memory is valid for reads and writes, is used by nobody
//! else while it is lent (pages not taken back, or taken back with a copy
//! still in flight) and outlives the `Cleancache` and its slot tickets.
//! Cleancache only touches a page while its slot is `free` or `cached`, with
//! a bounds-checked page number: through `&mut self`, or through the one
//! ticket ([`PutSlot`], [`GetSlot`]) of a busy slot, which nothing else
//! touches. So no two accesses to the same bytes can overlap, and it never
//! hands out a pointer or reference into a pool.

#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;

mod bits;
mod cache;
mod check;
mod flight;
mod range;

pub use cache::{Cleancache, PageCopy};
pub use flight::{Copied, Filled, GetSlot, PutSlot};

use core::fmt;

/// A file as the page cache names it (inode number or similar).
pub type FileId = u64;
/// Page number inside a file.
pub type PageIndex = u32;
/// The physical frame number, the page size (that of a cleancache slot,
/// a `u64`) and the bytes of a page: the `pfn` crate's, shared with the
/// kernel's other memory crates.
pub use pfn::{PAGE_SIZE, PageBytes, Pfn};

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

/// What a pool page currently holds (which of the `free`, `cached`, `taken`
/// bits is set), see the module documentation.
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
    /// Gets that missed (also a get whose copy was dropped while it read it).
    pub missed: u64,
    /// Copies dropped by `invalidate_page` / `invalidate_file` /
    /// `invalidate_fs`.
    pub invalidated: u64,
    /// Copies dropped to make room for a put (CLOCK reuse).
    pub evicted: u64,
    /// Copies dropped because GCMA took their page back.
    pub dropped_by_take_back: u64,
    /// Puts dropped because every page was taken back (or every idle one:
    /// busy slots are not reused), because their key's slot was busy, or
    /// because they named a mount that is not registered (unmounted).
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
    pub(crate) fn add(&mut self, o: &Stats) {
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

/// Told every state change of a pool page (not the initial `Free` state at
/// `add_pool`): how the kernel keeps its frame descriptors in sync. Runs
/// under the cleancache lock, inside the operation; it must not call back
/// into cleancache.
pub trait Observer: Send {
    /// Page `pfn` is now in `state` (a put, a hit, an invalidation, an
    /// eviction that reused the page for another key, a single-page
    /// take-back or give-back).
    fn on_page(&mut self, pfn: Pfn, state: PageState);
    /// Pages `first_pfn .. first_pfn + count` (one pool, `count > 0`) are
    /// all now in `state`: [`PageState::TakenBack`] after
    /// [`Cleancache::take_back_range`], [`PageState::Free`] after
    /// [`Cleancache::give_back_range`]. One call per range.
    fn on_range(&mut self, first_pfn: Pfn, count: usize, state: PageState);
}

#[cfg(test)]
mod flight_tests;
#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod tests;
