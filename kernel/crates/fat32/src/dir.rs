//! Directories: entries, scans, path lookup, listing, creating and removing.
//!
//! Rules:
//! * A [`FileId`] is the position of the short entry (disk byte offset / 32);
//!   [`Fat32::metadata`] refuses an id whose slot is free, deleted, a long
//!   name slot or a volume label ([`FsError::StaleFile`]).
//! * Long-name slots sit right before their short entry in directory order
//!   (they may cross a sector or cluster boundary); `remove` marks them and
//!   the entry deleted together.
//! * A new directory cluster is zeroed in the buffer cache before it is
//!   linked; `mkdir` frees its cluster again if adding the entry fails.
//! * Names are compared case-insensitively against both the long and the
//!   short name; a name that exists either way is [`FsError::AlreadyExists`].

use alloc::string::String;
use alloc::vec::Vec;

use blkdev::BlockDevice;

use crate::{Fat32, FileId, FsError, ROOT, le16, le32, name};

pub(crate) const ATTR_READ_ONLY: u8 = 0x01;
const ATTR_VOLUME: u8 = 0x08;
const ATTR_DIR: u8 = 0x10;
pub(crate) const ATTR_ARCHIVE: u8 = 0x20;
/// 2025-01-01, 00:00:00 in FAT date/time form (there is no clock).
pub(crate) const FAT_DATE: u16 = (45 << 9) | (1 << 5) | 1;
pub(crate) const FAT_TIME: u16 = 0;

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

impl<D: BlockDevice> Fat32<D> {
    fn entry_loc(&self, pos: u64) -> (u64, usize) {
        (pos / 16, (pos % 16) as usize * 32)
    }

    pub(crate) fn read_entry(&mut self, pos: u64) -> Result<[u8; 32], FsError> {
        let (sector, off) = self.entry_loc(pos);
        if sector < self.geo.first_data_sector || sector >= self.geo.total_sectors {
            return Err(FsError::StaleFile);
        }
        let s = self.bc.read(&mut self.dev, sector, &mut self.stats)?;
        let mut e = [0u8; 32];
        e.copy_from_slice(&s[off..off + 32]);
        Ok(e)
    }

    pub(crate) fn write_entry(
        &mut self,
        pos: u64,
        f: impl FnOnce(&mut [u8]),
    ) -> Result<(), FsError> {
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

    pub(crate) fn file_meta(&mut self, id: FileId) -> Result<Metadata, FsError> {
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
}
