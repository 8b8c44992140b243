//! virtio over MMIO (virtio 1.x, section 4.2): the transport registers,
//! device initialisation and one split virtqueue.
//!
//! Rules:
//! - Only the modern interface (register `Version` == 2) is supported. QEMU's
//!   virt machine offers the legacy one unless started with
//!   `-global virtio-mmio.force-legacy=false` (qemu-run.sh does); a legacy
//!   device is refused with a message saying so.
//! - Queue memory (descriptor table, available and used rings) comes from
//!   the frame allocator, is identity-mapped normal memory and is never
//!   freed while the device is live. QEMU's DMA is cache coherent.
//! - Ordering: ring and descriptor writes are made visible with a `dsb`
//!   before the index that publishes them, and before the notify register
//!   write; the used index is read before the used element it covers.
//! - The device is not trusted: what it returns (identity, features, queue
//!   size, configuration generation, used index and elements) is checked by
//!   the host-tested `virtio` crate (kernel/crates/virtio), which also keeps
//!   the driver's own copy of every chain, so no descriptor link is read
//!   back from shared memory. Waits on the device are bounded.

use core::ptr::addr_of;
use core::sync::atomic::{Ordering, fence};

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

use aarch64_cpu::asm::barrier;
use virtio::{QueueError, SplitQueue, Used, UsedError};

register_structs! {
    pub Registers {
        (0x000 => magic: ReadOnly<u32>),
        (0x004 => version: ReadOnly<u32>),
        (0x008 => device_id: ReadOnly<u32>),
        (0x00c => vendor_id: ReadOnly<u32>),
        (0x010 => device_features: ReadOnly<u32>),
        (0x014 => device_features_sel: WriteOnly<u32>),
        (0x018 => _r0),
        (0x020 => driver_features: WriteOnly<u32>),
        (0x024 => driver_features_sel: WriteOnly<u32>),
        (0x028 => _r1),
        (0x030 => queue_sel: WriteOnly<u32>),
        (0x034 => queue_num_max: ReadOnly<u32>),
        (0x038 => queue_num: WriteOnly<u32>),
        (0x03c => _r2),
        (0x044 => queue_ready: ReadWrite<u32>),
        (0x048 => _r3),
        (0x050 => queue_notify: WriteOnly<u32>),
        (0x054 => _r4),
        (0x060 => interrupt_status: ReadOnly<u32>),
        (0x064 => interrupt_ack: WriteOnly<u32>),
        (0x068 => _r5),
        (0x070 => status: ReadWrite<u32>),
        (0x074 => _r6),
        (0x080 => queue_desc_low: WriteOnly<u32>),
        (0x084 => queue_desc_high: WriteOnly<u32>),
        (0x088 => _r7),
        (0x090 => queue_driver_low: WriteOnly<u32>),
        (0x094 => queue_driver_high: WriteOnly<u32>),
        (0x098 => _r8),
        (0x0a0 => queue_device_low: WriteOnly<u32>),
        (0x0a4 => queue_device_high: WriteOnly<u32>),
        (0x0a8 => _r9),
        (0x0fc => config_generation: ReadOnly<u32>),
        (0x100 => @END),
    }
}

/// Device status bits (virtio 1.x, 2.1).
mod status {
    pub const ACKNOWLEDGE: u32 = 1;
    pub const DRIVER: u32 = 2;
    pub const DRIVER_OK: u32 = 4;
    pub const FEATURES_OK: u32 = 8;
    pub const FAILED: u32 = 128;
}

pub use virtio::{DEVICE_ID_BLOCK, TransportError};

/// Polls of the status register before a reset counts as not done.
const RESET_POLLS: u32 = 1_000_000;
/// Reads of configuration space before a changing generation counter
/// counts as unstable.
const CONFIG_TRIES: u32 = 64;

/// One virtio-mmio transport window.
pub struct Transport {
    regs: *const Registers,
}

// SAFETY: the transport holds only its MMIO base; its owner (one driver
// instance behind the kernel's lock) serialises access.
unsafe impl Send for Transport {}

impl Transport {
    /// # Safety
    /// `base` must be a virtio-mmio register window (from the device tree)
    /// mapped as device memory, driven by nobody else.
    pub unsafe fn new(base: usize) -> Self {
        Self {
            regs: base as *const Registers,
        }
    }

    fn regs(&self) -> &Registers {
        // SAFETY: `new`'s contract.
        unsafe { &*self.regs }
    }

    pub fn base(&self) -> usize {
        self.regs as usize
    }

    /// Device type behind the window, after checking magic and version.
    pub fn probe(&self) -> Result<u32, TransportError> {
        let r = self.regs();
        virtio::check_identity(r.magic.get(), r.version.get(), r.device_id.get())
    }

    /// Resets the device: once the status register reads 0 it has stopped
    /// using its queues (virtio 1.x, 2.4). A device that never gets there
    /// is an error, not a hang.
    pub fn reset(&self) -> Result<(), TransportError> {
        let r = self.regs();
        r.status.set(0);
        for _ in 0..RESET_POLLS {
            if r.status.get() == 0 {
                return Ok(());
            }
            core::hint::spin_loop();
        }
        Err(TransportError::ResetTimeout)
    }

    /// Resets the device and negotiates features: accepts `wanted` ∩ offered
    /// (VERSION_1 is required). Returns the accepted set.
    pub fn negotiate(&self, wanted: u64) -> Result<u64, TransportError> {
        let r = self.regs();
        self.reset()?;
        r.status.set(status::ACKNOWLEDGE);
        r.status.set(status::ACKNOWLEDGE | status::DRIVER);
        r.device_features_sel.set(0);
        let mut offered = r.device_features.get() as u64;
        r.device_features_sel.set(1);
        offered |= (r.device_features.get() as u64) << 32;
        let accepted = virtio::accept_features(offered, wanted).inspect_err(|_| {
            r.status.set(status::FAILED);
        })?;
        r.driver_features_sel.set(0);
        r.driver_features.set(accepted as u32);
        r.driver_features_sel.set(1);
        r.driver_features.set((accepted >> 32) as u32);
        r.status
            .set(status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK);
        if r.status.get() & status::FEATURES_OK == 0 {
            r.status.set(status::FAILED);
            return Err(TransportError::FeaturesRejected);
        }
        Ok(accepted)
    }

    /// Largest size of queue `q` (0: the queue does not exist).
    pub fn queue_max(&self, q: u32) -> u32 {
        let r = self.regs();
        r.queue_sel.set(q);
        r.queue_num_max.get()
    }

    /// Hands queue `q` of `size` entries at the given physical addresses to
    /// the device.
    pub fn setup_queue(
        &self,
        q: u32,
        size: u32,
        desc: u64,
        avail: u64,
        used: u64,
    ) -> Result<(), TransportError> {
        let r = self.regs();
        r.queue_sel.set(q);
        if r.queue_ready.get() != 0 {
            return Err(TransportError::QueueInUse);
        }
        r.queue_num.set(size);
        r.queue_desc_low.set(desc as u32);
        r.queue_desc_high.set((desc >> 32) as u32);
        r.queue_driver_low.set(avail as u32);
        r.queue_driver_high.set((avail >> 32) as u32);
        r.queue_device_low.set(used as u32);
        r.queue_device_high.set((used >> 32) as u32);
        r.queue_ready.set(1);
        Ok(())
    }

    /// Tells the device the driver is ready.
    pub fn driver_ok(&self) {
        let r = self.regs();
        r.status.set(r.status.get() | status::DRIVER_OK);
    }

    /// Whether the device flagged an unrecoverable error.
    pub fn needs_reset(&self) -> bool {
        self.regs().status.get() & 64 != 0
    }

    /// Publishes new available entries of queue `q` to the device.
    pub fn notify(&self, q: u32) {
        barrier::dsb(barrier::SY);
        self.regs().queue_notify.set(q);
    }

    /// Reads and acknowledges pending interrupt causes.
    pub fn ack_interrupts(&self) -> u32 {
        let r = self.regs();
        let s = r.interrupt_status.get();
        if s != 0 {
            r.interrupt_ack.set(s);
        }
        s
    }

    /// Reads a consistent copy of the device configuration space bytes
    /// `[offset, offset + out.len())`.
    pub fn read_config(&self, offset: usize, out: &mut [u8]) -> Result<(), TransportError> {
        let r = self.regs();
        let read = |out: &mut [u8]| {
            for (i, b) in out.iter_mut().enumerate() {
                // SAFETY: the configuration space starts at 0x100 in the
                // mapped window; byte reads are allowed for it (4.2.2.2).
                *b = unsafe {
                    core::ptr::read_volatile((self.base() + 0x100 + offset + i) as *const u8)
                };
            }
        };
        virtio::read_consistent(CONFIG_TRIES, || r.config_generation.get(), read, out)
    }
}

/// Split-virtqueue descriptor (2.7.5).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Desc {
    pub addr: u64,
    pub len: u32,
    pub flags: u16,
    pub next: u16,
}

pub const DESC_F_NEXT: u16 = 1;
pub const DESC_F_WRITE: u16 = 2;

/// Most descriptors in one chain the driver builds (virtio-blk: header,
/// data, status).
pub const MAX_CHAIN: usize = 3;

/// Used-ring element (2.7.8).
#[repr(C)]
#[derive(Clone, Copy)]
struct UsedElem {
    id: u32,
    len: u32,
}

/// One split virtqueue of `size` entries in driver-owned memory. Which
/// descriptors a chain uses and whether a used element names a chain in
/// flight is decided by [`SplitQueue`], from the driver's own copy of the
/// chains; this type only moves values in and out of the shared memory.
pub struct VirtQueue {
    desc: *mut Desc,
    avail: *mut u16, // flags, idx, ring[size]
    used: *mut u8,   // flags u16, idx u16, ring[size] of UsedElem
    book: SplitQueue,
}

// SAFETY: the queue memory is owned exclusively by this value (allocated for
// it and never shared except with the device).
unsafe impl Send for VirtQueue {}

impl VirtQueue {
    /// Bytes of memory a queue of `size` entries needs (each part 4 KiB
    /// aligned: descriptors, then available ring, then used ring).
    pub fn bytes_needed(size: u16) -> (usize, usize, usize) {
        let n = size as usize;
        let desc = (16 * n).next_multiple_of(4096);
        let avail = (6 + 2 * n).next_multiple_of(4096);
        let used = (6 + 8 * n).next_multiple_of(4096);
        (desc, avail, used)
    }

    /// # Safety
    /// `mem` must be zeroed, identity-mapped memory of at least the sum of
    /// `bytes_needed(size)`, 4 KiB aligned, owned by this queue forever.
    pub unsafe fn new(mem: *mut u8, size: u16) -> Result<Self, QueueError> {
        let book = SplitQueue::new(size)?;
        let (d, a, _) = Self::bytes_needed(size);
        Ok(Self {
            desc: mem as *mut Desc,
            // SAFETY: offsets within `mem` per `bytes_needed`.
            avail: unsafe { mem.add(d) } as *mut u16,
            // SAFETY: as above.
            used: unsafe { mem.add(d + a) },
            book,
        })
    }

    pub fn addresses(&self) -> (u64, u64, u64) {
        (self.desc as u64, self.avail as u64, self.used as u64)
    }

    pub fn size(&self) -> u16 {
        self.book.size()
    }

    /// The head index the next `push` will use, if a descriptor is free.
    pub fn peek_free_head(&self) -> Option<u16> {
        self.book.peek_free_head()
    }

    /// Places a chain of descriptors (`bufs`: address, length, device
    /// writes?) in the available ring. Returns the head index, or None if
    /// not enough descriptors are free.
    pub fn push(&mut self, bufs: &[(u64, u32, bool)]) -> Option<u16> {
        let mut lens = [(0u32, false); MAX_CHAIN];
        let mut ids = [0u16; MAX_CHAIN];
        let lens = lens.get_mut(..bufs.len())?;
        for (l, &(_, len, write)) in lens.iter_mut().zip(bufs) {
            *l = (len, write);
        }
        let chain = self.book.alloc(lens, &mut ids)?;
        for (i, &(addr, len, write)) in bufs.iter().enumerate() {
            let last = i + 1 == bufs.len();
            let flags = if write { DESC_F_WRITE } else { 0 } | if last { 0 } else { DESC_F_NEXT };
            let next = if last { 0 } else { ids[i + 1] };
            // SAFETY: SplitQueue handed out `ids[i]` (< size) for this
            // chain: a free descriptor, which the device does not read.
            unsafe {
                self.desc.add(ids[i] as usize).write_volatile(Desc {
                    addr,
                    len,
                    flags,
                    next,
                })
            };
        }
        // SAFETY: the available ring lies in queue memory: flags at 0, idx at
        // 1, ring at 2..2+size (in u16 units; `avail_slot < size`). The
        // driver is its only writer.
        unsafe {
            self.avail
                .add(2 + chain.avail_slot)
                .write_volatile(chain.head);
            // The ring entry must be visible before the index that publishes it.
            fence(Ordering::SeqCst);
            barrier::dsb(barrier::SY);
            self.avail.add(1).write_volatile(chain.avail_idx);
        }
        Some(chain.head)
    }

    /// Takes one completed chain from the used ring, returning its
    /// descriptors to the free list: `None` if the device has returned
    /// nothing new, an error if what it returned names no chain in flight
    /// (then the device must be reset).
    pub fn pop_used(&mut self) -> Option<Result<Used, UsedError>> {
        // SAFETY: the used ring lies in queue memory: idx at byte 2, ring at
        // byte 4; the device writes it, the driver only reads.
        let used_idx = unsafe { addr_of!(*(self.used.add(2) as *const u16)).read_volatile() };
        match self.book.pending(used_idx) {
            Ok(0) => return None,
            Ok(_) => {}
            Err(e) => return Some(Err(e)),
        }
        // Read the element only after seeing the index that covers it.
        barrier::dmb(barrier::SY);
        let slot = self.book.used_slot();
        // SAFETY: `slot < size` elements of 8 bytes after the 4-byte header.
        let elem = unsafe { (self.used.add(4 + 8 * slot) as *const UsedElem).read_volatile() };
        Some(self.book.complete(elem.id, elem.len))
    }
}
