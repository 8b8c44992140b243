//! `FaultyDisk`: a wrapper that makes chosen sectors fail, for tests of the
//! error paths above the block layer.
//!
//! A read (write) request that covers a sector in the read (write) failure
//! set is not passed on: it completes with [`BlockError::Io`] (status 1,
//! virtio's IOERR) and transfers nothing. All other requests go to the inner
//! device unchanged.

use alloc::collections::{BTreeSet, VecDeque};

use crate::{BlockDevice, BlockError, Completion, DevStats, Op, Request, check_request};

/// Fault-injecting wrapper around a block device.
pub struct FaultyDisk<D> {
    inner: D,
    bad_reads: BTreeSet<u64>,
    bad_writes: BTreeSet<u64>,
    failed: VecDeque<Completion>,
    /// Number of requests failed so far.
    pub injected: u64,
}

impl<D: BlockDevice> FaultyDisk<D> {
    /// Wraps `inner` with no faults set.
    pub fn new(inner: D) -> Self {
        FaultyDisk {
            inner,
            bad_reads: BTreeSet::new(),
            bad_writes: BTreeSet::new(),
            failed: VecDeque::new(),
            injected: 0,
        }
    }
    /// Reads covering `sector` fail from now on.
    pub fn fail_read(&mut self, sector: u64) {
        self.bad_reads.insert(sector);
    }
    /// Writes covering `sector` fail from now on.
    pub fn fail_write(&mut self, sector: u64) {
        self.bad_writes.insert(sector);
    }
    /// Removes every fault.
    pub fn clear(&mut self) {
        self.bad_reads.clear();
        self.bad_writes.clear();
    }
    /// The wrapped device.
    pub fn inner(&self) -> &D {
        &self.inner
    }
    /// The wrapped device, mutable.
    pub fn inner_mut(&mut self) -> &mut D {
        &mut self.inner
    }
    /// Unwraps.
    pub fn into_inner(self) -> D {
        self.inner
    }
}

impl<D: BlockDevice> BlockDevice for FaultyDisk<D> {
    fn sector_count(&self) -> u64 {
        self.inner.sector_count()
    }
    fn queue_depth(&self) -> usize {
        self.inner.queue_depth()
    }
    fn in_flight(&self) -> usize {
        self.inner.in_flight() + self.failed.len()
    }
    // SAFETY (contract): BlockDevice::submit's; the body keeps it.
    unsafe fn submit(&mut self, req: Request) -> Result<(), BlockError> {
        check_request(&req, self.sector_count())?;
        let set = match req.op {
            Op::Read => &self.bad_reads,
            Op::Write => &self.bad_writes,
            Op::Flush => {
                // SAFETY: forwarded with the caller's guarantee unchanged.
                return unsafe { self.inner.submit(req) };
            }
        };
        if let Some(&bad) = set.range(req.sector..req.sector + req.sectors()).next() {
            if self.in_flight() >= self.queue_depth() {
                return Err(BlockError::QueueFull);
            }
            self.injected += 1;
            self.failed.push_back(Completion {
                tag: req.tag,
                result: Err(BlockError::Io {
                    sector: bad,
                    status: 1,
                }),
            });
            return Ok(());
        }
        // SAFETY: forwarded with the caller's guarantee unchanged.
        unsafe { self.inner.submit(req) }
    }
    fn poll(&mut self) -> Option<Completion> {
        if let Some(c) = self.failed.pop_front() {
            return Some(c);
        }
        self.inner.poll()
    }
    fn stats(&self) -> DevStats {
        self.inner.stats()
    }
}
