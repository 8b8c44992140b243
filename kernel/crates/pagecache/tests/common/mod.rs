//! Test doubles shared by the page-cache tests: a RAM disk that logs
//! completed requests and can hold completions back, and a recording
//! cleancache stand-in (optionally storing pages, exclusively, like the real
//! one) writing to the same event log so the order of device writes and
//! hook calls can be checked.
#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use blkdev::{BlockDevice, BlockError, Completion, DevStats, Op, QueueMux, RamDisk, Request};
use fat32::{Fat32, FormatOptions};
use pagecache::{
    CleancacheHooks, Config, FileId, HeapPageAllocator, LocalPageStates, PAGE_SIZE, PageCache,
    PageIndex,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ev {
    DevRead(u64, u64),
    DevWrite(u64, u64),
    Put(FileId, PageIndex),
    Get(FileId, PageIndex, bool),
    InvalPage(FileId, PageIndex),
    InvalFile(FileId, PageIndex),
    InitFs(u32),
    InvalFs,
}

pub type Log = Rc<RefCell<Vec<Ev>>>;

pub struct TestDisk {
    pub inner: RamDisk,
    pub log: Log,
    /// While true, `poll` returns nothing (requests stay in flight); `wait`
    /// still completes requests.
    pub hold: bool,
    reqs: HashMap<u64, (Op, u64, u64)>,
}

impl TestDisk {
    pub fn new(inner: RamDisk, log: Log) -> Self {
        TestDisk {
            inner,
            log,
            hold: false,
            reqs: HashMap::new(),
        }
    }
    fn note(&mut self, c: Completion) -> Completion {
        if let Some((op, s, n)) = self.reqs.remove(&c.tag)
            && c.result.is_ok()
        {
            match op {
                Op::Read => self.log.borrow_mut().push(Ev::DevRead(s, n)),
                Op::Write => self.log.borrow_mut().push(Ev::DevWrite(s, n)),
                Op::Flush => {}
            }
        }
        c
    }
}

impl BlockDevice for TestDisk {
    fn sector_count(&self) -> u64 {
        self.inner.sector_count()
    }
    fn queue_depth(&self) -> usize {
        self.inner.queue_depth()
    }
    fn in_flight(&self) -> usize {
        self.inner.in_flight()
    }
    // SAFETY (contract): BlockDevice::submit's; the body keeps it.
    unsafe fn submit(&mut self, req: Request) -> Result<(), BlockError> {
        // SAFETY: forwarded with the caller's guarantee.
        unsafe { self.inner.submit(req)? };
        self.reqs
            .insert(req.tag, (req.op, req.sector, req.sectors()));
        Ok(())
    }
    fn poll(&mut self) -> Option<Completion> {
        if self.hold {
            return None;
        }
        let c = self.inner.poll()?;
        Some(self.note(c))
    }
    fn wait(&mut self) -> Option<Completion> {
        let c = self.inner.poll()?;
        Some(self.note(c))
    }
    fn stats(&self) -> DevStats {
        self.inner.stats()
    }
}

/// Recording cleancache stand-in. With `store`, keeps put pages and serves
/// `get_page` from them exclusively, like the real cleancache.
pub struct Recorder {
    pub log: Log,
    pub store: bool,
    pub pages: BTreeMap<(FileId, PageIndex), Box<[u8; PAGE_SIZE as usize]>>,
}

impl Recorder {
    pub fn new(log: Log, store: bool) -> Self {
        Recorder {
            log,
            store,
            pages: BTreeMap::new(),
        }
    }
}

impl CleancacheHooks for Recorder {
    fn init_fs(&mut self, volume: u32) {
        self.log.borrow_mut().push(Ev::InitFs(volume));
        self.pages.clear();
    }
    fn invalidate_fs(&mut self) {
        self.log.borrow_mut().push(Ev::InvalFs);
        self.pages.clear();
    }
    fn put_page(&mut self, file: FileId, index: PageIndex, data: &[u8; PAGE_SIZE as usize]) {
        self.log.borrow_mut().push(Ev::Put(file, index));
        if self.store {
            self.pages.insert((file, index), Box::new(*data));
        }
    }
    fn get_page(
        &mut self,
        file: FileId,
        index: PageIndex,
        out: &mut [u8; PAGE_SIZE as usize],
    ) -> bool {
        let hit = match self.pages.remove(&(file, index)) {
            Some(p) => {
                out.copy_from_slice(&p[..]);
                true
            }
            None => false,
        };
        self.log.borrow_mut().push(Ev::Get(file, index, hit));
        hit
    }
    fn invalidate_page(&mut self, file: FileId, index: PageIndex) {
        self.log.borrow_mut().push(Ev::InvalPage(file, index));
        self.pages.remove(&(file, index));
    }
    fn invalidate_file(&mut self, file: FileId, from: PageIndex) {
        self.log.borrow_mut().push(Ev::InvalFile(file, from));
        self.pages.retain(|k, _| !(k.0 == file && k.1 >= from));
    }
}

pub type Cache = PageCache<TestDisk, (HeapPageAllocator, Recorder), LocalPageStates>;

/// A freshly formatted 34 MiB FAT32 RAM disk (512-byte clusters), with
/// `files` created through the filesystem directly: (path, content).
pub fn disk_with(files: &[(&str, Vec<u8>)]) -> RamDisk {
    disk_with_clusters(files, 1)
}

/// As [`disk_with`], with `spc` sectors per cluster (16: clusters larger
/// than a page).
pub fn disk_with_clusters(files: &[(&str, Vec<u8>)], spc: u8) -> RamDisk {
    let mut disk = RamDisk::new(34 * 2048);
    let opts = FormatOptions {
        sectors_per_cluster: spc,
        ..FormatOptions::default()
    };
    fat32::format(&mut disk, &opts).unwrap();
    let mut fs = Fat32::mount(disk).unwrap();
    for (path, data) in files {
        let id = fs.create(path).unwrap();
        fs.write_at(id, 0, data).unwrap();
    }
    fs.unmount().unwrap()
}

pub fn cache_on(disk: RamDisk, cfg: Config, store: bool) -> (Cache, Log) {
    let log: Log = Rc::new(RefCell::new(Vec::new()));
    // Fresh counters: the device identity in `check` starts at mount.
    let disk = RamDisk::from_vec(disk.into_vec());
    let dev = QueueMux::new(TestDisk::new(disk, log.clone()));
    let fs = Fat32::mount(dev).unwrap();
    let pc = PageCache::new(
        fs,
        (HeapPageAllocator::new(), Recorder::new(log.clone(), store)),
        LocalPageStates::new(),
        cfg,
    );
    (pc, log)
}

pub fn cfg(budget: usize, ra_init: u32, ra_max: u32) -> Config {
    Config {
        budget_pages: budget,
        ra_init_pages: ra_init,
        ra_max_pages: ra_max,
        writeback_batch: 4,
    }
}

/// Checks every counter invariant, including the device identity (only
/// when nothing is in flight).
pub fn check(pc: &Cache) {
    pc.check_stats().unwrap();
    let dev = pc.fs().device();
    if dev.in_flight() == 0 {
        let d = dev.stats();
        let f = pc.fs().stats();
        let s = pc.stats();
        assert_eq!(
            d.sectors_read,
            s.sectors_read + f.meta_sectors_read + f.direct_sectors_read,
            "device sectors read"
        );
        assert_eq!(
            d.sectors_written,
            s.sectors_written + f.meta_sectors_written + f.direct_sectors_written,
            "device sectors written"
        );
    }
}

pub fn content(seed: u64, path: &str, len: usize) -> Vec<u8> {
    let mut v = vec![0; len];
    testdata::Content::new(seed, path).fill(0, &mut v);
    v
}

pub fn events(log: &Log) -> Vec<Ev> {
    log.borrow().clone()
}

pub fn take_events(log: &Log) -> Vec<Ev> {
    std::mem::take(&mut *log.borrow_mut())
}
