//! `__secondary_entry`: where a secondary core starts (PSCI CPU_ON's entry
//! point, or the address written to its spin-table release word).
//!
//! It arrives with the MMU and caches off, at EL2 or EL1, IRQs masked, x0
//! holding PSCI's context id or nothing (spin table): it is not used. In
//! order, without a stack:
//! 1. `__drop_to_el1` (boot.rs) if at EL2;
//! 2. find this core's slot: the index of its MPIDR affinity in
//!    `EntryParams::mpidr`; a core with no slot parks in `wfi` for good;
//! 3. MAIR, TCR, TTBR0 from the parameters (core 0's), local TLB and
//!    instruction cache invalidated, then SCTLR (MMU and caches on): the
//!    identity map keeps the next instruction where it is;
//! 4. its stack, FP/SIMD on (CPACR_EL1.FPEN), the exception vectors;
//! 5. `secondary_main(slot)` (smp.rs), which never returns.
//!
//! The parameters are read with the caches off (core 0 cleaned them to the
//! point of coherency); nothing is written before the MMU is on.

use core::arch::global_asm;
use core::mem::offset_of;

use super::{EntryParams, MAX_CPUS, SMP_ENTRY_PARAMS, secondary_main};

global_asm!(
    r#"
.section .text, "ax"
.balign 8
.global __secondary_entry
__secondary_entry:
    bl      __drop_to_el1           // EL1h, D/A/I/F masked; clobbers x1

    adrp    x2, {params}
    add     x2, x2, :lo12:{params}
    mrs     x3, mpidr_el1           // x3 := Aff3 << 32 | Aff2..Aff0
    ubfx    x4, x3, #32, #8
    and     x3, x3, #0xffffff
    orr     x3, x3, x4, lsl #32

    add     x6, x2, #{off_mpidr}
    mov     x4, #0                  // x4 := slot
1:  cmp     x4, #{max_cpus}
    b.hs    .Lsecondary_park
    ldr     x5, [x6, x4, lsl #3]
    cmp     x5, x3
    b.eq    2f
    add     x4, x4, #1
    b       1b

2:  ldr     x5, [x2, #{off_mair}]
    msr     mair_el1, x5
    ldr     x5, [x2, #{off_tcr}]
    msr     tcr_el1, x5
    ldr     x5, [x2, #{off_ttbr0}]
    msr     ttbr0_el1, x5
    isb
    tlbi    vmalle1
    ic      iallu
    dsb     nsh
    isb
    ldr     x5, [x2, #{off_sctlr}]
    msr     sctlr_el1, x5
    isb

    add     x6, x2, #{off_stack}
    ldr     x5, [x6, x4, lsl #3]
    mov     sp, x5
    mov     x5, #(3 << 20)          // CPACR_EL1.FPEN = 0b11: FP/SIMD at EL1 and EL0
    msr     cpacr_el1, x5
    ldr     x5, [x2, #{off_vbar}]
    msr     vbar_el1, x5
    isb

    mov     x0, x4
    bl      {main}

.Lsecondary_park:
    wfi
    b       .Lsecondary_park
"#,
    params = sym SMP_ENTRY_PARAMS,
    main = sym secondary_main,
    max_cpus = const MAX_CPUS,
    off_mair = const offset_of!(EntryParams, mair),
    off_tcr = const offset_of!(EntryParams, tcr),
    off_ttbr0 = const offset_of!(EntryParams, ttbr0),
    off_sctlr = const offset_of!(EntryParams, sctlr),
    off_vbar = const offset_of!(EntryParams, vbar),
    off_mpidr = const offset_of!(EntryParams, mpidr),
    off_stack = const offset_of!(EntryParams, stack_top),
);
