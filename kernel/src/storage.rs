//! The kernel's block device: found at boot, shared behind one lock.
//!
//! Which device and which part of it: [`drivers::disk::pick`] (the SD card
//! behind EMMC2 on the Raspberry Pi 4, else the first virtio-blk device on
//! QEMU virt; the data partition of an MBR disk, else the whole disk).

use crate::BootInfo;
use crate::drivers::disk::{self, Disk};
use crate::sync::IrqLock;

/// The block device, if the board has one.
pub static BLOCK: IrqLock<Option<Disk>> = IrqLock::new(None);

/// Looks for a block device.
pub fn init(info: &BootInfo) {
    *BLOCK.lock() = disk::pick(info);
}
