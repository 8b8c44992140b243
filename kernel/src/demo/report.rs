//! The camera runs' reports: `@alloc`, `@latency` and `@frames` lines per
//! run, and the summary table with the CMA / GCMA ratios.

use alloc::format;
use alloc::string::String;
use core::fmt::Write as _;

use contig::{AreaKind, CmaPolicy};

use super::{RunRow, row_name};
use crate::workload::camera::{self, CameraStats};
use crate::workload::load::Condition;
use crate::{print, println};

/// p50, p99 and max of `samples` (ns), in µs (nearest rank; 0 when empty).
pub(super) fn percentiles(samples: &[u64]) -> (f64, f64, f64) {
    let mut v = samples.to_vec();
    v.sort_unstable();
    let us = |x: Option<u64>| x.unwrap_or(0) as f64 / 1000.0;
    (
        us(probe::nearest_rank(&v, 50, 100)),
        us(probe::nearest_rank(&v, 99, 100)),
        us(v.last().copied()),
    )
}

/// The median of `samples` (ns) over `pages`: ns per page (NaN when empty).
pub(super) fn median_per_page(samples: &[u64], pages: usize) -> f64 {
    let mut v = samples.to_vec();
    v.sort_unstable();
    probe::nearest_rank(&v, 50, 100)
        .map(|x| x as f64 / pages as f64)
        .unwrap_or(f64::NAN)
}

pub(super) fn print_run(name: &str, cond: Condition, cores: usize, st: &CameraStats) {
    let c = cond.name();
    for (pages, lat, attempts, successes) in [
        (
            camera::FRAME_PAGES,
            &st.frame_alloc_ns,
            st.frame_attempts,
            st.frame_successes,
        ),
        (
            camera::PHOTO_PAGES,
            &st.photo_alloc_ns,
            st.photo_attempts,
            st.photo_successes,
        ),
    ] {
        let (p50, p99, max) = percentiles(lat);
        println!(
            "@alloc allocator={name} condition={c} cores={cores} pages={pages} attempts={attempts} successes={successes} p50_us={p50:.1} p99_us={p99:.1} max_us={max:.1}"
        );
        let mut line =
            format!("@latency allocator={name} condition={c} cores={cores} pages={pages} us=");
        for (i, ns) in lat.iter().enumerate() {
            let _ = write!(
                line,
                "{}{:.1}",
                if i > 0 { "," } else { "" },
                *ns as f64 / 1000.0
            );
        }
        println!("{line}");
    }
    println!(
        "@frames allocator={name} condition={c} cores={cores} frames={} deadline_misses={} dropped={} hardware_ms={:.1} wake_late_ms={:.1}",
        st.frames,
        st.deadline_misses,
        st.dropped_frames,
        st.hardware_ns as f64 / 1e6,
        st.wake_late_ns as f64 / 1e6
    );
}

pub(super) fn summary(rows: &[RunRow]) {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "\ncontiguous allocations under the camera pipeline (latency per allocation; TCG: compare ratios)"
    );
    let _ = writeln!(
        t,
        "{:<9} {:<9} {:>6} | {:>9} {:>9} {:>9} {:>7} | {:>9} {:>9} {:>9} {:>7} | {:>6} {:>7} {:>6} {:>8}",
        "allocator",
        "condition",
        "",
        "3M p50",
        "3M p99",
        "3M max",
        "ok",
        "12M p50",
        "12M p99",
        "12M max",
        "ok",
        "frames",
        "dropped",
        "late",
        "bg MiB"
    );
    for r in rows {
        let (a50, a99, amax) = percentiles(&r.stats.frame_alloc_ns);
        let (b50, b99, bmax) = percentiles(&r.stats.photo_alloc_ns);
        let us = |x: f64| {
            if x >= 10_000.0 {
                format!("{:.1}ms", x / 1000.0)
            } else {
                format!("{x:.1}us")
            }
        };
        let _ = writeln!(
            t,
            "{:<9} {:<9} {:>6} | {:>9} {:>9} {:>9} {:>7} | {:>9} {:>9} {:>9} {:>7} | {:>6} {:>7} {:>6} {:>8}",
            row_name(r.kind, r.policy),
            r.cond.name(),
            "",
            us(a50),
            us(a99),
            us(amax),
            format!("{}/{}", r.stats.frame_successes, r.stats.frame_attempts),
            us(b50),
            us(b99),
            us(bmax),
            format!("{}/{}", r.stats.photo_successes, r.stats.photo_attempts),
            r.stats.frames,
            r.stats.dropped_frames,
            r.stats.deadline_misses,
            r.bytes_read >> 20
        );
    }
    // Ratios CMA / GCMA per condition and policy (p99 of each size).
    let _ = writeln!(t, "\nCMA p99 / GCMA p99 (same boot):");
    for (cond, policy) in Condition::ALL
        .into_iter()
        .flat_map(|c| [(c, CmaPolicy::Linux), (c, CmaPolicy::AndroidRetry)])
    {
        let p99 = |k, p| {
            rows.iter()
                .find(|r| r.kind == k && r.policy == p && r.cond == cond)
                .map(|r| {
                    (
                        percentiles(&r.stats.frame_alloc_ns).1,
                        percentiles(&r.stats.photo_alloc_ns).1,
                    )
                })
        };
        if let (Some(g), Some(c)) = (
            p99(AreaKind::Gcma, CmaPolicy::Linux),
            p99(AreaKind::Cma, policy),
        ) {
            let _ = writeln!(
                t,
                "  {:<9} {:<9}  3 MiB: {:>8.1}x   12 MiB: {:>8.1}x",
                cond.name(),
                policy.row_name(),
                c.0 / g.0.max(0.001),
                c.1 / g.1.max(0.001)
            );
        }
    }
    print!("{t}");
}
