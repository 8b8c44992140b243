//! Whole-page copy and zero for arm64, in the style of Linux's
//! `arch/arm64/lib/copy_page.S` and `clear_page.S`.
//!
//! Rules:
//! - [`copy_page`] moves 128 bytes per iteration with eight `ldp`/`stp`
//!   pairs of general registers (FP/SIMD registers are not saved by the
//!   context switch, so the kernel does not use them here); compiler
//!   builtins' `memcpy` moves 8 bytes per iteration.
//! - [`clear_page`] uses `DC ZVA` when DCZID_EL0.DZP is 0 (the instruction
//!   is allowed), in blocks of `4 << DCZID_EL0.BS` bytes; otherwise (or for
//!   a block larger than a page) `stp xzr, xzr` 64 bytes per iteration.
//!   Pages are identity-mapped Normal cacheable RAM, as `DC ZVA` requires.
//! - DCZID_EL0 is defined here with tock-registers bitfields in
//!   aarch64-cpu's style: aarch64-cpu (10.0 used here, and 11.2) has no
//!   DCZID_EL0 register. It is read once and cached.
//! - Both take references to whole pages, so the borrow checker guarantees
//!   the pages are valid, aligned to their type and not overlapping.

use core::arch::asm;
use core::sync::atomic::{AtomicU32, Ordering};

use tock_registers::interfaces::Readable;
use tock_registers::register_bitfields;

use frames::{PAGE_SIZE, PageBytes};

register_bitfields! {u64,
    /// Data Cache Zero ID register.
    pub DCZID_EL0 [
        /// 1: `DC ZVA` is prohibited.
        DZP OFFSET(4) NUMBITS(1) [],
        /// Log2 of the block size `DC ZVA` zeroes, in 4-byte words.
        BS OFFSET(0) NUMBITS(4) []
    ]
}

struct DczidEl0;

impl Readable for DczidEl0 {
    type T = u64;
    type R = DCZID_EL0::Register;

    fn get(&self) -> u64 {
        let v: u64;
        // SAFETY: DCZID_EL0 is readable at EL0 and above and has no side
        // effects; the asm only writes the output register.
        unsafe {
            asm!("mrs {v}, dczid_el0", v = out(reg) v, options(nomem, nostack, preserves_flags))
        };
        v
    }
}

/// `DC ZVA` block size in bytes, 0 if zeroing by `DC ZVA` is not used;
/// `u32::MAX` until first read.
static ZVA_BYTES: AtomicU32 = AtomicU32::new(u32::MAX);

/// Block size `DC ZVA` zeroes on this CPU, or `None` if it may not be used
/// (DZP set, or a block larger than a page).
pub fn zva_block_bytes() -> Option<usize> {
    let mut b = ZVA_BYTES.load(Ordering::Relaxed);
    if b == u32::MAX {
        let r = DczidEl0;
        b = if r.is_set(DCZID_EL0::DZP) {
            0
        } else {
            let bytes = 4u32 << r.read(DCZID_EL0::BS);
            if bytes as usize <= PAGE_SIZE as usize {
                bytes
            } else {
                0
            }
        };
        ZVA_BYTES.store(b, Ordering::Relaxed);
    }
    (b != 0).then_some(b as usize)
}

/// Copies the page `src` to `dst`, 128 bytes per iteration.
pub fn copy_page(dst: &mut PageBytes, src: &PageBytes) {
    // SAFETY: `dst` and `src` are distinct whole-page borrows (no overlap);
    // the loop reads and writes exactly PAGE_SIZE bytes (32 x 128), every
    // register it uses is declared clobbered, and it uses no stack.
    unsafe {
        asm!(
            "2:",
            "ldp x4, x5, [{src}]",
            "ldp x6, x7, [{src}, #16]",
            "ldp x8, x9, [{src}, #32]",
            "ldp x10, x11, [{src}, #48]",
            "ldp x12, x13, [{src}, #64]",
            "ldp x14, x15, [{src}, #80]",
            "ldp x16, x17, [{src}, #96]",
            "ldp x2, x3, [{src}, #112]",
            "add {src}, {src}, #128",
            "stp x4, x5, [{dst}]",
            "stp x6, x7, [{dst}, #16]",
            "stp x8, x9, [{dst}, #32]",
            "stp x10, x11, [{dst}, #48]",
            "stp x12, x13, [{dst}, #64]",
            "stp x14, x15, [{dst}, #80]",
            "stp x16, x17, [{dst}, #96]",
            "stp x2, x3, [{dst}, #112]",
            "add {dst}, {dst}, #128",
            "subs {n}, {n}, #1",
            "b.ne 2b",
            src = inout(reg) src.as_ptr() => _,
            dst = inout(reg) dst.as_mut_ptr() => _,
            n = inout(reg) PAGE_SIZE as usize / 128 => _,
            out("x2") _, out("x3") _, out("x4") _, out("x5") _,
            out("x6") _, out("x7") _, out("x8") _, out("x9") _,
            out("x10") _, out("x11") _, out("x12") _, out("x13") _,
            out("x14") _, out("x15") _, out("x16") _, out("x17") _,
            options(nostack),
        );
    }
}

/// Zeroes the page `dst`: `DC ZVA` blocks where allowed (and `dst` is
/// aligned to the block, as page frames are), else 64 bytes of `stp xzr`
/// per iteration.
pub fn clear_page(dst: &mut PageBytes) {
    let zva = zva_block_bytes().filter(|b| (dst.as_ptr() as usize).is_multiple_of(*b));
    match zva {
        Some(block) => {
            // SAFETY: `dst` is an exclusive whole page in identity-mapped Normal
            // memory, aligned to `block` (checked above), a power of two dividing
            // PAGE_SIZE: the PAGE_SIZE / block `DC ZVA`s zero exactly this page.
            unsafe {
                asm!(
                    "2:",
                    "dc zva, {p}",
                    "add {p}, {p}, {b}",
                    "subs {n}, {n}, #1",
                    "b.ne 2b",
                    p = inout(reg) dst.as_mut_ptr() => _,
                    b = in(reg) block,
                    n = inout(reg) PAGE_SIZE as usize / block => _,
                    options(nostack),
                );
            }
        }
        None => {
            // SAFETY: writes exactly PAGE_SIZE bytes (64 iterations of 64)
            // into the exclusive page borrow `dst`; no stack use.
            unsafe {
                asm!(
                    "2:",
                    "stp xzr, xzr, [{p}]",
                    "stp xzr, xzr, [{p}, #16]",
                    "stp xzr, xzr, [{p}, #32]",
                    "stp xzr, xzr, [{p}, #48]",
                    "add {p}, {p}, #64",
                    "subs {n}, {n}, #1",
                    "b.ne 2b",
                    p = inout(reg) dst.as_mut_ptr() => _,
                    n = inout(reg) PAGE_SIZE as usize / 64 => _,
                    options(nostack),
                );
            }
        }
    }
}
