//! `QueueMux`: lets synchronous callers (the filesystem's metadata buffer
//! cache) share a device queue with an asynchronous one (the page cache's
//! readahead and writeback).
//!
//! Rules: the synchronous helpers submit with the reserved tag
//! [`SYNC_TAG`] and wait for that tag only; completions of other requests
//! that arrive meanwhile are stashed and handed out, in arrival order, by the
//! next `poll`/`wait`. If the queue is full, the sync helper first waits for
//! one completion (stashing it) to make room. Asynchronous users must not use
//! [`SYNC_TAG`].

use alloc::collections::VecDeque;

use crate::{BlockDevice, BlockError, Completion, DevStats, Request};

/// Tag reserved for the synchronous helpers.
pub const SYNC_TAG: u64 = u64::MAX;

/// A device wrapper whose synchronous helpers work with requests in flight.
pub struct QueueMux<D> {
    inner: D,
    stash: VecDeque<Completion>,
}

impl<D: BlockDevice> QueueMux<D> {
    /// Wraps a device.
    pub fn new(inner: D) -> Self {
        QueueMux {
            inner,
            stash: VecDeque::new(),
        }
    }
    /// The wrapped device.
    pub fn inner(&self) -> &D {
        &self.inner
    }
    /// The wrapped device, mutable. Submitting through it directly bypasses
    /// the stash; use it for inspection (tests) only.
    pub fn inner_mut(&mut self) -> &mut D {
        &mut self.inner
    }
    /// Unwraps; stashed completions are dropped.
    pub fn into_inner(self) -> D {
        self.inner
    }
}

impl<D: BlockDevice> BlockDevice for QueueMux<D> {
    fn sector_count(&self) -> u64 {
        self.inner.sector_count()
    }
    fn queue_depth(&self) -> usize {
        self.inner.queue_depth()
    }
    fn in_flight(&self) -> usize {
        self.inner.in_flight() + self.stash.len()
    }
    // SAFETY (contract): BlockDevice::submit's; the body keeps it.
    unsafe fn submit(&mut self, req: Request) -> Result<(), BlockError> {
        // SAFETY: forwarded with the caller's guarantee unchanged.
        unsafe { self.inner.submit(req) }
    }
    fn poll(&mut self) -> Option<Completion> {
        self.stash.pop_front().or_else(|| self.inner.poll())
    }
    fn wait(&mut self) -> Option<Completion> {
        self.stash.pop_front().or_else(|| self.inner.wait())
    }
    fn stats(&self) -> DevStats {
        self.inner.stats()
    }
    fn sync_request(&mut self, mut req: Request) -> Result<(), BlockError> {
        req.tag = SYNC_TAG;
        loop {
            // SAFETY: the buffer is borrowed by the sync helper's caller for
            // the whole call and we wait below for this request's completion
            // (the only one with SYNC_TAG) before returning.
            match unsafe { self.inner.submit(req) } {
                Ok(()) => break,
                Err(BlockError::QueueFull) => match self.inner.wait() {
                    Some(c) => self.stash.push_back(c),
                    None => return Err(BlockError::QueueFull),
                },
                Err(e) => return Err(e),
            }
        }
        loop {
            match self.inner.wait() {
                Some(c) if c.tag == SYNC_TAG => return c.result,
                Some(c) => self.stash.push_back(c),
                None => return Err(BlockError::NotReady),
            }
        }
    }
}
