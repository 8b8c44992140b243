//! `RamDisk`: a `Vec`-backed block device for host tests and RAM-backed
//! demos.
//!
//! Requests are queued at `submit` and carried out one at a time, in order,
//! when `poll`/`wait` returns their completion: like a real device, the
//! buffer is touched only between submission and completion, so tests can see
//! pages sitting "under I/O". Counters count completed transfers only.

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;

use crate::{
    BlockDevice, BlockError, Completion, DevStats, Op, Request, SECTOR_SIZE, check_request,
};

/// A RAM-backed block device.
pub struct RamDisk {
    data: Vec<u8>,
    queue: VecDeque<Request>,
    depth: usize,
    read_only: bool,
    stats: DevStats,
}

// SAFETY: the only non-Send fields are the raw buffer pointers of queued
// requests; `submit`'s contract keeps those buffers valid and unaliased until
// completion no matter which CPU completes them, so moving the disk (under
// its owner's lock) to another CPU is sound.
unsafe impl Send for RamDisk {}

impl RamDisk {
    /// A zero-filled disk of `sectors` sectors with a queue of depth 32.
    pub fn new(sectors: u64) -> Self {
        Self::from_vec(vec![0; sectors as usize * SECTOR_SIZE])
    }

    /// A disk holding `data`, which is cut down to whole sectors.
    pub fn from_vec(mut data: Vec<u8>) -> Self {
        let whole = data.len() / SECTOR_SIZE * SECTOR_SIZE;
        data.truncate(whole);
        RamDisk {
            data,
            queue: VecDeque::new(),
            depth: 32,
            read_only: false,
            stats: DevStats::default(),
        }
    }

    /// Sets the queue depth (at least 1).
    pub fn with_queue_depth(mut self, depth: usize) -> Self {
        self.depth = depth.max(1);
        self
    }

    /// Refuses writes with [`BlockError::ReadOnly`].
    pub fn set_read_only(&mut self, ro: bool) {
        self.read_only = ro;
    }

    /// The disk's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }

    /// The disk's bytes, mutable (tests corrupt images through this).
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }

    /// Gives back the bytes. Requests still queued are dropped uncompleted.
    pub fn into_vec(self) -> Vec<u8> {
        self.data
    }

    fn execute(&mut self, req: &Request) -> Result<(), BlockError> {
        let start = req.sector as usize * SECTOR_SIZE;
        match req.op {
            Op::Read => {
                // SAFETY: `submit`'s contract: `buf` is valid for `len` bytes
                // and unaliased until this completion is returned, which is
                // now. The range was checked against the disk at submission.
                let dst = unsafe { core::slice::from_raw_parts_mut(req.buf, req.len) };
                dst.copy_from_slice(&self.data[start..start + req.len]);
                self.stats.read_requests += 1;
                self.stats.sectors_read += req.sectors();
            }
            Op::Write => {
                // SAFETY: as above; the device only reads the buffer.
                let src = unsafe { core::slice::from_raw_parts(req.buf as *const u8, req.len) };
                self.data[start..start + req.len].copy_from_slice(src);
                self.stats.write_requests += 1;
                self.stats.sectors_written += req.sectors();
            }
            Op::Flush => self.stats.flushes += 1,
        }
        Ok(())
    }
}

impl BlockDevice for RamDisk {
    fn sector_count(&self) -> u64 {
        (self.data.len() / SECTOR_SIZE) as u64
    }

    fn queue_depth(&self) -> usize {
        self.depth
    }

    fn in_flight(&self) -> usize {
        self.queue.len()
    }

    // SAFETY (contract): BlockDevice::submit's; the body keeps it.
    unsafe fn submit(&mut self, req: Request) -> Result<(), BlockError> {
        check_request(&req, self.sector_count())?;
        if req.op == Op::Write && self.read_only {
            return Err(BlockError::ReadOnly);
        }
        if self.queue.len() >= self.depth {
            return Err(BlockError::QueueFull);
        }
        self.queue.push_back(req);
        Ok(())
    }

    fn poll(&mut self) -> Option<Completion> {
        let req = self.queue.pop_front()?;
        let result = self.execute(&req);
        Some(Completion {
            tag: req.tag,
            result,
        })
    }

    fn stats(&self) -> DevStats {
        self.stats
    }
}
