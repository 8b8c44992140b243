//! [`Error`] for page-cache operations and [`MigrateError`] for moving a
//! page out of a frame.

use blkdev::BlockError;
use fat32::FsError;

/// Page-cache errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The filesystem refused (not found, no space, corrupt, ...).
    Fs(FsError),
    /// A device request failed.
    Device(BlockError),
    /// No frame could be had: the budget is full of busy pages, or the
    /// allocator is empty and nothing can be reclaimed.
    NoMemory,
    /// The page is pinned by a reader (truncate, delete).
    Busy,
    /// A read starting past the end of the file.
    BeyondEof {
        /// Requested offset.
        offset: u64,
        /// File size.
        size: u64,
    },
    /// The file would exceed FAT32's 4 GiB - 1.
    FileTooLarge,
    /// Opening a directory as a file.
    IsADirectory,
    /// `unpin_page` of a frame that is not a pinned cached page.
    NotPinned,
    /// [`read_nowait`](crate::PageCache::read_nowait): the first page
    /// asked for is being read from the device; nothing was copied. Call
    /// again once the device had time to answer.
    InFlight,
}

impl From<FsError> for Error {
    fn from(e: FsError) -> Self {
        match e {
            FsError::Device(d) => Error::Device(d),
            FsError::FileTooLarge => Error::FileTooLarge,
            FsError::BeyondEof { offset, size } => Error::BeyondEof { offset, size },
            FsError::IsADirectory => Error::IsADirectory,
            e => Error::Fs(e),
        }
    }
}

impl From<BlockError> for Error {
    fn from(e: BlockError) -> Self {
        Error::Device(e)
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Fs(e) => write!(f, "{e}"),
            Error::Device(e) => write!(f, "device: {e}"),
            Error::NoMemory => write!(f, "out of page-cache memory"),
            Error::Busy => write!(f, "page is pinned"),
            Error::BeyondEof { offset, size } => {
                write!(f, "offset {offset} is beyond end of file ({size} bytes)")
            }
            Error::FileTooLarge => write!(f, "file too large for FAT32"),
            Error::IsADirectory => write!(f, "is a directory"),
            Error::NotPinned => write!(f, "frame is not a pinned page"),
            Error::InFlight => write!(f, "the page is being read from the device"),
        }
    }
}

/// Why a migration did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrateError {
    /// The page is pinned, under I/O or locked: try again later or elsewhere.
    Busy,
    /// The old frame is not a page-cache page (nothing to move).
    NotCached,
}
