//! Driver-side bookkeeping of one split virtqueue (virtio 1.x, 2.7).
//!
//! The descriptor table and both rings live in DMA memory the driver
//! accesses; this type decides which descriptors a chain uses, where the
//! next available entry goes, and whether what the device put in the used
//! ring names a chain that is really in flight. It keeps its own copy of
//! every link and every chain length, so a device that scribbles over the
//! descriptor table cannot make the driver walk off the table or free a
//! descriptor twice.
//!
//! Invariants (checked by the tests and the fuzz target `virtio`):
//! * every descriptor is either on the free list or in exactly one chain in
//!   flight: `free_descriptors()` + the lengths of the chains in flight =
//!   `size()`;
//! * every link followed is below `size()`;
//! * the used index may run ahead of the driver's by at most the number of
//!   chains in flight.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

/// Largest queue size virtio allows (2.7).
pub const MAX_QUEUE_SIZE: u16 = 32768;

/// A queue size the driver cannot use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueError {
    /// Zero, or above [`MAX_QUEUE_SIZE`].
    BadSize(u16),
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueError::BadSize(n) => {
                write!(f, "queue size {n} is not in 1..={MAX_QUEUE_SIZE}")
            }
        }
    }
}

/// What the device put in the used ring that no request can match. The
/// driver cannot tell which request finished: it must reset the device and
/// fail every request in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsedError {
    /// The used index is further ahead than there are chains in flight.
    IndexAhead {
        used_idx: u16,
        last_used: u16,
        in_flight: u16,
    },
    /// The element's id is not a descriptor index.
    IdOutOfRange { id: u32, size: u16 },
    /// The element's id is a descriptor that heads no chain in flight
    /// (free, inside a chain, or returned already).
    NotInFlight { id: u16 },
}

impl fmt::Display for UsedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            UsedError::IndexAhead {
                used_idx,
                last_used,
                in_flight,
            } => write!(
                f,
                "used index {used_idx} is {} entries past {last_used}, but only {in_flight} requests are in flight",
                used_idx.wrapping_sub(last_used)
            ),
            UsedError::IdOutOfRange { id, size } => write!(
                f,
                "used element id {id} is not a descriptor of a queue of {size}"
            ),
            UsedError::NotInFlight { id } => {
                write!(f, "used element id {id} heads no request in flight")
            }
        }
    }
}

/// A chain placed by [`SplitQueue::alloc`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chain {
    /// Head descriptor index (what the device returns as the used id).
    pub head: u16,
    /// Position in the available ring where `head` goes.
    pub avail_slot: usize,
    /// The available index to publish once that entry is written.
    pub avail_idx: u16,
}

/// A chain the device has returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Used {
    /// Its head descriptor index.
    pub head: u16,
    /// Bytes the device says it wrote (the used element's `len`, unchecked).
    pub len: u32,
    /// Device-writable bytes the chain offered.
    pub writable: u64,
}

/// Driver-side state of one split virtqueue.
#[derive(Debug, Clone)]
pub struct SplitQueue {
    size: u16,
    /// For a free descriptor the next free one, for a chained one the next
    /// in its chain (the driver's copy; `size` ends the free list).
    next: Vec<u16>,
    /// For the head of a chain in flight its number of descriptors, else 0.
    chain_len: Vec<u16>,
    /// For the head of a chain in flight its device-writable bytes.
    writable: Vec<u64>,
    free_head: u16,
    free_count: u16,
    in_flight: u16,
    avail_idx: u16,
    last_used: u16,
}

impl SplitQueue {
    /// An empty queue of `size` descriptors (every one free).
    pub fn new(size: u16) -> Result<Self, QueueError> {
        if size == 0 || size > MAX_QUEUE_SIZE {
            return Err(QueueError::BadSize(size));
        }
        Ok(Self {
            size,
            next: (1..=size).collect(),
            chain_len: vec![0; size as usize],
            writable: vec![0; size as usize],
            free_head: 0,
            free_count: size,
            in_flight: 0,
            avail_idx: 0,
            last_used: 0,
        })
    }

    pub fn size(&self) -> u16 {
        self.size
    }

    pub fn free_descriptors(&self) -> u16 {
        self.free_count
    }

    /// Chains handed to the device and not returned yet.
    pub fn in_flight(&self) -> u16 {
        self.in_flight
    }

    /// The head the next [`alloc`](Self::alloc) will use, if a descriptor
    /// is free.
    pub fn peek_free_head(&self) -> Option<u16> {
        (self.free_count > 0).then_some(self.free_head)
    }

    /// Takes a chain of one descriptor per buffer (`bufs`: length, device
    /// writes it?), writing each buffer's descriptor index to `out` in
    /// order (`out[i + 1]` is what descriptor `out[i]` links to). `None`
    /// when `bufs` is empty, `out` is shorter, or too few descriptors are
    /// free; nothing changes then.
    pub fn alloc(&mut self, bufs: &[(u32, bool)], out: &mut [u16]) -> Option<Chain> {
        let n = bufs.len();
        if n == 0 || n > self.free_count as usize || out.len() < n {
            return None;
        }
        let head = self.free_head;
        let mut idx = head;
        let mut writable = 0u64;
        for (i, &(len, device_writes)) in bufs.iter().enumerate() {
            out[i] = idx;
            if device_writes {
                writable += u64::from(len);
            }
            if i + 1 < n {
                idx = self.next[idx as usize];
            }
        }
        // `idx` is the chain's last descriptor; its link is the new free head.
        self.free_head = self.next[idx as usize];
        self.free_count -= n as u16;
        self.chain_len[head as usize] = n as u16;
        self.writable[head as usize] = writable;
        self.in_flight += 1;
        let avail_slot = (self.avail_idx % self.size) as usize;
        self.avail_idx = self.avail_idx.wrapping_add(1);
        Some(Chain {
            head,
            avail_slot,
            avail_idx: self.avail_idx,
        })
    }

    /// How many used elements the device has published past the driver's
    /// position, given the used ring's index.
    pub fn pending(&self, used_idx: u16) -> Result<u16, UsedError> {
        let n = used_idx.wrapping_sub(self.last_used);
        if n > self.in_flight {
            return Err(UsedError::IndexAhead {
                used_idx,
                last_used: self.last_used,
                in_flight: self.in_flight,
            });
        }
        Ok(n)
    }

    /// Position in the used ring of the next element to read.
    pub fn used_slot(&self) -> usize {
        (self.last_used % self.size) as usize
    }

    /// Takes the used element at [`used_slot`](Self::used_slot) (`id`,
    /// `len` as the device wrote them), returning its chain's descriptors
    /// to the free list. Call only when [`pending`](Self::pending) is at
    /// least 1. The element is consumed even when it is refused.
    pub fn complete(&mut self, id: u32, len: u32) -> Result<Used, UsedError> {
        self.last_used = self.last_used.wrapping_add(1);
        if id >= u32::from(self.size) {
            return Err(UsedError::IdOutOfRange {
                id,
                size: self.size,
            });
        }
        let head = id as u16;
        let n = self.chain_len[head as usize];
        if n == 0 {
            return Err(UsedError::NotInFlight { id: head });
        }
        let mut last = head;
        for _ in 1..n {
            last = self.next[last as usize];
        }
        self.next[last as usize] = self.free_head;
        self.free_head = head;
        self.free_count += n;
        self.chain_len[head as usize] = 0;
        self.in_flight -= 1;
        Ok(Used {
            head,
            len,
            writable: self.writable[head as usize],
        })
    }

    /// Whether `head` heads a chain in flight.
    pub fn is_in_flight(&self, head: u16) -> bool {
        self.chain_len.get(head as usize).is_some_and(|&n| n != 0)
    }
}
