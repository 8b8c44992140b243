//! FAT32 for the GCMA unikernel, written here rather than taken from a crate.
//!
//! # Why not `fatfs` or `embedded-sdmmc`
//!
//! Both are maintained no_std crates, but both do file data I/O themselves,
//! through their own byte-stream `Read`/`Write`/`Seek` API and (fatfs) an
//! internal sector buffer. This kernel's page cache must own file data I/O:
//! it maps a file page to disk sectors itself (`bmap`), issues batched,
//! asynchronous requests straight into page frames (readahead, writeback,
//! pages pinned while under I/O) and must see every page leave so the
//! cleancache hooks fire. Neither crate exposes block mapping, and wrapping
//! them would put a second, invisible data cache under the page cache. FAT32
//! metadata is small enough to write here, with validation that returns
//! errors on corrupt images instead of panicking.
//!
//! # Rules
//!
//! * Metadata (boot sector, FSInfo, FATs, directories) goes through a small
//!   write-back buffer cache (`bcache`); [`Fat32::sync`] writes it back and
//!   updates FSInfo. File data never goes through it: the page cache reads and
//!   writes file data with the sector runs from [`Fat32::bmap`]. The direct
//!   [`Fat32::read_at`]/[`Fat32::write_at`] exist for tools and tests.
//! * Allocation happens when a file grows: [`Fat32::set_len`] (zero-fills the
//!   new bytes on disk) or [`Fat32::set_len_uninit`] (for the page cache,
//!   which writes the new bytes itself through cached pages), never in `bmap`.
//!   The chain always holds exactly `ceil(size / cluster size)` clusters, as
//!   `fsck.fat` requires.
//! * A size never covers bytes nobody wrote (new clusters hold a deleted
//!   file's bytes): `set_len` zeroes new clusters before linking them and
//!   raising the size; `write_at` grows through `set_len` first; the page
//!   cache raises the size with `set_len_uninit` page by page, only for
//!   bytes it is about to write (see its "Growing a file"), after
//!   [`Fat32::check_grow`] said the clusters are there.
//! * [`FileId`] is the position of the file's short directory entry
//!   (disk byte offset / 32): stable across mounts, unique among live files,
//!   and reused only after the file is deleted (the page cache invalidates
//!   cleancache for a file on delete and on create, so a reused id never sees
//!   stale copies). [`ROOT`] is the root directory.
//! * Bad input never panics: corrupt structures give [`FsError::Corrupt`],
//!   a disk without FAT32 gives [`FsError::NoFilesystem`], cluster chains are
//!   walked with a bound (loops are detected). Mounting and reading write
//!   nothing to the disk.
//! * No locking inside: the owner (page cache) is behind the kernel's lock.
#![no_std]

extern crate alloc;

mod bcache;
mod format;
mod name;

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use blkdev::{BlockDevice, BlockError, SECTOR_SIZE};

use bcache::{BufCache, FatLayout};
pub use format::{FormatOptions, format};
pub use name::lfn_checksum;

/// Identifies a file: position of its short directory entry (byte offset on
/// the disk / 32). The root directory is [`ROOT`].
pub type FileId = u64;
/// The root directory's id.
pub const ROOT: FileId = 0;
/// Page size used by [`Fat32::bmap`].
pub const PAGE_SIZE: usize = 4096;
const SECTORS_PER_PAGE: usize = PAGE_SIZE / SECTOR_SIZE;

const ATTR_READ_ONLY: u8 = 0x01;
const ATTR_VOLUME: u8 = 0x08;
const ATTR_DIR: u8 = 0x10;
const ATTR_ARCHIVE: u8 = 0x20;
const EOC: u32 = 0x0FFF_FFFF;
const BAD: u32 = 0x0FFF_FFF7;
/// 2025-01-01, 00:00:00 in FAT date/time form (there is no clock).
const FAT_DATE: u16 = (45 << 9) | (1 << 5) | 1;
const FAT_TIME: u16 = 0;

/// Filesystem errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsError {
    /// The block device failed.
    Device(BlockError),
    /// No FAT filesystem on the device (no boot signature or jump).
    NoFilesystem,
    /// A structure is inconsistent; the text says which.
    Corrupt(&'static str),
    /// A valid but unsupported variant (FAT12/16, sector size not 512).
    Unsupported(&'static str),
    /// A path component does not exist.
    NotFound,
    /// The name exists already.
    AlreadyExists,
    /// A path component that must be a directory is a file.
    NotADirectory,
    /// The operation needs a file, got a directory.
    IsADirectory,
    /// Removing a directory that still has entries.
    DirectoryNotEmpty,
    /// The name cannot be stored in FAT.
    InvalidName,
    /// No free cluster (or directory slot) left.
    NoSpace,
    /// A FAT32 file cannot exceed 4 GiB - 1.
    FileTooLarge,
    /// A read starting past the end of the file.
    BeyondEof {
        /// Requested offset.
        offset: u64,
        /// File size.
        size: u64,
    },
    /// The id does not name a live file or directory (deleted, or not an id).
    StaleFile,
    /// Writing a read-only file.
    ReadOnly,
}

impl From<BlockError> for FsError {
    fn from(e: BlockError) -> Self {
        FsError::Device(e)
    }
}

impl core::fmt::Display for FsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FsError::Device(e) => write!(f, "device: {e}"),
            FsError::NoFilesystem => write!(f, "no FAT32 filesystem on the device"),
            FsError::Corrupt(w) => write!(f, "corrupt filesystem: {w}"),
            FsError::Unsupported(w) => write!(f, "unsupported: {w}"),
            FsError::NotFound => write!(f, "no such file or directory"),
            FsError::AlreadyExists => write!(f, "file exists"),
            FsError::NotADirectory => write!(f, "not a directory"),
            FsError::IsADirectory => write!(f, "is a directory"),
            FsError::DirectoryNotEmpty => write!(f, "directory not empty"),
            FsError::InvalidName => write!(f, "invalid file name"),
            FsError::NoSpace => write!(f, "no space left on device"),
            FsError::FileTooLarge => write!(f, "file too large for FAT32"),
            FsError::BeyondEof { offset, size } => {
                write!(f, "offset {offset} is beyond end of file ({size} bytes)")
            }
            FsError::StaleFile => write!(f, "stale file id"),
            FsError::ReadOnly => write!(f, "file is read-only"),
        }
    }
}

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
    fn cluster_sector(&self, c: u32) -> u64 {
        self.first_data_sector + (c as u64 - 2) * self.sectors_per_cluster as u64
    }
    fn valid_cluster(&self, c: u32) -> bool {
        c >= 2 && c < self.cluster_count + 2
    }
}

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

/// What a directory entry says about a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metadata {
    /// The file's id.
    pub id: FileId,
    /// Size in bytes (0 for directories).
    pub size: u64,
    /// Directory?
    pub is_dir: bool,
    /// First cluster (0 when empty).
    pub first_cluster: u32,
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// Long name if there is one, else the short name.
    pub name: String,
    /// The 8.3 name as displayed.
    pub short_name: String,
    /// Id of the entry.
    pub id: FileId,
    /// Size in bytes.
    pub size: u64,
    /// Directory?
    pub is_dir: bool,
}

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

#[derive(Debug, Clone, Copy)]
struct Extent {
    /// Index of the first cluster within the file.
    fcl: u32,
    /// Disk cluster.
    dcl: u32,
    len: u32,
}

#[derive(Debug, Clone, Default)]
struct Chain {
    extents: Vec<Extent>,
    clusters: u32,
}

impl Chain {
    fn disk_cluster(&self, fcl: u32) -> Option<u32> {
        let i = self.extents.partition_point(|e| e.fcl + e.len <= fcl);
        let e = self.extents.get(i)?;
        (fcl >= e.fcl).then(|| e.dcl + (fcl - e.fcl))
    }
    fn last(&self) -> Option<u32> {
        self.extents.last().map(|e| e.dcl + e.len - 1)
    }
    fn push(&mut self, c: u32) {
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

/// A parsed directory entry with where it lives.
#[derive(Debug, Clone)]
struct Raw {
    pos: u64,
    lfn_start: u64,
    lfn_count: u32,
    name: String,
    short: [u8; 11],
    short_display: String,
    attr: u8,
    size: u32,
}

struct DirScan {
    entries: Vec<Raw>,
    /// Every slot position in directory order, and whether it is free.
    slots: Vec<(u64, bool)>,
}

/// A mounted FAT32 filesystem on a block device.
pub struct Fat32<D: BlockDevice> {
    dev: D,
    geo: Geometry,
    bc: BufCache,
    chains: BTreeMap<u32, Chain>,
    free_count: u32,
    next_free: u32,
    fsinfo_dirty: bool,
    stats: FsStats,
}

fn le16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
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

    // ---- FAT ----

    fn fat_get_raw(&mut self, c: u32) -> Result<u32, FsError> {
        let off = c as u64 * 4;
        let sector = self.geo.reserved_sectors as u64 + off / SECTOR_SIZE as u64;
        let s = self.bc.read(&mut self.dev, sector, &mut self.stats)?;
        Ok(le32(s, (off % SECTOR_SIZE as u64) as usize))
    }

    fn fat_get(&mut self, c: u32) -> Result<u32, FsError> {
        if !self.geo.valid_cluster(c) {
            return Err(FsError::Corrupt("cluster number out of range"));
        }
        Ok(self.fat_get_raw(c)? & 0x0FFF_FFFF)
    }

    fn fat_set(&mut self, c: u32, v: u32) -> Result<(), FsError> {
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

    fn count_free(&mut self) -> Result<u32, FsError> {
        let mut free = 0;
        for c in 2..self.geo.cluster_count + 2 {
            if self.fat_get(c)? == 0 {
                free += 1;
            }
        }
        Ok(free)
    }

    /// Walks (or returns the cached) chain starting at `first`.
    fn chain(&mut self, first: u32) -> Result<Chain, FsError> {
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
    fn alloc_clusters(&mut self, n: u32) -> Result<Vec<u32>, FsError> {
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

    fn free_chain_from(&mut self, first: u32) -> Result<(), FsError> {
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

    // ---- directory entries ----

    fn entry_loc(&self, pos: u64) -> (u64, usize) {
        (pos / 16, (pos % 16) as usize * 32)
    }

    fn read_entry(&mut self, pos: u64) -> Result<[u8; 32], FsError> {
        let (sector, off) = self.entry_loc(pos);
        if sector < self.geo.first_data_sector || sector >= self.geo.total_sectors {
            return Err(FsError::StaleFile);
        }
        let s = self.bc.read(&mut self.dev, sector, &mut self.stats)?;
        let mut e = [0u8; 32];
        e.copy_from_slice(&s[off..off + 32]);
        Ok(e)
    }

    fn write_entry(&mut self, pos: u64, f: impl FnOnce(&mut [u8])) -> Result<(), FsError> {
        let (sector, off) = self.entry_loc(pos);
        let s = self.bc.modify(&mut self.dev, sector, &mut self.stats)?;
        f(&mut s[off..off + 32]);
        Ok(())
    }

    /// Metadata of a file or directory by id.
    pub fn metadata(&mut self, id: FileId) -> Result<Metadata, FsError> {
        if id == ROOT {
            return Ok(Metadata {
                id,
                size: 0,
                is_dir: true,
                first_cluster: self.geo.root_cluster,
            });
        }
        let e = self.read_entry(id)?;
        if e[0] == 0 || e[0] == 0xE5 || e[11] == name::ATTR_LFN || e[11] & ATTR_VOLUME != 0 {
            return Err(FsError::StaleFile);
        }
        let first = (le16(&e, 20) as u32) << 16 | le16(&e, 26) as u32;
        let is_dir = e[11] & ATTR_DIR != 0;
        if is_dir && first == 0 {
            return Err(FsError::Corrupt("directory entry without clusters"));
        }
        Ok(Metadata {
            id,
            size: if is_dir { 0 } else { le32(&e, 28) as u64 },
            is_dir,
            first_cluster: first,
        })
    }

    fn file_meta(&mut self, id: FileId) -> Result<Metadata, FsError> {
        let m = self.metadata(id)?;
        if m.is_dir {
            return Err(FsError::IsADirectory);
        }
        Ok(m)
    }

    fn scan_dir(&mut self, dir_cluster: u32) -> Result<DirScan, FsError> {
        let chain = self.chain(dir_cluster)?;
        let spc = self.geo.sectors_per_cluster as u64;
        let mut scan = DirScan {
            entries: Vec::new(),
            slots: Vec::new(),
        };
        let mut acc = name::LfnAcc::default();
        let mut ended = false;
        for e in &chain.extents {
            for c in e.dcl..e.dcl + e.len {
                let first = self.geo.cluster_sector(c);
                for sector in first..first + spc {
                    if ended {
                        for i in 0..16 {
                            scan.slots.push((sector * 16 + i, true));
                        }
                        continue;
                    }
                    let s = *self.bc.read(&mut self.dev, sector, &mut self.stats)?;
                    for i in 0..16 {
                        let pos = sector * 16 + i as u64;
                        let e = &s[i * 32..i * 32 + 32];
                        if ended || e[0] == 0 {
                            ended = true;
                            scan.slots.push((pos, true));
                            continue;
                        }
                        if e[0] == 0xE5 {
                            acc.reset();
                            scan.slots.push((pos, true));
                            continue;
                        }
                        scan.slots.push((pos, false));
                        if e[11] & 0x3F == name::ATTR_LFN {
                            acc.push(e, pos);
                            continue;
                        }
                        let mut short = [0u8; 11];
                        short.copy_from_slice(&e[..11]);
                        let long = acc.take(&short);
                        let (lfn_start, lfn_count) = if long.is_some() {
                            (acc.start, acc.count)
                        } else {
                            (pos, 0)
                        };
                        acc.reset();
                        if e[11] & ATTR_VOLUME != 0 || short[0] == b'.' {
                            continue;
                        }
                        let short_display = name::short_display(&short, e[12]);
                        scan.entries.push(Raw {
                            pos,
                            lfn_start,
                            lfn_count,
                            name: long.unwrap_or_else(|| short_display.clone()),
                            short,
                            short_display,
                            attr: e[11],
                            size: le32(e, 28),
                        });
                    }
                }
            }
        }
        Ok(scan)
    }

    fn find(&mut self, dir_cluster: u32, name: &str) -> Result<Option<Raw>, FsError> {
        let scan = self.scan_dir(dir_cluster)?;
        Ok(scan
            .entries
            .into_iter()
            .find(|r| name::name_eq(&r.name, name) || name::name_eq(&r.short_display, name)))
    }

    fn dir_cluster_of(&mut self, id: FileId) -> Result<u32, FsError> {
        let m = self.metadata(id)?;
        if !m.is_dir {
            return Err(FsError::NotADirectory);
        }
        Ok(m.first_cluster)
    }

    /// Resolves a `/`-separated path (case-insensitive, leading `/`
    /// optional; empty path is the root).
    pub fn lookup(&mut self, path: &str) -> Result<Metadata, FsError> {
        let mut cur = ROOT;
        for comp in path.split('/').filter(|c| !c.is_empty()) {
            let dir = self.dir_cluster_of(cur)?;
            let raw = self.find(dir, comp)?.ok_or(FsError::NotFound)?;
            cur = raw.pos;
        }
        self.metadata(cur)
    }

    fn parent_and_name<'p>(&mut self, path: &'p str) -> Result<(FileId, u32, &'p str), FsError> {
        let trimmed = path.trim_end_matches('/');
        let (parent, name) = match trimmed.rfind('/') {
            Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
            None => ("", trimmed),
        };
        if name.is_empty() {
            return Err(FsError::InvalidName);
        }
        let p = self.lookup(parent)?;
        if !p.is_dir {
            return Err(FsError::NotADirectory);
        }
        Ok((p.id, p.first_cluster, name))
    }

    /// Lists a directory (without `.` and `..`).
    pub fn read_dir(&mut self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        let m = self.lookup(path)?;
        self.read_dir_id(m.id)
    }

    /// Lists a directory by id.
    pub fn read_dir_id(&mut self, id: FileId) -> Result<Vec<DirEntry>, FsError> {
        let dir = self.dir_cluster_of(id)?;
        let scan = self.scan_dir(dir)?;
        Ok(scan
            .entries
            .into_iter()
            .map(|r| DirEntry {
                is_dir: r.attr & ATTR_DIR != 0,
                size: if r.attr & ATTR_DIR != 0 {
                    0
                } else {
                    r.size as u64
                },
                id: r.pos,
                name: r.name,
                short_name: r.short_display,
            })
            .collect())
    }

    /// Appends a zeroed cluster to a directory; returns its slot positions.
    fn grow_dir(&mut self, dir_cluster: u32) -> Result<(), FsError> {
        let chain = self.chain(dir_cluster)?;
        let last = chain
            .last()
            .ok_or(FsError::Corrupt("directory without clusters"))?;
        let c = self.alloc_clusters(1)?[0];
        self.zero_cluster(c)?;
        self.fat_set(last, c)?;
        self.chains.remove(&dir_cluster);
        Ok(())
    }

    fn zero_cluster(&mut self, c: u32) -> Result<(), FsError> {
        let first = self.geo.cluster_sector(c);
        for s in first..first + self.geo.sectors_per_cluster as u64 {
            self.bc.zeroed(&mut self.dev, s, &mut self.stats)?;
        }
        Ok(())
    }

    /// Writes a new entry (with LFN slots if needed) into a directory.
    fn add_entry(
        &mut self,
        dir_cluster: u32,
        name: &str,
        attr: u8,
        first: u32,
    ) -> Result<FileId, FsError> {
        name::validate(name)?;
        let mut scan = self.scan_dir(dir_cluster)?;
        if scan
            .entries
            .iter()
            .any(|r| name::name_eq(&r.name, name) || name::name_eq(&r.short_display, name))
        {
            return Err(FsError::AlreadyExists);
        }
        let (short, lfn) = match name::exact_short(name) {
            Some(s) => (s, Vec::new()),
            None => {
                let taken: Vec<[u8; 11]> = scan.entries.iter().map(|r| r.short).collect();
                let s = name::generate_short(name, &taken)?;
                (s, name::lfn_slots(name, &s))
            }
        };
        let need = lfn.len() + 1;
        let run_start = loop {
            let mut run = 0;
            let mut found = None;
            for (i, (_, free)) in scan.slots.iter().enumerate() {
                run = if *free { run + 1 } else { 0 };
                if run == need {
                    found = Some(i + 1 - need);
                    break;
                }
            }
            if let Some(f) = found {
                break f;
            }
            // A directory has at most 65536 entries.
            if scan.slots.len() + need > 65536 {
                return Err(FsError::NoSpace);
            }
            self.grow_dir(dir_cluster)?;
            scan = self.scan_dir(dir_cluster)?;
        };
        for (k, slot) in lfn.iter().enumerate() {
            let pos = scan.slots[run_start + k].0;
            self.write_entry(pos, |e| e.copy_from_slice(slot))?;
        }
        let pos = scan.slots[run_start + lfn.len()].0;
        self.write_entry(pos, |e| {
            e.fill(0);
            e[..11].copy_from_slice(&short);
            e[11] = attr;
            for o in [14, 22] {
                e[o..o + 2].copy_from_slice(&FAT_TIME.to_le_bytes());
            }
            for o in [16, 18, 24] {
                e[o..o + 2].copy_from_slice(&FAT_DATE.to_le_bytes());
            }
            e[20..22].copy_from_slice(&((first >> 16) as u16).to_le_bytes());
            e[26..28].copy_from_slice(&(first as u16).to_le_bytes());
        })?;
        Ok(pos)
    }

    /// Creates an empty file. Fails with `AlreadyExists` if the name exists.
    pub fn create(&mut self, path: &str) -> Result<FileId, FsError> {
        let (_, dir, name) = self.parent_and_name(path)?;
        self.add_entry(dir, name, ATTR_ARCHIVE, 0)
    }

    /// Creates an empty directory.
    pub fn mkdir(&mut self, path: &str) -> Result<FileId, FsError> {
        let (pid, dir, name) = self.parent_and_name(path)?;
        name::validate(name)?;
        if self.find(dir, name)?.is_some() {
            return Err(FsError::AlreadyExists);
        }
        let c = self.alloc_clusters(1)?[0];
        let made = (|| {
            self.zero_cluster(c)?;
            let parent = if pid == ROOT { 0 } else { dir };
            let first = self.geo.cluster_sector(c);
            let s = self.bc.modify(&mut self.dev, first, &mut self.stats)?;
            for (i, (n, cl)) in [(*b".          ", c), (*b"..         ", parent)]
                .iter()
                .enumerate()
            {
                let e = &mut s[i * 32..i * 32 + 32];
                e[..11].copy_from_slice(n);
                e[11] = ATTR_DIR;
                for o in [16, 18, 24] {
                    e[o..o + 2].copy_from_slice(&FAT_DATE.to_le_bytes());
                }
                e[20..22].copy_from_slice(&((cl >> 16) as u16).to_le_bytes());
                e[26..28].copy_from_slice(&(*cl as u16).to_le_bytes());
            }
            self.add_entry(dir, name, ATTR_DIR, c)
        })();
        if made.is_err() {
            self.free_chain_from(c)?;
        }
        made
    }

    /// Removes a file or an empty directory; frees its clusters. Returns
    /// what the entry was.
    pub fn remove(&mut self, path: &str) -> Result<Metadata, FsError> {
        let (_, dir, name) = self.parent_and_name(path)?;
        let raw = self.find(dir, name)?.ok_or(FsError::NotFound)?;
        let meta = self.metadata(raw.pos)?;
        if meta.is_dir && !self.scan_dir(meta.first_cluster)?.entries.is_empty() {
            return Err(FsError::DirectoryNotEmpty);
        }
        let mut pos = raw.lfn_start;
        // LFN slots and the short entry are consecutive in directory order,
        // but may cross a sector or cluster boundary: walk the slot list.
        let scan = self.scan_dir(dir)?;
        let i = scan
            .slots
            .iter()
            .position(|s| s.0 == raw.lfn_start)
            .ok_or(FsError::Corrupt("directory slot vanished"))?;
        for k in 0..=raw.lfn_count as usize {
            pos = scan
                .slots
                .get(i + k)
                .ok_or(FsError::Corrupt("directory slot vanished"))?
                .0;
            self.write_entry(pos, |e| e[0] = 0xE5)?;
        }
        if pos != raw.pos {
            return Err(FsError::Corrupt("long name slots not next to their entry"));
        }
        if meta.first_cluster != 0 {
            self.free_chain_from(meta.first_cluster)?;
        }
        Ok(meta)
    }

    // ---- sizes and mapping ----

    fn clusters_for(&self, len: u64) -> u32 {
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

    /// Gives clusters of a chain not linked to any file back to the free
    /// pool (they were just allocated, so their FAT sectors are in the
    /// buffer cache). If even that fails, they stay marked: lost space, as
    /// `fsck.fat` would report it, never data anybody can read.
    fn release_unlinked(&mut self, clusters: &[u32]) -> Result<(), FsError> {
        for &c in clusters {
            self.fat_set(c, 0)?;
            self.free_count += 1;
        }
        self.fsinfo_dirty = true;
        Ok(())
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
