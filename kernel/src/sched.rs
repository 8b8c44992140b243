//! Tasks: a preemptive, fixed-priority scheduler with one run queue per
//! core.
//!
//! Rules:
//! - Each task has a priority (higher runs first), its own stack and the one
//!   core it runs on, fixed when it is created ([`spawn_on`]; [`spawn`]
//!   keeps the caller's core). Core 0's boot context is task 0 ("main").
//!   Every core in the scheduler has an idle task at priority 0 that waits
//!   in `wfi` when nothing else of that core is ready: core 0's is spawned
//!   by [`init`], a secondary core's is its own boot context, which joins
//!   at [`enter_secondary`].
//! - On each core the highest-priority ready task of that core runs. Tasks
//!   of equal priority share their core round robin in slices of
//!   [`SLICE_NS`].
//! - Each core's EL1 physical timer (banked per core) is armed for that
//!   core's next event: its earliest sleeper's deadline, or the end of the
//!   current slice if another task of the running priority is ready on it
//!   (tickless otherwise). Its interrupt runs [`on_timer_interrupt`] on that
//!   core, which wakes that core's sleepers and ends slices; the preemption
//!   point at the end of interrupt handling ([`preempt_if_needed`])
//!   switches if a task of higher (or, at a slice end, equal) priority is
//!   ready there.
//! - Cross-core wake-ups: a task made ready for another core (spawned
//!   there, or a joiner whose task ended here) gets that core's
//!   `need_resched` set if it outranks the task running there, and the core
//!   is sent the reschedule SGI (the kick the SMP code installs with
//!   [`set_kick`]); its handler, [`on_kick`], re-arms that core's timer
//!   (slices may be needed now) and the preemption point switches.
//! - One lock (an [`IrqLock`]: IRQs masked, then a ticket lock shared by
//!   every core) guards all of it. A task switch only happens with no
//!   `IrqLock` held on the switching core (checked); since those locks mask
//!   IRQs, a preempted task never holds one.
//! - No lost wake-up: a task becomes `Finished` and takes its joiner in one
//!   lock hold, so a joiner that looks later sees `Finished`. A joiner
//!   checks its task and blocks in two lock holds; a task that ends in
//!   between (on another core, or on the same one after a preemption)
//!   finds the joiner not yet `Blocked` and sets its `wake_pending`
//!   instead, which the switch to `Blocked` consumes (the joiner goes on
//!   running and checks again).
//! - Stacks: a task's stack is freed by the core it ran on, after that core
//!   switched away from it (`finish_switch`, run by the next task), since
//!   `__switch` writes the finished task's last frame onto it; never by
//!   another core, and never by `join`.
//! - Wake-up latency (counter value when a sleeper runs again minus its
//!   deadline) is recorded by the `sched.wake_latency` probe.
//!
//! Switching: `__switch` saves callee-saved registers on the old stack; a
//! task preempted by the timer interrupt additionally has its full register
//! state in the TrapFrame the exception entry pushed on its stack, restored
//! when the task is switched back in and the handler returns. A task only
//! ever runs on its own core, so the core that switches a task out is the
//! only one that can switch it back in: its saved stack pointer is complete
//! before anyone reads it.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use spin::Once;

use crate::arch::context::{self, FRAME_X19, FRAME_X30, SWITCH_FRAME};
use crate::arch::cpu::{self, MAX_CPUS};
use crate::arch::exception::asynchronous::{
    local_irq_mask_save, local_irq_restore, local_irq_unmask,
};
use crate::arch::timer;
use crate::sync::{IrqLock, locks_held};

/// Round-robin slice between tasks of equal priority.
pub const SLICE_NS: u64 = 2_000_000;
/// Stack size of a spawned task.
pub const STACK_SIZE: usize = 128 * 1024;

pub type TaskId = usize;

/// Priority of the idle task; every other task must be above it.
pub const PRIO_IDLE: u8 = 0;

probe::probe!(pub WAKE_LATENCY = "sched.wake_latency");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Ready,
    Running,
    Sleeping { deadline: u64 },
    Blocked,
    Finished,
}

struct Task {
    prio: u8,
    state: State,
    /// The core it runs on.
    core: usize,
    /// Saved stack pointer while switched out.
    sp: usize,
    stack: Option<Vec<u128>>,
    entry: Option<Box<dyn FnOnce() + Send>>,
    joiner: Option<TaskId>,
    /// A wake-up that came before the task blocked (see the rules).
    wake_pending: bool,
}

/// One core's part of the scheduler.
#[derive(Clone, Copy)]
struct CoreRq {
    /// In the scheduler (its idle task exists).
    online: bool,
    current: TaskId,
    /// Counter value at which the running task's slice ends.
    slice_end: u64,
    need_resched: bool,
    /// The task this core switched away from last, until the next task
    /// ran `finish_switch`.
    prev: Option<TaskId>,
}

const CORE_OFF: CoreRq = CoreRq {
    online: false,
    current: 0,
    slice_end: u64::MAX,
    need_resched: false,
    prev: None,
};

struct Scheduler {
    // Boxed: a switched-out task's saved SP is written through a pointer
    // into its Task, which must not move when the Vec grows.
    #[allow(clippy::vec_box)]
    tasks: Vec<Box<Task>>,
    cores: [CoreRq; MAX_CPUS],
}

static SCHED: IrqLock<Scheduler> = IrqLock::new(Scheduler {
    tasks: Vec::new(),
    cores: [CORE_OFF; MAX_CPUS],
});
static STARTED: AtomicBool = AtomicBool::new(false);
/// Cores in the scheduler (core 0 counts once [`init`] ran).
static ONLINE: AtomicUsize = AtomicUsize::new(0);
/// Wake-ups that came before their task blocked (`wake_pending` consumed).
static EARLY_WAKEUPS: AtomicU64 = AtomicU64::new(0);
/// Sends the reschedule SGI to a core (installed by the SMP code).
static KICK: Once<fn(usize)> = Once::new();

/// Starts scheduling on core 0: the caller becomes task 0 ("main",
/// priority `prio`) and core 0's idle task is created. IRQs are unmasked on
/// return; the timer interrupt must already be routed to
/// [`on_timer_interrupt`].
pub fn init(prio: u8) {
    adopt_caller(prio);
    spawn("idle", PRIO_IDLE, || {
        loop {
            cpu::wait_for_interrupt();
        }
    });
    STARTED.store(true, Ordering::Release);
    timer::disarm();
    local_irq_unmask();
}

/// Makes the caller's context the running task of this core, at `prio`,
/// and puts the core in the scheduler.
fn adopt_caller(prio: u8) {
    let core = cpu::index();
    {
        let mut s = SCHED.lock();
        let id = s.tasks.len();
        s.tasks.push(Box::new(Task {
            prio,
            state: State::Running,
            core,
            sp: 0,
            stack: None,
            entry: None,
            joiner: None,
            wake_pending: false,
        }));
        s.cores[core] = CoreRq {
            online: true,
            current: id,
            ..CORE_OFF
        };
    }
    ONLINE.fetch_add(1, Ordering::Release);
}

/// Installs the function that sends a core the reschedule SGI (once, by the
/// SMP code, before any secondary core joins).
pub fn set_kick(kick: fn(usize)) {
    KICK.call_once(|| kick);
}

/// On a secondary core, IRQs masked, its timer interrupt and the
/// reschedule SGI enabled and routed to [`on_timer_interrupt`] and
/// [`on_kick`]: the caller becomes this core's idle task, which runs
/// `idle_step` (it must wait for an interrupt, then take it) for ever.
pub fn enter_secondary(idle_step: fn()) -> ! {
    timer::disarm();
    adopt_caller(PRIO_IDLE);
    loop {
        idle_step();
    }
}

/// Whether `init` ran.
pub fn started() -> bool {
    STARTED.load(Ordering::Acquire)
}

/// Cores in the scheduler.
pub fn cores_online() -> usize {
    ONLINE.load(Ordering::Acquire)
}

/// Wake-ups since boot that found their task not yet blocked (the joiner
/// went on running: see the rules).
pub fn early_wakeups() -> u64 {
    EARLY_WAKEUPS.load(Ordering::Relaxed)
}

/// Whether core `core` is in the scheduler.
pub fn core_online(core: usize) -> bool {
    core < MAX_CPUS && SCHED.lock().cores[core].online
}

/// Creates a ready task running `f` at priority `prio` (> 0) on the
/// caller's core.
pub fn spawn(name: &'static str, prio: u8, f: impl FnOnce() + Send + 'static) -> TaskId {
    spawn_on(cpu::index(), name, prio, f)
}

/// Creates a ready task running `f` at priority `prio` (> 0) on core
/// `core`; a core not in the scheduler gets the task on the caller's core
/// instead, with a warning.
pub fn spawn_on(
    core: usize,
    name: &'static str,
    prio: u8,
    f: impl FnOnce() + Send + 'static,
) -> TaskId {
    let here = cpu::index();
    let mut stack: Vec<u128> = alloc::vec![0; STACK_SIZE / 16];
    let top = stack.as_mut_ptr() as usize + STACK_SIZE;
    let sp = top - SWITCH_FRAME;
    let mut s = SCHED.lock();
    let core = if core < MAX_CPUS && s.cores[core].online {
        core
    } else {
        log::warn!("sched: core {core} is not in the scheduler; task '{name}' runs on core {here}");
        here
    };
    let id = s.tasks.len();
    // SAFETY: the initial switch frame lies inside the new stack (the top
    // SWITCH_FRAME bytes, 16-byte aligned); __switch pops it on first run,
    // "returning" into the trampoline with x19 = task id.
    unsafe {
        let frame = sp as *mut u64;
        core::ptr::write_bytes(frame, 0, SWITCH_FRAME / 8);
        frame.add(FRAME_X19).write(id as u64);
        frame
            .add(FRAME_X30)
            .write(context::__task_trampoline as *const () as u64);
    }
    s.tasks.push(Box::new(Task {
        prio,
        state: State::Ready,
        core,
        sp,
        stack: Some(stack),
        entry: Some(Box::new(f)),
        joiner: None,
        wake_pending: false,
    }));
    let kick = made_ready(&mut s, id, timer::ticks());
    drop(s);
    log::debug!("sched: task {id} '{name}' spawned at priority {prio} on core {core}");
    send_kick(kick);
    preempt_if_needed();
    id
}

/// Task `id` just became ready: flags its core for a switch if it outranks
/// the running task. Returns the core to kick if that is another core; on
/// this core, re-arms the timer (a slice may be needed now).
fn made_ready(s: &mut Scheduler, id: TaskId, now: u64) -> Option<usize> {
    let core = s.tasks[id].core;
    let running = s.cores[core].current;
    if s.tasks[id].prio > s.tasks[running].prio {
        s.cores[core].need_resched = true;
    }
    if core == cpu::index() {
        program_timer(s, core, now);
        None
    } else {
        Some(core)
    }
}

fn send_kick(core: Option<usize>) {
    if let (Some(c), Some(kick)) = (core, KICK.get()) {
        kick(c);
    }
}

/// First Rust code of a new task (from `__task_trampoline`).
#[unsafe(no_mangle)]
extern "C" fn task_start(id: u64) -> ! {
    finish_switch();
    let entry = SCHED.lock().tasks[id as usize].entry.take();
    local_irq_unmask();
    if let Some(f) = entry {
        f();
    }
    exit_current()
}

fn exit_current() -> ! {
    // Becoming Finished and waking the joiner are one lock hold (in
    // switch_away): a joiner on another core either sees Finished or is
    // woken.
    switch_away(State::Finished);
    unreachable!("a finished task was scheduled again");
}

/// The running task `cur` ends: wakes its joiner, or, if the joiner has not
/// blocked yet, leaves it a pending wake-up. Returns the core to kick.
fn wake_joiner(s: &mut Scheduler, cur: TaskId, now: u64) -> Option<usize> {
    let j = s.tasks[cur].joiner.take()?;
    if s.tasks[j].state == State::Blocked {
        s.tasks[j].state = State::Ready;
        made_ready(s, j, now)
    } else {
        s.tasks[j].wake_pending = true;
        None
    }
}

/// The running task's id (on this core).
pub fn current() -> TaskId {
    SCHED.lock().cores[cpu::index()].current
}

/// The core task `id` runs on (None: no such task).
pub fn core_of(id: TaskId) -> Option<usize> {
    SCHED.lock().tasks.get(id).map(|t| t.core)
}

/// Blocks until task `id` (on any core) has finished.
pub fn join(id: TaskId) {
    loop {
        {
            let mut s = SCHED.lock();
            let cur = s.cores[cpu::index()].current;
            let Some(t) = s.tasks.get_mut(id) else { break };
            if t.state == State::Finished {
                break;
            }
            t.joiner = Some(cur);
        }
        switch_away(State::Blocked);
    }
}

/// Sleeps until the counter reaches `deadline` (ticks). Returns at once if
/// it has passed. Records the wake-up latency.
pub fn sleep_until(deadline: u64) {
    if timer::ticks() >= deadline {
        return;
    }
    switch_away(State::Sleeping { deadline });
    let now = timer::ticks();
    WAKE_LATENCY.record_ticks(now.saturating_sub(deadline));
}

/// Sleeps for at least `ns` nanoseconds.
pub fn sleep_ns(ns: u64) {
    sleep_until(timer::ticks() + timer::ns_to_ticks(ns));
}

/// Lets another ready task of the same or a higher priority run, as Linux's
/// `cond_resched()` (no-op before [`init`] or with nobody to run).
pub fn yield_now() {
    if STARTED.load(Ordering::Acquire) {
        switch_away(State::Running);
    }
}

/// Sleeps for `ns` nanoseconds, or spins on the counter before [`init`].
pub fn sleep_or_spin_ns(ns: u64) {
    if STARTED.load(Ordering::Acquire) {
        sleep_ns(ns);
    } else {
        let deadline = timer::ticks() + timer::ns_to_ticks(ns);
        while timer::ticks() < deadline {
            core::hint::spin_loop();
        }
    }
}

/// Picks the next task of `core`: the highest-priority ready one, round
/// robin after the current one among equals. The current task competes if
/// it is still running.
fn pick(s: &Scheduler, core: usize) -> TaskId {
    let n = s.tasks.len();
    let current = s.cores[core].current;
    let mut best: Option<(u8, TaskId)> = None;
    for k in 1..=n {
        let i = (current + k) % n;
        let t = &s.tasks[i];
        if t.core != core {
            continue;
        }
        let ready = matches!(t.state, State::Ready) || (i == current && t.state == State::Running);
        if ready && best.is_none_or(|(p, _)| t.prio > p) {
            best = Some((t.prio, i));
        }
    }
    best.map(|(_, i)| i).unwrap_or(current)
}

/// Arms this core's timer for its next event after `now`.
fn program_timer(s: &mut Scheduler, core: usize, now: u64) {
    debug_assert_eq!(core, cpu::index(), "a core arms only its own timer");
    let mut next = u64::MAX;
    for t in s.tasks.iter().filter(|t| t.core == core) {
        if let State::Sleeping { deadline } = t.state {
            next = next.min(deadline);
        }
    }
    let current = s.cores[core].current;
    let cur_prio = s.tasks[current].prio;
    let contended = s.tasks.iter().enumerate().any(|(i, t)| {
        t.core == core
            && i != current
            && t.state == State::Ready
            && t.prio == cur_prio
            && cur_prio > PRIO_IDLE
    });
    let rq = &mut s.cores[core];
    if contended {
        if rq.slice_end == u64::MAX || rq.slice_end <= now {
            rq.slice_end = now + timer::ns_to_ticks(SLICE_NS);
        }
        next = next.min(rq.slice_end);
    } else {
        rq.slice_end = u64::MAX;
    }
    if next == u64::MAX {
        timer::disarm();
    } else {
        timer::arm(next);
    }
}

/// Moves the running task to `state` and runs the next task of this core;
/// returns when this task is scheduled again.
fn switch_away(state: State) {
    assert!(
        STARTED.load(Ordering::Acquire),
        "scheduler used before sched::init"
    );
    let saved = local_irq_mask_save();
    assert_eq!(locks_held(), 0, "task switch while holding a lock");
    let core = cpu::index();
    let mut kick = None;
    let switch = {
        let mut s = SCHED.lock();
        let cur = s.cores[core].current;
        let now = timer::ticks();
        if state == State::Finished {
            kick = wake_joiner(&mut s, cur, now);
        }
        if state == State::Blocked && s.tasks[cur].wake_pending {
            // Woken between its check and this switch: keep running.
            s.tasks[cur].wake_pending = false;
            EARLY_WAKEUPS.fetch_add(1, Ordering::Relaxed);
            None
        } else {
            s.tasks[cur].state = match state {
                State::Running => State::Ready,
                other => other,
            };
            s.cores[core].need_resched = false;
            let next = pick(&s, core);
            if next == cur {
                s.tasks[cur].state = State::Running;
                program_timer(&mut s, core, now);
                None
            } else {
                let rq = &mut s.cores[core];
                rq.current = next;
                rq.prev = Some(cur);
                rq.slice_end = u64::MAX;
                s.tasks[next].state = State::Running;
                program_timer(&mut s, core, now);
                let from = &mut s.tasks[cur].sp as *mut usize;
                Some((from, s.tasks[next].sp))
            }
        }
    };
    send_kick(kick);
    if let Some((from, to)) = switch {
        // SAFETY: IRQs masked, no lock held; `from` is in the old task's
        // boxed Task (never removed, so it outlives the switch); `to` is a
        // SP saved by __switch on this core (the task's only core) or a
        // fresh initial frame.
        unsafe { context::__switch(from, to) };
        finish_switch();
    }
    local_irq_restore(saved);
}

/// Run by the task a core switched to: frees the stack of the task it
/// switched away from if that one has finished (nothing runs on it now).
fn finish_switch() {
    let stack = {
        let mut s = SCHED.lock();
        let core = cpu::index();
        match s.cores[core].prev.take() {
            Some(p) if s.tasks[p].state == State::Finished => s.tasks[p].stack.take(),
            _ => None,
        }
    };
    drop(stack);
}

/// Called at the end of interrupt handling: switches if a more urgent task
/// became ready on this core.
pub fn preempt_if_needed() {
    if !STARTED.load(Ordering::Acquire) {
        return;
    }
    let needed = SCHED.lock().cores[cpu::index()].need_resched;
    if needed && locks_held() == 0 {
        switch_away(State::Running);
    }
}

/// The reschedule SGI's handler: another core made a task of this core
/// ready; re-arms this core's timer and flags a switch if one is due.
pub fn on_kick() {
    let now = timer::ticks();
    let core = cpu::index();
    let mut s = SCHED.lock();
    if !s.cores[core].online {
        return;
    }
    if pick(&s, core) != s.cores[core].current {
        s.cores[core].need_resched = true;
    }
    program_timer(&mut s, core, now);
}

/// The timer interrupt's handler: wakes this core's sleepers, ends slices,
/// re-arms.
pub fn on_timer_interrupt() {
    let now = timer::ticks();
    let core = cpu::index();
    let mut s = SCHED.lock();
    if !s.cores[core].online {
        return;
    }
    let cur = s.cores[core].current;
    let cur_prio = s.tasks[cur].prio;
    let mut resched = false;
    for t in s.tasks.iter_mut().filter(|t| t.core == core) {
        if let State::Sleeping { deadline } = t.state
            && deadline <= now
        {
            t.state = State::Ready;
            if t.prio > cur_prio {
                resched = true;
            }
        }
    }
    if s.cores[core].slice_end <= now {
        resched = true;
        s.cores[core].slice_end = u64::MAX;
    }
    if s.tasks[cur].state != State::Running {
        resched = true;
    }
    s.cores[core].need_resched |= resched;
    program_timer(&mut s, core, now);
}
