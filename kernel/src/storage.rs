//! The kernel's block device: found at boot, shared behind one lock.
//!
//! Which device and which part of it: [`disk::pick`] (the SD card behind
//! EMMC2 on the Raspberry Pi 4, else the first virtio-blk device on QEMU
//! virt; the data partition of an MBR disk, else the whole disk).
//!
//! The device runs behind the block layer's fault wrapper
//! ([`blkdev::FaultyDisk`]), with no fault set: self-tests inject read and
//! write errors and a device that stops answering under the real page
//! cache. The wrapper times out requests the device does not answer
//! ([`TIMEOUT_NS`], by the generic timer) and every injected fault prints
//! one console line.

use blkdev::{Fault, FaultyDisk};

use crate::arch::timer;
use crate::drivers::disk;
use crate::drivers::sdhci::SdhciInfo;
use crate::sync::IrqLock;

/// The kernel's disk: the chosen device (or partition) behind the fault
/// wrapper.
pub type Disk = FaultyDisk<disk::Volume>;

/// How long a request may go unanswered before the block layer fails it.
pub const TIMEOUT_NS: u64 = blkdev::DEFAULT_TIMEOUT_NS;

/// The block device, if the board has one.
pub static BLOCK: IrqLock<Option<Disk>> = IrqLock::new(None);

fn report(f: &Fault) {
    log::error!("{f}");
}

/// Looks for a block device: the SD card behind `sdhci`, else a virtio-blk
/// device among `virtio_mmio` (both from the device tree).
pub fn init(sdhci: Option<SdhciInfo>, virtio_mmio: &[u64]) {
    let Some(dev) = disk::pick(sdhci, virtio_mmio) else {
        return;
    };
    let mut disk = FaultyDisk::new(dev);
    disk.set_clock(timer::now_ns, TIMEOUT_NS);
    disk.set_reporter(report);
    *BLOCK.lock() = Some(disk);
}
