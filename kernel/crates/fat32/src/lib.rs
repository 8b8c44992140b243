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
//!
//! # Files
//!
//! One concept each, with its own rules at its top: `boot` (boot sector and
//! [`Geometry`]), `volume` (mount, FSInfo, `sync`, counters), `fat` (cluster
//! chains, allocation), `dir` (directory entries, lookup, create/remove),
//! `file` (sizes, direct I/O), `bmap` (block mapping for the page cache),
//! `bcache` (metadata buffer cache), `name` (short and long names),
//! `format` (mkfs), `error` ([`FsError`]).
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod bcache;
mod bmap;
mod boot;
mod dir;
mod error;
mod fat;
mod file;
mod format;
mod name;
mod volume;

use alloc::collections::BTreeMap;

use blkdev::BlockDevice;

use bcache::BufCache;
pub use bmap::PageMap;
pub use boot::{Geometry, parse_boot_sector};
pub use dir::{DirEntry, Metadata};
pub use error::FsError;
use fat::Chain;
pub use format::{FormatOptions, format};
pub use name::lfn_checksum;
pub use volume::{FsStats, MountOptions};

/// Identifies a file: position of its short directory entry (byte offset on
/// the disk / 32). The root directory is [`ROOT`].
pub type FileId = u64;
/// The root directory's id.
pub const ROOT: FileId = 0;
/// Page size used by [`Fat32::bmap`] (the frame size, defined in `frames`).
pub use frames::PAGE_SIZE;

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
