//! Step 4 of the demo: utilization, the file workload alone under each
//! setup (no reservation, carveout, CMA, GCMA): device reads and hit
//! ratios of the page cache and of cleancache.

use alloc::format;
use alloc::string::String;
use alloc::vec;

use crate::arch::timer;
use crate::memsys::{self, Setup};
use crate::println;
use crate::workload::load::{self, DataSet};
use crate::workload::setup::apply;

/// The file workload alone under one setup, the same fixed sequence of
/// file reads (from the seed) every time: device reads and hit ratios.
pub(super) fn utilization(name: &str, s: Setup, data: &'static DataSet, seed: u64, reads: usize) {
    apply(s);
    let cc_before = memsys::areas().backend().stats();
    let before = memsys::with(|pc| *pc.stats()).unwrap_or_default();
    load::resume();
    let t0 = timer::ticks();
    let mut rng = load::Rng::new(seed);
    let mut buf = vec![0u8; 16 * 1024];
    for _ in 0..reads {
        let path = load::pick(data, &mut rng);
        load::read_file(data, path, false, &mut buf);
    }
    let secs = timer::ticks_to_ns(timer::ticks() - t0) as f64 / 1e9;
    let after = memsys::with(|pc| *pc.stats()).unwrap_or_default();
    let cc_after = memsys::areas().backend().stats();
    let (hits, misses) = (after.hits - before.hits, after.misses - before.misses);
    let pc_ratio = hits as f64 / (hits + misses).max(1) as f64;
    let restored = cc_after.restored - cc_before.restored;
    let cc_missed = cc_after.missed - cc_before.missed;
    let cc_ratio = if s.cleancache {
        format!(
            "{:.4}",
            restored as f64 / (restored + cc_missed).max(1) as f64
        )
    } else {
        String::from("null")
    };
    let sectors = after.sectors_read - before.sectors_read;
    println!(
        "utilization {name:<9}: {reads} file reads in {secs:.1} s, {sectors} sectors read, page-cache hit ratio {pc_ratio:.3}, cleancache hit ratio {cc_ratio}"
    );
    println!(
        "@util setup={name} seconds={secs:.2} read_sectors={sectors} page_cache_hit_ratio={pc_ratio:.4} cleancache_hit_ratio={cc_ratio}"
    );
}
