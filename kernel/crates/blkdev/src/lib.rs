//! Block-device layer: runs of 512-byte sectors moved into and out of
//! buffers that live in page frames.
//!
//! # Model
//!
//! A [`BlockDevice`] accepts [`Request`]s (read, write, flush) tagged by the
//! caller, keeps up to [`BlockDevice::queue_depth`] of them in flight, and
//! reports each one's end as a [`Completion`] carrying the same tag, through
//! [`BlockDevice::poll`] (non-blocking) or [`BlockDevice::wait`] (blocks until
//! one request has completed). This is the shape of an interrupt-driven
//! virtio queue of depth N: `submit` places descriptors in the available
//! ring, the interrupt handler (or `poll`) walks the used ring.
//!
//! # Rules
//!
//! * A request's buffer is raw memory (`*mut u8`, length a multiple of
//!   [`SECTOR_SIZE`]) because a DMA engine writes it while the submitter goes
//!   on. [`BlockDevice::submit`] is therefore `unsafe`: from submission until
//!   its completion has been returned by `poll`/`wait`, the buffer must stay
//!   allocated and nothing else may touch it. The page cache guarantees this by
//!   marking the frame UNDER_IO and holding a pin on it until the completion
//!   is reaped, which is also what makes the frame unmovable for migration.
//! * Requests that are malformed or out of range are refused at submission
//!   ([`BlockError::OutOfRange`], [`BlockError::BadBuffer`]); nothing is
//!   transferred. Device failures are reported in the completion.
//! * Completions may come back in any order. Tags are opaque to the device.
//! * A request the device never answers is timed out by [`FaultyDisk`]
//!   (the wrapper the kernel runs its disk through) with
//!   [`BlockError::Timeout`]: callers wait in `wait`, which returns.
//! * The synchronous helpers ([`BlockDevice::read_sectors`],
//!   [`BlockDevice::write_sectors`], [`BlockDevice::flush`]) need an idle
//!   queue: with requests in flight they return [`BlockError::Busy`] rather
//!   than swallow a completion that belongs to someone else. Wrap the device
//!   in a [`QueueMux`] to mix them with asynchronous requests: its helpers
//!   stash other requests' completions and hand them out later (the page
//!   cache mounts the filesystem on a `QueueMux`).
//!
//! # Implementing a device (virtio-blk)
//!
//! `submit` turns a request into a descriptor chain (header, buffer, status
//! byte) and notifies the queue, or returns `QueueFull` when no descriptors
//! are free; `poll` walks the used ring and maps the status byte to
//! `Ok`/[`BlockError::Io`]; `wait` sleeps (`wfi`) until the interrupt handler
//! has seen a used-ring update; `queue_depth` is the number of chains the
//! ring can hold.
//!
//! No locking here: a device is owned (`&mut self`); the kernel wraps the
//! owner (the filesystem/page cache) in its own lock.
#![no_std]

extern crate alloc;

mod fault;
mod mux;
mod ram;

pub use fault::{DEFAULT_TIMEOUT_NS, Fault, FaultKind, FaultyDisk, Traced};
pub use mux::{QueueMux, SYNC_TAG};
pub use ram::RamDisk;

/// Size of one device sector in bytes. Every transfer is a whole number of
/// sectors.
pub const SECTOR_SIZE: usize = 512;

/// Errors of the block layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockError {
    /// The request touches sectors past the end of the device.
    OutOfRange {
        /// First sector of the request.
        sector: u64,
        /// Number of sectors asked for.
        count: u64,
        /// Sectors on the device.
        capacity: u64,
    },
    /// The buffer is empty or not a whole number of sectors.
    BadBuffer {
        /// Length of the buffer in bytes.
        len: usize,
    },
    /// The device reported a failure for this request.
    Io {
        /// First sector of the failed request.
        sector: u64,
        /// Device status code (virtio-blk: 1 = IOERR, 2 = UNSUPP).
        status: u8,
    },
    /// The device is not (yet) initialised or has been reset.
    NotReady,
    /// The device's response to this request breaks its protocol (a status
    /// or length it may not return); the driver said what on the console.
    BadResponse {
        /// First sector of the request.
        sector: u64,
    },
    /// The queue holds `queue_depth` requests already: reap completions first.
    QueueFull,
    /// A synchronous helper was called while requests are in flight.
    Busy,
    /// Writing to a read-only device.
    ReadOnly,
    /// The device did not answer the request in time (the block layer's
    /// timeout, see [`FaultyDisk`]); nothing was transferred.
    Timeout {
        /// First sector of the request.
        sector: u64,
    },
}

impl core::fmt::Display for BlockError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            BlockError::OutOfRange {
                sector,
                count,
                capacity,
            } => write!(
                f,
                "sectors {sector}..{} out of range (device has {capacity})",
                sector.saturating_add(count)
            ),
            BlockError::BadBuffer { len } => {
                write!(f, "buffer of {len} bytes is not a whole number of sectors")
            }
            BlockError::Io { sector, status } => {
                write!(f, "I/O error at sector {sector} (device status {status})")
            }
            BlockError::NotReady => write!(f, "device not ready"),
            BlockError::BadResponse { sector } => {
                write!(f, "malformed device response at sector {sector}")
            }
            BlockError::QueueFull => write!(f, "request queue full"),
            BlockError::Busy => write!(f, "requests in flight"),
            BlockError::ReadOnly => write!(f, "device is read-only"),
            BlockError::Timeout { sector } => write!(
                f,
                "request at sector {sector} timed out: the device stopped answering"
            ),
        }
    }
}

/// What a request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Device to memory.
    Read,
    /// Memory to device.
    Write,
    /// Make earlier completed writes durable. `buf`/`len` are ignored.
    Flush,
}

/// One request. See the module rules for the buffer's lifetime.
#[derive(Debug, Clone, Copy)]
pub struct Request {
    /// Caller's tag, returned unchanged in the [`Completion`].
    pub tag: u64,
    /// Operation.
    pub op: Op,
    /// First sector.
    pub sector: u64,
    /// Buffer start (kernel virtual address; identity mapped in the kernel, so
    /// also the DMA address).
    pub buf: *mut u8,
    /// Buffer length in bytes, a multiple of [`SECTOR_SIZE`].
    pub len: usize,
}

impl Request {
    /// Number of sectors moved by this request.
    pub fn sectors(&self) -> u64 {
        (self.len / SECTOR_SIZE) as u64
    }
}

/// End of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    /// The request's tag.
    pub tag: u64,
    /// Outcome.
    pub result: Result<(), BlockError>,
}

/// Counters kept by a device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DevStats {
    /// Sectors transferred device -> memory by completed reads.
    pub sectors_read: u64,
    /// Sectors transferred memory -> device by completed writes.
    pub sectors_written: u64,
    /// Read requests completed (successfully or not).
    pub read_requests: u64,
    /// Write requests completed (successfully or not).
    pub write_requests: u64,
    /// Flushes completed.
    pub flushes: u64,
}

/// Checks a request against a device of `capacity` sectors.
pub fn check_request(req: &Request, capacity: u64) -> Result<(), BlockError> {
    if req.op == Op::Flush {
        return Ok(());
    }
    if req.len == 0 || !req.len.is_multiple_of(SECTOR_SIZE) || req.buf.is_null() {
        return Err(BlockError::BadBuffer { len: req.len });
    }
    let count = req.sectors();
    match req.sector.checked_add(count) {
        Some(end) if end <= capacity => Ok(()),
        _ => Err(BlockError::OutOfRange {
            sector: req.sector,
            count,
            capacity,
        }),
    }
}

/// A block device with a request queue.
pub trait BlockDevice {
    /// Number of sectors on the device.
    fn sector_count(&self) -> u64;

    /// Most requests that may be in flight at once (>= 1).
    fn queue_depth(&self) -> usize {
        1
    }

    /// Requests submitted whose completion has not been returned yet.
    fn in_flight(&self) -> usize;

    /// Queues a request. Errors returned here mean the request was not queued
    /// and no completion will come for it.
    ///
    /// # Safety
    ///
    /// For `Read` and `Write`, `req.buf` must point to `req.len` bytes that
    /// stay valid (and, for reads, writable) and are not accessed by anyone
    /// else until this request's completion has been returned by
    /// [`poll`](Self::poll) or [`wait`](Self::wait).
    // SAFETY: the caller's obligations are the `# Safety` section above.
    unsafe fn submit(&mut self, req: Request) -> Result<(), BlockError>;

    /// Returns one completed request, if any, without blocking.
    fn poll(&mut self) -> Option<Completion>;

    /// Blocks until a request completes and returns it; `None` when nothing is
    /// in flight. The default spins on [`poll`](Self::poll); an
    /// interrupt-driven device waits for its interrupt instead.
    fn wait(&mut self) -> Option<Completion> {
        loop {
            if self.in_flight() == 0 {
                return self.poll();
            }
            if let Some(c) = self.poll() {
                return Some(c);
            }
            core::hint::spin_loop();
        }
    }

    /// Counters since the device was created.
    fn stats(&self) -> DevStats {
        DevStats::default()
    }

    /// Synchronously reads `buf.len() / SECTOR_SIZE` sectors from `sector`.
    fn read_sectors(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        let req = Request {
            tag: u64::MAX,
            op: Op::Read,
            sector,
            buf: buf.as_mut_ptr(),
            len: buf.len(),
        };
        self.sync_request(req)
    }

    /// Synchronously writes `buf` starting at `sector`.
    fn write_sectors(&mut self, sector: u64, buf: &[u8]) -> Result<(), BlockError> {
        let req = Request {
            tag: u64::MAX,
            op: Op::Write,
            sector,
            // The device only reads from a write request's buffer.
            buf: buf.as_ptr() as *mut u8,
            len: buf.len(),
        };
        self.sync_request(req)
    }

    /// Synchronously flushes the device's write cache.
    fn flush(&mut self) -> Result<(), BlockError> {
        let req = Request {
            tag: u64::MAX,
            op: Op::Flush,
            sector: 0,
            buf: core::ptr::null_mut(),
            len: 0,
        };
        self.sync_request(req)
    }

    /// Submits one request and waits for it. The default needs an idle
    /// queue; [`QueueMux`] overrides it to work with requests in flight.
    fn sync_request(&mut self, req: Request) -> Result<(), BlockError> {
        if self.in_flight() != 0 {
            return Err(BlockError::Busy);
        }
        // SAFETY: the buffer is borrowed by the caller of the sync helper for
        // the whole call, and we wait for this request's completion (the only
        // one in flight, checked above) before returning.
        unsafe { self.submit(req)? };
        match self.wait() {
            Some(c) => c.result,
            None => Err(BlockError::NotReady),
        }
    }
}

impl<T: BlockDevice + ?Sized> BlockDevice for &mut T {
    fn sector_count(&self) -> u64 {
        (**self).sector_count()
    }
    fn queue_depth(&self) -> usize {
        (**self).queue_depth()
    }
    fn in_flight(&self) -> usize {
        (**self).in_flight()
    }
    // SAFETY (contract): BlockDevice::submit's; the body keeps it.
    unsafe fn submit(&mut self, req: Request) -> Result<(), BlockError> {
        // SAFETY: forwarded with the caller's guarantee unchanged.
        unsafe { (**self).submit(req) }
    }
    fn poll(&mut self) -> Option<Completion> {
        (**self).poll()
    }
    fn wait(&mut self) -> Option<Completion> {
        (**self).wait()
    }
    fn stats(&self) -> DevStats {
        (**self).stats()
    }
}

impl<T: BlockDevice + ?Sized> BlockDevice for alloc::boxed::Box<T> {
    fn sector_count(&self) -> u64 {
        (**self).sector_count()
    }
    fn queue_depth(&self) -> usize {
        (**self).queue_depth()
    }
    fn in_flight(&self) -> usize {
        (**self).in_flight()
    }
    // SAFETY (contract): BlockDevice::submit's; the body keeps it.
    unsafe fn submit(&mut self, req: Request) -> Result<(), BlockError> {
        // SAFETY: forwarded with the caller's guarantee unchanged.
        unsafe { (**self).submit(req) }
    }
    fn poll(&mut self) -> Option<Completion> {
        (**self).poll()
    }
    fn wait(&mut self) -> Option<Completion> {
        (**self).wait()
    }
    fn stats(&self) -> DevStats {
        (**self).stats()
    }
}
