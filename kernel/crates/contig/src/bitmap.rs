//! A fixed-size bitmap over the pages of an area, with first-fit search
//! honouring the alignment of the *physical* frame number.

use alloc::vec;
use alloc::vec::Vec;

use crate::Pfn;

/// One bit per page; bit set = page in use (allocated, or lent for the CMA
/// lent map).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bitmap {
    words: Vec<u64>,
    len: usize,
    ones: usize,
}

impl Bitmap {
    /// `len` bits, all clear.
    pub fn new(len: usize) -> Self {
        Bitmap {
            words: vec![0; len.div_ceil(64)],
            len,
            ones: 0,
        }
    }

    /// Number of bits.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the bitmap has no bits at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of set bits (kept up to date, O(1)).
    pub fn count_ones(&self) -> usize {
        self.ones
    }

    /// Bit `i` (panics if `i >= len`).
    pub fn get(&self, i: usize) -> bool {
        assert!(i < self.len, "bit {i} out of {}", self.len);
        self.words[i / 64] >> (i % 64) & 1 == 1
    }

    /// Sets bit `i`; returns its previous value.
    pub fn set(&mut self, i: usize) -> bool {
        let was = self.get(i);
        if !was {
            self.words[i / 64] |= 1 << (i % 64);
            self.ones += 1;
        }
        was
    }

    /// Clears bit `i`; returns its previous value.
    pub fn clear(&mut self, i: usize) -> bool {
        let was = self.get(i);
        if was {
            self.words[i / 64] &= !(1 << (i % 64));
            self.ones -= 1;
        }
        was
    }

    /// Sets bits `start .. start + n` (panics past the end), a word at a
    /// time.
    pub fn set_range(&mut self, start: usize, n: usize) {
        self.for_range(start, n, |w, mask| {
            let new = (mask & !*w).count_ones() as usize;
            *w |= mask;
            new as isize
        });
    }

    /// Clears bits `start .. start + n` (panics past the end), a word at a
    /// time.
    pub fn clear_range(&mut self, start: usize, n: usize) {
        self.for_range(start, n, |w, mask| {
            let gone = (mask & *w).count_ones() as usize;
            *w &= !mask;
            -(gone as isize)
        });
    }

    /// Calls `f(word, mask)` for every word overlapping `start .. start + n`
    /// with the mask of the range's bits in it; `f` returns the change in
    /// set bits.
    fn for_range(&mut self, start: usize, n: usize, mut f: impl FnMut(&mut u64, u64) -> isize) {
        if n == 0 {
            return;
        }
        let end = start.checked_add(n).expect("bit range overflows");
        assert!(end <= self.len, "bits {start}..{end} out of {}", self.len);
        let mut i = start;
        while i < end {
            let bit = i % 64;
            let take = (64 - bit).min(end - i);
            let mask = if take == 64 {
                u64::MAX
            } else {
                ((1u64 << take) - 1) << bit
            };
            let d = f(&mut self.words[i / 64], mask);
            self.ones = self.ones.wrapping_add_signed(d);
            i += take;
        }
    }

    /// First set bit in `from .. end` (`end` capped at `len`), word at a time.
    pub fn next_set(&self, from: usize, end: usize) -> Option<usize> {
        self.next_matching(from, end, false)
    }

    /// First clear bit in `from .. end` (`end` capped at `len`).
    pub fn next_clear(&self, from: usize, end: usize) -> Option<usize> {
        self.next_matching(from, end, true)
    }

    /// First index `>= from` whose bit is clear here and in `other` (same
    /// length), a word at a time.
    pub fn next_clear_in_both(&self, other: &Bitmap, from: usize) -> Option<usize> {
        debug_assert_eq!(self.len, other.len);
        let mut i = from;
        while i < self.len {
            let w = !(self.words[i / 64] | other.words[i / 64]) >> (i % 64);
            if w != 0 {
                let hit = i + w.trailing_zeros() as usize;
                return (hit < self.len).then_some(hit);
            }
            i = (i / 64 + 1) * 64;
        }
        None
    }

    fn next_matching(&self, from: usize, end: usize, want_clear: bool) -> Option<usize> {
        let end = end.min(self.len);
        let mut i = from;
        while i < end {
            let w = self.words[i / 64];
            let w = if want_clear { !w } else { w };
            let bits = w >> (i % 64);
            if bits != 0 {
                let hit = i + bits.trailing_zeros() as usize;
                return (hit < end).then_some(hit);
            }
            i = (i / 64 + 1) * 64;
        }
        None
    }

    /// Whether bits `start .. start + n` are all clear.
    pub fn range_clear(&self, start: usize, n: usize) -> bool {
        start + n <= self.len && self.next_set(start, start + n).is_none()
    }

    /// First `start >= from` such that bits `start .. start + count` are clear
    /// and `base_pfn + start` is a multiple of `align` (a power of two).
    /// First fit, like Linux's `bitmap_find_next_zero_area_off` with the
    /// area's base pfn as offset.
    pub fn find_fit(
        &self,
        from: usize,
        count: usize,
        align: usize,
        base_pfn: Pfn,
    ) -> Option<usize> {
        debug_assert!(align.is_power_of_two());
        let mut start = align_index(from, align, base_pfn)?;
        loop {
            let end = start.checked_add(count)?;
            if end > self.len {
                return None;
            }
            match self.next_set(start, end) {
                None => return Some(start),
                Some(used) => start = align_index(used + 1, align, base_pfn)?,
            }
        }
    }
}

/// Smallest index `>= i` whose pfn `base_pfn + index` is a multiple of
/// `align`.
fn align_index(i: usize, align: usize, base_pfn: Pfn) -> Option<usize> {
    let pfn = base_pfn.checked_add(i as u64)?;
    let aligned = Pfn(pfn.0.checked_next_multiple_of(align as u64)?);
    usize::try_from(aligned - base_pfn).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_clear_count() {
        let mut b = Bitmap::new(130);
        assert!(!b.set(3));
        assert!(b.set(3));
        b.set_range(60, 10);
        assert_eq!(b.count_ones(), 11);
        assert!(b.get(64) && b.get(69) && !b.get(70));
        assert!(b.clear(3));
        assert!(!b.clear(3));
        b.clear_range(60, 5);
        assert_eq!(b.count_ones(), 5);
        assert_eq!(b.next_set(0, 130), Some(65));
        assert_eq!(b.next_clear(65, 130), Some(70));
        assert_eq!(b.next_set(70, 130), None);
        assert_eq!(b.next_set(0, 65), None);
        assert!(b.range_clear(70, 60));
        assert!(!b.range_clear(70, 61), "past the end");
    }

    #[test]
    fn fit_honours_physical_alignment() {
        let b = Bitmap::new(64);
        // pfn 0x1003 + 5 = 0x1008 is the first multiple of 8.
        assert_eq!(b.find_fit(0, 4, 8, Pfn(0x1003)), Some(5));
        assert_eq!(b.find_fit(0, 4, 1, Pfn(0x1003)), Some(0));
        // Aligned start exists but the range would pass the end.
        assert_eq!(b.find_fit(0, 60, 8, Pfn(0x1003)), None);
        assert_eq!(b.find_fit(0, 59, 8, Pfn(0x1003)), Some(5));
    }

    #[test]
    fn fit_skips_used_bits() {
        let mut b = Bitmap::new(200);
        b.set(2);
        b.set(70);
        assert_eq!(b.find_fit(0, 4, 1, Pfn(0)), Some(3));
        assert_eq!(b.find_fit(0, 68, 1, Pfn(0)), Some(71));
        assert_eq!(b.find_fit(0, 4, 4, Pfn(0)), Some(4));
        assert_eq!(b.find_fit(0, 64, 64, Pfn(0)), Some(128));
        assert_eq!(b.find_fit(5, 4, 4, Pfn(0)), Some(8));
        assert_eq!(b.find_fit(0, 201, 1, Pfn(0)), None);
    }

    /// Word-at-a-time ranges against bit-at-a-time, across word boundaries
    /// and over bits already set or clear.
    #[test]
    fn ranges_match_single_bits() {
        let mut fast = Bitmap::new(300);
        let mut slow = Bitmap::new(300);
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for round in 0..400 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let start = (x % 300) as usize;
            let n = ((x >> 20) % (300 - start as u64 + 1)) as usize;
            if round % 3 == 0 {
                fast.clear_range(start, n);
                (start..start + n).for_each(|i| {
                    slow.clear(i);
                });
            } else {
                fast.set_range(start, n);
                (start..start + n).for_each(|i| {
                    slow.set(i);
                });
            }
            assert_eq!(fast, slow, "after range {start}+{n}");
        }
        fast.set_range(0, 300);
        assert_eq!(fast.count_ones(), 300);
        fast.clear_range(300, 0);
    }

    #[test]
    #[should_panic]
    fn range_past_the_end_panics() {
        Bitmap::new(100).set_range(60, 41);
    }

    /// Against a naive search, on a pseudo-random pattern.
    #[test]
    fn fit_matches_naive_search() {
        let mut b = Bitmap::new(300);
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for i in 0..300 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if x.is_multiple_of(5) {
                b.set(i);
            }
        }
        for base in [0u64, 1, 3, 0x7F].map(Pfn) {
            for align in [1usize, 2, 4, 8, 16] {
                for count in 1..12 {
                    let naive = (0..300).find(|&s| {
                        (base + s as u64).0.is_multiple_of(align as u64)
                            && s + count <= 300
                            && (s..s + count).all(|i| !b.get(i))
                    });
                    assert_eq!(b.find_fit(0, count, align, base), naive);
                }
            }
        }
    }
}
