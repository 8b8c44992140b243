//! A fake filesystem for the page-cache tests (as Tock's capsules are
//! tested against fakes): a flat namespace of files whose data lives on a
//! RAM disk in page-sized extents handed out in a scattered order, with a
//! block map, sizes and length changes as `pagecache::Filesystem` asks,
//! and counters of what the page cache asked. No FAT32 is formatted.
#![allow(dead_code)]

use std::collections::BTreeMap;

use blkdev::{BlockDevice, QueueMux, RamDisk};
use fat32::{DirEntry, FsError, Metadata, PageMap};
use pagecache::{FileId, Filesystem, PAGE_SIZE};

/// Sectors in a page.
const SPP: u64 = PAGE_SIZE / 512;

struct File {
    name: String,
    size: u64,
    /// First sector of each page-sized extent, in file order.
    extents: Vec<u64>,
}

/// Counters of the calls the page cache made.
#[derive(Default, Debug, Clone, Copy)]
pub struct Calls {
    pub bmap: u64,
    pub check_grow: u64,
    pub set_len: u64,
    pub sync: u64,
}

pub struct FakeFs {
    dev: QueueMux<RamDisk>,
    files: BTreeMap<FileId, File>,
    /// Free extents (first sectors), taken from the back.
    free: Vec<u64>,
    next_id: FileId,
    pub calls: Calls,
}

impl FakeFs {
    /// A fake over a fresh RAM disk of `pages` pages.
    pub fn new(pages: u64) -> Self {
        // Scattered: even extents first, then odd ones, so a file's pages
        // are not contiguous on the disk.
        let mut order: Vec<u64> = (0..pages).filter(|p| p % 2 == 0).collect();
        order.extend((0..pages).filter(|p| p % 2 == 1));
        order.reverse();
        FakeFs {
            dev: QueueMux::new(RamDisk::new(pages * SPP)),
            files: BTreeMap::new(),
            free: order.into_iter().map(|p| p * SPP).collect(),
            next_id: 1,
            calls: Calls::default(),
        }
    }

    /// Free pages left.
    pub fn free_pages(&self) -> usize {
        self.free.len()
    }

    /// The file's bytes as they are on the disk (up to its size).
    pub fn disk_bytes(&self, id: FileId) -> Vec<u8> {
        let f = &self.files[&id];
        let disk = self.dev.inner().as_bytes();
        let mut out = Vec::new();
        for &e in &f.extents {
            let at = (e * 512) as usize;
            out.extend_from_slice(&disk[at..at + PAGE_SIZE as usize]);
        }
        out.truncate(f.size as usize);
        out
    }

    fn id_of(&self, path: &str) -> Option<FileId> {
        let name = path.trim_start_matches('/');
        self.files
            .iter()
            .find(|(_, f)| f.name == name)
            .map(|(id, _)| *id)
    }

    fn meta(&self, id: FileId) -> Result<Metadata, FsError> {
        let f = self.files.get(&id).ok_or(FsError::StaleFile)?;
        Ok(Metadata {
            id,
            size: f.size,
            is_dir: false,
            first_cluster: 0,
        })
    }
}

impl Filesystem for FakeFs {
    type Device = QueueMux<RamDisk>;
    fn volume_id(&self) -> u32 {
        0xfa4e
    }
    fn lookup(&mut self, path: &str) -> Result<Metadata, FsError> {
        if path.trim_matches('/').is_empty() {
            return Ok(Metadata {
                id: 0,
                size: 0,
                is_dir: true,
                first_cluster: 0,
            });
        }
        let id = self.id_of(path).ok_or(FsError::NotFound)?;
        self.meta(id)
    }
    fn metadata(&mut self, id: FileId) -> Result<Metadata, FsError> {
        self.meta(id)
    }
    fn create(&mut self, path: &str) -> Result<FileId, FsError> {
        let name = path.trim_start_matches('/');
        if name.is_empty() || name.contains('/') {
            return Err(FsError::InvalidName);
        }
        if self.id_of(path).is_some() {
            return Err(FsError::AlreadyExists);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.files.insert(
            id,
            File {
                name: name.into(),
                size: 0,
                extents: Vec::new(),
            },
        );
        Ok(id)
    }
    fn mkdir(&mut self, _path: &str) -> Result<FileId, FsError> {
        Err(FsError::Unsupported("directories in the fake"))
    }
    fn read_dir(&mut self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        if !path.trim_matches('/').is_empty() {
            return Err(FsError::NotFound);
        }
        Ok(self
            .files
            .iter()
            .map(|(id, f)| DirEntry {
                name: f.name.clone(),
                short_name: f.name.clone(),
                id: *id,
                size: f.size,
                is_dir: false,
            })
            .collect())
    }
    fn remove(&mut self, path: &str) -> Result<Metadata, FsError> {
        let id = self.id_of(path).ok_or(FsError::NotFound)?;
        let meta = self.meta(id)?;
        let f = self.files.remove(&id).ok_or(FsError::StaleFile)?;
        self.free.extend(f.extents);
        Ok(meta)
    }
    fn bmap(&mut self, id: FileId, index: u32) -> Result<PageMap, FsError> {
        self.calls.bmap += 1;
        let f = self.files.get(&id).ok_or(FsError::StaleFile)?;
        let mut map = PageMap::default();
        if let Some(&first) = f.extents.get(index as usize) {
            for s in first..first + SPP {
                assert!(map.add_sector(s));
            }
        }
        Ok(map)
    }
    fn check_grow(&mut self, id: FileId, len: u64) -> Result<(), FsError> {
        self.calls.check_grow += 1;
        let f = self.files.get(&id).ok_or(FsError::StaleFile)?;
        let need = len.div_ceil(PAGE_SIZE) as usize;
        if need > f.extents.len() + self.free.len() {
            return Err(FsError::NoSpace);
        }
        Ok(())
    }
    fn set_len_uninit(&mut self, id: FileId, len: u64) -> Result<(), FsError> {
        self.calls.set_len += 1;
        self.check_grow(id, len)?;
        let need = len.div_ceil(PAGE_SIZE) as usize;
        let f = self.files.get_mut(&id).ok_or(FsError::StaleFile)?;
        while f.extents.len() < need {
            f.extents.push(self.free.pop().ok_or(FsError::NoSpace)?);
        }
        while f.extents.len() > need {
            self.free.extend(f.extents.pop());
        }
        f.size = len;
        Ok(())
    }
    fn sync(&mut self) -> Result<(), FsError> {
        self.calls.sync += 1;
        Ok(self.dev.flush()?)
    }
    fn device_mut(&mut self) -> &mut QueueMux<RamDisk> {
        &mut self.dev
    }
}
