//! Step 2 of the demo: the sequential scan of the data set, with and
//! without readahead, on a cold page cache (carveout setup, cleancache
//! off). Remounts the filesystem for each run and once more at the end.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write as _;

use contig::AreaKind;

use crate::arch::timer;
use crate::memsys::{self, Setup};
use crate::workload::load::{self, DataSet};
use crate::workload::setup::{BUDGET_PAGES, setup_for};
use crate::{print, println};

/// The scan: every file read once in order, cold, with readahead and
/// without; device reads and hit counts, and the throughput ratio.
pub(super) fn scan(data: &'static DataSet) {
    let mut results = Vec::new();
    for (label, ra) in [("readahead on (32 pages)", 32u32), ("readahead off", 0)] {
        let _ = memsys::unmount();
        let s = Setup {
            readahead_max: ra,
            ..setup_for(Some(AreaKind::Carveout), 0)
        };
        if memsys::mount(s).is_err() {
            println!("demo: remount failed");
            return;
        }
        let before = memsys::with(|pc| *pc.stats()).unwrap_or_default();
        let mut buf = vec![0u8; 64 * 1024];
        let t0 = timer::ticks();
        let mut bytes = 0;
        for (size, path) in &data.files {
            load::read_file(data, path, true, &mut buf);
            bytes += size;
        }
        let secs = timer::ticks_to_ns(timer::ticks() - t0) as f64 / 1e9;
        let after = memsys::with(|pc| *pc.stats()).unwrap_or_default();
        results.push((label, ra, secs, bytes, before, after));
    }
    let _ = memsys::unmount();
    let _ = memsys::mount(setup_for(Some(AreaKind::Carveout), 0));
    let mut t = String::new();
    let _ = writeln!(
        t,
        "scan of the data set (cold page cache, budget {} MiB, cleancache off)",
        BUDGET_PAGES / 256
    );
    let _ = writeln!(
        t,
        "{:<24} {:>8} {:>9} {:>9} {:>9} {:>10} {:>9} {:>9} {:>9}",
        "", "seconds", "MiB/s", "hits", "misses", "sectors", "ra pages", "ra used", "ra waste"
    );
    for (label, _, secs, bytes, b, a) in &results {
        let _ = writeln!(
            t,
            "{:<24} {:>8.2} {:>9.1} {:>9} {:>9} {:>10} {:>9} {:>9} {:>9}",
            label,
            secs,
            *bytes as f64 / (1 << 20) as f64 / secs,
            a.hits - b.hits,
            a.misses - b.misses,
            a.sectors_read - b.sectors_read,
            a.ra_pages_read - b.ra_pages_read,
            a.ra_used - b.ra_used,
            a.ra_wasted - b.ra_wasted
        );
    }
    print!("{t}");
    for (_, ra, secs, bytes, b, a) in &results {
        println!(
            "@scan readahead={ra} seconds={secs:.3} bytes={bytes} hits={} misses={} read_sectors={} ra_used={} ra_wasted={}",
            a.hits - b.hits,
            a.misses - b.misses,
            a.sectors_read - b.sectors_read,
            a.ra_used - b.ra_used,
            a.ra_wasted - b.ra_wasted
        );
    }
    if let [(_, _, on, ..), (_, _, off, ..)] = results.as_slice() {
        println!(
            "scan: readahead makes the sequential scan {:.2}x faster (same boot, TCG)",
            off / on
        );
        println!("@scan_ratio with_over_without={:.3}", off / on);
    }
}
