//! The page cache over the block layer's fault wrapper: a read error after
//! a cleancache miss, a failed read-ahead, a failed write-back and a device
//! that stops answering. Each is a clean error to the caller and loses or
//! corrupts nothing: no failed page is left valid or handed to cleancache,
//! a failed write-back stays dirty and a later one reaches the disk (read
//! back raw from the RAM disk).

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use blkdev::{BlockError, FaultyDisk, QueueMux, RamDisk, SECTOR_SIZE};
use common::*;
use fat32::Fat32;
use pagecache::{Error, HeapPageAllocator, LocalPageStates, PAGE_SIZE, PageCache, PageFlags};

const P: usize = PAGE_SIZE as usize;

type FCache = PageCache<FaultyDisk<RamDisk>, (HeapPageAllocator, Recorder), LocalPageStates>;

/// A page cache over `disk` behind the fault wrapper, with a storing
/// cleancache stand-in.
fn faulty_cache(disk: RamDisk, ra: u32) -> (FCache, Log) {
    let log: Log = Rc::new(RefCell::new(Vec::new()));
    let fs = Fat32::mount(QueueMux::new(FaultyDisk::new(disk))).unwrap();
    let pc = PageCache::new(
        fs,
        (HeapPageAllocator::new(), Recorder::new(log.clone(), true)),
        LocalPageStates::new(),
        cfg(64, ra, ra),
    );
    (pc, log)
}

/// 4 KiB clusters: a page is one run of 8 sectors.
fn disk(files: &[(&str, Vec<u8>)]) -> RamDisk {
    disk_with_clusters(files, 8)
}

/// The first sector of page `idx` of file `id`, from a copy of the disk.
fn page_sector(pc: &FCache, id: u64, idx: u32) -> u64 {
    let bytes = pc.fs().device().inner().inner().as_bytes().to_vec();
    let mut fs = Fat32::mount(RamDisk::from_vec(bytes)).unwrap();
    let runs = fs.bmap(id, idx).unwrap().runs().to_vec();
    assert_eq!(runs.len(), 1, "a page of a 4 KiB-cluster file is one run");
    runs[0].0
}

/// Page `idx` as it is on the disk, read raw from the RAM disk.
fn raw_page(pc: &FCache, id: u64, idx: u32) -> Vec<u8> {
    let s = page_sector(pc, id, idx) as usize * SECTOR_SIZE;
    pc.fs().device().inner().inner().as_bytes()[s..s + P].to_vec()
}

fn dev(pc: &mut FCache) -> &mut FaultyDisk<RamDisk> {
    pc.device_mut()
}

#[test]
fn a_read_error_after_a_cleancache_miss_leaves_nothing_cached() {
    let data = content(3, "a", 4 * P);
    let (mut pc, log) = faulty_cache(disk(&[("/a", data.clone())]), 0);
    let f = pc.open("/a").unwrap();
    let bad = page_sector(&pc, f, 1) + 3;
    dev(&mut pc).fail_read(bad);
    let mut b = vec![0u8; P];
    let r = pc.read(f, P as u64, &mut b);
    assert_eq!(
        r,
        Err(Error::Device(BlockError::Io {
            sector: bad,
            status: 1
        }))
    );
    // Cleancache was asked first and missed; the half-filled page is gone.
    assert!(events(&log).contains(&Ev::Get(f, 1, false)));
    assert!(pc.page_frame(f, 1).is_none());
    assert_eq!(pc.stats().read_errors, 1);
    check_stats(&pc);
    dev(&mut pc).clear();
    assert_eq!(pc.read(f, P as u64, &mut b), Ok(P));
    assert_eq!(b, data[P..2 * P]);
    assert_eq!(b, raw_page(&pc, f, 1));
    check_stats(&pc);
}

#[test]
fn a_failed_readahead_page_is_never_handed_to_cleancache() {
    let data = content(4, "b", 8 * P);
    let (mut pc, log) = faulty_cache(disk(&[("/b", data.clone())]), 4);
    let f = pc.open("/b").unwrap();
    let bad = page_sector(&pc, f, 2) + 3;
    dev(&mut pc).fail_read(bad);
    // Page 0 on demand, pages 1..3 read ahead; page 2 fails part way.
    let mut b = vec![0u8; P];
    pc.read(f, 0, &mut b).unwrap();
    assert_eq!(b, data[..P]);
    pc.sync().unwrap();
    let flags = pc.page_flags(f, 2).unwrap();
    assert!(flags.contains(PageFlags::ERROR) && !flags.contains(PageFlags::UPTODATE));
    assert!(pc.drop_clean_pages() >= 4);
    let ev = events(&log);
    assert!(ev.contains(&Ev::Put(f, 1)) && ev.contains(&Ev::Put(f, 3)));
    assert!(
        !ev.contains(&Ev::Put(f, 2)),
        "the failed page went to cleancache"
    );
    assert!(!pc.hooks().pages.contains_key(&(f, 2)));
    dev(&mut pc).clear();
    pc.read(f, 2 * P as u64, &mut b).unwrap();
    assert_eq!(b, data[2 * P..3 * P]);
    assert_eq!(b, raw_page(&pc, f, 2));
    check_stats(&pc);
}

#[test]
fn a_failed_writeback_stays_dirty_and_a_later_one_reaches_the_disk() {
    let old = content(5, "c", 4 * P);
    let (mut pc, _log) = faulty_cache(disk(&[("/c", old.clone())]), 0);
    let f = pc.open("/c").unwrap();
    let new = content(6, "c", 4 * P);
    pc.write(f, 0, &new).unwrap();
    let bad = page_sector(&pc, f, 1) + 3;
    dev(&mut pc).fail_write(bad);
    assert_eq!(
        pc.sync(),
        Err(Error::Device(BlockError::Io {
            sector: bad,
            status: 1
        }))
    );
    assert_eq!(pc.dirty_pages(), 1);
    let flags = pc.page_flags(f, 1).unwrap();
    assert!(flags.contains(PageFlags::DIRTY | PageFlags::ERROR));
    // Neither eviction nor reclaim drops it; reads see the new bytes.
    pc.drop_clean_pages();
    pc.shrink(usize::MAX).unwrap();
    assert!(pc.page_frame(f, 1).is_some());
    let mut b = vec![0u8; P];
    pc.read(f, P as u64, &mut b).unwrap();
    assert_eq!(b, new[P..2 * P]);
    // On the disk: the other pages are new; page 1 is new for the three
    // sectors before the bad one and old from it on.
    for i in [0, 2, 3] {
        assert_eq!(
            raw_page(&pc, f, i),
            new[i as usize * P..(i as usize + 1) * P]
        );
    }
    let raw = raw_page(&pc, f, 1);
    let cut = 3 * SECTOR_SIZE;
    assert_eq!(raw[..cut], new[P..P + cut]);
    assert_eq!(raw[cut..], old[P + cut..2 * P]);
    dev(&mut pc).clear();
    pc.sync().unwrap();
    assert_eq!(pc.dirty_pages(), 0);
    assert_eq!(raw_page(&pc, f, 1), new[P..2 * P]);
    check_stats(&pc);
    // A fresh mount of the disk reads the new bytes.
    let (fs, ..) = pc.unmount().unwrap();
    let bytes = fs.device().inner().inner().as_bytes().to_vec();
    let mut fs = Fat32::mount(RamDisk::from_vec(bytes)).unwrap();
    let id = fs.lookup("/c").unwrap().id;
    let mut all = vec![0u8; 4 * P];
    fs.read_at(id, 0, &mut all).unwrap();
    assert_eq!(all, new);
}

#[test]
fn a_device_that_stops_answering_times_out_reads_and_writebacks_cleanly() {
    let data = content(7, "d", 4 * P);
    let (mut pc, _log) = faulty_cache(disk(&[("/d", data.clone())]), 4);
    let f = pc.open("/d").unwrap();
    dev(&mut pc).stall();
    let mut b = vec![0u8; P];
    let r = pc.read(f, 0, &mut b);
    assert!(
        matches!(r, Err(Error::Device(BlockError::Timeout { .. }))),
        "{r:?}"
    );
    assert!(pc.page_frame(f, 0).is_none());
    // The read-ahead the device swallowed times out as well: no page valid.
    pc.sync().unwrap();
    for i in 0..4 {
        if let Some(fl) = pc.page_flags(f, i) {
            assert!(!fl.contains(PageFlags::UPTODATE), "page {i}: {fl:?}");
        }
    }
    check_stats(&pc);
    dev(&mut pc).resume();
    for i in 0..4 {
        pc.read(f, i as u64 * P as u64, &mut b).unwrap();
        assert_eq!(b, data[i * P..(i + 1) * P]);
    }
    // Write-back into a stalled device: the error, pages stay dirty.
    let new = content(8, "d", 2 * P);
    pc.write(f, 0, &new).unwrap();
    dev(&mut pc).stall();
    assert!(matches!(
        pc.sync(),
        Err(Error::Device(BlockError::Timeout { .. }))
    ));
    assert_eq!(pc.dirty_pages(), 2);
    assert_eq!(
        raw_page(&pc, f, 0),
        data[..P],
        "a swallowed write reached the disk"
    );
    dev(&mut pc).resume();
    pc.sync().unwrap();
    assert_eq!(pc.dirty_pages(), 0);
    assert_eq!(raw_page(&pc, f, 0), new[..P]);
    assert_eq!(raw_page(&pc, f, 1), new[P..]);
    assert!(pc.fs().device().inner().timeouts >= 3);
    check_stats(&pc);
}

fn check_stats(pc: &FCache) {
    pc.check_stats().unwrap();
}
