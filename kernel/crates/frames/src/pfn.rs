//! The frames of a byte range ([`Pfn`] itself is the `pfn` crate's).
//!
//! Rule: a range of usable memory gives the frames lying wholly inside it
//! ([`pfns_within`], partial frames dropped); a reservation gives every frame
//! it touches ([`pfns_covering`], partial frames included), so that rounding
//! never hands out a byte someone reserved.

use core::ops::Range;

pub use ::pfn::Pfn;

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
