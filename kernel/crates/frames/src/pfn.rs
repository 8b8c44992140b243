//! Physical frame numbers and the frames of a byte range.
//!
//! Rule: a range of usable memory gives the frames lying wholly inside it
//! ([`pfns_within`], partial frames dropped); a reservation gives every frame
//! it touches ([`pfns_covering`], partial frames included), so that rounding
//! never hands out a byte someone reserved.

use core::fmt;
use core::ops::Range;

use crate::{PAGE_SHIFT, PAGE_SIZE};

/// A physical frame number (physical address >> [`PAGE_SHIFT`]).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
#[repr(transparent)]
pub struct Pfn(pub u64);

impl Pfn {
    /// The frame containing physical address `addr` (rounds down).
    pub const fn from_addr(addr: u64) -> Pfn {
        Pfn(addr >> PAGE_SHIFT)
    }

    /// The first frame starting at or above `addr` (rounds up).
    pub const fn from_addr_up(addr: u64) -> Pfn {
        Pfn(addr.div_ceil(PAGE_SIZE))
    }

    /// Physical address of the frame's first byte.
    pub const fn addr(self) -> u64 {
        self.0 << PAGE_SHIFT
    }

    /// The frame `n` frames further.
    pub const fn add(self, n: u64) -> Pfn {
        Pfn(self.0 + n)
    }

    /// Whether the frame is aligned for a block of `order`.
    pub const fn is_aligned(self, order: u8) -> bool {
        order < 64 && self.0 & ((1u64 << order) - 1) == 0
    }
}

impl fmt::Display for Pfn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pfn {:#x}", self.0)
    }
}

/// Frames lying wholly inside the byte range `addr` (for usable RAM: a partial
/// frame at either end is dropped).
pub const fn pfns_within(addr: Range<u64>) -> Range<Pfn> {
    let start = Pfn::from_addr_up(addr.start);
    let end = Pfn::from_addr(addr.end);
    if end.0 < start.0 {
        start..start
    } else {
        start..end
    }
}

/// Frames touched by the byte range `addr` (for reservations: a partial frame
/// at either end is included).
pub const fn pfns_covering(addr: Range<u64>) -> Range<Pfn> {
    let start = Pfn::from_addr(addr.start);
    let end = Pfn::from_addr_up(addr.end);
    if end.0 < start.0 {
        start..start
    } else {
        start..end
    }
}
