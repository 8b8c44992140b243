//! Counters of a frame table: [`FrameStats`].
//!
//! Rule: the counters are kept by the code that changes a frame's state
//! (`table.rs`, `buddy.rs`), never recomputed here; [`FrameTable::verify`]
//! recounts them from the descriptors.

use core::fmt;

use crate::{FrameState, FrameTable, NR_ORDERS};

/// Counters of a [`FrameTable`] (all in frames, except `free_blocks`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FrameStats {
    /// Frames covered by the table (including holes).
    pub total: u64,
    /// Frames given to the buddy (free or allocated from it).
    pub managed: u64,
    /// Free frames in the buddy.
    pub free: u64,
    /// Number of free blocks on each free list, by order.
    pub free_blocks: [u64; NR_ORDERS],
    /// Frames in each state, indexed by `FrameState as usize`.
    pub per_state: [u64; FrameState::COUNT],
}

impl FrameStats {
    /// Frames in `state`.
    pub const fn state(&self, state: FrameState) -> u64 {
        self.per_state[state as usize]
    }
}

impl fmt::Display for FrameStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "frames total={} managed={} free={} blocks=[",
            self.total, self.managed, self.free
        )?;
        for (o, n) in self.free_blocks.iter().enumerate() {
            if o > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{n}")?;
        }
        f.write_str("]")?;
        for s in FrameState::ALL {
            write!(f, " {}={}", s.name(), self.state(*s))?;
        }
        Ok(())
    }
}

impl FrameTable<'_> {
    /// Counters.
    pub fn stats(&self) -> FrameStats {
        FrameStats {
            total: self.len(),
            managed: self.managed,
            free: self.free_frames(),
            free_blocks: self.free_blocks,
            per_state: self.per_state,
        }
    }

    /// Free frames in the buddy.
    pub fn free_frames(&self) -> u64 {
        self.per_state[FrameState::Free as usize]
    }

    /// Frames given to the buddy.
    pub fn managed_frames(&self) -> u64 {
        self.managed
    }

    /// Frames in `state`.
    pub fn state_count(&self, state: FrameState) -> u64 {
        self.per_state[state as usize]
    }

    /// Free blocks on the free list of `order` (0 for orders above
    /// [`MAX_ORDER`](crate::MAX_ORDER)).
    pub fn free_blocks(&self, order: u8) -> u64 {
        self.free_blocks.get(order as usize).copied().unwrap_or(0)
    }
}
