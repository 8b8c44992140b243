//! Kernel memory: the frame table, the buddy allocator and the heap.
//!
//! Rules:
//! - One [`FrameTable`] covers every pfn from the lowest to the highest RAM
//!   address the device tree reports; holes stay `Absent`. Its descriptor
//!   array is carved from the start of the largest usable RAM range before
//!   anything else is allocated, and marked `Kernel`.
//! - Usable RAM (RAM minus kernel image, DTB, memreserve entries, every
//!   reserved region and every other range the device tree claims) goes to
//!   the buddy. The kernel image and DTB are `Kernel`/`Reserved`;
//!   memreserve entries, the other excluded ranges (firmware's, refused
//!   regions) and `no-map` regions `Reserved`;
//!   GCMA/CMA/carveout regions `ReservedArea` with owner = 1 + their index in
//!   the memory map, until their allocator takes them over.
//! - The heap (`#[global_allocator]`) starts with [`HEAP_INITIAL`] bytes of
//!   buddy frames and grows by whole buddy blocks when an allocation does not
//!   fit. Growing takes the frame lock inside the heap lock; nothing takes
//!   them in the other order (the frame table never allocates from the heap).

use core::alloc::{GlobalAlloc, Layout};
use core::mem::MaybeUninit;
use core::ops::Range;

use crate::arch::exception::asynchronous::{local_irq_mask_save, local_irq_restore};
use crate::sync::IrqLock;
use buddy_system_allocator::{Heap, LockedHeapWithRescue};
use frames::{FrameState, FrameTable, MAX_ORDER, PAGE_SIZE, pfns_covering, pfns_within};
use physmap::{MemoryMap, PhysRange};

/// Buddy order of the heap allocator (largest block 2^(ORDER-1) bytes).
const HEAP_ORDER: usize = 32;
/// Heap given at boot.
pub const HEAP_INITIAL: u64 = 16 << 20;

static HEAP: LockedHeapWithRescue<HEAP_ORDER> = LockedHeapWithRescue::new(grow_heap);

/// The global allocator: the buddy heap with IRQs masked around every
/// call, so a task is never preempted while it holds the heap's lock.
struct IrqSafeHeap;

// SAFETY: forwards to LockedHeapWithRescue's GlobalAlloc implementation,
// which upholds the contract; masking IRQs changes nothing about it.
unsafe impl core::alloc::GlobalAlloc for IrqSafeHeap {
    // SAFETY (contract): as GlobalAlloc::alloc; forwarded unchanged.
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let saved = local_irq_mask_save();
        // SAFETY: forwarded contract.
        let p = unsafe { GlobalAlloc::alloc(&HEAP, layout) };
        local_irq_restore(saved);
        p
    }

    // SAFETY (contract): as GlobalAlloc::dealloc; forwarded unchanged.
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let saved = local_irq_mask_save();
        // SAFETY: forwarded contract.
        unsafe { GlobalAlloc::dealloc(&HEAP, ptr, layout) };
        local_irq_restore(saved);
    }
}

#[global_allocator]
static GLOBAL: IrqSafeHeap = IrqSafeHeap;

/// The frame table, once `init` ran.
pub static FRAMES: IrqLock<Option<FrameTable<'static>>> = IrqLock::new(None);

/// Why memory could not be set up.
#[derive(Debug)]
pub enum MmError {
    NoUsableRam,
    FrameTable(frames::FrameError),
    HeapTooSmall,
}

impl core::fmt::Display for MmError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MmError::NoUsableRam => write!(f, "no usable RAM range can hold the frame table"),
            MmError::FrameTable(e) => write!(f, "frame table: {e:?}"),
            MmError::HeapTooSmall => write!(f, "not enough free frames for the initial heap"),
        }
    }
}

fn to_range(r: &PhysRange) -> Range<u64> {
    r.base..r.end()
}

/// Sets up the frame table, the buddy and the heap from `map`.
pub fn init(map: &MemoryMap, kernel: Range<u64>, dtb: Range<u64>) -> Result<(), MmError> {
    let ram = map.ram.as_slice();
    let lo = ram
        .iter()
        .map(|r| r.base)
        .min()
        .ok_or(MmError::NoUsableRam)?;
    let hi = ram
        .iter()
        .map(|r| r.end())
        .max()
        .ok_or(MmError::NoUsableRam)?;
    let span = pfns_covering(lo..hi);
    let table_bytes = FrameTable::bytes_for_span(span.clone()).next_multiple_of(PAGE_SIZE);

    // Carve the descriptor array from the largest usable range.
    let largest = map
        .usable
        .as_slice()
        .iter()
        .max_by_key(|r| r.size)
        .filter(|r| r.size > table_bytes)
        .ok_or(MmError::NoUsableRam)?;
    let table_mem = largest.base..largest.base + table_bytes;
    let count = (span.end.0 - span.start.0) as usize;
    let mem: &'static mut [MaybeUninit<frames::FrameDesc>] =
        // SAFETY: `table_mem` is usable, identity-mapped RAM (no reserved
        // region, image or DTB), page-aligned, marked Kernel below and kept
        // out of the buddy, so nothing else ever uses it.
        unsafe { core::slice::from_raw_parts_mut(table_mem.start as *mut _, count) };
    let mut table = FrameTable::new_uninit(mem, span.start).map_err(MmError::FrameTable)?;

    for r in map.usable.as_slice() {
        let mut range = to_range(r);
        if range.start == table_mem.start {
            range.start = table_mem.end;
        }
        if range.start < range.end {
            table
                .add_free_range(pfns_within(range))
                .map_err(MmError::FrameTable)?;
        }
    }
    let mark = |t: &mut FrameTable, r: Range<u64>, state, owner| {
        t.mark(pfns_covering(r), state, owner)
            .map_err(MmError::FrameTable)
    };
    mark(&mut table, table_mem, FrameState::Kernel, 0)?;
    mark(&mut table, kernel, FrameState::Kernel, 0)?;
    mark(&mut table, dtb, FrameState::Reserved, 0)?;
    // Memreserve entries, firmware's regions and refused ones (the parts
    // inside the table's span).
    for e in map.excluded.as_slice() {
        let r = e.range.base.max(lo)..e.range.end().min(hi);
        let ours = matches!(
            e.kind,
            physmap::ExcludedKind::KernelImage | physmap::ExcludedKind::Dtb
        );
        if !ours && r.start < r.end {
            mark(&mut table, r, FrameState::Reserved, 0)?;
        }
    }
    for (i, region) in map.reserved.as_slice().iter().enumerate() {
        let state = if region.no_map {
            FrameState::Reserved
        } else {
            FrameState::ReservedArea
        };
        mark(&mut table, to_range(&region.range), state, 1 + i as u16)?;
    }

    // Initial heap: whole max-order blocks from the buddy.
    let mut heap = HEAP.lock();
    let block = PAGE_SIZE << MAX_ORDER;
    for _ in 0..HEAP_INITIAL.div_ceil(block) {
        let pfn = table
            .alloc(MAX_ORDER, FrameState::Heap)
            .map_err(|_| MmError::HeapTooSmall)?;
        let start = pfn.addr() as usize;
        // SAFETY: the block was just allocated from the buddy for the heap
        // (state Heap): identity-mapped normal RAM used by nothing else.
        unsafe { heap.add_to_heap(start, start + block as usize) };
    }
    drop(heap);
    *FRAMES.lock() = Some(table);
    Ok(())
}

/// Heap rescue: called with the heap lock held when an allocation fails;
/// adds enough max-order buddy blocks (or one smaller block) to satisfy it.
fn grow_heap(heap: &mut Heap<HEAP_ORDER>, layout: &Layout) {
    let mut frames = FRAMES.lock();
    let Some(table) = frames.as_mut() else { return };
    let need = (layout.size().max(layout.align()) as u64)
        .next_power_of_two()
        .max(PAGE_SIZE);
    let block = PAGE_SIZE << MAX_ORDER;
    let (order, count) = if need <= block {
        ((need / PAGE_SIZE).trailing_zeros() as u8 + 1, 1)
    } else {
        (MAX_ORDER, need.div_ceil(block) + 1)
    };
    // Larger than one block: the heap can only merge blocks that happen to be
    // adjacent, so such requests fail unless the buddy hands out neighbours.
    for _ in 0..count {
        let order = order.min(MAX_ORDER);
        let Ok(pfn) = table.alloc(order, FrameState::Heap) else {
            return;
        };
        let start = pfn.addr() as usize;
        // SAFETY: a block just allocated from the buddy for the heap.
        unsafe { heap.add_to_heap(start, start + (PAGE_SIZE << order) as usize) };
    }
}

/// Heap statistics: (bytes requested by users, bytes in the heap).
pub fn heap_stats() -> (usize, usize) {
    let saved = local_irq_mask_save();
    let heap = HEAP.lock();
    let stats = (heap.stats_alloc_user(), heap.stats_total_bytes());
    drop(heap);
    local_irq_restore(saved);
    stats
}

/// Runs `f` with the frame table (panics if called before `init`).
pub fn with_frames<R>(f: impl FnOnce(&mut FrameTable<'static>) -> R) -> R {
    let mut guard = FRAMES.lock();
    f(guard.as_mut().expect("frame table used before mm::init"))
}

/// Allocates `bytes` (rounded up to pages) of zeroed, physically contiguous
/// memory for device queues; never freed. Returns its address.
pub fn alloc_dma_zeroed(bytes: usize) -> Option<*mut u8> {
    let pages = (bytes as u64).div_ceil(PAGE_SIZE);
    let pfn = with_frames(|t| t.alloc_pages(pages, FrameState::Kernel)).ok()?;
    let ptr = pfn.addr() as *mut u8;
    // SAFETY: freshly allocated frames, identity-mapped normal memory owned
    // by the caller from now on.
    unsafe { core::ptr::write_bytes(ptr, 0, (pages * PAGE_SIZE) as usize) };
    Some(ptr)
}
