//! Self-tests of the block device (virtio-blk on QEMU virt).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::TestResult;
use crate::BootInfo;
use crate::drivers::disk::Volume;
use crate::storage;
use blkdev::{BlockDevice, BlockError, Op, Request, SECTOR_SIZE};

fn with_block<R>(f: impl FnOnce(&mut Volume) -> Result<R, String>) -> Result<R, String> {
    let mut guard = storage::BLOCK.lock();
    let dev = guard
        .as_mut()
        .ok_or("no virtio block device (qemu-run.sh --disk FILE attaches one)")?;
    f(dev.inner_mut())
}

pub fn blk_present(_: &BootInfo) -> TestResult {
    with_block(|d| {
        check!(d.sector_count() > 0, "capacity 0");
        check!(d.queue_depth() >= 8, "queue depth {} < 8", d.queue_depth());
        Ok(())
    })
}

pub fn blk_read_boot_sector(_: &BootInfo) -> TestResult {
    with_block(|d| {
        let mut buf = alloc::vec![0u8; SECTOR_SIZE];
        d.read_sectors(0, &mut buf)
            .map_err(|e| format!("read sector 0: {e}"))?;
        check!(
            buf[510] == 0x55 && buf[511] == 0xaa,
            "sector 0 has no boot signature: {:#x} {:#x}",
            buf[510],
            buf[511]
        );
        let before = d.stats().sectors_read;
        let mut big = alloc::vec![0u8; 64 * SECTOR_SIZE];
        d.read_sectors(0, &mut big)
            .map_err(|e| format!("read 64 sectors: {e}"))?;
        check!(
            big[..SECTOR_SIZE] == buf[..],
            "sector 0 differs between a 1- and a 64-sector read"
        );
        check!(
            d.stats().sectors_read == before + 64,
            "sectors_read moved by {}, want 64",
            d.stats().sectors_read - before
        );
        Ok(())
    })
}

pub fn blk_write_read_restore(_: &BootInfo) -> TestResult {
    with_block(|d| {
        if d.inner().read_only() {
            return Err("disk is read-only".into());
        }
        // The last 8 sectors: read, overwrite with a pattern, read back,
        // restore, read back again. The disk ends as it started.
        let n = 8;
        let first = d.sector_count() - n as u64;
        let mut orig = alloc::vec![0u8; n * SECTOR_SIZE];
        d.read_sectors(first, &mut orig)
            .map_err(|e| format!("read: {e}"))?;
        let pattern: Vec<u8> = (0..n * SECTOR_SIZE)
            .map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[1] ^ 0xa5)
            .collect();
        d.write_sectors(first, &pattern)
            .map_err(|e| format!("write: {e}"))?;
        d.flush().map_err(|e| format!("flush: {e}"))?;
        let mut back = alloc::vec![0u8; n * SECTOR_SIZE];
        d.read_sectors(first, &mut back)
            .map_err(|e| format!("read back: {e}"))?;
        let bad = back.iter().zip(&pattern).position(|(a, b)| a != b);
        d.write_sectors(first, &orig)
            .map_err(|e| format!("restore: {e}"))?;
        check!(
            bad.is_none(),
            "read back differs from written at byte {:?}",
            bad
        );
        d.read_sectors(first, &mut back)
            .map_err(|e| format!("read restored: {e}"))?;
        check!(back == orig, "restored sectors differ from the original");
        Ok(())
    })
}

pub fn blk_many_in_flight(_: &BootInfo) -> TestResult {
    with_block(|d| {
        // queue_depth reads of 4 KiB each, all submitted before any is reaped;
        // each must equal a synchronous read of the same sectors.
        let depth = d.queue_depth().min(16);
        let page = 8 * SECTOR_SIZE;
        let mut bufs: Vec<Vec<u8>> = (0..depth).map(|_| alloc::vec![0u8; page]).collect();
        for (i, b) in bufs.iter_mut().enumerate() {
            let req = Request {
                tag: i as u64,
                op: Op::Read,
                sector: (i * 8) as u64,
                buf: b.as_mut_ptr(),
                len: page,
            };
            // SAFETY: each buffer lives in `bufs` until every completion has
            // been reaped below, and nothing else touches it meanwhile.
            unsafe { d.submit(req) }.map_err(|e| format!("submit {i}: {e}"))?;
        }
        check!(
            d.in_flight() == depth,
            "{} in flight, want {depth}",
            d.in_flight()
        );
        let mut seen = alloc::vec![false; depth];
        while let Some(c) = d.wait() {
            c.result.map_err(|e| format!("request {}: {e}", c.tag))?;
            check!(!seen[c.tag as usize], "request {} completed twice", c.tag);
            seen[c.tag as usize] = true;
        }
        check!(seen.iter().all(|s| *s), "not every request completed");
        for (i, b) in bufs.iter().enumerate() {
            let mut one = alloc::vec![0u8; page];
            d.read_sectors((i * 8) as u64, &mut one)
                .map_err(|e| format!("sync read {i}: {e}"))?;
            check!(
                &one == b,
                "in-flight read {i} differs from a synchronous read"
            );
        }
        Ok(())
    })
}

pub fn blk_bad_requests(_: &BootInfo) -> TestResult {
    with_block(|d| {
        let cap = d.sector_count();
        let mut buf = alloc::vec![0u8; SECTOR_SIZE];
        let before = d.stats();
        check!(
            matches!(
                d.read_sectors(cap, &mut buf),
                Err(BlockError::OutOfRange { .. })
            ),
            "a read past the end was not refused"
        );
        check!(
            matches!(
                d.write_sectors(cap - 1, &alloc::vec![0u8; 2 * SECTOR_SIZE]),
                Err(BlockError::OutOfRange { .. })
            ),
            "a write crossing the end was not refused"
        );
        check!(
            matches!(
                d.read_sectors(0, &mut buf[..100]),
                Err(BlockError::BadBuffer { .. })
            ),
            "a partial-sector buffer was not refused"
        );
        check!(d.stats() == before, "refused requests reached the device");
        Ok(())
    })
}
