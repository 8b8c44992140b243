//! Physical page frames: one descriptor per 4 KiB frame and a binary buddy
//! allocator threaded through those descriptors.
//!
//! This is the kernel's `struct page` + `mm/page_alloc.c`: the page cache,
//! cleancache, GCMA, CMA and the carveout all keep their per-page state in the
//! [`FrameDesc`] array owned by a [`FrameTable`]. The crate is `no_std` and
//! never allocates: the descriptor array is memory the caller hands in (the
//! kernel carves it out of RAM before any heap exists, see
//! [`FrameTable::bytes_for`] and [`FrameTable::new_uninit`]).
//!
//! # Frame states and transitions
//!
//! Every frame covered by a table is in exactly one [`FrameState`]:
//!
//! ```text
//!              add_free_range                  alloc / alloc_pages
//!   Absent ------------------> Free <=========================> Kernel, Heap, PageCache,
//!     |  ^                                    free / free_pages  Cleancache, Allocated, ...
//!     |  | mark(.., Absent, ..)                                   (any "owned" state)
//!     v  |
//!   Reserved, ReservedArea, Kernel, ... (marked: not managed by the buddy)
//!        <-- set_state --> any other owned state
//! ```
//!
//! * `Absent`: not RAM (a hole in the span) or RAM not yet handed over.
//! * `Free`: owned by the buddy allocator, on exactly one free list (as the
//!   head or a tail of a free block). Only the buddy reads or writes a free
//!   frame's descriptor.
//! * every other state is *owned*: by the subsystem that allocated it from the
//!   buddy, or by whoever [`FrameTable::mark`]ed it (the kernel image, the
//!   DTB, a GCMA/CMA area, ...).
//!
//! A frame is *managed* once [`FrameTable::add_free_range`] gave it to the
//! buddy; it stays managed forever and moves only between `Free` and owned
//! states through `alloc`/`free`. Frames that are not managed move only
//! through `mark` and `set_state`, so a reserved area's frames can never leak
//! into the buddy and the buddy can never hand out a reserved frame.
//!
//! # Field invariants (who may change what)
//!
//! | field | meaning | written by |
//! |---|---|---|
//! | `state` | [`FrameState`] | the buddy (`alloc`/`free`), `mark`, and the owner through [`FrameTable::set_state`] (owned -> owned only) |
//! | `order` + head bit | buddy block order, valid on the first frame of a free block or of a live allocation; tails carry neither | the buddy only |
//! | `next`/`prev` | free-list links (frame indices, [`NIL`] = none) while `Free`; while owned, free for the owner's own intrusive list (e.g. an LRU) through [`FrameMut::set_links`] | the buddy while free, the owner while owned |
//! | `flags` | [`FrameFlags`]: page-cache state (dirty, under I/O, referenced, locked, pinned, active) | the owner; all clear while `Free` |
//! | `pin_count` | readers holding the page, DMA in flight; a pinned frame cannot be freed ([`FrameError::Pinned`]) | the owner; 0 while `Free` |
//! | `owner` | area or subsystem id | `mark`, the owner; 0 while `Free` |
//! | `mapping`, `index` | file id and page index in that file: the reverse map that CMA migration and invalidation need | the owner; 0 while `Free` |
//!
//! `alloc` and `free` reset `flags`, `pin_count`, `owner`, `mapping`, `index`
//! and the links of every frame of the block, so an owner always starts from a
//! clean descriptor. Descriptors are only reachable through the table:
//! [`FrameTable::frame`] reads any frame, [`FrameTable::frame_mut`] writes only
//! owned frames and only the owner's fields, so a caller cannot corrupt the
//! free lists.
//!
//! # Buddy invariants (checked by [`FrameTable::verify`])
//!
//! * the managed frames are tiled by blocks; each block of order `k` starts at
//!   a pfn aligned to `2^k` (physical alignment `4 KiB << k`) and is either
//!   entirely `Free` (and on free list `k`) or entirely owned (a live
//!   allocation of order `k`, head = first frame);
//! * two free buddies of the same order below [`MAX_ORDER`] never coexist:
//!   freeing always coalesces;
//! * `free + sum(owned managed frames) == managed`, and the per-state counters
//!   equal a recount of the descriptors.
//!
//! `free(pfn, order)` checks that `pfn` is the head of a live allocation of
//! exactly `order`: a double free, a free of a frame that was never allocated,
//! of a tail frame, or with the wrong order is rejected with an error and
//! changes nothing. As in Linux, freeing a frame that was freed and then
//! handed out again by a later `alloc` of the same order cannot be told apart
//! from a legitimate free.
//!
//! # Wiring at boot
//!
//! ```
//! use core::mem::MaybeUninit;
//! use frames::*;
//!
//! // 128 MiB of RAM at 0x4000_0000; the kernel image in its first 2 MiB.
//! let ram = 0x4000_0000u64..0x4800_0000;
//! let span = pfns_covering(ram.clone());
//! // 24 bytes per frame: 768 KiB of descriptors for 32768 frames.
//! assert_eq!(FrameTable::bytes_for_span(span.clone()), 768 << 10);
//! // The kernel carves that (rounded up to pages) out of usable RAM and views it
//! // as `&'static mut [MaybeUninit<FrameDesc>]`; a Vec stands in for it here.
//! let mut mem = vec![MaybeUninit::uninit(); (span.end.0 - span.start.0) as usize];
//! let mut t = FrameTable::new_uninit(&mut mem, span.start).unwrap();
//! // Mark what must never reach the buddy first (image, DTB, the table's own
//! // frames, reserved-memory areas), then hand over whole RAM banks.
//! t.mark(pfns_covering(0x4000_0000..0x4020_0000), FrameState::Kernel, 0).unwrap();
//! t.mark(pfns_covering(0x4400_0000..0x4500_0000), FrameState::ReservedArea, 1).unwrap();
//! assert_eq!(t.add_free_range(pfns_within(ram)).unwrap(), 32768 - 512 - 4096);
//!
//! let p = t.alloc(2, FrameState::Heap).unwrap(); // 16 KiB, 16 KiB-aligned
//! assert!(p.is_aligned(2));
//! t.free(p, 2).unwrap();
//! assert_eq!(t.free(p, 2), Err(FrameError::DoubleFree(p)));
//! t.verify().unwrap();
//! ```
//!
//! # Concurrency
//!
//! A [`FrameTable`] is a plain `&mut`-driven structure; the kernel wraps it in
//! its lock (e.g. `spin::Mutex<FrameTable<'static>>`). Nothing here is
//! interrupt-safe by itself.

#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

use core::fmt;
use core::mem::MaybeUninit;
use core::ops::Range;

/// log2 of the frame size.
pub const PAGE_SHIFT: u32 = 12;
/// Frame size in bytes (4 KiB).
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;
/// Largest buddy order: blocks of `2^MAX_ORDER` frames (4 MiB).
pub const MAX_ORDER: u8 = 10;
/// Number of orders (`0..=MAX_ORDER`), i.e. of free lists.
pub const NR_ORDERS: usize = MAX_ORDER as usize + 1;
/// "No frame" in the descriptor links.
pub const NIL: u32 = u32::MAX;
/// Largest count [`FrameTable::alloc_pages`] accepts.
pub const MAX_PAGES_PER_ALLOC: u64 = 1 << MAX_ORDER;

// The order lives in the low nibble of `FrameDesc::bud`.
const BUD_ORDER_MASK: u8 = 0x0f;
const BUD_MANAGED: u8 = 0x40;
const BUD_HEAD: u8 = 0x80;
const _: () = assert!(MAX_ORDER as u32 <= BUD_ORDER_MASK as u32);
const _: () = assert!(core::mem::size_of::<FrameDesc>() == 24);

/// A physical frame number (physical address >> [`PAGE_SHIFT`]).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
#[repr(transparent)]
pub struct Pfn(pub u64);

impl Pfn {
    /// The frame containing physical address `addr` (rounds down).
    pub const fn from_addr(addr: u64) -> Pfn {
        Pfn(addr >> PAGE_SHIFT)
    }

    /// The first frame starting at or above `addr` (rounds up).
    pub const fn from_addr_up(addr: u64) -> Pfn {
        Pfn(addr.div_ceil(PAGE_SIZE))
    }

    /// Physical address of the frame's first byte.
    pub const fn addr(self) -> u64 {
        self.0 << PAGE_SHIFT
    }

    /// The frame `n` frames further.
    pub const fn add(self, n: u64) -> Pfn {
        Pfn(self.0 + n)
    }

    /// Whether the frame is aligned for a block of `order`.
    pub const fn is_aligned(self, order: u8) -> bool {
        order < 64 && self.0 & ((1u64 << order) - 1) == 0
    }
}

impl fmt::Display for Pfn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pfn {:#x}", self.0)
    }
}

/// Frames lying wholly inside the byte range `addr` (for usable RAM: a partial
/// frame at either end is dropped).
pub const fn pfns_within(addr: Range<u64>) -> Range<Pfn> {
    let start = Pfn::from_addr_up(addr.start);
    let end = Pfn::from_addr(addr.end);
    if end.0 < start.0 {
        start..start
    } else {
        start..end
    }
}

/// Frames touched by the byte range `addr` (for reservations: a partial frame
/// at either end is included).
pub const fn pfns_covering(addr: Range<u64>) -> Range<Pfn> {
    let start = Pfn::from_addr(addr.start);
    let end = Pfn::from_addr_up(addr.end);
    if end.0 < start.0 {
        start..start
    } else {
        start..end
    }
}

macro_rules! frame_states {
    ($( $(#[$doc:meta])* $name:ident = $val:literal, $label:literal; )*) => {
        /// What a frame is used for. To add a state, add a line to the
        /// `frame_states!` invocation (values must stay dense from 0): the
        /// counters, [`FrameState::ALL`] and the names follow.
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
        #[repr(u8)]
        pub enum FrameState {
            $( $(#[$doc])* $name = $val, )*
        }

        impl FrameState {
            /// Every state, in discriminant order (`ALL[s as usize] == s`).
            pub const ALL: &'static [FrameState] = &[$(FrameState::$name),*];
            /// Number of states.
            pub const COUNT: usize = Self::ALL.len();

            /// Short lower-case name, for logs and reports.
            pub const fn name(self) -> &'static str {
                match self { $(FrameState::$name => $label,)* }
            }
        }
    };
}

frame_states! {
    /// Not RAM (a hole in the span), or RAM not handed to anyone yet.
    Absent = 0, "absent";
    /// Never handed out: kernel image, DTB, `/memreserve/`, `no-map` regions.
    Reserved = 1, "reserved";
    /// In the buddy allocator, on a free list.
    Free = 2, "free";
    /// Boot allocations, page tables, the frame table itself.
    Kernel = 3, "kernel";
    /// Backing the kernel heap.
    Heap = 4, "heap";
    /// A page-cache page (file data; may be dirty, under I/O, pinned).
    PageCache = 5, "pagecache";
    /// A clean file page copy held by cleancache (in a GCMA area).
    Cleancache = 6, "cleancache";
    /// Handed out contiguously by GCMA, CMA or the carveout.
    Allocated = 7, "allocated";
    /// In a GCMA/CMA/carveout area, currently idle.
    ReservedArea = 8, "reservedarea";
}

const _: () = {
    let mut i = 0;
    while i < FrameState::COUNT {
        assert!(
            FrameState::ALL[i] as usize == i,
            "FrameState values must be dense from 0"
        );
        i += 1;
    }
};

impl FrameState {
    /// Whether the state is owned by someone (neither `Absent` nor `Free`).
    pub const fn is_owned(self) -> bool {
        !matches!(self, FrameState::Absent | FrameState::Free)
    }
}

impl fmt::Display for FrameState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// Per-frame flags (the page-cache states: clean, dirty, under I/O,
/// referenced, locked; plus pinned and active).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
#[repr(transparent)]
pub struct FrameFlags(pub u16);

impl FrameFlags {
    /// No flag set (a clean, idle page).
    pub const EMPTY: FrameFlags = FrameFlags(0);
    /// Contents differ from the backing store.
    pub const DIRTY: FrameFlags = FrameFlags(1 << 0);
    /// A device read or write is in flight.
    pub const UNDER_IO: FrameFlags = FrameFlags(1 << 1);
    /// Accessed since the LRU last looked.
    pub const REFERENCED: FrameFlags = FrameFlags(1 << 2);
    /// Locked by a task (contents being filled or checked).
    pub const LOCKED: FrameFlags = FrameFlags(1 << 3);
    /// Long-term pinned (O_DIRECT buffer, vmsplice, DMA): cannot migrate.
    pub const PINNED: FrameFlags = FrameFlags(1 << 4);
    /// On the active LRU list.
    pub const ACTIVE: FrameFlags = FrameFlags(1 << 5);

    /// Raw bits.
    pub const fn bits(self) -> u16 {
        self.0
    }
    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: FrameFlags) -> bool {
        self.0 & other.0 == other.0
    }
    /// Whether any flag of `other` is set.
    pub const fn intersects(self, other: FrameFlags) -> bool {
        self.0 & other.0 != 0
    }
    /// Whether no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// `self | other`.
    pub const fn union(self, other: FrameFlags) -> FrameFlags {
        FrameFlags(self.0 | other.0)
    }
    /// `self & !other`.
    pub const fn difference(self, other: FrameFlags) -> FrameFlags {
        FrameFlags(self.0 & !other.0)
    }
}

impl core::ops::BitOr for FrameFlags {
    type Output = FrameFlags;
    fn bitor(self, rhs: FrameFlags) -> FrameFlags {
        self.union(rhs)
    }
}

impl core::ops::BitOrAssign for FrameFlags {
    fn bitor_assign(&mut self, rhs: FrameFlags) {
        self.0 |= rhs.0;
    }
}

/// One frame's descriptor (24 bytes). See the crate docs for who may change
/// which field. Read it through [`FrameTable::frame`], write the owner's
/// fields through [`FrameTable::frame_mut`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct FrameDesc {
    state: FrameState,
    /// Buddy bits: order (low nibble) | `BUD_MANAGED` | `BUD_HEAD`.
    bud: u8,
    flags: FrameFlags,
    pin_count: u16,
    owner: u16,
    mapping: u32,
    index: u32,
    next: u32,
    prev: u32,
}

impl FrameDesc {
    /// The descriptor of a frame that is not RAM; what every descriptor holds
    /// right after [`FrameTable::new`]. Use it to fill storage for a table.
    pub const ABSENT: FrameDesc = FrameDesc {
        state: FrameState::Absent,
        bud: 0,
        flags: FrameFlags::EMPTY,
        pin_count: 0,
        owner: 0,
        mapping: 0,
        index: 0,
        next: NIL,
        prev: NIL,
    };

    /// The frame's state.
    pub const fn state(&self) -> FrameState {
        self.state
    }
    /// Page flags.
    pub const fn flags(&self) -> FrameFlags {
        self.flags
    }
    /// Number of pins (readers, DMA in flight).
    pub const fn pin_count(&self) -> u16 {
        self.pin_count
    }
    /// Area or subsystem id.
    pub const fn owner(&self) -> u16 {
        self.owner
    }
    /// File id (reverse map).
    pub const fn mapping(&self) -> u32 {
        self.mapping
    }
    /// Page index in the file (reverse map).
    pub const fn index(&self) -> u32 {
        self.index
    }
    /// Whether the frame was given to the buddy allocator.
    pub const fn is_managed(&self) -> bool {
        self.bud & BUD_MANAGED != 0
    }
    /// The block order if this frame heads a free block or a live buddy
    /// allocation; `None` for tails and unmanaged frames.
    pub const fn block_order(&self) -> Option<u8> {
        if self.bud & BUD_HEAD != 0 {
            Some(self.bud & BUD_ORDER_MASK)
        } else {
            None
        }
    }
    /// The owner's list links (`NIL` = none). Meaningful only while owned.
    pub const fn links(&self) -> (u32, u32) {
        (self.next, self.prev)
    }

    const fn is_free_head(&self, order: u8) -> bool {
        matches!(self.state, FrameState::Free) && self.bud == BUD_MANAGED | BUD_HEAD | order
    }

    /// Clears everything the owner may have set.
    fn reset_owner_fields(&mut self) {
        self.flags = FrameFlags::EMPTY;
        self.pin_count = 0;
        self.owner = 0;
        self.mapping = 0;
        self.index = 0;
        self.next = NIL;
        self.prev = NIL;
    }
}

impl Default for FrameDesc {
    fn default() -> Self {
        FrameDesc::ABSENT
    }
}

/// Errors of the frame table. An operation that returns an error changed
/// nothing.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FrameError {
    /// No free block of the requested order (or any larger one).
    OutOfMemory {
        /// Requested order.
        order: u8,
    },
    /// Order above [`MAX_ORDER`].
    BadOrder(u8),
    /// `alloc_pages`/`free_pages` count of 0 or above [`MAX_PAGES_PER_ALLOC`].
    BadCount(u64),
    /// The frame (or part of the range) is not covered by this table.
    OutOfRange(Pfn),
    /// The pfn is not aligned to the block order.
    Misaligned {
        /// Frame given.
        pfn: Pfn,
        /// Order given.
        order: u8,
    },
    /// The frame is already free.
    DoubleFree(Pfn),
    /// The frame was never handed out by the buddy (hole, reserved, marked).
    NotAllocated {
        /// Frame given.
        pfn: Pfn,
        /// Its state.
        state: FrameState,
    },
    /// The frame is inside a live allocation but is not its first frame.
    NotHead(Pfn),
    /// The allocation headed by `pfn` has another order.
    WrongOrder {
        /// Frame given.
        pfn: Pfn,
        /// Order of the live allocation.
        allocated: u8,
        /// Order given.
        given: u8,
    },
    /// A frame of the block still has a non-zero `pin_count`.
    Pinned(Pfn),
    /// This state cannot be the target of the operation (e.g. `Free` for
    /// `alloc`, `mark` or `set_state`).
    BadState(FrameState),
    /// The frame is in a state that forbids the operation (e.g. `mark` of a
    /// frame the buddy manages, `set_state`/`frame_mut` of a free frame).
    Busy {
        /// Frame concerned.
        pfn: Pfn,
        /// Its state.
        state: FrameState,
    },
    /// More than `u32::MAX - 1` descriptors, or the span overflows.
    TableTooLarge,
    /// `pin_count` would overflow.
    PinOverflow(Pfn),
    /// `unpin` of a frame with `pin_count == 0`.
    NotPinned(Pfn),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FrameError::OutOfMemory { order } => {
                write!(f, "out of memory for an order-{order} block")
            }
            FrameError::BadOrder(o) => write!(f, "order {o} above MAX_ORDER {MAX_ORDER}"),
            FrameError::BadCount(n) => write!(f, "bad page count {n}"),
            FrameError::OutOfRange(p) => write!(f, "{p} not covered by the frame table"),
            FrameError::Misaligned { pfn, order } => {
                write!(f, "{pfn} not aligned for order {order}")
            }
            FrameError::DoubleFree(p) => write!(f, "double free of {p}"),
            FrameError::NotAllocated { pfn, state } => {
                write!(
                    f,
                    "free of {pfn} which the buddy never allocated (state {state})"
                )
            }
            FrameError::NotHead(p) => {
                write!(f, "free of {p} which is inside an allocation, not its head")
            }
            FrameError::WrongOrder {
                pfn,
                allocated,
                given,
            } => {
                write!(
                    f,
                    "free of {pfn} with order {given}, allocated with order {allocated}"
                )
            }
            FrameError::Pinned(p) => write!(f, "{p} is still pinned"),
            FrameError::BadState(s) => write!(f, "state {s} not allowed here"),
            FrameError::Busy { pfn, state } => write!(f, "{pfn} is busy (state {state})"),
            FrameError::TableTooLarge => write!(f, "frame table too large"),
            FrameError::PinOverflow(p) => write!(f, "pin count of {p} overflows"),
            FrameError::NotPinned(p) => write!(f, "{p} is not pinned"),
        }
    }
}

/// A broken invariant found by [`FrameTable::verify`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Corruption {
    /// Frame where it was found (the table base for global counters).
    pub pfn: Pfn,
    /// What is wrong.
    pub what: &'static str,
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "frame table corrupt at {}: {}", self.pfn, self.what)
    }
}

/// Counters of a [`FrameTable`] (all in frames, except `free_blocks`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FrameStats {
    /// Frames covered by the table (including holes).
    pub total: u64,
    /// Frames given to the buddy (free or allocated from it).
    pub managed: u64,
    /// Free frames in the buddy.
    pub free: u64,
    /// Number of free blocks on each free list, by order.
    pub free_blocks: [u64; NR_ORDERS],
    /// Frames in each state, indexed by `FrameState as usize`.
    pub per_state: [u64; FrameState::COUNT],
}

impl FrameStats {
    /// Frames in `state`.
    pub const fn state(&self, state: FrameState) -> u64 {
        self.per_state[state as usize]
    }
}

impl fmt::Display for FrameStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "frames total={} managed={} free={} blocks=[",
            self.total, self.managed, self.free
        )?;
        for (o, n) in self.free_blocks.iter().enumerate() {
            if o > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{n}")?;
        }
        f.write_str("]")?;
        for s in FrameState::ALL {
            write!(f, " {}={}", s.name(), self.state(*s))?;
        }
        Ok(())
    }
}

/// Write access to an owned frame's owner fields (see the crate docs).
pub struct FrameMut<'t> {
    pfn: Pfn,
    desc: &'t mut FrameDesc,
}

impl FrameMut<'_> {
    /// The frame.
    pub fn pfn(&self) -> Pfn {
        self.pfn
    }
    /// Read-only view of the whole descriptor.
    pub fn desc(&self) -> &FrameDesc {
        self.desc
    }
    /// Replaces the flags.
    pub fn set_flags(&mut self, flags: FrameFlags) {
        self.desc.flags = flags;
    }
    /// Sets `flags` in addition to those already set.
    pub fn insert_flags(&mut self, flags: FrameFlags) {
        self.desc.flags |= flags;
    }
    /// Clears `flags`.
    pub fn remove_flags(&mut self, flags: FrameFlags) {
        self.desc.flags = self.desc.flags.difference(flags);
    }
    /// Takes a pin; returns the new count.
    pub fn pin(&mut self) -> Result<u16, FrameError> {
        let n = self
            .desc
            .pin_count
            .checked_add(1)
            .ok_or(FrameError::PinOverflow(self.pfn))?;
        self.desc.pin_count = n;
        Ok(n)
    }
    /// Drops a pin; returns the new count.
    pub fn unpin(&mut self) -> Result<u16, FrameError> {
        let n = self
            .desc
            .pin_count
            .checked_sub(1)
            .ok_or(FrameError::NotPinned(self.pfn))?;
        self.desc.pin_count = n;
        Ok(n)
    }
    /// Sets the area or subsystem id.
    pub fn set_owner(&mut self, owner: u16) {
        self.desc.owner = owner;
    }
    /// Sets the reverse map: file id and page index.
    pub fn set_mapping(&mut self, mapping: u32, index: u32) {
        self.desc.mapping = mapping;
        self.desc.index = index;
    }
    /// Sets the owner's list links (frame indices or pfns, the owner's choice;
    /// [`NIL`] = none).
    pub fn set_links(&mut self, next: u32, prev: u32) {
        self.desc.next = next;
        self.desc.prev = prev;
    }
}

/// The descriptor array for pfns `[base, base + len)` and the buddy allocator
/// over the frames given to it.
pub struct FrameTable<'a> {
    descs: &'a mut [FrameDesc],
    base: u64,
    free_head: [u32; NR_ORDERS],
    free_blocks: [u64; NR_ORDERS],
    managed: u64,
    per_state: [u64; FrameState::COUNT],
}

impl fmt::Debug for FrameTable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameTable")
            .field("base", &Pfn(self.base))
            .field("len", &self.descs.len())
            .field("stats", &self.stats())
            .finish()
    }
}

impl<'a> FrameTable<'a> {
    /// Bytes of descriptors needed to cover `frames` frames.
    pub const fn bytes_for(frames: u64) -> u64 {
        frames * core::mem::size_of::<FrameDesc>() as u64
    }

    /// Bytes of descriptors needed to cover the pfn span `span`.
    pub const fn bytes_for_span(span: Range<Pfn>) -> u64 {
        Self::bytes_for(span.end.0.saturating_sub(span.start.0))
    }

    /// Frames (pages) needed to hold the descriptors of `frames` frames.
    pub const fn frames_for(frames: u64) -> u64 {
        Self::bytes_for(frames).div_ceil(PAGE_SIZE)
    }

    /// A table over pfns `[base, base + descs.len())`; every frame starts
    /// `Absent`.
    pub fn new(descs: &'a mut [FrameDesc], base: Pfn) -> Result<Self, FrameError> {
        Self::check_span(descs.len(), base)?;
        descs.fill(FrameDesc::ABSENT);
        Ok(Self::over(descs, base))
    }

    /// Like [`FrameTable::new`] over uninitialised memory, e.g. frames the
    /// kernel carved out of RAM and viewed with
    /// `slice::from_raw_parts_mut(va as *mut MaybeUninit<FrameDesc>, n)`.
    pub fn new_uninit(
        mem: &'a mut [MaybeUninit<FrameDesc>],
        base: Pfn,
    ) -> Result<Self, FrameError> {
        Self::check_span(mem.len(), base)?;
        for m in mem.iter_mut() {
            m.write(FrameDesc::ABSENT);
        }
        let len = mem.len();
        let ptr = mem.as_mut_ptr().cast::<FrameDesc>();
        // SAFETY: `MaybeUninit<FrameDesc>` has the same size, alignment and
        // layout as `FrameDesc`, every element was initialised by the loop
        // above, and the new slice takes over the unique borrow `mem` for `'a`.
        let descs = unsafe { core::slice::from_raw_parts_mut(ptr, len) };
        Ok(Self::over(descs, base))
    }

    fn check_span(len: usize, base: Pfn) -> Result<(), FrameError> {
        if len as u64 >= NIL as u64 || base.0.checked_add(len as u64).is_none() {
            return Err(FrameError::TableTooLarge);
        }
        Ok(())
    }

    fn over(descs: &'a mut [FrameDesc], base: Pfn) -> Self {
        let mut per_state = [0; FrameState::COUNT];
        per_state[FrameState::Absent as usize] = descs.len() as u64;
        FrameTable {
            descs,
            base: base.0,
            free_head: [NIL; NR_ORDERS],
            free_blocks: [0; NR_ORDERS],
            managed: 0,
            per_state,
        }
    }

    /// First pfn covered.
    pub fn base(&self) -> Pfn {
        Pfn(self.base)
    }
    /// Number of frames covered.
    pub fn len(&self) -> u64 {
        self.descs.len() as u64
    }
    /// Whether the table covers no frame.
    pub fn is_empty(&self) -> bool {
        self.descs.is_empty()
    }
    /// The pfns covered.
    pub fn span(&self) -> Range<Pfn> {
        Pfn(self.base)..Pfn(self.base + self.len())
    }
    /// Whether `pfn` is covered.
    pub fn contains(&self, pfn: Pfn) -> bool {
        self.idx(pfn).is_some()
    }

    fn idx(&self, pfn: Pfn) -> Option<usize> {
        let off = pfn.0.checked_sub(self.base)?;
        if off < self.len() {
            Some(off as usize)
        } else {
            None
        }
    }

    fn pfn_at(&self, idx: usize) -> Pfn {
        Pfn(self.base + idx as u64)
    }

    fn check_range(&self, range: &Range<Pfn>) -> Result<(usize, usize), FrameError> {
        if range.end.0 <= range.start.0 {
            return Ok((0, 0));
        }
        let a = self
            .idx(range.start)
            .ok_or(FrameError::OutOfRange(range.start))?;
        let last = Pfn(range.end.0 - 1);
        let b = self.idx(last).ok_or(FrameError::OutOfRange(last))?;
        Ok((a, b + 1))
    }

    /// The descriptor of `pfn`.
    pub fn frame(&self, pfn: Pfn) -> Option<&FrameDesc> {
        self.idx(pfn).map(|i| &self.descs[i])
    }

    /// The state of `pfn`.
    pub fn state(&self, pfn: Pfn) -> Option<FrameState> {
        self.frame(pfn).map(|d| d.state)
    }

    /// Write access to the owner fields of an owned frame (not `Free`, not
    /// `Absent`).
    pub fn frame_mut(&mut self, pfn: Pfn) -> Result<FrameMut<'_>, FrameError> {
        let i = self.idx(pfn).ok_or(FrameError::OutOfRange(pfn))?;
        let desc = &mut self.descs[i];
        if !desc.state.is_owned() {
            return Err(FrameError::Busy {
                pfn,
                state: desc.state,
            });
        }
        Ok(FrameMut { pfn, desc })
    }

    /// Gives the `Absent` frames of `range` to the buddy allocator; frames in
    /// any other state (marked, or already given) are skipped, so the kernel
    /// can `mark` its reservations first and then add whole RAM banks.
    /// Returns the number of frames added.
    pub fn add_free_range(&mut self, range: Range<Pfn>) -> Result<u64, FrameError> {
        let (a, b) = self.check_range(&range)?;
        let mut added = 0;
        let mut i = a;
        while i < b {
            if self.descs[i].state != FrameState::Absent || self.descs[i].is_managed() {
                i += 1;
                continue;
            }
            let mut j = i;
            while j < b && self.descs[j].state == FrameState::Absent && !self.descs[j].is_managed()
            {
                j += 1;
            }
            // [i, j) is a run of Absent frames: add it as maximal aligned blocks.
            let mut cur = i;
            while cur < j {
                let order = self.largest_block(cur, j);
                let n = 1usize << order;
                for d in &mut self.descs[cur..cur + n] {
                    d.state = FrameState::Free;
                    d.bud = BUD_MANAGED;
                    d.reset_owner_fields();
                }
                self.per_state[FrameState::Absent as usize] -= n as u64;
                self.per_state[FrameState::Free as usize] += n as u64;
                self.managed += n as u64;
                added += n as u64;
                self.insert_free(cur, order);
                cur += n;
            }
            i = j;
        }
        Ok(added)
    }

    /// Largest order of a naturally aligned block starting at index `cur`
    /// and ending at or before index `end`.
    fn largest_block(&self, cur: usize, end: usize) -> u8 {
        let pfn = self.base + cur as u64;
        let mut order = (pfn.trailing_zeros().min(MAX_ORDER as u32)) as u8;
        while cur + (1usize << order) > end {
            order -= 1;
        }
        order
    }

    /// Sets the frames of `range` (which must not be managed by the buddy) to
    /// `state` with owner id `owner`, resetting their other owner fields.
    /// `state` may be anything but `Free`; `Absent` un-marks (e.g. to hand
    /// boot memory to the buddy afterwards).
    pub fn mark(
        &mut self,
        range: Range<Pfn>,
        state: FrameState,
        owner: u16,
    ) -> Result<(), FrameError> {
        if state == FrameState::Free {
            return Err(FrameError::BadState(state));
        }
        let (a, b) = self.check_range(&range)?;
        if let Some(i) = (a..b).find(|&i| self.descs[i].is_managed()) {
            return Err(FrameError::Busy {
                pfn: self.pfn_at(i),
                state: self.descs[i].state,
            });
        }
        for i in a..b {
            let d = &mut self.descs[i];
            self.per_state[d.state as usize] -= 1;
            self.per_state[state as usize] += 1;
            d.state = state;
            d.reset_owner_fields();
            d.owner = owner;
        }
        Ok(())
    }

    /// Changes the state of an owned frame to another owned state (e.g.
    /// `ReservedArea -> Cleancache -> Allocated -> ReservedArea`, or a buddy
    /// page becoming `PageCache`). Returns the previous state.
    pub fn set_state(&mut self, pfn: Pfn, state: FrameState) -> Result<FrameState, FrameError> {
        if !state.is_owned() {
            return Err(FrameError::BadState(state));
        }
        let i = self.idx(pfn).ok_or(FrameError::OutOfRange(pfn))?;
        let old = self.descs[i].state;
        if !old.is_owned() {
            return Err(FrameError::Busy { pfn, state: old });
        }
        self.per_state[old as usize] -= 1;
        self.per_state[state as usize] += 1;
        self.descs[i].state = state;
        Ok(old)
    }

    /// [`FrameTable::set_state`] for every frame of `range`, all or nothing.
    pub fn set_state_range(
        &mut self,
        range: Range<Pfn>,
        state: FrameState,
    ) -> Result<(), FrameError> {
        if !state.is_owned() {
            return Err(FrameError::BadState(state));
        }
        let (a, b) = self.check_range(&range)?;
        if let Some(i) = (a..b).find(|&i| !self.descs[i].state.is_owned()) {
            return Err(FrameError::Busy {
                pfn: self.pfn_at(i),
                state: self.descs[i].state,
            });
        }
        for i in a..b {
            let d = &mut self.descs[i];
            self.per_state[d.state as usize] -= 1;
            self.per_state[state as usize] += 1;
            d.state = state;
        }
        Ok(())
    }
    /// Allocates a naturally aligned block of `2^order` frames and puts every
    /// frame of it in `state` (any owned state) with clean owner fields.
    pub fn alloc(&mut self, order: u8, state: FrameState) -> Result<Pfn, FrameError> {
        if order > MAX_ORDER {
            return Err(FrameError::BadOrder(order));
        }
        if !state.is_owned() {
            return Err(FrameError::BadState(state));
        }
        let i = self
            .take_block(order)
            .ok_or(FrameError::OutOfMemory { order })?;
        self.claim(i, order, state);
        Ok(self.pfn_at(i))
    }

    /// Returns the block of `2^order` frames at `pfn`, which must be the head
    /// of a live allocation of exactly `order` with no frame pinned. The block
    /// is coalesced with its free buddies. On error nothing changed.
    pub fn free(&mut self, pfn: Pfn, order: u8) -> Result<(), FrameError> {
        let i = self.check_allocated(pfn, order)?;
        self.release(i, order);
        Ok(())
    }

    /// The order of the live allocation headed by `pfn`, if any.
    pub fn allocation_order(&self, pfn: Pfn) -> Option<u8> {
        let d = self.frame(pfn)?;
        if d.is_managed() && d.state.is_owned() {
            d.block_order()
        } else {
            None
        }
    }

    /// Allocates `count` contiguous frames (`1..=MAX_PAGES_PER_ALLOC`), the
    /// start aligned to the next power of two of `count`; the rest of that
    /// power-of-two block goes straight back to the free lists. Free them with
    /// [`FrameTable::free_pages`] and the same count.
    pub fn alloc_pages(&mut self, count: u64, state: FrameState) -> Result<Pfn, FrameError> {
        if count == 0 || count > MAX_PAGES_PER_ALLOC {
            return Err(FrameError::BadCount(count));
        }
        if !state.is_owned() {
            return Err(FrameError::BadState(state));
        }
        let order = count.next_power_of_two().trailing_zeros() as u8;
        let start = self
            .take_block(order)
            .ok_or(FrameError::OutOfMemory { order })?;
        // Keep [start, start + count) as blocks of decreasing order (each one
        // naturally aligned because `start` is aligned to 2^order).
        let mut cur = start;
        for o in (0..=order).rev() {
            if count & (1 << o) != 0 {
                self.claim(cur, o, state);
                cur += 1 << o;
            }
        }
        // Return the excess: its frames are still `Free`, only off the lists.
        let end = start + (1usize << order);
        while cur < end {
            let o = self.largest_block(cur, end);
            self.insert_free(cur, o);
            cur += 1 << o;
        }
        Ok(self.pfn_at(start))
    }

    /// Frees `count` frames allocated by [`FrameTable::alloc_pages`] at `pfn`.
    /// All or nothing: every sub-block is checked before any is freed.
    pub fn free_pages(&mut self, pfn: Pfn, count: u64) -> Result<(), FrameError> {
        if count == 0 || count > MAX_PAGES_PER_ALLOC {
            return Err(FrameError::BadCount(count));
        }
        for pass in 0..2 {
            let mut cur = pfn;
            for o in (0..=MAX_ORDER).rev() {
                if count & (1 << o) != 0 {
                    if pass == 0 {
                        self.check_allocated(cur, o)?;
                    } else {
                        let i = self.check_allocated(cur, o)?;
                        self.release(i, o);
                    }
                    cur = cur.add(1 << o);
                }
            }
        }
        Ok(())
    }

    /// Counters.
    pub fn stats(&self) -> FrameStats {
        FrameStats {
            total: self.len(),
            managed: self.managed,
            free: self.free_frames(),
            free_blocks: self.free_blocks,
            per_state: self.per_state,
        }
    }

    /// Free frames in the buddy.
    pub fn free_frames(&self) -> u64 {
        self.per_state[FrameState::Free as usize]
    }

    /// Frames given to the buddy.
    pub fn managed_frames(&self) -> u64 {
        self.managed
    }

    /// Frames in `state`.
    pub fn state_count(&self, state: FrameState) -> u64 {
        self.per_state[state as usize]
    }

    /// Free blocks on the free list of `order` (0 for orders above
    /// [`MAX_ORDER`]).
    pub fn free_blocks(&self, order: u8) -> u64 {
        self.free_blocks.get(order as usize).copied().unwrap_or(0)
    }

    /// Checks every invariant of the descriptors and free lists in
    /// `O(frames)`; for tests and kernel self-checks.
    pub fn verify(&self) -> Result<(), Corruption> {
        let bad = |i: usize, what| {
            Err(Corruption {
                pfn: self.pfn_at(i),
                what,
            })
        };
        let len = self.descs.len();
        let mut per_state = [0u64; FrameState::COUNT];
        let mut managed = 0u64;
        let mut heads = [0u64; NR_ORDERS];
        let mut i = 0;
        while i < len {
            let d = &self.descs[i];
            per_state[d.state as usize] += 1;
            if !d.is_managed() {
                if d.bud != 0 {
                    return bad(i, "unmanaged frame carries buddy bits");
                }
                if d.state == FrameState::Free {
                    return bad(i, "free frame not managed by the buddy");
                }
                i += 1;
                continue;
            }
            let Some(order) = d.block_order() else {
                return bad(i, "managed frame outside any block");
            };
            if order > MAX_ORDER {
                return bad(i, "block order above MAX_ORDER");
            }
            if !self.pfn_at(i).is_aligned(order) {
                return bad(i, "block not naturally aligned");
            }
            let n = 1usize << order;
            if i + n > len {
                return bad(i, "block runs past the end of the table");
            }
            let free = d.state == FrameState::Free;
            if !free && !d.state.is_owned() {
                return bad(i, "managed frame is absent");
            }
            for j in i..i + n {
                let t = &self.descs[j];
                if j > i {
                    per_state[t.state as usize] += 1;
                    if t.bud != BUD_MANAGED {
                        return bad(j, "block tail carries head or order bits");
                    }
                    if free != (t.state == FrameState::Free) || !(free || t.state.is_owned()) {
                        return bad(j, "block mixes free and owned frames");
                    }
                }
                if free
                    && (!t.flags.is_empty()
                        || t.pin_count != 0
                        || t.owner != 0
                        || t.mapping != 0
                        || t.index != 0)
                {
                    return bad(j, "free frame has owner fields set");
                }
            }
            if free {
                heads[order as usize] += 1;
                if order < MAX_ORDER {
                    let buddy = self.pfn_at(i).0 ^ (1 << order);
                    if self
                        .idx(Pfn(buddy))
                        .is_some_and(|b| self.descs[b].is_free_head(order))
                    {
                        return bad(i, "free buddies not coalesced");
                    }
                }
            }
            managed += n as u64;
            i += n;
        }
        let at_base = |what| {
            Err(Corruption {
                pfn: Pfn(self.base),
                what,
            })
        };
        if per_state != self.per_state {
            return at_base("per-state counters disagree with the descriptors");
        }
        if managed != self.managed {
            return at_base("managed counter disagrees with the descriptors");
        }
        let mut free_frames = 0u64;
        for (o, &nheads) in heads.iter().enumerate() {
            if nheads != self.free_blocks[o] {
                return at_base("free block counter disagrees with the descriptors");
            }
            let mut prev = NIL;
            let mut cur = self.free_head[o];
            let mut seen = 0u64;
            while cur != NIL {
                let c = cur as usize;
                if c >= len {
                    return at_base("free list link out of range");
                }
                if !self.descs[c].is_free_head(o as u8) {
                    return bad(
                        c,
                        "free list holds a frame that is not a free head of its order",
                    );
                }
                if self.descs[c].prev != prev {
                    return bad(c, "free list back link broken");
                }
                seen += 1;
                if seen > nheads {
                    return bad(c, "free list longer than the free blocks (cycle?)");
                }
                prev = cur;
                cur = self.descs[c].next;
            }
            if seen != nheads {
                return at_base("free block missing from its free list");
            }
            free_frames += nheads << o;
        }
        if free_frames != self.free_frames() {
            return at_base("free lists disagree with the free counter");
        }
        Ok(())
    }

    // ---- buddy internals -------------------------------------------------

    /// Checks that `pfn` heads a live allocation of `order` with no pinned
    /// frame; returns its index.
    fn check_allocated(&self, pfn: Pfn, order: u8) -> Result<usize, FrameError> {
        if order > MAX_ORDER {
            return Err(FrameError::BadOrder(order));
        }
        let i = self.idx(pfn).ok_or(FrameError::OutOfRange(pfn))?;
        if !pfn.is_aligned(order) {
            return Err(FrameError::Misaligned { pfn, order });
        }
        let d = &self.descs[i];
        if !d.is_managed() {
            return Err(FrameError::NotAllocated {
                pfn,
                state: d.state,
            });
        }
        if d.state == FrameState::Free {
            return Err(FrameError::DoubleFree(pfn));
        }
        let Some(allocated) = d.block_order() else {
            return Err(FrameError::NotHead(pfn));
        };
        if allocated != order {
            return Err(FrameError::WrongOrder {
                pfn,
                allocated,
                given: order,
            });
        }
        if let Some(j) = (i..i + (1 << order)).find(|&j| self.descs[j].pin_count != 0) {
            return Err(FrameError::Pinned(self.pfn_at(j)));
        }
        Ok(i)
    }

    /// Takes a free block of exactly `order` off the free lists, splitting a
    /// larger one if needed. Its frames stay `Free` with no head bit.
    fn take_block(&mut self, order: u8) -> Option<usize> {
        let mut o = (order..=MAX_ORDER).find(|&o| self.free_head[o as usize] != NIL)?;
        let i = self.free_head[o as usize] as usize;
        self.list_remove(i, o);
        self.descs[i].bud = BUD_MANAGED;
        while o > order {
            o -= 1;
            let upper = i + (1 << o);
            self.descs[upper].bud = BUD_MANAGED | BUD_HEAD | o;
            self.list_push(upper, o);
        }
        Some(i)
    }

    /// Hands the (taken) free block at `i` to an owner in `state`.
    fn claim(&mut self, i: usize, order: u8, state: FrameState) {
        let n = 1usize << order;
        for d in &mut self.descs[i..i + n] {
            d.state = state;
            d.bud = BUD_MANAGED;
            d.reset_owner_fields();
        }
        self.descs[i].bud = BUD_MANAGED | BUD_HEAD | order;
        self.per_state[FrameState::Free as usize] -= n as u64;
        self.per_state[state as usize] += n as u64;
    }

    /// Returns the owned block at `i` to the free lists.
    fn release(&mut self, i: usize, order: u8) {
        for d in &mut self.descs[i..i + (1 << order)] {
            self.per_state[d.state as usize] -= 1;
            d.state = FrameState::Free;
            d.bud = BUD_MANAGED;
            d.reset_owner_fields();
        }
        self.per_state[FrameState::Free as usize] += 1 << order;
        self.insert_free(i, order);
    }

    /// Puts the block at `i` (frames `Free`, no head bit, off every list) on
    /// the free lists, merging it with its free buddies.
    fn insert_free(&mut self, i: usize, order: u8) {
        let mut pfn = self.base + i as u64;
        let mut o = order;
        while o < MAX_ORDER {
            let buddy = pfn ^ (1 << o);
            match self.idx(Pfn(buddy)) {
                Some(b) if self.descs[b].is_free_head(o) => {
                    self.list_remove(b, o);
                    self.descs[b].bud = BUD_MANAGED;
                    pfn = pfn.min(buddy);
                    o += 1;
                }
                _ => break,
            }
        }
        let i = (pfn - self.base) as usize;
        self.descs[i].bud = BUD_MANAGED | BUD_HEAD | o;
        self.list_push(i, o);
    }

    fn list_push(&mut self, i: usize, order: u8) {
        let head = self.free_head[order as usize];
        self.descs[i].next = head;
        self.descs[i].prev = NIL;
        if head != NIL {
            self.descs[head as usize].prev = i as u32;
        }
        self.free_head[order as usize] = i as u32;
        self.free_blocks[order as usize] += 1;
    }

    fn list_remove(&mut self, i: usize, order: u8) {
        let (next, prev) = (self.descs[i].next, self.descs[i].prev);
        if prev != NIL {
            self.descs[prev as usize].next = next;
        } else {
            self.free_head[order as usize] = next;
        }
        if next != NIL {
            self.descs[next as usize].prev = prev;
        }
        self.descs[i].next = NIL;
        self.descs[i].prev = NIL;
        self.free_blocks[order as usize] -= 1;
    }
}
