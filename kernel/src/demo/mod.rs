//! The camera-buffer demo (`mode=demo`, what `cargo run` shows).
//!
//! In one boot, side by side on reserved regions of the same size:
//! 1. page operations the allocators are compared with (zero, copy a page);
//! 2. a sequential scan of the data set with and without readahead;
//! 3. for each allocator (GCMA, CMA with the Linux policy, CMA with the
//!    Android sleep-and-rescan policy (`cma-retry`), carveout) and condition
//!    (idle, page-cache pressure, anonymous pressure, `odirect`: direct-I/O
//!    readers pinning each 1 MiB request's pages while it runs, `longpin`:
//!    pages held for seconds and turning over; see `workload::load`): the camera
//!    pipeline at 30 fps with sensor timing and its allocations timed,
//!    while the background load runs; after each CMA run, what the model
//!    did (`@cmawork`: pages dropped, copied, busy answers, passes, time
//!    inside and between passes), for the calibration against Linux CMA;
//!    with several cores the camera runs alone on core 0 and the load on
//!    the others (`cores=N` on every line), and then, for every allocator
//!    and each condition with a load, the same run with the load on core 0
//!    beside the camera (`cores=1`, the one-core comparison, `compare`);
//!    every run also reports the memory-state lock's figures (`@lock`:
//!    acquisitions, contended ones, wait and hold times, `locks`);
//! 4. utilization: the file workload alone under each setup (no
//!    reservation, carveout, CMA, GCMA): device reads and hit ratios;
//! 5. per-page cost of GCMA and CMA allocations against memset/memcpy;
//! 6. GCMA and the carveout allocating in strict alternation, idle and
//!    under page-cache load (`interleaved`), so host noise hits both alike;
//! 7. tag storage: the second GCMA donor (`tags@`), taken back by explicit
//!    pfn ranges while the page-cache load runs;
//! 8. per-area statistics and the memory report.
//!
//! Every table has machine-readable `@` lines (see tools/bench/README.md);
//! qemu-run.sh hands the log to tools/bench/collect.py, which writes
//! results/bench.json, plots and the results page.
//!
//! The setups (none, carveout, CMA, GCMA: page-cache budget, CMA lending,
//! cleancache) are `workload::setup`'s.
//!
//! Files: this one runs the steps in order; `scan` (step 2), `report` (the
//! runs' lines and summary), `cma_work` (the CMA runs' `@cmawork`),
//! `locks` (every run's `@lock`), `compare` (one core against several), `utilization` (step 4), `per_page` (step 5)
//! with `cc_costs` (cleancache's own costs), `interleaved` (step 6), `tags` (step 7). The camera
//! pipeline, the background load, the setups, the manifest and the area
//! kinds' names are in `crate::workload`, which the soak shares; nothing
//! outside this directory imports the demo.

mod cc_costs;
mod cma_work;
mod compare;
mod interleaved;
mod locks;
mod per_page;
mod report;
mod scan;
mod tags;
mod utilization;

use alloc::boxed::Box;
use alloc::format;
use alloc::vec::Vec;

use contig::{AreaKind, CmaPolicy};

use crate::exit::ExitStatus;
use crate::memsys;
use crate::workload::camera::{self, CameraStats};
use crate::workload::kinds::kind_name;
use crate::workload::load::{self, Condition, DataSet, Placement};
use crate::workload::setup::{BUDGET_PAGES, apply, load_manifest, prefill, setup_for};
use crate::{BootInfo, println, probes};
use per_page::per_page;
use report::{print_run, summary};
use scan::scan;
use utilization::utilization;

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

/// The conditions of the one-core comparison (all but idle).
const COMPARED: [Condition; 4] = [
    Condition::PageCache,
    Condition::Anon,
    Condition::Odirect,
    Condition::Longpin,
];

struct RunRow {
    kind: AreaKind,
    policy: CmaPolicy,
    cond: Condition,
    /// Cores the run's tasks used (`Placement::cores`).
    cores: usize,
    stats: CameraStats,
    bytes_read: u64,
}

/// What every camera run of the demo shares.
struct RunCtx {
    data: &'static DataSet,
    seed: u64,
    scale: Scale,
    cma_pages: usize,
    gcma_pages: usize,
}

/// One camera run: `kind`'s setup, warm-up and prefill, the load of
/// `cond` placed by `placement`, the camera timed; prints the run's lines
/// (`@alloc`, `@latency`, `@frames`, `@lock`, and `@cmawork` for CMA).
fn camera_run(
    ctx: &RunCtx,
    kind: AreaKind,
    policy: CmaPolicy,
    cond: Condition,
    placement: Placement,
) -> RunRow {
    apply(setup_for(Some(kind), ctx.cma_pages));
    camera::warm_up(kind);
    if cond != Condition::Idle {
        prefill(kind, ctx.data, ctx.cma_pages.min(ctx.gcma_pages));
    }
    let tasks = load::start(cond, ctx.data, ctx.seed, placement);
    crate::sched::sleep_ns(ctx.scale.warmup_ms() * 1_000_000);
    let before = cma_work::snapshot();
    let lock_before = locks::snapshot();
    let _ = load::take_longest_step();
    let stats = camera::run_task(kind, policy, ctx.scale.frames());
    let bytes_read = load::BYTES_READ.load(core::sync::atomic::Ordering::Relaxed);
    load::stop(tasks);
    let name = row_name(kind, policy);
    let cores = placement.cores();
    print_run(name, cond, cores, &stats);
    locks::print_since(name, cond, cores, &lock_before);
    let st = load::take_longest_step();
    if st.hold_us > 0 {
        crate::println!(
            "@readstep allocator={name} condition={} cores={cores} hold_us={} pages_read={} ra_pages={} cc_restores={} evictions={}",
            cond.name(),
            st.hold_us,
            st.pages_read,
            st.ra_pages,
            st.cc_restores,
            st.evictions
        );
    }
    if kind == AreaKind::Cma {
        cma_work::print_since(name, cond, cores, &before);
    }
    RunRow {
        kind,
        policy,
        cond,
        cores,
        stats,
        bytes_read,
    }
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
    let area = |k| memsys::first_of(k).map(|a| a.pages).unwrap_or(0);
    let (gcma_pages, cma_pages, carveout_pages) = (
        area(AreaKind::Gcma),
        area(AreaKind::Cma),
        area(AreaKind::Carveout),
    );
    let ram_mib: u64 = info.ram.iter().map(|r| r.size).sum::<u64>() >> 20;
    println!(
        "@bench board={} scale={} seed={seed} gcma_mib={} cma_mib={} carveout_mib={} ram_mib={ram_mib} frame_align_pages={} photo_align_pages={} cores={}",
        info.board,
        scale.name(),
        gcma_pages >> 8,
        cma_pages >> 8,
        carveout_pages >> 8,
        contig::linux_cma_align_pages(camera::FRAME_PAGES),
        contig::linux_cma_align_pages(camera::PHOTO_PAGES),
        Placement::Spread.cores()
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
    // The tag-storage donor stays taken outside its own step (see `tags`).
    let tags_held = tags::hold();

    if let Err(e) = memsys::mount(setup_for(Some(AreaKind::Carveout), 0)) {
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

    let compared = if Placement::Spread.cores() > 1 {
        ALLOCATORS.len() * COMPARED.len()
    } else {
        0
    };
    let steps = 1 + ALLOCATORS.len() * Condition::ALL.len() + compared + 4 + 1 + 1 + 1;
    let ctx = RunCtx {
        data,
        seed,
        scale,
        cma_pages,
        gcma_pages,
    };
    let mut step = 0;
    progress(&mut step, steps, "scan");
    scan(data);

    let cores = Placement::Spread.cores();
    let mut rows = Vec::new();
    for cond in Condition::ALL {
        for (kind, policy) in ALLOCATORS {
            progress(
                &mut step,
                steps,
                &format!("{}/{}", row_name(kind, policy), cond.name()),
            );
            rows.push(camera_run(&ctx, kind, policy, cond, Placement::Spread));
        }
    }
    // The one-core comparison: the same runs with the load beside the
    // camera on core 0 (idle has no load: placement cannot matter).
    let mut one_core = Vec::new();
    if cores > 1 {
        for cond in COMPARED {
            for (kind, policy) in ALLOCATORS {
                progress(
                    &mut step,
                    steps,
                    &format!("{}/{}/one-core", row_name(kind, policy), cond.name()),
                );
                one_core.push(camera_run(&ctx, kind, policy, cond, Placement::OneCore));
            }
        }
        compare::print(&rows, &one_core);
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

    progress(&mut step, steps, "interleaved");
    interleaved::interleaved(data, seed, cma_pages, scale.frames());

    progress(&mut step, steps, "tag-storage");
    let _tags_held = tags::run(tags_held, data, seed, scale.frames());

    summary(&rows);
    memsys::print_stats();
    let mismatches = load::MISMATCHES.load(core::sync::atomic::Ordering::Relaxed);
    let checked = load::FILES_CHECKED.load(core::sync::atomic::Ordering::Relaxed);
    let corrupt: u64 = rows
        .iter()
        .chain(&one_core)
        .map(|r| r.stats.corrupt_frames)
        .sum();
    println!(
        "demo: {checked} files checked byte by byte during the runs, {mismatches} mismatches; {corrupt} corrupt frames"
    );
    let _ = memsys::unmount();
    if mismatches == 0 && corrupt == 0 {
        ExitStatus::Success
    } else {
        ExitStatus::TestsFailed
    }
}

fn idle_only(seed: u64) -> ExitStatus {
    let _ = seed;
    let mut rows = Vec::new();
    for (kind, policy) in ALLOCATORS {
        let stats = camera::run_task(kind, policy, 60);
        let cores = Placement::Spread.cores();
        print_run(row_name(kind, policy), Condition::Idle, cores, &stats);
        rows.push(RunRow {
            kind,
            policy,
            cond: Condition::Idle,
            cores,
            stats,
            bytes_read: 0,
        });
    }
    summary(&rows);
    memsys::print_stats();
    ExitStatus::Success
}
