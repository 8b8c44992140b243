//! virtio-blk over virtio-mmio: a [`BlockDevice`] with several requests in
//! flight.
//!
//! Every request is a three-descriptor chain (header, data, status byte; two
//! for a flush) in one split virtqueue of up to [`QUEUE_SIZE`] entries, so up
//! to QUEUE_SIZE / 3 requests are in flight. The head descriptor index names
//! the request's slot (its header, status byte and bookkeeping).
//!
//! Completion is by polling the used ring ([`BlockDevice::poll`], or `wait`,
//! which spins on it). Why not interrupts: the kernel is a single-core
//! unikernel whose tasks reach scheduling points often; a completion found at
//! the next poll costs no more than an interrupt's entry and exit, and the
//! device's interrupt status is still acknowledged on every poll so it never
//! stays asserted. The page cache pins a page (UNDER_IO) from submit until
//! its completion is reaped, whichever way it is reaped.
//!
//! Bad input: a request beyond the capacity or with a bad buffer is refused
//! before it reaches the device; a write to a read-only device is refused;
//! a device status other than OK comes back as [`BlockError::Io`].

use alloc::vec::Vec;

use blkdev::{
    BlockDevice, BlockError, Completion, DevStats, Op, Request, SECTOR_SIZE, check_request,
};

use super::virtio_mmio::{DEVICE_ID_BLOCK, Transport, TransportError, VirtQueue};
use crate::mm;

/// Entries in the request queue.
pub const QUEUE_SIZE: u16 = 96;

const F_RO: u64 = 1 << 5;
const F_FLUSH: u64 = 1 << 9;

const T_IN: u32 = 0;
const T_OUT: u32 = 1;
const T_FLUSH: u32 = 4;

const S_OK: u8 = 0;
const S_UNSET: u8 = 0xff;

/// Per-request memory the device reads (header) and writes (status).
#[repr(C, align(32))]
struct SlotMem {
    kind: u32,
    reserved: u32,
    sector: u64,
    status: u8,
}

#[derive(Clone, Copy)]
struct SlotInfo {
    tag: u64,
    op: Op,
    sector: u64,
    sectors: u64,
}

/// One virtio block device.
pub struct VirtioBlk {
    transport: Transport,
    queue: VirtQueue,
    slots: *mut SlotMem,
    info: Vec<Option<SlotInfo>>,
    /// Completions produced without the device (flush with no write cache).
    ready: Vec<Completion>,
    in_flight: usize,
    capacity: u64,
    read_only: bool,
    has_flush: bool,
    stats: DevStats,
}

// SAFETY: all raw pointers point at memory owned by this device value
// (queue, slots) or at its MMIO window; the owner serialises access.
unsafe impl Send for VirtioBlk {}

/// Why no block device could be started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeError {
    Transport(TransportError),
    NotABlockDevice(u32),
}

impl core::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ProbeError::Transport(e) => write!(f, "{e}"),
            ProbeError::NotABlockDevice(id) => write!(f, "device type {id} is not a block device"),
        }
    }
}

impl VirtioBlk {
    /// Brings up the virtio-blk device at `base`.
    ///
    /// # Safety
    /// `base` must be a virtio-mmio window from the device tree, mapped as
    /// device memory and driven by nobody else.
    pub unsafe fn new(base: usize) -> Result<Self, ProbeError> {
        // SAFETY: forwarded contract.
        let transport = unsafe { Transport::new(base) };
        let id = transport.probe().map_err(ProbeError::Transport)?;
        if id != DEVICE_ID_BLOCK {
            return Err(ProbeError::NotABlockDevice(id));
        }
        let features = transport
            .negotiate(F_RO | F_FLUSH)
            .map_err(ProbeError::Transport)?;
        let max = transport.queue_max(0);
        if max == 0 {
            return Err(ProbeError::Transport(TransportError::QueueUnavailable));
        }
        let size = QUEUE_SIZE.min(max.min(u16::MAX as u32) as u16);
        let (d, a, u) = VirtQueue::bytes_needed(size);
        let slot_bytes = (size as usize * core::mem::size_of::<SlotMem>()).next_multiple_of(4096);
        let total = d + a + u + slot_bytes;
        let mem = mm::alloc_dma_zeroed(total)
            .ok_or(ProbeError::Transport(TransportError::OutOfMemory))?;
        // SAFETY: `mem` is zeroed, page-aligned, identity-mapped memory of
        // `total` bytes that this device owns forever.
        let queue = unsafe { VirtQueue::new(mem, size) };
        let (qd, qa, qu) = queue.addresses();
        transport
            .setup_queue(0, size as u32, qd, qa, qu)
            .map_err(ProbeError::Transport)?;
        transport.driver_ok();
        let mut cfg = [0u8; 8];
        transport.read_config(0, &mut cfg);
        Ok(Self {
            transport,
            queue,
            // SAFETY: the slot area follows the queue inside `mem`.
            slots: unsafe { mem.add(d + a + u) } as *mut SlotMem,
            info: alloc::vec![None; size as usize],
            ready: Vec::new(),
            in_flight: 0,
            capacity: u64::from_le_bytes(cfg),
            read_only: features & F_RO != 0,
            has_flush: features & F_FLUSH != 0,
            stats: DevStats::default(),
        })
    }

    /// Finds and starts the first virtio block device among `windows`.
    pub fn discover(windows: &[u64]) -> Option<Self> {
        for &base in windows {
            // SAFETY: `windows` are the device tree's virtio,mmio nodes,
            // below 4 GiB and outside RAM, so mapped as device memory; the
            // kernel starts at most one driver per window (this one).
            match unsafe { Self::new(base as usize) } {
                Ok(dev) => {
                    log::info!(
                        "virtio-blk at {base:#x}: {} sectors ({} MiB){}, queue of {} ({} requests in flight)",
                        dev.capacity,
                        (dev.capacity * SECTOR_SIZE as u64) >> 20,
                        if dev.read_only { ", read-only" } else { "" },
                        dev.queue.size(),
                        dev.queue_depth()
                    );
                    return Some(dev);
                }
                Err(ProbeError::Transport(TransportError::NoDevice))
                | Err(ProbeError::NotABlockDevice(_)) => {}
                Err(e) => log::warn!("virtio-mmio at {base:#x}: {e}"),
            }
        }
        None
    }

    pub fn read_only(&self) -> bool {
        self.read_only
    }

    fn slot(&self, head: u16) -> *mut SlotMem {
        // SAFETY: `head < size` slots were allocated.
        unsafe { self.slots.add(head as usize) }
    }
}

impl BlockDevice for VirtioBlk {
    fn sector_count(&self) -> u64 {
        self.capacity
    }

    fn queue_depth(&self) -> usize {
        self.queue.size() as usize / 3
    }

    fn in_flight(&self) -> usize {
        self.in_flight
    }

    // SAFETY (contract): the caller keeps `req.buf` valid and untouched until
    // the completion is reaped (BlockDevice::submit); the device only DMAs
    // into it in that window.
    unsafe fn submit(&mut self, req: Request) -> Result<(), BlockError> {
        if self.transport.needs_reset() {
            return Err(BlockError::NotReady);
        }
        check_request(&req, self.capacity)?;
        if req.op == Op::Write && self.read_only {
            return Err(BlockError::ReadOnly);
        }
        if self.in_flight >= self.queue_depth() {
            return Err(BlockError::QueueFull);
        }
        let (kind, sector) = match req.op {
            Op::Read => (T_IN, req.sector),
            Op::Write => (T_OUT, req.sector),
            Op::Flush => (T_FLUSH, 0),
        };
        if req.op == Op::Flush && !self.has_flush {
            // The device offers no flush: it has no volatile write cache, so
            // completed writes are durable already (virtio 1.x, 5.2.6.2).
            // The completion is reported by the next poll.
            self.ready.push(Completion {
                tag: req.tag,
                result: Ok(()),
            });
            self.in_flight += 1;
            return Ok(());
        }
        // A chain's head is the queue's free-list head at the time of the
        // push, so its slot can be filled before the device may see it.
        let head_guess = self.queue.peek_free_head();
        let slot = self.slot(head_guess);
        // SAFETY: slot memory of a free descriptor index: not in flight, so
        // the device does not access it now.
        unsafe {
            (*slot).kind = kind;
            (*slot).reserved = 0;
            (*slot).sector = sector;
            (*slot).status = S_UNSET;
        }
        let hdr = slot as u64;
        // SAFETY: address computation inside the slot; nothing is accessed.
        let status = unsafe { core::ptr::addr_of_mut!((*slot).status) } as u64;
        let head = if req.op == Op::Flush {
            self.queue.push(&[(hdr, 16, false), (status, 1, true)])
        } else {
            let device_writes = req.op == Op::Read;
            self.queue.push(&[
                (hdr, 16, false),
                (req.buf as u64, req.len as u32, device_writes),
                (status, 1, true),
            ])
        };
        let Some(head) = head else {
            return Err(BlockError::QueueFull);
        };
        debug_assert_eq!(head, head_guess, "virtqueue handed out another head");
        self.info[head as usize] = Some(SlotInfo {
            tag: req.tag,
            op: req.op,
            sector: req.sector,
            sectors: req.sectors(),
        });
        self.in_flight += 1;
        self.transport.notify(0);
        Ok(())
    }

    fn poll(&mut self) -> Option<Completion> {
        if let Some(c) = self.ready.pop() {
            self.in_flight -= 1;
            self.stats.flushes += 1;
            return Some(c);
        }
        self.transport.ack_interrupts();
        let (head, _written) = self.queue.pop_used()?;
        let info = self.info.get_mut(head as usize)?.take()?;
        self.in_flight -= 1;
        // SAFETY: the device has returned this chain, so it no longer writes
        // the slot; read the status byte it wrote.
        let status =
            unsafe { core::ptr::read_volatile(core::ptr::addr_of!((*self.slot(head)).status)) };
        let result = if status == S_OK {
            Ok(())
        } else {
            Err(BlockError::Io {
                sector: info.sector,
                status,
            })
        };
        match info.op {
            Op::Read => {
                self.stats.read_requests += 1;
                if result.is_ok() {
                    self.stats.sectors_read += info.sectors;
                }
            }
            Op::Write => {
                self.stats.write_requests += 1;
                if result.is_ok() {
                    self.stats.sectors_written += info.sectors;
                }
            }
            Op::Flush => self.stats.flushes += 1,
        }
        Some(Completion {
            tag: info.tag,
            result,
        })
    }

    fn stats(&self) -> DevStats {
        self.stats
    }
}
