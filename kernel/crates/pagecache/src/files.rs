//! Files: opening, creating, removing and sizing files through the
//! filesystem, and the per-file state the cache keeps (size, readahead).
//!
//! Rules: creating a file and removing one invalidate cleancache for the
//! whole file (a reused file id must not find old copies); removing a file
//! drops its pages without putting them, and fails with `Error::Busy` if a
//! page is pinned or under I/O.

use alloc::vec::Vec;

use blkdev::BlockDevice;
use fat32::{DirEntry, FsError};

use blkdev::QueueMux;

use crate::filesystem::Filesystem;
use crate::{
    CleancacheHooks, Error, FileId, FileState, Key, PageAllocator, PageCache, PageIndex,
    PageStateStore, RaState,
};

impl<D, E, S, F> PageCache<D, E, S, F>
where
    D: BlockDevice,
    E: PageAllocator + CleancacheHooks,
    S: PageStateStore,
    F: Filesystem<Device = QueueMux<D>>,
{
    pub(crate) fn file(&mut self, id: FileId) -> Result<&mut FileState, Error> {
        if !self.files.contains_key(&id) {
            let m = self.fs.metadata(id)?;
            if m.is_dir {
                return Err(Error::IsADirectory);
            }
            self.files.insert(
                id,
                FileState {
                    size: m.size,
                    ra: RaState::default(),
                },
            );
        }
        self.files.get_mut(&id).ok_or(Error::Fs(FsError::StaleFile))
    }

    /// Opens a file by path.
    pub fn open(&mut self, path: &str) -> Result<FileId, Error> {
        self.reap();
        let m = self.fs.lookup(path)?;
        if m.is_dir {
            return Err(Error::IsADirectory);
        }
        self.file(m.id)?;
        Ok(m.id)
    }

    /// Creates an empty file (error if the name exists).
    pub fn create(&mut self, path: &str) -> Result<FileId, Error> {
        self.reap();
        let id = self.fs.create(path)?;
        // The id may be a deleted file's: nothing of that file may survive.
        self.env.invalidate_file(id, 0);
        self.files.insert(
            id,
            FileState {
                size: 0,
                ra: RaState::default(),
            },
        );
        Ok(id)
    }

    /// Creates a directory.
    pub fn mkdir(&mut self, path: &str) -> Result<FileId, Error> {
        self.reap();
        Ok(self.fs.mkdir(path)?)
    }

    /// Lists a directory.
    pub fn read_dir(&mut self, path: &str) -> Result<Vec<DirEntry>, Error> {
        self.reap();
        Ok(self.fs.read_dir(path)?)
    }

    /// Size of a file.
    pub fn file_size(&mut self, id: FileId) -> Result<u64, Error> {
        Ok(self.file(id)?.size)
    }

    /// Deletes a file (its cached pages, dirty or not, are dropped, never put
    /// into cleancache) or an empty directory.
    pub fn remove(&mut self, path: &str) -> Result<(), Error> {
        self.reap();
        let m = self.fs.lookup(path)?;
        let keys = if m.is_dir {
            Vec::new()
        } else {
            self.file_keys(m.id, 0)
        };
        for k in &keys {
            self.wait_io(*k)?;
        }
        if keys
            .iter()
            .any(|k| self.states.pin_count(self.pages[k].frame) > 0)
        {
            return Err(Error::Busy);
        }
        self.fs.remove(path)?;
        if !m.is_dir {
            for k in keys {
                self.remove_page(k);
                self.stats.truncated_pages += 1;
            }
            self.env.invalidate_file(m.id, 0);
            self.files.remove(&m.id);
        }
        Ok(())
    }

    pub(crate) fn file_keys(&self, file: FileId, from: PageIndex) -> Vec<Key> {
        self.pages
            .range((file, from)..=(file, PageIndex::MAX))
            .map(|(k, _)| *k)
            .collect()
    }
}
