//! Content of the generated test files, as a pure function of
//! `(seed, path, offset)`, so that every byte read back from a disk can be
//! checked without storing checksums.
//!
//! The host tool `tools/mkdata/mkdata.py` implements the identical function
//! (it is tested against this one by reading a Python-made image in the
//! fat32 and pagecache tests), writes the files with mtools, and puts a
//! manifest at `/MANIFEST.TXT`:
//!
//! ```text
//! seed 1234
//! 81920 big/large_000.bin
//! 17 small/d00/small_0000_some long name.txt
//! ```
//!
//! The manifest itself is plain text, not generated content.
//!
//! # The function
//!
//! `h = fnv1a64(path bytes)`; the file is a run of 8-byte little-endian
//! words, word `w` (covering bytes `8w..8w+8`) being
//! `splitmix64(seed ^ rotl(h, 17) ^ (w * 0x9E3779B97F4A7C15))`, all
//! arithmetic modulo 2^64.
#![no_std]
#![forbid(unsafe_code)]

/// Path of the manifest in a generated image.
pub const MANIFEST_PATH: &str = "/MANIFEST.TXT";

/// FNV-1a, 64 bit, over `bytes`.
pub const fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    h
}

/// The splitmix64 output function of `x` (one step from state `x`).
pub const fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Generator of one file's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Content {
    key: u64,
}

impl Content {
    /// Content of the file at `path` (relative to the image root, without a
    /// leading `/`, exactly as in the manifest) under `seed`.
    pub fn new(seed: u64, path: &str) -> Self {
        let path = path.trim_start_matches('/');
        Content {
            key: seed ^ fnv1a64(path.as_bytes()).rotate_left(17),
        }
    }

    /// The 8-byte word number `w`.
    pub fn word(&self, w: u64) -> u64 {
        splitmix64(self.key ^ w.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// The byte at `offset`.
    pub fn byte(&self, offset: u64) -> u8 {
        self.word(offset / 8).to_le_bytes()[(offset % 8) as usize]
    }

    /// Fills `buf` with the bytes from `offset` on.
    pub fn fill(&self, offset: u64, buf: &mut [u8]) {
        let mut off = offset;
        let mut i = 0;
        while i < buf.len() {
            let w = self.word(off / 8).to_le_bytes();
            let start = (off % 8) as usize;
            let n = (8 - start).min(buf.len() - i);
            buf[i..i + n].copy_from_slice(&w[start..start + n]);
            i += n;
            off += n as u64;
        }
    }

    /// Index of the first byte of `buf` (read from `offset`) that differs
    /// from the content, if any. Compares whole words where it can (the
    /// soak checks every byte it reads; per byte that costs several times
    /// more under emulation).
    pub fn first_mismatch(&self, offset: u64, buf: &[u8]) -> Option<usize> {
        let byte_at =
            |from: usize, to: usize| (from..to).find(|&j| self.byte(offset + j as u64) != buf[j]);
        // Up to the first word boundary, then word by word, then the tail.
        let head = (((8 - offset % 8) % 8) as usize).min(buf.len());
        if let Some(j) = byte_at(0, head) {
            return Some(j);
        }
        let first = (offset + head as u64) / 8;
        let tail = head + (buf.len() - head) / 8 * 8;
        for (k, chunk) in buf[head..].chunks_exact(8).enumerate() {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            let diff = u64::from_le_bytes(b) ^ self.word(first + k as u64);
            if diff != 0 {
                return Some(head + k * 8 + diff.trailing_zeros() as usize / 8);
            }
        }
        byte_at(tail, buf.len())
    }
}

/// One line of a manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManifestEntry<'a> {
    /// File size in bytes.
    pub size: u64,
    /// Path relative to the image root.
    pub path: &'a str,
}

/// Errors in a manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestError {
    /// The first line is not `seed N`.
    NoSeed,
    /// Line number (1-based) that is not `SIZE PATH`.
    BadLine(usize),
}

/// Parses a manifest: returns the seed and an iterator over the entries.
/// Entries are checked lazily: each iterator item is a `Result`.
pub fn parse_manifest(
    text: &str,
) -> Result<
    (
        u64,
        impl Iterator<Item = Result<ManifestEntry<'_>, ManifestError>>,
    ),
    ManifestError,
> {
    let mut lines = text.lines().enumerate();
    let seed = lines
        .next()
        .and_then(|(_, l)| l.strip_prefix("seed "))
        .and_then(|s| s.trim().parse::<u64>().ok())
        .ok_or(ManifestError::NoSeed)?;
    let entries = lines.filter(|(_, l)| !l.trim().is_empty()).map(|(n, l)| {
        let (size, path) = l.split_once(' ').ok_or(ManifestError::BadLine(n + 1))?;
        let size = size.parse().map_err(|_| ManifestError::BadLine(n + 1))?;
        if path.is_empty() {
            return Err(ManifestError::BadLine(n + 1));
        }
        Ok(ManifestEntry { size, path })
    });
    Ok((seed, entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // Pinned so that a change to the function (which would break the
        // Python twin and every existing image) is caught here.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(splitmix64(0), 0xe220_a839_7b1d_cdaf);
        let c = Content::new(1, "x.bin");
        assert_eq!(c.byte(0), c.word(0).to_le_bytes()[0]);
        // The same values are pinned in tools/mkdata/mkdata.py --selftest.
        let mut b = [0u8; 16];
        c.fill(0, &mut b);
        assert_eq!(
            b,
            *b"\xb7\xc4\x56\x37\xb5\xac\x66\x6d\xa8\x4f\xff\xe0\x23\xcb\x12\x3d"
        );
        let mut b = [0u8; 7];
        Content::new(77, "/big/large_000.bin").fill(4093, &mut b);
        assert_eq!(b, [0xd1, 0x65, 0xf3, 0x8e, 0x51, 0x54, 0x86]);
    }

    #[test]
    fn fill_matches_bytes_at_any_alignment() {
        let c = Content::new(42, "/dir/file.txt");
        assert_eq!(c, Content::new(42, "dir/file.txt"));
        for off in 0..20u64 {
            let mut buf = [0u8; 37];
            c.fill(off, &mut buf);
            for (i, b) in buf.iter().enumerate() {
                assert_eq!(*b, c.byte(off + i as u64));
            }
            assert_eq!(c.first_mismatch(off, &buf), None);
            buf[30] ^= 1;
            assert_eq!(c.first_mismatch(off, &buf), Some(30));
        }
        // Every position at every alignment, against a byte-by-byte check.
        for off in 0..9u64 {
            let mut buf = [0u8; 29];
            c.fill(off, &mut buf);
            for at in 0..buf.len() {
                for len in at + 1..=buf.len() {
                    let mut b = buf;
                    b[at] ^= 0x80;
                    assert_eq!(c.first_mismatch(off, &b[..len]), Some(at));
                    assert_eq!(c.first_mismatch(off, &buf[..len]), None);
                }
            }
        }
        assert_ne!(Content::new(43, "dir/file.txt").word(0), c.word(0));
        assert_ne!(Content::new(42, "dir/file.tx").word(0), c.word(0));
    }

    #[test]
    fn manifest() {
        let (seed, it) = parse_manifest("seed 7\n10 a b.txt\n\n3 c\n").unwrap();
        assert_eq!(seed, 7);
        let v: [_; 2] = [
            ManifestEntry {
                size: 10,
                path: "a b.txt",
            },
            ManifestEntry { size: 3, path: "c" },
        ];
        assert!(it.map(|e| e.unwrap()).eq(v));
        assert_eq!(parse_manifest("x").err(), Some(ManifestError::NoSeed));
        let (_, mut it) = parse_manifest("seed 1\nzz top\n").unwrap();
        assert_eq!(it.next(), Some(Err(ManifestError::BadLine(2))));
    }
}
