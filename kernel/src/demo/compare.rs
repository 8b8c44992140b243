//! One core against several: for every allocator and condition with a
//! load, the camera's allocation p50 and p99 with the load on the other
//! cores (the demo's main runs) and with it beside the camera on core 0
//! (the one-core comparison), and the ratio of the p99s. A table for the
//! console; the collector reads the runs' own `cores=` lines.

use alloc::string::String;
use core::fmt::Write as _;

use super::report::percentiles;
use super::{RunRow, row_name};
use crate::print;
use crate::workload::camera;

/// Prints the table: `several` are the main runs, `one` the comparison.
pub(super) fn print(several: &[RunRow], one: &[RunRow]) {
    let cores = several.first().map_or(1, |r| r.cores);
    let mut t = String::new();
    let _ = writeln!(
        t,
        "one core and {cores}: allocation latency with the load beside the camera (1 core) and on the other cores ({cores}), us"
    );
    let _ = writeln!(
        t,
        "  {:<10} {:<10} {:>5} | {:>9} {:>9} | {:>9} {:>9} | {:>10}",
        "allocator", "condition", "pages", "1c p50", "1c p99", "Nc p50", "Nc p99", "p99 N/1"
    );
    for o in one {
        let Some(s) = several
            .iter()
            .find(|r| r.kind == o.kind && r.policy == o.policy && r.cond == o.cond)
        else {
            continue;
        };
        for (pages, a, b) in [
            (
                camera::FRAME_PAGES,
                &o.stats.frame_alloc_ns,
                &s.stats.frame_alloc_ns,
            ),
            (
                camera::PHOTO_PAGES,
                &o.stats.photo_alloc_ns,
                &s.stats.photo_alloc_ns,
            ),
        ] {
            let ((a50, a99, _), (b50, b99, _)) = (percentiles(a), percentiles(b));
            let ratio = if a99 > 0.0 { b99 / a99 } else { f64::NAN };
            let _ = writeln!(
                t,
                "  {:<10} {:<10} {:>5} | {:>9.1} {:>9.1} | {:>9.1} {:>9.1} | {:>9.2}x",
                row_name(o.kind, o.policy),
                o.cond.name(),
                pages,
                a50,
                a99,
                b50,
                b99,
                ratio
            );
        }
    }
    print!("{t}");
}
