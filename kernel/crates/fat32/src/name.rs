//! File names: 8.3 short names, long file names (LFN, UTF-16 in slots of 13
//! units, tied to their short entry by a checksum), validation and the
//! generation of unique short names (`BASIS~N.EXT`) for long names.

use alloc::string::String;
use alloc::vec::Vec;

use crate::FsError;

/// Attribute byte marking an LFN slot.
pub(crate) const ATTR_LFN: u8 = 0x0F;
/// Units of UTF-16 in one LFN slot.
pub(crate) const LFN_UNITS: usize = 13;
/// Byte offsets of the 13 UTF-16 units in an LFN slot.
pub(crate) const LFN_OFFSETS: [usize; LFN_UNITS] = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];

/// The checksum of a short name stored in each LFN slot.
pub fn lfn_checksum(short: &[u8; 11]) -> u8 {
    short
        .iter()
        .fold(0u8, |sum, &c| sum.rotate_right(1).wrapping_add(c))
}

fn short_char_ok(c: u8) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit() || b"!#$%&'()-@^_`{}~".contains(&c) || c >= 0x80
}

/// Checks a name given for a new entry.
pub(crate) fn validate(name: &str) -> Result<(), FsError> {
    if name.is_empty()
        || name == "."
        || name == ".."
        || name.ends_with(' ')
        || name.ends_with('.')
        || name.encode_utf16().count() > 255
        || name
            .chars()
            .any(|c| (c as u32) < 0x20 || "\"*/:<>?\\|".contains(c))
    {
        return Err(FsError::InvalidName);
    }
    Ok(())
}

/// If `name` is exactly a valid upper-case 8.3 name, its 11-byte form.
pub(crate) fn exact_short(name: &str) -> Option<[u8; 11]> {
    let b = name.as_bytes();
    let (base, ext) = match name.rfind('.') {
        Some(i) => (&b[..i], &b[i + 1..]),
        None => (b, &b[b.len()..]),
    };
    if base.is_empty() || base.len() > 8 || ext.len() > 3 || !name.is_ascii() {
        return None;
    }
    if !base.iter().chain(ext).all(|&c| short_char_ok(c)) {
        return None;
    }
    let mut out = [b' '; 11];
    out[..base.len()].copy_from_slice(base);
    out[8..8 + ext.len()].copy_from_slice(ext);
    if out[0] == 0xE5 {
        out[0] = 0x05;
    }
    Some(out)
}

/// The basis of a generated short name: up to 8 and 3 upper-case valid
/// characters (others become `_`, spaces and inner dots dropped).
fn basis(name: &str) -> ([u8; 8], usize, [u8; 3], usize) {
    let (base, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i + 1..]),
        _ => (name, ""),
    };
    let conv = |s: &str, out: &mut [u8]| -> usize {
        let mut n = 0;
        for c in s.chars() {
            if n == out.len() {
                break;
            }
            if c == ' ' || c == '.' {
                continue;
            }
            let u = c.to_ascii_uppercase();
            out[n] = if u.is_ascii() && short_char_ok(u as u8) {
                u as u8
            } else {
                b'_'
            };
            n += 1;
        }
        n
    };
    let mut b = [b' '; 8];
    let mut e = [b' '; 3];
    let mut nb = conv(base, &mut b);
    if nb == 0 {
        b[0] = b'_';
        nb = 1;
    }
    let ne = conv(ext, &mut e);
    (b, nb, e, ne)
}

/// A short name for `name` not in `taken`: `BASIS~N.EXT`.
pub(crate) fn generate_short(name: &str, taken: &[[u8; 11]]) -> Result<[u8; 11], FsError> {
    let (b, nb, e, _) = basis(name);
    for n in 1u32..1_000_000 {
        let mut digits = [0u8; 8];
        let mut len = 0;
        let mut v = n;
        while v > 0 {
            digits[len] = b'0' + (v % 10) as u8;
            v /= 10;
            len += 1;
        }
        let keep = nb.min(8 - 1 - len);
        let mut out = [b' '; 11];
        out[..keep].copy_from_slice(&b[..keep]);
        out[keep] = b'~';
        for i in 0..len {
            out[keep + 1 + i] = digits[len - 1 - i];
        }
        out[8..].copy_from_slice(&e);
        if !taken.contains(&out) {
            return Ok(out);
        }
    }
    Err(FsError::NoSpace)
}

/// The display form of a short name, honouring the lower-case flags of the
/// entry's byte 12 (bit 3: base, bit 4: extension).
pub(crate) fn short_display(raw: &[u8; 11], case: u8) -> String {
    let mut s = String::new();
    let mut first = raw[0];
    if first == 0x05 {
        first = 0xE5;
    }
    let base = core::iter::once(first).chain(raw[1..8].iter().copied());
    let lower = |c: u8, on: bool| if on { c.to_ascii_lowercase() } else { c };
    let push = |s: &mut String, c: u8| s.push(if c < 0x80 { c as char } else { '\u{FFFD}' });
    let base: Vec<u8> = base.collect();
    let blen = base.iter().rposition(|&c| c != b' ').map_or(0, |p| p + 1);
    for &c in &base[..blen] {
        push(&mut s, lower(c, case & 0x08 != 0));
    }
    let ext = &raw[8..11];
    let elen = ext.iter().rposition(|&c| c != b' ').map_or(0, |p| p + 1);
    if elen > 0 {
        s.push('.');
        for &c in &ext[..elen] {
            push(&mut s, lower(c, case & 0x10 != 0));
        }
    }
    s
}

/// Case-insensitive (ASCII) name comparison, as FAT does.
pub(crate) fn name_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.chars()
            .zip(b.chars())
            .all(|(x, y)| x.eq_ignore_ascii_case(&y))
}

/// The LFN slots for `name`, in on-disk order (last part first), each 32
/// bytes.
pub(crate) fn lfn_slots(name: &str, short: &[u8; 11]) -> Vec<[u8; 32]> {
    let units: Vec<u16> = name.encode_utf16().collect();
    let n = units.len().div_ceil(LFN_UNITS);
    let sum = lfn_checksum(short);
    let mut slots = Vec::with_capacity(n);
    for seq in (1..=n).rev() {
        let mut e = [0u8; 32];
        e[0] = seq as u8 | if seq == n { 0x40 } else { 0 };
        e[11] = ATTR_LFN;
        e[13] = sum;
        for (k, off) in LFN_OFFSETS.iter().enumerate() {
            let i = (seq - 1) * LFN_UNITS + k;
            let u: u16 = match i.cmp(&units.len()) {
                core::cmp::Ordering::Less => units[i],
                core::cmp::Ordering::Equal => 0,
                core::cmp::Ordering::Greater => 0xFFFF,
            };
            e[*off..*off + 2].copy_from_slice(&u.to_le_bytes());
        }
        slots.push(e);
    }
    slots
}

/// Collects LFN slots while a directory is scanned.
#[derive(Default)]
pub(crate) struct LfnAcc {
    units: Vec<u16>,
    expect: u8,
    sum: u8,
    valid: bool,
    /// Position of the first slot of the sequence.
    pub start: u64,
    /// Number of slots.
    pub count: u32,
}

impl LfnAcc {
    pub fn reset(&mut self) {
        self.valid = false;
        self.units.clear();
        self.count = 0;
    }

    /// Feeds one LFN slot found at `pos`.
    pub fn push(&mut self, e: &[u8], pos: u64) {
        let seq = e[0] & 0x1F;
        if e[0] & 0x40 != 0 {
            self.reset();
            if seq == 0 || seq > 20 {
                return;
            }
            self.units.resize(seq as usize * LFN_UNITS, 0xFFFF);
            self.expect = seq;
            self.sum = e[13];
            self.valid = true;
            self.start = pos;
        } else if !self.valid || seq != self.expect || e[13] != self.sum {
            self.reset();
            return;
        }
        for (k, off) in LFN_OFFSETS.iter().enumerate() {
            self.units[(seq as usize - 1) * LFN_UNITS + k] =
                u16::from_le_bytes([e[*off], e[off + 1]]);
        }
        self.count += 1;
        self.expect = seq - 1;
    }

    /// The long name if a complete sequence for `short` was collected.
    pub fn take(&mut self, short: &[u8; 11]) -> Option<String> {
        if !self.valid || self.expect != 0 || self.sum != lfn_checksum(short) {
            self.reset();
            return None;
        }
        let end = self
            .units
            .iter()
            .position(|&u| u == 0)
            .unwrap_or(self.units.len());
        let name: String = char::decode_utf16(self.units[..end].iter().copied())
            .map(|r| r.unwrap_or('\u{FFFD}'))
            .collect();
        self.valid = false;
        Some(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names() {
        assert_eq!(exact_short("README.TXT"), Some(*b"README  TXT"));
        assert_eq!(exact_short("readme.txt"), None);
        assert_eq!(exact_short("LONGERNAME.TXT"), None);
        assert_eq!(short_display(b"README  TXT", 0x18), "readme.txt");
        assert_eq!(short_display(b"A          ", 0), "A");
        let g = generate_short("Small File 1.txt", &[]).unwrap();
        assert_eq!(&g, b"SMALLF~1TXT");
        let g2 = generate_short("Small File 2.txt", &[g]).unwrap();
        assert_eq!(&g2, b"SMALLF~2TXT");
        assert_eq!(&generate_short(".hidden", &[]).unwrap(), b"HIDDEN~1   ");
    }

    #[test]
    fn lfn_round_trip() {
        let short = *b"SMALLF~1TXT";
        for name in [
            "a",
            "exactly13char",
            "Small File 0001 of the set.txt",
            "žluťoučký kůň",
        ] {
            let slots = lfn_slots(name, &short);
            let mut acc = LfnAcc::default();
            for (i, s) in slots.iter().enumerate() {
                acc.push(s, i as u64);
            }
            assert_eq!(acc.take(&short).as_deref(), Some(name));
            // Wrong checksum: the long name is not used.
            let mut acc = LfnAcc::default();
            for s in &slots {
                acc.push(s, 0);
            }
            assert_eq!(acc.take(b"OTHER   TXT"), None);
        }
        assert!(validate("a/b").is_err());
        assert!(validate("ok name.txt").is_ok());
        assert!(validate("trailing.").is_err());
    }
}
