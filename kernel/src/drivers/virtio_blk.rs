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
//! the next poll costs no more than an interrupt's entry and exit. A poll
//! reads the used ring (memory) and touches the device's registers only
//! when it takes a completion: it then acknowledges the interrupt status,
//! so the status never stays asserted for long (one a later completion
//! raises meanwhile may be cleared with it; its entry is in the used ring
//! for the next poll, and nothing waits for the interrupt), and a poll that
//! finds nothing costs no register access (the page cache polls once per
//! page it drops or migrates). The page cache pins a page (UNDER_IO) from submit until
//! its completion is reaped, whichever way it is reaped.
//!
//! Notification: `submit` only makes a request available; the device is
//! notified (one register write, an exit to the emulator) at the next
//! `poll` or `wait`, once for every request made available since. Whoever
//! submits polls before it needs the answer (the page cache reaps at the
//! start of every operation and waits by polling), so no request waits for
//! a notification that never comes, and a readahead of 32 pages costs one
//! notification instead of 32.
//!
//! Bad input: a request beyond the capacity or with a bad buffer is refused
//! before it reaches the device; a write to a read-only device is refused;
//! a device status IOERR or UNSUPP comes back as [`BlockError::Io`].
//!
//! Bad device: what the device returns is checked by the `virtio` crate.
//! A capacity of 0 or beyond 2^64 bytes, or a configuration that never
//! reads consistently, refuses the device at probe. A used length or
//! status byte the protocol does not allow fails that request with
//! [`BlockError::BadResponse`] and one console line. A used-ring index or
//! element that names no request in flight means the driver can no longer
//! tell which request ended: it prints one line, resets the device (which
//! stops its DMA), completes every request in flight with
//! [`BlockError::NotReady`] and refuses later ones the same way.

use alloc::vec::Vec;

use blkdev::{
    BlockDevice, BlockError, Completion, DevStats, Op, Request, SECTOR_SIZE, check_request,
};

use virtio::blk::{self, Config, ConfigError, F_FLUSH, F_RO, S_UNSET, T_FLUSH, T_IN, T_OUT};
use virtio::{QueueError, UsedError};

use super::virtio_mmio::{DEVICE_ID_BLOCK, MAX_CHAIN, Transport, TransportError, VirtQueue};
use crate::mm;

/// Entries in the request queue.
pub const QUEUE_SIZE: u16 = 96;

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
    /// Completions produced without the device (flush with no write cache,
    /// requests failed by a reset), with what each request was.
    ready: Vec<(Completion, SlotInfo)>,
    in_flight: usize,
    /// Requests made available since the last notification (see the rule).
    unnotified: bool,
    capacity: u64,
    read_only: bool,
    has_flush: bool,
    /// The device broke the queue protocol and was reset.
    failed: bool,
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
    Queue(QueueError),
    Config(ConfigError),
}

impl core::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ProbeError::Transport(e) => write!(f, "{e}"),
            ProbeError::NotABlockDevice(id) => write!(f, "device type {id} is not a block device"),
            ProbeError::Queue(e) => write!(f, "{e}"),
            ProbeError::Config(e) => write!(f, "virtio-blk configuration: {e}"),
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
        let mut cfg = [0u8; blk::CONFIG_BYTES];
        transport
            .read_config(0, &mut cfg)
            .map_err(ProbeError::Transport)?;
        let config = Config::parse(&cfg).map_err(ProbeError::Config)?;
        let size = virtio::queue_size(transport.queue_max(0), QUEUE_SIZE, MAX_CHAIN as u16)
            .map_err(ProbeError::Transport)?;
        let (d, a, u) = VirtQueue::bytes_needed(size);
        let slot_bytes = (size as usize * core::mem::size_of::<SlotMem>()).next_multiple_of(4096);
        let total = d + a + u + slot_bytes;
        let mem = mm::alloc_dma_zeroed(total)
            .ok_or(ProbeError::Transport(TransportError::OutOfMemory))?;
        // SAFETY: `mem` is zeroed, page-aligned, identity-mapped memory of
        // `total` bytes that this device owns forever.
        let queue = unsafe { VirtQueue::new(mem, size) }.map_err(ProbeError::Queue)?;
        let (qd, qa, qu) = queue.addresses();
        transport
            .setup_queue(0, size as u32, qd, qa, qu)
            .map_err(ProbeError::Transport)?;
        transport.driver_ok();
        Ok(Self {
            transport,
            queue,
            // SAFETY: the slot area follows the queue inside `mem`.
            slots: unsafe { mem.add(d + a + u) } as *mut SlotMem,
            info: alloc::vec![None; size as usize],
            ready: Vec::new(),
            in_flight: 0,
            unnotified: false,
            capacity: config.capacity,
            read_only: features & F_RO != 0,
            has_flush: features & F_FLUSH != 0,
            failed: false,
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
                        (dev.capacity * SECTOR_SIZE as u64) >> 20, // < 2^64: Config::parse
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

    /// Counts a completed request.
    fn account(&mut self, info: &SlotInfo, ok: bool) {
        match info.op {
            Op::Read => {
                self.stats.read_requests += 1;
                if ok {
                    self.stats.sectors_read += info.sectors;
                }
            }
            Op::Write => {
                self.stats.write_requests += 1;
                if ok {
                    self.stats.sectors_written += info.sectors;
                }
            }
            Op::Flush => self.stats.flushes += 1,
        }
    }

    /// The device broke the queue protocol: reset it, so that it stops
    /// using the queue and the request buffers, and fail every request in
    /// flight. Later requests are refused with `NotReady`.
    fn fail(&mut self, e: UsedError) {
        self.failed = true;
        let reset = self.transport.reset();
        let mut failed = 0;
        for info in self.info.iter_mut().filter_map(Option::take) {
            let done = Completion {
                tag: info.tag,
                result: Err(BlockError::NotReady),
            };
            self.ready.push((done, info));
            failed += 1;
        }
        log::error!(
            "virtio-blk at {:#x}: {e}; device reset{}, {failed} requests in flight failed",
            self.transport.base(),
            match reset {
                Ok(()) => "",
                Err(_) => " (not acknowledged)",
            }
        );
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
        if self.failed || self.transport.needs_reset() {
            return Err(BlockError::NotReady);
        }
        check_request(&req, self.capacity)?;
        let Some(data_len) = blk::data_len(req.len) else {
            return Err(BlockError::BadBuffer { len: req.len });
        };
        if req.op == Op::Write && self.read_only {
            return Err(BlockError::ReadOnly);
        }
        if self.in_flight >= self.queue_depth() {
            return Err(BlockError::QueueFull);
        }
        let info = SlotInfo {
            tag: req.tag,
            op: req.op,
            sector: req.sector,
            sectors: req.sectors(),
        };
        let (kind, sector) = match req.op {
            Op::Read => (T_IN, req.sector),
            Op::Write => (T_OUT, req.sector),
            Op::Flush => (T_FLUSH, 0),
        };
        if req.op == Op::Flush && !self.has_flush {
            // The device offers no flush: it has no volatile write cache, so
            // completed writes are durable already (virtio 1.x, 5.2.6.2).
            // The completion is reported by the next poll.
            let done = Completion {
                tag: req.tag,
                result: Ok(()),
            };
            self.ready.push((done, info));
            self.in_flight += 1;
            return Ok(());
        }
        // A chain's head is the queue's free-list head at the time of the
        // push, so its slot can be filled before the device may see it.
        let Some(head_guess) = self.queue.peek_free_head() else {
            return Err(BlockError::QueueFull);
        };
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
                (req.buf as u64, data_len, device_writes),
                (status, 1, true),
            ])
        };
        let Some(head) = head else {
            return Err(BlockError::QueueFull);
        };
        debug_assert_eq!(head, head_guess, "virtqueue handed out another head");
        self.info[head as usize] = Some(info);
        self.in_flight += 1;
        self.unnotified = true;
        Ok(())
    }

    fn poll(&mut self) -> Option<Completion> {
        if self.unnotified {
            self.unnotified = false;
            self.transport.notify(0);
        }
        if let Some((done, info)) = self.ready.pop() {
            self.in_flight -= 1;
            self.account(&info, done.result.is_ok());
            return Some(done);
        }
        if self.failed {
            return None;
        }
        // The used ring is memory; the interrupt status is a register, which
        // under emulation costs an exit to the device model: touch it only
        // when there is a completion to take.
        let used = self.queue.pop_used()?;
        self.transport.ack_interrupts();
        let used = match used {
            Ok(used) => used,
            Err(e) => {
                self.fail(e);
                return self.poll();
            }
        };
        let Some(info) = self.info.get_mut(used.head as usize).and_then(Option::take) else {
            // SplitQueue only returns heads of chains in flight, each of
            // which has its slot filled at submission.
            self.fail(UsedError::NotInFlight { id: used.head });
            return self.poll();
        };
        self.in_flight -= 1;
        // SAFETY: the device has returned this chain, so it no longer writes
        // the slot; read the status byte it wrote.
        let status = unsafe {
            core::ptr::read_volatile(core::ptr::addr_of!((*self.slot(used.head)).status))
        };
        let result = blk::check_response(&used, status).map_err(|e| match e.status() {
            Some(status) => BlockError::Io {
                sector: info.sector,
                status,
            },
            None => {
                log::warn!(
                    "virtio-blk at {:#x}: request at sector {}: {e}; request failed",
                    self.transport.base(),
                    info.sector
                );
                BlockError::BadResponse {
                    sector: info.sector,
                }
            }
        });
        self.account(&info, result.is_ok());
        Some(Completion {
            tag: info.tag,
            result,
        })
    }

    fn stats(&self) -> DevStats {
        self.stats
    }
}
