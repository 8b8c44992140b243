//! In-kernel self-tests (`mode=selftest`).
//!
//! Each test runs in turn and prints one human line and one machine line:
//!
//! ```text
//!   PASS  mmu.caches_on
//! @test name=mmu.caches_on result=pass
//!   FAIL  heap.alloc: read back 0x12 at 4096, wrote 0x13
//! @test name=heap.alloc result=fail
//! ```
//!
//! `@selftest planned=N` comes first and `@selftest passed=P failed=F` last,
//! so the host harness can tell a kernel that stopped half way (hang, panic,
//! fault) from one that finished. The exit status is 0 only if every test
//! passed.
//!
//! Persistence takes two boots: `persist=write:N` runs every test and then
//! writes a file derived from N, `persist=check:N` mounts the disk and
//! checks that file byte by byte, and runs nothing else (the write boot ran
//! the rest; on raspi4b a second run of every test costs five minutes of
//! the test command under TCG).

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use frames::{FrameState, Pfn};

use crate::arch::{mmu, timer};
use crate::exit::ExitStatus;
use crate::{BootInfo, mm, println, probes};
use bootargs::Inject;

type TestResult = Result<(), String>;

macro_rules! check {
    ($cond:expr, $($msg:tt)*) => {
        if !$cond {
            return Err(format!($($msg)*));
        }
    };
}

mod area_tests;
mod blk_tests;
mod copy_tests;
mod fault_tests;
mod sched_tests;
mod sd_tests;
mod smp_sched_tests;
mod smp_tests;
mod smp_work_tests;
mod storage_tests;

/// A named in-kernel test.
type Test = (&'static str, fn(&BootInfo) -> TestResult);

const BOOT_TESTS: &[Test] = &[
    ("mmu.caches_on", mmu_caches_on),
    ("mmu.attributes", mmu_attributes),
    ("heap.alloc", heap_alloc),
    ("heap.grow", heap_grow),
    ("frames.alloc_free", frames_alloc_free),
    ("frames.accounting", frames_accounting),
    ("timer.monotonic", timer_monotonic),
    ("probe.record", probes::selftest),
    ("dt.reserved_regions", reserved_regions),
    (
        "gcma.whole_area_from_full_cleancache",
        area_tests::gcma_whole_area_from_full_cleancache,
    ),
    (
        "gcma.mixed_sizes_never_fail",
        area_tests::gcma_mixed_sizes_never_fail,
    ),
    ("gcma.explicit_range", area_tests::gcma_explicit_range),
    ("areas.bad_requests", area_tests::areas_bad_requests),
    (
        "areas.carveout_and_cma_idle",
        area_tests::carveout_and_cma_idle,
    ),
    ("areas.accounting_adds_up", area_tests::accounting_adds_up),
    ("sched.sleep", sched_tests::sched_sleep),
    ("sched.preemption", sched_tests::sched_preemption),
    ("sched.round_robin", sched_tests::sched_round_robin),
    ("sched.fp_state_preserved", sched_tests::sched_fp_preserved),
    ("smp.every_core_reported", smp_tests::every_core_reported),
    ("smp.idle_cores_stay_idle", smp_tests::idle_cores_stay_idle),
    (
        "smp.sgi_wakes_each_core",
        smp_work_tests::sgi_wakes_each_core,
    ),
    ("smp.lock_torture", smp_work_tests::lock_torture),
    (
        "sched.tasks_run_on_their_core",
        smp_sched_tests::tasks_run_on_their_core,
    ),
    ("sched.cross_core_joins", smp_sched_tests::cross_core_joins),
    (
        "gcma.waits_for_copy_in_flight",
        copy_tests::alloc_waits_for_copy_in_flight,
    ),
];

/// Tests of the block device, planned on boards whose device tree lists
/// virtio-mmio windows (a disk must then be attached).
const BLOCK_TESTS: &[Test] = &[
    ("blk.present", blk_tests::blk_present),
    ("blk.read_boot_sector", blk_tests::blk_read_boot_sector),
    ("blk.write_read_restore", blk_tests::blk_write_read_restore),
    ("blk.many_in_flight", blk_tests::blk_many_in_flight),
    ("blk.bad_requests", blk_tests::blk_bad_requests),
];

/// Tests of the SD card, planned when the device tree has an EMMC2 node.
const SD_TESTS: &[Test] = &[
    ("sd.card_identified", sd_tests::card_identified),
    ("sd.partitions_found", sd_tests::partitions_found),
    (
        "sd.multi_block_round_trip",
        sd_tests::multi_block_round_trip,
    ),
    ("sd.card_error_handled", sd_tests::card_error_handled),
];

/// Storage, GCMA and CMA over the page cache (need the data disk).
const STORAGE_TESTS: &[Test] = &[
    ("storage.mount", storage_tests::mount),
    ("storage.read_every_byte", storage_tests::read_every_byte),
    (
        "storage.cleancache_saves_reads",
        storage_tests::cleancache_saves_reads,
    ),
    (
        "storage.write_append_truncate_delete",
        storage_tests::write_append_truncate_delete,
    ),
    ("storage.no_stale_copies", storage_tests::no_stale_copies),
    ("storage.bad_input", storage_tests::bad_input),
    (
        "gcma.whole_area_under_file_workload",
        storage_tests::gcma_whole_area_under_file_workload,
    ),
    (
        "cma.migrates_under_pressure",
        storage_tests::cma_migrates_under_pressure,
    ),
    (
        "smp.memsys_across_cores",
        smp_sched_tests::memsys_across_cores,
    ),
    (
        "fault.read_error_on_cleancache_miss",
        fault_tests::read_error_on_cleancache_miss,
    ),
    (
        "fault.failed_readahead_never_reaches_cleancache",
        fault_tests::failed_readahead_never_reaches_cleancache,
    ),
    (
        "fault.write_error_keeps_page_dirty",
        fault_tests::write_error_keeps_page_dirty,
    ),
    (
        "fault.device_stops_answering",
        fault_tests::device_stops_answering,
    ),
];

/// Nonce of the two-boot persistence check (`persist=write:N|check:N`).
static PERSIST: spin::Once<bootargs::Persist> = spin::Once::new();

fn persist(_: &BootInfo) -> TestResult {
    match PERSIST.get() {
        Some(bootargs::Persist::Write(n)) => storage_tests::persist_write(*n),
        Some(bootargs::Persist::Check(n)) => storage_tests::persist_check(*n),
        None => Err("no persist= argument".into()),
    }
}

fn planned(info: &BootInfo, phase: Option<bootargs::Persist>) -> Vec<&'static Test> {
    static PERSIST_TEST: Test = ("storage.persist_across_boots", persist);
    let with_persist = phase.is_some();
    let no_disk = info.virtio_mmio.is_empty() && info.sdhci.is_none();
    if matches!(phase, Some(bootargs::Persist::Check(_))) && !no_disk {
        // The second boot of the persistence check: the mount, then the check.
        return STORAGE_TESTS
            .iter()
            .filter(|(name, _)| *name == "storage.mount")
            .chain([&PERSIST_TEST])
            .collect();
    }
    let mut tests: Vec<&'static Test> = BOOT_TESTS.iter().collect();
    if no_disk {
        println!(
            "selftest: no virtio-mmio and no SD host on this board: block and storage tests not planned"
        );
    } else {
        if info.sdhci.is_some() {
            tests.extend(SD_TESTS);
        }
        tests.extend(BLOCK_TESTS);
        tests.extend(STORAGE_TESTS);
        if with_persist {
            tests.push(&PERSIST_TEST);
        }
    }
    tests
}

/// Runs every test; `inject` adds one that fails, panics or hangs.
pub fn run(
    info: &BootInfo,
    inject: Option<Inject>,
    persist: Option<bootargs::Persist>,
) -> ExitStatus {
    if let Some(p) = persist {
        PERSIST.call_once(|| p);
    }
    let tests = planned(info, persist);
    let planned = tests.len() + inject.is_some() as usize;
    println!("selftest: {planned} tests on {}", info.board);
    println!("@selftest planned={planned}");
    let (mut passed, mut failed) = (0, 0);
    let injected: Option<Test> = inject.map(|kind| -> Test {
        match kind {
            Inject::Fail => ("inject", |_| Err("failure injected by inject=fail".into())),
            Inject::Panic => ("inject", |_| panic!("panic injected by inject=panic")),
            Inject::Hang => ("inject", |_| {
                loop {
                    core::hint::spin_loop()
                }
            }),
        }
    });
    for &(name, run) in tests.into_iter().chain(injected.iter()) {
        match run(info) {
            Ok(()) => {
                passed += 1;
                println!("  PASS  {name}");
                println!("@test name={name} result=pass");
            }
            Err(msg) => {
                failed += 1;
                println!("  FAIL  {name}: {msg}");
                println!("@test name={name} result=fail");
            }
        }
    }
    println!("selftest: {passed} passed, {failed} failed");
    println!("@selftest passed={passed} failed={failed}");
    if failed == 0 {
        ExitStatus::Success
    } else {
        ExitStatus::TestsFailed
    }
}

fn mmu_caches_on(_: &BootInfo) -> TestResult {
    check!(
        mmu::mmu_and_caches_on(),
        "SCTLR_EL1: M, C and I are not all set"
    );
    Ok(())
}

fn mmu_attributes(info: &BootInfo) -> TestResult {
    // Kernel code, stack, DTB and a free heap object: normal write-back.
    let local = 0u64;
    let heap = Box::new(0u64);
    let probes = [
        ("kernel image", info.kernel.start),
        ("stack", &raw const local as u64),
        ("heap", &*heap as *const u64 as u64),
        ("device tree", info.dtb.start),
    ];
    for (what, va) in probes {
        match mmu::translate(va) {
            Some((pa, attr)) => {
                check!(pa == va, "{what} {va:#x} maps to {pa:#x}, not identity");
                check!(
                    attr == mmu::MAIR_NORMAL_WB,
                    "{what} {va:#x} has attributes {attr:#x}, not normal WB"
                );
            }
            None => return Err(format!("{what} {va:#x} is not mapped")),
        }
    }
    // The console UART: device memory.
    let uart = info.uart_base as u64;
    match mmu::translate(uart) {
        Some((_, attr)) => check!(
            attr == mmu::MAIR_DEVICE_NGNRE,
            "UART {uart:#x} has attributes {attr:#x}, not device"
        ),
        None => return Err(format!("UART {uart:#x} is not mapped")),
    }
    // Every RAM range is normal memory at both ends; no-map regions unmapped.
    for r in info.ram {
        for va in [r.base, r.end() - 8] {
            let byte = physmap::PhysRange::new(va, 1);
            let inside_nomap = info
                .regions
                .iter()
                .any(|g| g.no_map && g.range.contains(&byte));
            match (mmu::translate(va), inside_nomap) {
                (None, true) => {}
                (Some(_), true) => return Err(format!("no-map address {va:#x} is mapped")),
                (Some((_, attr)), false) => check!(
                    attr == mmu::MAIR_NORMAL_WB,
                    "RAM {va:#x}: attributes {attr:#x}"
                ),
                (None, false) => return Err(format!("RAM {va:#x} is not mapped")),
            }
        }
    }
    Ok(())
}

fn heap_alloc(_: &BootInfo) -> TestResult {
    let mut v: Vec<u8> = Vec::new();
    for i in 0..100_000u32 {
        v.push((i * 7 + 3) as u8);
    }
    for (i, b) in v.iter().enumerate() {
        check!(*b == (i as u32 * 7 + 3) as u8, "vec byte {i}: read {b:#x}");
    }
    let mut m = BTreeMap::new();
    for i in 0..2000u64 {
        m.insert(i.wrapping_mul(0x9e37_79b9_7f4a_7c15), i);
    }
    for (k, v) in &m {
        check!(
            k == &v.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            "btreemap entry {v} corrupted"
        );
    }
    let boxes: Vec<Box<[u64; 64]>> = (0..256).map(|i| Box::new([i; 64])).collect();
    for (i, b) in boxes.iter().enumerate() {
        check!(b.iter().all(|x| *x == i as u64), "box {i} corrupted");
    }
    Ok(())
}

fn heap_grow(_: &BootInfo) -> TestResult {
    // Larger than the initial heap's free space: the heap must grow from
    // the frame allocator, and the memory must be real.
    let (_, before) = mm::heap_stats();
    let n = 3 << 20; // 3 MiB, several times over
    let mut blocks = Vec::new();
    for round in 0..8u8 {
        let mut b = Vec::<u8>::with_capacity(n);
        b.resize(n, round ^ 0x5a);
        blocks.push(b);
    }
    for (round, b) in blocks.iter().enumerate() {
        let want = round as u8 ^ 0x5a;
        check!(b.iter().all(|x| *x == want), "block {round} corrupted");
    }
    let (_, after) = mm::heap_stats();
    check!(
        after > before,
        "heap did not grow: {before} -> {after} bytes"
    );
    Ok(())
}

fn frames_alloc_free(_: &BootInfo) -> TestResult {
    // Allocate blocks of several orders, fill each with its own pattern,
    // check nothing overlaps or bleeds, free them all.
    let mut got: Vec<(Pfn, u8)> = Vec::new();
    for order in [0u8, 1, 3, 5, 8, 10, 0, 2, 4] {
        let pfn = mm::with_frames(|t| t.alloc(order, FrameState::Kernel))
            .map_err(|e| format!("alloc order {order}: {e:?}"))?;
        let align = 1u64 << order;
        check!(
            pfn.0 % align == 0,
            "order {order} block at pfn {:#x} not aligned",
            pfn.0
        );
        got.push((pfn, order));
    }
    for (i, (pfn, order)) in got.iter().enumerate() {
        let len = (frames::PAGE_SIZE << order) as usize;
        // SAFETY: the block was allocated above for this test (state Kernel)
        // and is identity-mapped RAM owned by nobody else until freed.
        let mem = unsafe { core::slice::from_raw_parts_mut(pfn.addr() as *mut u8, len) };
        mem.fill(i as u8 + 1);
    }
    for (i, (pfn, order)) in got.iter().enumerate() {
        let len = (frames::PAGE_SIZE << order) as usize;
        // SAFETY: as above; still allocated.
        let mem = unsafe { core::slice::from_raw_parts(pfn.addr() as *const u8, len) };
        check!(
            mem.iter().all(|b| *b == i as u8 + 1),
            "block {i} (pfn {:#x}) overwritten",
            pfn.0
        );
    }
    for (pfn, order) in &got {
        mm::with_frames(|t| t.free(*pfn, *order))
            .map_err(|e| format!("free pfn {:#x}: {e:?}", pfn.0))?;
    }
    // A double free is refused and changes nothing.
    let (pfn, order) = got[0];
    let free_before = mm::with_frames(|t| t.free_frames());
    check!(
        mm::with_frames(|t| t.free(pfn, order)).is_err(),
        "double free accepted"
    );
    check!(
        mm::with_frames(|t| t.free_frames()) == free_before,
        "double free changed the free count"
    );
    Ok(())
}

fn frames_accounting(info: &BootInfo) -> TestResult {
    mm::with_frames(|t| t.verify()).map_err(|e| format!("frame table inconsistent: {e:?}"))?;
    let stats = mm::with_frames(|t| t.stats());
    check!(
        stats.free <= stats.managed,
        "free {} > managed {}",
        stats.free,
        stats.managed
    );
    // Reserved areas are never managed by the buddy.
    for (i, r) in info.regions.iter().enumerate() {
        let want = if r.no_map {
            FrameState::Reserved
        } else {
            FrameState::ReservedArea
        };
        for addr in [r.range.base, r.range.end() - 1] {
            let pfn = Pfn::from_addr(addr);
            let st = mm::with_frames(|t| t.state(pfn));
            check!(
                st == Some(want),
                "region {} frame {:#x}: state {st:?}, want {want:?}",
                r.name,
                pfn.0
            );
            let owner = mm::with_frames(|t| t.frame(pfn).map(|d| d.owner()));
            check!(
                owner == Some(1 + i as u16),
                "region {} frame {:#x}: owner {owner:?}",
                r.name,
                pfn.0
            );
        }
    }
    let kstate = mm::with_frames(|t| t.state(Pfn::from_addr(info.kernel.start)));
    check!(
        kstate == Some(FrameState::Kernel),
        "kernel image frame state {kstate:?}"
    );
    Ok(())
}

fn timer_monotonic(_: &BootInfo) -> TestResult {
    let f = timer::frequency();
    check!(f >= 1_000_000, "CNTFRQ_EL0 = {f} Hz, implausible");
    let mut last = timer::ticks();
    for i in 0..100_000 {
        let now = timer::ticks();
        check!(
            now >= last,
            "counter went back at read {i}: {last} -> {now}"
        );
        last = now;
    }
    let t0 = timer::now_ns();
    timer::spin_ns(2_000_000);
    let dt = timer::now_ns() - t0;
    check!(dt >= 2_000_000, "spin_ns(2 ms) returned after {dt} ns");
    Ok(())
}

fn reserved_regions(info: &BootInfo) -> TestResult {
    use physmap::RegionKind;
    // tools/dtb/make-dtbs.sh: gcma@ and the tag-storage donor tags@ (both
    // GCMA), one CMA, one carveout.
    for (kind, want) in [
        (RegionKind::Gcma, 2),
        (RegionKind::Cma, 1),
        (RegionKind::Carveout, 1),
    ] {
        let n = info.regions.iter().filter(|r| r.kind == kind).count();
        check!(n == want, "{n} {} regions, want {want}", kind.as_str());
    }
    for r in info.regions {
        let (start, end) = (r.range.base, r.range.end());
        check!(
            start % frames::PAGE_SIZE == 0 && end % frames::PAGE_SIZE == 0,
            "{} not page-aligned",
            r.name
        );
        check!(
            info.ram.iter().any(|m| m.base <= start && end <= m.end()),
            "{} outside RAM",
            r.name
        );
        check!(
            end <= info.kernel.start || start >= info.kernel.end,
            "{} overlaps the kernel",
            r.name
        );
        check!(
            end <= info.dtb.start || start >= info.dtb.end,
            "{} overlaps the DTB",
            r.name
        );
    }
    Ok(())
}
