//! Secondary cores: started from the device tree, self-tested, then idle.
//!
//! Core 0 calls [`start_secondaries`] once, after the final page tables,
//! the GIC and the heap are up. For each core `/cpus` lists (physmap's
//! `DeviceTree::cpus`), one at a time:
//! - `enable-method = "psci"`: PSCI CPU_ON through the `/psci` conduit with
//!   the physical address of `__secondary_entry` (QEMU virt);
//! - `enable-method = "spin-table"`: that address is written to the core's
//!   `cpu-release-addr`, cleaned to the point of coherency, and `sev` wakes
//!   the core, which spins there with its MMU off (the Raspberry Pi
//!   firmware's armstub8 and QEMU raspi4b's boot stub both poll 0xd8, 0xe0,
//!   0xe8, 0xf0 for cores 0..3 and branch to the address found);
//! - core 0 waits up to [`UP_TIMEOUT_NS`] for the core to come up and as
//!   long again for its self-test report. A core that misses either is
//!   reported on the console and the kernel goes on with the others; one
//!   that comes up after its deadline finds its slot abandoned and parks.
//!
//! A secondary core enters `__secondary_entry` (smp/entry.rs) with the MMU
//! off at EL2 or EL1, drops to EL1, finds its slot by MPIDR in
//! [`EntryParams`], turns the MMU on with core 0's MAIR, TCR, TTBR0 and
//! SCTLR (the kernel's one identity map; the tables never change after
//! boot), takes its own stack of [`STACK_SIZE`] bytes, installs the shared
//! exception vectors and calls `secondary_main`. There it runs the per-core
//! self-test: it records the MPIDR it reads, enables its GIC CPU interface
//! and its timer interrupt (banked per core), takes one timer interrupt,
//! increments its own counter and the shared one, reports, and waits in
//! [`idle`] (`wfi`), where it runs the work core 0 hands it
//! ([`run_on_secondaries`], smp/work.rs: woken by an SGI).
//!
//! Rules for code that runs on a secondary core:
//! - no heap, no console output, no `IrqLock` (it masks IRQs on one core
//!   only, so it does not exclude another core), no scheduler call: the
//!   core's state lives in its [`CoreSlot`] of atomics, which core 0 reads;
//! - it touches only its own banked GIC registers (drivers/gic rules), its
//!   own timer, its own stack and slot, the shared counter [`CHECKINS`]
//!   (an atomic add), and whatever the work core 0 hands it touches, under
//!   the rules of smp/work.rs (atomics and `ticket::TicketLock`s only);
//! - a fatal exception goes through the shared fatal path (exception.rs),
//!   which breaks the console lock and stops the machine.
//!
//! Memory ordering: core 0 writes [`EntryParams`] before it starts any core
//! and cleans them to the point of coherency (`dc cvac` + `dsb sy`), since
//! the new core reads them with its MMU, hence its caches, off. Everything
//! else is shared after the new core's MMU is on (inner shareable,
//! write-back: coherent). A slot's `state` is the handshake: core 0 stores
//! `RELEASED` before the CPU_ON call or the release write (both ordered
//! after it by `dsb sy`); the core moves it `RELEASED -> RUNNING` by
//! compare-exchange (AcqRel) and stores `REPORTED` with Release after every
//! other field of its slot, which core 0 reads after an Acquire load of
//! `REPORTED`. On a timeout core 0 moves `RELEASED -> ABANDONED` by
//! compare-exchange, so exactly one of the two wins.

mod entry;
mod join;
mod work;

use join::idle_step;
pub use join::join_scheduler;

pub use work::{Handoff, WORK_SGI, WorkError, online_secondaries, run_on_secondaries};

/// The SGI that tells a core in the scheduler that a task of its became
/// ready on another core (`sched::on_kick`).
pub const RESCHED_SGI: u32 = 2;

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{
    MAIR_EL1, Readable, SCTLR_EL1, TCR_EL1, TPIDR_EL1, TTBR0_EL1, VBAR_EL1, Writeable,
};
use frames::{FrameState, Pfn};
use physmap::{Cpus, EnableMethod};
use spin::Once;

use crate::arch::exception::asynchronous::{local_irq_mask_save, local_irq_unmask};
use crate::arch::exception::{mpidr_affinity, set_secondary_irq_handler};
use crate::arch::firmware::{self, PsciConduit};
use crate::arch::{cpu, mmu, timer};
use crate::drivers::gic::Gic;
use crate::irq;
use physmap::Gicv2;

/// Most cores (the device tree's list is cut there).
pub const MAX_CPUS: usize = physmap::MAX_CPUS;
/// Stack of each secondary core (no heap, no tasks: a few frames deep).
pub const STACK_SIZE: usize = 32 * 1024;
/// How long core 0 waits for a core to come up, and again for its report
/// (under TCG on a loaded two-core host a core took up to 212 ms).
pub const UP_TIMEOUT_NS: u64 = 2_000_000_000;
/// The per-core self-test's timer interrupt, this long after arming.
pub const SELFTEST_TIMER_NS: u64 = 1_000_000;

/// `EntryParams::mpidr` of a slot no core may take.
const NO_CORE: u64 = u64::MAX;

/// What the entry code reads with the MMU off (layout shared with the asm).
#[repr(C, align(64))]
pub struct EntryParams {
    mair: u64,
    tcr: u64,
    ttbr0: u64,
    sctlr: u64,
    vbar: u64,
    /// MPIDR affinity of the core each slot is for (NO_CORE: none).
    mpidr: [u64; MAX_CPUS],
    /// Initial stack pointer of each slot.
    stack_top: [u64; MAX_CPUS],
}

struct ParamsCell(UnsafeCell<EntryParams>);

// SAFETY: written only by core 0 in `start_secondaries`, before any other
// core is started (guarded by STARTED); read-only afterwards.
unsafe impl Sync for ParamsCell {}

static SMP_ENTRY_PARAMS: ParamsCell = ParamsCell(UnsafeCell::new(EntryParams {
    mair: 0,
    tcr: 0,
    ttbr0: 0,
    sctlr: 0,
    vbar: 0,
    mpidr: [NO_CORE; MAX_CPUS],
    stack_top: [0; MAX_CPUS],
}));

#[repr(C, align(16))]
struct Stacks(UnsafeCell<[[u8; STACK_SIZE]; MAX_CPUS]>);

// SAFETY: only the address is taken here; each slot's stack is used by the
// one core that takes that slot, never by core 0.
unsafe impl Sync for Stacks {}

static STACKS: Stacks = Stacks(UnsafeCell::new([[0; STACK_SIZE]; MAX_CPUS]));

/// A slot's handshake states.
const IDLE: u8 = 0;
const RELEASED: u8 = 1;
const RUNNING: u8 = 2;
const REPORTED: u8 = 3;
const ABANDONED: u8 = 4;

/// One core's shared state: written by that core, read by core 0.
pub struct CoreSlot {
    state: AtomicU8,
    /// MPIDR affinity the core read from MPIDR_EL1.
    mpidr_seen: AtomicU64,
    /// Counter ticks from core 0's start call to the core running Rust.
    up_ticks: AtomicU64,
    /// Counter ticks from arming the timer to its interrupt.
    irq_ticks: AtomicU64,
    armed_at: AtomicU64,
    timer_irqs: AtomicU32,
    unexpected_irqs: AtomicU32,
    /// The per-core counter (one increment per self-test).
    count: AtomicU32,
    /// MMU and both caches on, as the core saw SCTLR_EL1.
    mmu_on: AtomicBool,
    /// VBAR_EL1 on the core.
    vbar: AtomicU64,
    /// Address of a local variable of `secondary_main`: on its own stack.
    sp: AtomicU64,
    /// Times [`idle`] came back from `wfi` (a low-power loop barely moves).
    idle_wakeups: AtomicU64,
    /// When core 0 started it (counter value).
    started_at: AtomicU64,
    /// Work core 0 handed over (smp/work.rs): the function (0: none) and
    /// its argument, the runs finished, the SGIs taken, and the core's
    /// CPU interface bit (0 until its self-test read it).
    work_fn: AtomicUsize,
    work_arg: AtomicUsize,
    work_done: AtomicU32,
    sgis: AtomicU32,
    gic_target: AtomicU8,
    /// Core 0 asked the core to join the scheduler ([`join_scheduler`]).
    join_sched: AtomicBool,
    /// The core's interrupts go to the scheduler (set by the core itself
    /// just before it joins).
    in_sched: AtomicBool,
    /// Reschedule SGIs the core took.
    kicks: AtomicU32,
}

impl CoreSlot {
    const fn new() -> Self {
        Self {
            state: AtomicU8::new(IDLE),
            mpidr_seen: AtomicU64::new(NO_CORE),
            up_ticks: AtomicU64::new(0),
            irq_ticks: AtomicU64::new(0),
            armed_at: AtomicU64::new(0),
            timer_irqs: AtomicU32::new(0),
            unexpected_irqs: AtomicU32::new(0),
            count: AtomicU32::new(0),
            mmu_on: AtomicBool::new(false),
            vbar: AtomicU64::new(0),
            sp: AtomicU64::new(0),
            idle_wakeups: AtomicU64::new(0),
            started_at: AtomicU64::new(0),
            work_fn: AtomicUsize::new(0),
            work_arg: AtomicUsize::new(0),
            work_done: AtomicU32::new(0),
            sgis: AtomicU32::new(0),
            gic_target: AtomicU8::new(0),
            join_sched: AtomicBool::new(false),
            in_sched: AtomicBool::new(false),
            kicks: AtomicU32::new(0),
        }
    }
}

static SLOTS: [CoreSlot; MAX_CPUS] = [const { CoreSlot::new() }; MAX_CPUS];
/// The shared counter: one increment per secondary self-test, every core.
pub static CHECKINS: AtomicU32 = AtomicU32::new(0);
static STARTED: AtomicBool = AtomicBool::new(false);
static TIMER_INTID: AtomicU32 = AtomicU32::new(0);
static SECONDARY_GIC: Once<&'static Gic> = Once::new();
/// Slot index of the boot core (MAX_CPUS: not in the list).
static BOOT_SLOT: AtomicUsize = AtomicUsize::new(MAX_CPUS);

/// How one core of the device tree fared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The core running `start_secondaries`.
    Boot,
    /// Came up and reported its self-test.
    Online,
    /// Not started (bad entry in the tree, no PSCI, failed CPU_ON, ...).
    NotStarted(&'static str),
    /// Started but not up within the timeout.
    NoResponse,
    /// Up, but no report within the timeout.
    NoReport,
    /// Left off: beyond the `smp=N` of the boot arguments.
    Off,
}

/// One core as the boot report and the self-tests see it.
#[derive(Clone, Copy, Debug)]
pub struct CoreReport {
    pub name: &'static str,
    /// From the device tree's `reg` (None: unreadable).
    pub mpidr: Option<u64>,
    pub method: &'static str,
    pub outcome: Outcome,
    /// MPIDR affinity the core read itself (None: never ran).
    pub mpidr_seen: Option<u64>,
    pub up_ns: u64,
    pub irq_ns: u64,
    pub timer_irqs: u32,
    pub unexpected_irqs: u32,
    pub count: u32,
    /// MMU and caches on, on that core.
    pub mmu_on: bool,
    /// Its VBAR_EL1 (the kernel's vectors: core 0's).
    pub vbar: u64,
    /// An address on the stack it ran on, and the stack it was given
    /// (`stack_start..stack_end`).
    pub sp: u64,
    pub stack_start: u64,
    pub stack_end: u64,
}

static REPORTS: Once<([Option<CoreReport>; MAX_CPUS], usize)> = Once::new();

fn method_name(m: &EnableMethod) -> &'static str {
    match m {
        EnableMethod::Psci => "psci",
        EnableMethod::SpinTable { .. } => "spin-table",
        EnableMethod::SpinTableNoReleaseAddr => "spin-table",
        EnableMethod::Unknown(_) => "unknown",
        EnableMethod::Missing => "none",
    }
}

fn entry_address() -> u64 {
    // The entry code (smp/entry.rs); only its address is taken, it is
    // never called from Rust.
    unsafe extern "C" {
        fn __secondary_entry();
    }
    // Identity map: the link address is the physical one.
    __secondary_entry as *const () as u64
}

/// Cleans `len` bytes at `addr` to the point of coherency, for a reader
/// whose caches are off. Stride 16 bytes: the smallest data cache line the
/// architecture allows, so every line is reached whatever CTR_EL0 says.
fn clean_to_poc(addr: usize, len: usize) {
    for line in (addr & !15..addr + len).step_by(16) {
        // SAFETY: `dc cvac` writes a cached line back to memory; it changes
        // no value a program can observe.
        unsafe { core::arch::asm!("dc cvac, {}", in(reg) line, options(nostack)) };
    }
    barrier::dsb(barrier::SY);
}

/// Starts every other core `cpus` lists and waits for each to report (see
/// the module rules); prints the boot report. Once per boot.
///
/// `max_cores` (`smp=N`): only the first N cores of the list are used (the
/// boot core counts); the rest stay off and are reported so. The boot core
/// must be the first one listed for any other core to start: a core's
/// index (`cpu::index`, its position in the list) must not collide with
/// the boot core's 0.
pub fn start_secondaries(
    cpus: &Cpus<'static>,
    psci: Option<PsciConduit>,
    gic: Option<&Gicv2>,
    max_cores: Option<usize>,
) {
    if STARTED.swap(true, Ordering::AcqRel) {
        log::error!("smp: start_secondaries called twice; ignored");
        return;
    }
    let boot = mpidr_affinity();
    let mut reports: [Option<CoreReport>; MAX_CPUS] = [None; MAX_CPUS];
    let listed = cpus.list.len();
    for (i, c) in cpus.list.iter().enumerate() {
        reports[i] = Some(CoreReport {
            name: c.name,
            mpidr: c.mpidr,
            method: method_name(&c.enable),
            outcome: if c.mpidr == Some(boot) {
                Outcome::Boot
            } else {
                Outcome::NotStarted("")
            },
            mpidr_seen: None,
            up_ns: 0,
            irq_ns: 0,
            timer_irqs: 0,
            unexpected_irqs: 0,
            count: 0,
            mmu_on: false,
            vbar: 0,
            sp: 0,
            stack_start: stack_range(i).start,
            stack_end: stack_range(i).end,
        });
    }
    if let Some(i) = cpus.list.iter().position(|c| c.mpidr == Some(boot)) {
        BOOT_SLOT.store(i, Ordering::Relaxed);
    } else {
        log::warn!("smp: the boot core (MPIDR {boot:#x}) is not in /cpus");
    }
    if cpus.dropped > 0 {
        log::warn!(
            "smp: /cpus lists {} more cores than the {MAX_CPUS} this kernel keeps; they stay off",
            cpus.dropped
        );
    }
    let max = max_cores.unwrap_or(MAX_CPUS);
    for (i, r) in reports.iter_mut().enumerate() {
        if let Some(r) = r
            && i >= max
            && r.outcome != Outcome::Boot
        {
            r.outcome = Outcome::Off;
        }
    }
    let boot_first = BOOT_SLOT.load(Ordering::Relaxed) == 0;
    let gic = gic.and_then(|g| (g.timer_intid < 32).then_some(g));
    if !boot_first {
        for r in reports.iter_mut().flatten() {
            if matches!(r.outcome, Outcome::NotStarted(_)) {
                r.outcome = Outcome::NotStarted("the boot core is not the first core in /cpus");
            }
        }
    }
    match gic.filter(|_| boot_first) {
        None => {
            if boot_first {
                for r in reports.iter_mut().flatten() {
                    if matches!(r.outcome, Outcome::NotStarted(_)) {
                        r.outcome = Outcome::NotStarted("no GICv2 with a per-core timer interrupt");
                    }
                }
            }
        }
        Some(g) => {
            TIMER_INTID.store(g.timer_intid, Ordering::Relaxed);
            set_secondary_irq_handler(on_secondary_irq);
            write_params(cpus, boot, max_cores);
            for (i, c) in cpus.list.iter().enumerate() {
                if let Some(r) = reports[i].as_mut()
                    && matches!(r.outcome, Outcome::NotStarted(_))
                {
                    r.outcome = start_one(i, c, cpus, psci);
                    fill_from_slot(r, &SLOTS[i]);
                }
            }
        }
    }
    print_report(&reports, listed);
    REPORTS.call_once(|| (reports, listed));
}

/// The stack of slot `i`.
fn stack_range(i: usize) -> core::ops::Range<u64> {
    let base = STACKS.0.get() as u64 + (i * STACK_SIZE) as u64;
    base..base + STACK_SIZE as u64
}

/// Fills the entry parameters for every core that may start, and cleans
/// them to memory.
fn write_params(cpus: &Cpus, boot: u64, max_cores: Option<usize>) {
    // SAFETY: core 0 only, before any core is started (STARTED was false):
    // nothing else reads or writes the parameters yet.
    let p = unsafe { &mut *SMP_ENTRY_PARAMS.0.get() };
    p.mair = MAIR_EL1.get();
    p.tcr = TCR_EL1.get();
    p.ttbr0 = TTBR0_EL1.get();
    p.sctlr = SCTLR_EL1.get();
    p.vbar = VBAR_EL1.get();
    for (i, c) in cpus.list.iter().enumerate() {
        let startable = c.available
            && c.mpidr != Some(boot)
            && cpus.duplicate != c.mpidr
            && i < max_cores.unwrap_or(MAX_CPUS);
        p.mpidr[i] = match c.mpidr {
            Some(m) if startable => m,
            _ => NO_CORE,
        };
        p.stack_top[i] = stack_range(i).end;
    }
    clean_to_poc(
        p as *const EntryParams as usize,
        core::mem::size_of::<EntryParams>(),
    );
}

/// Starts the core of slot `i` and waits for its report.
fn start_one(i: usize, c: &physmap::Cpu, cpus: &Cpus, psci: Option<PsciConduit>) -> Outcome {
    let Some(mpidr) = c.mpidr else {
        return Outcome::NotStarted("its reg does not read as an MPIDR");
    };
    if !c.available {
        return Outcome::NotStarted("status is not okay");
    }
    if cpus.duplicate == Some(mpidr) {
        return Outcome::NotStarted("another core has the same MPIDR");
    }
    let slot = &SLOTS[i];
    let start = timer::ticks();
    slot.started_at.store(start, Ordering::Relaxed);
    slot.state.store(RELEASED, Ordering::Release);
    barrier::dsb(barrier::SY);
    match c.enable {
        EnableMethod::Psci => {
            let Some(conduit) = psci else {
                slot.state.store(IDLE, Ordering::Relaxed);
                return Outcome::NotStarted("enable-method psci but no /psci node");
            };
            if let Err(e) = firmware::psci_cpu_on(conduit, mpidr, entry_address(), i as u64) {
                slot.state.store(IDLE, Ordering::Relaxed);
                log::error!(
                    "smp: {}: PSCI CPU_ON failed: {} ({e})",
                    c.name,
                    firmware::psci_error_name(e)
                );
                return Outcome::NotStarted("PSCI CPU_ON failed");
            }
        }
        EnableMethod::SpinTable { release_addr } => {
            let mapped = mmu::translate(release_addr)
                .is_some_and(|(pa, attr)| pa == release_addr && attr == mmu::MAIR_NORMAL_WB);
            // The word must be memory the tree keeps from the kernel (the
            // Pi firmware's /memreserve/ of page 0): never a page the frame
            // allocator may hand out, whose owner the write would corrupt.
            let frame = crate::mm::with_frames(|t| t.state(Pfn::from_addr(release_addr)));
            let kept = matches!(frame, None | Some(FrameState::Reserved));
            if !release_addr.is_multiple_of(8) || !mapped || !kept {
                slot.state.store(IDLE, Ordering::Relaxed);
                log::error!(
                    "smp: {}: cpu-release-addr {release_addr:#x} is not an aligned word of mapped, reserved RAM (frame: {})",
                    c.name,
                    frame.map_or("unmanaged", |f| f.name())
                );
                return Outcome::NotStarted("bad cpu-release-addr");
            }
            // SAFETY: the device tree names this 8-byte-aligned word, mapped
            // as normal RAM and reserved from every allocator (both checked
            // above), as the core's release word: nothing of the kernel's
            // lives there.
            unsafe { core::ptr::write_volatile(release_addr as *mut u64, entry_address()) };
            clean_to_poc(release_addr as usize, 8);
            aarch64_cpu::asm::sev();
        }
        EnableMethod::SpinTableNoReleaseAddr => {
            slot.state.store(IDLE, Ordering::Relaxed);
            return Outcome::NotStarted("spin-table without a 64-bit cpu-release-addr");
        }
        EnableMethod::Unknown(_) | EnableMethod::Missing => {
            slot.state.store(IDLE, Ordering::Relaxed);
            return Outcome::NotStarted("no enable-method this kernel knows");
        }
    }
    let deadline = start + timer::ns_to_ticks(UP_TIMEOUT_NS);
    while slot.state.load(Ordering::Acquire) == RELEASED && timer::ticks() < deadline {
        core::hint::spin_loop();
    }
    if slot
        .state
        .compare_exchange(RELEASED, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
    {
        return Outcome::NoResponse;
    }
    let deadline = timer::ticks() + timer::ns_to_ticks(UP_TIMEOUT_NS);
    while slot.state.load(Ordering::Acquire) != REPORTED {
        if timer::ticks() >= deadline {
            return Outcome::NoReport;
        }
        core::hint::spin_loop();
    }
    Outcome::Online
}

fn fill_from_slot(r: &mut CoreReport, slot: &CoreSlot) {
    // Acquire: pairs with the core's Release store of REPORTED.
    let state = slot.state.load(Ordering::Acquire);
    if state == RUNNING || state == REPORTED {
        r.mpidr_seen = Some(slot.mpidr_seen.load(Ordering::Relaxed));
        r.up_ns = timer::ticks_to_ns(slot.up_ticks.load(Ordering::Relaxed));
        r.irq_ns = timer::ticks_to_ns(slot.irq_ticks.load(Ordering::Relaxed));
        r.timer_irqs = slot.timer_irqs.load(Ordering::Relaxed);
        r.unexpected_irqs = slot.unexpected_irqs.load(Ordering::Relaxed);
        r.count = slot.count.load(Ordering::Relaxed);
        r.mmu_on = slot.mmu_on.load(Ordering::Relaxed);
        r.vbar = slot.vbar.load(Ordering::Relaxed);
        r.sp = slot.sp.load(Ordering::Relaxed);
    }
}

/// An MPIDR from the tree for the report: hex, or "?" when unreadable.
struct Mpidr(Option<u64>);

impl core::fmt::Display for Mpidr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(m) => write!(f, "{m:#x}"),
            None => f.write_str("?"),
        }
    }
}

fn print_report(reports: &[Option<CoreReport>; MAX_CPUS], listed: usize) {
    let online = reports
        .iter()
        .flatten()
        .filter(|r| matches!(r.outcome, Outcome::Boot | Outcome::Online))
        .count();
    crate::println!("smp: {online} of {listed} cores online");
    for r in reports.iter().flatten() {
        let mpidr = Mpidr(r.mpidr);
        match r.outcome {
            Outcome::Boot => crate::println!("  {:<8} mpidr {mpidr}  boot core", r.name),
            Outcome::Online => crate::println!(
                "  {:<8} mpidr {mpidr}  {}: up in {} us, timer interrupt after {} us, counter {}",
                r.name,
                r.method,
                r.up_ns / 1000,
                r.irq_ns / 1000,
                r.count
            ),
            Outcome::NotStarted(why) => crate::println!(
                "  {:<8} mpidr {mpidr}  {}: not started: {why}",
                r.name,
                r.method
            ),
            Outcome::NoResponse => crate::println!(
                "  {:<8} mpidr {mpidr}  {}: did not come up within {} ms; going on without it",
                r.name,
                r.method,
                UP_TIMEOUT_NS / 1_000_000
            ),
            Outcome::Off => crate::println!(
                "  {:<8} mpidr {mpidr}  {}: left off (smp= in the boot arguments)",
                r.name,
                r.method
            ),
            Outcome::NoReport => crate::println!(
                "  {:<8} mpidr {mpidr}  {}: came up but did not report within {} ms (timer interrupts {}); going on without it",
                r.name,
                r.method,
                UP_TIMEOUT_NS / 1_000_000,
                r.timer_irqs
            ),
        }
    }
    let max_up = reports.iter().flatten().map(|r| r.up_ns).max().unwrap_or(0);
    crate::println!(
        "@smp listed={listed} online={online} failed={} checkins={} up_us_max={} off={}",
        reports
            .iter()
            .flatten()
            .filter(|r| !matches!(r.outcome, Outcome::Boot | Outcome::Online | Outcome::Off))
            .count(),
        CHECKINS.load(Ordering::Relaxed),
        max_up / 1000,
        reports
            .iter()
            .flatten()
            .filter(|r| r.outcome == Outcome::Off)
            .count()
    );
}

/// The cores of the device tree and how each fared (None before
/// [`start_secondaries`]), and how many the tree listed.
pub fn reports() -> Option<&'static ([Option<CoreReport>; MAX_CPUS], usize)> {
    REPORTS.get()
}

/// This core's slot, as the entry code set it in TPIDR_EL1.
fn this_slot() -> &'static CoreSlot {
    &SLOTS[(TPIDR_EL1.get() as usize).min(MAX_CPUS - 1)]
}

/// Rust entry of a secondary core (from smp/entry.rs): MMU on, its own
/// stack, IRQs masked, `slot` its index in the entry parameters.
#[unsafe(no_mangle)]
extern "C" fn secondary_main(slot: usize) -> ! {
    let Some(me) = SLOTS.get(slot) else {
        cpu::wait_forever()
    };
    TPIDR_EL1.set(slot as u64);
    if me
        .state
        .compare_exchange(RELEASED, RUNNING, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        // Core 0 gave up on this core: stay out of the way.
        idle();
    }
    me.mpidr_seen.store(mpidr_affinity(), Ordering::Relaxed);
    me.mmu_on.store(mmu::mmu_and_caches_on(), Ordering::Relaxed);
    me.vbar.store(VBAR_EL1.get(), Ordering::Relaxed);
    let local = 0u64;
    me.sp.store(&raw const local as u64, Ordering::Relaxed);
    let now = timer::ticks();
    me.up_ticks.store(
        now.wrapping_sub(me.started_at.load(Ordering::Relaxed)),
        Ordering::Relaxed,
    );
    if self_test(me) {
        // Release: every field above is visible to whoever sees REPORTED.
        me.state.store(REPORTED, Ordering::Release);
    }
    idle()
}

/// The per-core self-test: GIC CPU interface and timer interrupt on, one
/// timer interrupt taken, the counters incremented. False if the core has
/// no GIC to take an interrupt through.
fn self_test(me: &CoreSlot) -> bool {
    let Some(gic) = irq::init_secondary_core(TIMER_INTID.load(Ordering::Relaxed)) else {
        return false;
    };
    SECONDARY_GIC.call_once(|| gic);
    gic.enable(WORK_SGI, irq::IRQ_PRIORITY);
    gic.enable(RESCHED_SGI, irq::IRQ_PRIORITY);
    me.gic_target
        .store(gic.this_core_target(), Ordering::Relaxed);
    let armed = timer::ticks();
    me.armed_at.store(armed, Ordering::Relaxed);
    timer::arm(armed + timer::ns_to_ticks(SELFTEST_TIMER_NS));
    while me.timer_irqs.load(Ordering::Relaxed) == 0 {
        take_pending_interrupts();
    }
    me.count.fetch_add(1, Ordering::Relaxed);
    CHECKINS.fetch_add(1, Ordering::Relaxed);
    true
}

/// Sleeps until an interrupt is pending, then takes it. `wfi` wakes on a
/// pending interrupt even while IRQs are masked, so one that arrives
/// between the caller's check and `wfi` is not lost; it is taken in the
/// short unmasked window after.
fn take_pending_interrupts() {
    cpu::wait_for_interrupt();
    local_irq_unmask();
    barrier::isb(barrier::SY);
    let _ = local_irq_mask_save();
}

/// The low-power loop a secondary core waits in until the scheduler hands
/// it work (issue: per-core scheduling). Interrupts that wake it are taken
/// and counted; nothing else runs.
fn idle() -> ! {
    let me = this_slot();
    loop {
        take_pending_interrupts();
        me.idle_wakeups.fetch_add(1, Ordering::Relaxed);
        work::run_handed_over(me);
        if me.join_sched.load(Ordering::Acquire) {
            me.in_sched.store(true, Ordering::Release);
            crate::sched::enter_secondary(idle_step);
        }
    }
}

/// What a secondary core's slot says now (not at boot): timer interrupts,
/// unexpected interrupts, its counter, and its idle loop's wake-ups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Live {
    pub timer_irqs: u32,
    pub unexpected_irqs: u32,
    pub count: u32,
    pub idle_wakeups: u64,
}

/// Work runs finished on slot `i` and the SGIs it took (smp/work.rs).
pub fn work_counters(i: usize) -> Option<(u32, u32)> {
    let slot = SLOTS.get(i)?;
    Some((
        slot.work_done.load(Ordering::Acquire),
        slot.sgis.load(Ordering::Relaxed),
    ))
}

/// Reschedule SGIs slot `i` took (0 for a slot without a core).
pub fn kicks(i: usize) -> u32 {
    SLOTS.get(i).map_or(0, |s| s.kicks.load(Ordering::Relaxed))
}

/// The live counters of slot `i` (the device tree's index).
pub fn live(i: usize) -> Option<Live> {
    let slot = SLOTS.get(i)?;
    Some(Live {
        timer_irqs: slot.timer_irqs.load(Ordering::Relaxed),
        unexpected_irqs: slot.unexpected_irqs.load(Ordering::Relaxed),
        count: slot.count.load(Ordering::Relaxed),
        idle_wakeups: slot.idle_wakeups.load(Ordering::Relaxed),
    })
}

/// IRQ handler on a secondary core (installed through exception.rs).
fn on_secondary_irq() {
    let me = this_slot();
    let Some(gic) = SECONDARY_GIC.get() else {
        return;
    };
    let timer_intid = TIMER_INTID.load(Ordering::Relaxed);
    let in_sched = me.in_sched.load(Ordering::Acquire);
    while let Some(irq) = gic.acknowledge() {
        if irq.intid() == WORK_SGI {
            me.sgis.fetch_add(1, Ordering::Relaxed);
        } else if irq.intid() == RESCHED_SGI {
            me.kicks.fetch_add(1, Ordering::Relaxed);
            if in_sched {
                crate::sched::on_kick();
            }
        } else if irq.intid() == timer_intid {
            me.timer_irqs.fetch_add(1, Ordering::Relaxed);
            if in_sched {
                crate::sched::on_timer_interrupt();
            } else {
                timer::disarm();
                let armed = me.armed_at.load(Ordering::Relaxed);
                me.irq_ticks
                    .store(timer::ticks().wrapping_sub(armed), Ordering::Relaxed);
            }
        } else {
            me.unexpected_irqs.fetch_add(1, Ordering::Relaxed);
        }
        gic.end(irq);
    }
    if in_sched {
        crate::sched::preempt_if_needed();
    }
}

/// Index of the boot core in the device tree's list (None: not listed).
pub fn boot_slot() -> Option<usize> {
    let i = BOOT_SLOT.load(Ordering::Relaxed);
    (i < MAX_CPUS).then_some(i)
}
