//! The cleancache proper: pools, slot bitmaps, keys, the index, CLOCK, and
//! the page cache's operations (put, get, invalidate). The state rules, the
//! index validity rule and the locking rule are the crate's (`lib.rs`):
//! every function here runs under the one lock, through `&mut self`, and
//! moves slots between `free` and `cached` only.

use alloc::boxed::Box;
use alloc::collections::btree_map::Entry;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use core::fmt;
use core::ptr::NonNull;

use crate::bits::{self, WORD};
use crate::{
    FileId, FsId, Key, Observer, PAGE_SIZE, PageBytes, PageIndex, PageState, Pfn, PoolError,
    PoolId, Stats,
};

/// The key of a slot never used: generation 0 is never registered, so no
/// index entry has it.
pub(crate) const NO_KEY: Key = (
    FsId {
        generation: 0,
        volume: 0,
    },
    0,
    0,
);

pub(crate) struct Pool {
    pub(crate) base: NonNull<u8>,
    pub(crate) pages: usize,
    pub(crate) base_pfn: Pfn,
    /// Slot of page 0: a multiple of 64.
    pub(crate) first_slot: usize,
    pub(crate) stats: Stats,
}

/// The cleancache: pools, the state bitmaps of their slots, the per-slot
/// keys, the index and the CLOCK hand (see the crate documentation).
pub struct Cleancache {
    pub(crate) pools: Vec<Pool>,
    /// One bit per slot each; see the crate rules.
    pub(crate) free: Vec<u64>,
    pub(crate) cached: Vec<u64>,
    pub(crate) taken: Vec<u64>,
    pub(crate) referenced: Vec<u64>,
    /// Slots whose page a put or a get is copying outside the lock (see
    /// `flight.rs`): orthogonal to the three states.
    pub(crate) busy: Vec<u64>,
    /// Slots with their `busy` bit set (0 nearly always: the allocation
    /// path's checks for copies in flight then cost nothing).
    pub(crate) busy_slots: usize,
    /// The pool of each bitmap word (pools start at a word boundary).
    pub(crate) word_pool: Vec<u32>,
    /// Key of the last copy put into each slot ([`NO_KEY`] if none yet).
    pub(crate) keys: Vec<Key>,
    /// Key -> slot; valid iff the slot is cached with that key.
    pub(crate) index: BTreeMap<Key, u32>,
    /// Mounts registered and not yet invalidated.
    pub(crate) mounts: BTreeSet<FsId>,
    /// Generation of the last `register_fs` (0: none yet).
    pub(crate) generation: u64,
    /// Slots with their `free` bit set, and with their `cached` bit set.
    pub(crate) free_slots: usize,
    pub(crate) cached_slots: usize,
    /// No slot in a word below this one is free.
    pub(crate) free_hint: usize,
    /// The CLOCK hand: the next slot it looks at.
    pub(crate) hand: usize,
    pub(crate) missed: u64,
    pub(crate) put_rejected: u64,
    pub(crate) observer: Option<Box<dyn Observer>>,
    /// How pages are copied into and out of the pools.
    pub(crate) copy: PageCopy,
    /// This cleancache's identity, carried by its slot tickets.
    pub(crate) id: u64,
}

/// Copies one whole page (`dst`, `src`): how pages enter and leave the
/// pools. The default is `copy_from_slice`; a kernel sets its fast page
/// copy with [`Cleancache::set_page_copy`].
pub type PageCopy = fn(&mut PageBytes, &PageBytes);

fn slice_copy(dst: &mut PageBytes, src: &PageBytes) {
    dst.copy_from_slice(src);
}

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
            free: Vec::new(),
            cached: Vec::new(),
            taken: Vec::new(),
            referenced: Vec::new(),
            busy: Vec::new(),
            busy_slots: 0,
            word_pool: Vec::new(),
            keys: Vec::new(),
            index: BTreeMap::new(),
            mounts: BTreeSet::new(),
            generation: 0,
            free_slots: 0,
            cached_slots: 0,
            free_hint: 0,
            hand: 0,
            missed: 0,
            put_rejected: 0,
            observer: None,
            copy: slice_copy,
            id: 0,
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
    /// for as long as this `Cleancache`, or a slot ticket it handed out
    /// ([`PutSlot`](crate::PutSlot), [`GetSlot`](crate::GetSlot)), exists. Nobody else may access a page
    /// of the pool except while it is taken back (between a successful
    /// `take_back` of that page and the matching `give_back`) **and** no
    /// copy is in flight on it ([`Cleancache::copies_in_flight`] is zero
    /// for it): a page taken back while a put or a get copies it outside
    /// the lock is the copier's until that copy is finished.
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
        let first = self.keys.len();
        let words = pages.div_ceil(WORD);
        let end_slot = first + words * WORD;
        if end_slot >= u32::MAX as usize || self.pools.len() >= u32::MAX as usize {
            return Err(PoolError::TooManyPages);
        }
        let end = base_pfn
            .checked_add(pages as u64)
            .ok_or(PoolError::Overlap { base_pfn, pages })?;
        if self
            .pools
            .iter()
            .any(|p| base_pfn < p.base_pfn + p.pages as u64 && p.base_pfn < end)
        {
            return Err(PoolError::Overlap { base_pfn, pages });
        }
        let id = self.pools.len() as u32;
        self.keys.resize(end_slot, NO_KEY);
        if self.id == 0 {
            self.id = crate::flight::new_id();
        }
        for map in [
            &mut self.cached,
            &mut self.taken,
            &mut self.referenced,
            &mut self.busy,
        ] {
            map.resize(end_slot / WORD, 0);
        }
        self.word_pool.resize(end_slot / WORD, id);
        // Free: every page of the pool, none of the padding after it.
        self.free.resize(end_slot / WORD, u64::MAX);
        if !pages.is_multiple_of(WORD) {
            *self.free.last_mut().expect("one word at least") = (1 << (pages % WORD)) - 1;
        }
        self.free_slots += pages;
        self.free_hint = self.free_hint.min(first / WORD);
        self.pools.push(Pool {
            base,
            pages,
            base_pfn,
            first_slot: first,
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
    pub fn set_observer(&mut self, observer: Option<Box<dyn Observer>>) {
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
            pfn.offset_from(p.base_pfn)
                .filter(|&page| page < p.pages as u64)
                .map(|page| (PoolId(i as u32), page as usize))
        })
    }

    /// State of one pool page.
    pub fn page_state(&self, pool: PoolId, page: usize) -> Result<PageState, PoolError> {
        let s = self.slot_of(pool, page)?;
        Ok(self.state(s))
    }

    /// The state of slot `s` of a pool, from the bitmaps and `keys`.
    pub(crate) fn state(&self, s: usize) -> PageState {
        if bits::test(&self.taken, s) {
            PageState::TakenBack
        } else if bits::test(&self.cached, s) {
            let (fs, file, index) = self.keys[s];
            PageState::Cached { fs, file, index }
        } else {
            PageState::Free
        }
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
    /// k <= slots; see the crate documentation.
    pub fn invalidate_fs(&mut self, fs: FsId) -> usize {
        self.mounts.remove(&fs);
        self.invalidate_keys((fs, 0, 0), (fs, FileId::MAX, PageIndex::MAX))
    }

    /// Drops every copy of `file` on mount `fs` with index `>= from`
    /// (truncate when `from > 0`, delete when `from == 0`), and every stale
    /// index entry in that range. O(k log n) for k entries removed.
    pub fn invalidate_file(&mut self, fs: FsId, file: FileId, from: PageIndex) {
        self.invalidate_keys((fs, file, from), (fs, file, PageIndex::MAX));
    }

    /// Removes every index entry with a key in `lo ..= hi`, dropping the
    /// copies of the valid ones; returns how many copies were dropped.
    fn invalidate_keys(&mut self, lo: Key, hi: Key) -> usize {
        let mut dropped = 0;
        while let Some((&key, _)) = self.index.range(lo..=hi).next() {
            if let Some(s) = self.index_take(key) {
                self.drop_copy(s);
                self.pool_mut(s).stats.invalidated += 1;
                dropped += 1;
            }
        }
        dropped
    }

    /// Whether a get of `(fs, file, index)` would hit now: a copy is held
    /// and no copy is in flight on its slot (no copy is made, no reference
    /// bit set).
    pub fn contains(&self, fs: FsId, file: FileId, index: PageIndex) -> bool {
        let key = (fs, file, index);
        self.index.get(&key).is_some_and(|&s| {
            valid(&self.cached, &self.keys, s as usize, key) && !bits::test(&self.busy, s as usize)
        })
    }

    /// A clean page evicted from the page cache: keep a copy if there is room
    /// (a free slot, or else a cached one CLOCK picks, whose copy is
    /// dropped). Rejected if `fs` is not registered (unmounted), every slot
    /// is taken back, or the key's slot is being copied. One
    /// [`begin_put`](Self::begin_put), fill and
    /// [`finish_put`](Self::finish_put) with nothing in between.
    pub fn put_page(&mut self, fs: FsId, file: FileId, index: PageIndex, data: &PageBytes) {
        if let Some(slot) = self.begin_put(fs, file, index) {
            let filled = slot.fill(data);
            self.finish_put(filled);
        }
    }

    /// Miss in the page cache: on a hit copy the page into `out`, drop the
    /// copy (exclusive) and return `true`; on a miss return `false` and leave
    /// `out` untouched. One [`begin_get`](Self::begin_get), read and
    /// [`finish_get`](Self::finish_get) with nothing in between, so it never
    /// loses the copy it began on.
    pub fn get_page(
        &mut self,
        fs: FsId,
        file: FileId,
        index: PageIndex,
        out: &mut PageBytes,
    ) -> bool {
        match self.begin_get(fs, file, index) {
            Some(slot) => {
                let read = slot.read(out);
                self.finish_get(read)
            }
            None => false,
        }
    }

    /// The copy of `(fs, file, index)`, if any, is stale: drop it.
    pub fn invalidate_page(&mut self, fs: FsId, file: FileId, index: PageIndex) {
        if let Some(s) = self.index_take((fs, file, index)) {
            self.drop_copy(s);
            self.pool_mut(s).stats.invalidated += 1;
        }
    }

    /// The slot of `key`'s valid entry; a stale entry is removed and reads
    /// as absent.
    pub(crate) fn index_find(&mut self, key: Key) -> Option<usize> {
        match self.index.entry(key) {
            Entry::Occupied(e) => {
                let s = *e.get() as usize;
                if valid(&self.cached, &self.keys, s, key) {
                    Some(s)
                } else {
                    e.remove();
                    None
                }
            }
            Entry::Vacant(_) => None,
        }
    }

    /// Removes `key`'s entry; returns its slot if the entry was valid.
    fn index_take(&mut self, key: Key) -> Option<usize> {
        let s = self.index.remove(&key)? as usize;
        valid(&self.cached, &self.keys, s, key).then_some(s)
    }

    /// A cached slot whose entry is gone becomes free.
    pub(crate) fn drop_copy(&mut self, s: usize) {
        let (w, b) = bits::at(s);
        self.cached[w] &= !b;
        self.referenced[w] &= !b;
        self.free[w] |= b;
        self.cached_slots -= 1;
        self.free_slots += 1;
        self.free_hint = self.free_hint.min(w);
        self.pool_mut(s).stats.cached_now -= 1;
        self.notify(s, PageState::Free);
    }

    /// The lowest free slot no copy is in flight on, its `free` bit
    /// cleared; `None` if every free slot is busy (or none is free).
    pub(crate) fn take_free_slot(&mut self) -> Option<usize> {
        if self.free_slots == 0 {
            return None;
        }
        let words = self.free.len();
        let mut w = self.free_hint;
        while self.free[w] == 0 {
            w += 1;
        }
        // Still true: no free slot below word `w`.
        self.free_hint = w;
        while w < words {
            let avail = self.free[w] & !self.busy[w];
            if avail != 0 {
                let bit = avail.trailing_zeros() as usize;
                self.free[w] &= !(1 << bit);
                self.free_slots -= 1;
                return Some(w * WORD + bit);
            }
            w += 1;
        }
        None
    }

    /// CLOCK: the first cached slot from the hand on without its
    /// `referenced` bit and without a copy in flight; the referenced ones
    /// passed on the way lose the bit (busy ones too). The hand stops just
    /// after the victim. `None`, with nothing changed, if no cached slot is
    /// idle; otherwise at most two turns of the hand (after one, no cached
    /// slot is referenced).
    pub(crate) fn clock_victim(&mut self) -> Option<usize> {
        // Nothing to find (every cached slot busy, or none): the hand and
        // the reference bits stay as they are.
        if !self.cached.iter().zip(&self.busy).any(|(c, b)| c & !b != 0) {
            return None;
        }
        let words = self.cached.len();
        for _ in 0..=2 * words {
            let (w, bit) = (self.hand / WORD, self.hand % WORD);
            let ahead = u64::MAX << bit;
            let candidates = self.cached[w] & !self.referenced[w] & !self.busy[w] & ahead;
            if candidates != 0 {
                let v = candidates.trailing_zeros() as usize;
                self.referenced[w] &= !(ahead & !(u64::MAX << v));
                let s = w * WORD + v;
                self.hand = if s + 1 == words * WORD { 0 } else { s + 1 };
                return Some(s);
            }
            self.referenced[w] &= !ahead;
            self.hand = if w + 1 == words { 0 } else { (w + 1) * WORD };
        }
        None
    }

    /// Tells the observer that slot `s` is now in `state`.
    pub(crate) fn notify(&mut self, s: usize, state: PageState) {
        if let Some(obs) = self.observer.as_mut() {
            let pool = &self.pools[self.word_pool[s / WORD] as usize];
            obs.on_page(pool.base_pfn + (s - pool.first_slot) as u64, state);
        }
    }

    /// The pool of slot `s`.
    pub(crate) fn pool_mut(&mut self, s: usize) -> &mut Pool {
        &mut self.pools[self.word_pool[s / WORD] as usize]
    }

    pub(crate) fn pool(&self, pool: PoolId) -> Result<&Pool, PoolError> {
        self.pools
            .get(pool.index())
            .ok_or(PoolError::UnknownPool(pool))
    }

    pub(crate) fn slot_of(&self, pool: PoolId, page: usize) -> Result<usize, PoolError> {
        let p = self.pool(pool)?;
        if page >= p.pages {
            return Err(PoolError::PageOutOfRange {
                pool,
                page,
                pages: p.pages,
            });
        }
        Ok(p.first_slot + page)
    }

    pub(crate) fn page_ptr(&self, s: usize) -> *mut u8 {
        let pool = &self.pools[self.word_pool[s / WORD] as usize];
        let page = s - pool.first_slot;
        assert!(page < pool.pages, "slot outside its pool");
        // SAFETY: `page < pool.pages`, so the offset stays inside the pool's
        // `pages * PAGE_SIZE` bytes, one allocation/mapping by the contract
        // of `add_pool`.
        unsafe { pool.base.as_ptr().add(page * PAGE_SIZE as usize) }
    }
}

/// The validity rule: an entry `key -> s` is a copy iff slot `s` is cached
/// and holds `key`.
#[inline]
pub(crate) fn valid(cached: &[u64], keys: &[Key], s: usize, key: Key) -> bool {
    bits::test(cached, s) && keys[s] == key
}
