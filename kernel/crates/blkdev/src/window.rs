//! `Window`: a run of sectors of another device (a partition) as a device of
//! its own.
//!
//! Sector `s` of the window is sector `start + s` of the inner device.
//! Requests are checked against the window's length before they are
//! offset, so nothing outside the window is ever reached; completion errors
//! that name a sector ([`BlockError::Io`], [`BlockError::OutOfRange`]) are
//! translated back to window sectors. Counters are the inner device's.

use crate::{BlockDevice, BlockError, Completion, DevStats, Request, check_request};

/// Sectors `start..start + sectors` of `D`.
pub struct Window<D> {
    inner: D,
    start: u64,
    sectors: u64,
}

impl<D: BlockDevice> Window<D> {
    /// The window `start..start + sectors` of `inner`; refused (the device
    /// is handed back) when it does not lie inside `inner`.
    pub fn new(inner: D, start: u64, sectors: u64) -> Result<Self, (D, BlockError)> {
        match start.checked_add(sectors) {
            Some(end) if sectors > 0 && end <= inner.sector_count() => Ok(Self {
                inner,
                start,
                sectors,
            }),
            _ => {
                let capacity = inner.sector_count();
                Err((
                    inner,
                    BlockError::OutOfRange {
                        sector: start,
                        count: sectors,
                        capacity,
                    },
                ))
            }
        }
    }

    /// The whole of `inner`.
    pub fn whole(inner: D) -> Self {
        let sectors = inner.sector_count();
        Self {
            inner,
            start: 0,
            sectors,
        }
    }

    /// First sector of the window on the inner device.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// The inner device.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// The inner device, mutably (requests made on it bypass the window).
    pub fn inner_mut(&mut self) -> &mut D {
        &mut self.inner
    }

    /// Gives the inner device back.
    pub fn into_inner(self) -> D {
        self.inner
    }

    fn back(&self, e: BlockError) -> BlockError {
        match e {
            BlockError::Io { sector, status } => BlockError::Io {
                sector: sector.saturating_sub(self.start),
                status,
            },
            BlockError::OutOfRange {
                sector,
                count,
                capacity: _,
            } => BlockError::OutOfRange {
                sector: sector.saturating_sub(self.start),
                count,
                capacity: self.sectors,
            },
            e => e,
        }
    }
}

impl<D: BlockDevice> BlockDevice for Window<D> {
    fn sector_count(&self) -> u64 {
        self.sectors
    }
    fn queue_depth(&self) -> usize {
        self.inner.queue_depth()
    }
    fn in_flight(&self) -> usize {
        self.inner.in_flight()
    }
    // SAFETY (contract): BlockDevice::submit's, passed on unchanged.
    unsafe fn submit(&mut self, req: Request) -> Result<(), BlockError> {
        check_request(&req, self.sectors)?;
        let moved = Request {
            sector: req.sector + self.start,
            ..req
        };
        // SAFETY: the caller's guarantee for the buffer, forwarded.
        unsafe { self.inner.submit(moved) }.map_err(|e| self.back(e))
    }
    fn poll(&mut self) -> Option<Completion> {
        let c = self.inner.poll()?;
        Some(Completion {
            tag: c.tag,
            result: c.result.map_err(|e| self.back(e)),
        })
    }
    fn wait(&mut self) -> Option<Completion> {
        let c = self.inner.wait()?;
        Some(Completion {
            tag: c.tag,
            result: c.result.map_err(|e| self.back(e)),
        })
    }
    fn stats(&self) -> DevStats {
        self.inner.stats()
    }
}
