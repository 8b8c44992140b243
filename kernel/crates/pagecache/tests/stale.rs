//! No stale byte: the two sequences that once returned data that was not
//! the file's, as regression tests, and a property test over several
//! mounts of different (and rewritten) disks sharing one real cleancache.

mod common;

use std::cell::RefCell;
use std::ptr::NonNull;
use std::rc::Rc;

use blkdev::{QueueMux, RamDisk};
use cleancache::{Cleancache, FsId};
use common::*;
use fat32::{Fat32, FormatOptions};
use pagecache::{
    CleancacheHooks, Config, Error, FileId, HeapPageAllocator, LocalPageStates, PAGE_SIZE,
    PageCache, PageIndex,
};
use proptest::prelude::*;

const P: usize = PAGE_SIZE as usize;

/// A real cleancache over heap memory, shared by every mount of a test.
fn shared_cleancache(pages: usize) -> Rc<RefCell<Cleancache>> {
    let mut cc = Cleancache::new();
    let pool: &'static mut [u8] = Box::leak(vec![0u8; pages * P].into_boxed_slice());
    let base = NonNull::new(pool.as_mut_ptr()).unwrap();
    // SAFETY: `pool` is leaked (lives for the rest of the test process), is
    // `pages * P` bytes long and nobody else touches it.
    unsafe { cc.add_pool(base, pages, cleancache::Pfn(0x1000)) }.unwrap();
    Rc::new(RefCell::new(cc))
}

/// The hooks of one mount: the shared cleancache, keyed by this mount's
/// identity (as the kernel's hooks are).
struct Shared {
    cc: Rc<RefCell<Cleancache>>,
    fs: Option<FsId>,
}

impl CleancacheHooks for Shared {
    fn init_fs(&mut self, volume: u32) {
        self.fs = Some(self.cc.borrow_mut().register_fs(volume));
    }
    fn invalidate_fs(&mut self) {
        if let Some(fs) = self.fs.take() {
            self.cc.borrow_mut().invalidate_fs(fs);
        }
    }
    fn put_page(&mut self, file: FileId, index: PageIndex, data: &[u8; PAGE_SIZE as usize]) {
        if let Some(fs) = self.fs {
            self.cc.borrow_mut().put_page(fs, file, index, data);
        }
    }
    fn get_page(
        &mut self,
        file: FileId,
        index: PageIndex,
        out: &mut [u8; PAGE_SIZE as usize],
    ) -> bool {
        self.fs
            .is_some_and(|fs| self.cc.borrow_mut().get_page(fs, file, index, out))
    }
    fn invalidate_page(&mut self, file: FileId, index: PageIndex) {
        if let Some(fs) = self.fs {
            self.cc.borrow_mut().invalidate_page(fs, file, index);
        }
    }
    fn invalidate_file(&mut self, file: FileId, from: PageIndex) {
        if let Some(fs) = self.fs {
            self.cc.borrow_mut().invalidate_file(fs, file, from);
        }
    }
}

type SharedCache = PageCache<RamDisk, (HeapPageAllocator, Shared), LocalPageStates>;

fn mount_shared(disk: RamDisk, cc: &Rc<RefCell<Cleancache>>, cfg: Config) -> SharedCache {
    let fs = Fat32::mount(QueueMux::new(disk)).unwrap();
    let hooks = Shared {
        cc: cc.clone(),
        fs: None,
    };
    PageCache::new(
        fs,
        (HeapPageAllocator::new(), hooks),
        LocalPageStates::new(),
        cfg,
    )
}

fn unmount_shared(pc: SharedCache) -> RamDisk {
    let (fs, ..) = pc.unmount().unwrap();
    fs.unmount().unwrap().into_inner()
}

/// Stale path 1: a second disk, mounted over the same cleancache,
/// whose file sits at the same directory-entry position (same `FileId`),
/// must not read the first disk's cached copies.
#[test]
fn a_second_disk_never_reads_the_first_disks_cleancache_copies() {
    let cc = shared_cleancache(16);
    let a = content(1, "disk a", 2 * P);
    let b = content(2, "disk b", 2 * P);
    let mut pc = mount_shared(disk_with(&[("/f", a.clone())]), &cc, cfg(8, 0, 0));
    let id_a = pc.open("/f").unwrap();
    let mut buf = vec![0u8; 2 * P];
    pc.read(id_a, 0, &mut buf).unwrap();
    assert_eq!(buf, a);
    // Both pages go to cleancache, as they would under memory pressure.
    assert_eq!(pc.drop_clean_pages(), 2);
    unmount_shared(pc);

    let mut pc = mount_shared(disk_with(&[("/f", b.clone())]), &cc, cfg(8, 0, 0));
    let id_b = pc.open("/f").unwrap();
    assert_eq!(
        id_a, id_b,
        "the test needs the same directory-entry position"
    );
    buf.fill(0);
    pc.read(id_b, 0, &mut buf).unwrap();
    let stale = buf.iter().zip(&a).filter(|(x, y)| x == y).count();
    assert!(
        buf == b,
        "{stale} of {} bytes read from the other disk's copies",
        b.len()
    );
    assert_eq!(pc.stats().cc_demand_restores, 0, "no hit for another disk");
    unmount_shared(pc);
}

/// A disk whose only free clusters held a deleted file full of `0xA5`
/// bytes, with `/b` (100 bytes of `b'B'`) and `/c` (3 pages) on it.
fn disk_with_deleted_file() -> RamDisk {
    let mut disk = RamDisk::new(34 * 2048);
    fat32::format(&mut disk, &FormatOptions::default()).unwrap();
    let mut fs = Fat32::mount(disk).unwrap();
    let b = fs.create("/b").unwrap();
    fs.write_at(b, 0, &[b'B'; 100]).unwrap();
    let c = fs.create("/c").unwrap();
    fs.write_at(c, 0, &content(3, "c", 3 * P)).unwrap();
    let old = fs.create("/old").unwrap();
    let free = fs.free_clusters() as usize * fs.geometry().cluster_bytes() as usize;
    fs.write_at(old, 0, &vec![0xA5; free]).unwrap();
    assert_eq!(fs.free_clusters(), 0);
    fs.remove("/old").unwrap();
    fs.unmount().unwrap()
}

/// A cache of 4 pages over [`disk_with_deleted_file`], all pinned: `/b`'s
/// only (old last) page and `/c`'s 3. Returns the cache, `/b` and the pins.
fn pinned_full() -> (Cache, FileId, [pagecache::Frame; 4]) {
    let (mut pc, _log) = cache_on(disk_with_deleted_file(), cfg(4, 0, 0), false);
    let b = pc.open("/b").unwrap();
    let c = pc.open("/c").unwrap();
    let pins = [
        pc.pin_page(b, 0).unwrap(),
        pc.pin_page(c, 0).unwrap(),
        pc.pin_page(c, 1).unwrap(),
        pc.pin_page(c, 2).unwrap(),
    ];
    (pc, b, pins)
}

/// What `/b` must hold after a growing write of `data` at `offset` over
/// its 100 bytes returned `r`: the write's contract.
fn expected_after(r: Result<usize, Error>, offset: usize, data: &[u8]) -> Vec<u8> {
    let mut want = vec![b'B'; 100];
    match r {
        Err(_) => {}
        Ok(n) => {
            assert!(n > 0 && n <= data.len(), "write reported {n} bytes");
            want.resize(offset, 0);
            want.extend_from_slice(&data[..n]);
        }
    }
    want
}

/// Stale path 2: a growing write that fails half way (every cached
/// page pinned, the old last page among them) must leave the file as it
/// was, or report exactly what it wrote; never a size over clusters the
/// write did not fill (here: the deleted file's bytes).
#[test]
fn a_failed_growing_write_never_exposes_a_deleted_files_bytes() {
    // offset 100: an append; offset 2P + 100: a gap of zeros first.
    for offset in [100usize, 2 * P + 100] {
        let (mut pc, b, pins) = pinned_full();
        // No 0xA5 in what is written: any 0xA5 read back is the old file's.
        let data: Vec<u8> = content(4, "new", 3 * P)
            .into_iter()
            .map(|x| if x == 0xA5 { 0x5A } else { x })
            .collect();
        let r = pc.write(b, offset as u64, &data);
        assert!(r != Ok(data.len()), "the budget is full of pinned pages");
        for f in pins {
            pc.unpin_page(f).unwrap();
        }
        let want = expected_after(r, offset, &data);
        assert_eq!(
            pc.file_size(b).unwrap(),
            want.len() as u64,
            "{offset}: {r:?}"
        );
        let mut back = vec![0u8; 16 * P];
        let n = pc.read(b, 0, &mut back).unwrap();
        let exposed = back[..n].iter().filter(|&&x| x == 0xA5).count();
        assert_eq!(
            exposed, 0,
            "{offset}: deleted file's bytes readable ({r:?})"
        );
        assert!(back[..n] == want[..], "{offset}: content ({r:?})");
        check(&pc);
        // The same on the disk, through a fresh mount.
        let (fs, ..) = pc.unmount().unwrap();
        let mut fs = Fat32::mount(fs.unmount().unwrap().into_inner().inner).unwrap();
        let m = fs.lookup("/b").unwrap();
        assert_eq!(m.size, want.len() as u64);
        let n = fs.read_at(m.id, 0, &mut back).unwrap();
        assert!(back[..n] == want[..], "{offset}: on disk ({r:?})");
    }
}

/// The same through `truncate` growing the file.
#[test]
fn a_failed_growing_truncate_never_exposes_a_deleted_files_bytes() {
    let (mut pc, b, pins) = pinned_full();
    assert_eq!(pc.truncate(b, 5 * P as u64), Err(Error::NoMemory));
    for f in pins {
        pc.unpin_page(f).unwrap();
    }
    assert_eq!(pc.file_size(b).unwrap(), 100);
    let mut back = vec![0u8; 8 * P];
    let n = pc.read(b, 0, &mut back).unwrap();
    assert_eq!(&back[..n], &[b'B'; 100][..]);
    check(&pc);
}

const DISKS: usize = 3;
const FILES: usize = 3;
/// Sizes of `/f0`.. on every disk: the same layout, so the same file ids.
const SIZES: [usize; FILES] = [3 * P, 2 * P + 100, 5 * P + 7];
const POOL_PAGES: usize = 12;

fn file_path(f: usize) -> String {
    format!("/f{f}")
}

/// Disk content: every file filled from `(disk, version)`.
fn file_content(disk: usize, version: u64, f: usize) -> Vec<u8> {
    content(version * 16 + disk as u64, &file_path(f), SIZES[f])
}

/// A freshly formatted disk laid out like every other one (same format
/// options, same files created in the same order).
fn laid_out(disk: usize, version: u64) -> (RamDisk, Vec<Vec<u8>>) {
    let files: Vec<Vec<u8>> = (0..FILES).map(|f| file_content(disk, version, f)).collect();
    let named: Vec<(String, Vec<u8>)> = files
        .iter()
        .enumerate()
        .map(|(f, c)| (file_path(f), c.clone()))
        .collect();
    let named: Vec<(&str, Vec<u8>)> = named.iter().map(|(p, c)| (p.as_str(), c.clone())).collect();
    (disk_with(&named), files)
}

#[derive(Clone, Debug)]
enum MOp {
    /// Unmount what is mounted, mount disk `d`.
    Mount(usize),
    /// Read `pages` pages of file `f` from page `page` on the mounted disk.
    Read {
        f: usize,
        page: usize,
        pages: usize,
    },
    /// Evict every clean page: into cleancache.
    DropClean,
    /// Write `len` bytes of `byte` at `offset` of file `f` on the mounted
    /// disk, through the page cache.
    Write {
        f: usize,
        offset: usize,
        len: usize,
        byte: u8,
    },
    /// Rewrite disk `d` (unmounting it first if mounted): formatted again,
    /// the same files with new content.
    Rewrite(usize),
    /// GCMA takes a pool page back, or gives it back.
    TakeBack(usize),
    GiveBack(usize),
}

fn mop() -> impl Strategy<Value = MOp> {
    prop_oneof![
        3 => (0..DISKS).prop_map(MOp::Mount),
        6 => (0..FILES, 0..6usize, 1..4usize).prop_map(|(f, page, pages)| MOp::Read { f, page, pages }),
        3 => Just(MOp::DropClean),
        2 => (0..FILES, 0..6 * P, 1..2 * P, any::<u8>())
            .prop_map(|(f, offset, len, byte)| MOp::Write { f, offset, len, byte }),
        2 => (0..DISKS).prop_map(MOp::Rewrite),
        1 => (0..POOL_PAGES).prop_map(MOp::TakeBack),
        1 => (0..POOL_PAGES).prop_map(MOp::GiveBack),
    ]
}

fn run_mounts(ops: &[MOp], budget: usize, ra: u32) -> Result<(), TestCaseError> {
    let cc = shared_cleancache(POOL_PAGES);
    let pool = cc.borrow().locate_pfn(cleancache::Pfn(0x1000)).unwrap().0;
    let mut disks: Vec<Option<RamDisk>> = Vec::new();
    let mut model: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut versions = [0u64; DISKS];
    for d in 0..DISKS {
        let (disk, files) = laid_out(d, 0);
        disks.push(Some(disk));
        model.push(files);
    }
    let mut mounted: Option<(usize, SharedCache, Vec<FileId>)> = None;
    let unmount = |m: &mut Option<(usize, SharedCache, Vec<FileId>)>,
                   disks: &mut Vec<Option<RamDisk>>| {
        if let Some((d, pc, _)) = m.take() {
            disks[d] = Some(unmount_shared(pc));
        }
    };
    for op in ops {
        match *op {
            MOp::Mount(d) => {
                unmount(&mut mounted, &mut disks);
                let mut pc = mount_shared(disks[d].take().unwrap(), &cc, cfg(budget, ra, ra * 2));
                let ids = (0..FILES)
                    .map(|f| pc.open(&file_path(f)).unwrap())
                    .collect();
                mounted = Some((d, pc, ids));
            }
            MOp::Read { f, page, pages } => {
                let Some((d, pc, ids)) = mounted.as_mut() else {
                    continue;
                };
                let m = &model[*d][f];
                let from = (page * P).min(m.len());
                let mut buf = vec![0u8; pages * P];
                let n = pc.read(ids[f], from as u64, &mut buf).unwrap();
                let want = &m[from..(from + pages * P).min(m.len())];
                prop_assert_eq!(n, want.len());
                prop_assert!(
                    &buf[..n] == want,
                    "disk {} file {} from {}: not the disk's bytes",
                    d,
                    f,
                    from
                );
            }
            MOp::DropClean => {
                if let Some((_, pc, _)) = mounted.as_mut() {
                    pc.drop_clean_pages();
                }
            }
            MOp::Write {
                f,
                offset,
                len,
                byte,
            } => {
                let Some((d, pc, ids)) = mounted.as_mut() else {
                    continue;
                };
                let data = vec![byte; len];
                prop_assert_eq!(pc.write(ids[f], offset as u64, &data), Ok(len));
                let m = &mut model[*d][f];
                if m.len() < offset + len {
                    m.resize(offset + len, 0);
                }
                m[offset..offset + len].copy_from_slice(&data);
            }
            MOp::Rewrite(d) => {
                if mounted.as_ref().is_some_and(|m| m.0 == d) {
                    unmount(&mut mounted, &mut disks);
                }
                versions[d] += 1;
                let (disk, files) = laid_out(d, versions[d]);
                disks[d] = Some(disk);
                model[d] = files;
            }
            MOp::TakeBack(pg) => {
                let _ = cc.borrow_mut().take_back(pool, pg);
            }
            MOp::GiveBack(pg) => {
                let _ = cc.borrow_mut().give_back(pool, pg);
            }
        }
        let c = cc.borrow();
        prop_assert_eq!(c.check_invariants(), Ok(()));
        // Only the mounted disk may have copies.
        if mounted.is_none() {
            prop_assert_eq!(c.stats().cached_now, 0);
        }
    }
    unmount(&mut mounted, &mut disks);
    prop_assert_eq!(cc.borrow().stats().cached_now, 0, "unmount leaves no copy");
    // Every disk holds its model.
    for (d, disk) in disks.into_iter().enumerate() {
        let mut fs = Fat32::mount(disk.unwrap()).unwrap();
        for (f, want) in model[d].iter().enumerate() {
            let m = fs.lookup(&file_path(f)).unwrap();
            let mut back = vec![0u8; m.size as usize];
            fs.read_at(m.id, 0, &mut back).unwrap();
            prop_assert!(back == *want, "disk {} file {} on disk", d, f);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Mount, read, unmount, rewrite the disk or mount another, read again,
    /// over three disks laid out alike sharing one cleancache: every byte
    /// read equals the mounted disk's.
    #[test]
    fn every_byte_read_is_the_mounted_disks(ops in proptest::collection::vec(mop(), 1..40),
                                            budget in 2usize..6, ra in 0u32..3) {
        run_mounts(&ops, budget, ra)?;
    }
}
