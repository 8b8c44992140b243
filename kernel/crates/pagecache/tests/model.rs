//! Property test: random operation sequences on a few files, under a tiny
//! page budget and with an exclusive storing cleancache stand-in, against a
//! plain in-memory model of the file contents. Every read must return the
//! model's bytes; the counter invariants must hold after every step; after a
//! final sync and re-mount the disk must hold the model's contents.

mod common;

use common::*;
use fat32::Fat32;
use pagecache::{Error, HeapPageAllocator, PAGE_SIZE};
use proptest::prelude::*;

const FILES: usize = 3;
const MAX_LEN: u64 = 12 * PAGE_SIZE;

#[derive(Debug, Clone)]
enum Op {
    Write {
        file: usize,
        offset: u64,
        len: usize,
        byte: u8,
    },
    Read {
        file: usize,
        offset: u64,
        len: usize,
    },
    Truncate {
        file: usize,
        len: u64,
    },
    Delete {
        file: usize,
    },
    Sync,
    DropClean,
    Shrink(usize),
    Migrate {
        file: usize,
        page: u32,
    },
    Release {
        file: usize,
        page: u32,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let f = 0..FILES;
    prop_oneof![
        4 => (f.clone(), 0..MAX_LEN, 1..3 * PAGE_SIZE as usize, any::<u8>())
            .prop_map(|(file, offset, len, byte)| Op::Write { file, offset, len, byte }),
        4 => (f.clone(), 0..MAX_LEN + 10, 0..4 * PAGE_SIZE as usize)
            .prop_map(|(file, offset, len)| Op::Read { file, offset, len }),
        2 => (f.clone(), 0..MAX_LEN).prop_map(|(file, len)| Op::Truncate { file, len }),
        1 => f.clone().prop_map(|file| Op::Delete { file }),
        1 => Just(Op::Sync),
        1 => Just(Op::DropClean),
        1 => (1..4usize).prop_map(Op::Shrink),
        1 => (f.clone(), 0..12u32).prop_map(|(file, page)| Op::Migrate { file, page }),
        1 => (f, 0..12u32).prop_map(|(file, page)| Op::Release { file, page }),
    ]
}

fn path(i: usize) -> String {
    format!("/model file {i}.dat")
}

fn run(ops: &[Op], budget: usize, ra: u32, spc: u8) -> Result<(), TestCaseError> {
    let (mut pc, _log) = cache_on(disk_with_clusters(&[], spc), cfg(budget, ra, ra * 2), true);
    let mut model: Vec<Option<Vec<u8>>> = vec![None; FILES];
    let mut ids = [0u64; FILES];
    let mut spare = HeapPageAllocator::new();
    for op in ops {
        match *op {
            Op::Write {
                file,
                offset,
                len,
                byte,
            } => {
                if model[file].is_none() {
                    ids[file] = pc.create(&path(file)).unwrap();
                    model[file] = Some(Vec::new());
                }
                let data: Vec<u8> = (0..len).map(|i| byte.wrapping_add(i as u8)).collect();
                pc.write(ids[file], offset, &data).unwrap();
                let m = model[file].as_mut().unwrap();
                let end = offset as usize + len;
                if m.len() < end {
                    m.resize(end, 0);
                }
                m[offset as usize..end].copy_from_slice(&data);
            }
            Op::Read { file, offset, len } => {
                let Some(m) = &model[file] else {
                    prop_assert!(pc.open(&path(file)).is_err());
                    continue;
                };
                let mut buf = vec![0xEEu8; len];
                let r = pc.read(ids[file], offset, &mut buf);
                if offset as usize > m.len() {
                    prop_assert!(matches!(r, Err(Error::BeyondEof { .. })), "{:?}", r);
                } else {
                    let n = r.unwrap();
                    let want = &m[offset as usize..(offset as usize + len).min(m.len())];
                    prop_assert_eq!(n, want.len());
                    prop_assert_eq!(&buf[..n], want);
                }
            }
            Op::Truncate { file, len } => {
                if let Some(m) = model[file].as_mut() {
                    pc.truncate(ids[file], len).unwrap();
                    m.resize(len as usize, 0);
                }
            }
            Op::Delete { file } => {
                if model[file].take().is_some() {
                    pc.remove(&path(file)).unwrap();
                }
            }
            Op::Sync => {
                pc.sync().unwrap();
                prop_assert_eq!(pc.dirty_pages(), 0);
            }
            Op::DropClean => {
                pc.drop_clean_pages();
            }
            Op::Shrink(n) => {
                pc.shrink(n).unwrap();
            }
            Op::Migrate { file, page } => {
                if model[file].is_some()
                    && let Some(old) = pc.page_frame(ids[file], page)
                {
                    let new = pagecache::PageAllocator::alloc_page(&mut spare).unwrap();
                    match pc.migrate(old, new) {
                        Ok(()) => {
                            spare.hand_over(new);
                            pagecache::PageAllocator::free_page(pc.allocator_mut(), old)
                        }
                        Err(_) => pagecache::PageAllocator::free_page(&mut spare, new),
                    }
                }
            }
            Op::Release { file, page } => {
                if model[file].is_some()
                    && let Some(fr) = pc.page_frame(ids[file], page)
                    && pc.release_frame(fr).is_ok()
                {
                    pagecache::PageAllocator::free_page(pc.allocator_mut(), fr);
                }
            }
        }
        prop_assert!(pc.cached_pages() <= budget);
        check(&pc);
        for (i, m) in model.iter().enumerate() {
            if let Some(m) = m {
                prop_assert_eq!(pc.file_size(ids[i]).unwrap(), m.len() as u64);
            }
        }
    }
    // Everything reaches the disk.
    let (fs, _, _) = pc.unmount().unwrap();
    let disk = fs.unmount().unwrap();
    let mut fs = Fat32::mount(disk).unwrap();
    for (i, m) in model.iter().enumerate() {
        match m {
            Some(m) => {
                let id = fs.lookup(&path(i)).unwrap().id;
                let mut back = vec![0u8; m.len()];
                prop_assert_eq!(fs.read_at(id, 0, &mut back).unwrap(), m.len());
                prop_assert!(back == *m, "file {} differs on disk", i);
            }
            None => prop_assert!(fs.lookup(&path(i)).is_err()),
        }
    }
    // And a fresh cache over the same disk reads the same.
    let disk = fs.unmount().unwrap().into_inner();
    let (mut pc, _log) = cache_on(disk.inner, cfg(budget, ra, ra * 2), false);
    for (i, m) in model.iter().enumerate() {
        if let Some(m) = m {
            let id = pc.open(&path(i)).unwrap();
            let mut back = vec![0u8; m.len()];
            pc.read(id, 0, &mut back).unwrap();
            prop_assert!(back == *m);
        }
    }
    check(&pc);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_ops_match_the_model(ops in proptest::collection::vec(op(), 1..60),
                                  budget in 1usize..6, ra in 0u32..4,
                                  spc in prop_oneof![Just(1u8), Just(8), Just(16)]) {
        run(&ops, budget, ra, spc)?;
    }
}

/// Under injected device faults nothing panics, the counters stay
/// consistent, and once the faults are gone a sync succeeds (dirty pages
/// were kept, not lost) and every file reads back whole.
fn run_faulty(ops: &[Op], bad: &[(bool, u64)], budget: usize) -> Result<(), TestCaseError> {
    use blkdev::{FaultyDisk, QueueMux, RamDisk};
    use pagecache::{LocalPageStates, NoCleancache, PageCache};
    let disk = disk_with(&[]);
    let faulty = FaultyDisk::new(RamDisk::from_vec(disk.into_vec()));
    let fs = Fat32::mount(QueueMux::new(faulty)).unwrap();
    let mut pc = PageCache::new(
        fs,
        (HeapPageAllocator::new(), NoCleancache),
        LocalPageStates::new(),
        cfg(budget, 2, 4),
    );
    // Faults only in the data area, from the start of the file data on, so
    // that creating files works and file pages hit them.
    let first_data = pc.fs().geometry().first_data_sector;
    for &(read, s) in bad {
        let sector = first_data + 1 + s;
        if read {
            pc.device_mut().fail_read(sector);
        } else {
            pc.device_mut().fail_write(sector);
        }
    }
    let mut ids = [None; FILES];
    for op in ops {
        match *op {
            Op::Write {
                file,
                offset,
                len,
                byte,
            } => {
                if ids[file].is_none() {
                    ids[file] = pc.create(&path(file)).ok();
                }
                if let Some(id) = ids[file] {
                    let _ = pc.write(id, offset, &vec![byte; len]);
                }
            }
            Op::Read { file, offset, len } => {
                if let Some(id) = ids[file] {
                    let _ = pc.read(id, offset, &mut vec![0; len]);
                }
            }
            Op::Truncate { file, len } => {
                if let Some(id) = ids[file] {
                    let _ = pc.truncate(id, len);
                }
            }
            Op::Delete { file } => {
                if ids[file].is_some() && pc.remove(&path(file)).is_ok() {
                    ids[file] = None;
                }
            }
            Op::Sync => {
                let _ = pc.sync();
            }
            Op::DropClean => {
                pc.drop_clean_pages();
            }
            Op::Shrink(n) => {
                let _ = pc.shrink(n);
            }
            Op::Migrate { .. } | Op::Release { .. } => {}
        }
        prop_assert!(pc.cached_pages() <= budget);
        if let Err(e) = pc.check_stats() {
            return Err(TestCaseError::fail(e));
        }
    }
    pc.device_mut().clear();
    if pc.sync().is_err() {
        // A write error seen before the faults were cleared is reported once.
        pc.sync().unwrap();
    }
    prop_assert_eq!(pc.dirty_pages(), 0);
    for id in ids.iter().flatten() {
        let size = pc.file_size(*id).unwrap();
        let mut b = vec![0u8; size as usize];
        prop_assert_eq!(pc.read(*id, 0, &mut b).unwrap(), size as usize);
    }
    pc.check_stats().map_err(TestCaseError::fail)?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn device_faults_never_panic_or_lose_dirty_pages(
        ops in proptest::collection::vec(op(), 1..40),
        bad in proptest::collection::vec((any::<bool>(), 0u64..200), 1..6),
        budget in 1usize..6,
    ) {
        run_faulty(&ops, &bad, budget)?;
    }
}
