//! The GCMA unikernel.
//!
//! A small arm64 kernel whose reason to exist is GCMA, the Guaranteed
//! Contiguous Memory Allocator. This crate holds everything shared by the
//! boards: boot (`arch`), the console, the device tree's memory map, page
//! frames and the heap (`mm`), timing probes, the self-tests and the demo.
//! The allocator, cleancache and page-cache logic live in the `no_std`
//! crates under `kernel/crates/`, tested on the host.
//!
//! Boot order (see `kernel_entry`): MMU with a boot map, console, device
//! tree and memory map, final map, frame table and heap, then the mode the
//! boot arguments ask for (demo, self-test, soak, fault).

#![no_std]

extern crate alloc;

#[path = "arch/aarch64/mod.rs"]
pub mod arch;
pub mod areas;
pub mod board;
pub mod console;
pub mod demo;
pub mod drivers;
pub mod exit;
pub mod fs;
pub mod irq;
pub mod mm;
pub mod probes;
pub mod sched;
pub mod selftest;
pub mod soak;
pub mod storage;
pub mod sync;

use core::ops::Range;

use arch::firmware::PsciConduit;
use arch::mmu;
use bootargs::{BootArgs, Mode};
use exit::{ExitStatus, exit};
use physmap::{DeviceTree, MemoryMap, PhysRange};

/// Facts gathered at boot, for the report and the self-tests.
pub struct BootInfo {
    pub board: &'static str,
    pub dtb: Range<u64>,
    pub kernel: Range<u64>,
    pub uart_base: usize,
    pub ram: alloc::vec::Vec<Range<u64>>,
    pub regions: alloc::vec::Vec<Region>,
    pub mmu_tables: usize,
    /// virtio-mmio windows the device tree lists (QEMU virt: 32).
    pub virtio_mmio: alloc::vec::Vec<u64>,
    /// The interrupt controller and timer interrupt, if found.
    pub gic: Option<irq::GicInfo>,
    /// The SD host controller (Raspberry Pi 4 EMMC2), if the tree has one.
    pub sdhci: Option<drivers::sdhci::SdhciInfo>,
}

/// A reserved region as the kernel sees it after boot.
#[derive(Clone, Debug)]
pub struct Region {
    pub name: alloc::string::String,
    pub kind: physmap::RegionKind,
    pub range: Range<u64>,
    pub no_map: bool,
}

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
    arch::set_boot_el(entry_el);
    let board = board::board();
    let kernel = kernel_image();
    if mmu::enable_boot_map(kernel.clone(), dtb_addr as u64).is_err() {
        arch::cpu::wait_forever();
    }
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
    let info = boot(board, dtb_addr as u64, kernel);
    let args_line = info.1;
    let info = info.0;
    run(&info, args_line)
}

/// Everything between the console and the chosen mode.
fn boot(
    board: &'static dyn board::Board,
    dtb_addr: u64,
    kernel: Range<u64>,
) -> (BootInfo, &'static str) {
    if dtb_addr == 0 || !dtb_addr.is_multiple_of(8) {
        println!(
            "boot: no device tree (x0 = {dtb_addr:#x}); boot an arm64 Image with a DTB (qemu-run.sh passes -dtb)"
        );
        exit(ExitStatus::BootFailed);
    }
    // SAFETY: x0 points at the DTB the loader placed in RAM, mapped by the
    // boot map; the header is 40 bytes and is only read.
    let header =
        unsafe { core::slice::from_raw_parts(dtb_addr as *const u8, physmap::FDT_HEADER_SIZE) };
    let size = match physmap::dtb_total_size(header) {
        Ok(s) => s,
        Err(e) => {
            println!("boot: no valid device tree at {dtb_addr:#x}: {e}");
            exit(ExitStatus::BootFailed);
        }
    };
    // SAFETY: the header says the blob is `size` bytes; the loader copied all
    // of it there, it is never written, and the frame table marks it
    // Reserved so nothing reuses it: a 'static shared borrow is sound.
    let blob: &'static [u8] = unsafe { core::slice::from_raw_parts(dtb_addr as *const u8, size) };
    let dtb = dtb_addr..dtb_addr + size as u64;
    let tree = match DeviceTree::new(blob) {
        Ok(t) => t,
        Err(e) => {
            println!("boot: device tree at {dtb_addr:#x} does not parse: {e}");
            exit(ExitStatus::BootFailed);
        }
    };
    let map = match MemoryMap::from_tree(
        &tree,
        PhysRange::from_bounds(kernel.start, kernel.end),
        PhysRange::from_bounds(dtb.start, dtb.end),
    ) {
        Ok(m) => m,
        Err(e) => {
            println!("boot: device tree: {e}");
            exit(ExitStatus::BootFailed);
        }
    };

    // Boot arguments first: they set the log level and how to exit.
    let args_line: &'static str = map.chosen.bootargs.unwrap_or("");
    let args = BootArgs::parse(args_line, |e| println!("{e}"));
    let psci = tree
        .property_at("/psci", "method")
        .and_then(|p| p.as_str())
        .and_then(|m| match m {
            "hvc" => Some(PsciConduit::Hvc),
            "smc" => Some(PsciConduit::Smc),
            _ => None,
        });
    exit::configure(args.semihosting, args.reboot, psci);
    // A UART or GIC above 4 GiB (Pi 4 high-peripheral mode): refused.
    if let Some(high) = physmap::first_above_limit(&tree) {
        println!("{high}");
        exit(ExitStatus::BootFailed);
    }
    console::init_logger(args.loglevel);
    if let Some(b) = args.board
        && b != board.name()
    {
        log::warn!(
            "bootargs: board={b} but this kernel was built for {}",
            board.name()
        );
    }

    // The console the device tree names if it is a PL011, else its first PL011.
    let stdout = map.chosen.stdout.and_then(|d| d.reg()).map(|r| r.base);
    let mut uart = None;
    tree.for_each_compatible("arm,pl011", |d| {
        if let Some(r) = d.reg()
            && (uart.is_none() || Some(r.base) == stdout)
        {
            uart = Some(r);
        }
        true
    });
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

    log::info!(
        "device tree at {:#x} ({} bytes), kernel image {:#x}..{:#x}",
        dtb.start,
        size,
        kernel.start,
        kernel.end
    );
    // Bad reserved-memory nodes: one line each, printed with the map below.
    println!("{}", physmap::Table(&map));
    print!("{}", physmap::MachineLines(&map));

    // Final map: RAM from the device tree, no-map regions left out.
    let (ram, n_ram) = ranges::<{ physmap::MAX_RAM_RANGES }>(map.ram.iter().copied());
    // Every no-map range: regions, firmware's and refused ones alike.
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

    if let Err(e) = mm::init(&map, kernel.clone(), dtb.clone()) {
        println!("boot: memory: {e}");
        exit(ExitStatus::BootFailed);
    }
    probes::init();
    let stats = mm::with_frames(|t| t.stats());
    log::info!(
        "frames: {} managed, {} free ({} MiB); heap {} MiB",
        stats.managed,
        stats.free,
        stats.free * frames::PAGE_SIZE / (1 << 20),
        mm::heap_stats().1 >> 20
    );

    // How to stop a board without PSCI or semihosting (Raspberry Pi).
    drivers::pm_wdt::init(&tree);
    let info = BootInfo {
        board: board.name(),
        dtb,
        kernel,
        uart_base: console::uart_base().unwrap_or(0),
        ram: map.ram.as_slice().iter().map(|r| r.base..r.end()).collect(),
        regions: map
            .reserved
            .as_slice()
            .iter()
            .map(|r| Region {
                name: r.name.into(),
                kind: r.kind,
                range: r.range.base..r.range.end(),
                no_map: r.no_map,
            })
            .collect(),
        mmu_tables: mmu::tables_used(),
        gic: gic_info(&tree),
        sdhci: drivers::sdhci::SdhciInfo::from_tree(&tree),
        virtio_mmio: {
            let mut v = alloc::vec::Vec::new();
            tree.for_each_compatible("virtio,mmio", |d| {
                if let Some(r) = d.reg() {
                    v.push(r.base);
                }
                true
            });
            v
        },
    };
    match info.gic {
        Some(g) => {
            // SAFETY: distributor and CPU interface from the device tree,
            // below 4 GiB and outside RAM: device memory in the final map.
            unsafe { irq::init(&g) };
            irq::register(g.timer_intid, sched::on_timer_interrupt);
            sched::init(PRIO_MAIN);
        }
        None => log::warn!("no GICv2 in the device tree: no interrupts, no task scheduling"),
    }
    storage::init(&info);
    areas::init(&info);
    (info, args_line)
}

/// Priority of the boot context ("main") once tasks run.
pub const PRIO_MAIN: u8 = 10;

/// The GICv2 and the EL1 physical timer's interrupt from the device tree.
fn gic_info(tree: &DeviceTree) -> Option<irq::GicInfo> {
    let gic = tree
        .find_compatible("arm,cortex-a15-gic")
        .or_else(|| tree.find_compatible("arm,gic-400"));
    let Some(gic) = gic else {
        if tree.find_compatible("arm,gic-v3").is_some() {
            log::error!(
                "gic: GICv3 found; this kernel drives GICv2 (QEMU: -machine virt,gic-version=2)"
            );
        }
        return None;
    };
    let regs = gic.regs.as_slice();
    if regs.len() < 2 {
        log::error!(
            "gic: node '{}' lacks distributor and CPU interface regs",
            gic.name
        );
        return None;
    }
    // The timer's second interrupt is the non-secure EL1 physical timer:
    // <type num flags>, type 1 = PPI, INTID = 16 + num.
    let timer = tree.find_compatible("arm,armv8-timer")?;
    let cells = timer.interrupts;
    let (kind, num) = (cells.get(3)?, cells.get(4)?);
    if kind != 1 {
        log::error!("timer: physical timer interrupt is not a PPI (type {kind})");
        return None;
    }
    Some(irq::GicInfo {
        dist: regs[0].base,
        cpu: regs[1].base,
        timer_intid: 16 + num,
    })
}

fn run(info: &BootInfo, args_line: &str) -> ! {
    let args = BootArgs::parse(args_line, |_| {});
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
