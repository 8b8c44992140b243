//! The interface between the page cache and cleancache.
//!
//! Rules (enforced by the page cache, tested with a recording stand-in):
//! * `put_page` only for a clean, up-to-date page leaving by eviction (its
//!   content equals the file's: on disk, bytes past end of file zero). Dirty
//!   pages are written back first. Truncation, deletion and read errors drop
//!   pages without `put_page`.
//! * `get_page` on every miss (demand and readahead) before the device is
//!   asked; a `true` answer means the device is not read.
//! * `invalidate_page` on every write to a page; `invalidate_file(f, from)` on
//!   truncate (`from` = the first page whose content changes, including a
//!   partial last page), `invalidate_file(f, 0)` on delete and on create (a
//!   reused file id must not find old copies).
//! * `init_fs(volume)` in `PageCache::new`, before any other call: a
//!   new mount begins (and again after `invalidate_fs` when
//!   `PageCache::try_unmount` fails and keeps the page cache). From then on the hooks name every page they store by
//!   a filesystem identity that no earlier mount had (cleancache's
//!   `register_fs`), plus file and index: file ids are directory-entry
//!   positions, equal on two disks laid out alike, so `(file, index)` alone
//!   would let one disk read another's (or its own pre-rewrite) copies.
//! * `invalidate_fs()` in `PageCache::unmount` (also when its sync fails):
//!   every stored page of the mount is stale; nothing is put after it.
//! * All calls happen with the page cache's lock held (the page cache is
//!   `&mut self`; the kernel holds it under one lock).
//! * The hooks are one half of the page cache's environment (see [`env`]):
//!   the same object also implements [`PageAllocator`], or a pair `(A, H)`
//!   joins two separate halves.
//!
//! [`env`]: crate::env
//! [`PageAllocator`]: crate::PageAllocator

/// File identifier (the filesystem's [`fat32::FileId`]).
pub type FileId = u64;
/// Page index within a file.
pub type PageIndex = u32;
/// Page size in bytes (the frame size, defined in `frames`).
pub use frames::PAGE_SIZE;
use frames::PageBytes;

/// Called by the page cache. All calls happen with the page cache's lock held.
pub trait CleancacheHooks {
    /// A new mount of a filesystem with volume serial `volume` begins: every
    /// later call is about this mount, under an identity no earlier mount had.
    fn init_fs(&mut self, volume: u32);
    /// The mount ends: drop every stored page of it.
    fn invalidate_fs(&mut self);
    /// A clean page (content equal to what is on disk) leaves the page cache by eviction. The hook may keep a copy.
    fn put_page(&mut self, file: FileId, index: PageIndex, data: &PageBytes);
    /// A page-cache miss: if a copy is held, copy it into `out`, drop it from the cleancache (exclusive) and return true.
    fn get_page(&mut self, file: FileId, index: PageIndex, out: &mut PageBytes) -> bool;
    /// The page's stored copy (if any) is stale: drop it.
    fn invalidate_page(&mut self, file: FileId, index: PageIndex);
    /// Every stored page of `file` with index >= `from` is stale (truncate); `from = 0` for delete.
    fn invalidate_file(&mut self, file: FileId, from: PageIndex);
}

/// No cleancache: stores nothing, never hits.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoCleancache;

impl CleancacheHooks for NoCleancache {
    fn init_fs(&mut self, _volume: u32) {}
    fn invalidate_fs(&mut self) {}
    fn put_page(&mut self, _file: FileId, _index: PageIndex, _data: &PageBytes) {}
    fn get_page(&mut self, _file: FileId, _index: PageIndex, _out: &mut PageBytes) -> bool {
        false
    }
    fn invalidate_page(&mut self, _file: FileId, _index: PageIndex) {}
    fn invalidate_file(&mut self, _file: FileId, _from: PageIndex) {}
}

impl<H: CleancacheHooks + ?Sized> CleancacheHooks for &mut H {
    fn init_fs(&mut self, volume: u32) {
        (**self).init_fs(volume)
    }
    fn invalidate_fs(&mut self) {
        (**self).invalidate_fs()
    }
    fn put_page(&mut self, file: FileId, index: PageIndex, data: &PageBytes) {
        (**self).put_page(file, index, data)
    }
    fn get_page(&mut self, file: FileId, index: PageIndex, out: &mut PageBytes) -> bool {
        (**self).get_page(file, index, out)
    }
    fn invalidate_page(&mut self, file: FileId, index: PageIndex) {
        (**self).invalidate_page(file, index)
    }
    fn invalidate_file(&mut self, file: FileId, from: PageIndex) {
        (**self).invalidate_file(file, from)
    }
}
