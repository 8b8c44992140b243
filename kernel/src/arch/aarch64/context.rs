//! Task context switch: callee-saved registers on the task's own stack.
//!
//! `__switch(from, to)` pushes x19..x30 and d8..d15 (everything the AAPCS64
//! says a call preserves) on the current stack, stores SP into `*from`,
//! loads SP from `to` and pops the same frame from there. Everything else
//! is either caller-saved (the compiler already spilled what it needs) or,
//! for a task preempted by an interrupt, in the TrapFrame below this frame.
//!
//! A new task's stack starts with a frame whose x30 is `__task_trampoline`
//! and x19 the argument for `task_start`, so the first switch into it
//! "returns" into the trampoline.

use core::arch::global_asm;

/// Size of the frame `__switch` keeps on a switched-out stack.
pub const SWITCH_FRAME: usize = 160;
/// Offsets (in u64 words) of x19 and x30 in that frame.
pub const FRAME_X19: usize = 0;
pub const FRAME_X30: usize = 11;

unsafe extern "C" {
    /// Saves the current context, stores its SP into `*from`, resumes `to`.
    pub fn __switch(from: *mut usize, to: usize);
    /// First code a new task runs (from its initial switch frame).
    pub fn __task_trampoline();
}

global_asm!(
    r#"
.section .text
.global __switch
__switch:
    sub     sp, sp, #160
    stp     x19, x20, [sp, #0]
    stp     x21, x22, [sp, #16]
    stp     x23, x24, [sp, #32]
    stp     x25, x26, [sp, #48]
    stp     x27, x28, [sp, #64]
    stp     x29, x30, [sp, #80]
    stp     d8, d9, [sp, #96]
    stp     d10, d11, [sp, #112]
    stp     d12, d13, [sp, #128]
    stp     d14, d15, [sp, #144]
    mov     x9, sp
    str     x9, [x0]
    mov     sp, x1
    ldp     x19, x20, [sp, #0]
    ldp     x21, x22, [sp, #16]
    ldp     x23, x24, [sp, #32]
    ldp     x25, x26, [sp, #48]
    ldp     x27, x28, [sp, #64]
    ldp     x29, x30, [sp, #80]
    ldp     d8, d9, [sp, #96]
    ldp     d10, d11, [sp, #112]
    ldp     d12, d13, [sp, #128]
    ldp     d14, d15, [sp, #144]
    add     sp, sp, #160
    ret

.global __task_trampoline
__task_trampoline:
    mov     x0, x19
    mov     x29, xzr
    bl      task_start
1:  wfe
    b       1b
"#
);
