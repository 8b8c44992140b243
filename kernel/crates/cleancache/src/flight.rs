//! Copies outside the lock: a put or a get in three steps, so the one lock
//! (the crate's locking rule) is held for bookkeeping only, never for the
//! 4 KiB copy. GCMA's allocations take that lock; with the copy inside it
//! they waited behind every single-page put or get on another core.
//!
//! ```text
//!   put:  begin_put (lock)  ->  PutSlot::fill (no lock)  ->  finish_put (lock)
//!   get:  begin_get (lock)  ->  GetSlot::read (no lock)  ->  finish_get (lock)
//! ```
//!
//! Rules:
//! * **Busy.** `begin_*` sets the slot's `busy` bit, `finish_*` clears it;
//!   nothing else does. `busy` is orthogonal to the three states: a busy
//!   slot may be free, cached or taken back (by what happened in between).
//! * **Nobody else touches a busy page.** Cleancache never reuses a busy
//!   slot (the free-slot choice and CLOCK skip it), a put for a key whose
//!   slot is busy is rejected, and a get of a busy slot misses. GCMA may
//!   take a busy page back (the bits change at once: take-back stays
//!   unconditional and bounded) but must not use it until the copy is
//!   finished: [`Cleancache::copies_in_flight`] says when, and the
//!   contract of [`Cleancache::add_pool`] requires it.
//! * **A put's copy is indexed at once**: `begin_put` makes the slot
//!   `cached` with `keys[s]` and the index entry, as a one-step put did, and
//!   counts it in `stored`; until `finish_put` a get of it misses (busy). A
//!   take-back or an invalidation in between drops it as any copy
//!   (counted where it is dropped); `finish_put` then only clears `busy`.
//!   So no half-written page is ever read: a get reads only idle slots.
//! * **A get consumes at `finish_get`**: `begin_get` leaves the entry and
//!   the `cached` bit; `finish_get` drops the copy and returns `true` only
//!   if the slot is still cached with the same key. Else something dropped
//!   the copy in between (an invalidation, a take-back, an unmount): the
//!   bytes read are thrown away, `false`, counted in `missed`. The order of
//!   puts and invalidations is still the lock's order: a get that returns
//!   `true` returned the copy that was valid when `finish_get` ran.
//! * **Tickets**: [`PutSlot`] and [`GetSlot`] are the only way to the
//!   page; `fill` and `read` consume them into [`Filled`] and [`Copied`],
//!   which `finish_*` consumes. So a slot is filled at most once and
//!   finished at most once, and `finish_put` cannot run before the fill.
//!   A ticket names its cleancache (`finish_*` panics on another's), and a
//!   ticket dropped without finishing leaves its slot busy for good (a
//!   bug: they are `#[must_use]`).
//! * **Ordering**: the copy runs between two holds of the lock. Its
//!   release by `begin_*` and acquisition by `finish_*`, and whoever takes
//!   the lock after `finish_*` cleared `busy`, order every access to the
//!   page: a GCMA caller that saw `copies_in_flight == 0` under the lock
//!   sees no copier touch the page afterwards.
//! * **Callers keep the copy short**: the kernel masks IRQs on the copying
//!   core from `begin_*` to `finish_*` (it already holds its IRQ-masking
//!   page-cache lock there), so a GCMA caller that waits for a busy page
//!   waits for one page copy running on another core, never for a task
//!   that lost its core.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::bits;
use crate::{Cleancache, FileId, FsId, Key, PageBytes, PageCopy, PageIndex, PageState, PoolId};

/// Identities of cleancaches (0: none yet); tickets carry their owner's.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) fn new_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// A slot `begin_put` reserved for a copy: fill it outside the lock.
#[must_use = "fill it and hand it to finish_put, or its slot stays busy"]
pub struct PutSlot {
    owner: u64,
    slot: usize,
    page: NonNull<PageBytes>,
    copy: PageCopy,
}

/// A filled slot, for [`Cleancache::finish_put`].
#[must_use = "hand it to finish_put, or its slot stays busy"]
pub struct Filled {
    owner: u64,
    slot: usize,
}

/// A copy `begin_get` found: read it outside the lock.
#[must_use = "read it and hand it to finish_get, or its slot stays busy"]
pub struct GetSlot {
    owner: u64,
    slot: usize,
    key: Key,
    page: NonNull<PageBytes>,
    copy: PageCopy,
}

/// A read copy, for [`Cleancache::finish_get`], which says whether the
/// bytes read count.
#[must_use = "hand it to finish_get, which says whether the bytes count"]
pub struct Copied {
    owner: u64,
    slot: usize,
    key: Key,
}

impl PutSlot {
    /// Copies `data` into the slot's page. No lock needed (the rules).
    pub fn fill(self, data: &PageBytes) -> Filled {
        // SAFETY: the slot is busy from `begin_put` until `finish_put`
        // consumes the `Filled` made here, so by the module rules nobody
        // else reads or writes the page meanwhile: cleancache does not
        // reuse a busy slot or read it for a get, and a GCMA owner of a page
        // taken back in between does not touch it until the copy is
        // finished (`add_pool`'s contract). The page is valid for writes
        // while this ticket exists (the same contract), and `data` is a
        // Rust borrow outside the pools, so the two do not overlap.
        let dst = unsafe { &mut *self.page.as_ptr() };
        (self.copy)(dst, data);
        Filled {
            owner: self.owner,
            slot: self.slot,
        }
    }
}

impl GetSlot {
    /// Copies the slot's page into `out`; [`Cleancache::finish_get`] says
    /// whether these bytes are the copy. No lock needed (the rules).
    pub fn read(self, out: &mut PageBytes) -> Copied {
        // SAFETY: as in `PutSlot::fill`: the slot is busy until
        // `finish_get`, so nobody writes the page meanwhile, it is valid for
        // reads while the ticket exists, and `out` is an exclusive borrow
        // outside the pools.
        let src = unsafe { &*self.page.as_ptr() };
        (self.copy)(out, src);
        Copied {
            owner: self.owner,
            slot: self.slot,
            key: self.key,
        }
    }
}

impl Cleancache {
    /// The first step of a put: picks the slot as [`put_page`](Self::put_page)
    /// does (the key's own slot, the lowest idle free slot, or CLOCK's idle
    /// victim), makes it `cached` under the key and busy. `None` if the put
    /// is rejected (counted in `put_rejected`): `fs` not registered, no idle
    /// slot, or the key's own slot busy.
    pub fn begin_put(&mut self, fs: FsId, file: FileId, index: PageIndex) -> Option<PutSlot> {
        if !self.mounts.contains(&fs) {
            self.put_rejected += 1;
            return None;
        }
        let key = (fs, file, index);
        let s = match self.index_find(key) {
            Some(s) if bits::test(&self.busy, s) => {
                self.put_rejected += 1;
                return None;
            }
            Some(s) => {
                // Replace in place; the copy earns its second chance.
                let (w, b) = bits::at(s);
                self.referenced[w] |= b;
                s
            }
            None => {
                let s = if let Some(s) = self.take_free_slot() {
                    let (w, b) = bits::at(s);
                    self.cached[w] |= b;
                    self.cached_slots += 1;
                    self.pool_mut(s).stats.cached_now += 1;
                    s
                } else if let Some(s) = self.clock_victim() {
                    self.pool_mut(s).stats.evicted += 1;
                    s
                } else {
                    self.put_rejected += 1;
                    return None;
                };
                self.index_reuse(s, key);
                s
            }
        };
        self.pool_mut(s).stats.stored += 1;
        Some(PutSlot {
            owner: self.id,
            slot: s,
            page: self.busy_page(s),
            copy: self.copy,
        })
    }

    /// The last step of a put: the slot is idle again. If the copy was
    /// dropped while it was filled, nothing else changes (the rules).
    pub fn finish_put(&mut self, filled: Filled) {
        self.idle(filled.owner, filled.slot);
    }

    /// The first step of a get: if `(fs, file, index)` has a copy in an idle
    /// slot, makes it busy and returns it; otherwise counts a miss.
    pub fn begin_get(&mut self, fs: FsId, file: FileId, index: PageIndex) -> Option<GetSlot> {
        let key = (fs, file, index);
        match self.index_find(key) {
            Some(s) if !bits::test(&self.busy, s) => Some(GetSlot {
                owner: self.id,
                slot: s,
                key,
                page: self.busy_page(s),
                copy: self.copy,
            }),
            _ => {
                self.missed += 1;
                None
            }
        }
    }

    /// The last step of a get: `true` (a hit: the copy is dropped, it is
    /// exclusive) if the slot still holds the copy it began on; `false` (a
    /// miss: throw the bytes read away) if it was dropped meanwhile.
    pub fn finish_get(&mut self, read: Copied) -> bool {
        self.idle(read.owner, read.slot);
        let s = read.slot;
        if crate::cache::valid(&self.cached, &self.keys, s, read.key) {
            let entry = self.index.remove(&read.key);
            debug_assert_eq!(entry, Some(s as u32));
            self.drop_copy(s);
            self.pool_mut(s).stats.restored += 1;
            true
        } else {
            self.missed += 1;
            false
        }
    }

    /// Pages of `first .. first + count` of `pool` a put or a get is
    /// copying now (0 outside the pool). A GCMA owner of taken-back pages
    /// uses them only once this is 0 for them.
    pub fn copies_in_flight(&self, pool: PoolId, first: usize, count: usize) -> usize {
        if self.busy_slots == 0 {
            return 0;
        }
        let Ok(p) = self.pool(pool) else { return 0 };
        let end = first.saturating_add(count).min(p.pages);
        if first >= end {
            return 0;
        }
        let (a, b) = (p.first_slot + first, p.first_slot + end);
        let (w0, w1, head, tail) = bits::span(a, b);
        let n = w1 - w0 + 1;
        self.busy[w0..=w1]
            .iter()
            .enumerate()
            .map(|(k, &w)| (w & bits::mask(k, n, head, tail)).count_ones() as usize)
            .sum()
    }

    /// The first page of `first .. first + count` of `pool` a copy is in
    /// flight on, if any (`None` outside the pool).
    pub fn first_copy_in_flight(&self, pool: PoolId, first: usize, count: usize) -> Option<usize> {
        if self.busy_slots == 0 {
            return None;
        }
        let p = self.pool(pool).ok()?;
        let end = first.saturating_add(count).min(p.pages);
        if first >= end {
            return None;
        }
        let s = bits::find(&self.busy, p.first_slot + first, p.first_slot + end, true)?;
        Some(s - p.first_slot)
    }

    /// Copies in flight anywhere (busy slots).
    pub fn copies_in_flight_total(&self) -> usize {
        self.busy_slots
    }

    /// Reuse of slot `s` for `key`: the entry of its old key goes if it
    /// still names `s` (valid for a victim, stale for a free slot), then
    /// `keys[s]` and the entry are written together and the observer told.
    fn index_reuse(&mut self, s: usize, key: Key) {
        let old = self.keys[s];
        if self.index.get(&old) == Some(&(s as u32)) {
            self.index.remove(&old);
        }
        self.keys[s] = key;
        // No entry for `key` is left: `index_find` removed a stale one.
        let prev = self.index.insert(key, s as u32);
        debug_assert_eq!(prev, None);
        let (fs, file, index) = key;
        self.notify(s, PageState::Cached { fs, file, index });
    }

    /// Marks `s` busy and returns its page.
    fn busy_page(&mut self, s: usize) -> NonNull<PageBytes> {
        let (w, b) = bits::at(s);
        debug_assert_eq!(self.busy[w] & b, 0, "slot already busy");
        self.busy[w] |= b;
        self.busy_slots += 1;
        NonNull::new(self.page_ptr(s).cast::<PageBytes>()).expect("pool pages are not null")
    }

    /// Clears the busy bit of a ticket's slot.
    fn idle(&mut self, owner: u64, s: usize) {
        assert_eq!(owner, self.id, "a slot ticket of another cleancache");
        let (w, b) = bits::at(s);
        assert!(self.busy[w] & b != 0, "finish of a slot that is not busy");
        self.busy[w] &= !b;
        self.busy_slots -= 1;
    }
}
