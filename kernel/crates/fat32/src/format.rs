//! `format`: writes an empty FAT32 filesystem (for RAM disks in tests and
//! in-kernel self-tests; images for the demo come from mkfs.fat).
//!
//! Layout: 32 reserved sectors (boot sector at 0, FSInfo at 1, their backups
//! at 6 and 7), two FATs, root directory in cluster 2. Every sector of the
//! reserved area, both FATs and the root cluster is written; nothing else.

use blkdev::{BlockDevice, SECTOR_SIZE};

use crate::FsError;

/// Format parameters.
#[derive(Debug, Clone, Copy)]
pub struct FormatOptions {
    /// Sectors per cluster (power of two, 1..=128).
    pub sectors_per_cluster: u8,
    /// Volume serial number.
    pub volume_id: u32,
    /// Volume label (11 bytes, space padded; `NO NAME` for none). Written to
    /// the boot sector and, unless `NO NAME`, as the root's label entry.
    pub label: [u8; 11],
}

impl Default for FormatOptions {
    fn default() -> Self {
        FormatOptions {
            sectors_per_cluster: 1,
            volume_id: 0x6C6D_4347,
            label: *b"GCMA       ",
        }
    }
}

const RESERVED: u32 = 32;
const FATS: u32 = 2;

/// Formats the whole device as FAT32.
pub fn format<D: BlockDevice>(dev: &mut D, opts: &FormatOptions) -> Result<(), FsError> {
    let spc = opts.sectors_per_cluster as u32;
    if spc == 0 || !spc.is_power_of_two() || spc > 128 {
        return Err(FsError::Unsupported("sectors per cluster"));
    }
    let total = dev.sector_count().min(u32::MAX as u64) as u32;
    // FAT size: enough entries for every cluster the rest could hold.
    let fat_size =
        ((total.saturating_sub(RESERVED) / spc + 2) as u64 * 4).div_ceil(SECTOR_SIZE as u64) as u32;
    let first_data = RESERVED + FATS * fat_size;
    if total <= first_data + spc {
        return Err(FsError::NoSpace);
    }
    let clusters = (total - first_data) / spc;
    if clusters < 16 {
        return Err(FsError::NoSpace);
    }
    let mut bs = [0u8; SECTOR_SIZE];
    bs[..3].copy_from_slice(&[0xEB, 0x58, 0x90]);
    bs[3..11].copy_from_slice(b"GCMAFAT ");
    bs[11..13].copy_from_slice(&(SECTOR_SIZE as u16).to_le_bytes());
    bs[13] = spc as u8;
    bs[14..16].copy_from_slice(&(RESERVED as u16).to_le_bytes());
    bs[16] = FATS as u8;
    bs[21] = 0xF8;
    bs[24..26].copy_from_slice(&32u16.to_le_bytes()); // sectors per track
    bs[26..28].copy_from_slice(&64u16.to_le_bytes()); // heads
    bs[32..36].copy_from_slice(&total.to_le_bytes());
    bs[36..40].copy_from_slice(&fat_size.to_le_bytes());
    bs[44..48].copy_from_slice(&2u32.to_le_bytes()); // root cluster
    bs[48..50].copy_from_slice(&1u16.to_le_bytes()); // FSInfo
    bs[50..52].copy_from_slice(&6u16.to_le_bytes()); // backup boot sector
    bs[64] = 0x80; // drive number
    bs[66] = 0x29; // extended boot signature
    bs[67..71].copy_from_slice(&opts.volume_id.to_le_bytes());
    bs[71..82].copy_from_slice(&opts.label);
    bs[82..90].copy_from_slice(b"FAT32   ");
    bs[510] = 0x55;
    bs[511] = 0xAA;

    let mut fsinfo = [0u8; SECTOR_SIZE];
    fsinfo[0..4].copy_from_slice(&0x4161_5252u32.to_le_bytes());
    fsinfo[484..488].copy_from_slice(&0x6141_7272u32.to_le_bytes());
    fsinfo[488..492].copy_from_slice(&(clusters - 1).to_le_bytes());
    fsinfo[492..496].copy_from_slice(&3u32.to_le_bytes());
    fsinfo[508..512].copy_from_slice(&0xAA55_0000u32.to_le_bytes());

    let zero = [0u8; SECTOR_SIZE];
    for s in 0..RESERVED as u64 {
        let data: &[u8; SECTOR_SIZE] = match s {
            0 | 6 => &bs,
            1 | 7 => &fsinfo,
            2 | 8 => {
                // Sector 2 of the boot area carries the boot signature too.
                let mut b = zero;
                b[510] = 0x55;
                b[511] = 0xAA;
                dev.write_sectors(s, &b)?;
                continue;
            }
            _ => &zero,
        };
        dev.write_sectors(s, data)?;
    }
    let mut first_fat = [0u8; SECTOR_SIZE];
    first_fat[0..4].copy_from_slice(&0x0FFF_FFF8u32.to_le_bytes());
    first_fat[4..8].copy_from_slice(&0x0FFF_FFFFu32.to_le_bytes());
    first_fat[8..12].copy_from_slice(&0x0FFF_FFFFu32.to_le_bytes());
    for k in 0..FATS {
        let start = (RESERVED + k * fat_size) as u64;
        dev.write_sectors(start, &first_fat)?;
        for s in 1..fat_size as u64 {
            dev.write_sectors(start + s, &zero)?;
        }
    }
    for s in 0..spc as u64 {
        let mut root = zero;
        if s == 0 && &opts.label != b"NO NAME    " {
            root[..11].copy_from_slice(&opts.label);
            root[11] = 0x08; // volume label
        }
        dev.write_sectors(first_data as u64 + s, &root)?;
    }
    dev.flush()?;
    Ok(())
}
