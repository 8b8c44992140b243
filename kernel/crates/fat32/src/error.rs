//! [`FsError`]: every way an operation can fail. Bad input gives an error,
//! never a panic: corrupt structures are [`FsError::Corrupt`] with a text
//! saying which, a disk without FAT32 is [`FsError::NoFilesystem`].

use blkdev::BlockError;

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
