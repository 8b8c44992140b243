//! virtio without the MMIO: everything the kernel's virtio-mmio and
//! virtio-blk drivers decide from values a device hands back, as pure,
//! host-tested and fuzzed code. The drivers (kernel/src/drivers) do the
//! register and DMA-memory accesses and ask this crate what they mean.
//!
//! # Rules
//!
//! * A device is not trusted. Every value it writes (register, used-ring
//!   index and element, status byte, configuration space) is checked here,
//!   and a bad one is an error value that names the value and what was
//!   expected. Nothing here panics or indexes out of bounds on any input.
//! * The driver keeps its own copy of every chain's shape ([`SplitQueue`]):
//!   descriptor links and lengths are never read back from the descriptor
//!   table, which lies in memory the device can write.
//! * Errors come in two weights. A bad used-ring index or element
//!   ([`UsedError`]) means the driver can no longer tell which request
//!   finished: the driver resets the device and fails every request in
//!   flight. A bad status byte or length for one request
//!   ([`blk::ResponseError`]) fails that request only.
//!
//! No locking: the values are owned by one driver instance, which the
//! kernel serialises.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod blk;
mod queue;
mod transport;

pub use queue::{MAX_QUEUE_SIZE, QueueError, SplitQueue, Used, UsedError};
pub use transport::{
    DEVICE_ID_BLOCK, F_VERSION_1, MAGIC, TransportError, accept_features, check_identity,
    queue_size, read_consistent,
};

#[cfg(test)]
mod tests;
