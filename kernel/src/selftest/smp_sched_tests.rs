//! Self-tests of scheduling on several cores: tasks run on the core they
//! were given (sleeping on that core's timer), joins across cores lose no
//! wake-up, and the memory state's invariants hold while a task on another
//! core reads through the page cache.
//!
//! A lost wake-up shows as a joiner that never returns: the harness stops a
//! kernel that stops reporting and counts the test failed.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use contig::{AreaKind, Select};
use probe::AnyProbe;
use testdata::Content;

use super::TestResult;
use super::storage_tests::manifest;
use crate::BootInfo;
use crate::arch::cpu::{self, MAX_CPUS};
use crate::arch::smp;
use crate::memsys;
use crate::sched;
use crate::sync::IrqLock;

/// Priority of the test tasks (above the idle tasks, below `main`).
const PRIO_TEST: u8 = 10;

/// The cores in the scheduler, or an error when there is only one.
fn cores() -> Result<Vec<usize>, String> {
    let cores: Vec<usize> = (0..MAX_CPUS).filter(|&c| sched::core_online(c)).collect();
    check!(
        cores.len() >= 2,
        "{} core(s) in the scheduler: boot with several (QEMU -smp 2 or more)",
        cores.len()
    );
    Ok(cores)
}

/// One task per core: each runs on the core it was given, before and after
/// three 1 ms sleeps (its core's timer wakes it; a sleep whose deadline has
/// passed by the time it is checked returns at once, which single-threaded
/// TCG makes happen, so what is checked is the 3 ms gone by), and the
/// scheduler says so too.
pub fn tasks_run_on_their_core(_: &BootInfo) -> TestResult {
    static SEEN: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(usize::MAX) }; MAX_CPUS];
    static WRONG: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];
    static SLEPT_NS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
    let cores = cores()?;
    let before = sched::WAKE_LATENCY.totals().count;
    let mut ids = Vec::new();
    for &c in &cores {
        SEEN[c].store(usize::MAX, Ordering::Relaxed);
        WRONG[c].store(0, Ordering::Relaxed);
        SLEPT_NS[c].store(0, Ordering::Relaxed);
        let id = sched::spawn_on(c, "where", PRIO_TEST, move || {
            SEEN[c].store(cpu::index(), Ordering::Relaxed);
            let t0 = crate::arch::timer::now_ns();
            for _ in 0..3 {
                sched::sleep_ns(1_000_000);
                if cpu::index() != c {
                    WRONG[c].fetch_add(1, Ordering::Relaxed);
                }
            }
            SLEPT_NS[c].store(crate::arch::timer::now_ns() - t0, Ordering::Relaxed);
        });
        ids.push((c, id));
    }
    for &(c, id) in &ids {
        sched::join(id);
        check!(
            sched::core_of(id) == Some(c),
            "task {id} is on core {:?}, was spawned on {c}",
            sched::core_of(id)
        );
        let seen = SEEN[c].load(Ordering::Relaxed);
        check!(seen == c, "the task for core {c} ran on core {seen}");
        let wrong = WRONG[c].load(Ordering::Relaxed);
        check!(
            wrong == 0,
            "the task for core {c} woke {wrong} time(s) on another core"
        );
        let slept = SLEPT_NS[c].load(Ordering::Relaxed);
        check!(
            slept >= 3_000_000,
            "the task for core {c} was back after {slept} ns; three 1 ms sleeps take 3 ms"
        );
    }
    let woke = sched::WAKE_LATENCY.totals().count - before;
    check!(
        woke >= 1 && woke <= 3 * cores.len() as u64,
        "{woke} wake-ups recorded for {} sleeps",
        3 * cores.len()
    );
    Ok(())
}

/// Rounds of each direction in [`cross_core_joins`].
const JOIN_ROUNDS: usize = 300;

/// Joins across cores: core 0 spawns an empty task on another core and
/// joins it, [`JOIN_ROUNDS`] times (the task ends while the joiner checks
/// or blocks: both wake-up paths race); then a task on another core does
/// the same with tasks on core 0. Every join returns, every task ran
/// exactly once, and the other cores took reschedule SGIs.
pub fn cross_core_joins(_: &BootInfo) -> TestResult {
    static RAN: AtomicU64 = AtomicU64::new(0);
    static BACK_DONE: AtomicBool = AtomicBool::new(false);
    let cores = cores()?;
    let others: Vec<usize> = cores.iter().copied().filter(|&c| c != 0).collect();
    RAN.store(0, Ordering::Relaxed);
    BACK_DONE.store(false, Ordering::Relaxed);
    let kicks_before: Vec<u32> = others.iter().map(|&c| smp::kicks(c)).collect();
    let early_before = sched::early_wakeups();
    for r in 0..JOIN_ROUNDS {
        let c = others[r % others.len()];
        let id = sched::spawn_on(c, "pong", PRIO_TEST, || {
            RAN.fetch_add(1, Ordering::Relaxed);
        });
        sched::join(id);
        check!(
            RAN.load(Ordering::Relaxed) == r as u64 + 1,
            "round {r}: the join on core {c}'s task returned before it ran"
        );
    }
    let back = sched::spawn_on(others[0], "ping", PRIO_TEST, || {
        for _ in 0..JOIN_ROUNDS {
            let id = sched::spawn_on(0, "pong", PRIO_TEST, || {
                RAN.fetch_add(1, Ordering::Relaxed);
            });
            sched::join(id);
        }
        BACK_DONE.store(true, Ordering::Relaxed);
    });
    sched::join(back);
    check!(
        BACK_DONE.load(Ordering::Relaxed),
        "the task on core {} did not finish its joins",
        others[0]
    );
    let ran = RAN.load(Ordering::Relaxed);
    check!(
        ran == 2 * JOIN_ROUNDS as u64,
        "{ran} tasks ran, want {}",
        2 * JOIN_ROUNDS
    );
    for (&c, &b) in others.iter().zip(&kicks_before) {
        let k = smp::kicks(c).wrapping_sub(b);
        check!(
            k > 0,
            "core {c} took no reschedule SGI for the tasks spawned on it"
        );
    }
    log::info!(
        "sched.cross_core_joins: {} joins across cores, {} woken before they blocked",
        2 * JOIN_ROUNDS,
        sched::early_wakeups() - early_before
    );
    Ok(())
}

/// The memory state with tasks on several cores: a task on another core
/// reads the data set's files (up to [`READ_LIMIT`]) in 64 KiB steps (one lock hold each)
/// and checks every byte, while core 0 takes the whole GCMA area (dropping
/// the cleancache copies the reader keeps making) and frees it, and
/// allocates from the CMA area and frees; afterwards no byte was wrong,
/// and the areas, cleancache, page cache and frame table check out.
pub fn memsys_across_cores(_: &BootInfo) -> TestResult {
    static READER_DONE: AtomicBool = AtomicBool::new(false);
    static PROBLEM: IrqLock<Option<String>> = IrqLock::new(None);
    static BYTES: AtomicU64 = AtomicU64::new(0);
    let cores = cores()?;
    let gcma = memsys::first_of(AreaKind::Gcma).ok_or("no GCMA area")?;
    let cma = memsys::first_of(AreaKind::Cma).ok_or("no CMA area")?;
    let (seed, files) = memsys::with(manifest).ok_or("no filesystem mounted")??;
    READER_DONE.store(false, Ordering::Relaxed);
    BYTES.store(0, Ordering::Relaxed);
    *PROBLEM.lock() = None;
    let reader = sched::spawn_on(cores[1], "reader", PRIO_TEST, move || {
        match read_and_check(seed, &files) {
            Ok(bytes) => BYTES.store(bytes, Ordering::Relaxed),
            Err(e) => *PROBLEM.lock() = Some(e),
        }
        READER_DONE.store(true, Ordering::Release);
    });
    let (mut gcma_rounds, mut cma_rounds) = (0u32, 0u32);
    while !READER_DONE.load(Ordering::Acquire) {
        let a = memsys::alloc(Select::Id(gcma.id), gcma.pages, 1)
            .map_err(|e| format!("GCMA whole area, round {gcma_rounds}: {e}"))?;
        memsys::free(a).map_err(|e| format!("GCMA free: {e}"))?;
        gcma_rounds += 1;
        let a = memsys::alloc(Select::Id(cma.id), 760.min(cma.pages), 16)
            .map_err(|e| format!("CMA 760 pages, round {cma_rounds}: {e}"))?;
        memsys::free(a).map_err(|e| format!("CMA free: {e}"))?;
        cma_rounds += 1;
        sched::sleep_ns(2_000_000);
    }
    sched::join(reader);
    if let Some(p) = PROBLEM.lock().take() {
        return Err(format!("reader on core {}: {p}", cores[1]));
    }
    check!(gcma_rounds > 0, "no GCMA allocation ran beside the reader");
    {
        // Lock order: memsys, then the areas.
        let m = memsys::lock();
        let areas = memsys::areas();
        areas
            .check()
            .map_err(|pfn| format!("GCMA bitmap and backend disagree at pfn {pfn:?}"))?;
        areas
            .backend()
            .check_invariants()
            .map_err(|e| format!("cleancache: {e}"))?;
        if let Some(pc) = m.page_cache() {
            pc.check_stats().map_err(|e| format!("page cache: {e}"))?;
        }
    }
    crate::mm::with_frames(|t| t.verify()).map_err(|e| format!("frame table: {e:?}"))?;
    let g = memsys::mem_report().gcma;
    check!(
        g.allocated == 0 && g.allocated + g.cached + g.idle == g.size,
        "GCMA after the test: {} allocated + {} cached + {} idle, size {}",
        g.allocated,
        g.cached,
        g.idle,
        g.size
    );
    log::info!(
        "smp.memsys_across_cores: {} MiB checked on core {} beside {gcma_rounds} whole-GCMA and {cma_rounds} CMA allocations on core 0",
        BYTES.load(Ordering::Relaxed) >> 20,
        cores[1]
    );
    Ok(())
}

/// Most bytes the reader of [`memsys_across_cores`] reads: enough for
/// hundreds of allocations beside it on virt, and minutes, not a quarter
/// of an hour, on QEMU's emulated SD card (raspi4b).
const READ_LIMIT: u64 = 4 << 20;

/// Reads the files in 64 KiB steps, one memory-state lock hold each, up to
/// [`READ_LIMIT`] bytes, and compares every byte with its seeded content;
/// returns the bytes read.
fn read_and_check(seed: u64, files: &[(u64, String)]) -> Result<u64, String> {
    let mut bytes = 0;
    let mut buf = vec![0u8; 64 * 1024];
    for (size, path) in files {
        if bytes >= READ_LIMIT {
            break;
        }
        let id = memsys::with(|pc| pc.open(path))
            .ok_or("no filesystem mounted")?
            .map_err(|e| format!("open {path}: {e}"))?;
        let content = Content::new(seed, path);
        let mut off = 0u64;
        while off < *size {
            let n = (*size - off).min(buf.len() as u64) as usize;
            let got = memsys::with(|pc| pc.read(id, off, &mut buf[..n]))
                .ok_or("no filesystem mounted")?
                .map_err(|e| format!("read {path} at {off}: {e}"))?;
            check!(got > 0, "{path}: read 0 bytes at {off} of {size}");
            if let Some(i) = content.first_mismatch(off, &buf[..got]) {
                return Err(format!("{path}: wrong byte at offset {}", off + i as u64));
            }
            off += got as u64;
        }
        bytes += off;
    }
    Ok(bytes)
}
