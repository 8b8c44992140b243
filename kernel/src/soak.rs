//! The soak (`mode=soak minutes=N`): the demo's workloads (`workload`) in a
//! loop over every allocator, with the kernel's invariants checked every
//! second.
//!
//! One cycle runs, for each allocator (GCMA, CMA, carveout) and each loaded
//! condition (page-cache pressure, anonymous pressure, the `odirect` and
//! `longpin` pin patterns), the camera pipeline (`workload::camera`) for
//! [`PHASE_FRAMES`] frames on that allocator's area while the background
//! tasks load the system (`workload::load`: file reads, anonymous memory,
//! direct-I/O readers, long pins), the page cache set up as the demo sets
//! it up for that allocator (`workload::setup::setup_for`). Cycles
//! repeat until N minutes have passed (the phase under way is finished).
//!
//! Checked every second while a phase runs and once after it (between
//! phases the page cache is synced and emptied for the next setup, which
//! the summary's longest gap between checks shows), under the memsys lock:
//! - no frame in two owners: every page of every area is in the state its
//!   area says (allocated, cleancache copy, lent to the page cache, idle)
//!   in the frame descriptors too; every page-cache page sits in its own
//!   frame, marked page cache in its descriptor, owned by that page in the
//!   reverse map, outside GCMA and carveout areas and, inside a CMA area,
//!   only on a page the area has lent;
//! - every accounting identity: each area kind's allocated, cached, lent
//!   and idle pages add up to its size; the GCMA bitmaps match cleancache; cleancache's own
//!   invariants and its counters against the areas; the frame table's
//!   invariants and its per-state counts against the areas and the page
//!   cache; the page cache's counters (`check_stats`) and its allocator's
//!   ordinary/lent counts;
//! - every file byte the workers read equals its seeded content
//!   (`testdata`; the soak turns on `load::CHECK_ALL`), and no read fails;
//! - no cleancache copy differs from the disk: up to [`COPIES_PER_CHECK`]
//!   cached copies per check, round-robin over the GCMA pool, compared with
//!   the seeded content of the page they name (the data set is only read,
//!   so that is the disk's content); hits (demand restores) go straight
//!   to a reader, which checks every byte (read-ahead restores are checked
//!   when a reader reaches them, unless they are evicted first).
//! - after each phase: GCMA and carveout allocations all succeeded (they
//!   are guaranteed while the request fits), no camera frame was corrupt.
//!
//! The first violation ends the soak: one line says what broke, and the
//! kernel exits with status 1. Otherwise a summary table and an `@soak`
//! line end it, and the exit status is 0.
//!
//! Locking: the checks take the memsys lock (areas, cleancache, page cache),
//! then the frame table inside it (the kernel's lock order), and never call
//! the page cache from inside the frame-table lock (its page-state store
//! takes that lock itself).

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;
use core::sync::atomic::Ordering;

use contig::{AreaKind, CmaPolicy, PfnState};
use frames::{FrameState, PAGE_SIZE, Pfn};
use testdata::Content;

use crate::arch::timer;
use crate::exit::ExitStatus;
use crate::workload::camera;
use crate::workload::kinds::{AREA_KINDS, kind_name};
use crate::workload::load::{self, Condition, DataSet};
use crate::workload::setup::{apply, load_manifest, setup_for};
use crate::{BootInfo, memsys, mm, println, sched};

/// Camera frames per phase: 3 s at 30 fps, six stream sessions (ring and
/// per-frame allocation) and six photo buffers.
pub const PHASE_FRAMES: usize = 90;
/// Conditions of a cycle (idle adds nothing to a soak).
const CONDITIONS: [Condition; 4] = [
    Condition::PageCache,
    Condition::Anon,
    Condition::Odirect,
    Condition::Longpin,
];
/// Cleancache copies compared with the disk per check.
pub const COPIES_PER_CHECK: usize = 1024;
/// Progress line period.
const PROGRESS_NS: u64 = 30_000_000_000;
const CHECK_NS: u64 = 1_000_000_000;

/// Camera allocations of one allocator.
#[derive(Default, Clone, Copy)]
struct Allocs {
    attempts: u64,
    successes: u64,
}

/// What the soak has done so far.
#[derive(Default)]
struct Tally {
    cycles: u64,
    phases: u64,
    checks: u64,
    copies_verified: u64,
    allocs: [Allocs; 3],
    frames: u64,
    /// Start of the last check, the longest time between two check starts,
    /// and the time spent checking (total, longest).
    last_check: Option<u64>,
    max_gap_ns: u64,
    check_ns: u64,
    max_check_ns: u64,
}

/// The data set as the checks need it: file id to (size, path), and the
/// manifest's bytes (the one file that is not generated content).
struct Files {
    data: &'static DataSet,
    by_id: BTreeMap<u64, usize>,
    manifest: Option<(u64, Vec<u8>)>,
}

fn elapsed(t0: u64) -> u64 {
    timer::ticks_to_ns(timer::ticks() - t0)
}

fn mmss(ns: u64) -> String {
    let s = ns / 1_000_000_000;
    format!("{}m{:02}s", s / 60, s % 60)
}

/// Where the soak is, for the progress and violation lines.
struct Place {
    t0: u64,
    cycle: u64,
    kind: AreaKind,
    cond: Condition,
}

impl core::fmt::Display for Place {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{} into the soak, cycle {}, {}/{}",
            mmss(elapsed(self.t0)),
            self.cycle + 1,
            kind_name(self.kind),
            self.cond.name()
        )
    }
}

pub fn run(_info: &BootInfo, minutes: u32, seed: u64) -> ExitStatus {
    let area = |k| memsys::first_of(k).map(|a| a.pages).unwrap_or(0);
    let (gcma_pages, cma_pages, carveout_pages) = (
        area(AreaKind::Gcma),
        area(AreaKind::Cma),
        area(AreaKind::Carveout),
    );
    println!(
        "soak: {minutes} minutes of the demo's workloads on GCMA, CMA and the carveout, invariants checked every second (seed {seed})"
    );
    if gcma_pages == 0 || cma_pages == 0 || carveout_pages == 0 {
        println!(
            "soak: the device tree needs one GCMA, one CMA and one carveout region (tools/dtb/make-dtbs.sh)"
        );
        return ExitStatus::BootFailed;
    }
    if !sched::started() {
        println!("soak: no timer interrupt (GIC not found): the workloads need the scheduler");
        return ExitStatus::BootFailed;
    }
    if let Err(e) = memsys::mount(setup_for(Some(AreaKind::Carveout), 0)) {
        println!("soak: no data disk ({e}); qemu-run.sh attaches build/demo-data.img in soak mode");
        return ExitStatus::BootFailed;
    }
    let data: &'static DataSet = match load_manifest() {
        Ok(d) => alloc::boxed::Box::leak(alloc::boxed::Box::new(d)),
        Err(e) => {
            println!("soak: the data disk has no usable manifest: {e}");
            return ExitStatus::BootFailed;
        }
    };
    let files = match index_files(data) {
        Ok(f) => f,
        Err(e) => {
            println!("soak: {e}");
            return ExitStatus::BootFailed;
        }
    };
    let total: u64 = data.files.iter().map(|(s, _)| *s).sum();
    println!(
        "soak: data set of {} files, {} MiB; {} camera frames per phase, {} phases per cycle",
        data.files.len(),
        total >> 20,
        PHASE_FRAMES,
        AREA_KINDS.len() * CONDITIONS.len()
    );
    load::CHECK_ALL.store(true, Ordering::Relaxed);
    load::BYTES_CHECKED.store(0, Ordering::Relaxed);
    let cc_before = cc_restores();

    let t0 = timer::ticks();
    let end = minutes as u64 * 60 * 1_000_000_000;
    let mut tally = Tally::default();
    let mut cursor = 0usize;
    let mut last_progress = 0u64;
    let mut place = Place {
        t0,
        cycle: 0,
        kind: AreaKind::Gcma,
        cond: Condition::PageCache,
    };
    'soak: loop {
        for (k, kind) in AREA_KINDS.into_iter().enumerate() {
            for cond in CONDITIONS {
                if elapsed(t0) >= end {
                    break 'soak;
                }
                place.kind = kind;
                place.cond = cond;
                apply(setup_for(Some(kind), cma_pages));
                let phase_seed = seed ^ tally.phases.wrapping_mul(0x9e37_79b9);
                let tasks = load::start(cond, data, phase_seed, load::Placement::Spread);
                let cam = camera::spawn(kind, CmaPolicy::Linux, PHASE_FRAMES);
                let mut last_check = timer::ticks();
                while !camera::done() {
                    sched::sleep_ns(50_000_000);
                    if elapsed(last_check) < CHECK_NS {
                        continue;
                    }
                    last_check = timer::ticks();
                    if let Err(what) = check(&files, &mut cursor, &mut tally) {
                        return violation(&place, &tally, &what);
                    }
                    let now = elapsed(t0);
                    if now - last_progress >= PROGRESS_NS {
                        last_progress = now;
                        progress(&place, &tally, minutes, cc_before);
                    }
                }
                sched::join(cam);
                load::stop(tasks);
                let st = camera::take_result().unwrap_or_default();
                let a = &mut tally.allocs[k];
                a.attempts += st.frame_attempts + st.photo_attempts;
                a.successes += st.frame_successes + st.photo_successes;
                tally.frames += st.frames;
                tally.phases += 1;
                if let Err(what) = check(&files, &mut cursor, &mut tally) {
                    return violation(&place, &tally, &what);
                }
                let failed = (st.frame_attempts - st.frame_successes)
                    + (st.photo_attempts - st.photo_successes);
                if kind != AreaKind::Cma && failed > 0 {
                    let what = format!(
                        "{} of {} {} allocations failed (frames {}/{}, photos {}/{}): a guaranteed allocator refused a request that fits",
                        failed,
                        st.frame_attempts + st.photo_attempts,
                        kind_name(kind),
                        st.frame_successes,
                        st.frame_attempts,
                        st.photo_successes,
                        st.photo_attempts
                    );
                    return violation(&place, &tally, &what);
                }
                if st.corrupt_frames > 0 {
                    let what = format!(
                        "{} camera frames read back other bytes than were captured into their {} buffer",
                        st.corrupt_frames,
                        kind_name(kind)
                    );
                    return violation(&place, &tally, &what);
                }
            }
        }
        tally.cycles += 1;
        place.cycle = tally.cycles;
    }
    // Everything written back and unmounted cleanly, then one last check.
    apply(setup_for(Some(AreaKind::Carveout), 0));
    if let Err(what) = check(&files, &mut cursor, &mut tally) {
        return violation(&place, &tally, &what);
    }
    let restores = since(cc_restores(), cc_before);
    if let Err(e) = memsys::unmount() {
        return violation(&place, &tally, &format!("unmount failed: {e}"));
    }
    summary(&tally, elapsed(t0), restores);
    ExitStatus::Success
}

/// Opens every file of the data set (file ids for the cleancache check)
/// and keeps the manifest's bytes.
fn index_files(data: &'static DataSet) -> Result<Files, String> {
    memsys::with(|pc| -> Result<Files, String> {
        let mut by_id = BTreeMap::new();
        for (i, (size, path)) in data.files.iter().enumerate() {
            let id = pc.open(path).map_err(|e| format!("open {path}: {e}"))?;
            let on_disk = pc.file_size(id).map_err(|e| format!("{path}: {e}"))?;
            if on_disk != *size {
                return Err(format!(
                    "{path} has {on_disk} bytes, the manifest says {size}"
                ));
            }
            by_id.insert(id, i);
        }
        let id = pc
            .open(testdata::MANIFEST_PATH)
            .map_err(|e| format!("open {}: {e}", testdata::MANIFEST_PATH))?;
        let size = pc.file_size(id).map_err(|e| format!("{e}"))? as usize;
        let mut bytes = alloc::vec![0u8; size];
        let mut off = 0;
        while off < size {
            match pc.read(id, off as u64, &mut bytes[off..]) {
                Ok(n) if n > 0 => off += n,
                Ok(_) => break,
                Err(e) => return Err(format!("read {}: {e}", testdata::MANIFEST_PATH)),
            }
        }
        Ok(Files {
            data,
            by_id,
            manifest: Some((id, bytes)),
        })
    })
    .ok_or_else(|| String::from("no filesystem mounted"))?
}

/// Cleancache restores the page cache has counted: (demand, read-ahead).
/// A demand restore is the page a reader asked for, and soak readers check
/// every byte they read; a read-ahead restore is checked when a reader
/// reaches it (if it is not evicted first).
fn cc_restores() -> (u64, u64) {
    memsys::with(|pc| {
        let s = pc.stats();
        (s.cc_demand_restores, s.cc_ra_restores)
    })
    .unwrap_or((0, 0))
}

fn since(now: (u64, u64), before: (u64, u64)) -> (u64, u64) {
    (
        now.0.saturating_sub(before.0),
        now.1.saturating_sub(before.1),
    )
}

fn violation(place: &Place, tally: &Tally, what: &str) -> ExitStatus {
    println!("soak: VIOLATION ({place}, check {}): {what}", tally.checks);
    println!(
        "@soak result=violation seconds={} cycles={} checks={} violations=1",
        elapsed(place.t0) / 1_000_000_000,
        tally.cycles,
        tally.checks
    );
    ExitStatus::TestsFailed
}

fn progress(place: &Place, tally: &Tally, minutes: u32, cc_before: (u64, u64)) {
    let (ok, all) = tally
        .allocs
        .iter()
        .fold((0, 0), |(o, a), x| (o + x.successes, a + x.attempts));
    println!(
        "soak: {}/{}m00s cycle {} {}/{}: {} checks, {}/{} allocations, {} MiB verified, {} cleancache hits, {} copies verified, 0 violations",
        mmss(elapsed(place.t0)),
        minutes,
        place.cycle + 1,
        kind_name(place.kind),
        place.cond.name(),
        tally.checks,
        ok,
        all,
        load::BYTES_CHECKED.load(Ordering::Relaxed) >> 20,
        since(cc_restores(), cc_before).0,
        tally.copies_verified
    );
}

fn summary(tally: &Tally, ns: u64, (restores, ra_restores): (u64, u64)) {
    let bytes = load::BYTES_CHECKED.load(Ordering::Relaxed);
    let mut t = String::new();
    let _ = writeln!(t, "\nsoak summary");
    let row = |t: &mut String, k: &str, v: String| {
        let _ = writeln!(t, "  {k:<34} {v:>16}");
    };
    row(&mut t, "minutes", format!("{:.1}", ns as f64 / 60e9));
    row(
        &mut t,
        "cycles (phases)",
        format!("{} ({})", tally.cycles, tally.phases),
    );
    row(&mut t, "camera frames", format!("{}", tally.frames));
    for (i, kind) in AREA_KINDS.into_iter().enumerate() {
        let a = tally.allocs[i];
        row(
            &mut t,
            &format!("allocations {} (ok/attempts)", kind_name(kind)),
            format!("{}/{}", a.successes, a.attempts),
        );
    }
    row(
        &mut t,
        "bytes verified",
        format!("{bytes} ({} MiB)", bytes >> 20),
    );
    row(&mut t, "cleancache hits verified", format!("{restores}"));
    row(
        &mut t,
        "read-ahead restores (checked if read)",
        format!("{ra_restores}"),
    );
    row(
        &mut t,
        "cleancache copies verified",
        format!("{}", tally.copies_verified),
    );
    row(&mut t, "invariant checks", format!("{}", tally.checks));
    row(
        &mut t,
        "check time mean / max (ms)",
        format!(
            "{} / {}",
            tally.check_ns / tally.checks.max(1) / 1_000_000,
            tally.max_check_ns / 1_000_000
        ),
    );
    row(
        &mut t,
        "longest gap between checks (s)",
        format!("{:.1}", tally.max_gap_ns as f64 / 1e9),
    );
    row(&mut t, "violations", String::from("0"));
    crate::print!("{t}");
    let a = |i: usize| tally.allocs[i];
    println!(
        "@soak result=pass seconds={} cycles={} phases={} gcma_allocs={} gcma_ok={} cma_allocs={} cma_ok={} carveout_allocs={} carveout_ok={} bytes_verified={bytes} cc_hits_verified={restores} cc_ra_restores={ra_restores} cc_copies_verified={} checks={} max_check_ms={} max_gap_ms={} violations=0",
        ns / 1_000_000_000,
        tally.cycles,
        tally.phases,
        a(0).attempts,
        a(0).successes,
        a(1).attempts,
        a(1).successes,
        a(2).attempts,
        a(2).successes,
        tally.copies_verified,
        tally.checks,
        tally.max_check_ns / 1_000_000,
        tally.max_gap_ns / 1_000_000
    );
}

/// One invariant check (see the module documentation); `Err` says what
/// broke.
fn check(files: &Files, cursor: &mut usize, tally: &mut Tally) -> Result<(), String> {
    let t0 = timer::ticks();
    if let Some(last) = tally.last_check {
        tally.max_gap_ns = tally.max_gap_ns.max(timer::ticks_to_ns(t0 - last));
    }
    tally.last_check = Some(t0);
    let r = check_once(files, cursor, tally);
    let ns = elapsed(t0);
    tally.check_ns += ns;
    tally.max_check_ns = tally.max_check_ns.max(ns);
    r
}

fn check_once(files: &Files, cursor: &mut usize, tally: &mut Tally) -> Result<(), String> {
    tally.checks += 1;
    if let Some(p) = load::FIRST_PROBLEM.lock().take() {
        return Err(p);
    }
    // Lock order: memsys, then the areas.
    let guard = memsys::lock();
    let areas_guard = memsys::areas();
    let (areas, pc) = (&*areas_guard, guard.page_cache());

    // Accounting of the areas and cleancache.
    let r = areas.mem_report();
    for (name, k) in [("gcma", r.gcma), ("cma", r.cma), ("carveout", r.carveout)] {
        if k.size != k.allocated + k.cached + k.lent + k.idle {
            return Err(format!(
                "{name} accounting: size {} != allocated {} + cached {} + lent {} + idle {}",
                k.size, k.allocated, k.cached, k.lent, k.idle
            ));
        }
    }
    areas
        .check()
        .map_err(|pfn| format!("GCMA bitmap and cleancache disagree at pfn {pfn:#x}"))?;
    let cc = areas.backend();
    cc.check_invariants()
        .map_err(|e| format!("cleancache invariant: {e}"))?;
    let cs = cc.stats();
    if cs.cached_now != r.gcma.cached || cs.lendable_now + r.gcma.allocated != r.gcma.size {
        return Err(format!(
            "cleancache holds {} copies with {} pages lendable; the GCMA areas count {} cached, {} allocated of {}",
            cs.cached_now, cs.lendable_now, r.gcma.cached, r.gcma.allocated, r.gcma.size
        ));
    }

    // Every area page: the area's view against the frame descriptor.
    let spans: Vec<(Pfn, usize)> = areas.ids().filter_map(|id| areas.span(id)).collect();
    let mut lent = BTreeSet::new();
    let fstats = mm::with_frames(|t| -> Result<frames::FrameStats, String> {
        t.verify()
            .map_err(|c| format!("frame table invariant: {c:?}"))?;
        for &(base, n) in &spans {
            for pfn in (0..n as u64).map(|i| base + i) {
                let (_, st) = areas.pfn_state(pfn).ok_or("area page outside its area")?;
                let want = match st {
                    PfnState::Allocated => FrameState::Allocated,
                    PfnState::Cached { .. } => FrameState::Cleancache,
                    PfnState::Lent => {
                        lent.insert(pfn);
                        FrameState::PageCache
                    }
                    PfnState::Idle => FrameState::ReservedArea,
                    PfnState::Inconsistent => {
                        return Err(format!(
                            "pfn {pfn:#x}: taken back from cleancache but in no GCMA allocation"
                        ));
                    }
                };
                let got = t.state(pfn);
                if got != Some(want) {
                    return Err(format!(
                        "pfn {pfn:#x} is {st:?} in its area but {got:?} in its frame descriptor"
                    ));
                }
            }
        }
        Ok(t.stats())
    })?;
    if fstats.state(FrameState::Cleancache) != cs.cached_now as u64
        || fstats.state(FrameState::Allocated) != r.allocated() as u64
        || fstats.state(FrameState::ReservedArea)
            != (r.gcma.idle + r.cma.idle + r.carveout.idle) as u64
    {
        return Err(format!(
            "frame descriptors count {} cleancache / {} allocated / {} idle-area frames; the areas {} / {} / {}",
            fstats.state(FrameState::Cleancache),
            fstats.state(FrameState::Allocated),
            fstats.state(FrameState::ReservedArea),
            cs.cached_now,
            r.allocated(),
            r.gcma.idle + r.cma.idle + r.carveout.idle
        ));
    }

    // The page cache: one frame per page, its own, in a frame it may hold.
    if let Some(pc) = pc {
        pc.check_stats()
            .map_err(|e| format!("page-cache counters: {e}"))?;
        let mut seen = BTreeMap::new();
        for key in pc.lru_order() {
            let f = pc
                .page_frame(key.0, key.1)
                .ok_or("LRU names a page not cached")?;
            let pfn = Pfn::from_addr(f.addr() as u64);
            if let Some(other) = seen.insert(pfn, key) {
                return Err(format!(
                    "pfn {pfn:#x} caches two pages: file {} page {} and file {} page {}",
                    other.0, other.1, key.0, key.1
                ));
            }
            if pc.frame_owner(f) != Some(key) {
                return Err(format!(
                    "pfn {pfn:#x} caches file {} page {} but its reverse map says {:?}",
                    key.0,
                    key.1,
                    pc.frame_owner(f)
                ));
            }
            match areas.pfn_state(pfn) {
                None | Some((_, PfnState::Lent)) => {}
                Some((_, st)) => {
                    return Err(format!(
                        "pfn {pfn:#x} caches file {} page {} but is {st:?} in its area",
                        key.0, key.1
                    ));
                }
            }
        }
        if let Some(pfn) = lent.iter().find(|p| !seen.contains_key(p)) {
            return Err(format!(
                "CMA pfn {pfn:#x} is lent to the page cache, which holds no page in it"
            ));
        }
        mm::with_frames(|t| -> Result<(), String> {
            for pfn in seen.keys() {
                let st = t.state(*pfn);
                if st != Some(FrameState::PageCache) {
                    return Err(format!(
                        "pfn {pfn:#x} holds a page-cache page but its descriptor says {st:?}"
                    ));
                }
            }
            Ok(())
        })?;
        let cached = pc.cached_pages();
        let a = memsys::pages(pc);
        if fstats.state(FrameState::PageCache) != cached as u64
            || a.lent_out != r.cma.lent
            || a.ordinary_out + a.lent_out != cached
        {
            return Err(format!(
                "page cache holds {cached} pages; descriptors count {} page-cache frames, its allocator {} ordinary + {} lent, the CMA areas {} lent",
                fstats.state(FrameState::PageCache),
                a.ordinary_out,
                a.lent_out,
                r.cma.lent
            ));
        }
    }

    // Cleancache copies against the disk's bytes.
    let Some(&(gbase, gpages)) = areas
        .ids()
        .find(|id| areas.kind(*id) == Some(AreaKind::Gcma))
        .and_then(|id| areas.span(id))
        .as_ref()
    else {
        return Ok(());
    };
    let mut verified = 0;
    for _ in 0..gpages {
        if verified == COPIES_PER_CHECK {
            break;
        }
        *cursor = (*cursor + 1) % gpages;
        let pfn = gbase + *cursor as u64;
        let Some((_, PfnState::Cached { file, index })) = areas.pfn_state(pfn) else {
            continue;
        };
        // SAFETY: a GCMA pool page holding a cleancache copy: identity-mapped
        // RAM (no-map regions are never registered), written only by
        // cleancache under the memsys lock, which is held here; read only.
        let copy =
            unsafe { core::slice::from_raw_parts(pfn.addr() as *const u8, PAGE_SIZE as usize) };
        let at = index as u64 * PAGE_SIZE;
        let (size, wrong) = if let Some(&i) = files.by_id.get(&file) {
            let (size, path) = &files.data.files[i];
            let valid = (size.saturating_sub(at)).min(PAGE_SIZE) as usize;
            let c = Content::new(files.data.seed, path);
            (
                *size,
                c.first_mismatch(at, &copy[..valid])
                    .map(|o| (path.as_str(), o)),
            )
        } else if let Some((_, bytes)) = files.manifest.as_ref().filter(|(id, _)| *id == file) {
            let from = (at as usize).min(bytes.len());
            let want = &bytes[from..(from + PAGE_SIZE as usize).min(bytes.len())];
            let wrong = want
                .iter()
                .zip(copy)
                .position(|(a, b)| a != b)
                .map(|o| (testdata::MANIFEST_PATH, o));
            (bytes.len() as u64, wrong)
        } else {
            return Err(format!(
                "cleancache holds page {index} of file id {file}, which is no file of the data set"
            ));
        };
        if at >= size {
            return Err(format!(
                "cleancache holds page {index} of file id {file}, past its end ({size} bytes)"
            ));
        }
        if let Some((path, o)) = wrong {
            return Err(format!(
                "cleancache copy of {path} page {index} (pfn {pfn:#x}) differs from the disk at offset {}",
                at + o as u64
            ));
        }
        verified += 1;
    }
    tally.copies_verified += verified as u64;
    Ok(())
}
