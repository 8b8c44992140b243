//! Word arithmetic over the slot bitmaps: one bit per slot, 64 slots per
//! `u64` word, bit `s % 64` of word `s / 64`. No state of its own; every
//! caller holds `&mut Cleancache` (the one lock, see the crate rules).

/// Bits per word.
pub(crate) const WORD: usize = 64;

/// The word holding slot `s` and the slot's bit in it.
#[inline]
pub(crate) fn at(s: usize) -> (usize, u64) {
    (s / WORD, 1 << (s % WORD))
}

/// Whether slot `s` is set in `map`.
#[inline]
pub(crate) fn test(map: &[u64], s: usize) -> bool {
    let (w, b) = at(s);
    map[w] & b != 0
}

/// Words `first ..= last` covering slots `a .. b` (`a < b`) and the masks
/// of the range's bits in the first and in the last word.
#[inline]
pub(crate) fn span(a: usize, b: usize) -> (usize, usize, u64, u64) {
    debug_assert!(a < b);
    let (first, last) = (a / WORD, (b - 1) / WORD);
    let head = u64::MAX << (a % WORD);
    let tail = u64::MAX >> (WORD - 1 - (b - 1) % WORD);
    (first, last, head, tail)
}

/// The mask of the range's bits in word `k` of a span of `n` words
/// (`k < n`), from [`span`]'s head and tail masks.
#[inline]
pub(crate) fn mask(k: usize, n: usize, head: u64, tail: u64) -> u64 {
    let mut m = u64::MAX;
    if k == 0 {
        m &= head;
    }
    if k + 1 == n {
        m &= tail;
    }
    m
}

/// The first slot of `a .. b` (`a < b`) whose bit in `map` equals `want`,
/// a word at a time.
pub(crate) fn find(map: &[u64], a: usize, b: usize, want: bool) -> Option<usize> {
    let (first, last, head, tail) = span(a, b);
    let words = &map[first..=last];
    let n = words.len();
    for (k, &w) in words.iter().enumerate() {
        let w = if want { w } else { !w };
        let hit = w & mask(k, n, head, tail);
        if hit != 0 {
            return Some((first + k) * WORD + hit.trailing_zeros() as usize);
        }
    }
    None
}

#[cfg(test)]
mod unit {
    extern crate std;
    use super::*;

    #[test]
    fn spans_and_masks() {
        assert_eq!(span(0, 64), (0, 0, u64::MAX, u64::MAX));
        assert_eq!(span(3, 5), (0, 0, u64::MAX << 3, 0b11111));
        let (f, l, h, t) = span(60, 130);
        assert_eq!((f, l), (0, 2));
        assert_eq!(mask(0, 3, h, t), 0xF << 60);
        assert_eq!(mask(1, 3, h, t), u64::MAX);
        assert_eq!(mask(2, 3, h, t), 0b11);
        // Every slot of every small range is covered exactly once.
        for a in 0..140 {
            for b in a + 1..200 {
                let (f, l, h, t) = span(a, b);
                let n = l - f + 1;
                let ones: u32 = (0..n).map(|k| mask(k, n, h, t).count_ones()).sum();
                assert_eq!(ones as usize, b - a);
                assert!(mask(0, n, h, t) & (1 << (a % 64)) != 0);
                assert!(mask(n - 1, n, h, t) & (1 << ((b - 1) % 64)) != 0);
            }
        }
    }

    #[test]
    fn find_set_and_clear() {
        let mut map = std::vec![0u64; 4];
        map[1] = 1 << 5;
        map[3] = 1 << 63;
        assert_eq!(find(&map, 0, 256, true), Some(69));
        assert_eq!(find(&map, 70, 256, true), Some(255));
        assert_eq!(find(&map, 70, 255, true), None);
        assert_eq!(find(&map, 69, 70, false), None);
        assert_eq!(find(&map, 69, 71, false), Some(70));
        assert!(test(&map, 69) && !test(&map, 68));
    }
}
