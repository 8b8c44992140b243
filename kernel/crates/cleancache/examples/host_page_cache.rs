//! cleancache behind a small page cache that runs on the host: what a
//! kernel supplies (pool memory, an observer that keeps its frame table in
//! sync, the page cache's put/get/invalidate calls, a mount identity) and
//! what GCMA does to the pool (a contiguous range taken back at once, then
//! given back).
//!
//! The "disk" is a map of file pages in this process, the page cache holds
//! 8 pages in LRU order, the pool is 32 page-aligned pages of host memory.
//! Run it with
//! `cargo run -p cleancache --example host_page_cache --target x86_64-unknown-linux-gnu`
//! (the workspace builds for aarch64-unknown-none by default). Every read
//! is compared with the disk's bytes and every counter with what the steps
//! imply; a wrong one panics (non-zero exit).

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::collections::{BTreeMap, VecDeque};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

use cleancache::{
    Cleancache, FileId, FsId, Observer, PAGE_SIZE, PageBytes, PageIndex, PageState, Pfn, PoolError,
};

/// Where the pool's frames sit (pfns of an imaginary machine).
const POOL_PFN: Pfn = Pfn(0x4_0000);
const POOL_PAGES: usize = 32;
/// Pages the page cache holds before it evicts.
const CACHE_PAGES: usize = 8;
/// Pages per file on the disk.
const FILE_PAGES: u32 = 24;

type Page = PageBytes;

/// What the kernel's frame descriptor says of a pool frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Frame {
    /// Reserved for GCMA, holding nothing.
    Idle,
    /// Holding a cleancache copy.
    Cleancache,
    /// Taken back: a contiguous allocation's.
    Allocated,
}

/// The frame table of the pool's frames, written only by the observer.
#[derive(Clone)]
struct FrameTable(Arc<Mutex<Vec<Frame>>>);

impl FrameTable {
    fn set(&self, first: Pfn, count: usize, state: PageState) {
        let frame = match state {
            PageState::Free => Frame::Idle,
            PageState::Cached { .. } => Frame::Cleancache,
            PageState::TakenBack => Frame::Allocated,
        };
        let start = (first - POOL_PFN) as usize;
        self.0.lock().unwrap()[start..start + count].fill(frame);
    }
    fn count(&self, frame: Frame) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|f| **f == frame)
            .count()
    }
}

impl Observer for FrameTable {
    fn on_page(&mut self, pfn: Pfn, state: PageState) {
        self.set(pfn, 1, state);
    }
    fn on_range(&mut self, first_pfn: Pfn, count: usize, state: PageState) {
        self.set(first_pfn, count, state);
    }
}

/// The backing store: every page of every file, and how often it was read.
struct Disk {
    files: BTreeMap<FileId, Vec<Page>>,
    reads: u64,
}

impl Disk {
    fn new(files: &[FileId]) -> Disk {
        let page = |file: FileId, index: u32| -> Page {
            core::array::from_fn(|i| (file as usize * 13 + index as usize * 5 + i) as u8)
        };
        let files = files
            .iter()
            .map(|&f| (f, (0..FILE_PAGES).map(|i| page(f, i)).collect()))
            .collect();
        Disk { files, reads: 0 }
    }
    fn read(&mut self, file: FileId, index: PageIndex) -> Page {
        self.reads += 1;
        self.files[&file][index as usize]
    }
}

/// One mount's page cache: clean pages only (writes go through to the
/// disk), evicted least recently used first into cleancache.
struct PageCache {
    fs: FsId,
    pages: BTreeMap<(FileId, PageIndex), Box<Page>>,
    lru: VecDeque<(FileId, PageIndex)>,
    hits: u64,
}

impl PageCache {
    /// Mount: a new identity for every key of this mount.
    fn mount(cc: &mut Cleancache, volume: u32) -> PageCache {
        PageCache {
            fs: cc.register_fs(volume),
            pages: BTreeMap::new(),
            lru: VecDeque::new(),
            hits: 0,
        }
    }

    fn read(&mut self, cc: &mut Cleancache, disk: &mut Disk, file: FileId, index: u32) -> Page {
        let key = (file, index);
        if let Some(page) = self.pages.get(&key) {
            self.hits += 1;
            self.lru.retain(|k| *k != key);
            self.lru.push_back(key);
            return **page;
        }
        // A miss: cleancache before the device (an exclusive get).
        let mut page = Box::new([0u8; PAGE_SIZE as usize]);
        if !cc.get_page(self.fs, file, index, &mut page) {
            *page = disk.read(file, index);
        }
        if self.pages.len() == CACHE_PAGES {
            let old = self.lru.pop_front().expect("a full cache has an LRU page");
            let data = self.pages.remove(&old).expect("LRU names cached pages");
            // Evicting a clean page: offer cleancache a copy.
            cc.put_page(self.fs, old.0, old.1, &data);
        }
        let data = *page;
        self.pages.insert(key, page);
        self.lru.push_back(key);
        data
    }

    /// A whole-page overwrite that skips the read: cleancache's copy (if
    /// any) is stale from now on, so it goes before the new data lands.
    fn overwrite(&mut self, cc: &mut Cleancache, disk: &mut Disk, file: FileId, index: u32) {
        cc.invalidate_page(self.fs, file, index);
        let new: Page = [0xee; PAGE_SIZE as usize];
        disk.files.get_mut(&file).unwrap()[index as usize] = new;
        if let Some(page) = self.pages.get_mut(&(file, index)) {
            **page = new;
        }
    }

    /// Unmount: the page cache goes, and so does every copy of this mount.
    fn unmount(self, cc: &mut Cleancache) -> usize {
        cc.invalidate_fs(self.fs)
    }
}

/// Reads every page of `files` through the page cache and checks each
/// against the disk.
fn read_all(pc: &mut PageCache, cc: &mut Cleancache, disk: &mut Disk, files: &[FileId]) {
    for &file in files {
        for index in 0..FILE_PAGES {
            let got = pc.read(cc, disk, file, index);
            assert!(
                got == disk.files[&file][index as usize],
                "file {file} page {index}: not the disk's bytes"
            );
        }
    }
}

fn main() -> Result<(), PoolError> {
    // 1. The pool: page-aligned memory the kernel hands over for good.
    let layout = Layout::from_size_align(POOL_PAGES * PAGE_SIZE as usize, PAGE_SIZE as usize)
        .expect("layout");
    // SAFETY: the layout has a non-zero size.
    let base = NonNull::new(unsafe { alloc_zeroed(layout) }).expect("host memory");
    let mut cc = Cleancache::new();
    let frames = FrameTable(Arc::new(Mutex::new(vec![Frame::Idle; POOL_PAGES])));
    cc.set_observer(Some(Box::new(frames.clone())));
    // SAFETY: `base` is POOL_PAGES pages nobody else uses; it is freed only
    // after `cc` is dropped, at the end of main.
    let pool = unsafe { cc.add_pool(base, POOL_PAGES, POOL_PFN) }?;

    // 2. Mount, then read two files (48 pages) through an 8-page cache: 40
    //    evictions go to cleancache, which keeps the last 32 (CLOCK reused
    //    8 slots).
    let mut disk = Disk::new(&[1, 2]);
    let mut pc = PageCache::mount(&mut cc, 0xcafe_f00d);
    read_all(&mut pc, &mut cc, &mut disk, &[1, 2]);
    let s = cc.stats();
    assert_eq!((disk.reads, s.stored, s.evicted), (48, 40, 8));
    assert_eq!((s.cached_now, frames.count(Frame::Cleancache)), (32, 32));

    // 3. Read file 2 again: every page comes back from cleancache, none
    //    from the disk. (The scan is longer than the page cache, so each of
    //    its pages was evicted again before the scan reached it: no hit.)
    let before = disk.reads;
    read_all(&mut pc, &mut cc, &mut disk, &[2]);
    let s = cc.stats();
    assert_eq!((disk.reads - before, s.restored, pc.hits), (0, 24, 0));
    println!(
        "second read of file 2: {} pages from cleancache, 0 from disk",
        s.restored
    );

    // 4. Overwrite page 20 of file 1 (held by cleancache): the old copy is
    //    dropped first, so the read returns the new bytes.
    assert!(cc.contains(pc.fs, 1, 20));
    pc.overwrite(&mut cc, &mut disk, 1, 20);
    assert!(!cc.contains(pc.fs, 1, 20));
    assert_eq!(
        pc.read(&mut cc, &mut disk, 1, 20),
        [0xee; PAGE_SIZE as usize]
    );

    // 5. GCMA needs 16 contiguous frames: taken back at once, copies
    //    dropped, no I/O. The frames are the allocation's until given back.
    let dropped = cc.take_back_range(pool, 0, 16)?;
    assert_eq!(frames.count(Frame::Allocated), 16);
    // SAFETY: pages 0..16 of the pool are taken back: cleancache does not
    // touch them until they are given back, so they are ours.
    let buffer = unsafe { std::slice::from_raw_parts_mut(base.as_ptr(), 16 * PAGE_SIZE as usize) };
    buffer.fill(0x5a);
    read_all(&mut pc, &mut cc, &mut disk, &[1, 2]);
    assert!(
        buffer.iter().all(|b| *b == 0x5a),
        "cleancache wrote into a frame it had given up"
    );
    println!(
        "take-back of 16 frames: {dropped} copies dropped; cleancache kept to the other {} frames",
        POOL_PAGES - 16
    );
    cc.give_back_range(pool, 0, 16)?;
    assert_eq!(frames.count(Frame::Allocated), 0);

    // 6. Unmount and mount again: the new mount has a new identity, so no
    //    key of the old one can hit; a late put naming the old is refused.
    let old = pc.fs;
    let dropped = pc.unmount(&mut cc);
    assert_eq!(cc.stats().cached_now, 0);
    let rejected = cc.stats().put_rejected;
    cc.put_page(old, 1, 0, &[0; PAGE_SIZE as usize]);
    assert_eq!(cc.stats().put_rejected, rejected + 1);
    let mut pc = PageCache::mount(&mut cc, 0xcafe_f00d);
    assert_ne!(pc.fs, old);
    let before = disk.reads;
    read_all(&mut pc, &mut cc, &mut disk, &[1]);
    assert_eq!(disk.reads - before, u64::from(FILE_PAGES));
    println!(
        "unmount dropped {dropped} copies; the new mount, {}, read file 1 from disk",
        pc.fs
    );

    // 7. The bookkeeping agrees with itself and with the frame table.
    assert_eq!(cc.check_invariants(), Ok(()));
    assert_eq!(frames.count(Frame::Cleancache), cc.stats().cached_now);
    let mut lines = String::new();
    cc.write_machine(&mut lines).expect("write to a String");
    print!("{lines}");

    drop(cc);
    // SAFETY: `base` came from `alloc_zeroed` with `layout`, and its only
    // user, `cc`, is gone.
    unsafe { dealloc(base.as_ptr(), layout) };
    Ok(())
}
