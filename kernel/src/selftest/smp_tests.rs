//! Self-tests of the secondary cores (arch::smp): every core the device tree
//! lists came up, ran its per-core self-test once and reported, and the
//! counters add up exactly.

use alloc::format;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use aarch64_cpu::registers::{Readable, VBAR_EL1};

use super::TestResult;
use crate::BootInfo;
use crate::arch::smp::{self, CHECKINS, Outcome};
use crate::sched;

/// Every core of `/cpus` is online: the boot core, and each other one up,
/// with the MPIDR the tree gives, MMU and caches on, the kernel's vectors,
/// running on its own stack (no two alike), one timer interrupt taken
/// through its own GIC CPU interface, its counter at exactly 1, no
/// unexpected interrupt;
/// the shared counter equals the number of secondary cores, and equals the
/// sum of the per-core counters.
pub fn every_core_reported(_: &BootInfo) -> TestResult {
    let Some((reports, listed)) = smp::reports() else {
        return Err("smp::start_secondaries never ran".into());
    };
    check!(
        *listed >= 2,
        "the device tree lists {listed} core(s): boot with several (QEMU -smp 2 or more)"
    );
    check!(smp::boot_slot().is_some(), "the boot core is not in /cpus");
    let mut boot = 0;
    let mut off = 0;
    let mut secondaries = 0u32;
    let mut sum = 0u32;
    let vbar = VBAR_EL1.get();
    let mut stacks: Vec<core::ops::Range<u64>> = Vec::new();
    for r in reports.iter().flatten() {
        match r.outcome {
            Outcome::Boot => boot += 1,
            Outcome::Online => {
                secondaries += 1;
                check!(
                    r.mpidr_seen == r.mpidr,
                    "{}: read MPIDR {:?}, the tree says {:?}",
                    r.name,
                    r.mpidr_seen,
                    r.mpidr
                );
                check!(
                    r.timer_irqs == 1,
                    "{}: {} timer interrupts, want exactly 1",
                    r.name,
                    r.timer_irqs
                );
                check!(
                    r.unexpected_irqs == 0,
                    "{}: {} unexpected interrupts",
                    r.name,
                    r.unexpected_irqs
                );
                check!(
                    r.irq_ns >= smp::SELFTEST_TIMER_NS,
                    "{}: timer interrupt after {} ns, before its deadline of {} ns",
                    r.name,
                    r.irq_ns,
                    smp::SELFTEST_TIMER_NS
                );
                check!(r.count == 1, "{}: counter {}, want 1", r.name, r.count);
                check!(r.mmu_on, "{}: ran with the MMU or caches off", r.name);
                check!(
                    r.vbar == vbar,
                    "{}: VBAR_EL1 {:#x}, the kernel's vectors are at {vbar:#x}",
                    r.name,
                    r.vbar
                );
                let stack = r.stack_start..r.stack_end;
                check!(
                    stack.contains(&r.sp),
                    "{}: ran on {:#x}, outside its stack {stack:#x?}",
                    r.name,
                    r.sp
                );
                check!(
                    stacks.iter().all(|s| !s.contains(&r.sp)),
                    "{}: its stack address {:#x} is another core's",
                    r.name,
                    r.sp
                );
                stacks.push(stack);
                sum += r.count;
            }
            // Left off on purpose (smp=N in the boot arguments).
            Outcome::Off => off += 1,
            other => return Err(format!("{}: {other:?}", r.name)),
        }
    }
    check!(boot == 1, "{boot} boot cores in the report, want 1");
    check!(
        boot + secondaries as usize + off == *listed,
        "{} of {listed} cores online ({off} left off by smp=)",
        boot + secondaries as usize
    );
    let checkins = CHECKINS.load(Ordering::Relaxed);
    check!(
        checkins == secondaries && sum == secondaries,
        "shared counter {checkins}, per-core sum {sum}, secondary cores {secondaries}: must be equal"
    );
    Ok(())
}

/// Idle secondary cores stay idle: over 200 ms their counters do not move
/// (no timer interrupt, no unexpected interrupt, counter still 1) and their
/// `wfi` loop wakes at most a few times: a loop that spun would show
/// thousands of wake-ups, and would cost a host thread under QEMU.
pub fn idle_cores_stay_idle(_: &BootInfo) -> TestResult {
    let Some((reports, _)) = smp::reports() else {
        return Err("smp::start_secondaries never ran".into());
    };
    let online: Vec<usize> = reports
        .iter()
        .enumerate()
        .filter(|(_, r)| r.is_some_and(|r| r.outcome == Outcome::Online))
        .map(|(i, _)| i)
        .collect();
    check!(!online.is_empty(), "no secondary core online");
    let before: Vec<_> = online.iter().filter_map(|&i| smp::live(i)).collect();
    sched::sleep_ns(200_000_000);
    for (&i, b) in online.iter().zip(&before) {
        let a = smp::live(i).ok_or("slot vanished")?;
        let name = reports[i].map_or("?", |r| r.name);
        // Tickless: a core with no task of its own arms no timer, so its
        // timer count does not move (earlier tests may have run tasks
        // there, which moved it then).
        check!(
            a.timer_irqs == b.timer_irqs && a.unexpected_irqs == 0 && a.count == 1,
            "{name}: timer interrupts {} -> {}, unexpected {}, counter {}: want no change, 0, 1",
            b.timer_irqs,
            a.timer_irqs,
            a.unexpected_irqs,
            a.count
        );
        let woke = a.idle_wakeups - b.idle_wakeups;
        check!(
            woke <= MAX_IDLE_WAKEUPS,
            "{name}: idle loop woke {woke} times in 200 ms (at most {MAX_IDLE_WAKEUPS}): not low-power"
        );
    }
    Ok(())
}

/// Wake-ups an idle core may show in 200 ms (nothing should wake it).
const MAX_IDLE_WAKEUPS: u64 = 4;
