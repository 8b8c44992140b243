//! Host tests: unit tests for every operation and error, and a property test
//! against a model of the latest valid content per key.

extern crate std;

use super::*;
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec;
use core::ptr::NonNull;
use proptest::prelude::*;
use std::sync::{Arc, Mutex};
use std::vec::Vec;

/// The mount every test but the mount tests uses: the first one registered.
pub(crate) const FS: FsId = FsId {
    generation: 1,
    volume: 0x1234,
};

/// A cleancache with mount [`FS`] registered.
pub(crate) fn mounted() -> Cleancache {
    let mut cc = Cleancache::new();
    assert_eq!(cc.register_fs(0x1234), FS);
    cc
}

/// Leaked host memory standing in for a GCMA area's frames.
pub(crate) fn pool_mem(pages: usize) -> NonNull<u8> {
    let mem: &'static mut [u8] =
        Box::leak(vec![0u8; pages * PAGE_SIZE as usize].into_boxed_slice());
    NonNull::new(mem.as_mut_ptr()).unwrap()
}

pub(crate) fn new_pool(cc: &mut Cleancache, pages: usize, base_pfn: Pfn) -> PoolId {
    // SAFETY: freshly leaked memory of exactly `pages` pages, used by nobody
    // else and never freed.
    unsafe { cc.add_pool(pool_mem(pages), pages, base_pfn) }.unwrap()
}

/// A page whose every 8-byte word depends on the key, the version and its
/// position, so any mix-up shows.
pub(crate) fn content(file: FileId, index: PageIndex, version: u64) -> Box<PageBytes> {
    let mut p = Box::new([0u8; PAGE_SIZE as usize]);
    for (i, w) in p.chunks_exact_mut(8).enumerate() {
        let v = version ^ (file << 40) ^ ((index as u64) << 20) ^ (i as u64).wrapping_mul(0x9E37);
        w.copy_from_slice(&v.to_le_bytes());
    }
    p
}

fn get(cc: &mut Cleancache, file: FileId, index: PageIndex) -> Option<Box<PageBytes>> {
    get_from(cc, FS, file, index)
}

pub(crate) fn get_from(
    cc: &mut Cleancache,
    fs: FsId,
    file: FileId,
    index: PageIndex,
) -> Option<Box<PageBytes>> {
    let mut out = Box::new([0u8; PAGE_SIZE as usize]);
    cc.get_page(fs, file, index, &mut out).then_some(out)
}

#[test]
fn put_then_get_is_exclusive() {
    let mut cc = mounted();
    let p = new_pool(&mut cc, 4, Pfn(0x100));
    cc.put_page(FS, 1, 7, &content(1, 7, 1));
    assert!(cc.contains(FS, 1, 7));
    assert_eq!(get(&mut cc, 1, 7).as_deref(), Some(&*content(1, 7, 1)));
    assert!(!cc.contains(FS, 1, 7));
    assert!(get(&mut cc, 1, 7).is_none(), "a hit drops the copy");
    let s = cc.stats();
    assert_eq!((s.stored, s.restored, s.missed), (1, 1, 1));
    assert_eq!((s.cached_now, s.lendable_now, s.size), (0, 4, 4));
    assert_eq!(cc.pool_stats(p).unwrap().missed, 0);
    cc.check_invariants().unwrap();
}

#[test]
fn miss_leaves_output_untouched() {
    let mut cc = mounted();
    new_pool(&mut cc, 1, Pfn(0));
    let mut out = [0xAAu8; PAGE_SIZE as usize];
    assert!(!cc.get_page(FS, 3, 3, &mut out));
    assert!(out.iter().all(|&b| b == 0xAA));
}

#[test]
fn second_put_replaces_the_copy() {
    let mut cc = mounted();
    new_pool(&mut cc, 2, Pfn(0));
    cc.put_page(FS, 1, 0, &content(1, 0, 1));
    cc.put_page(FS, 1, 0, &content(1, 0, 2));
    assert_eq!(cc.stats().cached_now, 1);
    assert_eq!(get(&mut cc, 1, 0).as_deref(), Some(&*content(1, 0, 2)));
}

#[test]
fn clock_gives_a_re_put_copy_a_second_chance() {
    let mut cc = mounted();
    new_pool(&mut cc, 2, Pfn(0));
    cc.put_page(FS, 1, 0, &content(1, 0, 1));
    cc.put_page(FS, 1, 1, &content(1, 1, 1));
    cc.put_page(FS, 1, 0, &content(1, 0, 2)); // re-put: (1,0) is referenced, (1,1) is not
    cc.put_page(FS, 2, 0, &content(2, 0, 1));
    assert!(!cc.contains(FS, 1, 1));
    assert_eq!(cc.stats().evicted, 1);
    assert_eq!(get(&mut cc, 1, 0).as_deref(), Some(&*content(1, 0, 2)));
    assert_eq!(get(&mut cc, 2, 0).as_deref(), Some(&*content(2, 0, 1)));
    cc.check_invariants().unwrap();
}

#[test]
fn invalidate_page_and_file() {
    let mut cc = mounted();
    new_pool(&mut cc, 16, Pfn(0));
    for i in 0..5 {
        cc.put_page(FS, 1, i, &content(1, i, 1));
        cc.put_page(FS, 2, i, &content(2, i, 1));
    }
    cc.invalidate_page(FS, 1, 4);
    cc.invalidate_page(FS, 1, 4); // nothing left to drop: not counted twice
    assert!(!cc.contains(FS, 1, 4));
    cc.invalidate_file(FS, 1, 2); // truncate to 2 pages
    assert!(cc.contains(FS, 1, 0) && cc.contains(FS, 1, 1));
    assert!(!cc.contains(FS, 1, 2) && !cc.contains(FS, 1, 3));
    assert!(
        (0..5).all(|i| cc.contains(FS, 2, i)),
        "other files untouched"
    );
    cc.invalidate_file(FS, 2, 0); // delete
    assert!((0..5).all(|i| !cc.contains(FS, 2, i)));
    assert!(cc.contains(FS, 1, 0));
    assert_eq!(cc.stats().invalidated, 1 + 2 + 5);
    assert_eq!(cc.stats().cached_now, 2);
    cc.check_invariants().unwrap();
}

#[test]
fn take_back_drops_copy_and_errors() {
    let mut cc = mounted();
    let p = new_pool(&mut cc, 2, Pfn(0x40));
    cc.put_page(FS, 9, 9, &content(9, 9, 1));
    let page = (0..2)
        .find(|&pg| matches!(cc.page_state(p, pg), Ok(PageState::Cached { .. })))
        .unwrap();
    assert_eq!(
        cc.take_back(p, page),
        Ok(Reclaimed::DroppedCopy {
            fs: FS,
            file: 9,
            index: 9
        })
    );
    assert!(get(&mut cc, 9, 9).is_none());
    assert_eq!(
        cc.take_back(p, page),
        Err(PoolError::AlreadyTakenBack { pool: p, page })
    );
    assert_eq!(cc.take_back(p, 1 - page), Ok(Reclaimed::Idle));
    assert_eq!(
        cc.take_back(p, 2),
        Err(PoolError::PageOutOfRange {
            pool: p,
            page: 2,
            pages: 2
        })
    );
    let bogus = PoolId(7);
    assert_eq!(cc.take_back(bogus, 0), Err(PoolError::UnknownPool(bogus)));
    // Everything taken back: puts are rejected, not stored anywhere.
    cc.put_page(FS, 1, 1, &content(1, 1, 1));
    assert!(!cc.contains(FS, 1, 1));
    let s = cc.stats();
    assert_eq!((s.put_rejected, s.taken_back, s.lendable_now), (1, 2, 0));
    assert_eq!(s.dropped_by_take_back, 1);
    cc.give_back(p, page).unwrap();
    assert_eq!(
        cc.give_back(p, page),
        Err(PoolError::NotTakenBack { pool: p, page })
    );
    assert_eq!(cc.page_state(p, page), Ok(PageState::Free));
    cc.put_page(FS, 1, 1, &content(1, 1, 1));
    assert!(cc.contains(FS, 1, 1));
    assert_eq!(cc.stats().given_back, 1);
    cc.check_invariants().unwrap();
}

#[test]
fn taken_back_page_is_never_touched() {
    let mut cc = mounted();
    let mem = pool_mem(4);
    // SAFETY: leaked memory of 4 pages; the test only writes page 2 while it
    // is taken back.
    let p = unsafe { cc.add_pool(mem, 4, Pfn(0)) }.unwrap();
    cc.take_back(p, 2).unwrap();
    let page2 = mem.as_ptr().wrapping_add(2 * PAGE_SIZE as usize);
    // SAFETY: page 2 lies inside the leaked 4 pages and is taken back, so its
    // owner (this test) may use it; cleancache must not touch it.
    let owned = unsafe { core::slice::from_raw_parts_mut(page2, PAGE_SIZE as usize) };
    owned.fill(0x5A);
    for i in 0..50 {
        cc.put_page(FS, 1, i, &content(1, i, 1));
    }
    assert_eq!(cc.stats().cached_now, 3);
    assert!(owned.iter().all(|&b| b == 0x5A));
}

#[test]
fn range_take_back_is_all_or_nothing() {
    let mut cc = mounted();
    let p = new_pool(&mut cc, 8, Pfn(0));
    for i in 0..8 {
        cc.put_page(FS, 1, i, &content(1, i, 1));
    }
    cc.take_back(p, 5).unwrap();
    assert_eq!(
        cc.take_back_range(p, 2, 4),
        Err(PoolError::AlreadyTakenBack { pool: p, page: 5 })
    );
    assert_eq!(cc.stats().cached_now, 7, "nothing changed");
    assert!(matches!(
        cc.take_back_range(p, 6, 3),
        Err(PoolError::PageOutOfRange { .. })
    ));
    assert_eq!(cc.take_back_range(p, 0, 5), Ok(5));
    assert_eq!(cc.stats().lendable_now, 2);
    assert_eq!(
        cc.give_back_range(p, 4, 3),
        Err(PoolError::NotTakenBack { pool: p, page: 6 })
    );
    cc.give_back_range(p, 0, 6).unwrap();
    assert_eq!(cc.stats().lendable_now, 8);
    cc.check_invariants().unwrap();
}

#[test]
fn add_pool_errors_and_lookup() {
    let mut cc = mounted();
    // SAFETY: valid memory; the call fails before using it anyway.
    let empty = unsafe { cc.add_pool(pool_mem(1), 0, Pfn(0)) };
    assert_eq!(empty, Err(PoolError::EmptyPool));
    let a = new_pool(&mut cc, 4, Pfn(100));
    let b = new_pool(&mut cc, 2, Pfn(200));
    // SAFETY: as above.
    let overlap = unsafe { cc.add_pool(pool_mem(2), 2, Pfn(103)) };
    assert_eq!(
        overlap,
        Err(PoolError::Overlap {
            base_pfn: Pfn(103),
            pages: 2
        })
    );
    assert_eq!(cc.pool_count(), 2);
    assert_eq!(cc.pool_span(b), Ok((Pfn(200), 2)));
    assert_eq!(cc.locate_pfn(Pfn(103)), Some((a, 3)));
    assert_eq!(cc.locate_pfn(Pfn(201)), Some((b, 1)));
    assert_eq!(cc.locate_pfn(Pfn(104)), None);
    for i in 0..6 {
        cc.put_page(FS, 5, i, &content(5, i, 1));
    }
    let (sa, sb) = (cc.pool_stats(a).unwrap(), cc.pool_stats(b).unwrap());
    assert_eq!((sa.cached_now, sb.cached_now), (4, 2));
    assert_eq!(cc.stats().size, 6);
}

#[test]
fn machine_lines() {
    let mut cc = mounted();
    new_pool(&mut cc, 2, Pfn(0));
    new_pool(&mut cc, 3, Pfn(8));
    for i in 0..6 {
        cc.put_page(FS, 1, i, &content(1, i, 1));
    }
    assert!(get(&mut cc, 1, 5).is_some());
    assert!(get(&mut cc, 1, 0).is_none());
    let mut out = std::string::String::new();
    cc.write_machine(&mut out).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].starts_with("@cleancache pool=0 size_pages=2 "));
    assert!(lines[1].starts_with("@cleancache pool=1 size_pages=3 "));
    assert!(lines[2].starts_with(
        "@cleancache pool=all size_pages=5 stored=6 restored=1 missed=1 invalidated=0 evicted=1 "
    ));
    assert!(lines[2].ends_with(" cached=4 lendable=5"));
}

#[test]
fn errors_display() {
    let p = PoolId(0);
    let all = [
        PoolError::UnknownPool(p),
        PoolError::PageOutOfRange {
            pool: p,
            page: 1,
            pages: 1,
        },
        PoolError::AlreadyTakenBack { pool: p, page: 0 },
        PoolError::NotTakenBack { pool: p, page: 0 },
        PoolError::EmptyPool,
        PoolError::TooManyPages,
        PoolError::Overlap {
            base_pfn: Pfn(1),
            pages: 1,
        },
    ];
    let texts: Vec<std::string::String> = all.iter().map(|e| std::format!("{e}")).collect();
    for (i, t) in texts.iter().enumerate() {
        assert!(!t.is_empty());
        assert!(texts[..i].iter().all(|o| o != t), "messages are distinct");
    }
}

/// The page of pool `p` holding `(file, index)`.
fn page_of(cc: &Cleancache, p: PoolId, file: FileId, index: PageIndex) -> usize {
    let pages = cc.pool_span(p).unwrap().1;
    (0..pages)
        .find(|&pg| {
            cc.page_state(p, pg)
                == Ok(PageState::Cached {
                    fs: FS,
                    file,
                    index,
                })
        })
        .unwrap()
}

#[test]
fn stale_entry_after_take_back_never_hits() {
    let mut cc = mounted();
    let p = new_pool(&mut cc, 4, Pfn(0));
    for i in 0..4 {
        cc.put_page(FS, 1, i, &content(1, i, 1));
    }
    let pg = page_of(&cc, p, 1, 2);
    cc.take_back(p, pg).unwrap();
    // The entry stays in the index, stale, and reads as absent.
    assert_eq!((cc.index.len(), cc.stale_entries()), (4, 1));
    cc.check_invariants().unwrap();
    assert!(!cc.contains(FS, 1, 2));
    assert!(get(&mut cc, 1, 2).is_none());
    assert_eq!(cc.stats().missed, 1);
    // The miss removed the stale entry.
    assert_eq!((cc.index.len(), cc.stale_entries()), (3, 0));
    cc.check_invariants().unwrap();
    // Range take-back leaves stale entries too; none of them hits.
    cc.give_back(p, pg).unwrap();
    assert_eq!(cc.take_back_range(p, 0, 4), Ok(3));
    assert_eq!((cc.index.len(), cc.stale_entries()), (3, 3));
    cc.check_invariants().unwrap();
    for i in 0..4 {
        assert!(!cc.contains(FS, 1, i));
        assert!(get(&mut cc, 1, i).is_none());
    }
    assert_eq!((cc.index.len(), cc.stale_entries()), (0, 0));
    let s = cc.stats();
    assert_eq!((s.missed, s.restored, s.dropped_by_take_back), (5, 0, 4));
    cc.check_invariants().unwrap();
}

/// A pool of `pages` pages whose pages `0..n` hold `(1, 0..n)` (version 1),
/// then take-backs of `take` in that order: their entries go stale, and
/// stay in the index until looked up or until their slot is reused.
fn stale_setup(pages: usize, n: u32, take: &[usize]) -> (Cleancache, PoolId) {
    let mut cc = mounted();
    let p = new_pool(&mut cc, pages, Pfn(0));
    for i in 0..n {
        cc.put_page(FS, 1, i, &content(1, i, 1));
        assert_eq!(
            cc.page_state(p, i as usize),
            Ok(PageState::Cached {
                fs: FS,
                file: 1,
                index: i
            })
        );
    }
    for &pg in take {
        cc.take_back(p, pg).unwrap();
    }
    assert_eq!(
        (cc.stale_entries(), cc.index.len()),
        (take.len(), n as usize)
    );
    cc.check_invariants().unwrap();
    (cc, p)
}

#[test]
fn reused_slot_never_revives_a_stale_entry() {
    let (mut cc, p) = stale_setup(4, 4, &[0, 1, 2, 3]);
    cc.give_back(p, 0).unwrap();
    // Into the free slot 0: the reuse removes the stale entry (1, 0) that
    // named it; the other three stay, stale.
    cc.put_page(FS, 2, 0, &content(2, 0, 1));
    assert_eq!(
        cc.page_state(p, 0),
        Ok(PageState::Cached {
            fs: FS,
            file: 2,
            index: 0
        })
    );
    assert_eq!(cc.index.get(&(FS, 1, 0)), None);
    assert_eq!(cc.stale_entries(), 3);
    cc.check_invariants().unwrap();
    assert!(!cc.contains(FS, 1, 0));
    // Slot 0 reused again, by a CLOCK eviction: (2, 0)'s entry goes with
    // its copy.
    cc.put_page(FS, 3, 0, &content(3, 0, 1));
    assert_eq!(
        cc.page_state(p, 0),
        Ok(PageState::Cached {
            fs: FS,
            file: 3,
            index: 0
        })
    );
    assert_eq!(cc.stats().evicted, 1);
    assert_eq!(cc.index.get(&(FS, 1, 0)), None);
    assert_eq!(cc.index.get(&(FS, 2, 0)), None);
    assert_eq!(cc.stale_entries(), 3);
    cc.check_invariants().unwrap();
    assert!(!cc.contains(FS, 1, 0) && !cc.contains(FS, 2, 0));
    assert!(get(&mut cc, 1, 0).is_none(), "stale entry must not hit");
    assert!(get(&mut cc, 2, 0).is_none());
    assert_eq!(get(&mut cc, 3, 0).as_deref(), Some(&*content(3, 0, 1)));
    // A stale entry is no copy: invalidating it counts nothing.
    cc.invalidate_page(FS, 1, 1);
    assert_eq!(cc.stats().invalidated, 0);
    // (1, 2) and (1, 3) still name the taken-back slots 2 and 3, stale.
    assert_eq!((cc.index.len(), cc.stale_entries()), (2, 2));
    cc.check_invariants().unwrap();
    for i in 0..4 {
        cc.put_page(FS, 4, i, &content(4, i, 1));
        cc.check_invariants().unwrap();
    }
    // Only slot 0 is lendable: the last put holds it.
    assert_eq!(cc.stats().cached_now, 1);
    assert!(get(&mut cc, 4, 3).is_some_and(|d| *d == *content(4, 3, 1)));
    assert_eq!((cc.index.len(), cc.stale_entries()), (2, 2));
    // Slots 2 and 3 given back and reused (with slot 0, free since the
    // hit): their stale entries go.
    cc.give_back_range(p, 2, 2).unwrap();
    for i in 0..3 {
        cc.put_page(FS, 5, i, &content(5, i, 1));
    }
    assert_eq!(
        cc.page_state(p, 3),
        Ok(PageState::Cached {
            fs: FS,
            file: 5,
            index: 2
        })
    );
    assert_eq!((cc.index.len(), cc.stale_entries()), (3, 0));
    assert!(!cc.contains(FS, 1, 2) && !cc.contains(FS, 1, 3));
    assert!(get(&mut cc, 1, 3).is_none(), "a reused slot never revives");
    assert_eq!(get(&mut cc, 5, 2).as_deref(), Some(&*content(5, 2, 1)));
    cc.check_invariants().unwrap();
}

#[test]
fn re_put_of_a_key_with_a_stale_entry() {
    // Into another, free slot: the stale entry is replaced; (1, 1)'s stays.
    let (mut cc, p) = stale_setup(4, 2, &[0, 1]);
    cc.put_page(FS, 1, 0, &content(1, 0, 2));
    assert_eq!(
        cc.page_state(p, 2),
        Ok(PageState::Cached {
            fs: FS,
            file: 1,
            index: 0
        })
    );
    assert_eq!(cc.index.get(&(FS, 1, 0)), Some(&2));
    assert_eq!((cc.index.len(), cc.stale_entries()), (2, 1));
    cc.check_invariants().unwrap();
    assert_eq!(get(&mut cc, 1, 0).as_deref(), Some(&*content(1, 0, 2)));

    // Into the very slot the stale entry names, once given back.
    let (mut cc, p) = stale_setup(2, 2, &[0, 1]);
    cc.give_back(p, 0).unwrap();
    cc.put_page(FS, 1, 0, &content(1, 0, 2));
    assert_eq!(
        cc.page_state(p, 0),
        Ok(PageState::Cached {
            fs: FS,
            file: 1,
            index: 0
        })
    );
    assert_eq!(cc.index.get(&(FS, 1, 0)), Some(&0));
    assert_eq!((cc.index.len(), cc.stale_entries()), (2, 1));
    cc.check_invariants().unwrap();
    assert_eq!(get(&mut cc, 1, 0).as_deref(), Some(&*content(1, 0, 2)));

    // Every page taken back: the put is rejected; its lookup dropped the
    // stale entry of (1, 0), (1, 1)'s stays.
    let (mut cc, p) = stale_setup(2, 2, &[0, 1]);
    cc.put_page(FS, 1, 0, &content(1, 0, 2));
    assert_eq!(cc.stats().put_rejected, 1);
    assert_eq!((cc.index.len(), cc.stale_entries()), (1, 1));
    assert_eq!(cc.index.get(&(FS, 1, 0)), None);
    assert!(!cc.contains(FS, 1, 0));
    cc.check_invariants().unwrap();
    assert!(get(&mut cc, 1, 0).is_none());
    cc.give_back(p, 1).unwrap();
    cc.put_page(FS, 1, 0, &content(1, 0, 3));
    assert_eq!(get(&mut cc, 1, 0).as_deref(), Some(&*content(1, 0, 3)));

    // Through CLOCK reuse: no free slot, the hand's first unreferenced copy
    // (1, 2) is evicted; (1, 1)'s stale entry stays.
    let (mut cc, p) = stale_setup(4, 4, &[0, 1]);
    cc.put_page(FS, 1, 0, &content(1, 0, 2));
    assert_eq!(
        cc.page_state(p, 2),
        Ok(PageState::Cached {
            fs: FS,
            file: 1,
            index: 0
        })
    );
    assert_eq!(cc.stats().evicted, 1);
    assert_eq!((cc.index.len(), cc.stale_entries()), (3, 1));
    cc.check_invariants().unwrap();
    assert_eq!(get(&mut cc, 1, 0).as_deref(), Some(&*content(1, 0, 2)));
    assert!(get(&mut cc, 1, 2).is_none());
    assert_eq!(get(&mut cc, 1, 3).as_deref(), Some(&*content(1, 3, 1)));
}

#[test]
fn invalidate_file_over_stale_entries() {
    let mut cc = mounted();
    let p = new_pool(&mut cc, 12, Pfn(0));
    for i in 0..8 {
        cc.put_page(FS, 1, i, &content(1, i, 1));
    }
    for i in 0..4 {
        cc.put_page(FS, 2, i, &content(2, i, 1));
    }
    // Take back the pages of (1, 2), (1, 5), (1, 7) and (2, 1).
    for (f, i) in [(1, 2), (1, 5), (1, 7), (2, 1)] {
        let pg = page_of(&cc, p, f, i);
        cc.take_back(p, pg).unwrap();
    }
    assert_eq!(cc.stale_entries(), 4);
    cc.invalidate_file(FS, 1, 3); // drops (1, 3), (1, 4), (1, 6); stale (1, 5), (1, 7)
    assert_eq!(cc.stats().invalidated, 3);
    assert_eq!((cc.index.len(), cc.stale_entries()), (7, 2));
    cc.check_invariants().unwrap();
    assert!((3..8).all(|i| !cc.contains(FS, 1, i)));
    assert!(cc.index.range((FS, 1, 3)..(FS, 2, 0)).next().is_none());
    cc.invalidate_file(FS, 1, 0); // drops (1, 0), (1, 1); stale (1, 2)
    assert_eq!(cc.stats().invalidated, 5);
    assert_eq!((cc.index.len(), cc.stale_entries()), (4, 1));
    cc.check_invariants().unwrap();
    // The other file is untouched, its stale entry too.
    assert!([0, 2, 3].iter().all(|&i| cc.contains(FS, 2, i)));
    assert!(!cc.contains(FS, 2, 1));
    cc.invalidate_file(FS, 2, 0);
    assert_eq!(cc.stats().invalidated, 8);
    assert_eq!((cc.index.len(), cc.stale_entries()), (0, 0));
    cc.check_invariants().unwrap();
}

#[test]
fn lazy_removal_keeps_the_index_bounded() {
    const PAGES: usize = 16;
    let mut cc = mounted();
    let p = new_pool(&mut cc, PAGES, Pfn(0));
    let mut key = 0u32;
    let mut peak = 0;
    for cycle in 0..200 {
        // Fill with distinct new keys, then take everything back and give it
        // back: every entry goes stale and no lookup ever removes it; only
        // the puts of the next cycle, reusing their slots, remove them.
        for _ in 0..PAGES {
            cc.put_page(FS, 7, key, &content(7, key, 1));
            key += 1;
            assert!(cc.index.len() <= PAGES, "index grew to {}", cc.index.len());
            peak = peak.max(cc.index.len());
        }
        if cycle % 2 == 0 {
            assert_eq!(cc.take_back_range(p, 0, PAGES), Ok(PAGES));
            cc.give_back_range(p, 0, PAGES).unwrap();
        } else {
            for pg in 0..PAGES {
                cc.take_back(p, pg).unwrap();
                cc.give_back(p, pg).unwrap();
            }
        }
        assert_eq!((cc.index.len(), cc.stale_entries()), (PAGES, PAGES));
        assert_eq!(
            cc.index_len(),
            cc.stats().size,
            "at most one entry per slot"
        );
        cc.check_invariants().unwrap();
    }
    assert_eq!(peak, PAGES);
    // Nothing taken back and given back ever hits.
    for k in 0..key {
        assert!(!cc.contains(FS, 7, k));
    }
    assert_eq!(cc.stats().cached_now, 0);
}

/// Two mounts whose files have the same ids (two disks laid out alike, or
/// one disk rewritten) never see each other's copies.
#[test]
fn the_same_file_on_two_mounts_is_two_keys() {
    let mut cc = mounted();
    new_pool(&mut cc, 4, Pfn(0));
    let other = cc.register_fs(0x1234); // same volume serial
    assert_ne!(other, FS);
    cc.put_page(FS, 1, 0, &content(1, 0, 1));
    cc.put_page(other, 1, 0, &content(1, 0, 2));
    assert!(cc.contains(FS, 1, 0) && cc.contains(other, 1, 0));
    assert_eq!(*get_from(&mut cc, other, 1, 0).unwrap(), *content(1, 0, 2));
    assert!(get_from(&mut cc, other, 1, 0).is_none());
    assert_eq!(*get(&mut cc, 1, 0).unwrap(), *content(1, 0, 1));
    // Invalidations name the mount too.
    cc.put_page(FS, 1, 0, &content(1, 0, 3));
    cc.invalidate_file(other, 1, 0);
    cc.invalidate_page(other, 1, 0);
    assert!(cc.contains(FS, 1, 0));
    assert_eq!(cc.check_invariants(), Ok(()));
}

/// Unmount drops every copy of the mount, stale index entries included,
/// and nothing else; the id is retired for good.
#[test]
fn invalidate_fs_drops_the_mount_and_retires_its_id() {
    let mut cc = mounted();
    let p = new_pool(&mut cc, 8, Pfn(0));
    let other = cc.register_fs(7);
    for i in 0..4 {
        cc.put_page(FS, 1, i, &content(1, i, 1));
        cc.put_page(other, 1, i, &content(1, i, 2));
    }
    // One copy of FS taken back: its index entry is stale, queued.
    let pg = page_of(&cc, p, 1, 2);
    cc.take_back(p, pg).unwrap();
    assert_eq!(cc.index.len(), 8);
    let before = cc.stats();
    assert_eq!(cc.invalidate_fs(FS), 3);
    assert_eq!(cc.stats().invalidated, before.invalidated + 3);
    assert_eq!(cc.index.len(), 4, "stale entry of the mount removed too");
    assert_eq!(cc.stats().cached_now, 4);
    assert!((0..4).all(|i| !cc.contains(FS, 1, i) && cc.contains(other, 1, i)));
    assert!(!cc.is_registered(FS) && cc.is_registered(other));
    assert_eq!(cc.check_invariants(), Ok(()));
    // A late put for the unmounted filesystem is refused, a get misses.
    cc.put_page(FS, 1, 0, &content(1, 0, 9));
    assert_eq!(cc.stats().put_rejected, before.put_rejected + 1);
    assert!(!cc.contains(FS, 1, 0));
    assert!(get(&mut cc, 1, 0).is_none());
    // Giving the page back and reusing it revives nothing.
    cc.give_back(p, pg).unwrap();
    cc.put_page(other, 2, 0, &content(2, 0, 1));
    assert!(!cc.contains(FS, 1, 2));
    assert_eq!(
        cc.invalidate_fs(FS),
        0,
        "a second invalidation finds nothing"
    );
    assert_eq!(cc.check_invariants(), Ok(()));
}

/// Mount identities are never handed out twice, whatever the volume serial.
#[test]
fn mount_generations_never_repeat() {
    let mut cc = Cleancache::new();
    let mut seen = std::collections::BTreeSet::new();
    for n in 0..1000u32 {
        let fs = cc.register_fs(n % 3);
        assert_eq!(fs.generation(), n as u64 + 1);
        assert_eq!(fs.volume(), n % 3);
        assert!(seen.insert(fs.generation()));
        if n % 2 == 0 {
            cc.invalidate_fs(fs);
        }
    }
    assert_eq!(
        std::format!("{FS}"),
        "mount 1 (volume 00001234)",
        "the display names the mount"
    );
}

#[derive(Clone, Debug)]
pub(crate) enum Op {
    Put(FileId, PageIndex),
    Get(FileId, PageIndex),
    InvalidatePage(FileId, PageIndex),
    InvalidateFile(FileId, PageIndex),
    TakeBack(usize, usize),
    GiveBack(usize, usize),
    TakeBackRange(usize, usize, usize),
    GiveBackRange(usize, usize, usize),
    /// Unmount (`invalidate_fs`) and mount again (a new `register_fs`, the
    /// given volume serial; the same serial as before is allowed).
    Remount(u32),
}

fn op() -> impl Strategy<Value = Op> {
    op_over(3, 6)
}

/// Operations over keys `(0..files, 0..indexes)`.
fn op_over(files: FileId, indexes: PageIndex) -> impl Strategy<Value = Op> {
    let key = (0..files, 0..indexes);
    prop_oneof![
        6 => key.clone().prop_map(|(f, i)| Op::Put(f, i)),
        4 => key.clone().prop_map(|(f, i)| Op::Get(f, i)),
        1 => key.clone().prop_map(|(f, i)| Op::InvalidatePage(f, i)),
        1 => key.prop_map(|(f, i)| Op::InvalidateFile(f, i)),
        2 => (0usize..2, 0usize..5).prop_map(|(p, pg)| Op::TakeBack(p, pg)),
        2 => (0usize..2, 0usize..5).prop_map(|(p, pg)| Op::GiveBack(p, pg)),
        1 => (0usize..2, 0usize..5, 0usize..4).prop_map(|(p, f, n)| Op::TakeBackRange(p, f, n)),
        1 => (0usize..2, 0usize..5, 0usize..4).prop_map(|(p, f, n)| Op::GiveBackRange(p, f, n)),
        1 => (0u32..2).prop_map(Op::Remount),
    ]
}

proptest! {
    /// A hit returns exactly the last content put for that key, and never a
    /// copy put before an invalidation, a previous hit, a miss or a
    /// take-back of its page.
    #[test]
    fn never_stale(ops in proptest::collection::vec(op(), 1..300)) {
        run_model(ops, 3, 6)?;
    }

    /// The same over many more keys than slots, so that stale entries are
    /// rarely looked up again and only the reuse of their slots removes them.
    #[test]
    fn never_stale_many_keys(ops in proptest::collection::vec(op_over(4, 32), 1..1000)) {
        run_model(ops, 4, 32)?;
    }
}

/// Frame descriptors as the kernel mirrors them, and the number of
/// `(on_page, on_range)` calls.
pub(crate) struct Mirror {
    pub(crate) frames: Arc<Mutex<BTreeMap<Pfn, PageState>>>,
    pub(crate) calls: Arc<Mutex<(usize, usize)>>,
}

impl Observer for Mirror {
    fn on_page(&mut self, pfn: Pfn, st: PageState) {
        let old = self.frames.lock().unwrap().insert(pfn, st);
        assert_ne!(old, Some(st), "observer called without a change");
        self.calls.lock().unwrap().0 += 1;
    }
    fn on_range(&mut self, first: Pfn, count: usize, st: PageState) {
        assert!(count > 0, "empty range reported");
        let mut frames = self.frames.lock().unwrap();
        for pfn in (0..count as u64).map(|i| first + i) {
            let old = frames.insert(pfn, st);
            assert!(old.is_some(), "range outside the pools");
            assert_ne!(old, Some(st), "observer called without a change");
        }
        self.calls.lock().unwrap().1 += 1;
    }
}

/// Runs `ops` on two pools (3 and 5 pages) against a model of the content a
/// hit may return, checking invariants and frame descriptors at each step.
fn run_model(ops: Vec<Op>, files: FileId, indexes: PageIndex) -> Result<(), TestCaseError> {
    let mut cc = mounted();
    // Frame descriptors as the kernel would mirror them.
    let frames: Arc<Mutex<BTreeMap<Pfn, PageState>>> = Arc::new(Mutex::new(
        (0..3)
            .chain(64..69)
            .map(|pfn| (Pfn(pfn), PageState::Free))
            .collect(),
    ));
    let calls = Arc::new(Mutex::new((0usize, 0usize)));
    cc.set_observer(Some(Box::new(Mirror {
        frames: frames.clone(),
        calls: calls.clone(),
    })));
    let pools = [new_pool(&mut cc, 3, Pfn(0)), new_pool(&mut cc, 5, Pfn(64))];
    // Key -> version a hit may return; absent: no hit allowed.
    let mut model: BTreeMap<(FileId, PageIndex), u64> = BTreeMap::new();
    let mut taken = [[false; 5]; 2];
    let mut version = 0u64;
    let mut fs = FS;
    for op in ops {
        match op {
            Op::Remount(volume) => {
                // Unmount: every copy of the mount goes, the id is retired.
                let stats = cc.stats();
                let dropped = cc.invalidate_fs(fs);
                prop_assert!(dropped <= model.len());
                prop_assert_eq!(cc.stats().invalidated, stats.invalidated + dropped as u64);
                prop_assert_eq!(cc.stats().cached_now, 0);
                prop_assert!(!cc.is_registered(fs));
                let old = fs;
                fs = cc.register_fs(volume);
                prop_assert!(fs.generation() > old.generation());
                // A late put naming the old mount is refused; a get misses.
                cc.put_page(old, 0, 0, &content(0, 0, 0));
                prop_assert_eq!(cc.stats().put_rejected, stats.put_rejected + 1);
                prop_assert!(get_from(&mut cc, old, 0, 0).is_none());
                // The same file ids on the new mount start empty.
                model.clear();
            }
            Op::Put(f, i) => {
                version += 1;
                cc.put_page(fs, f, i, &content(f, i, version));
                if cc.stats().lendable_now > 0 {
                    model.insert((f, i), version);
                    prop_assert!(cc.contains(fs, f, i));
                } else {
                    prop_assert!(!cc.contains(fs, f, i));
                    model.remove(&(f, i));
                }
            }
            Op::Get(f, i) => {
                match get_from(&mut cc, fs, f, i) {
                    Some(data) => {
                        let v = model.remove(&(f, i));
                        prop_assert!(v.is_some(), "hit on {:?} with no valid copy", (f, i));
                        prop_assert!(*data == *content(f, i, v.unwrap()), "stale data");
                    }
                    None => {
                        model.remove(&(f, i));
                    }
                }
                prop_assert!(!cc.contains(fs, f, i));
            }
            Op::InvalidatePage(f, i) => {
                cc.invalidate_page(fs, f, i);
                model.remove(&(f, i));
            }
            Op::InvalidateFile(f, from) => {
                cc.invalidate_file(fs, f, from);
                model.retain(|&(mf, mi), _| mf != f || mi < from);
                prop_assert!((from..indexes).all(|i| !cc.contains(fs, f, i)));
            }
            Op::TakeBack(p, pg) => {
                let pages = cc.pool_span(pools[p]).unwrap().1;
                let before = cc.page_state(pools[p], pg);
                let r = cc.take_back(pools[p], pg);
                if pg >= pages {
                    let out_of_range = matches!(r, Err(PoolError::PageOutOfRange { .. }));
                    prop_assert!(out_of_range);
                } else if taken[p][pg] {
                    prop_assert_eq!(
                        r,
                        Err(PoolError::AlreadyTakenBack {
                            pool: pools[p],
                            page: pg
                        })
                    );
                } else {
                    taken[p][pg] = true;
                    match (before.unwrap(), r.unwrap()) {
                        (PageState::Free, Reclaimed::Idle) => {}
                        (
                            PageState::Cached {
                                fs: cfs,
                                file,
                                index,
                            },
                            Reclaimed::DroppedCopy {
                                fs: f1,
                                file: f2,
                                index: i2,
                            },
                        ) => {
                            prop_assert_eq!((cfs, file, index), (f1, f2, i2));
                            prop_assert_eq!(cfs, fs, "a copy of an unmounted filesystem");
                            prop_assert!(!cc.contains(fs, file, index));
                            model.remove(&(file, index));
                        }
                        other => prop_assert!(false, "take_back mismatch {:?}", other),
                    }
                    prop_assert_eq!(cc.page_state(pools[p], pg), Ok(PageState::TakenBack));
                }
            }
            Op::GiveBack(p, pg) => {
                let pages = cc.pool_span(pools[p]).unwrap().1;
                let r = cc.give_back(pools[p], pg);
                if pg >= pages {
                    prop_assert!(r.is_err());
                } else if taken[p][pg] {
                    prop_assert_eq!(r, Ok(()));
                    taken[p][pg] = false;
                } else {
                    prop_assert_eq!(
                        r,
                        Err(PoolError::NotTakenBack {
                            pool: pools[p],
                            page: pg
                        })
                    );
                }
            }
            Op::TakeBackRange(p, first, n) => {
                let pages = cc.pool_span(pools[p]).unwrap().1;
                let before: Vec<_> = (first..(first + n).min(pages))
                    .map(|pg| cc.page_state(pools[p], pg).unwrap())
                    .collect();
                let stats = cc.stats();
                let seen = *calls.lock().unwrap();
                let r = cc.take_back_range(pools[p], first, n);
                let refused = first + n > pages || (first..first + n).any(|pg| taken[p][pg]);
                // One range event for an accepted, non-empty range; nothing else.
                let events = usize::from(!refused && n > 0);
                prop_assert_eq!(*calls.lock().unwrap(), (seen.0, seen.1 + events));
                match refused {
                    true => {
                        prop_assert!(r.is_err());
                        prop_assert_eq!(cc.stats(), stats, "a refused range changes nothing");
                    }
                    false => {
                        let mut dropped = 0;
                        for (k, st) in before.into_iter().enumerate() {
                            taken[p][first + k] = true;
                            if let PageState::Cached {
                                fs: cfs,
                                file,
                                index,
                            } = st
                            {
                                prop_assert_eq!(cfs, fs, "a copy of an unmounted filesystem");
                                dropped += 1;
                                prop_assert!(!cc.contains(fs, file, index));
                                model.remove(&(file, index));
                            }
                        }
                        prop_assert_eq!(r, Ok(dropped));
                    }
                }
            }
            Op::GiveBackRange(p, first, n) => {
                let pages = cc.pool_span(pools[p]).unwrap().1;
                let stats = cc.stats();
                let seen = *calls.lock().unwrap();
                let r = cc.give_back_range(pools[p], first, n);
                let accepted = first + n <= pages && (first..first + n).all(|pg| taken[p][pg]);
                let events = usize::from(accepted && n > 0);
                prop_assert_eq!(*calls.lock().unwrap(), (seen.0, seen.1 + events));
                if accepted {
                    prop_assert_eq!(r, Ok(()));
                    (first..first + n).for_each(|pg| taken[p][pg] = false);
                } else {
                    prop_assert!(r.is_err());
                    prop_assert_eq!(cc.stats(), stats, "a refused range changes nothing");
                }
            }
        }
        prop_assert_eq!(cc.check_invariants(), Ok(()));
        for (&pfn, &st) in frames.lock().unwrap().iter() {
            let (pool, page) = cc.locate_pfn(pfn).unwrap();
            prop_assert_eq!(cc.page_state(pool, page), Ok(st));
        }
        // Cleancache holds copies only of keys the model allows.
        for f in 0..files {
            for i in 0..indexes {
                if cc.contains(fs, f, i) {
                    prop_assert!(model.contains_key(&(f, i)));
                }
            }
        }
        let lendable: usize = taken
            .iter()
            .zip([3usize, 5])
            .map(|(t, n)| t[..n].iter().filter(|&&x| !x).count())
            .sum();
        prop_assert_eq!(cc.stats().lendable_now, lendable);
    }
    Ok(())
}

/// Host timing of GCMA's hot path: take back 3038 cached pages (12 MiB) out
/// of a full pool of 16384 pages, per page, with an observer installed that
/// does nothing but look at the pfns. Run with
/// `cargo test --release -p cleancache --target x86_64-unknown-linux-gnu --
/// --ignored --nocapture`.
#[test]
#[ignore]
fn bench_take_back() {
    use std::time::Instant;
    const POOL: usize = 16384;
    const TAKE: usize = 3038;
    struct Look;
    impl Observer for Look {
        fn on_page(&mut self, pfn: Pfn, _st: PageState) {
            std::hint::black_box(pfn);
        }
        fn on_range(&mut self, pfn: Pfn, count: usize, _st: PageState) {
            std::hint::black_box((pfn, count));
        }
    }
    let mem = pool_mem(POOL);
    let page = content(1, 1, 1);
    for (name, ranged, observed) in [
        ("take_back per page", false, true),
        ("take_back_range", true, true),
        ("take_back_range, no observer", true, false),
    ] {
        let mut best = f64::MAX;
        let mut give = f64::MAX;
        for round in 0..15u64 {
            let mut cc = mounted();
            // SAFETY: leaked memory of POOL pages, reused by rounds one after
            // another (each `cc` is dropped before the next uses it).
            let p = unsafe { cc.add_pool(mem, POOL, Pfn(0x40000)) }.unwrap();
            if observed {
                cc.set_observer(Some(Box::new(Look)));
            }
            for i in 0..POOL as u32 {
                cc.put_page(FS, round * 7 + (i as u64 % 5), i, &page);
            }
            assert_eq!(cc.stats().cached_now, POOL);
            let first = 4096;
            let t = Instant::now();
            if ranged {
                assert_eq!(cc.take_back_range(p, first, TAKE), Ok(TAKE));
            } else {
                for pg in first..first + TAKE {
                    let r = cc.take_back(p, pg).unwrap();
                    assert!(matches!(r, Reclaimed::DroppedCopy { .. }));
                }
            }
            let dt = t.elapsed().as_nanos() as f64 / TAKE as f64;
            let t = Instant::now();
            if ranged {
                cc.give_back_range(p, first, TAKE).unwrap();
            } else {
                for pg in first..first + TAKE {
                    cc.give_back(p, pg).unwrap();
                }
            }
            let dg = t.elapsed().as_nanos() as f64 / TAKE as f64;
            best = best.min(dt);
            give = give.min(dg);
            cc.check_invariants().unwrap();
        }
        std::println!(
            "{name}: take back {best:.1} ns/page, give back {give:.1} ns/page (best of 15)"
        );
    }
}

/// Host timing of the page cache's side: a put into a full pool of 16384
/// pages (CLOCK reuse), with and without a stale entry naming the slot, per
/// put. Run with the other benches (`--ignored --nocapture`).
#[test]
#[ignore]
fn bench_put() {
    use std::time::Instant;
    const POOL: usize = 16384;
    let mem = pool_mem(POOL);
    let page = content(1, 1, 1);
    for drain in [false, true] {
        let mut best = f64::MAX;
        for round in 0..5u64 {
            let mut cc = mounted();
            // SAFETY: leaked memory of POOL pages, used by one round at a time.
            let p = unsafe { cc.add_pool(mem, POOL, Pfn(0)) }.unwrap();
            for i in 0..POOL as u32 {
                cc.put_page(FS, round, i, &page);
            }
            if drain {
                // Every entry goes stale, every page becomes free again.
                cc.take_back_range(p, 0, POOL).unwrap();
                cc.give_back_range(p, 0, POOL).unwrap();
                for i in 0..POOL as u32 {
                    cc.put_page(FS, round + 100, i, &page);
                }
                cc.take_back_range(p, 0, POOL).unwrap();
                cc.give_back_range(p, 0, POOL).unwrap();
            }
            let t = Instant::now();
            for i in 0..POOL as u32 {
                cc.put_page(FS, round + 200, i, &page);
            }
            best = best.min(t.elapsed().as_nanos() as f64 / POOL as f64);
        }
        let what = if drain {
            "stale entry removed on reuse"
        } else {
            "no stale entry"
        };
        std::println!("put into a free page ({what}): {best:.1} ns/put (best of 5)");
    }
}
