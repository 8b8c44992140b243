//! Exception vectors and the handler that reports what went wrong.
//!
//! Every vector saves the interrupted context into a [`TrapFrame`] on the
//! current stack and calls [`exception_dispatch`]. IRQs taken at EL1 go to the
//! registered interrupt handler (if any) and return: core 0's, or on a
//! secondary core the one `arch::smp` registered (the table is shared, each
//! core taking exceptions on its own stack); every other exception
//! is unexpected in this kernel (there is no user space and no lazy
//! mapping), so it is reported on the console (kind, ESR with its decoded
//! class, FAR, ELR, SPSR and all registers) and the kernel stops with
//! [`ExitStatus::FatalException`].

pub mod asynchronous;

use core::arch::global_asm;
use core::fmt;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use aarch64_cpu::registers::{MPIDR_EL1, Readable};

use crate::exit::{self, ExitStatus};

/// The register state saved by the vector stubs (layout shared with the
/// asm). FP/SIMD registers are saved too: Rust code in handlers uses them
/// (memcpy, formatting), and an interrupted task must get them back intact.
#[repr(C)]
pub struct TrapFrame {
    pub x: [u64; 31],
    pub elr: u64,
    pub spsr: u64,
    pub esr: u64,
    pub far: u64,
    _pad: u64,
    pub q: [u128; 32],
    pub fpsr: u64,
    pub fpcr: u64,
}

const _: () = assert!(core::mem::size_of::<TrapFrame>() == 816);

const KIND_NAMES: [&str; 16] = [
    "synchronous (EL1, SP_EL0)",
    "IRQ (EL1, SP_EL0)",
    "FIQ (EL1, SP_EL0)",
    "SError (EL1, SP_EL0)",
    "synchronous",
    "IRQ",
    "FIQ",
    "SError",
    "synchronous (lower EL, AArch64)",
    "IRQ (lower EL, AArch64)",
    "FIQ (lower EL, AArch64)",
    "SError (lower EL, AArch64)",
    "synchronous (lower EL, AArch32)",
    "IRQ (lower EL, AArch32)",
    "FIQ (lower EL, AArch32)",
    "SError (lower EL, AArch32)",
];

/// Vector index of an IRQ taken at EL1 using SP_EL1: the only expected one.
const KIND_IRQ_EL1H: u64 = 5;

/// Interrupt handler installed by the interrupt controller driver (0: none).
static IRQ_HANDLER: AtomicUsize = AtomicUsize::new(0);

/// Interrupt handler of the secondary cores (0: none), installed by
/// `arch::smp` before it starts one: they dispatch their own interrupts,
/// apart from core 0's handler table and scheduler.
static SECONDARY_IRQ_HANDLER: AtomicUsize = AtomicUsize::new(0);
/// MPIDR affinity of the core that installed the secondary handler (the
/// boot core, whose IRQs keep going to `IRQ_HANDLER`).
static BOOT_CORE_MPIDR: AtomicU64 = AtomicU64::new(0);

/// Installs the function called for every IRQ taken at EL1.
pub fn set_irq_handler(handler: fn()) {
    IRQ_HANDLER.store(handler as usize, Ordering::Release);
}

/// MPIDR_EL1's affinity fields (Aff3, Aff2, Aff1, Aff0), as a device tree's
/// `/cpus/cpu@N/reg` gives them.
pub fn mpidr_affinity() -> u64 {
    MPIDR_EL1.get() & 0xff_00ff_ffff
}

/// Installs the function called for every IRQ taken at EL1 on a core other
/// than the calling one (called once, on the boot core, before any other
/// core runs; the Release store publishes the boot core's MPIDR with it).
pub fn set_secondary_irq_handler(handler: fn()) {
    BOOT_CORE_MPIDR.store(mpidr_affinity(), Ordering::Relaxed);
    SECONDARY_IRQ_HANDLER.store(handler as usize, Ordering::Release);
}

/// The handler for an IRQ on this core (0: none).
fn irq_handler() -> usize {
    let secondary = SECONDARY_IRQ_HANDLER.load(Ordering::Acquire);
    if secondary != 0 && mpidr_affinity() != BOOT_CORE_MPIDR.load(Ordering::Relaxed) {
        secondary
    } else {
        IRQ_HANDLER.load(Ordering::Acquire)
    }
}

/// Name of an exception class (ESR_EL1.EC).
pub fn exception_class_name(ec: u64) -> &'static str {
    match ec {
        0x00 => "unknown reason (undefined instruction)",
        0x01 => "trapped WFI/WFE",
        0x07 => "trapped FP/SIMD access",
        0x0e => "illegal execution state",
        0x15 => "SVC in AArch64",
        0x16 => "HVC in AArch64",
        0x17 => "SMC in AArch64",
        0x18 => "trapped MSR/MRS/system instruction",
        0x20 => "instruction abort from a lower EL",
        0x21 => "instruction abort (same EL)",
        0x22 => "PC alignment fault",
        0x24 => "data abort from a lower EL",
        0x25 => "data abort (same EL)",
        0x26 => "SP alignment fault",
        0x2f => "SError",
        0x30 | 0x31 => "breakpoint",
        0x32 | 0x33 => "software step",
        0x34 | 0x35 => "watchpoint",
        0x3c => "BRK instruction",
        _ => "other",
    }
}

impl fmt::Display for TrapFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ec = (self.esr >> 26) & 0x3f;
        writeln!(
            f,
            "  ESR_EL1 {:#010x}  EC {:#04x} {}  ISS {:#x}",
            self.esr,
            ec,
            exception_class_name(ec),
            self.esr & 0x1ff_ffff
        )?;
        writeln!(
            f,
            "  FAR_EL1 {:#018x}  ELR_EL1 {:#018x}  SPSR_EL1 {:#010x}",
            self.far, self.elr, self.spsr
        )?;
        for row in 0..8 {
            for col in 0..4 {
                let i = row * 4 + col;
                if i < 31 {
                    write!(f, "  x{:<2} {:#018x}", i, self.x[i])?;
                }
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// Called by the vector stubs with the saved frame and the vector index.
#[unsafe(no_mangle)]
extern "C" fn exception_dispatch(frame: &mut TrapFrame, kind: u64) {
    if kind == KIND_IRQ_EL1H {
        let handler = irq_handler();
        if handler != 0 {
            // SAFETY: the only non-zero values ever stored are `fn()`s cast
            // to usize by `set_irq_handler` and `set_secondary_irq_handler`,
            // so the transmute restores one.
            let handler: fn() = unsafe { core::mem::transmute(handler) };
            handler();
            return;
        }
    }
    let name = KIND_NAMES.get(kind as usize).copied().unwrap_or("?");
    crate::console::fatal_print(format_args!(
        "\n*** FATAL: unexpected {} exception\n{}",
        name, frame
    ));
    exit::exit(ExitStatus::FatalException);
}

// Vector table: 16 entries of 0x80 bytes, 2 KiB aligned. Each entry saves
// x0..x30 into an 816-byte TrapFrame and branches to the common path with
// its index in x1; the common path saves ELR/SPSR/ESR/FAR and q0..q31,
// FPSR, FPCR, calls exception_dispatch(frame, kind) and, if it returns (an
// IRQ that was handled, possibly after running other tasks), restores
// everything and returns with eret.
global_asm!(
    r#"
.macro VENTRY kind
.balign 0x80
    sub     sp, sp, #816
    stp     x0, x1, [sp, #0]
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    str     x30, [sp, #240]
    mov     x1, #\kind
    b       __exception_common
.endm

.section .text.vectors, "ax"
.balign 2048
.global __exception_vectors
__exception_vectors:
    VENTRY 0
    VENTRY 1
    VENTRY 2
    VENTRY 3
    VENTRY 4
    VENTRY 5
    VENTRY 6
    VENTRY 7
    VENTRY 8
    VENTRY 9
    VENTRY 10
    VENTRY 11
    VENTRY 12
    VENTRY 13
    VENTRY 14
    VENTRY 15

__exception_common:
    mrs     x2, elr_el1
    mrs     x3, spsr_el1
    stp     x2, x3, [sp, #248]
    mrs     x2, esr_el1
    mrs     x3, far_el1
    stp     x2, x3, [sp, #264]
    stp     q0, q1, [sp, #288]
    stp     q2, q3, [sp, #320]
    stp     q4, q5, [sp, #352]
    stp     q6, q7, [sp, #384]
    stp     q8, q9, [sp, #416]
    stp     q10, q11, [sp, #448]
    stp     q12, q13, [sp, #480]
    stp     q14, q15, [sp, #512]
    stp     q16, q17, [sp, #544]
    stp     q18, q19, [sp, #576]
    stp     q20, q21, [sp, #608]
    stp     q22, q23, [sp, #640]
    stp     q24, q25, [sp, #672]
    stp     q26, q27, [sp, #704]
    stp     q28, q29, [sp, #736]
    stp     q30, q31, [sp, #768]
    mrs     x2, fpsr
    mrs     x3, fpcr
    add     x4, sp, #800
    stp     x2, x3, [x4]
    mov     x0, sp
    bl      exception_dispatch
    add     x4, sp, #800
    ldp     x2, x3, [x4]
    msr     fpsr, x2
    msr     fpcr, x3
    ldp     q0, q1, [sp, #288]
    ldp     q2, q3, [sp, #320]
    ldp     q4, q5, [sp, #352]
    ldp     q6, q7, [sp, #384]
    ldp     q8, q9, [sp, #416]
    ldp     q10, q11, [sp, #448]
    ldp     q12, q13, [sp, #480]
    ldp     q14, q15, [sp, #512]
    ldp     q16, q17, [sp, #544]
    ldp     q18, q19, [sp, #576]
    ldp     q20, q21, [sp, #608]
    ldp     q22, q23, [sp, #640]
    ldp     q24, q25, [sp, #672]
    ldp     q26, q27, [sp, #704]
    ldp     q28, q29, [sp, #736]
    ldp     q30, q31, [sp, #768]
    ldp     x2, x3, [sp, #248]
    msr     elr_el1, x2
    msr     spsr_el1, x3
    ldp     x0, x1, [sp, #0]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    ldr     x30, [sp, #240]
    add     sp, sp, #816
    eret
"#
);
