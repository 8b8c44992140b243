//! Block mapping for the page cache: [`Fat32::bmap`] gives the disk sectors
//! of one file page as a [`PageMap`].
//!
//! Rules:
//! * `bmap` never allocates: it maps only sectors inside the file's
//!   clusters, and a page past the chain maps to nothing. Growing is
//!   `set_len`/`set_len_uninit`'s job.
//! * A file whose size exceeds its chain is [`FsError::Corrupt`].

use blkdev::{BlockDevice, SECTOR_SIZE};

use crate::{Fat32, FileId, FsError, PAGE_SIZE};

const SECTORS_PER_PAGE: usize = PAGE_SIZE as usize / SECTOR_SIZE;

/// Disk sectors holding one file page: up to 8 runs `(first sector, count)`,
/// in page order. `bytes()` is how much of the page is backed by allocated
/// clusters (less than a page only for the last page of the chain).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PageMap {
    runs: [(u64, u32); SECTORS_PER_PAGE],
    n: usize,
}

impl PageMap {
    /// The runs.
    pub fn runs(&self) -> &[(u64, u32)] {
        &self.runs[..self.n]
    }
    /// Bytes of the page backed by disk sectors.
    pub fn bytes(&self) -> usize {
        self.runs().iter().map(|r| r.1 as usize).sum::<usize>() * SECTOR_SIZE
    }
    /// Appends the page's next sector (merged into the last run when it
    /// follows it); `false`, changing nothing, once the page has all its
    /// sectors. For other block maps (another filesystem, a test fake).
    pub fn add_sector(&mut self, sector: u64) -> bool {
        if self.bytes() >= PAGE_SIZE as usize {
            return false;
        }
        self.push(sector);
        true
    }
    fn push(&mut self, sector: u64) {
        if self.n > 0 {
            let last = &mut self.runs[self.n - 1];
            if last.0 + last.1 as u64 == sector {
                last.1 += 1;
                return;
            }
        }
        self.runs[self.n] = (sector, 1);
        self.n += 1;
    }
}

impl<D: BlockDevice> Fat32<D> {
    /// The disk sectors of page `index` of a file (only sectors inside the
    /// file's clusters; empty past the chain).
    pub fn bmap(&mut self, id: FileId, index: u32) -> Result<PageMap, FsError> {
        let m = self.file_meta(id)?;
        let chain = self.chain(m.first_cluster)?;
        if chain.clusters < self.clusters_for(m.size) {
            return Err(FsError::Corrupt("file size exceeds its cluster chain"));
        }
        let mut map = PageMap::default();
        let spc = self.geo.sectors_per_cluster as u64;
        let first = index as u64 * SECTORS_PER_PAGE as u64;
        for fs in first..first + SECTORS_PER_PAGE as u64 {
            let Some(dcl) = chain.disk_cluster((fs / spc) as u32) else {
                break;
            };
            map.push(self.geo.cluster_sector(dcl) + fs % spc);
        }
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_map_merges_runs() {
        let mut m = PageMap::default();
        for s in [10, 11, 12, 20, 21] {
            m.push(s);
        }
        assert_eq!(m.runs(), &[(10, 3), (20, 2)]);
        assert_eq!(m.bytes(), 5 * 512);
    }

    #[test]
    fn add_sector_stops_at_a_full_page() {
        let mut m = PageMap::default();
        for s in [3, 9, 4, 20, 30, 31, 40, 50] {
            assert!(m.add_sector(s));
        }
        assert!(!m.add_sector(60));
        assert_eq!(m.bytes(), PAGE_SIZE as usize);
        assert_eq!(m.runs().len(), 7);
        assert_eq!(m.runs()[4], (30, 2));
    }
}
