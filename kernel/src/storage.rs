//! The kernel's block device: found at boot, shared behind one lock.
//!
//! QEMU virt: the first virtio-blk device among the device tree's
//! virtio-mmio windows. Boards without one (raspi4b: its SD host controller
//! needs an EMMC2 driver, a later issue) run without storage.

use crate::BootInfo;
use crate::drivers::virtio_blk::VirtioBlk;
use crate::sync::IrqLock;

/// The block device, if the board has one.
pub static BLOCK: IrqLock<Option<VirtioBlk>> = IrqLock::new(None);

/// Looks for a block device.
pub fn init(info: &BootInfo) {
    if info.virtio_mmio.is_empty() {
        log::info!("no virtio-mmio transports on this board; running without a disk");
        return;
    }
    match VirtioBlk::discover(&info.virtio_mmio) {
        Some(dev) => *BLOCK.lock() = Some(dev),
        None => log::warn!(
            "no virtio block device among {} virtio-mmio windows (qemu-run.sh --disk FILE attaches one)",
            info.virtio_mmio.len()
        ),
    }
}
