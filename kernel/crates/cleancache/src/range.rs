//! GCMA's side: taking pool pages back and giving them back, one page or a
//! range. Rules (the crate's, `lib.rs`): these are the only functions that
//! set or clear a `taken` bit; they change the `free`, `cached`, `taken` and
//! `referenced` bitmaps and counters, nothing else (never the index, never
//! `keys`), under the one lock. A range is checked whole before any bit
//! changes (all or nothing), then changed a word at a time, and the observer
//! hears of it in one [`Observer::on_range`](crate::Observer::on_range).

use crate::bits::{self, WORD};
use crate::{Cleancache, PageState, PoolError, PoolId, Reclaimed};

impl Cleancache {
    /// GCMA reclaims page `page` of `pool`: drops its copy if it holds one;
    /// cleancache will not use it until [`give_back`](Self::give_back).
    /// Bounded time: O(1) bit operations (the index entry is left stale), no
    /// I/O, no copy, no waiting.
    pub fn take_back(&mut self, pool: PoolId, page: usize) -> Result<Reclaimed, PoolError> {
        let s = self.slot_of(pool, page)?;
        let (w, b) = bits::at(s);
        if self.taken[w] & b != 0 {
            return Err(PoolError::AlreadyTakenBack { pool, page });
        }
        let found = if self.cached[w] & b != 0 {
            let (fs, file, index) = self.keys[s];
            self.cached[w] &= !b;
            self.referenced[w] &= !b;
            self.cached_slots -= 1;
            let st = &mut self.pool_mut(s).stats;
            st.cached_now -= 1;
            st.dropped_by_take_back += 1;
            Reclaimed::DroppedCopy { fs, file, index }
        } else {
            self.free[w] &= !b;
            self.free_slots -= 1;
            Reclaimed::Idle
        };
        self.taken[w] |= b;
        let st = &mut self.pool_mut(s).stats;
        st.taken_back += 1;
        st.lendable_now -= 1;
        self.notify(s, PageState::TakenBack);
        Ok(found)
    }

    /// GCMA no longer needs page `page` of `pool`: it becomes `Free`.
    pub fn give_back(&mut self, pool: PoolId, page: usize) -> Result<(), PoolError> {
        let s = self.slot_of(pool, page)?;
        let (w, b) = bits::at(s);
        if self.taken[w] & b == 0 {
            return Err(PoolError::NotTakenBack { pool, page });
        }
        self.taken[w] &= !b;
        self.free[w] |= b;
        self.free_slots += 1;
        self.free_hint = self.free_hint.min(w);
        let st = &mut self.pool_mut(s).stats;
        st.given_back += 1;
        st.lendable_now += 1;
        self.notify(s, PageState::Free);
        Ok(())
    }

    /// Takes back pages `first .. first + count` of `pool`, all or nothing:
    /// if any page is out of range or already taken back, nothing changes
    /// (no copy is dropped, no counter moves, the observer is not called).
    /// Returns how many cached copies were dropped. One check pass over the
    /// range's `taken` words, then per word: popcount of the cached copies,
    /// and-not into `free`, `cached`, `referenced`, or into `taken`. The
    /// index is left alone (its entries for the dropped copies are stale by
    /// the validity rule). The observer gets one `on_range(.., TakenBack)`.
    pub fn take_back_range(
        &mut self,
        pool: PoolId,
        first: usize,
        count: usize,
    ) -> Result<usize, PoolError> {
        let (a, b) = self.range_slots(pool, first, count)?;
        if count == 0 {
            return Ok(0);
        }
        if let Some(s) = bits::find(&self.taken, a, b, true) {
            let page = s - a + first;
            return Err(PoolError::AlreadyTakenBack { pool, page });
        }
        let (w0, w1, head, tail) = bits::span(a, b);
        let n = w1 - w0 + 1;
        let words = self.free[w0..=w1]
            .iter_mut()
            .zip(&mut self.cached[w0..=w1])
            .zip(&mut self.taken[w0..=w1])
            .zip(&mut self.referenced[w0..=w1]);
        let mut dropped = 0;
        for (k, (((free, cached), taken), referenced)) in words.enumerate() {
            let m = bits::mask(k, n, head, tail);
            dropped += (*cached & m).count_ones() as usize;
            *free &= !m;
            *cached &= !m;
            *referenced &= !m;
            *taken |= m;
        }
        self.cached_slots -= dropped;
        self.free_slots -= count - dropped;
        let p = &mut self.pools[pool.index()];
        let st = &mut p.stats;
        st.taken_back += count as u64;
        st.lendable_now -= count;
        st.cached_now -= dropped;
        st.dropped_by_take_back += dropped as u64;
        let pfn = p.base_pfn + first as u64;
        if let Some(obs) = self.observer.as_mut() {
            obs.on_range(pfn, count, PageState::TakenBack);
        }
        Ok(dropped)
    }

    /// Gives back pages `first .. first + count` of `pool`, all or nothing:
    /// if any page is out of range or not taken back, nothing changes.
    /// Otherwise they become `Free`, a word at a time; the observer gets one
    /// `on_range(.., Free)`.
    pub fn give_back_range(
        &mut self,
        pool: PoolId,
        first: usize,
        count: usize,
    ) -> Result<(), PoolError> {
        let (a, b) = self.range_slots(pool, first, count)?;
        if count == 0 {
            return Ok(());
        }
        if let Some(s) = bits::find(&self.taken, a, b, false) {
            let page = s - a + first;
            return Err(PoolError::NotTakenBack { pool, page });
        }
        let (w0, w1, head, tail) = bits::span(a, b);
        let n = w1 - w0 + 1;
        let words = self.free[w0..=w1].iter_mut().zip(&mut self.taken[w0..=w1]);
        for (k, (free, taken)) in words.enumerate() {
            let m = bits::mask(k, n, head, tail);
            *taken &= !m;
            *free |= m;
        }
        self.free_slots += count;
        self.free_hint = self.free_hint.min(w0);
        let p = &mut self.pools[pool.index()];
        p.stats.given_back += count as u64;
        p.stats.lendable_now += count;
        let pfn = p.base_pfn + first as u64;
        if let Some(obs) = self.observer.as_mut() {
            obs.on_range(pfn, count, PageState::Free);
        }
        Ok(())
    }

    /// The slots `a .. b` of pages `first .. first + count` of `pool`, or
    /// the error for a range that does not lie inside the pool.
    fn range_slots(
        &self,
        pool: PoolId,
        first: usize,
        count: usize,
    ) -> Result<(usize, usize), PoolError> {
        let p = self.pool(pool)?;
        let end = first.checked_add(count);
        if end.is_none_or(|e| e > p.pages) {
            return Err(PoolError::PageOutOfRange {
                pool,
                page: first.saturating_add(count),
                pages: p.pages,
            });
        }
        debug_assert_eq!(p.first_slot % WORD, 0);
        Ok((p.first_slot + first, p.first_slot + first + count))
    }
}
