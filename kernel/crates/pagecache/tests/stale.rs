//! No stale byte across mounts: the sequence of issue 9 that once read
//! another disk's cleancache copies, as a regression test, and a property
//! test over several mounts of different (and rewritten) disks sharing one
//! real cleancache.

mod common;

use std::cell::RefCell;
use std::ptr::NonNull;
use std::rc::Rc;

use blkdev::{QueueMux, RamDisk};
use cleancache::{Cleancache, FsId};
use common::*;
use fat32::Fat32;
use pagecache::{
    CleancacheHooks, Config, FileId, HeapPageAllocator, LocalPageStates, PAGE_SIZE, PageCache,
    PageIndex,
};
use proptest::prelude::*;

const P: usize = PAGE_SIZE;

/// A real cleancache over heap memory, shared by every mount of a test.
fn shared_cleancache(pages: usize) -> Rc<RefCell<Cleancache>> {
    let mut cc = Cleancache::new();
    let pool: &'static mut [u8] = Box::leak(vec![0u8; pages * P].into_boxed_slice());
    let base = NonNull::new(pool.as_mut_ptr()).unwrap();
    // SAFETY: `pool` is leaked (lives for the rest of the test process), is
    // `pages * P` bytes long and nobody else touches it.
    unsafe { cc.add_pool(base, pages, 0x1000) }.unwrap();
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
    fn put_page(&mut self, file: FileId, index: PageIndex, data: &[u8; PAGE_SIZE]) {
        if let Some(fs) = self.fs {
            self.cc.borrow_mut().put_page(fs, file, index, data);
        }
    }
    fn get_page(&mut self, file: FileId, index: PageIndex, out: &mut [u8; PAGE_SIZE]) -> bool {
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

type SharedCache = PageCache<RamDisk, HeapPageAllocator, LocalPageStates, Shared>;

fn mount_shared(disk: RamDisk, cc: &Rc<RefCell<Cleancache>>, cfg: Config) -> SharedCache {
    let fs = Fat32::mount(QueueMux::new(disk)).unwrap();
    let hooks = Shared {
        cc: cc.clone(),
        fs: None,
    };
    PageCache::new(
        fs,
        HeapPageAllocator::new(),
        LocalPageStates::new(),
        hooks,
        cfg,
    )
}

fn unmount_shared(pc: SharedCache) -> RamDisk {
    let (fs, ..) = pc.unmount().unwrap();
    fs.unmount().unwrap().into_inner()
}

/// Issue 9, stale path 1: a second disk, mounted over the same cleancache,
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
    let pool = cc.borrow().locate_pfn(0x1000).unwrap().0;
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
