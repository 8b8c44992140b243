//! The two writers of frame descriptors for reserved-area frames (see the
//! memsys rules): [`FrameMirror`], the cleancache observer (GCMA pool
//! pages), and [`mark`] (CMA and carveout frames).
//!
//! Rules: each event is one frame-table lock hold (a page, or a whole
//! range), taken inside the memsys lock (lock order: memsys, then the frame
//! table).

use cleancache::PageState;
use frames::{FrameState, Pfn};

use crate::mm;

/// A GCMA pool page's cleancache state as a frame state.
fn frame_state(st: PageState) -> FrameState {
    match st {
        PageState::Free => FrameState::ReservedArea,
        PageState::Cached { .. } => FrameState::Cleancache,
        PageState::TakenBack => FrameState::Allocated,
    }
}

/// The cleancache observer: GCMA pool page states into frame descriptors,
/// one frame-table lock per event (a page, or a whole range).
pub(super) struct FrameMirror;

impl cleancache::Observer for FrameMirror {
    fn on_page(&mut self, pfn: Pfn, st: PageState) {
        mark(pfn, 1, frame_state(st));
    }
    fn on_range(&mut self, pfn: Pfn, count: usize, st: PageState) {
        mark(pfn, count, frame_state(st));
    }
}

/// Sets the descriptors of `count` frames from `pfn` to `state` in one
/// frame-table lock hold; false if the frame table refused.
pub(super) fn mark(pfn: Pfn, count: usize, state: FrameState) -> bool {
    let range = pfn..pfn + count as u64;
    mm::with_frames(|t| t.set_state_range(range, state)).is_ok()
}
