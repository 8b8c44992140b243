//! The file allocation table: cluster chains, allocation and freeing.
//!
//! Rules:
//! * FAT entries are read and written through the buffer cache only, which
//!   mirrors every FAT sector to all copies; the top four bits of an entry
//!   are preserved on writes.
//! * A chain is walked with a bound (its length cannot exceed the cluster
//!   count), so a loop, an out-of-range, free or bad cluster in a chain is
//!   [`FsError::Corrupt`], never a hang. Walked chains are cached by first
//!   cluster; anything that changes a chain drops or updates its entry.
//! * Allocation changes nothing when there are not enough free clusters;
//!   the free count and FSInfo's next-free hint follow every change.

use alloc::vec::Vec;

use blkdev::{BlockDevice, SECTOR_SIZE};

use crate::{Fat32, FsError, le32};

/// End of chain, as written.
pub(crate) const EOC: u32 = 0x0FFF_FFFF;
/// A cluster marked bad.
const BAD: u32 = 0x0FFF_FFF7;

/// A run of consecutive disk clusters within a chain.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Extent {
    /// Index of the first cluster within the file.
    fcl: u32,
    /// Disk cluster.
    pub(crate) dcl: u32,
    /// Clusters in the run.
    pub(crate) len: u32,
}

/// A walked cluster chain, as extents in file order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Chain {
    pub(crate) extents: Vec<Extent>,
    /// Clusters in the chain.
    pub(crate) clusters: u32,
}

impl Chain {
    pub(crate) fn disk_cluster(&self, fcl: u32) -> Option<u32> {
        let i = self.extents.partition_point(|e| e.fcl + e.len <= fcl);
        let e = self.extents.get(i)?;
        (fcl >= e.fcl).then(|| e.dcl + (fcl - e.fcl))
    }
    pub(crate) fn last(&self) -> Option<u32> {
        self.extents.last().map(|e| e.dcl + e.len - 1)
    }
    pub(crate) fn push(&mut self, c: u32) {
        match self.extents.last_mut() {
            Some(e) if e.dcl + e.len == c => e.len += 1,
            _ => self.extents.push(Extent {
                fcl: self.clusters,
                dcl: c,
                len: 1,
            }),
        }
        self.clusters += 1;
    }
}

impl<D: BlockDevice> Fat32<D> {
    pub(crate) fn fat_get_raw(&mut self, c: u32) -> Result<u32, FsError> {
        let off = c as u64 * 4;
        let sector = self.geo.reserved_sectors as u64 + off / SECTOR_SIZE as u64;
        let s = self.bc.read(&mut self.dev, sector, &mut self.stats)?;
        Ok(le32(s, (off % SECTOR_SIZE as u64) as usize))
    }

    pub(crate) fn fat_get(&mut self, c: u32) -> Result<u32, FsError> {
        if !self.geo.valid_cluster(c) {
            return Err(FsError::Corrupt("cluster number out of range"));
        }
        Ok(self.fat_get_raw(c)? & 0x0FFF_FFFF)
    }

    pub(crate) fn fat_set(&mut self, c: u32, v: u32) -> Result<(), FsError> {
        if !self.geo.valid_cluster(c) {
            return Err(FsError::Corrupt("cluster number out of range"));
        }
        let off = c as u64 * 4;
        let sector = self.geo.reserved_sectors as u64 + off / SECTOR_SIZE as u64;
        let o = (off % SECTOR_SIZE as u64) as usize;
        let s = self.bc.modify(&mut self.dev, sector, &mut self.stats)?;
        let old = le32(s, o);
        let new = (old & 0xF000_0000) | (v & 0x0FFF_FFFF);
        s[o..o + 4].copy_from_slice(&new.to_le_bytes());
        Ok(())
    }

    pub(crate) fn count_free(&mut self) -> Result<u32, FsError> {
        let mut free = 0;
        for c in 2..self.geo.cluster_count + 2 {
            if self.fat_get(c)? == 0 {
                free += 1;
            }
        }
        Ok(free)
    }

    /// Walks (or returns the cached) chain starting at `first`.
    pub(crate) fn chain(&mut self, first: u32) -> Result<Chain, FsError> {
        if first == 0 {
            return Ok(Chain::default());
        }
        if let Some(c) = self.chains.get(&first) {
            return Ok(c.clone());
        }
        let mut chain = Chain::default();
        let mut c = first;
        loop {
            if !self.geo.valid_cluster(c) {
                return Err(FsError::Corrupt("cluster number out of range in chain"));
            }
            if chain.clusters >= self.geo.cluster_count {
                return Err(FsError::Corrupt("cluster chain loop"));
            }
            chain.push(c);
            let next = self.fat_get(c)?;
            if next >= 0x0FFF_FFF8 {
                break;
            }
            if next == BAD {
                return Err(FsError::Corrupt("bad cluster in chain"));
            }
            if next < 2 {
                return Err(FsError::Corrupt("free cluster in chain"));
            }
            c = next;
        }
        if self.chains.len() >= 256 {
            self.chains.pop_first();
        }
        self.chains.insert(first, chain.clone());
        Ok(chain)
    }

    /// Allocates `n` clusters linked as a chain (ends with EOC); returns them.
    /// Changes nothing if there are not enough free clusters.
    pub(crate) fn alloc_clusters(&mut self, n: u32) -> Result<Vec<u32>, FsError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        if n > self.free_count {
            return Err(FsError::NoSpace);
        }
        let total = self.geo.cluster_count;
        let mut found = Vec::with_capacity(n as usize);
        let start = if self.geo.valid_cluster(self.next_free) {
            self.next_free
        } else {
            2
        };
        for i in 0..total {
            let c = 2 + (start - 2 + i) % total;
            if self.fat_get(c)? == 0 {
                found.push(c);
                if found.len() == n as usize {
                    break;
                }
            }
        }
        if found.len() < n as usize {
            // FSInfo's free count was wrong; correct it.
            self.free_count = found.len() as u32;
            self.fsinfo_dirty = true;
            return Err(FsError::NoSpace);
        }
        for i in 0..found.len() {
            let v = found.get(i + 1).copied().unwrap_or(EOC);
            self.fat_set(found[i], v)?;
        }
        self.free_count -= n;
        self.next_free = found[found.len() - 1] + 1;
        if !self.geo.valid_cluster(self.next_free) {
            self.next_free = 2;
        }
        self.fsinfo_dirty = true;
        Ok(found)
    }

    pub(crate) fn free_chain_from(&mut self, first: u32) -> Result<(), FsError> {
        let chain = self.chain(first)?;
        self.chains.remove(&first);
        for e in &chain.extents {
            for c in e.dcl..e.dcl + e.len {
                self.fat_set(c, 0)?;
            }
        }
        self.free_count += chain.clusters;
        self.fsinfo_dirty = true;
        Ok(())
    }

    /// Gives clusters of a chain not linked to any file back to the free
    /// pool (they were just allocated, so their FAT sectors are in the
    /// buffer cache). If even that fails, they stay marked: lost space, as
    /// `fsck.fat` would report it, never data anybody can read.
    pub(crate) fn release_unlinked(&mut self, clusters: &[u32]) -> Result<(), FsError> {
        for &c in clusters {
            self.fat_set(c, 0)?;
            self.free_count += 1;
        }
        self.fsinfo_dirty = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_lookup() {
        let mut c = Chain::default();
        for d in [5, 6, 7, 20, 21, 9] {
            c.push(d);
        }
        assert_eq!(c.extents.len(), 3);
        let got: Vec<_> = (0..7).map(|i| c.disk_cluster(i)).collect();
        assert_eq!(
            got,
            [Some(5), Some(6), Some(7), Some(20), Some(21), Some(9), None]
        );
        assert_eq!(c.last(), Some(9));
    }
}
