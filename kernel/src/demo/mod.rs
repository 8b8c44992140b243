//! The camera-buffer demo (`mode=demo`, what `cargo run` shows).
//!
//! In one boot, side by side on reserved regions of the same size:
//! 1. page operations the allocators are compared with (zero, copy a page);
//! 2. a sequential scan of the data set with and without readahead;
//! 3. for each allocator (GCMA, CMA with the Linux policy, CMA with the
//!    Android sleep-and-rescan policy (`cma-retry`), carveout) and condition (idle,
//!    page-cache pressure, anonymous pressure, pinned pages): the camera
//!    pipeline at 30 fps with its allocations timed, while the background
//!    load runs;
//! 4. utilization: the file workload alone under each setup (no
//!    reservation, carveout, CMA, GCMA): device reads and hit ratios;
//! 5. per-page cost of GCMA and CMA allocations against memset/memcpy;
//! 6. per-area statistics and the memory report.
//!
//! Every table has machine-readable `@` lines (see tools/bench/README.md);
//! qemu-run.sh hands the log to tools/bench/collect.py, which writes
//! results/bench.json, plots and the results page.
//!
//! Setups (page cache budget B = [`BUDGET_PAGES`], area size A):
//! | setup    | page cache frames        | cleancache | reserved memory while idle |
//! |----------|--------------------------|------------|----------------------------|
//! | none     | B + A ordinary           | off        | (none: given to the cache) |
//! | carveout | B                        | off        | wasted                     |
//! | cma      | B ordinary + A CMA-lent  | off        | holds movable file pages   |
//! | gcma     | B                        | on (A)     | holds clean file copies    |

pub(crate) mod camera;
pub(crate) mod load;

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write as _;

use contig::{AreaKind, CmaPolicy};

use crate::arch::page_ops::{clear_page, copy_page, zva_block_bytes};
use crate::arch::timer;
use crate::exit::ExitStatus;
use crate::fs::{self, Setup};
use crate::{BootInfo, areas, print, println, probes};
use camera::CameraStats;
use load::{Condition, DataSet};

/// Page-cache budget of ordinary memory in every setup: 8 MiB.
pub const BUDGET_PAGES: usize = 2048;

/// Run length (`scale=quick|full`; parsed by the bootargs crate).
pub use bootargs::Scale;

/// What each run length means for the demo.
trait ScaleParams {
    fn frames(self) -> usize;
    fn util_reads(self) -> usize;
    fn warmup_ms(self) -> u64;
}

impl ScaleParams for Scale {
    fn frames(self) -> usize {
        match self {
            Scale::Quick => 60,
            Scale::Full => 450,
        }
    }
    fn util_reads(self) -> usize {
        match self {
            Scale::Quick => 600,
            Scale::Full => 4000,
        }
    }
    fn warmup_ms(self) -> u64 {
        match self {
            Scale::Quick => 1500,
            Scale::Full => 5000,
        }
    }
}

/// The allocator rows: an area kind and, for CMA, the policy.
const ALLOCATORS: [(AreaKind, CmaPolicy); 4] = [
    (AreaKind::Gcma, CmaPolicy::Linux),
    (AreaKind::Cma, CmaPolicy::Linux),
    (AreaKind::Cma, CmaPolicy::AndroidRetry),
    (AreaKind::Carveout, CmaPolicy::Linux),
];

/// Name of an allocator row in tables and `@` lines.
fn row_name(kind: AreaKind, policy: CmaPolicy) -> &'static str {
    match kind {
        AreaKind::Cma => policy.row_name(),
        k => kind_name(k),
    }
}

/// The three kinds of area, one row each in the soak (which runs CMA with
/// Linux's policy only).
pub(crate) const AREA_KINDS: [AreaKind; 3] = [AreaKind::Gcma, AreaKind::Cma, AreaKind::Carveout];

pub(crate) fn kind_name(k: AreaKind) -> &'static str {
    match k {
        AreaKind::Gcma => "gcma",
        AreaKind::Cma => "cma",
        AreaKind::Carveout => "carveout",
    }
}

/// The page-cache setup for an allocator run or a utilization setup.
pub(crate) fn setup_for(kind: Option<AreaKind>, area_pages: usize) -> Setup {
    let base = Setup {
        budget_pages: BUDGET_PAGES,
        ordinary_pages: BUDGET_PAGES,
        cma_lending: false,
        cleancache: false,
        readahead_max: 32,
    };
    match kind {
        None => Setup {
            budget_pages: BUDGET_PAGES + area_pages,
            ordinary_pages: BUDGET_PAGES + area_pages,
            ..base
        },
        Some(AreaKind::Carveout) => base,
        Some(AreaKind::Cma) => Setup {
            budget_pages: BUDGET_PAGES + area_pages,
            cma_lending: true,
            ..base
        },
        Some(AreaKind::Gcma) => Setup {
            cleancache: true,
            ..base
        },
    }
}

/// Applies `s` to the mounted page cache and starts it cold (no cached
/// pages, nothing lent); cleancache copies stay (they are only used when
/// the setup turns cleancache on).
pub(crate) fn apply(s: Setup) {
    fs::with(|pc| {
        pc.set_budget(s.budget_pages);
        pc.hooks_mut().enabled = s.cleancache;
        let a = pc.allocator_mut();
        a.ordinary_limit = s.ordinary_pages;
        a.cma_lending = s.cma_lending;
        let _ = pc.sync();
        pc.drop_clean_pages();
    });
}

fn percentiles(samples: &[u64]) -> (f64, f64, f64) {
    let mut v = samples.to_vec();
    v.sort_unstable();
    let us = |x: Option<u64>| x.unwrap_or(0) as f64 / 1000.0;
    (
        us(probe::nearest_rank(&v, 50, 100)),
        us(probe::nearest_rank(&v, 99, 100)),
        us(v.last().copied()),
    )
}

struct RunRow {
    kind: AreaKind,
    policy: CmaPolicy,
    cond: Condition,
    stats: CameraStats,
    bytes_read: u64,
}

fn progress(step: &mut usize, of: usize, what: &str) {
    *step += 1;
    println!("@progress step={} of={} what={}", step, of, what);
    let long = match what {
        "scan" => "sequential scan with and without readahead",
        "per-page" => "per-page costs",
        other => other,
    };
    println!("demo [{:>2}/{}] {}", step, of, long);
}

pub fn run(info: &BootInfo, scale: Scale, seed: u64) -> ExitStatus {
    let area = |k| {
        areas::first_of(k)
            .map(|(_, _, _, pages)| pages)
            .unwrap_or(0)
    };
    let (gcma_pages, cma_pages, carveout_pages) = (
        area(AreaKind::Gcma),
        area(AreaKind::Cma),
        area(AreaKind::Carveout),
    );
    let ram_mib: u64 = info.ram.iter().map(|r| r.end - r.start).sum::<u64>() >> 20;
    println!(
        "@bench board={} scale={} seed={seed} gcma_mib={} cma_mib={} carveout_mib={} ram_mib={ram_mib}",
        info.board,
        scale.name(),
        gcma_pages >> 8,
        cma_pages >> 8,
        carveout_pages >> 8
    );
    println!(
        "demo: camera pipeline (1080p NV12 {} KiB frames, 4K photos {} KiB) on GCMA, CMA and a carveout; scale {}",
        camera::FRAME_PAGES * 4,
        camera::PHOTO_PAGES * 4,
        scale.name()
    );
    if gcma_pages == 0 || cma_pages == 0 || carveout_pages == 0 {
        println!(
            "demo: the device tree needs one GCMA, one CMA and one carveout region (tools/dtb/make-dtbs.sh)"
        );
        return ExitStatus::BootFailed;
    }
    if !crate::sched::started() {
        println!("demo: no timer interrupt (GIC not found): the camera needs the scheduler");
        return ExitStatus::BootFailed;
    }
    probes::measure_basics();

    if let Err(e) = fs::mount(setup_for(Some(AreaKind::Carveout), 0)) {
        println!("demo: no data disk ({e}); qemu-run.sh attaches build/demo-data.img on virt");
        println!("demo: running the allocators on an idle system only");
        return idle_only(seed);
    }
    let data: &'static DataSet = match load_manifest() {
        Ok(d) => Box::leak(Box::new(d)),
        Err(e) => {
            println!("demo: the data disk has no usable manifest: {e}");
            return idle_only(seed);
        }
    };
    let total: u64 = data.files.iter().map(|(s, _)| *s).sum();
    println!(
        "demo: data set of {} files, {} MiB (page-cache budget {} MiB)",
        data.files.len(),
        total >> 20,
        BUDGET_PAGES / 256
    );

    let steps = 1 + ALLOCATORS.len() * Condition::ALL.len() + 4 + 1;
    let mut step = 0;
    progress(&mut step, steps, "scan");
    scan(data);

    let mut rows = Vec::new();
    for cond in Condition::ALL {
        for (kind, policy) in ALLOCATORS {
            progress(
                &mut step,
                steps,
                &format!("{}/{}", row_name(kind, policy), cond.name()),
            );
            apply(setup_for(Some(kind), cma_pages));
            camera::warm_up(kind);
            if cond != Condition::Idle {
                prefill(kind, data, cma_pages.min(gcma_pages));
            }
            let tasks = load::start(cond, data, seed);
            crate::sched::sleep_ns(scale.warmup_ms() * 1_000_000);
            let stats = camera_task(kind, policy, scale.frames());
            let bytes_read = load::BYTES_READ.load(core::sync::atomic::Ordering::Relaxed);
            load::stop(tasks);
            print_run(row_name(kind, policy), cond, &stats);
            rows.push(RunRow {
                kind,
                policy,
                cond,
                stats,
                bytes_read,
            });
        }
    }

    for setup in [
        None,
        Some(AreaKind::Carveout),
        Some(AreaKind::Cma),
        Some(AreaKind::Gcma),
    ] {
        let name = setup.map(kind_name).unwrap_or("none");
        progress(&mut step, steps, &format!("utilization/{name}"));
        utilization(
            name,
            setup_for(setup, cma_pages.max(gcma_pages)),
            data,
            seed,
            scale.util_reads(),
        );
    }

    progress(&mut step, steps, "per-page");
    per_page(data, seed, cma_pages);

    summary(&rows);
    areas::print_stats();
    let mismatches = load::MISMATCHES.load(core::sync::atomic::Ordering::Relaxed);
    let checked = load::FILES_CHECKED.load(core::sync::atomic::Ordering::Relaxed);
    let corrupt: u64 = rows.iter().map(|r| r.stats.corrupt_frames).sum();
    println!(
        "demo: {checked} files checked byte by byte during the runs, {mismatches} mismatches; {corrupt} corrupt frames"
    );
    let _ = fs::unmount();
    if mismatches == 0 && corrupt == 0 {
        ExitStatus::Success
    } else {
        ExitStatus::TestsFailed
    }
}

/// Reads the data set in order until the memory the setup can use for file
/// pages is nearly full: the page-cache budget (carveout), the CMA area
/// lent to the page cache (CMA), cleancache (GCMA). At most one pass.
fn prefill(kind: AreaKind, data: &'static DataSet, area_pages: usize) {
    let full = || -> bool {
        let target = area_pages * 95 / 100;
        match kind {
            AreaKind::Cma => fs::with(|pc| pc.allocator_mut().lent_out >= target).unwrap_or(true),
            AreaKind::Gcma => areas::MM.lock().areas.backend().stats().cached_now >= target,
            AreaKind::Carveout => {
                fs::with(|pc| pc.cached_pages() * 100 >= BUDGET_PAGES * 95).unwrap_or(true)
            }
        }
    };
    load::resume();
    let mut buf = vec![0u8; 64 * 1024];
    for (_, path) in &data.files {
        if full() {
            break;
        }
        load::read_file(data, path, false, &mut buf);
    }
}

/// Stats of the last camera task, set when it ends.
static CAMERA_RESULT: crate::sync::IrqLock<Option<CameraStats>> = crate::sync::IrqLock::new(None);

/// Starts the camera as its own high-priority task; its stats appear in
/// [`camera_result`] when it ends. One camera task at a time.
pub(crate) fn spawn_camera(kind: AreaKind, frames: usize) -> crate::sched::TaskId {
    spawn_camera_with(kind, CmaPolicy::Linux, frames)
}

/// [`spawn_camera`] with a CMA policy (ignored for the other kinds).
fn spawn_camera_with(kind: AreaKind, policy: CmaPolicy, frames: usize) -> crate::sched::TaskId {
    *CAMERA_RESULT.lock() = None;
    crate::sched::spawn("camera", camera::PRIO_CAMERA, move || {
        let st = match policy {
            CmaPolicy::Linux => camera::run(kind, frames),
            p => camera::run_with(kind, p, frames),
        };
        *CAMERA_RESULT.lock() = Some(st);
    })
}

/// The stats of the camera task once it has ended (taken once).
pub(crate) fn camera_result() -> Option<CameraStats> {
    CAMERA_RESULT.lock().take()
}

/// Whether the camera task [`spawn_camera`] started has ended.
pub(crate) fn camera_done() -> bool {
    CAMERA_RESULT.lock().is_some()
}

/// Runs the camera as its own high-priority task and returns its stats.
fn camera_task(kind: AreaKind, policy: CmaPolicy, frames: usize) -> CameraStats {
    let id = spawn_camera_with(kind, policy, frames);
    crate::sched::join(id);
    camera_result().unwrap_or_default()
}

fn idle_only(seed: u64) -> ExitStatus {
    let _ = seed;
    let mut rows = Vec::new();
    for (kind, policy) in ALLOCATORS {
        let stats = camera_task(kind, policy, 60);
        print_run(row_name(kind, policy), Condition::Idle, &stats);
        rows.push(RunRow {
            kind,
            policy,
            cond: Condition::Idle,
            stats,
            bytes_read: 0,
        });
    }
    summary(&rows);
    areas::print_stats();
    ExitStatus::Success
}

pub(crate) fn load_manifest() -> Result<DataSet, String> {
    let text = fs::with(|pc| -> Result<Vec<u8>, String> {
        let id = pc
            .open(testdata::MANIFEST_PATH)
            .map_err(|e| format!("{e}"))?;
        let size = pc.file_size(id).map_err(|e| format!("{e}"))? as usize;
        let mut buf = vec![0u8; size];
        let mut off = 0;
        while off < size {
            let n = pc
                .read(id, off as u64, &mut buf[off..])
                .map_err(|e| format!("{e}"))?;
            if n == 0 {
                break;
            }
            off += n;
        }
        Ok(buf)
    })
    .ok_or("no filesystem")??;
    let text = core::str::from_utf8(&text).map_err(|_| "manifest is not UTF-8")?;
    let (seed, entries) = testdata::parse_manifest(text).map_err(|e| format!("{e:?}"))?;
    let files = entries
        .filter_map(|e| e.ok())
        .map(|e| (e.size, String::from(e.path)))
        .collect();
    Ok(DataSet { seed, files })
}

/// The scan: every file read once in order, cold, with readahead and
/// without; device reads and hit counts, and the throughput ratio.
fn scan(data: &'static DataSet) {
    let mut results = Vec::new();
    for (label, ra) in [("readahead on (32 pages)", 32u32), ("readahead off", 0)] {
        let _ = fs::unmount();
        let s = Setup {
            readahead_max: ra,
            ..setup_for(Some(AreaKind::Carveout), 0)
        };
        if fs::mount(s).is_err() {
            println!("demo: remount failed");
            return;
        }
        let before = fs::with(|pc| *pc.stats()).unwrap_or_default();
        let mut buf = vec![0u8; 64 * 1024];
        let t0 = timer::ticks();
        let mut bytes = 0;
        for (size, path) in &data.files {
            load::read_file(data, path, true, &mut buf);
            bytes += size;
        }
        let secs = timer::ticks_to_ns(timer::ticks() - t0) as f64 / 1e9;
        let after = fs::with(|pc| *pc.stats()).unwrap_or_default();
        results.push((label, ra, secs, bytes, before, after));
    }
    let _ = fs::unmount();
    let _ = fs::mount(setup_for(Some(AreaKind::Carveout), 0));
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

fn print_run(name: &str, cond: Condition, st: &CameraStats) {
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
            "@alloc allocator={name} condition={c} pages={pages} attempts={attempts} successes={successes} p50_us={p50:.1} p99_us={p99:.1} max_us={max:.1}"
        );
        let mut line = format!("@latency allocator={name} condition={c} pages={pages} us=");
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
        "@frames allocator={name} condition={c} frames={} deadline_misses={}",
        st.frames, st.deadline_misses
    );
}

fn summary(rows: &[RunRow]) {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "\ncontiguous allocations under the camera pipeline (latency per allocation; TCG: compare ratios)"
    );
    let _ = writeln!(
        t,
        "{:<9} {:<9} {:>6} | {:>9} {:>9} {:>9} {:>7} | {:>9} {:>9} {:>9} {:>7} | {:>6} {:>6} {:>8}",
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
        "missed",
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
            "{:<9} {:<9} {:>6} | {:>9} {:>9} {:>9} {:>7} | {:>9} {:>9} {:>9} {:>7} | {:>6} {:>6} {:>8}",
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

/// The file workload alone under one setup, the same fixed sequence of
/// file reads (from the seed) every time: device reads and hit ratios.
fn utilization(name: &str, s: Setup, data: &'static DataSet, seed: u64, reads: usize) {
    apply(s);
    let cc_before = areas::MM.lock().areas.backend().stats();
    let before = fs::with(|pc| *pc.stats()).unwrap_or_default();
    load::resume();
    let t0 = timer::ticks();
    let mut rng = load::Rng::new(seed);
    let mut buf = vec![0u8; 16 * 1024];
    for _ in 0..reads {
        let path = load::pick(data, &mut rng);
        load::read_file(data, path, false, &mut buf);
    }
    let secs = timer::ticks_to_ns(timer::ticks() - t0) as f64 / 1e9;
    let after = fs::with(|pc| *pc.stats()).unwrap_or_default();
    let cc_after = areas::MM.lock().areas.backend().stats();
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

/// Per-page cost of contiguous allocations against zeroing and copying.
fn per_page(data: &'static DataSet, seed: u64, cma_pages: usize) {
    const ROUNDS: usize = 8;
    let pages = camera::PHOTO_PAGES;
    let align = contig::linux_cma_align_pages(pages);
    // GCMA: allocations from a cleancache filled by the file workload.
    apply(setup_for(Some(AreaKind::Gcma), cma_pages));
    let tasks = load::start(Condition::PageCache, data, seed);
    crate::sched::sleep_ns(2_000_000_000);
    load::stop(tasks);
    let mut gcma = Vec::new();
    for _ in 0..ROUNDS {
        let t0 = timer::ticks();
        if let Ok(a) = areas::alloc(contig::Select::Kind(AreaKind::Gcma), pages, align) {
            gcma.push(timer::ticks_to_ns(timer::ticks() - t0));
            let _ = areas::free(a);
        }
    }
    // The part of a GCMA allocation that is cleancache's: taking the pages
    // back (dropping the copies) and giving them back, timed alone.
    let mut take = Vec::new();
    if let Some((_, _, base, _)) = areas::first_of(AreaKind::Gcma) {
        for _ in 0..ROUNDS {
            let mut mm = areas::MM.lock();
            let cc = mm.areas.backend_mut();
            if let Some((pool, first)) = cc.locate_pfn(base) {
                let t0 = timer::ticks();
                if cc.take_back_range(pool, first, pages).is_ok() {
                    take.push(timer::ticks_to_ns(timer::ticks() - t0));
                    let _ = cc.give_back_range(pool, first, pages);
                }
            }
        }
    }
    // CMA: allocations from an area full of lent page-cache pages.
    apply(setup_for(Some(AreaKind::Cma), cma_pages));
    let mut cma = Vec::new();
    for _ in 0..ROUNDS {
        let tasks = load::start(Condition::PageCache, data, seed);
        crate::sched::sleep_ns(500_000_000);
        load::stop(tasks);
        let t0 = timer::ticks();
        if let Ok(a) = areas::alloc(contig::Select::Kind(AreaKind::Cma), pages, align) {
            cma.push(timer::ticks_to_ns(timer::ticks() - t0));
            let _ = areas::free(a);
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
    let per = |v: &[u64]| {
        let mut v = v.to_vec();
        v.sort_unstable();
        probe::nearest_rank(&v, 50, 100)
            .map(|x| x as f64 / pages as f64)
            .unwrap_or(f64::NAN)
    };
    let (g, c, s, m) = (per(&gcma), per(&cma), per(&memset), per(&memcpy));
    println!(
        "per page (median of {ROUNDS} x {pages} pages): GCMA alloc {g:.1} ns, CMA alloc {c:.1} ns, memset {s:.1} ns, memcpy {m:.1} ns"
    );
    println!(
        "GCMA allocation costs {:.2} of zeroing the same pages; CMA costs {:.2}",
        g / s,
        c / s
    );
    println!(
        "  of which cleancache take-back {:.1} ns per page",
        per(&take)
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
        "@perpage gcma_alloc_ns={g:.1} cma_alloc_ns={c:.1} memset_ns={s:.1} memcpy_ns={m:.1} clear_page_ns={z:.1} copy_page_ns={k:.1}"
    );
}
