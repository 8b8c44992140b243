//! The binary buddy allocator, threaded through the frame descriptors
//! (Linux's `mm/page_alloc.c`).
//!
//! # Buddy invariants (checked by [`FrameTable::verify`])
//!
//! * the managed frames are tiled by blocks; each block of order `k` starts at
//!   a pfn aligned to `2^k` (physical alignment `4 KiB << k`) and is either
//!   entirely `Free` (and on free list `k`) or entirely owned (a live
//!   allocation of order `k`, head = first frame);
//! * two free buddies of the same order below [`MAX_ORDER`] never coexist:
//!   freeing always coalesces;
//! * `free + sum(owned managed frames) == managed`, and the per-state counters
//!   equal a recount of the descriptors.
//!
//! `free(pfn, order)` checks that `pfn` is the head of a live allocation of
//! exactly `order`: a double free, a free of a frame that was never allocated,
//! of a tail frame, or with the wrong order is rejected with an error and
//! changes nothing. As in Linux, freeing a frame that was freed and then
//! handed out again by a later `alloc` of the same order cannot be told apart
//! from a legitimate free.
//!
//! Free lists are intrusive: the `next`/`prev` links of a free block's head
//! descriptor, one list per order, heads in `FrameTable::free_head`. Only
//! this file writes the `bud` bits and the links of a free frame.

use core::ops::Range;

use crate::desc::{BUD_HEAD, BUD_MANAGED};
use crate::{FrameError, FrameState, FrameTable, MAX_ORDER, MAX_PAGES_PER_ALLOC, NIL, Pfn};

impl FrameTable<'_> {
    /// Gives the `Absent` frames of `range` to the buddy allocator; frames in
    /// any other state (marked, or already given) are skipped, so the kernel
    /// can `mark` its reservations first and then add whole RAM banks.
    /// Returns the number of frames added.
    pub fn add_free_range(&mut self, range: Range<Pfn>) -> Result<u64, FrameError> {
        let (a, b) = self.check_range(&range)?;
        let mut added = 0;
        let mut i = a;
        while i < b {
            if self.descs[i].state != FrameState::Absent || self.descs[i].is_managed() {
                i += 1;
                continue;
            }
            let mut j = i;
            while j < b && self.descs[j].state == FrameState::Absent && !self.descs[j].is_managed()
            {
                j += 1;
            }
            // [i, j) is a run of Absent frames: add it as maximal aligned blocks.
            let mut cur = i;
            while cur < j {
                let order = self.largest_block(cur, j);
                let n = 1usize << order;
                for d in &mut self.descs[cur..cur + n] {
                    d.state = FrameState::Free;
                    d.bud = BUD_MANAGED;
                    d.reset_owner_fields();
                }
                self.per_state[FrameState::Absent as usize] -= n as u64;
                self.per_state[FrameState::Free as usize] += n as u64;
                self.managed += n as u64;
                added += n as u64;
                self.insert_free(cur, order);
                cur += n;
            }
            i = j;
        }
        Ok(added)
    }

    /// Largest order of a naturally aligned block starting at index `cur`
    /// and ending at or before index `end`.
    pub(crate) fn largest_block(&self, cur: usize, end: usize) -> u8 {
        let pfn = self.base + cur as u64;
        let mut order = (pfn.trailing_zeros().min(MAX_ORDER as u32)) as u8;
        while cur + (1usize << order) > end {
            order -= 1;
        }
        order
    }

    /// Allocates a naturally aligned block of `2^order` frames and puts every
    /// frame of it in `state` (any owned state) with clean owner fields.
    pub fn alloc(&mut self, order: u8, state: FrameState) -> Result<Pfn, FrameError> {
        if order > MAX_ORDER {
            return Err(FrameError::BadOrder(order));
        }
        if !state.is_owned() {
            return Err(FrameError::BadState(state));
        }
        let i = self
            .take_block(order)
            .ok_or(FrameError::OutOfMemory { order })?;
        self.claim(i, order, state);
        Ok(self.pfn_at(i))
    }

    /// Returns the block of `2^order` frames at `pfn`, which must be the head
    /// of a live allocation of exactly `order` with no frame pinned. The block
    /// is coalesced with its free buddies. On error nothing changed.
    pub fn free(&mut self, pfn: Pfn, order: u8) -> Result<(), FrameError> {
        let i = self.check_allocated(pfn, order)?;
        self.release(i, order);
        Ok(())
    }

    /// The order of the live allocation headed by `pfn`, if any.
    pub fn allocation_order(&self, pfn: Pfn) -> Option<u8> {
        let d = self.frame(pfn)?;
        if d.is_managed() && d.state.is_owned() {
            d.block_order()
        } else {
            None
        }
    }

    /// Allocates `count` contiguous frames (`1..=MAX_PAGES_PER_ALLOC`), the
    /// start aligned to the next power of two of `count`; the rest of that
    /// power-of-two block goes straight back to the free lists. Free them with
    /// [`FrameTable::free_pages`] and the same count.
    pub fn alloc_pages(&mut self, count: u64, state: FrameState) -> Result<Pfn, FrameError> {
        if count == 0 || count > MAX_PAGES_PER_ALLOC {
            return Err(FrameError::BadCount(count));
        }
        if !state.is_owned() {
            return Err(FrameError::BadState(state));
        }
        let order = count.next_power_of_two().trailing_zeros() as u8;
        let start = self
            .take_block(order)
            .ok_or(FrameError::OutOfMemory { order })?;
        // Keep [start, start + count) as blocks of decreasing order (each one
        // naturally aligned because `start` is aligned to 2^order).
        let mut cur = start;
        for o in (0..=order).rev() {
            if count & (1 << o) != 0 {
                self.claim(cur, o, state);
                cur += 1 << o;
            }
        }
        // Return the excess: its frames are still `Free`, only off the lists.
        let end = start + (1usize << order);
        while cur < end {
            let o = self.largest_block(cur, end);
            self.insert_free(cur, o);
            cur += 1 << o;
        }
        Ok(self.pfn_at(start))
    }

    /// Frees `count` frames allocated by [`FrameTable::alloc_pages`] at `pfn`.
    /// All or nothing: every sub-block is checked before any is freed.
    pub fn free_pages(&mut self, pfn: Pfn, count: u64) -> Result<(), FrameError> {
        if count == 0 || count > MAX_PAGES_PER_ALLOC {
            return Err(FrameError::BadCount(count));
        }
        for pass in 0..2 {
            let mut cur = pfn;
            for o in (0..=MAX_ORDER).rev() {
                if count & (1 << o) != 0 {
                    if pass == 0 {
                        self.check_allocated(cur, o)?;
                    } else {
                        let i = self.check_allocated(cur, o)?;
                        self.release(i, o);
                    }
                    cur = cur.add(1 << o);
                }
            }
        }
        Ok(())
    }

    /// Checks that `pfn` heads a live allocation of `order` with no pinned
    /// frame; returns its index.
    fn check_allocated(&self, pfn: Pfn, order: u8) -> Result<usize, FrameError> {
        if order > MAX_ORDER {
            return Err(FrameError::BadOrder(order));
        }
        let i = self.idx(pfn).ok_or(FrameError::OutOfRange(pfn))?;
        if !pfn.is_aligned(order) {
            return Err(FrameError::Misaligned { pfn, order });
        }
        let d = &self.descs[i];
        if !d.is_managed() {
            return Err(FrameError::NotAllocated {
                pfn,
                state: d.state,
            });
        }
        if d.state == FrameState::Free {
            return Err(FrameError::DoubleFree(pfn));
        }
        let Some(allocated) = d.block_order() else {
            return Err(FrameError::NotHead(pfn));
        };
        if allocated != order {
            return Err(FrameError::WrongOrder {
                pfn,
                allocated,
                given: order,
            });
        }
        if let Some(j) = (i..i + (1 << order)).find(|&j| self.descs[j].pin_count != 0) {
            return Err(FrameError::Pinned(self.pfn_at(j)));
        }
        Ok(i)
    }

    /// Takes a free block of exactly `order` off the free lists, splitting a
    /// larger one if needed. Its frames stay `Free` with no head bit.
    fn take_block(&mut self, order: u8) -> Option<usize> {
        let mut o = (order..=MAX_ORDER).find(|&o| self.free_head[o as usize] != NIL)?;
        let i = self.free_head[o as usize] as usize;
        self.list_remove(i, o);
        self.descs[i].bud = BUD_MANAGED;
        while o > order {
            o -= 1;
            let upper = i + (1 << o);
            self.descs[upper].bud = BUD_MANAGED | BUD_HEAD | o;
            self.list_push(upper, o);
        }
        Some(i)
    }

    /// Hands the (taken) free block at `i` to an owner in `state`.
    fn claim(&mut self, i: usize, order: u8, state: FrameState) {
        let n = 1usize << order;
        for d in &mut self.descs[i..i + n] {
            d.state = state;
            d.bud = BUD_MANAGED;
            d.reset_owner_fields();
        }
        self.descs[i].bud = BUD_MANAGED | BUD_HEAD | order;
        self.per_state[FrameState::Free as usize] -= n as u64;
        self.per_state[state as usize] += n as u64;
    }

    /// Returns the owned block at `i` to the free lists.
    fn release(&mut self, i: usize, order: u8) {
        for d in &mut self.descs[i..i + (1 << order)] {
            self.per_state[d.state as usize] -= 1;
            d.state = FrameState::Free;
            d.bud = BUD_MANAGED;
            d.reset_owner_fields();
        }
        self.per_state[FrameState::Free as usize] += 1 << order;
        self.insert_free(i, order);
    }

    /// Puts the block at `i` (frames `Free`, no head bit, off every list) on
    /// the free lists, merging it with its free buddies.
    fn insert_free(&mut self, i: usize, order: u8) {
        let mut pfn = self.base + i as u64;
        let mut o = order;
        while o < MAX_ORDER {
            let buddy = pfn ^ (1 << o);
            match self.idx(Pfn(buddy)) {
                Some(b) if self.descs[b].is_free_head(o) => {
                    self.list_remove(b, o);
                    self.descs[b].bud = BUD_MANAGED;
                    pfn = pfn.min(buddy);
                    o += 1;
                }
                _ => break,
            }
        }
        let i = (pfn - self.base) as usize;
        self.descs[i].bud = BUD_MANAGED | BUD_HEAD | o;
        self.list_push(i, o);
    }

    fn list_push(&mut self, i: usize, order: u8) {
        let head = self.free_head[order as usize];
        self.descs[i].next = head;
        self.descs[i].prev = NIL;
        if head != NIL {
            self.descs[head as usize].prev = i as u32;
        }
        self.free_head[order as usize] = i as u32;
        self.free_blocks[order as usize] += 1;
    }

    fn list_remove(&mut self, i: usize, order: u8) {
        let (next, prev) = (self.descs[i].next, self.descs[i].prev);
        if prev != NIL {
            self.descs[prev as usize].next = next;
        } else {
            self.free_head[order as usize] = next;
        }
        if next != NIL {
            self.descs[next as usize].prev = prev;
        }
        self.descs[i].next = NIL;
        self.descs[i].prev = NIL;
        self.free_blocks[order as usize] -= 1;
    }
}
