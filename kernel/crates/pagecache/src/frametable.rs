//! The page cache on the kernel's frame table (`frames` crate): page state
//! kept in the frame descriptors ([`FrameDescStates`]) and page frames taken
//! from the buddy allocator ([`BuddyPages`]).
//!
//! Rules:
//! * The table is reached through [`FrameTableAccess`]: the kernel
//!   implements it on a handle that takes its memory lock for the duration
//!   of the closure (the page cache's own lock is already held), tests on an
//!   `Rc<RefCell<..>>`. Two handles (one for the allocator, one for the
//!   states) may point at the same table.
//! * Frames are page-cache frames while their descriptor's state is
//!   `FrameState::PageCache` and `owner == PAGECACHE_OWNER`; `mapping` holds
//!   the [`FileId`] (a FAT32 directory-entry position, below 2^32 on disks up
//!   to 128 GiB; larger ids are not entered in the reverse map, so such pages
//!   are never migrated) and `index` the page index.
//! * Flags: DIRTY, UNDER_IO, REFERENCED, LOCKED and ACTIVE are the
//!   descriptor's own; UPTODATE, READAHEAD and ERROR use descriptor bits 8..10
//!   (page-cache private). The descriptor's PINNED flag mirrors
//!   `pin_count > 0`, so CMA sees a pinned page without asking the cache.
//! * Frame addresses are physical addresses (the kernel maps RAM 1:1):
//!   [`BuddyPages::new`] is `unsafe` for that reason.

use frames::{FrameFlags, FrameState, FrameTable, Pfn};

use crate::frame::{Frame, PageAllocator, PageFlags, PageStateStore};
use crate::hooks::{FileId, PageIndex};

/// `FrameDesc::owner` of page-cache frames.
pub const PAGECACHE_OWNER: u16 = 0x5043;

/// `mapping` of a page whose file id does not fit: not in the reverse map.
const NO_MAPPING: u32 = u32::MAX;

/// Access to the kernel's frame table.
pub trait FrameTableAccess {
    /// Runs `f` with the table (under the kernel's memory lock).
    fn with_table<R>(&self, f: impl FnOnce(&mut FrameTable<'_>) -> R) -> R;
}

impl FrameTableAccess for core::cell::RefCell<FrameTable<'_>> {
    fn with_table<R>(&self, f: impl FnOnce(&mut FrameTable<'_>) -> R) -> R {
        f(&mut self.borrow_mut())
    }
}

impl<T: FrameTableAccess + ?Sized> FrameTableAccess for &T {
    fn with_table<R>(&self, f: impl FnOnce(&mut FrameTable<'_>) -> R) -> R {
        (**self).with_table(f)
    }
}

impl<T: FrameTableAccess + ?Sized> FrameTableAccess for alloc::rc::Rc<T> {
    fn with_table<R>(&self, f: impl FnOnce(&mut FrameTable<'_>) -> R) -> R {
        (**self).with_table(f)
    }
}

const UPTODATE_BIT: u16 = 1 << 8;
const READAHEAD_BIT: u16 = 1 << 9;
const ERROR_BIT: u16 = 1 << 10;

const SHARED: [(u32, u16); 5] = [
    (PageFlags::DIRTY.0, FrameFlags::DIRTY.0),
    (PageFlags::UNDER_IO.0, FrameFlags::UNDER_IO.0),
    (PageFlags::REFERENCED.0, FrameFlags::REFERENCED.0),
    (PageFlags::LOCKED.0, FrameFlags::LOCKED.0),
    (PageFlags::ACTIVE.0, FrameFlags::ACTIVE.0),
];
const PRIVATE: [(u32, u16); 3] = [
    (PageFlags::UPTODATE.0, UPTODATE_BIT),
    (PageFlags::READAHEAD.0, READAHEAD_BIT),
    (PageFlags::ERROR.0, ERROR_BIT),
];

fn to_desc(f: PageFlags) -> u16 {
    SHARED
        .iter()
        .chain(PRIVATE.iter())
        .filter(|(p, _)| f.0 & p != 0)
        .fold(0, |acc, (_, d)| acc | d)
}

fn from_desc(d: u16) -> PageFlags {
    PageFlags(
        SHARED
            .iter()
            .chain(PRIVATE.iter())
            .filter(|(_, b)| d & b != 0)
            .fold(0, |acc, (p, _)| acc | p),
    )
}

fn pfn(frame: Frame) -> Pfn {
    Pfn::from_addr(frame.addr() as u64)
}

/// [`PageStateStore`] in the kernel's frame descriptors.
pub struct FrameDescStates<T> {
    /// The table handle.
    pub table: T,
}

impl<T: FrameTableAccess> FrameDescStates<T> {
    /// States kept in `table`'s descriptors.
    pub fn new(table: T) -> Self {
        FrameDescStates { table }
    }

    fn update(&mut self, frame: Frame, f: impl FnOnce(&mut frames::FrameMut<'_>)) {
        self.table.with_table(|t| {
            if let Ok(mut m) = t.frame_mut(pfn(frame)) {
                f(&mut m);
            }
        });
    }

    fn read<R>(&self, frame: Frame, f: impl FnOnce(&frames::FrameDesc) -> R) -> Option<R> {
        self.table.with_table(|t| {
            let d = t.frame(pfn(frame))?;
            (d.state() == FrameState::PageCache && d.owner() == PAGECACHE_OWNER).then(|| f(d))
        })
    }
}

impl<T: FrameTableAccess> PageStateStore for FrameDescStates<T> {
    fn attach(&mut self, frame: Frame, file: FileId, index: PageIndex) {
        self.table.with_table(|t| {
            // A migration target may come from an area in another state.
            if t.state(pfn(frame)) != Some(FrameState::PageCache) {
                let _ = t.set_state(pfn(frame), FrameState::PageCache);
            }
            if let Ok(mut m) = t.frame_mut(pfn(frame)) {
                m.set_flags(FrameFlags::EMPTY);
                while m.desc().pin_count() > 0 {
                    let _ = m.unpin();
                }
                m.set_owner(PAGECACHE_OWNER);
                match u32::try_from(file) {
                    Ok(id) if id != NO_MAPPING => m.set_mapping(id, index),
                    _ => m.set_mapping(NO_MAPPING, 0),
                }
            }
        });
    }

    fn detach(&mut self, frame: Frame) {
        self.update(frame, |m| {
            m.set_flags(FrameFlags::EMPTY);
            while m.desc().pin_count() > 0 {
                let _ = m.unpin();
            }
            m.set_owner(0);
            m.set_mapping(0, 0);
        });
    }

    fn owner(&self, frame: Frame) -> Option<(FileId, PageIndex)> {
        self.read(frame, |d| (d.mapping(), d.index()))
            .filter(|(m, _)| *m != NO_MAPPING)
            .map(|(m, i)| (m as FileId, i))
    }

    fn flags(&self, frame: Frame) -> PageFlags {
        self.read(frame, |d| from_desc(d.flags().bits()))
            .unwrap_or(PageFlags::EMPTY)
    }

    fn set_flags(&mut self, frame: Frame, flags: PageFlags) {
        let bits = to_desc(flags);
        self.update(frame, |m| m.insert_flags(FrameFlags(bits)));
    }

    fn clear_flags(&mut self, frame: Frame, flags: PageFlags) {
        let bits = to_desc(flags);
        self.update(frame, |m| m.remove_flags(FrameFlags(bits)));
    }

    fn pin(&mut self, frame: Frame) {
        self.update(frame, |m| {
            if m.pin().is_ok() {
                m.insert_flags(FrameFlags::PINNED);
            }
        });
    }

    fn unpin(&mut self, frame: Frame) {
        self.update(frame, |m| {
            if m.unpin() == Ok(0) {
                m.remove_flags(FrameFlags::PINNED);
            }
        });
    }

    fn pin_count(&self, frame: Frame) -> u32 {
        self.read(frame, |d| d.pin_count() as u32).unwrap_or(0)
    }

    /// As the default, with one look at the descriptor (one frame-table
    /// access, which in the kernel is one lock) instead of two.
    fn is_busy(&self, frame: Frame) -> bool {
        self.read(frame, |d| {
            crate::frame::busy(d.pin_count() as u32, from_desc(d.flags().bits()))
        })
        .unwrap_or(false)
    }
}

/// Page frames from the kernel's buddy allocator (order 0, state
/// `PageCache`).
pub struct BuddyPages<T> {
    table: T,
}

impl<T: FrameTableAccess> BuddyPages<T> {
    /// Frames from `table`'s buddy allocator.
    ///
    /// # Safety
    ///
    /// Every frame the table's buddy hands out must be RAM mapped 1:1 (its
    /// physical address is a valid, writable kernel address) and used by no
    /// one else while allocated.
    // SAFETY (contract): the `# Safety` section above; callers uphold it.
    pub unsafe fn new(table: T) -> Self {
        BuddyPages { table }
    }
}

// SAFETY: frames come from the buddy allocator, which hands each out once
// until it is freed; `new`'s contract makes their addresses usable memory.
unsafe impl<T: FrameTableAccess> PageAllocator for BuddyPages<T> {
    fn alloc_page(&mut self) -> Option<Frame> {
        let p = self
            .table
            .with_table(|t| t.alloc(0, FrameState::PageCache))
            .ok()?;
        Frame::from_addr(p.addr() as usize)
    }

    fn free_page(&mut self, frame: Frame) {
        // A frame that is not a live buddy allocation (a migration target
        // from a reserved area) is left to its area: the kernel's allocator
        // routes such frames itself.
        let _ = self.table.with_table(|t| t.free(pfn(frame), 0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_round_trip() {
        for bits in 0..256u32 {
            let f = PageFlags(bits);
            assert_eq!(from_desc(to_desc(f)), f);
        }
        assert_eq!(to_desc(PageFlags::DIRTY), FrameFlags::DIRTY.0);
        assert_eq!(to_desc(PageFlags::UNDER_IO), FrameFlags::UNDER_IO.0);
    }
}
