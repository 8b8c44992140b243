//! MBR (DOS) partition tables: the four primary entries of sector 0.
//!
//! # Rules
//!
//! * Sector 0 must end in the signature 55 AA ([`MbrError::NoSignature`]).
//! * An entry of type 0 is unused. Every other entry must have a boot flag of
//!   0x00 or 0x80, a non-zero start and length, and lie inside the disk
//!   ([`MbrError::OutOfRange`]); two used entries must not share a sector
//!   ([`MbrError::Overlap`]). Any violation refuses the whole table: a disk
//!   whose table is wrong is not guessed at.
//! * A protective GPT entry (type 0xEE) is reported as [`MbrError::Gpt`]:
//!   GPT is not read. Extended partitions (0x05, 0x0F, 0x85) are listed as
//!   entries but their logical partitions are not followed.
//! * Sizes come from the LBA fields only (CHS is ignored, as every modern
//!   system does).
//! * A FAT boot sector also ends in 55 AA and carries boot code where the
//!   table would be: callers decide whether sector 0 is a whole-disk file
//!   system before calling [`parse`] (the kernel mounts a whole-disk FAT32
//!   when sector 0 is a valid FAT32 boot sector).
//!
//! Pure functions over a byte slice; no I/O, no unsafe code.
#![no_std]
#![forbid(unsafe_code)]

use core::fmt;

/// Bytes in a sector (the table is in the first one).
pub const SECTOR_SIZE: usize = 512;

/// Partition types of FAT32 (CHS 0x0B, LBA 0x0C).
pub const FAT32_TYPES: [u8; 2] = [0x0b, 0x0c];

/// One used entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition {
    /// Entry number, 1..=4.
    pub index: u8,
    /// Partition type byte.
    pub kind: u8,
    /// Boot flag 0x80.
    pub bootable: bool,
    /// First sector.
    pub start: u64,
    /// Length in sectors.
    pub sectors: u64,
}

impl Partition {
    /// One past the last sector.
    pub fn end(&self) -> u64 {
        self.start + self.sectors
    }

    /// True for the FAT32 types.
    pub fn is_fat32(&self) -> bool {
        FAT32_TYPES.contains(&self.kind)
    }

    /// True for the extended-partition container types.
    pub fn is_extended(&self) -> bool {
        matches!(self.kind, 0x05 | 0x0f | 0x85)
    }
}

/// A parsed table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Table {
    /// Disk signature (offset 440).
    pub signature: u32,
    entries: [Option<Partition>; 4],
}

impl Table {
    /// The used entries in table order.
    pub fn partitions(&self) -> impl Iterator<Item = &Partition> {
        self.entries.iter().flatten()
    }

    /// Number of used entries.
    pub fn len(&self) -> usize {
        self.partitions().count()
    }

    /// True when no entry is used.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Why a table was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MbrError {
    /// Fewer than 512 bytes given.
    Short { len: usize },
    /// Bytes 510..512 are not 55 AA.
    NoSignature { found: [u8; 2] },
    /// A boot flag other than 0x00 or 0x80.
    BadBootFlag { index: u8, flag: u8 },
    /// A used entry with zero start or length.
    Empty { index: u8 },
    /// A used entry reaching past the disk.
    OutOfRange {
        index: u8,
        start: u64,
        sectors: u64,
        disk: u64,
    },
    /// Two used entries share sectors.
    Overlap { a: u8, b: u8 },
    /// A protective MBR: the disk is GPT.
    Gpt,
}

impl fmt::Display for MbrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MbrError::Short { len } => write!(f, "sector 0 is {len} bytes, not 512"),
            MbrError::NoSignature { found } => write!(
                f,
                "no partition table: sector 0 ends in {:02x} {:02x}, not 55 aa",
                found[0], found[1]
            ),
            MbrError::BadBootFlag { index, flag } => {
                write!(
                    f,
                    "partition {index}: boot flag {flag:#04x} is neither 0x00 nor 0x80"
                )
            }
            MbrError::Empty { index } => {
                write!(f, "partition {index}: used entry with zero start or length")
            }
            MbrError::OutOfRange {
                index,
                start,
                sectors,
                disk,
            } => write!(
                f,
                "partition {index}: sectors {start}..{} lie outside the disk ({disk} sectors)",
                start + sectors
            ),
            MbrError::Overlap { a, b } => write!(f, "partitions {a} and {b} overlap"),
            MbrError::Gpt => write!(
                f,
                "protective MBR: the disk uses GPT, which is not supported"
            ),
        }
    }
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Parses the table in `sector0` of a disk of `disk_sectors` sectors.
pub fn parse(sector0: &[u8], disk_sectors: u64) -> Result<Table, MbrError> {
    if sector0.len() < SECTOR_SIZE {
        return Err(MbrError::Short { len: sector0.len() });
    }
    if sector0[510] != 0x55 || sector0[511] != 0xaa {
        return Err(MbrError::NoSignature {
            found: [sector0[510], sector0[511]],
        });
    }
    let mut entries = [None; 4];
    for (i, slot) in entries.iter_mut().enumerate() {
        let e = &sector0[446 + 16 * i..446 + 16 * (i + 1)];
        let index = i as u8 + 1;
        let kind = e[4];
        if kind == 0 {
            continue;
        }
        if kind == 0xee {
            return Err(MbrError::Gpt);
        }
        if e[0] != 0 && e[0] != 0x80 {
            return Err(MbrError::BadBootFlag { index, flag: e[0] });
        }
        let start = le32(e, 8) as u64;
        let sectors = le32(e, 12) as u64;
        if start == 0 || sectors == 0 {
            return Err(MbrError::Empty { index });
        }
        if start + sectors > disk_sectors {
            return Err(MbrError::OutOfRange {
                index,
                start,
                sectors,
                disk: disk_sectors,
            });
        }
        *slot = Some(Partition {
            index,
            kind,
            bootable: e[0] == 0x80,
            start,
            sectors,
        });
    }
    for a in entries.iter().flatten() {
        for b in entries.iter().flatten() {
            if a.index < b.index && a.start < b.end() && b.start < a.end() {
                return Err(MbrError::Overlap {
                    a: a.index,
                    b: b.index,
                });
            }
        }
    }
    Ok(Table {
        signature: le32(sector0, 440),
        entries,
    })
}

#[cfg(test)]
mod tests;
