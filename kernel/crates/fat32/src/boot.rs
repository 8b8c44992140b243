//! The boot sector (BPB): [`parse_boot_sector`] validates it and gives the
//! [`Geometry`] everything else computes sector numbers from.
//!
//! Rules:
//! * Only FAT32 with 512-byte sectors is accepted; any inconsistent field is
//!   [`FsError::Corrupt`], a valid but other variant [`FsError::Unsupported`].
//! * After a successful parse every cluster number that
//!   [`Geometry::valid_cluster`] accepts lies inside the data area and the
//!   FAT, so callers check cluster numbers with it before using them.

use blkdev::SECTOR_SIZE;

use crate::{FsError, le16, le32};

/// Layout read from the boot sector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Sectors per cluster.
    pub sectors_per_cluster: u32,
    /// Reserved sectors before the first FAT.
    pub reserved_sectors: u32,
    /// Number of FAT copies.
    pub num_fats: u32,
    /// Sectors per FAT.
    pub fat_size: u32,
    /// Sectors in the filesystem.
    pub total_sectors: u64,
    /// First cluster of the root directory.
    pub root_cluster: u32,
    /// FSInfo sector number (0 if none).
    pub fsinfo_sector: u32,
    /// First sector of cluster 2.
    pub first_data_sector: u64,
    /// Number of data clusters (valid cluster numbers are 2..count+2).
    pub cluster_count: u32,
    /// Volume serial number (BS_VolID), 0 without the extended boot
    /// signature. Not unique (copies of an image share it): the page cache
    /// hands it to cleancache only as a label of the mount.
    pub volume_id: u32,
}

impl Geometry {
    /// Cluster size in bytes.
    pub fn cluster_bytes(&self) -> u64 {
        self.sectors_per_cluster as u64 * SECTOR_SIZE as u64
    }
    pub(crate) fn cluster_sector(&self, c: u32) -> u64 {
        self.first_data_sector + (c as u64 - 2) * self.sectors_per_cluster as u64
    }
    pub(crate) fn valid_cluster(&self, c: u32) -> bool {
        c >= 2 && c < self.cluster_count + 2
    }
}

/// Validates a boot sector; returns the geometry.
pub fn parse_boot_sector(bs: &[u8; SECTOR_SIZE], device_sectors: u64) -> Result<Geometry, FsError> {
    if bs[510] != 0x55 || bs[511] != 0xAA || !(bs[0] == 0xEB || bs[0] == 0xE9) {
        return Err(FsError::NoFilesystem);
    }
    let bps = le16(bs, 11) as usize;
    if bps != SECTOR_SIZE {
        return Err(if matches!(bps, 1024 | 2048 | 4096) {
            FsError::Unsupported("sector size other than 512")
        } else {
            FsError::Corrupt("bytes per sector")
        });
    }
    let spc = bs[13] as u32;
    if spc == 0 || !spc.is_power_of_two() {
        return Err(FsError::Corrupt("sectors per cluster"));
    }
    let reserved = le16(bs, 14) as u32;
    let num_fats = bs[16] as u32;
    let root_entries = le16(bs, 17);
    let tot16 = le16(bs, 19) as u64;
    let fat16 = le16(bs, 22);
    let tot32 = le32(bs, 32) as u64;
    let fat32 = le32(bs, 36);
    if reserved == 0 {
        return Err(FsError::Corrupt("no reserved sectors"));
    }
    if num_fats == 0 || num_fats > 4 {
        return Err(FsError::Corrupt("number of FATs"));
    }
    if root_entries != 0 || fat16 != 0 {
        return Err(FsError::Unsupported("FAT12/FAT16 (not FAT32)"));
    }
    if fat32 == 0 {
        return Err(FsError::Corrupt("FAT size is zero"));
    }
    if le16(bs, 42) != 0 {
        return Err(FsError::Unsupported("FAT32 version"));
    }
    let total = if tot16 != 0 { tot16 } else { tot32 };
    if total == 0 {
        return Err(FsError::Corrupt("total sectors is zero"));
    }
    if total > device_sectors {
        return Err(FsError::Corrupt("filesystem larger than the device"));
    }
    let first_data = reserved as u64 + num_fats as u64 * fat32 as u64;
    if first_data >= total {
        return Err(FsError::Corrupt("no data area"));
    }
    let clusters = (total - first_data) / spc as u64;
    if clusters == 0 || clusters > 0x0FFF_FFF5 {
        return Err(FsError::Corrupt("cluster count"));
    }
    if (fat32 as u64) * (SECTOR_SIZE as u64 / 4) < clusters + 2 {
        return Err(FsError::Corrupt("FAT too small for the cluster count"));
    }
    let root = le32(bs, 44);
    let geo = Geometry {
        sectors_per_cluster: spc,
        reserved_sectors: reserved,
        num_fats,
        fat_size: fat32,
        total_sectors: total,
        root_cluster: root,
        fsinfo_sector: le16(bs, 48) as u32,
        first_data_sector: first_data,
        cluster_count: clusters as u32,
        volume_id: if bs[66] == 0x29 { le32(bs, 67) } else { 0 },
    };
    if !geo.valid_cluster(root) {
        return Err(FsError::Corrupt("root cluster"));
    }
    if geo.fsinfo_sector != 0xFFFF && geo.fsinfo_sector >= reserved {
        return Err(FsError::Corrupt("FSInfo sector outside the reserved area"));
    }
    Ok(geo)
}
