//! The frame table: the descriptor array over a span of pfns, lookups, and
//! the state changes that do not go through the buddy.
//!
//! Rules:
//! * descriptors are reachable only through the table: [`FrameTable::frame`]
//!   reads any frame, [`FrameTable::frame_mut`] writes only the owner fields
//!   of an owned frame, so no caller can corrupt the free lists;
//! * frames the buddy does not manage change state only through
//!   [`FrameTable::mark`] (never to `Free`); owned frames change to another
//!   owned state through [`FrameTable::set_state`]; managed frames move
//!   between `Free` and owned states only through the buddy (`buddy.rs`);
//! * every state change moves the per-state counters with it.

use core::fmt;
use core::mem::MaybeUninit;
use core::ops::Range;

use crate::{FrameDesc, FrameError, FrameMut, FrameState, NIL, NR_ORDERS, PAGE_SIZE, Pfn};

/// The descriptor array for pfns `[base, base + len)` and the buddy allocator
/// over the frames given to it.
pub struct FrameTable<'a> {
    pub(crate) descs: &'a mut [FrameDesc],
    /// First pfn covered.
    pub(crate) base: u64,
    /// Free-list heads by order (indices into `descs`, [`NIL`] = empty).
    pub(crate) free_head: [u32; NR_ORDERS],
    /// Blocks on each free list.
    pub(crate) free_blocks: [u64; NR_ORDERS],
    /// Frames given to the buddy.
    pub(crate) managed: u64,
    /// Frames in each state.
    pub(crate) per_state: [u64; FrameState::COUNT],
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

    pub(crate) fn idx(&self, pfn: Pfn) -> Option<usize> {
        let off = pfn.0.checked_sub(self.base)?;
        if off < self.len() {
            Some(off as usize)
        } else {
            None
        }
    }

    pub(crate) fn pfn_at(&self, idx: usize) -> Pfn {
        Pfn(self.base + idx as u64)
    }

    pub(crate) fn check_range(&self, range: &Range<Pfn>) -> Result<(usize, usize), FrameError> {
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
}

impl FrameTable<'_> {
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
        self.refuse_any(a..b, |d| d.is_managed())?;
        for i in a..b {
            self.move_to(i, state);
            let d = &mut self.descs[i];
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
        self.move_to(i, state);
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
        self.refuse_any(a..b, |d| !d.state.is_owned())?;
        for i in a..b {
            self.move_to(i, state);
        }
        Ok(())
    }

    /// [`FrameError::Busy`] for the first frame of indices `range` that is
    /// `busy`.
    fn refuse_any(
        &self,
        range: Range<usize>,
        busy: impl Fn(&FrameDesc) -> bool,
    ) -> Result<(), FrameError> {
        match range.into_iter().find(|&i| busy(&self.descs[i])) {
            Some(i) => Err(FrameError::Busy {
                pfn: self.pfn_at(i),
                state: self.descs[i].state,
            }),
            None => Ok(()),
        }
    }

    /// Puts the frame at index `i` in `state`, moving the counters with it.
    fn move_to(&mut self, i: usize, state: FrameState) {
        self.per_state[self.descs[i].state as usize] -= 1;
        self.per_state[state as usize] += 1;
        self.descs[i].state = state;
    }
}
