//! Step 5 of the demo: per-page cost of GCMA, CMA and carveout allocations
//! against memset/memcpy and the arch page operations, and cleancache's own
//! store, restore and evict costs (`cc_costs`), in the same boot.

use alloc::vec;
use alloc::vec::Vec;

use contig::AreaKind;

use crate::arch::page_ops::{clear_page, copy_page, zva_block_bytes};
use crate::arch::timer;
use crate::workload::camera;
use crate::workload::load::{self, Condition, DataSet};
use crate::workload::setup::{apply, setup_for};
use crate::{memsys, println};

/// Per-page cost of contiguous allocations against zeroing and copying.
pub(super) fn per_page(data: &'static DataSet, seed: u64, cma_pages: usize) {
    const ROUNDS: usize = 8;
    let pages = camera::PHOTO_PAGES;
    let align = contig::linux_cma_align_pages(pages);
    // GCMA: allocations from a cleancache filled by the file workload.
    apply(setup_for(Some(AreaKind::Gcma), cma_pages));
    let tasks = load::start(Condition::PageCache, data, seed, load::Placement::Spread);
    crate::sched::sleep_ns(2_000_000_000);
    load::stop(tasks);
    let mut gcma = Vec::new();
    for _ in 0..ROUNDS {
        let t0 = timer::ticks();
        if let Ok(a) = memsys::alloc(contig::Select::Kind(AreaKind::Gcma), pages, align) {
            gcma.push(timer::ticks_to_ns(timer::ticks() - t0));
            let _ = memsys::free(a);
        }
    }
    // The part of a GCMA allocation that is cleancache's: taking the pages
    // back (dropping the copies) and giving them back, timed alone.
    let mut take = Vec::new();
    if let Some(memsys::AreaInfo { pfn: base, .. }) = memsys::first_of(AreaKind::Gcma) {
        for _ in 0..ROUNDS {
            let mut mm = memsys::areas();
            let cc = mm.backend_mut();
            if let Some((pool, first)) = cc.locate_pfn(base) {
                let t0 = timer::ticks();
                if cc.take_back_range(pool, first, pages).is_ok() {
                    take.push(timer::ticks_to_ns(timer::ticks() - t0));
                    let _ = cc.give_back_range(pool, first, pages);
                }
            }
        }
    }
    // Cleancache's store, restore and store-with-eviction, per page.
    let cc = memsys::first_of(AreaKind::Gcma)
        .and_then(|g| super::cc_costs::measure(g.pfn, pages.min(g.pages / 2), ROUNDS));
    // The carveout: the floor, marking a range used (its frames included).
    let mut carve = Vec::new();
    for _ in 0..ROUNDS {
        let t0 = timer::ticks();
        if let Ok(a) = memsys::alloc(contig::Select::Kind(AreaKind::Carveout), pages, align) {
            carve.push(timer::ticks_to_ns(timer::ticks() - t0));
            let _ = memsys::free(a);
        }
    }
    // CMA: allocations from an area full of lent page-cache pages.
    apply(setup_for(Some(AreaKind::Cma), cma_pages));
    let mut cma = Vec::new();
    for _ in 0..ROUNDS {
        let tasks = load::start(Condition::PageCache, data, seed, load::Placement::Spread);
        crate::sched::sleep_ns(500_000_000);
        load::stop(tasks);
        let t0 = timer::ticks();
        if let Ok(a) = memsys::alloc(contig::Select::Kind(AreaKind::Cma), pages, align) {
            cma.push(timer::ticks_to_ns(timer::ticks() - t0));
            let _ = memsys::free(a);
        }
    }
    // memset / memcpy of the same number of pages, in the same boot, and
    // the arch page operations migration and cleancache use. Page-aligned
    // pages, as frames are (DC ZVA needs its block alignment).
    #[derive(Clone)]
    #[repr(C, align(4096))]
    struct Page(frames::PageBytes);
    let mut src = vec![Page([0; frames::PAGE_SIZE as usize]); pages];
    let mut dst = vec![Page([0; frames::PAGE_SIZE as usize]); pages];
    let mut memset = Vec::new();
    let mut memcpy = Vec::new();
    let (mut clear, mut copy) = (Vec::new(), Vec::new());
    for r in 0..ROUNDS {
        // Page by page, as an allocator would zero or copy them.
        let t0 = timer::ticks();
        for page in &mut src {
            page.0.fill(r as u8);
            core::hint::black_box(&mut *page);
        }
        memset.push(timer::ticks_to_ns(timer::ticks() - t0));
        let t0 = timer::ticks();
        for (d, s) in dst.iter_mut().zip(&src) {
            d.0.copy_from_slice(&s.0);
            core::hint::black_box(&mut *d);
        }
        memcpy.push(timer::ticks_to_ns(timer::ticks() - t0));
        let t0 = timer::ticks();
        for page in &mut src {
            clear_page(&mut page.0);
            core::hint::black_box(&mut *page);
        }
        clear.push(timer::ticks_to_ns(timer::ticks() - t0));
        let t0 = timer::ticks();
        for (d, s) in dst.iter_mut().zip(&src) {
            copy_page(&mut d.0, &s.0);
            core::hint::black_box(&mut *d);
        }
        copy.push(timer::ticks_to_ns(timer::ticks() - t0));
    }
    let per = |v: &[u64]| super::report::median_per_page(v, pages);
    let (g, c, v, s, m) = (
        per(&gcma),
        per(&cma),
        per(&carve),
        per(&memset),
        per(&memcpy),
    );
    println!(
        "per page (median of {ROUNDS} x {pages} pages): GCMA alloc {g:.1} ns, CMA alloc {c:.1} ns, carveout alloc {v:.1} ns, memset {s:.1} ns, memcpy {m:.1} ns"
    );
    println!(
        "GCMA allocation costs {:.3} of zeroing the same pages ({:.1}x the carveout's); CMA costs {:.2}",
        g / s,
        g / v,
        c / s
    );
    let t = per(&take);
    println!("  of which cleancache take-back {t:.1} ns per page");
    let (cs, cr, ce) =
        cc.map(|x| (x.store, x.restore, x.evict))
            .unwrap_or((f64::NAN, f64::NAN, f64::NAN));
    println!(
        "  cleancache per page: store {cs:.1} ns, restore (hit) {cr:.1} ns, store with eviction {ce:.1} ns"
    );
    let (z, k) = (per(&clear), per(&copy));
    println!(
        "  arch page ops: clear_page {z:.1} ns (DC ZVA {}), copy_page {k:.1} ns ({:.2}x memcpy's speed)",
        if zva_block_bytes().is_some() {
            "on"
        } else {
            "off"
        },
        m / k
    );
    println!(
        "@perpage gcma_alloc_ns={g:.1} cma_alloc_ns={c:.1} carveout_alloc_ns={v:.1} take_back_ns={t:.1} memset_ns={s:.1} memcpy_ns={m:.1} clear_page_ns={z:.1} copy_page_ns={k:.1} cc_store_ns={cs:.1} cc_restore_ns={cr:.1} cc_evict_ns={ce:.1}"
    );
}
