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

use core::ptr::{addr_of, addr_of_mut};
use core::sync::atomic::{Ordering, fence};

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

use aarch64_cpu::asm::barrier;

const MAGIC: u32 = 0x7472_6976; // "virt"

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

/// Feature bit every modern device offers and every modern driver accepts.
pub const F_VERSION_1: u64 = 1 << 32;

/// Device types (virtio 1.x, 5).
pub const DEVICE_ID_BLOCK: u32 = 2;

/// Why a transport could not be brought up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportError {
    BadMagic(u32),
    Legacy,
    UnsupportedVersion(u32),
    NoDevice,
    FeaturesRejected,
    QueueUnavailable,
    QueueInUse,
    OutOfMemory,
}

impl core::fmt::Display for TransportError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            TransportError::BadMagic(m) => write!(f, "not a virtio-mmio device (magic {m:#x})"),
            TransportError::Legacy => write!(
                f,
                "legacy virtio-mmio (version 1) device; start QEMU with -global virtio-mmio.force-legacy=false"
            ),
            TransportError::UnsupportedVersion(v) => {
                write!(f, "unsupported virtio-mmio version {v}")
            }
            TransportError::NoDevice => write!(f, "no device behind this transport"),
            TransportError::FeaturesRejected => {
                write!(f, "device rejected the negotiated features")
            }
            TransportError::QueueUnavailable => write!(f, "queue 0 does not exist"),
            TransportError::QueueInUse => write!(f, "queue 0 is already live"),
            TransportError::OutOfMemory => write!(f, "no memory for the virtqueue"),
        }
    }
}

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
        let magic = r.magic.get();
        if magic != MAGIC {
            return Err(TransportError::BadMagic(magic));
        }
        // An empty slot (device id 0) is not an error in either version.
        let id = r.device_id.get();
        if id == 0 {
            return Err(TransportError::NoDevice);
        }
        match r.version.get() {
            2 => Ok(id),
            1 => Err(TransportError::Legacy),
            v => Err(TransportError::UnsupportedVersion(v)),
        }
    }

    /// Resets the device and negotiates features: accepts `wanted` ∩ offered
    /// (VERSION_1 is required). Returns the accepted set.
    pub fn negotiate(&self, wanted: u64) -> Result<u64, TransportError> {
        let r = self.regs();
        r.status.set(0);
        while r.status.get() != 0 {
            core::hint::spin_loop();
        }
        r.status.set(status::ACKNOWLEDGE);
        r.status.set(status::ACKNOWLEDGE | status::DRIVER);
        r.device_features_sel.set(0);
        let mut offered = r.device_features.get() as u64;
        r.device_features_sel.set(1);
        offered |= (r.device_features.get() as u64) << 32;
        if offered & F_VERSION_1 == 0 {
            r.status.set(status::FAILED);
            return Err(TransportError::FeaturesRejected);
        }
        let accepted = offered & (wanted | F_VERSION_1);
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
    pub fn read_config(&self, offset: usize, out: &mut [u8]) {
        let r = self.regs();
        loop {
            let before = r.config_generation.get();
            for (i, b) in out.iter_mut().enumerate() {
                // SAFETY: the configuration space starts at 0x100 in the
                // mapped window; byte reads are allowed for it (4.2.2.2).
                *b = unsafe {
                    core::ptr::read_volatile((self.base() + 0x100 + offset + i) as *const u8)
                };
            }
            if r.config_generation.get() == before {
                return;
            }
        }
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

/// Used-ring element (2.7.8).
#[repr(C)]
#[derive(Clone, Copy)]
struct UsedElem {
    id: u32,
    len: u32,
}

/// One split virtqueue of `size` entries in driver-owned memory.
pub struct VirtQueue {
    size: u16,
    desc: *mut Desc,
    avail: *mut u16, // flags, idx, ring[size]
    used: *mut u8,   // flags u16, idx u16, ring[size] of UsedElem
    free_head: u16,
    free_count: u16,
    last_used: u16,
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
    pub unsafe fn new(mem: *mut u8, size: u16) -> Self {
        let (d, a, _) = Self::bytes_needed(size);
        let desc = mem as *mut Desc;
        for i in 0..size {
            // SAFETY: `i < size` descriptors fit in the first part of `mem`.
            unsafe { (*desc.add(i as usize)).next = i + 1 };
        }
        Self {
            size,
            desc,
            // SAFETY: offsets within `mem` per `bytes_needed`.
            avail: unsafe { mem.add(d) } as *mut u16,
            // SAFETY: as above.
            used: unsafe { mem.add(d + a) },
            free_head: 0,
            free_count: size,
            last_used: 0,
        }
    }

    pub fn addresses(&self) -> (u64, u64, u64) {
        (self.desc as u64, self.avail as u64, self.used as u64)
    }

    pub fn size(&self) -> u16 {
        self.size
    }

    /// The head index the next `push` will use.
    pub fn peek_free_head(&self) -> u16 {
        self.free_head
    }

    pub fn free_descriptors(&self) -> u16 {
        self.free_count
    }

    /// Places a chain of descriptors (`bufs`: address, length, device
    /// writes?) in the available ring. Returns the head index, or None if
    /// not enough descriptors are free.
    pub fn push(&mut self, bufs: &[(u64, u32, bool)]) -> Option<u16> {
        if bufs.is_empty() || bufs.len() > self.free_count as usize {
            return None;
        }
        let head = self.free_head;
        let mut idx = head;
        for (i, &(addr, len, write)) in bufs.iter().enumerate() {
            // SAFETY: `idx` is a free descriptor index (< size) taken from
            // the free list; only the driver writes free descriptors.
            let d = unsafe { &mut *self.desc.add(idx as usize) };
            let next_free = d.next;
            d.addr = addr;
            d.len = len;
            d.flags = if write { DESC_F_WRITE } else { 0 };
            if i + 1 < bufs.len() {
                d.flags |= DESC_F_NEXT;
                d.next = next_free;
            }
            idx = next_free;
        }
        self.free_head = idx;
        self.free_count -= bufs.len() as u16;
        // SAFETY: the available ring lies in queue memory: flags at 0, idx at
        // 1, ring at 2..2+size (in u16 units). The driver is its only writer.
        unsafe {
            let avail_idx = addr_of_mut!(*self.avail.add(1)).read_volatile();
            self.avail
                .add(2 + (avail_idx % self.size) as usize)
                .write_volatile(head);
            // The ring entry must be visible before the index that publishes it.
            fence(Ordering::SeqCst);
            barrier::dsb(barrier::SY);
            self.avail.add(1).write_volatile(avail_idx.wrapping_add(1));
        }
        Some(head)
    }

    /// Takes one completed chain from the used ring: (head index, bytes
    /// written), returning its descriptors to the free list.
    pub fn pop_used(&mut self) -> Option<(u16, u32)> {
        // SAFETY: the used ring lies in queue memory: idx at byte 2, ring at
        // byte 4; the device writes it, the driver only reads.
        let used_idx = unsafe { addr_of!(*(self.used.add(2) as *const u16)).read_volatile() };
        if used_idx == self.last_used {
            return None;
        }
        // Read the element only after seeing the index that covers it.
        barrier::dmb(barrier::SY);
        let slot = (self.last_used % self.size) as usize;
        // SAFETY: `slot < size` elements of 8 bytes after the 4-byte header.
        let elem = unsafe { (self.used.add(4 + 8 * slot) as *const UsedElem).read_volatile() };
        self.last_used = self.last_used.wrapping_add(1);
        let head = elem.id as u16;
        // Return the chain to the free list.
        let mut idx = head;
        let mut n = 1;
        loop {
            // SAFETY: `idx` belongs to the chain the device just returned.
            let d = unsafe { &mut *self.desc.add(idx as usize) };
            if d.flags & DESC_F_NEXT == 0 {
                d.next = self.free_head;
                break;
            }
            idx = d.next;
            n += 1;
        }
        self.free_head = head;
        self.free_count += n;
        Some((head, elem.len))
    }
}
