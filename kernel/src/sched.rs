//! Tasks: a preemptive, fixed-priority scheduler for one core.
//!
//! Rules:
//! - Each task has a priority (higher runs first) and its own stack. The
//!   boot context is task 0 ("main"); an idle task at priority 0 runs `wfi`
//!   when nothing else is ready.
//! - The highest-priority ready task runs. Tasks of equal priority share the
//!   CPU round robin in slices of [`SLICE_NS`].
//! - The EL1 physical timer is armed for the next event:
//!   the earliest sleeper's deadline, or the end of the current slice if
//!   another task of the running priority is ready (tickless otherwise).
//!   Its interrupt, which the boot code routes to [`on_timer_interrupt`]
//!   through the GIC, wakes sleepers whose deadline has passed and preempts
//!   the running task if a task of higher (or, at a slice end, equal)
//!   priority is ready.
//! - A task switch only happens with no [`IrqLock`](crate::sync::IrqLock)
//!   held (checked); since those locks mask IRQs, a preempted task never
//!   holds one.
//! - Wake-up latency (counter value when a sleeper runs again minus its
//!   deadline) is recorded by the `sched.wake_latency` probe.
//!
//! Switching: `__switch` saves callee-saved registers on the old stack; a
//! task preempted by the timer interrupt additionally has its full register
//! state in the TrapFrame the exception entry pushed on its stack, restored
//! when the task is switched back in and the handler returns.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::arch::context::{self, FRAME_X19, FRAME_X30, SWITCH_FRAME};
use crate::arch::cpu;
use crate::arch::exception::asynchronous::{
    local_irq_mask_save, local_irq_restore, local_irq_unmask,
};
use crate::arch::timer;
use crate::sync::{IrqLock, LOCKS_HELD};

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
    /// Saved stack pointer while switched out.
    sp: usize,
    stack: Option<Vec<u128>>,
    entry: Option<Box<dyn FnOnce() + Send>>,
    joiner: Option<TaskId>,
}

struct Scheduler {
    // Boxed: a switched-out task's saved SP is written through a pointer
    // into its Task, which must not move when the Vec grows.
    #[allow(clippy::vec_box)]
    tasks: Vec<Box<Task>>,
    current: TaskId,
    /// Counter value at which the running task's slice ends.
    slice_end: u64,
    need_resched: bool,
}

static SCHED: IrqLock<Scheduler> = IrqLock::new(Scheduler {
    tasks: Vec::new(),
    current: 0,
    slice_end: u64::MAX,
    need_resched: false,
});
static STARTED: AtomicBool = AtomicBool::new(false);

/// Starts scheduling: the caller becomes task 0 ("main", priority `prio`)
/// and an idle task is created. IRQs are unmasked on return; the timer
/// interrupt must already be routed to [`on_timer_interrupt`].
pub fn init(prio: u8) {
    {
        let mut s = SCHED.lock();
        s.tasks.push(Box::new(Task {
            prio,
            state: State::Running,
            sp: 0,
            stack: None,
            entry: None,
            joiner: None,
        }));
        s.current = 0;
    }
    spawn("idle", PRIO_IDLE, || {
        loop {
            cpu::wait_for_interrupt();
        }
    });
    STARTED.store(true, Ordering::Release);
    timer::disarm();
    local_irq_unmask();
}

/// Whether `init` ran.
pub fn started() -> bool {
    STARTED.load(Ordering::Acquire)
}

/// Creates a ready task running `f` at priority `prio` (> 0).
pub fn spawn(name: &'static str, prio: u8, f: impl FnOnce() + Send + 'static) -> TaskId {
    let mut stack: Vec<u128> = alloc::vec![0; STACK_SIZE / 16];
    let top = stack.as_mut_ptr() as usize + STACK_SIZE;
    let sp = top - SWITCH_FRAME;
    let mut s = SCHED.lock();
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
        sp,
        stack: Some(stack),
        entry: Some(Box::new(f)),
        joiner: None,
    }));
    if prio > s.tasks[s.current].prio {
        s.need_resched = true;
    }
    let now = timer::ticks();
    program_timer(&mut s, now);
    drop(s);
    log::debug!("sched: task {id} '{name}' spawned at priority {prio}");
    preempt_if_needed();
    id
}

/// First Rust code of a new task (from `__task_trampoline`).
#[unsafe(no_mangle)]
extern "C" fn task_start(id: u64) -> ! {
    let entry = SCHED.lock().tasks[id as usize].entry.take();
    local_irq_unmask();
    if let Some(f) = entry {
        f();
    }
    exit_current()
}

fn exit_current() -> ! {
    {
        let mut s = SCHED.lock();
        let cur = s.current;
        if let Some(j) = s.tasks[cur].joiner.take()
            && s.tasks[j].state == State::Blocked
        {
            s.tasks[j].state = State::Ready;
        }
    }
    switch_away(State::Finished);
    unreachable!("a finished task was scheduled again");
}

/// The running task's id.
pub fn current() -> TaskId {
    SCHED.lock().current
}

/// Blocks until task `id` has finished, then frees its stack.
pub fn join(id: TaskId) {
    // IRQs stay masked from the check to the switch: otherwise the task
    // could finish in between (seeing this one not yet Blocked, so not
    // waking it) and this task would block forever (a lost wake-up).
    let saved = local_irq_mask_save();
    loop {
        {
            let mut s = SCHED.lock();
            let cur = s.current;
            let Some(t) = s.tasks.get_mut(id) else { break };
            if t.state == State::Finished {
                t.stack = None;
                break;
            }
            t.joiner = Some(cur);
        }
        switch_away(State::Blocked);
    }
    local_irq_restore(saved);
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

/// Picks the next task: the highest-priority ready one, round robin after
/// `current` among equals. The current task competes if it is still ready.
fn pick(s: &Scheduler) -> TaskId {
    let n = s.tasks.len();
    let mut best: Option<(u8, TaskId)> = None;
    for k in 1..=n {
        let i = (s.current + k) % n;
        let t = &s.tasks[i];
        let ready =
            matches!(t.state, State::Ready) || (i == s.current && t.state == State::Running);
        if ready && best.is_none_or(|(p, _)| t.prio > p) {
            best = Some((t.prio, i));
        }
    }
    best.map(|(_, i)| i).unwrap_or(s.current)
}

/// Arms the timer for the next event after `now`.
fn program_timer(s: &mut Scheduler, now: u64) {
    let mut next = u64::MAX;
    for t in &s.tasks {
        if let State::Sleeping { deadline } = t.state {
            next = next.min(deadline);
        }
    }
    let cur_prio = s.tasks[s.current].prio;
    let contended = s.tasks.iter().enumerate().any(|(i, t)| {
        i != s.current && t.state == State::Ready && t.prio == cur_prio && cur_prio > PRIO_IDLE
    });
    if contended {
        if s.slice_end == u64::MAX || s.slice_end <= now {
            s.slice_end = now + timer::ns_to_ticks(SLICE_NS);
        }
        next = next.min(s.slice_end);
    } else {
        s.slice_end = u64::MAX;
    }
    if next == u64::MAX {
        timer::disarm();
    } else {
        timer::arm(next);
    }
}

/// Moves the running task to `state` and runs the next task; returns when
/// this task is scheduled again.
fn switch_away(state: State) {
    assert!(
        STARTED.load(Ordering::Acquire),
        "scheduler used before sched::init"
    );
    let saved = local_irq_mask_save();
    assert_eq!(
        LOCKS_HELD.load(Ordering::Relaxed),
        0,
        "task switch while holding a lock"
    );
    let switch = {
        let mut s = SCHED.lock();
        let cur = s.current;
        s.tasks[cur].state = match state {
            State::Running => State::Ready,
            other => other,
        };
        s.need_resched = false;
        let next = pick(&s);
        let now = timer::ticks();
        if next == cur {
            s.tasks[cur].state = State::Running;
            program_timer(&mut s, now);
            None
        } else {
            s.current = next;
            s.tasks[next].state = State::Running;
            s.slice_end = u64::MAX;
            program_timer(&mut s, now);
            let from = &mut s.tasks[cur].sp as *mut usize;
            Some((from, s.tasks[next].sp))
        }
    };
    if let Some((from, to)) = switch {
        // SAFETY: IRQs masked, no lock held; `from` is in the old task's
        // boxed Task (never removed, so it outlives the switch); `to` is a
        // SP saved by __switch or a fresh initial frame.
        unsafe { context::__switch(from, to) };
    }
    local_irq_restore(saved);
}

/// Called at the end of interrupt handling: switches if a more urgent task
/// became ready.
pub fn preempt_if_needed() {
    if !STARTED.load(Ordering::Acquire) {
        return;
    }
    let needed = {
        let s = SCHED.lock();
        s.need_resched
    };
    if needed && LOCKS_HELD.load(Ordering::Relaxed) == 0 {
        switch_away(State::Running);
    }
}

/// The timer interrupt's handler: wakes sleepers, ends slices, re-arms.
pub fn on_timer_interrupt() {
    let now = timer::ticks();
    let mut s = SCHED.lock();
    let cur = s.current;
    let cur_prio = s.tasks[cur].prio;
    let mut resched = false;
    for t in s.tasks.iter_mut() {
        if let State::Sleeping { deadline } = t.state
            && deadline <= now
        {
            t.state = State::Ready;
            if t.prio > cur_prio {
                resched = true;
            }
        }
    }
    if s.slice_end <= now {
        resched = true;
        s.slice_end = u64::MAX;
    }
    if s.tasks[cur].state != State::Running {
        resched = true;
    }
    s.need_resched |= resched;
    program_timer(&mut s, now);
}
