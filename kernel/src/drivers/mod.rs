//! Device drivers.

pub mod disk;
pub mod gic;
pub mod mailbox;
pub mod mmio;
pub mod pl011;
pub mod pm_wdt;
pub mod sdhci;
pub mod virtio_blk;
pub mod virtio_mmio;
