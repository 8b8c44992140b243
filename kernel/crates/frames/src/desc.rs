//! One descriptor per frame: [`FrameDesc`], its [`FrameFlags`], and
//! [`FrameMut`], the owner's write access.
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
//! clean descriptor. Descriptors are only reachable through the table
//! (`table.rs`): a caller cannot corrupt the free lists.

use crate::{FrameError, FrameState, MAX_ORDER, NIL, Pfn};

// The order lives in the low nibble of `FrameDesc::bud`.
pub(crate) const BUD_ORDER_MASK: u8 = 0x0f;
pub(crate) const BUD_MANAGED: u8 = 0x40;
pub(crate) const BUD_HEAD: u8 = 0x80;
const _: () = assert!(MAX_ORDER as u32 <= BUD_ORDER_MASK as u32);
const _: () = assert!(core::mem::size_of::<FrameDesc>() == 24);

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
/// which field. Read it through [`FrameTable::frame`](crate::FrameTable::frame), write the owner's
/// fields through [`FrameTable::frame_mut`](crate::FrameTable::frame_mut).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct FrameDesc {
    pub(crate) state: FrameState,
    /// Buddy bits: order (low nibble) | `BUD_MANAGED` | `BUD_HEAD`.
    pub(crate) bud: u8,
    pub(crate) flags: FrameFlags,
    pub(crate) pin_count: u16,
    pub(crate) owner: u16,
    pub(crate) mapping: u32,
    pub(crate) index: u32,
    pub(crate) next: u32,
    pub(crate) prev: u32,
}

impl FrameDesc {
    /// The descriptor of a frame that is not RAM; what every descriptor holds
    /// right after [`FrameTable::new`](crate::FrameTable::new). Use it to fill storage for a table.
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

    pub(crate) const fn is_free_head(&self, order: u8) -> bool {
        matches!(self.state, FrameState::Free) && self.bud == BUD_MANAGED | BUD_HEAD | order
    }

    /// Clears everything the owner may have set.
    pub(crate) fn reset_owner_fields(&mut self) {
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

/// Write access to an owned frame's owner fields (see the crate docs).
pub struct FrameMut<'t> {
    pub(crate) pfn: Pfn,
    pub(crate) desc: &'t mut FrameDesc,
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
