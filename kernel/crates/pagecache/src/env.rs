//! The page cache's environment: one object that gives it frames
//! ([`PageAllocator`]) and takes its clean pages ([`CleancacheHooks`]).
//!
//! Rules:
//! * The page cache owns its environment (`PageCache<D, E, S, F>` with
//!   `E: PageAllocator + CleancacheHooks`) and calls it with its own lock
//!   held, never from anywhere else.
//! * Both halves are one object so that they may share state without a
//!   pointer between them: in the kernel the CMA areas lend frames and own
//!   the cleancache, both behind one value.
//! * Two separate halves are joined by the pair `(A, H)`, which forwards
//!   allocator calls to `A` and hook calls to `H`; the page cache then also
//!   offers `allocator_mut()`, `hooks()` and `hooks_mut()`.
//! * [`Detachable`](crate::Detachable) wraps an environment that its owner
//!   takes away for a while; calls made meanwhile are queued or answered
//!   without it (rules in its file).

use crate::frame::{Frame, PageAllocator};
use crate::hooks::{CleancacheHooks, FileId, PageIndex};
use frames::PageBytes;

// SAFETY: forwards to `A`, whose frames follow PageAllocator's contract;
// the hooks half never sees a frame.
unsafe impl<A: PageAllocator, H> PageAllocator for (A, H) {
    fn alloc_page(&mut self) -> Option<Frame> {
        self.0.alloc_page()
    }
    fn free_page(&mut self, frame: Frame) {
        self.0.free_page(frame)
    }
}

impl<A, H: CleancacheHooks> CleancacheHooks for (A, H) {
    fn init_fs(&mut self, volume: u32) {
        self.1.init_fs(volume)
    }
    fn invalidate_fs(&mut self) {
        self.1.invalidate_fs()
    }
    fn put_page(&mut self, file: FileId, index: PageIndex, data: &PageBytes) {
        self.1.put_page(file, index, data)
    }
    fn get_page(&mut self, file: FileId, index: PageIndex, out: &mut PageBytes) -> bool {
        self.1.get_page(file, index, out)
    }
    fn invalidate_page(&mut self, file: FileId, index: PageIndex) {
        self.1.invalidate_page(file, index)
    }
    fn invalidate_file(&mut self, file: FileId, from: PageIndex) {
        self.1.invalidate_file(file, from)
    }
}
