//! Entry point: the arm64 Image header and the first instructions.
//!
//! The image starts with the 64-byte arm64 Linux Image header so that QEMU
//! (and the Raspberry Pi firmware) treat it as a Linux kernel: it is loaded at
//! a 2 MiB-aligned RAM base plus `text_offset` and entered with the DTB's
//! physical address in x0, MMU and caches off, at EL2 or EL1.
//!
//! What runs here, in order, before the first Rust call:
//! 1. a secondary core that enters here parks forever (`wfe`): only core 0
//!    boots; the others are started later at their own entry (smp.rs);
//! 2. at EL2, configure EL1 for AArch64 with the physical timer accessible and
//!    FP/SIMD untrapped, then `eret` to EL1h with interrupts masked
//!    (`__drop_to_el1`, which the secondary cores' entry calls too);
//! 3. set the stack, enable FP/SIMD at EL1 (CPACR_EL1.FPEN), zero BSS and
//!    install the exception vectors;
//! 4. call `kernel_entry(dtb, entry_el)` (Rust, never returns), or, if
//!    the image does not run at its link address, the board's
//!    `__kernel_wrong_address(runs_at, linked_at)` (board.rs), which says so
//!    on the UART and stops.
//!
//! These steps are in assembly because Rust code may not run without a stack
//! and (on a hard-float target) without FP/SIMD enabled.

use core::arch::global_asm;

global_asm!(
    r#"
.section .text.head, "ax"
.global _start
_start:
    // --- arm64 Image header (Documentation/arch/arm64/booting.rst) ---
    b       1f                      // code0: branch over the header
    .word   0                       // code1
    .quad   __text_offset           // text_offset from a 2 MiB-aligned base
    .quad   __image_size            // image_size (non-zero: text_offset valid)
    .quad   0x2                     // flags: LE, 4 KiB pages, 2 MiB-aligned base near DRAM start
    .quad   0                       // res2
    .quad   0                       // res3
    .quad   0                       // res4
    .word   0x644d5241              // magic "ARM\x64"
    .word   0                       // res5 (no PE header)

1:  mov     x19, x0                 // x19 := DTB physical address (callee-saved)

    // Only core 0 (MPIDR_EL1.Aff0..Aff2 == 0) boots; others park.
    mrs     x1, mpidr_el1
    and     x1, x1, #0xffffff
    cbnz    x1, .Lpark

    mrs     x20, CurrentEL          // x20 := exception level at entry
    lsr     x20, x20, #2
    bl      __drop_to_el1

.Lel1:
    adrp    x1, __boot_stack_top
    add     x1, x1, :lo12:__boot_stack_top
    mov     sp, x1

    mov     x1, #(3 << 20)          // CPACR_EL1.FPEN = 0b11: FP/SIMD at EL1 and EL0
    msr     cpacr_el1, x1
    isb

    adrp    x1, __bss_start         // zero BSS (16-byte aligned by the linker script)
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
2:  cmp     x1, x2
    b.hs    3f
    stp     xzr, xzr, [x1], #16
    b       2b

3:  adrp    x1, __exception_vectors
    add     x1, x1, :lo12:__exception_vectors
    msr     vbar_el1, x1
    isb

    // Running where the image was linked? Absolute addresses (vtables,
    // literal pools) are only right there; elsewhere report and stop.
    adr     x0, _start              // where the loader put the image
    ldr     x1, =_start             // where it was linked
    cmp     x0, x1
    b.ne    4f
    mov     x0, x19
    mov     x1, x20
    bl      kernel_entry
4:  bl      __kernel_wrong_address

.Lpark:
    wfe
    b       .Lpark

// Entered at EL2 (Raspberry Pi firmware, QEMU raspi4b)? Drop to EL1 and
// return there; at EL1 already, just return. Shared with the secondary
// cores' entry (smp/entry.rs). Uses no stack and no memory; clobbers x1.
.global __drop_to_el1
__drop_to_el1:
    mrs     x1, CurrentEL
    lsr     x1, x1, #2
    cmp     x1, #2
    b.ne    1f
    mov     x1, #(1 << 31)          // HCR_EL2.RW: EL1 is AArch64; nothing trapped to EL2
    msr     hcr_el2, x1
    mov     x1, #3                  // CNTHCTL_EL2.EL1PCTEN | EL1PCEN: EL1 may use the physical counter/timer
    msr     cnthctl_el2, x1
    msr     cntvoff_el2, xzr        // virtual counter == physical counter
    mov     x1, #0x33ff             // CPTR_EL2: RES1 bits, TFP=0: FP/SIMD not trapped to EL2
    msr     cptr_el2, x1
    msr     hstr_el2, xzr
    ldr     x1, =0x30d00800         // SCTLR_EL1: RES1 bits, MMU/caches off, little endian
    msr     sctlr_el1, x1
    mov     x1, #0x3c5              // SPSR_EL2: EL1h, D/A/I/F masked
    msr     spsr_el2, x1
    msr     elr_el2, x30            // "return" to the caller, at EL1
    eret
1:  ret
"#
);
