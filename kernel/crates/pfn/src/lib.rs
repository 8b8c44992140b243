//! The one page size and the one physical frame number type of the kernel
//! and its memory crates (`frames`, `cleancache`, `contig`, `pagecache`,
//! `physmap`, `fat32`); each re-exports what it uses, so `frames::Pfn`,
//! `cleancache::Pfn` and `contig::Pfn` are this [`Pfn`], and every
//! `PAGE_SIZE` is this [`PAGE_SIZE`].
//!
//! # Rules
//!
//! * A page is `1 << PAGE_SHIFT` bytes (4 KiB). [`PAGE_SIZE`] is a `u64`
//!   because what it scales is: physical addresses ([`Pfn::addr`]) and file
//!   offsets are 64-bit whatever the pointer width of the machine. Memory
//!   views (slices, `Layout`s) convert with `PAGE_SIZE as usize`, which is
//!   lossless (the value is 4096).
//! * A [`Pfn`] is a physical address shifted right by [`PAGE_SHIFT`]. Its
//!   arithmetic is frame counts: `pfn + n` is the frame `n` frames further,
//!   `pfn - n` the frame `n` before it, `b - a` (two frame numbers) the
//!   number of frames from `a` up to `b` (`a <= b`, as for
//!   integers: an underflow panics in debug builds), and
//!   [`Pfn::offset_from`] the same without the precondition (`None` below
//!   the base).
//!
//! ```
//! use pfn::{PAGE_SIZE, Pfn};
//!
//! let base = Pfn::from_addr(0x4000_0000);
//! let p = base + 3;
//! assert_eq!(p.addr(), 0x4000_0000 + 3 * PAGE_SIZE);
//! assert_eq!(p - base, 3);
//! assert_eq!(base.offset_from(p), None);
//! assert_eq!(format!("{p}"), "pfn 0x40003");
//! assert_eq!(format!("{p:#x}"), "0x40003");
//! ```

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use core::fmt;
use core::ops::{Add, AddAssign, Sub};

/// log2 of the page (frame) size.
pub const PAGE_SHIFT: u32 = 12;
/// Page (frame) size in bytes: 4 KiB.
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;
/// The bytes of one page, for `&[u8; ..]` views of a frame.
pub type PageBytes = [u8; PAGE_SIZE as usize];

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

    /// The frame `n` frames further (`self + n`, usable in `const`).
    pub const fn add(self, n: u64) -> Pfn {
        Pfn(self.0 + n)
    }

    /// The frame `n` frames further, or `None` past the last frame number.
    pub const fn checked_add(self, n: u64) -> Option<Pfn> {
        match self.0.checked_add(n) {
            Some(p) => Some(Pfn(p)),
            None => None,
        }
    }

    /// How many frames `self` lies above `base`; `None` if it lies below.
    pub const fn offset_from(self, base: Pfn) -> Option<u64> {
        self.0.checked_sub(base.0)
    }

    /// Whether the frame is aligned for a block of `order` (`2^order` frames).
    pub const fn is_aligned(self, order: u8) -> bool {
        order < 64 && self.0 & ((1u64 << order) - 1) == 0
    }
}

impl Add<u64> for Pfn {
    type Output = Pfn;
    fn add(self, n: u64) -> Pfn {
        Pfn(self.0 + n)
    }
}

impl AddAssign<u64> for Pfn {
    fn add_assign(&mut self, n: u64) {
        self.0 += n;
    }
}

/// The frame `n` frames before (`n` at most the frame number).
impl Sub<u64> for Pfn {
    type Output = Pfn;
    fn sub(self, n: u64) -> Pfn {
        Pfn(self.0 - n)
    }
}

/// Frames from `base` up to `self` (`base <= self`).
impl Sub for Pfn {
    type Output = u64;
    fn sub(self, base: Pfn) -> u64 {
        self.0 - base.0
    }
}

/// `pfn {:#x}`: how console lines name a frame.
impl fmt::Display for Pfn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pfn {:#x}", self.0)
    }
}

/// The number alone, for `{:#x}` in messages that say "pfn" themselves.
impl fmt::LowerHex for Pfn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_as_documented() {
        assert_eq!(Pfn::from_addr(0x1fff), Pfn(1));
        assert_eq!(Pfn::from_addr_up(0x1001), Pfn(2));
        assert_eq!(Pfn::from_addr_up(0x1000), Pfn(1));
        assert_eq!(Pfn(5).addr(), 5 * PAGE_SIZE);
        assert_eq!(core::mem::size_of::<PageBytes>() as u64, PAGE_SIZE);
    }

    #[test]
    fn arithmetic_counts_frames() {
        let mut p = Pfn(10) + 6;
        assert_eq!(p, Pfn(16));
        p += 1;
        assert_eq!(p - Pfn(10), 7);
        assert_eq!(p - 7, Pfn(10));
        assert_eq!(p.offset_from(Pfn(17)), Some(0));
        assert_eq!(Pfn(9).offset_from(Pfn(10)), None);
        assert_eq!(Pfn(u64::MAX).checked_add(1), None);
        assert_eq!(Pfn(1).checked_add(2), Some(Pfn(3)));
        assert!(Pfn(8).is_aligned(3) && !Pfn(12).is_aligned(3));
        assert!(Pfn(3) < Pfn(4));
    }
}
