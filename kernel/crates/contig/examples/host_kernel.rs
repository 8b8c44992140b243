//! contig wired into a small "kernel" that runs on the host: the three
//! pieces a kernel supplies (memory for the GCMA area, frame descriptors
//! kept in sync through the cleancache observer, a CMA migrator) and a
//! camera-like sequence of contiguous allocations while the page cache keeps
//! cleancache full and the page allocator has borrowed CMA pages.
//!
//! Run it with
//! `cargo run -p contig --example host_kernel --target x86_64-unknown-linux-gnu`
//! (the workspace builds for aarch64-unknown-none by default). It checks
//! every result it prints and exits non-zero (a panic) if one is wrong.

use std::alloc::{Layout, alloc_zeroed};
use std::collections::{BTreeMap, BTreeSet};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

use cleancache::{PAGE_SIZE, PageBytes};
use contig::{
    AreaKind, Areas, Cleancache, ContigError, MigrateError, Migrator, Moved, PageState, Pfn, Select,
};

/// Where this toy kernel places its areas (pfns of an imaginary machine).
const GCMA_PFN: Pfn = Pfn(0x5_0000);
const CMA_PFN: Pfn = Pfn(0x5_8000);
const CARVEOUT_PFN: Pfn = Pfn(0x5_4000);
const AREA_PAGES: usize = 64;

/// The kernel's frame descriptors, reduced to what the observer reports.
type FrameStates = Arc<Mutex<BTreeMap<Pfn, PageState>>>;

/// The cleancache observer: one call per page change, one per range taken
/// back or given back.
struct Mirror(FrameStates);

impl cleancache::Observer for Mirror {
    fn on_page(&mut self, pfn: Pfn, state: PageState) {
        self.0.lock().unwrap().insert(pfn, state);
    }
    fn on_range(&mut self, first: Pfn, count: usize, state: PageState) {
        let mut frames = self.0.lock().unwrap();
        for pfn in (0..count as u64).map(|i| first + i) {
            frames.insert(pfn, state);
        }
    }
}

/// The kernel's CMA migrator: lent pages hold page-cache data; migrating
/// one copies it to a frame outside every area, unless a reader pins it.
#[derive(Default)]
struct PageAllocator {
    /// Contents of the CMA pages lent to the page cache.
    lent: BTreeMap<Pfn, Vec<u8>>,
    /// Lent pages a reader holds right now: they cannot move.
    pinned: BTreeSet<Pfn>,
    /// Where migrated pages went (their contents, by old pfn).
    moved: BTreeMap<Pfn, Vec<u8>>,
}

impl Migrator for PageAllocator {
    fn migrate(&mut self, pfn: Pfn) -> Result<Moved, MigrateError> {
        if self.pinned.contains(&pfn) {
            return Err(MigrateError::Busy);
        }
        let data = self.lent.remove(&pfn).ok_or(MigrateError::NoMemory)?;
        self.moved.insert(pfn, data);
        Ok(Moved::Copied)
    }
}

/// Page-aligned memory that stands for the GCMA area's frames.
fn area_memory(pages: usize) -> NonNull<u8> {
    let layout =
        Layout::from_size_align(pages * PAGE_SIZE as usize, PAGE_SIZE as usize).expect("layout");
    // SAFETY: the layout has a non-zero size.
    NonNull::new(unsafe { alloc_zeroed(layout) }).expect("host memory")
}

/// The byte pattern of page `index` of file `file`.
fn file_page(file: u64, index: u32) -> PageBytes {
    core::array::from_fn(|i| (file as usize * 31 + index as usize * 7 + i) as u8)
}

fn main() -> Result<(), ContigError> {
    // 1. The registry, one per kernel, behind the kernel's one lock.
    let mut areas: Areas = Areas::new(Cleancache::new());

    // 2. Frame descriptors follow every pool page change (observer).
    let frames: FrameStates = Arc::default();
    areas
        .backend_mut()
        .set_observer(Some(Box::new(Mirror(frames.clone()))));

    // 3. The three areas. GCMA memory is the kernel's to hand over.
    let base = area_memory(AREA_PAGES);
    // SAFETY: `base` is AREA_PAGES pages of memory nobody else uses, alive
    // until the process exits (never freed).
    let gcma = unsafe { areas.add_gcma_memory("gcma", base, GCMA_PFN, AREA_PAGES) }?;
    let cma = areas.add_cma("cma", CMA_PFN, AREA_PAGES)?;
    let carveout = areas.add_carveout("carveout", CARVEOUT_PFN, AREA_PAGES)?;

    // 4. The page cache evicts clean pages into cleancache until the GCMA
    //    area is full of copies, and reads one back (exclusive get). Every
    //    key names the mount (`register_fs` at mount, `invalidate_fs` at
    //    unmount), the file and the page.
    let fs = areas.backend_mut().register_fs(0x1234_5678);
    for index in 0..AREA_PAGES as u32 {
        areas
            .backend_mut()
            .put_page(fs, 1, index, &file_page(1, index));
    }
    let mut out = [0u8; PAGE_SIZE as usize];
    assert!(areas.backend_mut().get_page(fs, 1, 5, &mut out));
    assert_eq!(out, file_page(1, 5), "cleancache returned other bytes");
    assert_eq!(areas.stats(gcma)?.cached, AREA_PAGES - 1);

    // 5. The page allocator borrows half the CMA area; a reader pins a page.
    let mut pages = PageAllocator::default();
    for _ in 0..AREA_PAGES / 2 {
        let pfn = areas.lend_page().expect("a lendable CMA page");
        pages
            .lent
            .insert(pfn, file_page(2, (pfn - CMA_PFN) as u32).to_vec());
    }
    let pinned = CMA_PFN + 3;
    pages.pinned.insert(pinned);

    // 6. A camera session: a 16-page frame buffer from each kind.
    let fb = areas.alloc(Select::Kind(AreaKind::Gcma), 16, 16, &mut pages)?;
    assert_eq!(fb.area, gcma);
    let dropped = areas.stats(gcma)?.dropped_copies;
    println!(
        "gcma: 16 pages at pfn {:#x}, {dropped} cached copies dropped",
        fb.pfn
    );
    let states = frames.lock().unwrap();
    assert!((0..16).all(|i| states[&(fb.pfn + i)] == PageState::TakenBack));
    drop(states);
    // The driver owns those frames now: what it writes, it reads back.
    let offset = (fb.pfn - GCMA_PFN) as usize * PAGE_SIZE as usize;
    // SAFETY: the allocation's 16 pages lie inside `base`'s memory and are
    // the caller's until freed; cleancache no longer touches them.
    let buffer = unsafe {
        std::slice::from_raw_parts_mut(base.as_ptr().add(offset), 16 * PAGE_SIZE as usize)
    };
    buffer.fill(0xa5);
    assert!(buffer.iter().all(|b| *b == 0xa5));

    let cma_fb = areas.alloc(Select::Id(cma), 16, 16, &mut pages)?;
    let s = areas.stats(cma)?;
    println!(
        "cma:  16 pages at pfn {:#x}, {} pages migrated, {} busy retries, {} ranges given up",
        cma_fb.pfn, s.migrated, s.busy_retries, s.ranges_given_up
    );
    // The first range held the pinned page: given up after its other 15
    // pages moved; the next range's 16 lent pages moved too.
    assert!(!(cma_fb.pfn..cma_fb.pfn + 16).contains(&pinned));
    assert_eq!((s.migrated, s.ranges_given_up, s.lent), (31, 1, 1));
    for (pfn, data) in &pages.moved {
        assert_eq!(
            data[..],
            file_page(2, (*pfn - CMA_PFN) as u32)[..],
            "migration lost data"
        );
    }

    let co_fb = areas.alloc(Select::Name("carveout"), 16, 16, &mut pages)?;
    assert_eq!(co_fb.area, carveout);
    println!("carveout: 16 pages at pfn {:#x}", co_fb.pfn);

    // 7. The report a kernel prints, then everything freed and checked.
    let mut table = String::new();
    areas.write_table(&mut table).expect("write to a String");
    print!("{table}");
    for a in [fb, cma_fb, co_fb] {
        areas.free(a)?;
    }
    assert_eq!(
        areas.free(fb),
        Err(ContigError::DoubleFree {
            pfn: fb.pfn,
            count: 16
        })
    );
    assert_eq!(
        areas.check(),
        Ok(()),
        "area bookkeeping disagrees with cleancache"
    );
    let report = areas.mem_report();
    println!(
        "after the session: {} pages free for contiguous allocation now (guaranteed), {} possibly",
        report.contig_guaranteed(),
        report.contig_possible()
    );
    Ok(())
}
