//! The storage stack: virtio-blk, FAT32 and the page cache, wired to the
//! frame table, the CMA areas (lending) and cleancache (the GCMA pools).
//!
//! Rules:
//! - The page cache lives in [`areas::MM`](crate::areas::MM) next to the
//!   areas, under the same lock: a contiguous allocation may migrate
//!   page-cache pages (CMA) and every page-cache miss or eviction may touch
//!   cleancache (GCMA). [`with`] takes that lock.
//! - Page state lives in the frame descriptors (`FrameDescStates`).
//! - Page frames ([`KernelPages`]) come from the buddy up to an ordinary
//!   quota; beyond it, when CMA lending is on, from frames the CMA areas lend
//!   (movable pages, as Linux's MIGRATE_CMA pageblocks serve movable
//!   allocations). Lent frames go back to their area when the page cache
//!   frees them.
//! - Cleancache hooks ([`CcHooks`]) reach the cleancache inside the same
//!   `Mm`. Stores and restores can be switched off per run; invalidations
//!   are always forwarded, so no stale copy survives a write, truncate or
//!   delete whatever the switch says. Every key names the mount: the page
//!   cache's `init_fs` registers a new cleancache `FsId` at [`mount`], its
//!   `invalidate_fs` drops the mount's copies at [`unmount`] (also when the
//!   sync fails), so another disk, or this one rewritten, never reads them.
//! - While `Areas::alloc` runs (CMA migration), the page cache must not call
//!   back into the areas: frames freed then are queued and returned after.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use blkdev::QueueMux;
use cleancache::{Cleancache, FsId};
use contig::{Areas, PfnState};
use fat32::Fat32;
use frames::{FrameState, FrameTable, Pfn};
use pagecache::{
    CleancacheHooks, Config, FrameDescStates, FrameTableAccess, PageAllocator, PageCache,
};

use crate::areas::{MM, Mm};
use crate::mm;

/// The kernel's page cache type.
pub type Pc = PageCache<crate::storage::Disk, KernelPages, FrameDescStates<FramesHandle>, CcHooks>;

/// Set while `Areas::alloc` runs with the page cache borrowed by a migrator.
pub static IN_AREAS_ALLOC: AtomicBool = AtomicBool::new(false);

/// The frame table, for the page cache (taken inside the MM lock).
pub struct FramesHandle;

impl FrameTableAccess for FramesHandle {
    fn with_table<R>(&self, f: impl FnOnce(&mut FrameTable<'_>) -> R) -> R {
        mm::with_frames(|t| f(t))
    }
}

/// Page-cache frames: ordinary memory up to a quota, then CMA-lent frames.
pub struct KernelPages {
    areas: *mut Areas<Cleancache>,
    /// Most buddy frames held for file pages.
    pub ordinary_limit: usize,
    /// Borrow frames from the CMA areas once the quota is used.
    pub cma_lending: bool,
    pub ordinary_out: usize,
    pub lent_out: usize,
    deferred: Vec<u64>,
}

// SAFETY: `areas` points into the static MM, only dereferenced while the MM
// lock is held (every page-cache call happens under it).
unsafe impl Send for KernelPages {}

impl KernelPages {
    fn areas(&mut self) -> &mut Areas<Cleancache> {
        assert!(
            !IN_AREAS_ALLOC.load(Ordering::Relaxed),
            "page cache reached the areas during Areas::alloc"
        );
        // SAFETY: the pointer is the `areas` field of the static MM; the MM
        // lock is held by whoever called into the page cache, and no
        // reference to the areas is live outside Areas::alloc (checked).
        unsafe { &mut *self.areas }
    }

    /// Returns frames freed while `Areas::alloc` ran.
    pub fn return_deferred(&mut self) {
        if IN_AREAS_ALLOC.load(Ordering::Relaxed) {
            return;
        }
        while let Some(pfn) = self.deferred.pop() {
            self.give_back(pfn);
        }
    }

    fn give_back(&mut self, pfn: u64) {
        let lent = matches!(self.areas().pfn_state(pfn), Some((_, PfnState::Lent)));
        if lent {
            let _ = mm::with_frames(|t| t.set_state(Pfn(pfn), FrameState::ReservedArea));
            if self.areas().return_page(pfn).is_ok() {
                self.lent_out -= 1;
            }
        } else if mm::with_frames(|t| t.free(Pfn(pfn), 0)).is_ok() {
            self.ordinary_out = self.ordinary_out.saturating_sub(1);
        }
    }

    /// A buddy frame for a migration target, outside the quota (the page
    /// cache trims back to its budget on its next allocations).
    pub fn take_ordinary(&mut self) -> Option<pagecache::Frame> {
        let p = mm::with_frames(|t| t.alloc(0, FrameState::PageCache)).ok()?;
        self.ordinary_out += 1;
        pagecache::Frame::from_addr(p.addr() as usize)
    }
}

// SAFETY: frames come from the buddy (each handed out once until freed) or
// from a CMA area's lend_page (each lent once until returned); both are
// identity-mapped RAM used by nobody else while the page cache holds them.
unsafe impl PageAllocator for KernelPages {
    fn alloc_page(&mut self) -> Option<pagecache::Frame> {
        self.return_deferred();
        if self.ordinary_out < self.ordinary_limit
            && let Ok(p) = mm::with_frames(|t| t.alloc(0, FrameState::PageCache))
        {
            self.ordinary_out += 1;
            return pagecache::Frame::from_addr(p.addr() as usize);
        }
        if !self.cma_lending || IN_AREAS_ALLOC.load(Ordering::Relaxed) {
            return None;
        }
        let pfn = self.areas().lend_page()?;
        if mm::with_frames(|t| t.set_state(Pfn(pfn), FrameState::PageCache)).is_err() {
            let _ = self.areas().return_page(pfn);
            return None;
        }
        self.lent_out += 1;
        pagecache::Frame::from_addr((pfn << frames::PAGE_SHIFT) as usize)
    }

    fn free_page(&mut self, frame: pagecache::Frame) {
        let pfn = frame.addr() as u64 >> frames::PAGE_SHIFT;
        if IN_AREAS_ALLOC.load(Ordering::Relaxed) {
            self.deferred.push(pfn);
            return;
        }
        self.return_deferred();
        self.give_back(pfn);
    }
}

/// Cleancache hooks into the GCMA pools.
pub struct CcHooks {
    cc: *mut Cleancache,
    /// This mount's identity in cleancache (from `init_fs`).
    fs: Option<FsId>,
    /// Store evicted pages and restore them on misses.
    pub enabled: bool,
}

// SAFETY: as KernelPages: `cc` points into the static MM and is used only
// under the MM lock.
unsafe impl Send for CcHooks {}

impl CcHooks {
    fn cc(&mut self) -> &mut Cleancache {
        assert!(
            !IN_AREAS_ALLOC.load(Ordering::Relaxed),
            "page cache reached cleancache during Areas::alloc"
        );
        // SAFETY: see KernelPages::areas.
        unsafe { &mut *self.cc }
    }
}

impl CleancacheHooks for CcHooks {
    fn init_fs(&mut self, volume: u32) {
        self.invalidate_fs();
        self.fs = Some(self.cc().register_fs(volume));
    }

    fn invalidate_fs(&mut self) {
        if let Some(fs) = self.fs.take() {
            let dropped = self.cc().invalidate_fs(fs);
            log::debug!("cleancache: {fs} unmounted, {dropped} copies dropped");
        }
    }

    fn put_page(&mut self, file: u64, index: u32, data: &[u8; 4096]) {
        if self.enabled
            && let Some(fs) = self.fs
        {
            self.cc().put_page(fs, file, index, data);
        }
    }

    fn get_page(&mut self, file: u64, index: u32, out: &mut [u8; 4096]) -> bool {
        match self.fs {
            Some(fs) if self.enabled => self.cc().get_page(fs, file, index, out),
            _ => false,
        }
    }

    fn invalidate_page(&mut self, file: u64, index: u32) {
        if let Some(fs) = self.fs {
            self.cc().invalidate_page(fs, file, index);
        }
    }

    fn invalidate_file(&mut self, file: u64, from: u32) {
        if let Some(fs) = self.fs {
            self.cc().invalidate_file(fs, file, from);
        }
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
}

impl core::fmt::Display for MountError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MountError::NoDisk => write!(f, "no block device"),
            MountError::Fs(e) => write!(f, "{e}"),
        }
    }
}

/// Mounts the FAT32 filesystem on the block device and starts a page cache
/// with `setup`. Takes the device from `storage::BLOCK`.
pub fn mount(setup: Setup) -> Result<(), MountError> {
    // Check the boot sector first, so that a disk without FAT32 stays
    // available as a raw device (mounting consumes it).
    {
        use blkdev::BlockDevice;
        let mut guard = crate::storage::BLOCK.lock();
        let dev = guard.as_mut().ok_or(MountError::NoDisk)?;
        let mut bs = [0u8; blkdev::SECTOR_SIZE];
        dev.read_sectors(0, &mut bs)
            .map_err(|e| MountError::Fs(fat32::FsError::Device(e)))?;
        fat32::parse_boot_sector(&bs, dev.sector_count()).map_err(MountError::Fs)?;
    }
    let dev = crate::storage::BLOCK
        .lock()
        .take()
        .ok_or(MountError::NoDisk)?;
    let fs = Fat32::mount(QueueMux::new(dev)).map_err(MountError::Fs)?;
    let mut guard = MM.lock();
    let m: &mut Mm = &mut guard;
    let areas_ptr: *mut Areas<Cleancache> = &mut m.areas;
    let cc_ptr: *mut Cleancache = m.areas.backend_mut();
    let pages = KernelPages {
        areas: areas_ptr,
        ordinary_limit: setup.ordinary_pages,
        cma_lending: setup.cma_lending,
        ordinary_out: 0,
        lent_out: 0,
        deferred: Vec::new(),
    };
    let hooks = CcHooks {
        cc: cc_ptr,
        fs: None,
        enabled: setup.cleancache,
    };
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
    let pc = PageCache::new(fs, pages, FrameDescStates::new(FramesHandle), hooks, cfg);
    m.pc = Some(pc);
    Ok(())
}

/// Runs `f` with the page cache (under the MM lock); None if not mounted.
pub fn with<R>(f: impl FnOnce(&mut Pc) -> R) -> Option<R> {
    let mut guard = MM.lock();
    guard.pc.as_mut().map(f)
}

/// Writes back everything, unmounts and returns the device to
/// `storage::BLOCK`.
pub fn unmount() -> Result<(), pagecache::Error> {
    let pc = MM.lock().pc.take();
    let Some(pc) = pc else { return Ok(()) };
    let (fs, ..) = pc.unmount()?;
    let mux = fs.unmount().map_err(pagecache::Error::Fs)?;
    *crate::storage::BLOCK.lock() = Some(mux.into_inner());
    Ok(())
}
