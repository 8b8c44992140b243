//! Mounting: the FAT32 filesystem on the block device, and the page cache
//! over it in the `KernelPages` environment.
//!
//! Rules:
//! - [`mount`] takes the device from `storage::BLOCK` (a disk without
//!   FAT32 stays there, as a raw device), mounts FAT32 outside the memsys
//!   lock, then, in one lock hold, moves `KernelPages` into a new page
//!   cache (`init_fs`: a new cleancache mount).
//! - [`unmount`] writes everything back and moves `KernelPages` out of the
//!   page cache in one lock hold (the page cache owns the areas, so nobody
//!   may see it half gone); on a failed write-back the page cache stays
//!   mounted, under a new cleancache mount. The FAT32 sync and the device's
//!   return to `storage::BLOCK` run after the lock is released.
//! - Page state lives in the frame descriptors (`FrameDescStates`).

use alloc::boxed::Box;

use blkdev::QueueMux;
use fat32::Fat32;
use frames::FrameTable;
use pagecache::{Config, Detachable, FrameDescStates, FrameTableAccess, PageCache};

use super::{KernelPages, MemSys, Owner, lock};
use crate::{mm, storage};

/// The kernel's page cache type.
pub type Pc = PageCache<storage::Disk, Detachable<KernelPages>, FrameDescStates<FramesHandle>>;

/// The frame table, for the page cache (taken inside the memsys lock).
pub struct FramesHandle;

impl FrameTableAccess for FramesHandle {
    fn with_table<R>(&self, f: impl FnOnce(&mut FrameTable<'_>) -> R) -> R {
        mm::with_frames(|t| f(t))
    }
}

/// How the page cache is set up.
#[derive(Clone, Copy, Debug)]
pub struct Setup {
    /// Pages the page cache may hold (budget).
    pub budget_pages: usize,
    /// Of those, pages from ordinary memory; the rest are CMA-lent.
    pub ordinary_pages: usize,
    pub cma_lending: bool,
    pub cleancache: bool,
    pub readahead_max: u32,
}

/// Why storage is not available.
#[derive(Debug)]
pub enum MountError {
    NoDisk,
    Fs(fat32::FsError),
    /// A filesystem is mounted already.
    Mounted,
}

impl core::fmt::Display for MountError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MountError::NoDisk => write!(f, "no block device"),
            MountError::Fs(e) => write!(f, "{e}"),
            MountError::Mounted => write!(f, "a filesystem is mounted already"),
        }
    }
}

/// Mounts the FAT32 filesystem on the block device and starts a page cache
/// with `setup`. Takes the device from `storage::BLOCK`.
pub fn mount(setup: Setup) -> Result<(), MountError> {
    if lock().page_cache().is_some() {
        return Err(MountError::Mounted);
    }
    // Check the boot sector first, so that a disk without FAT32 stays
    // available as a raw device (mounting consumes it).
    {
        use blkdev::BlockDevice;
        let mut guard = storage::BLOCK.lock();
        let dev = guard.as_mut().ok_or(MountError::NoDisk)?;
        let mut bs = [0u8; blkdev::SECTOR_SIZE];
        dev.read_sectors(0, &mut bs)
            .map_err(|e| MountError::Fs(fat32::FsError::Device(e)))?;
        fat32::parse_boot_sector(&bs, dev.sector_count()).map_err(MountError::Fs)?;
    }
    let dev = storage::BLOCK.lock().take().ok_or(MountError::NoDisk)?;
    let fs = Fat32::mount(QueueMux::new(dev)).map_err(MountError::Fs)?;
    let cfg = Config {
        budget_pages: setup.budget_pages,
        ra_init_pages: if setup.readahead_max > 1 {
            4.min(setup.readahead_max)
        } else {
            0
        },
        ra_max_pages: setup.readahead_max,
        ..Config::default()
    };
    lock().mount(fs, setup, cfg)
}

impl MemSys {
    fn mount(
        &mut self,
        fs: Fat32<QueueMux<storage::Disk>>,
        setup: Setup,
        cfg: Config,
    ) -> Result<(), MountError> {
        match core::mem::replace(&mut self.owner, Owner::Moving) {
            Owner::Unmounted(mut env) => {
                env.configure(setup.ordinary_pages, setup.cma_lending, setup.cleancache);
                let states = FrameDescStates::new(FramesHandle);
                let pc = PageCache::new(fs, Detachable::new(env), states, cfg);
                self.owner = Owner::Mounted(Box::new(pc));
                Ok(())
            }
            other => {
                // Mounted in the meantime: `mount` checked first; this
                // mount's device is dropped with its filesystem.
                self.owner = other;
                Err(MountError::Mounted)
            }
        }
    }
}

/// Writes back everything, unmounts and returns the device to
/// `storage::BLOCK`. If the write-back fails the page cache stays mounted.
pub fn unmount() -> Result<(), pagecache::Error> {
    let fs = {
        let mut m = lock();
        let pc = match core::mem::replace(&mut m.owner, Owner::Moving) {
            Owner::Mounted(pc) => pc,
            other => {
                m.owner = other;
                return Ok(());
            }
        };
        match pc.try_unmount() {
            Ok((fs, env, _states)) => {
                let env = env
                    .into_inner()
                    .expect("KernelPages attached outside a CMA pass");
                m.owner = Owner::Unmounted(env);
                fs
            }
            Err((e, pc)) => {
                m.owner = Owner::Mounted(Box::new(pc));
                return Err(e);
            }
        }
    };
    let mux = fs.unmount().map_err(pagecache::Error::Fs)?;
    *storage::BLOCK.lock() = Some(mux.into_inner());
    Ok(())
}
