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

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use frames::{FrameState, Pfn};
use probe::AnyProbe;

use crate::arch::{mmu, timer};
use crate::bootargs::Inject;
use crate::drivers::virtio_blk::VirtioBlk;
use crate::exit::ExitStatus;
use crate::{BootInfo, mm, println, probes, sched, storage};
use blkdev::{BlockDevice, BlockError, Op, Request, SECTOR_SIZE};

type TestResult = Result<(), String>;

macro_rules! check {
    ($cond:expr, $($msg:tt)*) => {
        if !$cond {
            return Err(format!($($msg)*));
        }
    };
}

struct Test {
    name: &'static str,
    run: fn(&BootInfo) -> TestResult,
}

const BOOT_TESTS: &[Test] = &[
    Test {
        name: "mmu.caches_on",
        run: mmu_caches_on,
    },
    Test {
        name: "mmu.attributes",
        run: mmu_attributes,
    },
    Test {
        name: "heap.alloc",
        run: heap_alloc,
    },
    Test {
        name: "heap.grow",
        run: heap_grow,
    },
    Test {
        name: "frames.alloc_free",
        run: frames_alloc_free,
    },
    Test {
        name: "frames.accounting",
        run: frames_accounting,
    },
    Test {
        name: "timer.monotonic",
        run: timer_monotonic,
    },
    Test {
        name: "probe.record",
        run: probes::selftest,
    },
    Test {
        name: "dt.reserved_regions",
        run: reserved_regions,
    },
    Test {
        name: "sched.sleep",
        run: sched_sleep,
    },
    Test {
        name: "sched.preemption",
        run: sched_preemption,
    },
    Test {
        name: "sched.round_robin",
        run: sched_round_robin,
    },
    Test {
        name: "sched.fp_state_preserved",
        run: sched_fp_preserved,
    },
];

/// Tests of the block device, planned on boards whose device tree lists
/// virtio-mmio windows (a disk must then be attached).
const BLOCK_TESTS: &[Test] = &[
    Test {
        name: "blk.present",
        run: blk_present,
    },
    Test {
        name: "blk.read_boot_sector",
        run: blk_read_boot_sector,
    },
    Test {
        name: "blk.write_read_restore",
        run: blk_write_read_restore,
    },
    Test {
        name: "blk.many_in_flight",
        run: blk_many_in_flight,
    },
    Test {
        name: "blk.bad_requests",
        run: blk_bad_requests,
    },
];

fn planned(info: &BootInfo) -> Vec<&'static Test> {
    let mut tests: Vec<&'static Test> = BOOT_TESTS.iter().collect();
    if info.virtio_mmio.is_empty() {
        println!("selftest: no virtio-mmio on this board: block tests not planned");
    } else {
        tests.extend(BLOCK_TESTS);
    }
    tests
}

/// Runs every test; `inject` adds one that fails, panics or hangs.
pub fn run(info: &BootInfo, inject: Option<Inject>) -> ExitStatus {
    let tests = planned(info);
    let planned = tests.len() + inject.is_some() as usize;
    println!("selftest: {planned} tests on {}", info.board);
    println!("@selftest planned={planned}");
    let (mut passed, mut failed) = (0, 0);
    let injected = inject.map(|kind| Test {
        name: "inject",
        run: match kind {
            Inject::Fail => |_| Err("failure injected by inject=fail".into()),
            Inject::Panic => |_| panic!("panic injected by inject=panic"),
            Inject::Hang => |_| loop {
                core::hint::spin_loop()
            },
        },
    });
    for test in tests.into_iter().chain(injected.iter()) {
        match (test.run)(info) {
            Ok(()) => {
                passed += 1;
                println!("  PASS  {}", test.name);
                println!("@test name={} result=pass", test.name);
            }
            Err(msg) => {
                failed += 1;
                println!("  FAIL  {}: {}", test.name, msg);
                println!("@test name={} result=fail", test.name);
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
    for r in &info.ram {
        for va in [r.start, r.end - 8] {
            let inside_nomap = info
                .regions
                .iter()
                .any(|g| g.no_map && g.range.contains(&va));
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
        for addr in [r.range.start, r.range.end - 1] {
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
    for kind in [RegionKind::Gcma, RegionKind::Cma, RegionKind::Carveout] {
        let n = info.regions.iter().filter(|r| r.kind == kind).count();
        check!(n == 1, "{n} {} regions, want 1", kind.as_str());
    }
    for r in &info.regions {
        check!(
            r.range.start % frames::PAGE_SIZE == 0 && r.range.end % frames::PAGE_SIZE == 0,
            "{} not page-aligned",
            r.name
        );
        check!(
            info.ram
                .iter()
                .any(|m| m.start <= r.range.start && r.range.end <= m.end),
            "{} outside RAM",
            r.name
        );
        check!(
            r.range.end <= info.kernel.start || r.range.start >= info.kernel.end,
            "{} overlaps the kernel",
            r.name
        );
        check!(
            r.range.end <= info.dtb.start || r.range.start >= info.dtb.end,
            "{} overlaps the DTB",
            r.name
        );
    }
    Ok(())
}

fn with_block<R>(f: impl FnOnce(&mut VirtioBlk) -> Result<R, String>) -> Result<R, String> {
    let mut guard = storage::BLOCK.lock();
    let dev = guard
        .as_mut()
        .ok_or("no virtio block device (qemu-run.sh --disk FILE attaches one)")?;
    f(dev)
}

fn blk_present(_: &BootInfo) -> TestResult {
    with_block(|d| {
        check!(d.sector_count() > 0, "capacity 0");
        check!(d.queue_depth() >= 8, "queue depth {} < 8", d.queue_depth());
        Ok(())
    })
}

fn blk_read_boot_sector(_: &BootInfo) -> TestResult {
    with_block(|d| {
        let mut buf = alloc::vec![0u8; SECTOR_SIZE];
        d.read_sectors(0, &mut buf)
            .map_err(|e| format!("read sector 0: {e}"))?;
        check!(
            buf[510] == 0x55 && buf[511] == 0xaa,
            "sector 0 has no boot signature: {:#x} {:#x}",
            buf[510],
            buf[511]
        );
        let before = d.stats().sectors_read;
        let mut big = alloc::vec![0u8; 64 * SECTOR_SIZE];
        d.read_sectors(0, &mut big)
            .map_err(|e| format!("read 64 sectors: {e}"))?;
        check!(
            big[..SECTOR_SIZE] == buf[..],
            "sector 0 differs between a 1- and a 64-sector read"
        );
        check!(
            d.stats().sectors_read == before + 64,
            "sectors_read moved by {}, want 64",
            d.stats().sectors_read - before
        );
        Ok(())
    })
}

fn blk_write_read_restore(_: &BootInfo) -> TestResult {
    with_block(|d| {
        if d.read_only() {
            return Err("disk is read-only".into());
        }
        // The last 8 sectors: read, overwrite with a pattern, read back,
        // restore, read back again. The disk ends as it started.
        let n = 8;
        let first = d.sector_count() - n as u64;
        let mut orig = alloc::vec![0u8; n * SECTOR_SIZE];
        d.read_sectors(first, &mut orig)
            .map_err(|e| format!("read: {e}"))?;
        let pattern: Vec<u8> = (0..n * SECTOR_SIZE)
            .map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[1] ^ 0xa5)
            .collect();
        d.write_sectors(first, &pattern)
            .map_err(|e| format!("write: {e}"))?;
        d.flush().map_err(|e| format!("flush: {e}"))?;
        let mut back = alloc::vec![0u8; n * SECTOR_SIZE];
        d.read_sectors(first, &mut back)
            .map_err(|e| format!("read back: {e}"))?;
        let bad = back.iter().zip(&pattern).position(|(a, b)| a != b);
        d.write_sectors(first, &orig)
            .map_err(|e| format!("restore: {e}"))?;
        check!(
            bad.is_none(),
            "read back differs from written at byte {:?}",
            bad
        );
        d.read_sectors(first, &mut back)
            .map_err(|e| format!("read restored: {e}"))?;
        check!(back == orig, "restored sectors differ from the original");
        Ok(())
    })
}

fn blk_many_in_flight(_: &BootInfo) -> TestResult {
    with_block(|d| {
        // queue_depth reads of 4 KiB each, all submitted before any is reaped;
        // each must equal a synchronous read of the same sectors.
        let depth = d.queue_depth().min(16);
        let page = 8 * SECTOR_SIZE;
        let mut bufs: Vec<Vec<u8>> = (0..depth).map(|_| alloc::vec![0u8; page]).collect();
        for (i, b) in bufs.iter_mut().enumerate() {
            let req = Request {
                tag: i as u64,
                op: Op::Read,
                sector: (i * 8) as u64,
                buf: b.as_mut_ptr(),
                len: page,
            };
            // SAFETY: each buffer lives in `bufs` until every completion has
            // been reaped below, and nothing else touches it meanwhile.
            unsafe { d.submit(req) }.map_err(|e| format!("submit {i}: {e}"))?;
        }
        check!(
            d.in_flight() == depth,
            "{} in flight, want {depth}",
            d.in_flight()
        );
        let mut seen = alloc::vec![false; depth];
        while let Some(c) = d.wait() {
            c.result.map_err(|e| format!("request {}: {e}", c.tag))?;
            check!(!seen[c.tag as usize], "request {} completed twice", c.tag);
            seen[c.tag as usize] = true;
        }
        check!(seen.iter().all(|s| *s), "not every request completed");
        for (i, b) in bufs.iter().enumerate() {
            let mut one = alloc::vec![0u8; page];
            d.read_sectors((i * 8) as u64, &mut one)
                .map_err(|e| format!("sync read {i}: {e}"))?;
            check!(
                &one == b,
                "in-flight read {i} differs from a synchronous read"
            );
        }
        Ok(())
    })
}

fn blk_bad_requests(_: &BootInfo) -> TestResult {
    with_block(|d| {
        let cap = d.sector_count();
        let mut buf = alloc::vec![0u8; SECTOR_SIZE];
        let before = d.stats();
        check!(
            matches!(
                d.read_sectors(cap, &mut buf),
                Err(BlockError::OutOfRange { .. })
            ),
            "a read past the end was not refused"
        );
        check!(
            matches!(
                d.write_sectors(cap - 1, &alloc::vec![0u8; 2 * SECTOR_SIZE]),
                Err(BlockError::OutOfRange { .. })
            ),
            "a write crossing the end was not refused"
        );
        check!(
            matches!(
                d.read_sectors(0, &mut buf[..100]),
                Err(BlockError::BadBuffer { .. })
            ),
            "a partial-sector buffer was not refused"
        );
        check!(d.stats() == before, "refused requests reached the device");
        Ok(())
    })
}

fn sched_sleep(_: &BootInfo) -> TestResult {
    check!(sched::started(), "scheduler not running");
    let before = sched::WAKE_LATENCY.totals().count;
    for ms in [1u64, 3, 5] {
        let t0 = timer::now_ns();
        sched::sleep_ns(ms * 1_000_000);
        let dt = timer::now_ns() - t0;
        check!(
            dt >= ms * 1_000_000,
            "sleep of {ms} ms returned after {dt} ns"
        );
    }
    let after = sched::WAKE_LATENCY.totals().count;
    check!(
        after == before + 3,
        "wake-up latency probe recorded {} wake-ups, want 3",
        after - before
    );
    Ok(())
}

fn sched_preemption(_: &BootInfo) -> TestResult {
    use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    static PROGRESS: AtomicU64 = AtomicU64::new(0);
    static STOP: AtomicBool = AtomicBool::new(false);
    static SEEN: crate::sync::IrqLock<Vec<u64>> = crate::sync::IrqLock::new(Vec::new());
    PROGRESS.store(0, Ordering::Relaxed);
    STOP.store(false, Ordering::Relaxed);
    SEEN.lock().clear();
    // A low-priority task that never yields, and a high-priority one that
    // wakes 20 times: it can only run if the timer interrupt preempts.
    let busy = sched::spawn("busy", 5, || {
        while !STOP.load(Ordering::Relaxed) {
            PROGRESS.fetch_add(1, Ordering::Relaxed);
        }
    });
    let high = sched::spawn("periodic", 20, || {
        for _ in 0..20 {
            sched::sleep_ns(1_000_000);
            let p = PROGRESS.load(Ordering::Relaxed);
            SEEN.lock().push(p);
        }
        STOP.store(true, Ordering::Relaxed);
    });
    sched::join(high);
    sched::join(busy);
    let seen = SEEN.lock().clone();
    check!(
        seen.len() == 20,
        "periodic task woke {} times, want 20",
        seen.len()
    );
    // The busy task never yields, so every wake-up after the first sleep
    // was a preemption. Under TCG the host may stall the guest for a whole
    // period, so progress between two particular wake-ups is not
    // guaranteed; progress over the run is.
    check!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "progress counter went backwards: {seen:?}"
    );
    check!(
        seen[19] > seen[0],
        "busy task made no progress while being preempted: {seen:?}"
    );
    Ok(())
}

fn sched_round_robin(_: &BootInfo) -> TestResult {
    use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    static A: AtomicU64 = AtomicU64::new(0);
    static B: AtomicU64 = AtomicU64::new(0);
    static STOP: AtomicBool = AtomicBool::new(false);
    A.store(0, Ordering::Relaxed);
    B.store(0, Ordering::Relaxed);
    STOP.store(false, Ordering::Relaxed);
    let a = sched::spawn("spin-a", 5, || {
        while !STOP.load(Ordering::Relaxed) {
            A.fetch_add(1, Ordering::Relaxed);
        }
    });
    let b = sched::spawn("spin-b", 5, || {
        while !STOP.load(Ordering::Relaxed) {
            B.fetch_add(1, Ordering::Relaxed);
        }
    });
    // Main sleeps (above both) across several slices, then stops them.
    sched::sleep_ns(10 * sched::SLICE_NS);
    STOP.store(true, Ordering::Relaxed);
    sched::join(a);
    sched::join(b);
    let (a, b) = (A.load(Ordering::Relaxed), B.load(Ordering::Relaxed));
    check!(
        a > 0 && b > 0,
        "equal-priority tasks did not share the CPU: {a} and {b} iterations"
    );
    Ok(())
}

fn sched_fp_preserved(_: &BootInfo) -> TestResult {
    use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    static RESULT: AtomicU64 = AtomicU64::new(0);
    static STOP: AtomicBool = AtomicBool::new(false);
    fn series(n: u32) -> f64 {
        let mut acc = 0.0f64;
        for k in 1..=n {
            let x = k as f64;
            acc += core::hint::black_box(1.0 / (x * x));
        }
        acc
    }
    let expected = series(400_000).to_bits();
    STOP.store(false, Ordering::Relaxed);
    // The computing task is preempted many times by a task that also uses
    // FP/SIMD registers; its result must be bit-identical.
    let noise = sched::spawn("fp-noise", 20, || {
        let mut v = [1.5f64; 8];
        while !STOP.load(Ordering::Relaxed) {
            for x in v.iter_mut() {
                *x = core::hint::black_box(*x * 1.000_001 + 0.25);
            }
            sched::sleep_ns(200_000);
        }
    });
    let calc = sched::spawn("fp-calc", 5, || {
        RESULT.store(series(400_000).to_bits(), Ordering::Relaxed);
    });
    sched::join(calc);
    STOP.store(true, Ordering::Relaxed);
    sched::join(noise);
    let got = RESULT.load(Ordering::Relaxed);
    check!(
        got == expected,
        "FP result changed under preemption: {:e} vs {:e}",
        f64::from_bits(got),
        f64::from_bits(expected)
    );
    Ok(())
}
