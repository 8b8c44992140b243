//! Self-test of the cleancache's copies outside the areas lock
//! (`cleancache`'s `flight.rs`, `memsys::wait_for_copies`): a GCMA
//! allocation that takes back a page a put is copying on another core
//! returns only after that copy is finished, and the copy it took back is
//! gone.

use alloc::format;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use contig::{AreaKind, Select};
use frames::PAGE_SIZE;

use super::TestResult;
use crate::BootInfo;
use crate::arch::exception::asynchronous::{local_irq_mask_save, local_irq_restore};
use crate::arch::{cpu::MAX_CPUS, timer};
use crate::{memsys, sched};

/// Priority of the copier task (above the idle tasks, below `main`).
const PRIO_TEST: u8 = 10;

/// How long the copier holds its slot busy before it fills it: long
/// against an allocation (tens of µs), so an allocation that did not wait
/// returns well inside it.
const HOLD_NS: u64 = 20_000_000;

/// A task on another core begins a put of a fake mount's page (the slot is
/// busy), then spins [`HOLD_NS`] with IRQs masked, as the page-cache hooks
/// copy, before it fills and finishes it. Meanwhile core 0 allocates the
/// whole GCMA area, which takes that page back. The allocation must not
/// return before the fill (the copier's page is not the caller's until its
/// copy is finished), must count one copy wait, and afterwards no copy is
/// in flight, the put's copy is not retrievable, and the invariants hold.
pub fn alloc_waits_for_copy_in_flight(_: &BootInfo) -> TestResult {
    static STARTED: AtomicBool = AtomicBool::new(false);
    static FILLED: AtomicBool = AtomicBool::new(false);
    static FS: spin::Mutex<Option<cleancache::FsId>> = spin::Mutex::new(None);
    static HELD_NS: AtomicU64 = AtomicU64::new(0);
    let other = (1..MAX_CPUS)
        .find(|&c| sched::core_online(c))
        .ok_or("one core in the scheduler: boot with several (QEMU -smp 2 or more)")?;
    let gcma = memsys::first_of(AreaKind::Gcma).ok_or("no GCMA area")?;
    STARTED.store(false, Ordering::Relaxed);
    FILLED.store(false, Ordering::Relaxed);
    let fs = memsys::areas().backend_mut().register_fs(0xC0FE);
    *FS.lock() = Some(fs);
    let (waits0, _) = memsys::copy_waits();
    let copier = sched::spawn_on(other, "copier", PRIO_TEST, || {
        let fs = FS.lock().expect("mount registered");
        let page = [0x3Cu8; PAGE_SIZE as usize];
        let saved = local_irq_mask_save();
        let slot = memsys::areas().backend_mut().begin_put(fs, 1, 0);
        STARTED.store(true, Ordering::Release);
        let t = timer::ticks();
        while timer::ticks_to_ns(timer::ticks() - t) < HOLD_NS {
            core::hint::spin_loop();
        }
        HELD_NS.store(timer::ticks_to_ns(timer::ticks() - t), Ordering::Relaxed);
        if let Some(slot) = slot {
            let filled = slot.fill(&page);
            FILLED.store(true, Ordering::Release);
            memsys::areas().backend_mut().finish_put(filled);
        }
        local_irq_restore(saved);
    });
    while !STARTED.load(Ordering::Acquire) {
        core::hint::spin_loop();
    }
    let busy = memsys::areas().backend().copies_in_flight_total();
    let t = timer::ticks();
    let a = memsys::alloc(Select::Id(gcma.id), gcma.pages, 1);
    let took_ns = timer::ticks_to_ns(timer::ticks() - t);
    let filled = FILLED.load(Ordering::Acquire);
    sched::join(copier);
    let a = a.map_err(|e| format!("GCMA whole area: {e}"))?;
    memsys::free(a).map_err(|e| format!("GCMA free: {e}"))?;
    let (waits, _) = memsys::copy_waits();
    let mut areas = memsys::areas();
    let cc = areas.backend_mut();
    let in_flight = cc.copies_in_flight_total();
    let held = cc.contains(fs, 1, 0);
    cc.invalidate_fs(fs);
    let invariants = cc.check_invariants();
    drop(areas);
    check!(
        busy == 1,
        "{busy} copies in flight while the copier held its slot, want 1"
    );
    check!(
        filled,
        "the allocation returned after {took_ns} ns, before the copier on core {other} filled the page it took back"
    );
    check!(
        waits == waits0 + 1,
        "copy waits moved {waits0} -> {waits}, want +1"
    );
    check!(in_flight == 0, "{in_flight} copies still in flight");
    check!(!held, "the copy taken back in flight is still retrievable");
    invariants.map_err(|e| format!("cleancache: {e}"))?;
    log::info!(
        "gcma.waits_for_copy_in_flight: the whole-area allocation took {} us beside a copy held {} us on core {other}",
        took_ns / 1000,
        HELD_NS.load(Ordering::Relaxed) / 1000
    );
    Ok(())
}
