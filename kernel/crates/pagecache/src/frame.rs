//! Page frames as the page cache sees them: where they come from
//! ([`PageAllocator`]) and where their state lives ([`PageStateStore`]).
//!
//! Rules:
//! * The page cache owns a frame from `alloc_page` until it gives it back
//!   with `free_page`, or hands it to the caller of `migrate` (the old frame
//!   of a migrated page). A frame given to `migrate` as the new frame becomes
//!   the page cache's and is later returned through `free_page`, so the
//!   allocator must accept frames it did not hand out (the kernel's buddy
//!   allocator does).
//! * A frame's page state (flags, pin count, owner `(file, index)`) lives in
//!   the [`PageStateStore`], which the kernel backs with its frame descriptors
//!   (`frames::FrameDesc`) so that CMA can see without the page cache's lock
//!   whether a frame is pinned. [`LocalPageStates`] is the stand-alone store
//!   used by host tests.
//! * A frame is *busy* (not movable, not evictable) while its pin count is
//!   non-zero or it is UNDER_IO or LOCKED. Every I/O holds one pin.

use alloc::alloc::{Layout, alloc_zeroed, dealloc};
use alloc::collections::{BTreeMap, BTreeSet};

use crate::hooks::{FileId, PAGE_SIZE, PageIndex};

/// A page frame, by its kernel virtual address (the unikernel maps memory
/// 1:1, so this is also the physical address given to DMA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Frame(usize);

impl Frame {
    /// The frame at `addr`, if it is non-zero and page aligned.
    pub fn from_addr(addr: usize) -> Option<Frame> {
        (addr != 0 && addr.is_multiple_of(PAGE_SIZE as usize)).then_some(Frame(addr))
    }
    /// Its address.
    pub fn addr(self) -> usize {
        self.0
    }
}

/// Source of frames for file pages.
///
/// # Safety
///
/// `alloc_page` must return frames that are `PAGE_SIZE` bytes of RAM at
/// `frame.addr()`, readable and writable, aligned, and not used by anyone
/// else until they come back through `free_page` (or leave by `migrate`).
pub unsafe trait PageAllocator {
    /// One frame for a file page; `None` when memory is short.
    fn alloc_page(&mut self) -> Option<Frame>;
    /// Gives a frame back.
    fn free_page(&mut self, frame: Frame);
}

/// Frames from the heap (host tests; a kernel before its buddy is ready).
/// Optionally limited; frees what is still out when dropped.
#[derive(Debug, Default)]
pub struct HeapPageAllocator {
    out: BTreeSet<Frame>,
    limit: Option<usize>,
    /// Frames handed out so far.
    pub allocated: u64,
    /// Frames given back so far.
    pub freed: u64,
}

impl HeapPageAllocator {
    /// No limit.
    pub fn new() -> Self {
        Self::default()
    }
    /// At most `limit` frames out at once.
    pub fn with_limit(limit: usize) -> Self {
        let mut a = Self::default();
        a.limit = Some(limit);
        a
    }
    /// Stops tracking a frame whose ownership went elsewhere (a migration
    /// target now owned by another allocator's user), so that dropping this
    /// allocator does not free it.
    pub fn hand_over(&mut self, frame: Frame) {
        self.out.remove(&frame);
    }
    /// Frames currently out.
    pub fn outstanding(&self) -> usize {
        self.out.len()
    }
    fn layout() -> Layout {
        // PAGE_SIZE is a non-zero power of two.
        Layout::from_size_align(PAGE_SIZE as usize, PAGE_SIZE as usize)
            .unwrap_or(Layout::new::<u8>())
    }
}

// SAFETY: frames are fresh page-aligned heap blocks of PAGE_SIZE bytes,
// tracked in `out` and released only through `free_page` or `drop`.
unsafe impl PageAllocator for HeapPageAllocator {
    fn alloc_page(&mut self) -> Option<Frame> {
        if self.limit.is_some_and(|l| self.out.len() >= l) {
            return None;
        }
        // SAFETY: the layout has non-zero size.
        let p = unsafe { alloc_zeroed(Self::layout()) };
        let f = Frame::from_addr(p as usize)?;
        self.out.insert(f);
        self.allocated += 1;
        Some(f)
    }
    fn free_page(&mut self, frame: Frame) {
        // Frames this allocator did not hand out (a migration target made by
        // someone else) are adopted: they were made with the same layout in
        // the tests that use this allocator.
        self.out.remove(&frame);
        self.freed += 1;
        // SAFETY: the frame was allocated with `layout()` (by us or by another
        // HeapPageAllocator) and its owner gave it back.
        unsafe { dealloc(frame.addr() as *mut u8, Self::layout()) };
    }
}

impl Drop for HeapPageAllocator {
    fn drop(&mut self) {
        for f in core::mem::take(&mut self.out) {
            // SAFETY: still-outstanding frames were allocated by us with
            // `layout()`; their user (the page cache) is gone.
            unsafe { dealloc(f.addr() as *mut u8, Self::layout()) };
        }
    }
}

/// Page flags, stored in the frame's descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PageFlags(pub u32);

impl PageFlags {
    /// No flags.
    pub const EMPTY: PageFlags = PageFlags(0);
    /// Content differs from disk; must be written back before it is dropped.
    pub const DIRTY: PageFlags = PageFlags(1 << 0);
    /// A device request is moving this frame's data (holds a pin).
    pub const UNDER_IO: PageFlags = PageFlags(1 << 1);
    /// Accessed since it was last aged (second-chance bit of the LRU).
    pub const REFERENCED: PageFlags = PageFlags(1 << 2);
    /// Being filled by a read: content not valid yet.
    pub const LOCKED: PageFlags = PageFlags(1 << 3);
    /// On the active list.
    pub const ACTIVE: PageFlags = PageFlags(1 << 4);
    /// Content is valid.
    pub const UPTODATE: PageFlags = PageFlags(1 << 5);
    /// Hitting this page starts the next asynchronous readahead window.
    pub const READAHEAD: PageFlags = PageFlags(1 << 6);
    /// The last I/O on this page failed.
    pub const ERROR: PageFlags = PageFlags(1 << 7);

    /// All bits of `other` set?
    pub const fn contains(self, other: PageFlags) -> bool {
        self.0 & other.0 == other.0
    }
    /// Any bit of `other` set?
    pub const fn intersects(self, other: PageFlags) -> bool {
        self.0 & other.0 != 0
    }
}

impl core::ops::BitOr for PageFlags {
    type Output = PageFlags;
    fn bitor(self, rhs: PageFlags) -> PageFlags {
        PageFlags(self.0 | rhs.0)
    }
}

/// Per-frame page state, kept where the frame's descriptor is.
pub trait PageStateStore {
    /// The frame now caches page `index` of `file`; flags empty, pin count 0.
    fn attach(&mut self, frame: Frame, file: FileId, index: PageIndex);
    /// The frame no longer belongs to the page cache.
    fn detach(&mut self, frame: Frame);
    /// Reverse map: which page a frame caches.
    fn owner(&self, frame: Frame) -> Option<(FileId, PageIndex)>;
    /// Current flags (empty for frames not attached).
    fn flags(&self, frame: Frame) -> PageFlags;
    /// Sets bits.
    fn set_flags(&mut self, frame: Frame, flags: PageFlags);
    /// Clears bits.
    fn clear_flags(&mut self, frame: Frame, flags: PageFlags);
    /// Takes a pin (readers, in-flight I/O).
    fn pin(&mut self, frame: Frame);
    /// Drops a pin.
    fn unpin(&mut self, frame: Frame);
    /// Pins held.
    fn pin_count(&self, frame: Frame) -> u32;
    /// Not movable or evictable now: pinned, under I/O or locked.
    fn is_busy(&self, frame: Frame) -> bool {
        busy(self.pin_count(frame), self.flags(frame))
    }
}

/// A page with `pins` pins and `flags` is busy: pinned, under I/O or locked.
pub(crate) fn busy(pins: u32, flags: PageFlags) -> bool {
    pins > 0 || flags.intersects(PageFlags::UNDER_IO | PageFlags::LOCKED)
}

#[derive(Debug, Clone, Copy)]
struct LocalState {
    file: FileId,
    index: PageIndex,
    flags: PageFlags,
    pins: u32,
}

/// A [`PageStateStore`] in a map, for host tests and kernels without frame
/// descriptors.
#[derive(Debug, Default)]
pub struct LocalPageStates {
    map: BTreeMap<Frame, LocalState>,
}

impl LocalPageStates {
    /// Empty store.
    pub fn new() -> Self {
        Self::default()
    }
    /// Frames attached.
    pub fn len(&self) -> usize {
        self.map.len()
    }
    /// None attached?
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl PageStateStore for LocalPageStates {
    fn attach(&mut self, frame: Frame, file: FileId, index: PageIndex) {
        self.map.insert(
            frame,
            LocalState {
                file,
                index,
                flags: PageFlags::EMPTY,
                pins: 0,
            },
        );
    }
    fn detach(&mut self, frame: Frame) {
        self.map.remove(&frame);
    }
    fn owner(&self, frame: Frame) -> Option<(FileId, PageIndex)> {
        self.map.get(&frame).map(|s| (s.file, s.index))
    }
    fn flags(&self, frame: Frame) -> PageFlags {
        self.map.get(&frame).map_or(PageFlags::EMPTY, |s| s.flags)
    }
    fn set_flags(&mut self, frame: Frame, flags: PageFlags) {
        if let Some(s) = self.map.get_mut(&frame) {
            s.flags.0 |= flags.0;
        }
    }
    fn clear_flags(&mut self, frame: Frame, flags: PageFlags) {
        if let Some(s) = self.map.get_mut(&frame) {
            s.flags.0 &= !flags.0;
        }
    }
    fn pin(&mut self, frame: Frame) {
        if let Some(s) = self.map.get_mut(&frame) {
            s.pins += 1;
        }
    }
    fn unpin(&mut self, frame: Frame) {
        if let Some(s) = self.map.get_mut(&frame) {
            s.pins = s.pins.saturating_sub(1);
        }
    }
    fn pin_count(&self, frame: Frame) -> u32 {
        self.map.get(&frame).map_or(0, |s| s.pins)
    }
}
