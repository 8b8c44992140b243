//! Step 6 of the demo: GCMA and the carveout allocating the same buffers in
//! strict alternation (GCMA, carveout, GCMA, ...), idle and under the
//! page-cache load, so that whatever the host does to the emulator (under
//! TCG on a shared machine it deschedules QEMU's vCPU thread at times) hits
//! both alike. The camera runs measure each allocator in its own run, one
//! after the other; a tail that only one of them shows there may be the
//! host's, and this step tells which.
//!
//! Rules: it runs between demo steps (no camera task), on the GCMA setup
//! (cleancache on, so GCMA ranges hold copies to drop); each pair is timed
//! with the same clock as the probes, one lock hold per allocation as in
//! the camera; a 1 ms sleep between pairs lets the background load run.

use alloc::vec::Vec;

use contig::{AreaKind, Select, linux_cma_align_pages};

use crate::arch::timer;
use crate::workload::camera::{FRAME_PAGES, PHOTO_PAGES};
use crate::workload::load::{self, Condition, DataSet};
use crate::workload::setup::{apply, setup_for};
use crate::{memsys, println};

/// A sample above this is counted as a tail (µs).
const TAIL_US: u64 = 300;

/// Runs the step: `rounds` pairs of frame buffers and a tenth as many of
/// stills, idle and under page-cache load.
pub(super) fn interleaved(data: &'static DataSet, seed: u64, area_pages: usize, rounds: usize) {
    apply(setup_for(Some(AreaKind::Gcma), area_pages));
    println!(
        "interleaved allocations (GCMA, carveout, GCMA, ...: the same host noise for both; latency per allocation)"
    );
    println!(
        "  {:<9} {:>5} {:>5} | {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9} | {:>11}",
        "condition",
        "pages",
        "pairs",
        "GCMA p50",
        "p99",
        "max",
        "carve p50",
        "p99",
        "max",
        ">300us G/C"
    );
    for cond in [Condition::Idle, Condition::PageCache] {
        let tasks = load::start(cond, data, seed, load::Placement::Spread);
        crate::sched::sleep_ns(500_000_000);
        for (pages, n) in [(FRAME_PAGES, rounds), (PHOTO_PAGES, (rounds / 10).max(3))] {
            let (g, c) = pairs(pages, n);
            report(cond.name(), pages, &g, &c);
        }
        load::stop(tasks);
    }
}

/// `n` alternating GCMA and carveout allocations of `pages`: their times
/// in ns, successes only.
fn pairs(pages: usize, n: usize) -> (Vec<u64>, Vec<u64>) {
    let align = linux_cma_align_pages(pages);
    let (mut g, mut c) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        for (kind, out) in [(AreaKind::Gcma, &mut g), (AreaKind::Carveout, &mut c)] {
            let t0 = timer::ticks();
            let r = memsys::alloc(Select::Kind(kind), pages, align);
            let dt = timer::ticks_to_ns(timer::ticks() - t0);
            if let Ok(a) = r {
                out.push(dt);
                let _ = memsys::free(a);
            }
        }
        crate::sched::sleep_ns(1_000_000);
    }
    (g, c)
}

fn report(cond: &str, pages: usize, g: &[u64], c: &[u64]) {
    let tails = |v: &[u64]| v.iter().filter(|x| **x > TAIL_US * 1000).count();
    let ((g50, g99, gmax), gover) = (super::report::percentiles(g), tails(g));
    let ((c50, c99, cmax), cover) = (super::report::percentiles(c), tails(c));
    let pairs = g.len().min(c.len());
    println!(
        "  {cond:<9} {pages:>5} {pairs:>5} | {g50:>9.1} {g99:>9.1} {gmax:>9.1} | {c50:>9.1} {c99:>9.1} {cmax:>9.1} | {gover:>5} / {cover:<5}"
    );
    println!(
        "@interleaved condition={cond} pages={pages} pairs={pairs} gcma_p50_us={g50:.1} gcma_p99_us={g99:.1} gcma_max_us={gmax:.1} carveout_p50_us={c50:.1} carveout_p99_us={c99:.1} carveout_max_us={cmax:.1} gcma_tails={gover} carveout_tails={cover}"
    );
}
