//! The self-check: [`FrameTable::verify`] recounts every descriptor and
//! walks every free list, against the buddy invariants (`buddy.rs`), the
//! field invariants (`desc.rs`) and the counters (`stats.rs`).
//!
//! Rule: it only reads; a broken invariant is reported as the first
//! [`Corruption`] found, with the frame where it was seen.

use core::fmt;

use crate::desc::BUD_MANAGED;
use crate::{FrameState, FrameTable, MAX_ORDER, NIL, NR_ORDERS, Pfn};

/// A broken invariant found by [`FrameTable::verify`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Corruption {
    /// Frame where it was found (the table base for global counters).
    pub pfn: Pfn,
    /// What is wrong.
    pub what: &'static str,
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "frame table corrupt at {}: {}", self.pfn, self.what)
    }
}

impl FrameTable<'_> {
    /// Checks every invariant of the descriptors and free lists in
    /// `O(frames)`; for tests and kernel self-checks.
    pub fn verify(&self) -> Result<(), Corruption> {
        let bad = |i: usize, what| {
            Err(Corruption {
                pfn: self.pfn_at(i),
                what,
            })
        };
        let len = self.descs.len();
        let mut per_state = [0u64; FrameState::COUNT];
        let mut managed = 0u64;
        let mut heads = [0u64; NR_ORDERS];
        let mut i = 0;
        while i < len {
            let d = &self.descs[i];
            per_state[d.state as usize] += 1;
            if !d.is_managed() {
                if d.bud != 0 {
                    return bad(i, "unmanaged frame carries buddy bits");
                }
                if d.state == FrameState::Free {
                    return bad(i, "free frame not managed by the buddy");
                }
                i += 1;
                continue;
            }
            let Some(order) = d.block_order() else {
                return bad(i, "managed frame outside any block");
            };
            if order > MAX_ORDER {
                return bad(i, "block order above MAX_ORDER");
            }
            if !self.pfn_at(i).is_aligned(order) {
                return bad(i, "block not naturally aligned");
            }
            let n = 1usize << order;
            if i + n > len {
                return bad(i, "block runs past the end of the table");
            }
            let free = d.state == FrameState::Free;
            if !free && !d.state.is_owned() {
                return bad(i, "managed frame is absent");
            }
            for j in i..i + n {
                let t = &self.descs[j];
                if j > i {
                    per_state[t.state as usize] += 1;
                    if t.bud != BUD_MANAGED {
                        return bad(j, "block tail carries head or order bits");
                    }
                    if free != (t.state == FrameState::Free) || !(free || t.state.is_owned()) {
                        return bad(j, "block mixes free and owned frames");
                    }
                }
                if free
                    && (!t.flags.is_empty()
                        || t.pin_count != 0
                        || t.owner != 0
                        || t.mapping != 0
                        || t.index != 0)
                {
                    return bad(j, "free frame has owner fields set");
                }
            }
            if free {
                heads[order as usize] += 1;
                if order < MAX_ORDER {
                    let buddy = self.pfn_at(i).0 ^ (1 << order);
                    if self
                        .idx(Pfn(buddy))
                        .is_some_and(|b| self.descs[b].is_free_head(order))
                    {
                        return bad(i, "free buddies not coalesced");
                    }
                }
            }
            managed += n as u64;
            i += n;
        }
        let at_base = |what| {
            Err(Corruption {
                pfn: Pfn(self.base),
                what,
            })
        };
        if per_state != self.per_state {
            return at_base("per-state counters disagree with the descriptors");
        }
        if managed != self.managed {
            return at_base("managed counter disagrees with the descriptors");
        }
        let mut free_frames = 0u64;
        for (o, &nheads) in heads.iter().enumerate() {
            if nheads != self.free_blocks[o] {
                return at_base("free block counter disagrees with the descriptors");
            }
            let mut prev = NIL;
            let mut cur = self.free_head[o];
            let mut seen = 0u64;
            while cur != NIL {
                let c = cur as usize;
                if c >= len {
                    return at_base("free list link out of range");
                }
                if !self.descs[c].is_free_head(o as u8) {
                    return bad(
                        c,
                        "free list holds a frame that is not a free head of its order",
                    );
                }
                if self.descs[c].prev != prev {
                    return bad(c, "free list back link broken");
                }
                seen += 1;
                if seen > nheads {
                    return bad(c, "free list longer than the free blocks (cycle?)");
                }
                prev = cur;
                cur = self.descs[c].next;
            }
            if seen != nheads {
                return at_base("free block missing from its free list");
            }
            free_frames += nheads << o;
        }
        if free_frames != self.free_frames() {
            return at_base("free lists disagree with the free counter");
        }
        Ok(())
    }
}
