//! File sizes and direct file data I/O (`read_at`/`write_at`, for tools
//! and tests; the page cache moves file data itself with `bmap`).
//!
//! Rules:
//! * Allocation happens only here, when a file grows; the chain always holds
//!   exactly `ceil(size / cluster size)` clusters.
//! * A size never covers bytes nobody wrote: [`Fat32::set_len`] zeroes the
//!   rest of the last cluster and new clusters *before* linking them and
//!   raising the size; [`Fat32::set_len_uninit`] leaves that to its caller
//!   (the page cache), who writes the bytes; on an error the file is as
//!   before.
//! * A read-only file's size cannot change ([`FsError::ReadOnly`]).

use blkdev::{BlockDevice, SECTOR_SIZE};

use crate::dir::{ATTR_ARCHIVE, ATTR_READ_ONLY, FAT_DATE, FAT_TIME};
use crate::fat::{Chain, EOC};
use crate::{Fat32, FileId, FsError, Metadata};

impl<D: BlockDevice> Fat32<D> {
    pub(crate) fn clusters_for(&self, len: u64) -> u32 {
        len.div_ceil(self.geo.cluster_bytes()) as u32
    }

    /// Whether file `id` can grow to `len` bytes: [`FsError::NoSpace`] if
    /// that needs more clusters than are free, [`FsError::FileTooLarge`]
    /// past 4 GiB - 1. Changes nothing. For a caller that grows a file step
    /// by step ([`set_len_uninit`](Self::set_len_uninit) per page, as the
    /// page cache does so that the size never covers bytes not yet written),
    /// to fail before the first step rather than half way.
    pub fn check_grow(&mut self, id: FileId, len: u64) -> Result<(), FsError> {
        let m = self.file_meta(id)?;
        if len > u32::MAX as u64 {
            return Err(FsError::FileTooLarge);
        }
        let need = self
            .clusters_for(len)
            .saturating_sub(self.clusters_for(m.size));
        if need > self.free_count {
            return Err(FsError::NoSpace);
        }
        Ok(())
    }

    /// Sets a file's size without touching data: grows or shrinks the chain
    /// to `ceil(len / cluster)` clusters and updates the entry. Bytes between
    /// the old and the new size hold whatever the disk had: the caller (the
    /// page cache) must write them. On `NoSpace` nothing changes.
    pub fn set_len_uninit(&mut self, id: FileId, len: u64) -> Result<(), FsError> {
        self.resize(id, len, false)
    }

    /// Writes zeros over whole clusters, directly to the disk.
    fn zero_clusters(&mut self, clusters: &[u32]) -> Result<(), FsError> {
        let zero = [0u8; SECTOR_SIZE];
        for &c in clusters {
            let first = self.geo.cluster_sector(c);
            for k in 0..self.geo.sectors_per_cluster as u64 {
                self.dev.write_sectors(first + k, &zero)?;
                self.stats.direct_sectors_written += 1;
            }
        }
        Ok(())
    }

    /// [`set_len_uninit`](Self::set_len_uninit); with `zero`, new clusters
    /// are zeroed on the disk *before* they are linked to the file and the
    /// size is raised, so a failure (the error is returned) leaves the file
    /// as it was and its size never covers uncleared clusters.
    fn resize(&mut self, id: FileId, len: u64, zero: bool) -> Result<(), FsError> {
        let m = self.file_meta(id)?;
        if len > u32::MAX as u64 {
            return Err(FsError::FileTooLarge);
        }
        let e = self.read_entry(id)?;
        if e[11] & ATTR_READ_ONLY != 0 && len != m.size {
            return Err(FsError::ReadOnly);
        }
        let chain = self.chain(m.first_cluster)?;
        let have = chain.clusters;
        let want = self.clusters_for(len);
        if have < self.clusters_for(m.size) {
            return Err(FsError::Corrupt("file size exceeds its cluster chain"));
        }
        let mut first = m.first_cluster;
        if want > have {
            let new = self.alloc_clusters(want - have)?;
            if zero && let Err(e) = self.zero_clusters(&new) {
                // Not linked yet: the file is unchanged. Lost space at
                // worst if the release fails too (see release_unlinked).
                let _lost_space_only = self.release_unlinked(&new);
                return Err(e);
            }
            match chain.last() {
                Some(last) => self.fat_set(last, new[0])?,
                None => first = new[0],
            }
            if let Some(mut c) = self.chains.remove(&m.first_cluster) {
                for n in &new {
                    c.push(*n);
                }
                self.chains.insert(first, c);
            }
        } else if want < have {
            if want == 0 {
                self.free_chain_from(first)?;
                first = 0;
            } else {
                let keep_last = chain
                    .disk_cluster(want - 1)
                    .ok_or(FsError::Corrupt("cluster chain"))?;
                let rest = self.fat_get(keep_last)?;
                self.fat_set(keep_last, EOC)?;
                self.chains.remove(&first);
                if (2..0x0FFF_FFF8).contains(&rest) {
                    self.free_chain_from(rest)?;
                }
            }
        }
        self.write_entry(id, |e| {
            e[20..22].copy_from_slice(&((first >> 16) as u16).to_le_bytes());
            e[26..28].copy_from_slice(&(first as u16).to_le_bytes());
            e[28..32].copy_from_slice(&(len as u32).to_le_bytes());
            e[22..24].copy_from_slice(&FAT_TIME.to_le_bytes());
            e[24..26].copy_from_slice(&FAT_DATE.to_le_bytes());
            e[11] |= ATTR_ARCHIVE;
        })
    }

    /// Sets a file's size; new bytes read as zero (written to disk here).
    /// Growing zeroes first and raises the size last: the rest of the last
    /// cluster, then new clusters before they are linked. On an error the
    /// file is as before (at most some bytes past its end were zeroed).
    pub fn set_len(&mut self, id: FileId, len: u64) -> Result<(), FsError> {
        let old = self.file_meta(id)?.size;
        if len > old {
            let in_chain = self.clusters_for(old) as u64 * self.geo.cluster_bytes();
            let tail = len.min(in_chain);
            if tail > old {
                self.zero_range(id, old, tail)?;
            }
        }
        self.resize(id, len, true)
    }

    fn file_sector(&mut self, chain: &Chain, fsec: u64) -> Result<u64, FsError> {
        let spc = self.geo.sectors_per_cluster as u64;
        let dcl = chain
            .disk_cluster((fsec / spc) as u32)
            .ok_or(FsError::Corrupt("file size exceeds its cluster chain"))?;
        Ok(self.geo.cluster_sector(dcl) + fsec % spc)
    }

    /// Reads file data directly (no caching). Returns bytes read (short at
    /// end of file); `offset > size` is [`FsError::BeyondEof`].
    pub fn read_at(&mut self, id: FileId, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        let m = self.file_meta(id)?;
        if offset > m.size {
            return Err(FsError::BeyondEof {
                offset,
                size: m.size,
            });
        }
        let n = (m.size - offset).min(buf.len() as u64) as usize;
        let chain = self.chain(m.first_cluster)?;
        if chain.clusters < self.clusters_for(m.size) {
            return Err(FsError::Corrupt("file size exceeds its cluster chain"));
        }
        let mut done = 0;
        let mut sec = [0u8; SECTOR_SIZE];
        while done < n {
            let pos = offset + done as u64;
            let o = (pos % SECTOR_SIZE as u64) as usize;
            let k = (SECTOR_SIZE - o).min(n - done);
            let disk = self.file_sector(&chain, pos / SECTOR_SIZE as u64)?;
            self.dev.read_sectors(disk, &mut sec)?;
            self.stats.direct_sectors_read += 1;
            buf[done..done + k].copy_from_slice(&sec[o..o + k]);
            done += k;
        }
        Ok(n)
    }

    fn write_raw(
        &mut self,
        m: &Metadata,
        offset: u64,
        data: Option<&[u8]>,
        len: usize,
    ) -> Result<(), FsError> {
        let chain = self.chain(m.first_cluster)?;
        let mut done = 0;
        let mut sec = [0u8; SECTOR_SIZE];
        while done < len {
            let pos = offset + done as u64;
            let o = (pos % SECTOR_SIZE as u64) as usize;
            let k = (SECTOR_SIZE - o).min(len - done);
            let disk = self.file_sector(&chain, pos / SECTOR_SIZE as u64)?;
            if k < SECTOR_SIZE {
                self.dev.read_sectors(disk, &mut sec)?;
                self.stats.direct_sectors_read += 1;
            }
            match data {
                Some(d) => sec[o..o + k].copy_from_slice(&d[done..done + k]),
                None => sec[o..o + k].fill(0),
            }
            self.dev.write_sectors(disk, &sec)?;
            self.stats.direct_sectors_written += 1;
            done += k;
        }
        Ok(())
    }

    fn zero_range(&mut self, id: FileId, from: u64, to: u64) -> Result<(), FsError> {
        let m = self.file_meta(id)?;
        self.write_raw(&m, from, None, (to - from) as usize)
    }

    /// Writes file data directly (no caching), growing the file (the gap
    /// past the old end reads as zero). Returns bytes written.
    pub fn write_at(&mut self, id: FileId, offset: u64, data: &[u8]) -> Result<usize, FsError> {
        let m = self.file_meta(id)?;
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|e| *e <= u32::MAX as u64)
            .ok_or(FsError::FileTooLarge)?;
        if end > m.size {
            // Zeroed before the size covers it, then overwritten: the size
            // never covers bytes nobody wrote, even if the write fails.
            self.set_len(id, end)?;
        }
        let m = self.file_meta(id)?;
        self.write_raw(&m, offset, Some(data), data.len())?;
        Ok(data.len())
    }
}
