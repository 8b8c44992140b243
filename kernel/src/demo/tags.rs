//! The second GCMA donor: tag storage (the `tags@` region of the device
//! tree), standing in for arm64 MTE tag storage as the GCMA patch's review
//! thread proposes. MTE keeps 4 bits of tag per 16 bytes of RAM, one tag
//! page per 32 pages; tag storage that is not in use is lent to cleancache,
//! and enabling tags on a block of RAM takes back exactly the tag pages
//! that cover it, by explicit pfn range ([`memsys::alloc_range`]).
//!
//! Rules:
//! - The demo holds the whole tag area from its start ([`hold`]) so the
//!   allocator runs and the utilization step see one GCMA area of the same
//!   size as the CMA area and the carveout; this step alone releases it.
//! - A request names a block of RAM (4 MiB aligned, 1 to 4 blocks): its tag
//!   pages are `base + block * 32 ..`; a request overlapping a live one is
//!   refused with `RangeAllocated` (the block is already tagged) and counted
//!   as such, any other error is a failure. Taken tag pages are zeroed
//!   (fresh tags), as the kernel would before enabling tagging.
//! - Requests run while the page-cache load fills cleancache, so explicit
//!   ranges take back pages holding clean copies.

use alloc::vec::Vec;

use contig::{Allocation, ContigError};

use crate::arch::page_ops::clear_page;
use crate::arch::timer;
use crate::memsys::{self, AreaInfo};
use crate::println;
use crate::workload::load::{self, Condition, DataSet, Rng};
use crate::workload::setup::{apply, setup_for};

/// Tag pages per 4 MiB block of RAM (one per 32 pages).
const BLOCK_TAG_PAGES: usize = 1024 / 32;
/// Live tagged blocks at most; the oldest is untagged first.
const LIVE: usize = 6;

/// The tag area, if the device tree has one.
pub(super) fn area() -> Option<AreaInfo> {
    memsys::area_named("tags")
}

/// Cleancache copies the explicit ranges of the tag area have dropped.
fn dropped_copies(area: &AreaInfo) -> u64 {
    memsys::areas()
        .stats(area.id)
        .map(|s| s.dropped_copies)
        .unwrap_or(0)
}

/// Takes the whole tag area (see the rules); `None` if there is none.
pub(super) fn hold() -> Option<Allocation> {
    let area = area()?;
    match memsys::alloc_range(area.pfn, area.pages) {
        Ok(a) => Some(a),
        Err(e) => {
            println!("tag storage: could not hold the tag area: {e}");
            None
        }
    }
}

/// Runs the tag-storage step: releases `held`, tags and untags random RAM
/// blocks while the page-cache load runs, then holds the area again.
pub(super) fn run(
    held: Option<Allocation>,
    data: &'static DataSet,
    seed: u64,
    requests: usize,
) -> Option<Allocation> {
    let Some(area) = area() else {
        println!("tag storage: the device tree has no tags@ region; step skipped");
        return held;
    };
    let (base, pages) = (area.pfn, area.pages);
    if let Some(a) = held {
        let _ = memsys::free(a);
    }
    apply(setup_for(Some(contig::AreaKind::Gcma), pages));
    let tasks = load::start(Condition::PageCache, data, seed, load::Placement::Spread);
    crate::sched::sleep_ns(1_000_000_000);
    let blocks = (pages / BLOCK_TAG_PAGES).max(1) as u64;
    let mut rng = Rng::new(seed ^ 0x7a65);
    let mut live: Vec<Allocation> = Vec::new();
    let (mut overlapped, mut failed) = (0usize, 0usize);
    let mut ns = Vec::with_capacity(requests);
    let dropped_before = dropped_copies(&area);
    for _ in 0..requests {
        if live.len() >= LIVE {
            let _ = memsys::free(live.remove(0));
        }
        let first = rng.below(blocks);
        let n = (1 + rng.below(4)).min(blocks - first) as usize;
        let pfn = base + first * BLOCK_TAG_PAGES as u64;
        let t0 = timer::ticks();
        let r = memsys::alloc_range(pfn, n * BLOCK_TAG_PAGES);
        let dt = timer::ticks_to_ns(timer::ticks() - t0);
        match r {
            Ok(a) => {
                ns.push(dt);
                zero(&a);
                live.push(a);
            }
            Err(ContigError::RangeAllocated { .. }) => overlapped += 1,
            Err(e) => {
                failed += 1;
                println!("tag storage: request at pfn {pfn:#x} failed: {e}");
            }
        }
        crate::sched::sleep_ns(2_000_000);
    }
    for a in live {
        let _ = memsys::free(a);
    }
    load::stop(tasks);
    let dropped = dropped_copies(&area) - dropped_before;
    let taken = ns.len();
    let (p50, p99, max) = super::report::percentiles(&ns);
    println!(
        "tag storage: a second GCMA donor of {pages} pages at pfn {base:#x}, taken back by explicit pfn ranges (1 to 4 blocks of {BLOCK_TAG_PAGES} pages) under page-cache load"
    );
    println!(
        "  {:>8} {:>6} {:>14} {:>6} {:>9} {:>9} {:>9} {:>14}",
        "requests",
        "taken",
        "already tagged",
        "failed",
        "p50 (µs)",
        "p99 (µs)",
        "max (µs)",
        "copies dropped"
    );
    println!(
        "  {:>8} {:>6} {:>14} {:>6} {:>9.1} {:>9.1} {:>9.1} {:>14}",
        requests, taken, overlapped, failed, p50, p99, max, dropped
    );
    println!(
        "@tagstore requests={requests} taken={taken} overlapped={overlapped} failed={failed} p50_us={:.1} p99_us={:.1} max_us={max:.1} dropped={dropped}",
        p50, p99
    );
    hold()
}

/// Zeroes the tag pages of `a` (fresh tags).
fn zero(a: &Allocation) {
    for page in 0..a.count as u64 {
        let addr = (a.pfn + page).addr() as usize;
        // SAFETY: `a` is a live allocation of identity-mapped reserved RAM
        // (a GCMA area is never no-map) that this task alone owns until it
        // frees it.
        let page = unsafe { &mut *(addr as *mut frames::PageBytes) };
        clear_page(page);
    }
}
