//! The kernel's block device: found at boot, shared behind one lock.
//!
//! QEMU virt: the first virtio-blk device among the device tree's
//! virtio-mmio windows. Boards without one (raspi4b: its SD host controller
//! needs an EMMC2 driver, a later issue) run without storage.
//!
//! The device runs behind the block layer's fault wrapper
//! ([`blkdev::FaultyDisk`]), with no fault set: self-tests inject read and
//! write errors and a device that stops answering under the real page
//! cache. The wrapper times out requests the device does not answer
//! ([`TIMEOUT_NS`], by the generic timer) and every injected fault prints
//! one console line.

use blkdev::{Fault, FaultyDisk};

use crate::BootInfo;
use crate::arch::timer;
use crate::drivers::virtio_blk::VirtioBlk;
use crate::sync::IrqLock;

/// The kernel's disk: the virtio-blk device behind the fault wrapper.
pub type Disk = FaultyDisk<VirtioBlk>;

/// How long a request may go unanswered before the block layer fails it.
pub const TIMEOUT_NS: u64 = blkdev::DEFAULT_TIMEOUT_NS;

/// The block device, if the board has one.
pub static BLOCK: IrqLock<Option<Disk>> = IrqLock::new(None);

fn report(f: &Fault) {
    log::error!("{f}");
}

/// Looks for a block device.
pub fn init(info: &BootInfo) {
    if info.virtio_mmio.is_empty() {
        log::info!("no virtio-mmio transports on this board; running without a disk");
        return;
    }
    match VirtioBlk::discover(&info.virtio_mmio) {
        Some(dev) => {
            let mut disk = FaultyDisk::new(dev);
            disk.set_clock(timer::now_ns, TIMEOUT_NS);
            disk.set_reporter(report);
            *BLOCK.lock() = Some(disk);
        }
        None => log::warn!(
            "no virtio block device among {} virtio-mmio windows (qemu-run.sh --disk FILE attaches one)",
            info.virtio_mmio.len()
        ),
    }
}
