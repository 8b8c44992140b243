//! The GCMA unikernel.
//!
//! A small arm64 kernel whose reason to exist is GCMA, the Guaranteed
//! Contiguous Memory Allocator. This crate holds everything shared by the
//! boards: boot (`arch`), the console, the device tree's memory map, page
//! frames and the heap (`mm`), timing probes, the self-tests, the demo and
//! the soak, and the workloads they share (`workload`).
//! The allocator, cleancache and page-cache logic live in the `no_std`
//! crates under `kernel/crates/`, tested on the host.
//!
//! Boot is an ordered list of init calls (`kernel_entry`), each handed
//! what it needs by value: MMU with a boot map, early console, the device
//! tree ([`devtree::read`]: memory map, devices, boot arguments), log and
//! exit settings, the console the tree names, the memory-map report, final
//! map, frame table and heap, probes, watchdog, interrupts and scheduling,
//! storage, reserved areas; then the mode the boot arguments ask for (demo,
//! self-test, soak, fault).
//!
//! Rules: the steps run once, in this order, on core 0; a step that cannot
//! go on prints one `boot: ...` line and exits with `BootFailed`. Before
//! the heap (the frame-table step) nothing allocates. The boot arguments
//! are parsed once, here, and the parsed value is handed on.

#![no_std]

extern crate alloc;

#[path = "arch/aarch64/mod.rs"]
pub mod arch;
pub mod board;
pub mod console;
pub mod demo;
pub mod devtree;
pub mod drivers;
pub mod exit;
pub mod irq;
pub mod memsys;
pub mod mm;
pub mod probes;
pub mod sched;
pub mod selftest;
pub mod soak;
pub mod storage;
pub mod sync;
pub mod workload;

use core::ops::Range;

use arch::mmu;
use bootargs::{BootArgs, Mode};
use exit::{ExitStatus, exit};
use physmap::{ArrayVec, MemoryMap, PhysRange, ReservedRegion};

/// Facts gathered at boot, for the report and the self-tests.
pub struct BootInfo {
    pub board: &'static str,
    pub dtb: Range<u64>,
    pub kernel: Range<u64>,
    pub uart_base: usize,
    /// RAM from the device tree's memory map, sorted and merged.
    pub ram: &'static [PhysRange],
    /// The reserved regions of the memory map, in its order (the frame
    /// table's owner of region `i` is `1 + i`).
    pub regions: &'static [ReservedRegion<'static>],
    pub mmu_tables: usize,
    /// virtio-mmio windows the device tree lists (QEMU virt: 32).
    pub virtio_mmio: ArrayVec<u64, { devtree::MAX_VIRTIO_MMIO }>,
    /// The interrupt controller and timer interrupt, if found.
    pub gic: Option<physmap::Gicv2>,
    /// The SD host controller (Raspberry Pi 4 EMMC2), if the tree has one.
    pub sdhci: Option<drivers::sdhci::SdhciInfo>,
}

/// Priority of the boot context ("main") once tasks run.
pub const PRIO_MAIN: u8 = 10;

fn kernel_image() -> Range<u64> {
    unsafe extern "C" {
        static __kernel_start: u8;
        static __kernel_end: u8;
    }
    // Linker-script symbols: only their addresses are taken, never their values.
    (&raw const __kernel_start as u64)..(&raw const __kernel_end as u64)
}

/// Called by boot.rs on core 0 at EL1, MMU off, with the DTB address and
/// the exception level the loader entered the kernel at.
#[unsafe(no_mangle)]
extern "C" fn kernel_entry(dtb_addr: usize, entry_el: u64) -> ! {
    arch::cpu::set_index(0);
    arch::set_boot_el(entry_el);
    let board = board::board();
    let kernel = kernel_image();
    boot_map(kernel.clone(), dtb_addr as u64);
    early_console(board);
    let dt = devtree::read(dtb_addr as u64, kernel.clone());
    let args = BootArgs::parse(dt.bootargs, |e| println!("{e}"));
    exit::configure(args.semihosting, args.reboot, dt.psci);
    refuse_high_peripherals(dt.high_device);
    console::init_logger(args.loglevel);
    check_board(board, args.board);
    console_from_tree(board, dt.console);
    report_map(dt.map, &dt.dtb, &kernel);
    final_map(dt.map);
    memory(dt.map, kernel.clone(), dt.dtb.clone());
    probes::init();
    drivers::pm_wdt::init(dt.pm_wdt);
    interrupts(dt.gic);
    arch::smp::start_secondaries(&dt.cpus, dt.psci, dt.gic.as_ref().ok(), args.smp);
    arch::smp::join_scheduler();
    storage::init(dt.sdhci, &dt.virtio_mmio);
    memsys::init(&dt.map.reserved);
    let info = BootInfo {
        board: board.name(),
        dtb: dt.dtb,
        kernel,
        uart_base: console::uart_base().unwrap_or(0),
        ram: &dt.map.ram,
        regions: &dt.map.reserved,
        mmu_tables: mmu::tables_used(),
        virtio_mmio: dt.virtio_mmio,
        gic: dt.gic.ok(),
        sdhci: dt.sdhci,
    };
    run(&info, &args)
}

/// The MMU on with the boot map (kernel image, DTB slot, low devices); no
/// console yet, so a failure can only stop the core.
fn boot_map(kernel: Range<u64>, dtb_addr: u64) {
    if mmu::enable_boot_map(kernel, dtb_addr).is_err() {
        arch::cpu::wait_forever();
    }
}

/// The board's early UART and the banner.
fn early_console(board: &'static dyn board::Board) {
    board.setup_uart_pins();
    // SAFETY: the board's early UART lies below 4 GiB outside the kernel and
    // DTB slots, so the boot map maps it as device memory.
    unsafe { console::init(board.early_uart_base(), board.uart_clock_hz()) };
    println!();
    println!(
        "GCMA unikernel {} on {} (entered at EL{}, running at EL{})",
        env!("CARGO_PKG_VERSION"),
        board.name(),
        arch::boot_el(),
        arch::current_el()
    );
}

/// A UART or GIC above 4 GiB (Pi 4 high-peripheral mode): refused, with
/// one line naming the node and the config.txt fix.
fn refuse_high_peripherals(high: Option<physmap::HighDevice<'static>>) {
    if let Some(high) = high {
        println!("{high}");
        exit(ExitStatus::BootFailed);
    }
}

/// `board=NAME` against the board this kernel was built for.
fn check_board(board: &'static dyn board::Board, asked: Option<&str>) {
    if let Some(b) = asked
        && b != board.name()
    {
        log::warn!(
            "bootargs: board={b} but this kernel was built for {}",
            board.name()
        );
    }
}

/// The console moves to the PL011 the device tree names, if that is not
/// the early one.
fn console_from_tree(board: &'static dyn board::Board, uart: Option<PhysRange>) {
    if let Some(u) = uart
        && Some(u.base as usize) != console::uart_base()
        && u.base < (4 << 30)
    {
        log::info!(
            "console: moving to the device tree's PL011 at {:#x}",
            u.base
        );
        // SAFETY: a PL011 the device tree reports, below 4 GiB and not in
        // RAM, so both maps give it device memory.
        unsafe { console::init(u.base as usize, board.uart_clock_hz()) };
    }
}

/// Where the tree and the kernel lie, the memory-map table and its
/// machine lines (bad reserved-memory nodes: one line each).
fn report_map(map: &MemoryMap, dtb: &Range<u64>, kernel: &Range<u64>) {
    log::info!(
        "device tree at {:#x} ({} bytes), kernel image {:#x}..{:#x}",
        dtb.start,
        dtb.end - dtb.start,
        kernel.start,
        kernel.end
    );
    println!("{}", physmap::Table(map));
    print!("{}", physmap::MachineLines(map));
}

/// The final map: RAM from the device tree, every no-map range (regions,
/// firmware's and refused ones alike) left out.
fn final_map(map: &MemoryMap) {
    let (ram, n_ram) = ranges::<{ physmap::MAX_RAM_RANGES }>(map.ram.iter().copied());
    let (nomap, n_nomap) = ranges::<{ physmap::MAX_NO_MAP_RANGES }>(map.no_map_ranges());
    let spec = mmu::MapSpec {
        ram: &ram[..n_ram],
        unmapped: &nomap[..n_nomap],
        device_limit: 4 << 30,
    };
    match mmu::build(&spec) {
        Ok(space) => mmu::switch_to(&space),
        Err(e) => {
            println!("boot: cannot build the final page tables: {e:?}");
            exit(ExitStatus::BootFailed);
        }
    }
    log::info!(
        "mmu: identity map from the device tree, {} translation tables",
        mmu::tables_used()
    );
}

/// The frame table and the heap over usable RAM.
fn memory(map: &MemoryMap, kernel: Range<u64>, dtb: Range<u64>) {
    if let Err(e) = mm::init(map, kernel, dtb) {
        println!("boot: memory: {e}");
        exit(ExitStatus::BootFailed);
    }
    let stats = mm::with_frames(|t| t.stats());
    log::info!(
        "frames: {} managed, {} free ({} MiB); heap {} MiB",
        stats.managed,
        stats.free,
        stats.free * frames::PAGE_SIZE / (1 << 20),
        mm::heap_stats().1 >> 20
    );
}

/// The GIC, the timer interrupt routed to the scheduler, and scheduling
/// with the boot context as task 0; without a GICv2, neither.
fn interrupts(gic: Result<physmap::Gicv2, physmap::NoGic>) {
    match gic {
        Ok(g) => {
            // SAFETY: distributor and CPU interface from the device tree,
            // below 4 GiB and outside RAM: device memory in the final map.
            unsafe { irq::init(&g, sched::preempt_if_needed) };
            irq::register(g.timer_intid, sched::on_timer_interrupt);
            sched::init(PRIO_MAIN);
        }
        Err(why) => {
            if why.is_problem() {
                log::error!("{why}");
            }
            log::warn!("no GICv2 in the device tree: no interrupts, no task scheduling");
        }
    }
}

/// The mode the boot arguments ask for; its status ends the kernel.
fn run(info: &BootInfo, args: &BootArgs) -> ! {
    let status = match args.mode {
        Mode::Demo => demo::run(info, args.scale, args.seed),
        Mode::SelfTest => selftest::run(info, args.inject, args.persist),
        Mode::Soak => soak::run(info, args.minutes.unwrap_or(10), args.seed),
        Mode::Fault => {
            println!("fault: executing an undefined instruction on purpose");
            arch::cpu::execute_undefined_instruction();
            println!("fault: the undefined instruction did not trap");
            ExitStatus::TestsFailed
        }
    };
    exit(status)
}

/// Up to N ranges in a fixed array (used before the heap exists), N being
/// the capacity of the physmap list they come from; more is a boot failure,
/// never a silent drop.
fn ranges<const N: usize>(it: impl Iterator<Item = PhysRange>) -> ([Range<u64>; N], usize) {
    let mut out: [Range<u64>; N] = core::array::from_fn(|_| 0..0);
    let mut n = 0;
    for r in it {
        let Some(slot) = out.get_mut(n) else {
            println!("boot: more than {N} ranges for the MMU map");
            exit(ExitStatus::BootFailed);
        };
        *slot = r.base..r.end();
        n += 1;
    }
    (out, n)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    console::fatal_print(format_args!("\n*** PANIC: {info}\n"));
    exit(ExitStatus::Panic)
}
