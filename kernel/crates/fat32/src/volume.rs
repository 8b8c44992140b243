//! Mounting, the FSInfo sector, `sync` and the counters of a mounted volume.
//!
//! Rules:
//! * Mounting validates the boot sector, `FAT[0]` and FSInfo and writes
//!   nothing. FSInfo's free count and next-free hint are used only when in
//!   range; otherwise the free clusters are counted from the FAT.
//! * The free count kept in memory is the truth while mounted; FSInfo is
//!   written from it by [`Fat32::sync`] (and so by [`Fat32::unmount`]).

use alloc::collections::BTreeMap;

use blkdev::{BlockDevice, SECTOR_SIZE};

use crate::bcache::{BufCache, FatLayout};
use crate::{Fat32, FsError, Geometry, le32, parse_boot_sector};

/// Counters of the filesystem's own (metadata and direct) I/O.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FsStats {
    /// Metadata sectors read from the device.
    pub meta_sectors_read: u64,
    /// Metadata sectors written to the device (each FAT copy counts).
    pub meta_sectors_written: u64,
    /// Buffer-cache lookups that found the sector.
    pub meta_hits: u64,
    /// Buffer-cache lookups that did not.
    pub meta_misses: u64,
    /// Data sectors read by `read_at` (not by the page cache).
    pub direct_sectors_read: u64,
    /// Data sectors written by `write_at`/`set_len` (not by the page cache).
    pub direct_sectors_written: u64,
}

/// Mount options.
#[derive(Debug, Clone, Copy)]
pub struct MountOptions {
    /// Capacity of the metadata buffer cache in sectors.
    pub meta_cache_sectors: usize,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            meta_cache_sectors: 64,
        }
    }
}

impl<D: BlockDevice> Fat32<D> {
    /// Mounts with default options.
    pub fn mount(dev: D) -> Result<Self, FsError> {
        Self::mount_with(dev, MountOptions::default())
    }

    /// Validates the boot sector, BPB and FSInfo and mounts. Writes nothing.
    pub fn mount_with(mut dev: D, opts: MountOptions) -> Result<Self, FsError> {
        if dev.sector_count() == 0 {
            return Err(FsError::NoFilesystem);
        }
        let mut bs = [0u8; SECTOR_SIZE];
        dev.read_sectors(0, &mut bs)?;
        let geo = parse_boot_sector(&bs, dev.sector_count())?;
        let fat = FatLayout {
            start: geo.reserved_sectors as u64,
            size: geo.fat_size as u64,
            copies: geo.num_fats as u64,
        };
        let mut fs = Fat32 {
            dev,
            geo,
            bc: BufCache::new(opts.meta_cache_sectors, fat),
            chains: BTreeMap::new(),
            free_count: u32::MAX,
            next_free: 2,
            fsinfo_dirty: false,
            stats: FsStats {
                meta_sectors_read: 1,
                ..FsStats::default()
            },
        };
        let media = fs.fat_get_raw(0)?;
        if media & 0xFF != bs[21] as u32 {
            return Err(FsError::Corrupt("FAT[0] does not match the media byte"));
        }
        if geo.fsinfo_sector != 0 && geo.fsinfo_sector != 0xFFFF {
            let s = fs
                .bc
                .read(&mut fs.dev, geo.fsinfo_sector as u64, &mut fs.stats)?;
            if le32(s, 0) != 0x4161_5252
                || le32(s, 484) != 0x6141_7272
                || le32(s, 508) != 0xAA55_0000
            {
                return Err(FsError::Corrupt("FSInfo signature"));
            }
            let free = le32(s, 488);
            let next = le32(s, 492);
            if free <= geo.cluster_count {
                fs.free_count = free;
            }
            if geo.valid_cluster(next) {
                fs.next_free = next;
            }
        }
        if fs.free_count == u32::MAX {
            fs.free_count = fs.count_free()?;
        }
        Ok(fs)
    }

    /// Geometry of the mounted filesystem.
    pub fn geometry(&self) -> &Geometry {
        &self.geo
    }
    /// Counters.
    pub fn stats(&self) -> FsStats {
        self.stats
    }
    /// The device.
    pub fn device(&self) -> &D {
        &self.dev
    }
    /// The device, for data I/O by the page cache. Do not write metadata
    /// sectors through it.
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.dev
    }
    /// Free clusters.
    pub fn free_clusters(&self) -> u32 {
        self.free_count
    }
    /// Dirty metadata sectors waiting for `sync`.
    pub fn dirty_metadata(&self) -> usize {
        self.bc.dirty_count() + self.fsinfo_dirty as usize
    }

    /// Writes back dirty metadata and FSInfo, then flushes the device.
    pub fn sync(&mut self) -> Result<(), FsError> {
        let fi = self.geo.fsinfo_sector;
        if self.fsinfo_dirty && fi != 0 && fi != 0xFFFF {
            let (free, next) = (self.free_count, self.next_free);
            let s = self.bc.modify(&mut self.dev, fi as u64, &mut self.stats)?;
            s[488..492].copy_from_slice(&free.to_le_bytes());
            s[492..496].copy_from_slice(&next.to_le_bytes());
        }
        let had_dirty = self.bc.dirty_count() > 0;
        self.bc.flush(&mut self.dev, &mut self.stats)?;
        self.fsinfo_dirty = false;
        if had_dirty {
            self.dev.flush()?;
        }
        Ok(())
    }

    /// Syncs and gives the device back.
    pub fn unmount(mut self) -> Result<D, FsError> {
        self.sync()?;
        Ok(self.dev)
    }
}
