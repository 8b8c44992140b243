//! The program `cargo xtask cleancache-bench` runs under
//! `valgrind --tool=callgrind` to count the instructions of one GCMA or
//! cleancache operation per page, against a carveout's allocation.
//!
//! `ccbench OP PAGES` sets up a GCMA pool of 16,384 pages (64 MiB) whose
//! every page holds a cleancache copy (as in the demo under page-cache
//! pressure) with an observer installed that only looks at what it is told
//! (the kernel's writes the frame table), then calls `measure_OP` once on
//! PAGES pages. Only the `measure_*` function is counted
//! (`--toggle-collect`), so setup and teardown are not. Each operation
//! checks its outcome (pages dropped, bytes restored) and exits non-zero if
//! it is wrong. Operations:
//!
//! * `take_back_range`: `Cleancache::take_back_range` of PAGES cached pages.
//! * `give_back_range`: `Cleancache::give_back_range` of them again.
//! * `gcma_alloc`: the whole GCMA allocation (`Areas::alloc`: bitmap search,
//!   take-back, bookkeeping) of PAGES pages.
//! * `put`: PAGES stores into free pages (4 KiB copy each).
//! * `get`: PAGES restores (hits, 4 KiB copy each).
//! * `evict`: PAGES stores into the full pool, each reusing a cached page.
//! * `carveout_alloc`: the carveout's allocation (`Areas::alloc`) of PAGES.
//! * `bitmap_mark`: marking PAGES bits used in a `contig::Bitmap`, the
//!   carveout's own work for an allocation.
//!
//! Run by hand with `cargo run --release -p contig --example ccbench
//! --target x86_64-unknown-linux-gnu -- take_back_range 3038`.

use std::alloc::{Layout, alloc_zeroed};
use std::hint::black_box;
use std::process::ExitCode;
use std::ptr::NonNull;

use cleancache::{FsId, PAGE_SIZE, PageBytes};
use contig::{Areas, Bitmap, Cleancache, NoMigrator, PageState, Pfn, PoolId, Select};

const POOL: usize = 16384;
const BASE_PFN: Pfn = Pfn(0x40000);

/// An observer that looks at every event, as the kernel's does (which then
/// writes the frame table).
struct Look;

impl cleancache::Observer for Look {
    fn on_page(&mut self, pfn: Pfn, state: PageState) {
        black_box((pfn, state));
    }
    fn on_range(&mut self, pfn: Pfn, count: usize, state: PageState) {
        black_box((pfn, count, state));
    }
}

fn install_observer(cc: &mut Cleancache) {
    cc.set_observer(Some(Box::new(Look)));
}

fn memory(pages: usize) -> NonNull<u8> {
    let layout =
        Layout::from_size_align(pages * PAGE_SIZE as usize, PAGE_SIZE as usize).expect("layout");
    // SAFETY: the layout has a non-zero size.
    NonNull::new(unsafe { alloc_zeroed(layout) }).expect("host memory")
}

fn page(file: u64, index: u32) -> Box<PageBytes> {
    let mut p = Box::new([0u8; PAGE_SIZE as usize]);
    for (i, b) in p.iter_mut().enumerate() {
        *b = (file as usize * 31 + index as usize * 7 + i) as u8;
    }
    p
}

/// A registry with one GCMA area of `POOL` pages, every page a copy of
/// `(fs, 1, i)` when `fill`.
fn gcma(fill: bool) -> (Areas<Cleancache>, FsId, PoolId) {
    let mut areas = Areas::new(Cleancache::new());
    let fs = areas.backend_mut().register_fs(0x1234);
    install_observer(areas.backend_mut());
    // SAFETY: POOL pages of zeroed memory nobody else uses, never freed.
    unsafe { areas.add_gcma_memory("gcma", memory(POOL), BASE_PFN, POOL) }.expect("gcma area");
    let pool = areas.backend().locate_pfn(BASE_PFN).expect("pool").0;
    if fill {
        let data = page(1, 0);
        for i in 0..POOL as u32 {
            areas.backend_mut().put_page(fs, 1, i, &data);
        }
        assert_eq!(areas.backend().stats().cached_now, POOL);
    }
    (areas, fs, pool)
}

#[inline(never)]
fn measure_take_back_range(cc: &mut Cleancache, pool: PoolId, n: usize) -> usize {
    cc.take_back_range(pool, 4096, n).expect("take back")
}

#[inline(never)]
fn measure_give_back_range(cc: &mut Cleancache, pool: PoolId, n: usize) {
    cc.give_back_range(pool, 4096, n).expect("give back")
}

#[inline(never)]
fn measure_gcma_alloc(areas: &mut Areas<Cleancache>, n: usize) -> contig::Allocation {
    areas
        .alloc(Select::Name("gcma"), n, 1, &mut NoMigrator)
        .expect("gcma alloc")
}

#[inline(never)]
fn measure_carveout_alloc(areas: &mut Areas<Cleancache>, n: usize) -> contig::Allocation {
    areas
        .alloc(Select::Name("carve"), n, 1, &mut NoMigrator)
        .expect("carveout alloc")
}

#[inline(always)]
fn puts(cc: &mut Cleancache, fs: FsId, file: u64, data: &PageBytes, n: usize) {
    for i in 0..n as u32 {
        cc.put_page(fs, file, i, data);
    }
}

#[inline(never)]
fn measure_put(cc: &mut Cleancache, fs: FsId, data: &PageBytes, n: usize) {
    puts(cc, fs, 2, data, n);
}

/// As `measure_put`, another file (a distinct body, so that the linker
/// cannot fold the two functions into one symbol).
#[inline(never)]
fn measure_evict(cc: &mut Cleancache, fs: FsId, data: &PageBytes, n: usize) {
    puts(cc, fs, 3, data, n);
}

#[inline(never)]
fn measure_get(cc: &mut Cleancache, fs: FsId, n: usize, out: &mut PageBytes) -> usize {
    (0..n as u32)
        .filter(|&i| cc.get_page(fs, 1, i, out))
        .count()
}

#[inline(never)]
fn measure_bitmap_mark(map: &mut Bitmap, n: usize) {
    map.set_range(4096, n);
}

fn run(op: &str, n: usize) -> Result<(), String> {
    if n == 0 || n > POOL - 4096 {
        return Err(format!("pages must be 1..={}", POOL - 4096));
    }
    match op {
        "take_back_range" | "give_back_range" => {
            let (mut areas, _, pool) = gcma(true);
            let cc = areas.backend_mut();
            if op == "take_back_range" {
                let dropped = measure_take_back_range(cc, pool, n);
                if dropped != n {
                    return Err(format!("{dropped} copies dropped, expected {n}"));
                }
            } else {
                cc.take_back_range(pool, 4096, n)
                    .map_err(|e| e.to_string())?;
                measure_give_back_range(cc, pool, n);
                if cc.stats().lendable_now != POOL {
                    return Err("pages not given back".into());
                }
            }
        }
        "gcma_alloc" => {
            let (mut areas, _, _) = gcma(true);
            let a = measure_gcma_alloc(&mut areas, n);
            if a.count != n || areas.backend().stats().cached_now != POOL - n {
                return Err("gcma allocation did not take its range back".into());
            }
        }
        "put" => {
            let (mut areas, fs, _) = gcma(false);
            let data = page(2, 0);
            measure_put(areas.backend_mut(), fs, &data, n);
            if areas.backend().stats().cached_now != n {
                return Err("puts not stored".into());
            }
        }
        "evict" => {
            let (mut areas, fs, _) = gcma(true);
            let data = page(2, 0);
            measure_evict(areas.backend_mut(), fs, &data, n);
            if areas.backend().stats().evicted != n as u64 {
                return Err("puts did not evict".into());
            }
        }
        "get" => {
            let (mut areas, fs, _) = gcma(true);
            let mut out = [0u8; PAGE_SIZE as usize];
            let hits = measure_get(areas.backend_mut(), fs, n, &mut out);
            if hits != n || out != *page(1, 0) {
                return Err(format!("{hits} hits of {n}, or wrong bytes"));
            }
        }
        "carveout_alloc" => {
            let mut areas = Areas::new(Cleancache::new());
            areas
                .add_carveout("carve", BASE_PFN, POOL)
                .map_err(|e| e.to_string())?;
            let a = measure_carveout_alloc(&mut areas, n);
            if a.count != n {
                return Err("carveout allocation wrong".into());
            }
        }
        "bitmap_mark" => {
            let mut map = Bitmap::new(POOL);
            measure_bitmap_mark(&mut map, n);
            if map.count_ones() != n {
                return Err("bits not set".into());
            }
        }
        other => return Err(format!("unknown operation {other}")),
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (op, n) = match args.as_slice() {
        [op, n] => match n.parse::<usize>() {
            Ok(n) => (op.as_str(), n),
            Err(_) => {
                eprintln!("ccbench: {n}: not a number of pages");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("usage: ccbench OP PAGES (see the file's documentation)");
            return ExitCode::from(2);
        }
    };
    match run(op, n) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ccbench {op} {n}: {e}");
            ExitCode::FAILURE
        }
    }
}
