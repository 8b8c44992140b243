//! The crate's rules (`lib.rs`) as a check over the whole state, for host
//! tests and the kernel's self-tests. Read-only; O(slots + entries).

use alloc::vec;

use crate::bits::WORD;
use crate::cache::valid;
use crate::{Cleancache, PageState};

impl Cleancache {
    /// Checks the internal invariants (slot states, index validity and
    /// bound, counters, CLOCK hand and free hint) and returns a description
    /// of the first violation. O(n); for tests and self-tests.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        let words = self.free.len();
        if [
            self.cached.len(),
            self.taken.len(),
            self.referenced.len(),
            self.busy.len(),
        ]
        .iter()
        .any(|&l| l != words)
            || self.word_pool.len() != words
            || self.keys.len() != words * WORD
        {
            return Err("bitmaps, pool map and keys disagree in length");
        }
        let mut slots_in_pools = 0;
        let (mut free_slots, mut cached_slots) = (0, 0);
        for (p, pool) in self.pools.iter().enumerate() {
            if pool.first_slot % WORD != 0 {
                return Err("pool does not start at a word");
            }
            let (w0, w1) = (
                pool.first_slot / WORD,
                (pool.first_slot + pool.pages - 1) / WORD,
            );
            let (mut cached, mut lendable) = (0, 0);
            for w in w0..=w1 {
                if self.word_pool[w] as usize != p {
                    return Err("word mapped to the wrong pool");
                }
                let lo = (w * WORD).max(pool.first_slot);
                let hi = ((w + 1) * WORD).min(pool.first_slot + pool.pages);
                let inside = (u64::MAX << (lo % WORD)) & (u64::MAX >> (WORD - 1 - (hi - 1) % WORD));
                let (f, c, t, r) = (
                    self.free[w],
                    self.cached[w],
                    self.taken[w],
                    self.referenced[w],
                );
                if (f | c | t | r | self.busy[w]) & !inside != 0 {
                    return Err("padding slot in a state");
                }
                if f & c != 0 || f & t != 0 || c & t != 0 || (f | c | t) != inside {
                    return Err("slot not in exactly one of free, cached, taken");
                }
                if r & !c != 0 {
                    return Err("referenced slot not cached");
                }
                cached += c.count_ones() as usize;
                lendable += (f | c).count_ones() as usize;
                free_slots += f.count_ones() as usize;
            }
            if pool.stats.cached_now != cached || pool.stats.lendable_now != lendable {
                return Err("pool counters disagree with page states");
            }
            cached_slots += cached;
            slots_in_pools += pool.pages;
        }
        if self
            .pools
            .iter()
            .map(|p| p.pages.div_ceil(WORD))
            .sum::<usize>()
            != words
        {
            return Err("bitmap words not all owned by pools");
        }
        let busy: usize = self.busy.iter().map(|w| w.count_ones() as usize).sum();
        if busy != self.busy_slots {
            return Err("busy slot count wrong");
        }
        if free_slots != self.free_slots || cached_slots != self.cached_slots {
            return Err("free or cached slot count wrong");
        }
        if self.free[..self.free_hint.min(words)]
            .iter()
            .any(|&w| w != 0)
        {
            return Err("free slot below the free hint");
        }
        if words > 0 && self.hand >= words * WORD {
            return Err("CLOCK hand outside the slots");
        }
        // Every cached slot has its valid entry.
        for s in 0..words * WORD {
            if let PageState::Cached { fs, file, index } = self.state(s) {
                if self.index.get(&(fs, file, index)) != Some(&(s as u32)) {
                    return Err("cached page not indexed");
                }
                if !self.mounts.contains(&fs) {
                    return Err("copy of a mount that is not registered");
                }
            }
        }
        // Every entry names its slot's key; so at most one entry per slot.
        let mut named = vec![false; words * WORD];
        let mut valid_entries = 0;
        for (&key, &s) in &self.index {
            let s = s as usize;
            if s >= words * WORD || self.keys[s] != key {
                return Err("index entry whose slot holds another key");
            }
            if core::mem::replace(&mut named[s], true) {
                return Err("two index entries name one slot");
            }
            if !self.mounts.contains(&key.0) {
                return Err("index entry of a mount that is not registered");
            }
            if valid(&self.cached, &self.keys, s, key) {
                valid_entries += 1;
            }
        }
        if valid_entries != cached_slots {
            return Err("valid index entries are not the cached slots");
        }
        // The bound of the crate documentation.
        if self.index.len() > slots_in_pools {
            return Err("more index entries than slots");
        }
        Ok(())
    }

    /// Index entries that are stale now (their slot is not cached); for
    /// tests of the validity rule.
    pub fn stale_entries(&self) -> usize {
        self.index.len() - self.cached_slots
    }

    /// Entries in the index, valid and stale; never more than the slots.
    pub fn index_len(&self) -> usize {
        self.index.len()
    }
}
