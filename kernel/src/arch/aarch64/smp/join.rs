//! Secondary cores joining the scheduler: core 0 asks every online core
//! to join once `sched::init` ran ([`join_scheduler`]); each core's boot
//! context becomes its idle task ([`idle_step`] in a loop), and tasks
//! reach it by the reschedule SGI ([`RESCHED_SGI`], `kick`).
//!
//! Rules: a core joins from its idle loop (smp.rs `idle`), after its
//! self-test, when it finds `join_sched` set; it sets `in_sched` first, so
//! its interrupts go to the scheduler from then on. Core 0 gives up on a
//! core that has not joined within `UP_TIMEOUT_NS` and says so; that core
//! gets no task (`sched::spawn_on` falls back to the caller's core).

use core::sync::atomic::Ordering;

use aarch64_cpu::asm::barrier;

use super::{
    Outcome, RESCHED_SGI, SECONDARY_GIC, SLOTS, UP_TIMEOUT_NS, WORK_SGI, reports, this_slot, work,
};
use crate::arch::exception::asynchronous::{local_irq_mask_save, local_irq_unmask};
use crate::arch::{cpu, timer};
use crate::irq;

/// One round of a secondary core's idle task in the scheduler: with IRQs
/// masked, run work handed over (smp/work.rs, which wants them masked) and
/// wait for an interrupt (`wfi` wakes on a pending one even while masked,
/// so none is missed between the check and the wait); then unmask, and the
/// interrupt is taken (its handler may switch to a task that became
/// ready).
pub(super) fn idle_step() {
    let me = this_slot();
    let _ = local_irq_mask_save();
    work::run_handed_over(me);
    cpu::wait_for_interrupt();
    me.idle_wakeups.fetch_add(1, Ordering::Relaxed);
    local_irq_unmask();
    barrier::isb(barrier::SY);
}

/// Brings every online secondary core into the scheduler (core 0, once,
/// after `sched::init` and [`start_secondaries`]): installs the reschedule
/// kick and core 0's handler for it, asks each core to join and waits up
/// to [`UP_TIMEOUT_NS`] for it to; a core that does not join is reported
/// and its tasks stay off it (`sched::spawn_on` falls back). Prints which
/// cores run tasks, and `@sched cores=N`.
pub fn join_scheduler() {
    if !crate::sched::started() {
        return;
    }
    let online: alloc::vec::Vec<usize> = match reports() {
        Some((reports, _)) => reports
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_some_and(|r| r.outcome == Outcome::Online))
            .map(|(i, _)| i)
            .collect(),
        None => alloc::vec::Vec::new(),
    };
    if let Some(gic) = SECONDARY_GIC.get().filter(|_| !online.is_empty()) {
        SLOTS[0]
            .gic_target
            .store(gic.this_core_target(), Ordering::Relaxed);
        crate::sched::set_kick(kick);
        irq::register(RESCHED_SGI, crate::sched::on_kick);
        let mut targets = 0u8;
        for &i in &online {
            SLOTS[i].join_sched.store(true, Ordering::Release);
            targets |= SLOTS[i].gic_target.load(Ordering::Relaxed);
        }
        gic.send_sgi(WORK_SGI, targets);
        let deadline = timer::ticks() + timer::ns_to_ticks(UP_TIMEOUT_NS);
        for &i in &online {
            while !crate::sched::core_online(i) && timer::ticks() < deadline {
                core::hint::spin_loop();
            }
            if !crate::sched::core_online(i) {
                crate::println!(
                    "sched: core {i} did not join the scheduler within {} ms; no task runs there",
                    UP_TIMEOUT_NS / 1_000_000
                );
            }
        }
    }
    let cores = crate::sched::cores_online();
    crate::println!(
        "sched: {cores} core(s) run tasks: the camera on core 0, background load on {}",
        if cores > 1 {
            "the others"
        } else {
            "core 0 too"
        }
    );
    if cores > 1 {
        crate::println!(
            "@sched cores={cores} placement=camera:0,load:1..{}",
            cores - 1
        );
    } else {
        crate::println!("@sched cores=1 placement=camera:0,load:0");
    }
}

/// Sends core `core` the reschedule SGI (`sched`'s kick).
fn kick(core: usize) {
    let (Some(gic), Some(slot)) = (SECONDARY_GIC.get(), SLOTS.get(core)) else {
        return;
    };
    let target = slot.gic_target.load(Ordering::Relaxed);
    if target != 0 {
        gic.send_sgi(RESCHED_SGI, target);
    }
}
