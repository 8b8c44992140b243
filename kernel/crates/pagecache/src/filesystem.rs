//! [`Filesystem`]: what the page cache needs from a filesystem, so that
//! another filesystem (or a fake, in tests) can plug in. `fat32` implements
//! it (below).
//!
//! Rules an implementation keeps:
//! * `bmap` never allocates: it maps the sectors of one page that lie
//!   inside the file's allocation, and nothing past it. The page cache moves
//!   file data itself, through `device_mut`, with those sector runs.
//! * `set_len_uninit` changes a file's allocation and size without touching
//!   data (the page cache writes the new bytes through cached pages);
//!   `check_grow` says whether growing to a length can succeed, changing
//!   nothing. On an error neither changes anything.
//! * File ids are stable while a file lives and may be reused after it is
//!   removed (the page cache invalidates cleancache on create and remove).
//! * Metadata I/O goes through the same device as data (hence a
//!   [`QueueMux`](blkdev::QueueMux) under the page cache) and is written back
//!   by `sync`.

use alloc::vec::Vec;

use blkdev::BlockDevice;
use fat32::{DirEntry, Fat32, FsError, Metadata, PageMap};

use crate::FileId;

/// The page cache's view of a filesystem.
pub trait Filesystem {
    /// The device file data is read from and written to.
    type Device: BlockDevice;
    /// A label of the volume, handed to cleancache (`init_fs`).
    fn volume_id(&self) -> u32;
    /// Resolves a path.
    fn lookup(&mut self, path: &str) -> Result<Metadata, FsError>;
    /// What the filesystem says about a live file id.
    fn metadata(&mut self, id: FileId) -> Result<Metadata, FsError>;
    /// Creates an empty file.
    fn create(&mut self, path: &str) -> Result<FileId, FsError>;
    /// Creates an empty directory.
    fn mkdir(&mut self, path: &str) -> Result<FileId, FsError>;
    /// Lists a directory.
    fn read_dir(&mut self, path: &str) -> Result<Vec<DirEntry>, FsError>;
    /// Removes a file or an empty directory.
    fn remove(&mut self, path: &str) -> Result<Metadata, FsError>;
    /// The disk sectors of page `index` of a file (block map).
    fn bmap(&mut self, id: FileId, index: u32) -> Result<PageMap, FsError>;
    /// Whether the file can grow to `len` bytes; changes nothing.
    fn check_grow(&mut self, id: FileId, len: u64) -> Result<(), FsError>;
    /// Sets the size (and allocation) without writing data.
    fn set_len_uninit(&mut self, id: FileId, len: u64) -> Result<(), FsError>;
    /// Writes metadata back and flushes the device.
    fn sync(&mut self) -> Result<(), FsError>;
    /// The device, for file data I/O.
    fn device_mut(&mut self) -> &mut Self::Device;
}

impl<D: BlockDevice> Filesystem for Fat32<D> {
    type Device = D;
    fn volume_id(&self) -> u32 {
        self.geometry().volume_id
    }
    fn lookup(&mut self, path: &str) -> Result<Metadata, FsError> {
        Fat32::lookup(self, path)
    }
    fn metadata(&mut self, id: FileId) -> Result<Metadata, FsError> {
        Fat32::metadata(self, id)
    }
    fn create(&mut self, path: &str) -> Result<FileId, FsError> {
        Fat32::create(self, path)
    }
    fn mkdir(&mut self, path: &str) -> Result<FileId, FsError> {
        Fat32::mkdir(self, path)
    }
    fn read_dir(&mut self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        Fat32::read_dir(self, path)
    }
    fn remove(&mut self, path: &str) -> Result<Metadata, FsError> {
        Fat32::remove(self, path)
    }
    fn bmap(&mut self, id: FileId, index: u32) -> Result<PageMap, FsError> {
        Fat32::bmap(self, id, index)
    }
    fn check_grow(&mut self, id: FileId, len: u64) -> Result<(), FsError> {
        Fat32::check_grow(self, id, len)
    }
    fn set_len_uninit(&mut self, id: FileId, len: u64) -> Result<(), FsError> {
        Fat32::set_len_uninit(self, id, len)
    }
    fn sync(&mut self) -> Result<(), FsError> {
        Fat32::sync(self)
    }
    fn device_mut(&mut self) -> &mut D {
        Fat32::device_mut(self)
    }
}
