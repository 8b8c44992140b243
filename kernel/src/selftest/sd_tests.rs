//! Self-tests of the SD card behind EMMC2 (Raspberry Pi 4, QEMU raspi4b
//! booted from `cargo xtask sd-image`'s image).

use alloc::format;
use alloc::string::String;
use alloc::vec;

use blkdev::{BlockDevice, SECTOR_SIZE};

use super::TestResult;
use crate::BootInfo;
use crate::drivers::disk::{DATA_LABEL, PARTITIONS};
use crate::drivers::sdhci::Sdhci;
use crate::storage;

fn with_sd<R>(f: impl FnOnce(&mut Sdhci, u64) -> Result<R, String>) -> Result<R, String> {
    let mut guard = storage::BLOCK.lock();
    let disk: &mut storage::Disk = guard
        .as_mut()
        .ok_or("no block device (is an SD card attached to EMMC2?)")?;
    // The kernel's disk: the fault wrapper around the partition window.
    let window = disk.inner_mut();
    let start = window.start();
    let sd = window
        .inner_mut()
        .sd()
        .ok_or("the block device is not the SD card")?;
    f(sd, start)
}

/// The card sits on the controller the device tree's emmc2 node names and
/// was identified with a plausible geometry.
pub fn card_identified(info: &BootInfo) -> TestResult {
    let want = info
        .sdhci
        .ok_or("the device tree has no brcm,bcm2711-emmc2 node")?;
    with_sd(|sd, _| {
        let c = sd.card();
        check!(
            sd.base() == want.base,
            "card found at {:#x}, emmc2 node says {:#x}",
            sd.base(),
            want.base
        );
        check!(c.sectors >= 2048, "capacity {} sectors", c.sectors);
        // SDSC cards stop at 2 GiB; over that only block addressing works.
        check!(
            c.high_capacity || c.sectors <= 4 << 20,
            "{} sectors on a byte-addressed card",
            c.sectors
        );
        check!(c.rca != 0, "card has RCA 0");
        Ok(())
    })
}

/// The MBR lists the boot and data partitions and the disk is the data one.
pub fn partitions_found(_: &BootInfo) -> TestResult {
    let parts = PARTITIONS.lock().clone();
    check!(parts.len() >= 2, "{} partitions listed", parts.len());
    check!(
        parts[0].part.is_fat32() && parts[0].label.as_deref() == Some("BOOT"),
        "partition 1 is {:?}",
        parts[0]
    );
    let data = parts
        .iter()
        .find(|p| p.label.as_deref() == Some(DATA_LABEL))
        .ok_or(format!("no partition labelled {DATA_LABEL}"))?;
    let guard = storage::BLOCK.lock();
    let d = guard
        .as_ref()
        .ok_or("no block device (or it is mounted: run before storage.mount)")?
        .inner();
    check!(
        d.start() == data.part.start && d.sector_count() == data.part.sectors,
        "disk window {}+{}, data partition {}+{}",
        d.start(),
        d.sector_count(),
        data.part.start,
        data.part.sectors
    );
    Ok(())
}

/// Multi-block writes and reads across the driver's per-command limit land
/// where they should (checked one sector at a time), then the old content
/// is restored.
pub fn multi_block_round_trip(_: &BootInfo) -> TestResult {
    with_sd(|sd, start| {
        // 130 blocks: two commands (128 + 2), auto-CMD12 on the first.
        let n = 130usize;
        let at = start + 64;
        let mut saved = vec![0u8; n * SECTOR_SIZE];
        sd.read_sectors(at, &mut saved)
            .map_err(|e| format!("save: {e}"))?;
        let pattern: vec::Vec<u8> = (0..n * SECTOR_SIZE)
            .map(|i| (i as u32).wrapping_mul(2_654_435_761).rotate_left(7) as u8)
            .collect();
        let r = (|| -> Result<(), String> {
            sd.write_sectors(at, &pattern)
                .map_err(|e| format!("write {n} sectors: {e}"))?;
            let mut one = vec![0u8; SECTOR_SIZE];
            for i in [0, 1, 127, 128, 129] {
                sd.read_sectors(at + i as u64, &mut one)
                    .map_err(|e| format!("read sector {i}: {e}"))?;
                check!(
                    one[..] == pattern[i * SECTOR_SIZE..(i + 1) * SECTOR_SIZE],
                    "sector {i} of the multi-block write reads back different"
                );
            }
            let mut all = vec![0u8; n * SECTOR_SIZE];
            sd.read_sectors(at, &mut all)
                .map_err(|e| format!("read {n} sectors: {e}"))?;
            check!(
                all == pattern,
                "multi-block read differs from what was written"
            );
            Ok(())
        })();
        sd.write_sectors(at, &saved)
            .map_err(|e| format!("restore: {e}"))?;
        r
    })
}

/// A request the card refuses (a read past its end, sent without the
/// driver's range check) fails with a clear error, the lines are reset, and
/// the next read returns the right data.
pub fn card_error_handled(_: &BootInfo) -> TestResult {
    with_sd(|sd, _| {
        let mut before = vec![0u8; SECTOR_SIZE];
        sd.read_sectors(0, &mut before)
            .map_err(|e| format!("read sector 0: {e}"))?;
        let recoveries = sd.host_stats().recoveries;
        let end = sd.card().sectors;
        let mut buf = vec![0u8; 2 * SECTOR_SIZE];
        match sd.read_unchecked(end, &mut buf) {
            Ok(()) => {
                return Err(format!(
                    "read of sectors {end}..{} past the card's end succeeded",
                    end + 2
                ));
            }
            Err(e) => crate::println!("sd: expected error: {e}"),
        }
        check!(
            sd.host_stats().recoveries > recoveries,
            "no CMD/DAT line reset after the error"
        );
        let mut after = vec![0u8; SECTOR_SIZE];
        sd.read_sectors(0, &mut after)
            .map_err(|e| format!("read after the error: {e}"))?;
        check!(
            after == before,
            "sector 0 reads back different after the error"
        );
        check!(
            after[510..512] == [0x55, 0xaa],
            "sector 0 lost its MBR signature"
        );
        Ok(())
    })
}
