//! MMU: an identity map with caches on, built from the memory map.
//!
//! Rules:
//! - 4 KiB granule, 39-bit virtual addresses through TTBR0_EL1 (three levels:
//!   1 GiB, 2 MiB, 4 KiB), virtual == physical. TTBR1 walks are disabled.
//! - RAM is Normal write-back cacheable, inner shareable (MAIR index 0);
//!   everything below `device_limit` that is not RAM is Device-nGnRE, never
//!   executable (MAIR index 1); `no-map` reserved regions and anything above
//!   `device_limit` stay unmapped, so a stray access faults and is reported.
//! - Each range gets the largest block that is entirely of one kind.
//! - Translation tables come from a fixed pool in BSS, used only by the boot
//!   core before any other core or interrupt runs.
//!
//! Boot happens in two steps. `enable_boot_map` runs with the MMU off (where
//! every data access is Device memory: no unaligned access, no exclusive
//! monitors), maps the 1 GiB slots holding the kernel and the DTB as RAM and
//! every other slot below 4 GiB as devices, and turns the MMU on. Once the
//! device tree is parsed, `switch_to` installs the final map built from the
//! RAM the tree reports.

use core::arch::asm;
use core::cell::UnsafeCell;
use core::ops::Range;

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{
    ID_AA64MMFR0_EL1, MAIR_EL1, PAR_EL1, ReadWriteable, Readable, SCTLR_EL1, TCR_EL1, TTBR0_EL1,
    Writeable,
};

const ENTRIES: usize = 512;
const VA_BITS: u64 = 39;
const POOL_TABLES: usize = 96;

const DESC_VALID: u64 = 1 << 0;
const DESC_TABLE_OR_PAGE: u64 = 1 << 1;
const ATTR_INDEX_NORMAL: u64 = 0 << 2;
const ATTR_INDEX_DEVICE: u64 = 1 << 2;
const SH_INNER: u64 = 0b11 << 8;
const AF: u64 = 1 << 10;
const PXN: u64 = 1 << 53;
const UXN: u64 = 1 << 54;
const ADDR_MASK: u64 = 0x0000_ffff_ffff_f000;

/// What a range of physical addresses is mapped as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemKind {
    Normal,
    Device,
    Unmapped,
}

/// The inputs of a map: RAM ranges, holes inside RAM that must stay
/// unmapped, and the end of the device window.
pub struct MapSpec<'a> {
    pub ram: &'a [Range<u64>],
    pub unmapped: &'a [Range<u64>],
    pub device_limit: u64,
}

impl MapSpec<'_> {
    /// The kind of every byte in `r`, or None if `r` mixes kinds.
    fn kind_of(&self, r: &Range<u64>) -> Option<MemKind> {
        let overlaps = |a: &Range<u64>| a.start < r.end && r.start < a.end;
        let covers = |a: &Range<u64>| a.start <= r.start && r.end <= a.end;
        if self.unmapped.iter().any(overlaps) {
            return self
                .unmapped
                .iter()
                .any(covers)
                .then_some(MemKind::Unmapped);
        }
        if self.ram.iter().any(covers) {
            return Some(MemKind::Normal);
        }
        if self.ram.iter().any(overlaps) {
            return None;
        }
        if r.end <= self.device_limit {
            Some(MemKind::Device)
        } else if r.start >= self.device_limit {
            Some(MemKind::Unmapped)
        } else {
            None
        }
    }
}

#[repr(C, align(4096))]
struct Table([u64; ENTRIES]);

struct TablePool {
    tables: UnsafeCell<[Table; POOL_TABLES]>,
    next: UnsafeCell<usize>,
}

// SAFETY: the pool is only touched by the boot core during single-threaded
// boot (enable_boot_map / build), before secondary cores or interrupts exist.
unsafe impl Sync for TablePool {}

static POOL: TablePool = TablePool {
    tables: UnsafeCell::new([const { Table([0; ENTRIES]) }; POOL_TABLES]),
    next: UnsafeCell::new(0),
};

/// Errors while building a map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapError {
    OutOfTables,
}

fn alloc_table() -> Result<*mut Table, MapError> {
    // SAFETY: single-threaded boot (see `TablePool`); each index is handed
    // out once, so no two callers get the same table.
    unsafe {
        let next = &mut *POOL.next.get();
        if *next >= POOL_TABLES {
            return Err(MapError::OutOfTables);
        }
        let t = (POOL.tables.get() as *mut Table).add(*next);
        *next += 1;
        (*t).0 = [0; ENTRIES];
        Ok(t)
    }
}

fn leaf(addr: u64, kind: MemKind, level: u32) -> u64 {
    let attrs = match kind {
        MemKind::Normal => ATTR_INDEX_NORMAL | SH_INNER | AF | UXN,
        MemKind::Device => ATTR_INDEX_DEVICE | AF | PXN | UXN,
        MemKind::Unmapped => return 0,
    };
    let page_bit = if level == 3 { DESC_TABLE_OR_PAGE } else { 0 };
    (addr & ADDR_MASK) | attrs | DESC_VALID | page_bit
}

fn fill(table: *mut Table, level: u32, base: u64, spec: &MapSpec) -> Result<(), MapError> {
    let size = 1u64 << (12 + 9 * (3 - level));
    for i in 0..ENTRIES {
        let start = base + i as u64 * size;
        let range = start..start + size;
        let desc = match spec.kind_of(&range) {
            Some(kind) => leaf(start, kind, level),
            // A page that is partly RAM (unaligned RAM bounds) stays unmapped.
            None if level == 3 => 0,
            None => {
                let next = alloc_table()?;
                fill(next, level + 1, start, spec)?;
                (next as u64) | DESC_VALID | DESC_TABLE_OR_PAGE
            }
        };
        // SAFETY: `table` is a pool table owned by this build (see alloc_table).
        unsafe { (*table).0[i] = desc };
    }
    Ok(())
}

/// A built translation table tree, ready to install.
pub struct AddressSpace {
    root: *mut Table,
}

/// Builds the map described by `spec`.
pub fn build(spec: &MapSpec) -> Result<AddressSpace, MapError> {
    let root = alloc_table()?;
    fill(root, 1, 0, spec)?;
    Ok(AddressSpace { root })
}

/// How many pool tables are in use (for the boot report).
pub fn tables_used() -> usize {
    // SAFETY: read during single-threaded boot or afterwards, when the pool
    // no longer changes.
    unsafe { *POOL.next.get() }
}

fn configure_registers() {
    MAIR_EL1.write(
        MAIR_EL1::Attr0_Normal_Outer::WriteBack_NonTransient_ReadWriteAlloc
            + MAIR_EL1::Attr0_Normal_Inner::WriteBack_NonTransient_ReadWriteAlloc
            + MAIR_EL1::Attr1_Device::nonGathering_nonReordering_EarlyWriteAck,
    );
    let pa_range = ID_AA64MMFR0_EL1.read(ID_AA64MMFR0_EL1::PARange).min(0b0010);
    TCR_EL1.write(
        TCR_EL1::TBI0::Used
            + TCR_EL1::IPS.val(pa_range)
            + TCR_EL1::TG0::KiB_4
            + TCR_EL1::SH0::Inner
            + TCR_EL1::ORGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
            + TCR_EL1::IRGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
            + TCR_EL1::EPD0::EnableTTBR0Walks
            + TCR_EL1::EPD1::DisableTTBR1Walks
            + TCR_EL1::T0SZ.val(64 - VA_BITS),
    );
}

fn invalidate_tlb() {
    // SAFETY: TLB maintenance for this core's EL1&0 regime; it only drops
    // cached translations, which are refetched from the installed tables.
    unsafe {
        asm!(
            "dsb ishst",
            "tlbi vmalle1",
            "dsb ish",
            "isb",
            options(nostack)
        )
    };
}

/// Maps the slots of the kernel and the DTB as RAM, the rest below 4 GiB as
/// devices, and enables MMU and caches. Called once, with the MMU off.
pub fn enable_boot_map(kernel: Range<u64>, dtb: u64) -> Result<(), MapError> {
    const GIB: u64 = 1 << 30;
    let slot = |a: u64| (a & !(GIB - 1))..(a & !(GIB - 1)) + GIB;
    let ram = [slot(kernel.start), slot(kernel.end - 1), slot(dtb)];
    let space = build(&MapSpec {
        ram: &ram,
        unmapped: &[],
        device_limit: 4 * GIB,
    })?;
    // The tables were written with the data cache off; drop any stale lines
    // covering them so the walker (which reads through the cache once it is
    // on) sees memory.
    let first = POOL.tables.get() as u64;
    let last = first + (tables_used() * core::mem::size_of::<Table>()) as u64;
    for line in (first..last).step_by(64) {
        // SAFETY: invalidating lines of the table pool, which holds no dirty
        // cached data yet (caches are off); memory keeps the written tables.
        unsafe { asm!("dc ivac, {}", in(reg) line, options(nostack)) };
    }
    barrier::dsb(barrier::SY);
    configure_registers();
    TTBR0_EL1.set_baddr(space.root as u64);
    invalidate_tlb();
    // SAFETY: drops stale instructions before fetching through the new map.
    unsafe { asm!("ic iallu", "dsb ish", "isb", options(nostack)) };
    SCTLR_EL1.modify(SCTLR_EL1::M::Enable + SCTLR_EL1::C::Cacheable + SCTLR_EL1::I::Cacheable);
    barrier::isb(barrier::SY);
    Ok(())
}

/// Installs `space` as the live map. Every address the kernel touches
/// (image, stack, DTB, UART) must keep its mapping and attributes in it.
pub fn switch_to(space: &AddressSpace) {
    barrier::dsb(barrier::ISHST);
    TTBR0_EL1.set_baddr(space.root as u64);
    barrier::isb(barrier::SY);
    invalidate_tlb();
}

/// Whether the MMU and both caches are enabled on this core.
pub fn mmu_and_caches_on() -> bool {
    SCTLR_EL1.is_set(SCTLR_EL1::M)
        && SCTLR_EL1.is_set(SCTLR_EL1::C)
        && SCTLR_EL1.is_set(SCTLR_EL1::I)
}

/// Translates `va` with the live map (AT S1E1R): Some((pa, MAIR attribute
/// byte)) or None if it is unmapped.
pub fn translate(va: u64) -> Option<(u64, u8)> {
    // SAFETY: address translation instruction; it only writes PAR_EL1.
    unsafe { asm!("at s1e1r, {}", "isb", in(reg) va, options(nostack)) };
    let par = PAR_EL1.get();
    if par & 1 != 0 {
        return None;
    }
    let pa = (par & ADDR_MASK) | (va & 0xfff);
    Some((pa, (par >> 56) as u8))
}

/// MAIR attribute byte of Normal write-back memory, as `translate` reports it.
pub const MAIR_NORMAL_WB: u8 = 0xff;
/// MAIR attribute byte of Device-nGnRE memory.
pub const MAIR_DEVICE_NGNRE: u8 = 0x04;
