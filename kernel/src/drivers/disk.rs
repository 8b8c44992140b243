//! The kernel's disk: which block device, and which part of it holds the
//! file system.
//!
//! Device: the SD card behind the device tree's EMMC2 controller (Raspberry
//! Pi 4), else the first virtio-blk device among the virtio-mmio windows
//! (QEMU virt).
//!
//! Part: sector 0 decides.
//! - A valid FAT32 boot sector: the whole disk is the file system (virt's
//!   data image).
//! - Else an MBR partition table (kernel/crates/mbr): every partition is
//!   listed on the console; the file system is the FAT32 partition labelled
//!   [`DATA_LABEL`], else the second FAT32 partition (the first is the
//!   Pi's boot partition).
//! - A refused table, or one without a suitable partition, leaves the whole
//!   disk, with one line saying why (mounting it then fails with a clear
//!   file-system error; the raw device stays usable).
//!
//! The chosen part is a [`Window`]; nothing outside it is reachable through
//! the [`Volume`].

use alloc::string::String;

use blkdev::{BlockDevice, BlockError, Completion, DevStats, Request, SECTOR_SIZE, Window};

use super::sdhci::{Sdhci, SdhciInfo};
use super::virtio_blk::VirtioBlk;

/// Volume label of the data partition (`cargo xtask sd-image` writes it).
pub const DATA_LABEL: &str = "GCMADATA";

/// A block device the kernel drives.
pub enum Dev {
    Virtio(VirtioBlk),
    Sd(Sdhci),
}

/// The part of the device that holds the file system.
pub type Volume = Window<Dev>;

impl Dev {
    /// True when writes are refused.
    pub fn read_only(&self) -> bool {
        match self {
            Dev::Virtio(d) => d.read_only(),
            Dev::Sd(_) => false,
        }
    }

    /// The SD card driver, if that is the device.
    pub fn sd(&mut self) -> Option<&mut Sdhci> {
        match self {
            Dev::Sd(d) => Some(d),
            Dev::Virtio(_) => None,
        }
    }

    fn dev(&self) -> &dyn BlockDevice {
        match self {
            Dev::Virtio(d) => d,
            Dev::Sd(d) => d,
        }
    }

    fn dev_mut(&mut self) -> &mut dyn BlockDevice {
        match self {
            Dev::Virtio(d) => d,
            Dev::Sd(d) => d,
        }
    }
}

impl BlockDevice for Dev {
    fn sector_count(&self) -> u64 {
        self.dev().sector_count()
    }
    fn queue_depth(&self) -> usize {
        self.dev().queue_depth()
    }
    fn in_flight(&self) -> usize {
        self.dev().in_flight()
    }
    // SAFETY (contract): BlockDevice::submit's, forwarded.
    unsafe fn submit(&mut self, req: Request) -> Result<(), BlockError> {
        // SAFETY: the caller's guarantee, unchanged.
        unsafe { self.dev_mut().submit(req) }
    }
    fn poll(&mut self) -> Option<Completion> {
        self.dev_mut().poll()
    }
    fn wait(&mut self) -> Option<Completion> {
        self.dev_mut().wait()
    }
    fn stats(&self) -> DevStats {
        self.dev().stats()
    }
}

/// A partition as the kernel saw it at boot.
#[derive(Clone, Debug)]
pub struct PartInfo {
    pub part: mbr::Partition,
    /// FAT32 volume label from the boot sector, if it is FAT32.
    pub label: Option<String>,
}

/// What [`pick`] found, for the self-tests.
pub static PARTITIONS: crate::sync::IrqLock<alloc::vec::Vec<PartInfo>> =
    crate::sync::IrqLock::new(alloc::vec::Vec::new());

/// Finds the block device (the SD card behind `sdhci`, else the first
/// virtio-blk device among `virtio_mmio`) and the part of it that holds the
/// file system.
pub fn pick(sdhci: Option<SdhciInfo>, virtio_mmio: &[u64]) -> Option<Volume> {
    let dev = match &sdhci {
        Some(sd) => Sdhci::discover(sd).map(Dev::Sd),
        None => None,
    };
    let dev = match dev {
        Some(d) => d,
        None if virtio_mmio.is_empty() => {
            log::info!(
                "no SD card and no virtio-mmio transports on this board; running without a disk"
            );
            return None;
        }
        None => match VirtioBlk::discover(virtio_mmio) {
            Some(d) => Dev::Virtio(d),
            None => {
                log::warn!(
                    "no virtio block device among {} virtio-mmio windows (qemu-run.sh --disk FILE attaches one)",
                    virtio_mmio.len()
                );
                return None;
            }
        },
    };
    Some(choose_part(dev))
}

/// The FAT32 volume label of boot sector `bs`, if it is one.
fn fat32_label(bs: &[u8]) -> Option<String> {
    if bs.get(82..90)? != b"FAT32   " || bs[510..512] != [0x55, 0xaa] {
        return None;
    }
    let raw = core::str::from_utf8(&bs[71..82]).ok()?;
    Some(String::from(raw.trim_end()))
}

fn choose_part(mut dev: Dev) -> Volume {
    let n = dev.sector_count();
    let mut bs = [0u8; SECTOR_SIZE];
    if let Err(e) = dev.read_sectors(0, &mut bs) {
        log::warn!("disk: cannot read sector 0: {e}; using the whole disk");
        return Window::whole(dev);
    }
    if fat32::parse_boot_sector(&bs, n).is_ok() {
        log::info!("disk: sector 0 is a FAT32 boot sector: the whole disk is the file system");
        return Window::whole(dev);
    }
    let table = match mbr::parse(&bs, n) {
        Ok(t) => t,
        Err(e) => {
            log::warn!("disk: {e}; using the whole disk");
            return Window::whole(dev);
        }
    };
    let mut parts = alloc::vec::Vec::new();
    for p in table.partitions() {
        let mut label = None;
        if p.is_fat32() {
            let mut vbr = [0u8; SECTOR_SIZE];
            match dev.read_sectors(p.start, &mut vbr) {
                Ok(()) => label = fat32_label(&vbr),
                Err(e) => log::warn!(
                    "disk: partition {}: cannot read its first sector: {e}",
                    p.index
                ),
            }
        }
        log::info!(
            "disk: partition {}: type {:#04x}{}, sectors {}..{} ({} MiB){}{}",
            p.index,
            p.kind,
            if p.is_fat32() { " (FAT32)" } else { "" },
            p.start,
            p.end(),
            (p.sectors * SECTOR_SIZE as u64) >> 20,
            if p.bootable { ", bootable" } else { "" },
            match &label {
                Some(l) => alloc::format!(", label {l:?}"),
                None => String::new(),
            }
        );
        parts.push(PartInfo { part: *p, label });
    }
    let by_label = parts
        .iter()
        .find(|p| p.label.as_deref() == Some(DATA_LABEL));
    let second_fat = parts.iter().filter(|p| p.label.is_some()).nth(1);
    let chosen = by_label.or(second_fat).cloned();
    *PARTITIONS.lock() = parts;
    let Some(c) = chosen else {
        log::warn!(
            "disk: no FAT32 partition labelled {DATA_LABEL} and no second FAT32 partition; using the whole disk"
        );
        return Window::whole(dev);
    };
    let why = if c.label.as_deref() == Some(DATA_LABEL) {
        alloc::format!("label {DATA_LABEL}")
    } else {
        String::from("the second FAT32 partition")
    };
    match Window::new(dev, c.part.start, c.part.sectors) {
        Ok(w) => {
            log::info!(
                "disk: the file system is partition {} ({why})",
                c.part.index
            );
            w
        }
        Err((dev, e)) => {
            log::warn!(
                "disk: partition {}: {e}; using the whole disk",
                c.part.index
            );
            Window::whole(dev)
        }
    }
}
