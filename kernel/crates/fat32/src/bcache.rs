//! Metadata buffer cache: FAT, directory, boot and FSInfo sectors.
//!
//! Rules:
//! * Only metadata goes through here; file data is moved by the page cache
//!   (or by `Fat32::read_at`/`write_at` for tools and tests), never cached
//!   here, so a sector is never in both caches.
//! * Write-back: a modified buffer is marked dirty and reaches the disk when
//!   it is evicted (least recently used first, capacity in sectors) or on
//!   [`BufCache::flush`]. FAT sectors are kept under their number in the
//!   first FAT and written to every FAT copy, so the copies stay equal.
//! * A write error leaves the buffer dirty and is returned to the caller.
//! * Single owner (`&mut self`); the kernel holds the filesystem's lock.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;

use blkdev::{BlockDevice, SECTOR_SIZE};

use crate::{FsError, FsStats};

struct Buf {
    data: Box<[u8; SECTOR_SIZE]>,
    dirty: bool,
    last_use: u64,
}

/// Where the FAT copies are, for mirroring.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FatLayout {
    pub start: u64,
    pub size: u64,
    pub copies: u64,
}

pub(crate) struct BufCache {
    bufs: BTreeMap<u64, Buf>,
    cap: usize,
    tick: u64,
    fat: FatLayout,
}

impl BufCache {
    pub fn new(cap: usize, fat: FatLayout) -> Self {
        BufCache {
            bufs: BTreeMap::new(),
            cap: cap.max(4),
            tick: 0,
            fat,
        }
    }

    fn write_out<D: BlockDevice>(
        dev: &mut D,
        fat: FatLayout,
        sector: u64,
        data: &[u8; SECTOR_SIZE],
        stats: &mut FsStats,
    ) -> Result<(), FsError> {
        if sector >= fat.start && sector < fat.start + fat.size {
            for k in 0..fat.copies {
                dev.write_sectors(sector + k * fat.size, data)?;
                stats.meta_sectors_written += 1;
            }
        } else {
            dev.write_sectors(sector, data)?;
            stats.meta_sectors_written += 1;
        }
        Ok(())
    }

    fn make_room<D: BlockDevice>(
        &mut self,
        dev: &mut D,
        stats: &mut FsStats,
    ) -> Result<(), FsError> {
        while self.bufs.len() >= self.cap {
            let victim = self
                .bufs
                .iter()
                .min_by_key(|(_, b)| b.last_use)
                .map(|(s, _)| *s)
                .ok_or(FsError::Corrupt("buffer cache empty"))?;
            let buf = &self.bufs[&victim];
            if buf.dirty {
                Self::write_out(dev, self.fat, victim, &buf.data, stats)?;
            }
            self.bufs.remove(&victim);
        }
        Ok(())
    }

    fn load<D: BlockDevice>(
        &mut self,
        dev: &mut D,
        sector: u64,
        zeroed: bool,
        stats: &mut FsStats,
    ) -> Result<&mut Buf, FsError> {
        self.tick += 1;
        let tick = self.tick;
        if self.bufs.contains_key(&sector) {
            stats.meta_hits += 1;
        } else {
            self.make_room(dev, stats)?;
            let mut data = Box::new([0u8; SECTOR_SIZE]);
            if !zeroed {
                dev.read_sectors(sector, &mut data[..])?;
                stats.meta_sectors_read += 1;
            }
            stats.meta_misses += 1;
            self.bufs.insert(
                sector,
                Buf {
                    data,
                    dirty: zeroed,
                    last_use: tick,
                },
            );
        }
        let buf = self
            .bufs
            .get_mut(&sector)
            .ok_or(FsError::Corrupt("buffer vanished"))?;
        buf.last_use = tick;
        Ok(buf)
    }

    /// The sector's bytes, for reading.
    pub fn read<D: BlockDevice>(
        &mut self,
        dev: &mut D,
        sector: u64,
        stats: &mut FsStats,
    ) -> Result<&[u8; SECTOR_SIZE], FsError> {
        Ok(&*self.load(dev, sector, false, stats)?.data)
    }

    /// The sector's bytes, for modification (marked dirty).
    pub fn modify<D: BlockDevice>(
        &mut self,
        dev: &mut D,
        sector: u64,
        stats: &mut FsStats,
    ) -> Result<&mut [u8; SECTOR_SIZE], FsError> {
        let b = self.load(dev, sector, false, stats)?;
        b.dirty = true;
        Ok(&mut *b.data)
    }

    /// A zero-filled dirty buffer for `sector`, without reading the disk.
    pub fn zeroed<D: BlockDevice>(
        &mut self,
        dev: &mut D,
        sector: u64,
        stats: &mut FsStats,
    ) -> Result<&mut [u8; SECTOR_SIZE], FsError> {
        let b = self.load(dev, sector, true, stats)?;
        b.data.fill(0);
        b.dirty = true;
        Ok(&mut *b.data)
    }

    /// Writes every dirty buffer back.
    pub fn flush<D: BlockDevice>(
        &mut self,
        dev: &mut D,
        stats: &mut FsStats,
    ) -> Result<(), FsError> {
        for (s, b) in self.bufs.iter_mut() {
            if b.dirty {
                Self::write_out(dev, self.fat, *s, &b.data, stats)?;
                b.dirty = false;
            }
        }
        Ok(())
    }

    /// Number of dirty buffers.
    pub fn dirty_count(&self) -> usize {
        self.bufs.values().filter(|b| b.dirty).count()
    }
}
