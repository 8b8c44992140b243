//! Page cache over a RAM disk: hit/miss accounting, eviction order, dirty
//! pages and write-back, readahead windows, cleancache hooks, migration,
//! errors. Every test checks the counter invariants as it goes.

mod common;

use blkdev::{BlockDevice, FaultyDisk, QueueMux, RamDisk};
use common::*;
use fat32::Fat32;
use pagecache::{
    Error, Frame, HeapPageAllocator, LocalPageStates, MigrateError, NoCleancache, PAGE_SIZE,
    PageAllocator, PageCache, PageFlags, PageStateStore,
};

const P: usize = PAGE_SIZE as usize;

#[test]
fn hits_and_misses_are_counted() {
    let data = content(1, "a", 8 * P + 100);
    let (mut pc, _log) = cache_on(disk_with(&[("/a.bin", data.clone())]), cfg(64, 0, 0), false);
    let f = pc.open("/a.bin").unwrap();
    let mut b = vec![0u8; P];
    pc.read(f, 0, &mut b).unwrap();
    assert_eq!(b, data[..P]);
    let s = *pc.stats();
    assert_eq!(
        (s.hits, s.misses, s.demand_reads, s.sectors_read),
        (0, 1, 1, 8)
    );
    pc.read(f, 10, &mut b[..100]).unwrap();
    assert_eq!(b[..100], data[10..110]);
    assert_eq!((pc.stats().hits, pc.stats().misses), (1, 1));
    // A read over two pages: one hit, one miss.
    pc.read(f, P as u64 - 10, &mut b[..20]).unwrap();
    assert_eq!(b[..20], data[P - 10..P + 10]);
    assert_eq!((pc.stats().hits, pc.stats().misses), (2, 2));
    // The last, partial page: only its sector is read; the rest is zero.
    let mut t = vec![0u8; 200];
    assert_eq!(pc.read(f, 8 * P as u64, &mut t).unwrap(), 100);
    assert_eq!(t[..100], data[8 * P..]);
    assert_eq!(pc.stats().sectors_read, 8 + 8 + 1);
    check(&pc);
    // End of file and beyond.
    assert_eq!(pc.read(f, data.len() as u64, &mut t).unwrap(), 0);
    assert!(matches!(
        pc.read(f, data.len() as u64 + 1, &mut t),
        Err(Error::BeyondEof { .. })
    ));
    assert!(matches!(
        pc.open("/missing"),
        Err(Error::Fs(fat32::FsError::NotFound))
    ));
    check(&pc);
}

#[test]
fn eviction_follows_the_lru_with_second_chance() {
    let data = content(2, "b", 8 * P);
    let (mut pc, log) = cache_on(disk_with(&[("/b", data.clone())]), cfg(4, 0, 0), false);
    let f = pc.open("/b").unwrap();
    let mut b = [0u8; 1];
    for i in [0u64, 1, 2, 3, 0] {
        pc.read(f, i * P as u64, &mut b).unwrap();
    }
    // Page 0 was used twice: active.
    assert!(pc.page_flags(f, 0).unwrap().contains(PageFlags::ACTIVE));
    assert_eq!(pc.lru_order(), [(f, 1), (f, 2), (f, 3), (f, 0)]);
    take_events(&log);
    pc.read(f, 4 * P as u64, &mut b).unwrap();
    pc.read(f, 5 * P as u64, &mut b).unwrap();
    let puts: Vec<_> = events(&log)
        .into_iter()
        .filter(|e| matches!(e, Ev::Put(..)))
        .collect();
    assert_eq!(puts, [Ev::Put(f, 1), Ev::Put(f, 2)]);
    assert_eq!(pc.cached_pages(), 4);
    assert_eq!(pc.stats().evictions, 2);
    // Page 0 survived because it was active.
    assert!(pc.page_frame(f, 0).is_some());
    check(&pc);
}

#[test]
fn dirty_pages_are_written_back_before_they_are_evicted() {
    let (mut pc, log) = cache_on(disk_with(&[]), cfg(4, 0, 0), false);
    let f = pc.create("/w.bin").unwrap();
    let data = content(3, "w", 12 * P + 7);
    pc.write(f, 0, &data).unwrap();
    assert!(pc.cached_pages() <= 4);
    assert!(pc.stats().reclaim_writebacks > 0);
    check(&pc);
    // Every put page was written to its sectors before it was put.
    let evs = events(&log);
    let mut fs_pages = Vec::new();
    for (i, e) in evs.iter().enumerate() {
        if let Ev::Put(file, idx) = e {
            fs_pages.push((i, *file, *idx));
        }
    }
    assert!(!fs_pages.is_empty());
    drop(evs);
    let (mut fs, _, _) = pc.unmount().unwrap();
    let evs = events(&log);
    for (i, file, idx) in fs_pages {
        let map = fs.bmap(file, idx).unwrap();
        let (first, _) = map.runs()[0];
        let written_before = evs[..i]
            .iter()
            .any(|e| matches!(e, Ev::DevWrite(s, n) if *s <= first && first < s + n));
        assert!(written_before, "page {idx} put before it was written");
    }
    let mut back = vec![0u8; data.len()];
    fs.read_at(f, 0, &mut back).unwrap();
    assert_eq!(back, data);
}

#[test]
fn dirty_pages_are_never_dropped_when_all_pages_are_dirty() {
    // Budget 2 and a writeback batch of 4: reclaim has to wait for I/O.
    let (mut pc, _log) = cache_on(disk_with(&[]), cfg(2, 0, 0), false);
    let f = pc.create("/x").unwrap();
    for i in 0..10u64 {
        pc.write(f, i * P as u64, &[i as u8 + 1; P]).unwrap();
        assert!(pc.cached_pages() <= 2);
        check(&pc);
    }
    for i in 0..10u64 {
        let mut b = vec![0u8; P];
        pc.read(f, i * P as u64, &mut b).unwrap();
        assert!(b.iter().all(|&x| x == i as u8 + 1));
    }
    check(&pc);
}

#[test]
fn readahead_window_grows_on_sequential_reads() {
    let data = content(4, "r", 64 * P);
    let (mut pc, _log) = cache_on(disk_with(&[("/r", data.clone())]), cfg(256, 4, 16), false);
    let f = pc.open("/r").unwrap();
    let mut b = vec![0u8; P];
    let mut read = |pc: &mut Cache, i: u64| {
        pc.read(f, i * P as u64, &mut b).unwrap();
        assert_eq!(b, data[i as usize * P..(i as usize + 1) * P]);
        pc.stats().pages_read
    };
    // Miss at 0: window [0, 4), marker on page 1.
    assert_eq!(read(&mut pc, 0), 4);
    assert!(pc.page_flags(f, 1).unwrap().contains(PageFlags::READAHEAD));
    // Hitting the marker starts [4, 12) asynchronously, marker on 4.
    assert_eq!(read(&mut pc, 1), 12);
    assert_eq!(read(&mut pc, 2), 12);
    assert_eq!(read(&mut pc, 3), 12);
    // Marker on 4: [12, 28) (capped at 16).
    assert_eq!(read(&mut pc, 4), 28);
    for i in 5..12 {
        assert_eq!(read(&mut pc, i), 28);
    }
    assert_eq!(read(&mut pc, 12), 44);
    let s = *pc.stats();
    assert_eq!(s.misses, 1);
    assert_eq!(s.hits, 12);
    assert_eq!(s.ra_pages_read, 43);
    assert_eq!(s.ra_used, 12);
    check(&pc);

    // Random reads of another file do no readahead.
    drop(pc);
    let (mut pc, _log) = cache_on(disk_with(&[("/r", data.clone())]), cfg(256, 4, 16), false);
    let f = pc.open("/r").unwrap();
    for i in [50u64, 20, 35, 7] {
        pc.read(f, i * P as u64, &mut [0u8; 10]).unwrap();
    }
    assert_eq!(pc.stats().ra_pages_read, 0);
    assert_eq!(pc.stats().pages_read, 4);
    check(&pc);
}

#[test]
fn unused_readahead_is_counted_as_wasted() {
    let data = content(5, "w", 40 * P);
    let (mut pc, log) = cache_on(disk_with(&[("/w", data)]), cfg(8, 8, 8), false);
    let f = pc.open("/w").unwrap();
    pc.read(f, 0, &mut [0u8; 1]).unwrap();
    assert_eq!(pc.stats().ra_pages_read, 7);
    // Random reads far away push the unused readahead pages out.
    for i in [30u64, 20, 25, 35, 15, 33, 22, 27, 38] {
        pc.read(f, i * P as u64, &mut [0u8; 1]).unwrap();
    }
    let s = *pc.stats();
    assert!(s.ra_wasted > 0);
    assert_eq!(
        s.ra_pages_read,
        s.ra_used + s.ra_wasted + pc.readahead_pending() as u64
    );
    // Readahead pages are clean: evicted ones were put.
    assert!(events(&log).contains(&Ev::Put(f, 1)));
    check(&pc);
}

#[test]
fn cleancache_restore_skips_the_device() {
    let data = content(6, "c", 16 * P);
    let (mut pc, log) = cache_on(disk_with(&[("/c", data.clone())]), cfg(4, 0, 0), true);
    let f = pc.open("/c").unwrap();
    let mut b = vec![0u8; 16 * P];
    pc.read(f, 0, &mut b).unwrap();
    assert_eq!(b, data);
    assert_eq!(pc.stats().cc_puts, 12);
    assert_eq!(pc.hooks().pages.len(), 12);
    let dev_read = pc.fs().device().stats().sectors_read;
    let sectors = pc.stats().sectors_read;
    take_events(&log);
    // Page 0 was put: a miss restores it without a device read.
    let mut p = vec![0u8; P];
    pc.read(f, 0, &mut p).unwrap();
    assert_eq!(p, data[..P]);
    assert_eq!(pc.stats().cc_demand_restores, 1);
    assert_eq!(pc.stats().sectors_read, sectors);
    assert_eq!(pc.fs().device().stats().sectors_read, dev_read);
    let evs = events(&log);
    assert!(evs.contains(&Ev::Get(f, 0, true)));
    assert!(!evs.iter().any(|e| matches!(e, Ev::DevRead(..))));
    // Exclusive: the copy is gone from the stand-in.
    assert!(!pc.hooks().pages.contains_key(&(f, 0)));
    check(&pc);
}

#[test]
fn writes_invalidate_and_a_stale_copy_is_never_returned() {
    let data = content(7, "s", 8 * P);
    let (mut pc, log) = cache_on(disk_with(&[("/s", data.clone())]), cfg(2, 0, 0), true);
    let f = pc.open("/s").unwrap();
    let mut b = vec![0u8; 8 * P];
    pc.read(f, 0, &mut b).unwrap();
    assert!(pc.hooks().pages.contains_key(&(f, 3)));
    take_events(&log);
    pc.write(f, 3 * P as u64 + 5, b"new").unwrap();
    let evs = events(&log);
    assert!(evs.contains(&Ev::InvalPage(f, 3)));
    // Page 3 was restored (exclusive get) and modified.
    let mut p = [0u8; 8];
    pc.read(f, 3 * P as u64 + 3, &mut p).unwrap();
    assert_eq!(&p[2..5], b"new");
    // Push everything out and back: still the new bytes.
    pc.sync().unwrap();
    pc.drop_clean_pages();
    pc.read(f, 3 * P as u64 + 3, &mut p).unwrap();
    assert_eq!(&p[2..5], b"new");
    check(&pc);
}

#[test]
fn truncate_and_delete_invalidate_and_never_put() {
    let data = content(8, "t", 10 * P);
    let (mut pc, log) = cache_on(
        disk_with(&[("/t", data.clone()), ("/keep", data.clone())]),
        cfg(64, 0, 0),
        true,
    );
    let f = pc.open("/t").unwrap();
    let mut b = vec![0u8; 10 * P];
    pc.read(f, 0, &mut b).unwrap();
    pc.write(f, 9 * P as u64, b"dirty").unwrap();
    take_events(&log);
    pc.truncate(f, 4 * P as u64 + 10).unwrap();
    let evs = take_events(&log);
    assert_eq!(evs, [Ev::InvalFile(f, 4)]);
    assert_eq!(pc.cached_pages(), 5);
    assert_eq!(pc.stats().truncated_pages, 5);
    assert_eq!(pc.dirty_pages(), 0);
    // The partial page reads as zero past the new end.
    let mut t = vec![0u8; P];
    assert_eq!(pc.read(f, 4 * P as u64, &mut t).unwrap(), 10);
    // Evict everything: only pages 0..=4 are put.
    pc.drop_clean_pages();
    let puts: Vec<_> = take_events(&log)
        .into_iter()
        .filter_map(|e| match e {
            Ev::Put(_, i) => Some(i),
            _ => None,
        })
        .collect();
    assert_eq!(puts, [0, 1, 2, 3, 4]);
    // Grow again: the new bytes are zero, not the old content.
    pc.truncate(f, 6 * P as u64).unwrap();
    let mut g = vec![0u8; 2 * P];
    pc.read(f, 4 * P as u64, &mut g).unwrap();
    assert_eq!(g[..10], data[4 * P..4 * P + 10]);
    assert!(g[10..].iter().all(|&x| x == 0));
    check(&pc);
    // Delete: whole-file invalidation, no put of its pages.
    pc.write(f, 0, b"dirty again").unwrap();
    take_events(&log);
    pc.remove("/t").unwrap();
    let evs = take_events(&log);
    assert_eq!(evs, [Ev::InvalFile(f, 0)]);
    assert!(pc.hooks().pages.keys().all(|k| k.0 != f));
    assert!(pc.page_frame(f, 0).is_none());
    assert!(matches!(
        pc.open("/t"),
        Err(Error::Fs(fat32::FsError::NotFound))
    ));
    // A new file may get the same id: it starts empty and invalidated.
    let g2 = pc.create("/t2").unwrap();
    assert!(events(&log).contains(&Ev::InvalFile(g2, 0)));
    assert_eq!(pc.file_size(g2).unwrap(), 0);
    check(&pc);
    pc.sync().unwrap();
    check(&pc);
}

#[test]
fn migration_moves_idle_pages_and_refuses_busy_ones() {
    let data = content(9, "m", 8 * P);
    let (mut pc, _log) = cache_on(disk_with(&[("/m", data.clone())]), cfg(64, 4, 4), false);
    let f = pc.open("/m").unwrap();
    // Hold completions back: readahead pages stay under I/O.
    pc.read(f, 0, &mut [0u8; 1])
        .unwrap_or_else(|e| panic!("{e}"));
    let mut spare = HeapPageAllocator::new();
    // Page 0 idle: migrate.
    let old = pc.page_frame(f, 0).unwrap();
    let new = spare.alloc_page().unwrap();
    pc.migrate(old, new).unwrap();
    spare.hand_over(new);
    assert_eq!(pc.frame_owner(new), Some((f, 0)));
    assert_eq!(pc.frame_owner(old), None);
    assert_eq!(pc.states().owner(old), None);
    pc.allocator_mut().free_page(old);
    let mut b = vec![0u8; P];
    pc.read(f, 0, &mut b).unwrap();
    assert_eq!(b, data[..P]);
    // A page pinned by a reader is busy until unpinned.
    let pinned = pc.pin_page(f, 1).unwrap();
    let target = spare.alloc_page().unwrap();
    assert_eq!(pc.migrate(pinned, target), Err(MigrateError::Busy));
    assert_eq!(pc.truncate(f, 0), Err(Error::Busy));
    pc.unpin_page(pinned).unwrap();
    assert_eq!(pc.unpin_page(pinned), Err(Error::NotPinned));
    pc.migrate(pinned, target).unwrap();
    spare.hand_over(target);
    // Not a page-cache frame.
    let stray = spare.alloc_page().unwrap();
    let other = spare.alloc_page().unwrap();
    assert_eq!(pc.migrate(stray, other), Err(MigrateError::NotCached));
    assert_eq!(pc.stats().migrations, 2);
    assert_eq!(pc.stats().migrate_busy, 1);
    check(&pc);
}

#[test]
fn pages_under_io_are_pinned_and_not_movable() {
    let data = content(10, "u", 8 * P);
    let (mut pc, _log) = cache_on(disk_with(&[("/u", data.clone())]), cfg(64, 4, 4), false);
    let f = pc.open("/u").unwrap();
    pc.device_mut().hold = true;
    pc.read(f, 0, &mut [0u8; 1]).unwrap();
    // Pages 1..4 were read ahead and their requests are still queued.
    let fr = pc.page_frame(f, 2).unwrap();
    let flags = pc.page_flags(f, 2).unwrap();
    assert!(flags.contains(PageFlags::UNDER_IO) && flags.contains(PageFlags::LOCKED));
    assert_eq!(pc.states().pin_count(fr), 1);
    let mut spare = HeapPageAllocator::new();
    let target = spare.alloc_page().unwrap();
    assert_eq!(pc.migrate(fr, target), Err(MigrateError::Busy));
    // Once completed (a read waits for it), the page is free to move.
    pc.device_mut().hold = false;
    let mut b = vec![0u8; P];
    pc.read(f, 2 * P as u64, &mut b).unwrap();
    assert_eq!(b, data[2 * P..3 * P]);
    assert_eq!(pc.states().pin_count(fr), 0);
    pc.migrate(fr, target).unwrap();
    spare.hand_over(target);
    check(&pc);
}

#[test]
fn device_errors_are_reported_and_nothing_is_cached_wrongly() {
    let data = content(11, "e", 8 * P);
    let disk = disk_with(&[("/e", data.clone())]);
    let mut probe = Fat32::mount(disk).unwrap();
    let id = probe.lookup("/e").unwrap().id;
    let bad = probe.bmap(id, 2).unwrap().runs()[0].0;
    let disk = probe.unmount().unwrap();
    let mut faulty = FaultyDisk::new(RamDisk::from_vec(disk.into_vec()));
    faulty.fail_read(bad);
    let fs = Fat32::mount(QueueMux::new(faulty)).unwrap();
    let mut pc = PageCache::new(
        fs,
        (HeapPageAllocator::new(), NoCleancache),
        LocalPageStates::new(),
        cfg(16, 4, 4),
    );
    let f = pc.open("/e").unwrap();
    let mut b = vec![0u8; P];
    pc.read(f, 0, &mut b).unwrap();
    assert_eq!(b, data[..P]);
    // Page 2 was read ahead and failed: reading it reports the error.
    let r = pc.read(f, 2 * P as u64, &mut b);
    assert!(
        matches!(r, Err(Error::Device(blkdev::BlockError::Io { .. }))),
        "{r:?}"
    );
    assert!(pc.page_frame(f, 2).is_none());
    assert!(pc.stats().read_errors >= 1);
    pc.check_stats().unwrap();
    // Write errors: the page stays dirty, sync reports, a retry succeeds.
    pc.write(f, 5 * P as u64, b"xyz").unwrap();
    let target = pc_bmap(&mut pc, f, 5);
    pc.device_mut().fail_write(target);
    assert!(matches!(pc.sync(), Err(Error::Device(_))));
    assert_eq!(pc.dirty_pages(), 1);
    pc.device_mut().clear();
    pc.sync().unwrap();
    assert_eq!(pc.dirty_pages(), 0);
    pc.check_stats().unwrap();
}

type FCache = PageCache<FaultyDisk<RamDisk>, (HeapPageAllocator, NoCleancache), LocalPageStates>;

fn pc_bmap(pc: &mut FCache, id: u64, idx: u32) -> u64 {
    // The filesystem is only borrowed immutably through the cache; re-derive
    // the mapping from a copy of the disk.
    let bytes = pc.fs().device().inner().inner().as_bytes().to_vec();
    let mut fs = Fat32::mount(RamDisk::from_vec(bytes)).unwrap();
    fs.bmap(id, idx).unwrap().runs()[0].0
}

#[test]
fn bad_input_is_an_error_and_writes_nothing_unasked() {
    let (mut pc, _log) = cache_on(disk_with(&[("/small", vec![1; 100])]), cfg(8, 4, 8), false);
    let f = pc.open("/small").unwrap();
    let before = pc.fs().device().stats().sectors_written;
    // Reads never write.
    let mut b = [0u8; 50];
    pc.read(f, 60, &mut b).unwrap();
    assert!(matches!(
        pc.read(f, 101, &mut b),
        Err(Error::BeyondEof {
            offset: 101,
            size: 100
        })
    ));
    assert!(matches!(pc.open("/"), Err(Error::IsADirectory)));
    assert!(matches!(pc.open("/no/such/file"), Err(Error::Fs(_))));
    assert_eq!(pc.fs().device().stats().sectors_written, before);
    // A file larger than the disk: NoSpace, size unchanged.
    let g = pc.create("/huge").unwrap();
    let big = vec![9u8; 40 << 20];
    assert!(matches!(
        pc.write(g, 0, &big),
        Err(Error::Fs(fat32::FsError::NoSpace))
    ));
    assert_eq!(pc.file_size(g).unwrap(), 0);
    assert!(matches!(
        pc.write(g, u32::MAX as u64, b"x"),
        Err(Error::FileTooLarge)
    ));
    check(&pc);
    pc.sync().unwrap();
    check(&pc);
}

#[test]
fn budget_full_of_pinned_pages_is_no_memory() {
    let data = content(12, "p", 4 * P);
    let (mut pc, _log) = cache_on(disk_with(&[("/p", data)]), cfg(2, 0, 0), false);
    let f = pc.open("/p").unwrap();
    let a = pc.pin_page(f, 0).unwrap();
    let b = pc.pin_page(f, 1).unwrap();
    assert_eq!(
        pc.read(f, 2 * P as u64, &mut [0u8; 1]),
        Err(Error::NoMemory)
    );
    pc.unpin_page(a).unwrap();
    pc.read(f, 2 * P as u64, &mut [0u8; 1]).unwrap();
    pc.unpin_page(b).unwrap();
    check(&pc);
    let _unused: Option<Frame> = None;
}

#[test]
fn the_cache_can_live_behind_a_kernel_lock() {
    fn send<T: Send>() {}
    send::<PageCache<RamDisk, (HeapPageAllocator, NoCleancache), LocalPageStates>>();
    send::<PageCache<FaultyDisk<RamDisk>, (HeapPageAllocator, NoCleancache), LocalPageStates>>();
}

#[test]
fn release_frame_evicts_clean_pages_into_the_callers_hands() {
    let data = content(13, "rel", 4 * P);
    let (mut pc, log) = cache_on(disk_with(&[("/rel", data.clone())]), cfg(16, 0, 0), true);
    let f = pc.open("/rel").unwrap();
    let mut b = vec![0u8; 4 * P];
    pc.read(f, 0, &mut b).unwrap();
    pc.write(f, 2 * P as u64, b"dirty").unwrap();
    let clean = pc.page_frame(f, 1).unwrap();
    let dirty = pc.page_frame(f, 2).unwrap();
    let before = pc.allocator_mut().freed;
    take_events(&log);
    pc.release_frame(clean).unwrap();
    // Offered to cleancache like any eviction, but not freed to the allocator.
    assert_eq!(events(&log), [Ev::Put(f, 1)]);
    assert_eq!(pc.allocator_mut().freed, before);
    assert_eq!(pc.frame_owner(clean), None);
    assert_eq!(pc.release_frame(clean), Err(MigrateError::NotCached));
    assert_eq!(pc.release_frame(dirty), Err(MigrateError::Busy));
    // The caller owns the frame now: give it back.
    pc.allocator_mut().free_page(clean);
    // Page 1 comes back from cleancache.
    let mut p = vec![0u8; P];
    pc.read(f, P as u64, &mut p).unwrap();
    assert_eq!(p, data[P..2 * P]);
    assert_eq!(pc.stats().cc_demand_restores, 1);
    check(&pc);
}

#[test]
fn drop_clean_frame_drops_without_cleancache_and_keeps_dirty_and_pinned() {
    let data = content(14, "drop", 4 * P);
    let (mut pc, log) = cache_on(disk_with(&[("/drop", data.clone())]), cfg(16, 0, 0), true);
    let f = pc.open("/drop").unwrap();
    let mut b = vec![0u8; 4 * P];
    pc.read(f, 0, &mut b).unwrap();
    pc.write(f, 2 * P as u64, b"dirty").unwrap();
    let clean = pc.page_frame(f, 1).unwrap();
    let dirty = pc.page_frame(f, 2).unwrap();
    let pinned = pc.pin_page(f, 3).unwrap();
    let before = pc.allocator_mut().freed;
    take_events(&log);
    assert_eq!(pc.drop_clean_frame(clean), Ok(true));
    // Dropped, not offered to cleancache, not freed to the allocator.
    assert_eq!(events(&log), []);
    assert_eq!(pc.allocator_mut().freed, before);
    assert_eq!(pc.frame_owner(clean), None);
    assert_eq!(pc.drop_clean_frame(clean), Err(MigrateError::NotCached));
    // Dirty: kept, to be migrated; pinned: busy.
    assert_eq!(pc.drop_clean_frame(dirty), Ok(false));
    assert_eq!(pc.page_frame(f, 2), Some(dirty));
    assert_eq!(pc.drop_clean_frame(pinned), Err(MigrateError::Busy));
    pc.unpin_page(pinned).unwrap();
    assert_eq!(pc.drop_clean_frame(pinned), Ok(true));
    pc.allocator_mut().free_page(clean);
    pc.allocator_mut().free_page(pinned);
    // The dropped pages are read again from the disk; the dirty one kept
    // its write.
    pc.read(f, 0, &mut b).unwrap();
    let mut want = data.clone();
    want[2 * P..2 * P + 5].copy_from_slice(b"dirty");
    assert_eq!(b, want);
    assert_eq!(pc.stats().cc_demand_restores, 0);
    check(&pc);
}

#[test]
fn reclaim_passes_over_pinned_pages_once_not_per_eviction() {
    // 48 pinned pages at the old end of a 64-page cache, then 400 pages
    // read through the 16 that are left: each pinned page passed over goes
    // to the young end (Linux's putback), so an eviction looks at about
    // 1 + 48/16 = 4 pages, not the 49 a scan from the old end would.
    let data = content(21, "r", 512 * P);
    let (mut pc, _log) = cache_on(disk_with(&[("/r", data.clone())]), cfg(64, 0, 0), false);
    let f = pc.open("/r").unwrap();
    let pins: Vec<Frame> = (0..48).map(|i| pc.pin_page(f, i).unwrap()).collect();
    let mut b = vec![0u8; P];
    for i in 48..448u32 {
        pc.read(f, i as u64 * P as u64, &mut b).unwrap();
        assert_eq!(b, data[i as usize * P..(i as usize + 1) * P]);
    }
    let s = pc.stats();
    assert_eq!(s.evictions, 448 - 64);
    // Every eviction looked at its victim, and the first one walked past
    // all 48 pinned pages at the old end.
    assert!(
        s.reclaim_scanned >= s.evictions + 48,
        "{} pages scanned for {} evictions",
        s.reclaim_scanned,
        s.evictions
    );
    assert!(
        s.reclaim_scanned <= 5 * s.evictions,
        "{} pages scanned for {} evictions",
        s.reclaim_scanned,
        s.evictions
    );
    // The pinned pages are all still cached and unchanged.
    for (i, fr) in pins.into_iter().enumerate() {
        pc.read(f, i as u64 * P as u64, &mut b).unwrap();
        assert_eq!(b, data[i * P..(i + 1) * P]);
        pc.unpin_page(fr).unwrap();
    }
    check(&pc);
}
