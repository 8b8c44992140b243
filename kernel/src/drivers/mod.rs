//! Device drivers.

pub mod gic;
pub mod mmio;
pub mod pl011;
pub mod virtio_blk;
pub mod virtio_mmio;
