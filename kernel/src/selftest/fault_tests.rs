//! Faults in the kernel's block layer under the real page cache, on the
//! real virtio disk (storage::BLOCK runs it behind `blkdev::FaultyDisk`):
//! read errors on the cleancache-miss path, write errors during write-back
//! and a device that stops answering. Each must print one console line
//! (the wrapper's reporter), give the caller a clean error, and lose or
//! corrupt nothing: a later read returns the disk's bytes, a failed page
//! stays dirty until a later write-back puts it on the disk, checked by
//! reading the disk back raw.
//!
//! Which sectors hold a page is learnt from the wrapper's trace of the
//! page's own I/O (the request whose buffer lies in the page's frame).
//! Tests that need a page read from the device hold the whole GCMA area
//! meanwhile: cleancache then holds no copy and can store none, so every
//! page-cache miss misses in cleancache and reads the device.
//!
//! Every test leaves the wrapper without faults and with its default
//! timeout, whatever happened.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use blkdev::{BlockDevice, BlockError, Op, SECTOR_SIZE};
use contig::{Allocation, AreaKind, Select};
use pagecache::{Error, FileId, PageFlags};
use testdata::Content;

use super::TestResult;
use super::storage_tests::{manifest, pc};
use crate::arch::timer;
use crate::memsys::Pc;
use crate::{BootInfo, memsys, storage};

const PAGE: usize = frames::PAGE_SIZE as usize;

/// Sector runs `(first, count)` of one page.
type Runs = Vec<(u64, u64)>;
/// Timeout of the stall tests (the kernel's default is 5 s).
const STALL_TIMEOUT_NS: u64 = 300_000_000;

/// Every GCMA area whole (the camera's and the tag-storage donor), so that
/// cleancache holds and takes nothing.
fn hold_gcma() -> Result<Vec<Allocation>, String> {
    let areas: Vec<(contig::AreaId, usize)> = {
        let a = memsys::areas();
        a.ids()
            .filter(|id| a.kind(*id) == Some(AreaKind::Gcma))
            .filter_map(|id| Some((id, a.span(id)?.1)))
            .collect()
    };
    check!(!areas.is_empty(), "no GCMA area");
    let mut held = Vec::new();
    for (id, pages) in areas {
        match memsys::alloc(Select::Id(id), pages, 1) {
            Ok(a) => held.push(a),
            Err(e) => {
                release(held)?;
                return Err(format!("whole GCMA area: {e}"));
            }
        }
    }
    Ok(held)
}

/// Frees what [`hold_gcma`] took.
fn release(held: Vec<Allocation>) -> TestResult {
    for a in held {
        memsys::free(a).map_err(|e| format!("free GCMA: {e}"))?;
    }
    Ok(())
}

/// Runs `f` on the page cache, then leaves the wrapper fault-free.
fn with_faults(f: impl FnOnce(&mut Pc) -> TestResult) -> TestResult {
    let r = pc(f);
    let _ = pc(|pc| {
        let d = pc.device_mut();
        d.clear();
        d.trace(false);
        d.set_timeout(storage::TIMEOUT_NS);
        Ok(())
    });
    r
}

/// A data-set file of at least `pages` pages (the `nth` such): id, size, content.
fn data_file(pc: &mut Pc, pages: usize, nth: usize) -> Result<(FileId, u64, Content), String> {
    let (seed, files) = manifest(pc)?;
    let (size, path) = files
        .iter()
        .filter(|(s, _)| *s >= (pages * PAGE) as u64 && *s < (1 << 20))
        .nth(nth)
        .ok_or("no data file of the size wanted")?
        .clone();
    let id = pc.open(&path).map_err(|e| format!("open {path}: {e}"))?;
    Ok((id, size, Content::new(seed, &path)))
}

/// The sector runs of requests of kind `op` the trace saw whose buffer lies
/// in the frame of `(file, index)`.
fn traced_runs(pc: &mut Pc, file: FileId, index: u32, op: Op) -> Result<Vec<(u64, u64)>, String> {
    let base = pc
        .page_frame(file, index)
        .ok_or_else(|| format!("page {index} not cached after its I/O"))?
        .addr();
    let runs: Vec<(u64, u64)> = pc
        .device_mut()
        .traced()
        .iter()
        .filter(|t| t.op == op && (base..base + PAGE).contains(&t.buf))
        .map(|t| (t.sector, t.sectors))
        .collect();
    check!(
        !runs.is_empty(),
        "no {op:?} request for page {index} traced"
    );
    Ok(runs)
}

/// Sectors of page `index` of a data file, from the trace of a device read
/// of it (cleancache must be held empty by the caller).
fn read_runs(pc: &mut Pc, file: FileId, index: u32) -> Result<Vec<(u64, u64)>, String> {
    pc.sync().map_err(|e| format!("sync: {e}"))?;
    pc.drop_clean_pages();
    check!(
        pc.page_frame(file, index).is_none(),
        "page {index} still cached"
    );
    pc.device_mut().trace(true);
    let mut one = [0u8; 1];
    pc.read(file, index as u64 * PAGE as u64, &mut one)
        .map_err(|e| format!("read page {index}: {e}"))?;
    let runs = traced_runs(pc, file, index, Op::Read);
    pc.device_mut().trace(false);
    runs
}

/// A sector inside the first run with sectors before it when it can: the
/// failed request then moves a prefix (a half-filled page if kept).
fn bad_sector(runs: &[(u64, u64)]) -> u64 {
    let (s, n) = runs[0];
    if n >= 4 { s + 3 } else { s }
}

/// The page's bytes as they are on the disk, read raw (idle device).
fn raw_page(pc: &mut Pc, runs: &[(u64, u64)]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for &(s, n) in runs {
        let mut b = vec![0u8; n as usize * SECTOR_SIZE];
        pc.device_mut()
            .read_sectors(s, &mut b)
            .map_err(|e| format!("raw read of sectors {s}..{}: {e}", s + n))?;
        out.extend_from_slice(&b);
    }
    Ok(out)
}

/// Reads page `index` through the page cache and checks it against the
/// seeded content and the raw disk.
fn page_is_the_disks(
    pc: &mut Pc,
    file: FileId,
    size: u64,
    content: &Content,
    index: u32,
    runs: &[(u64, u64)],
) -> TestResult {
    let at = index as u64 * PAGE as u64;
    let valid = (size - at).min(PAGE as u64) as usize;
    let mut buf = vec![0u8; valid];
    let n = pc
        .read(file, at, &mut buf)
        .map_err(|e| format!("read page {index} after the fault: {e}"))?;
    check!(n == valid, "read {n} of {valid} bytes");
    if let Some(o) = content.first_mismatch(at, &buf) {
        return Err(format!(
            "page {index} after the fault: byte {o} differs from the seeded content"
        ));
    }
    pc.sync().map_err(|e| format!("sync: {e}"))?;
    let raw = raw_page(pc, runs)?;
    check!(
        raw.len() >= valid && raw[..valid] == buf[..],
        "page {index}: the page cache's bytes differ from the disk's"
    );
    Ok(())
}

/// (a) A read error after a cleancache miss: a clean error, no page left
/// cached (not even the part that arrived), and the next read returns the
/// disk's bytes.
pub fn read_error_on_cleancache_miss(_: &BootInfo) -> TestResult {
    let gcma = hold_gcma()?;
    let r = with_faults(|pc| {
        let (id, size, content) = data_file(pc, 4, 0)?;
        let runs = read_runs(pc, id, 1)?;
        let bad = bad_sector(&runs);
        pc.sync().map_err(|e| format!("sync: {e}"))?;
        pc.drop_clean_pages();
        check!(pc.page_frame(id, 1).is_none(), "page 1 still cached");
        pc.device_mut().fail_read(bad);
        let before = *pc.stats();
        let mut buf = vec![0u8; PAGE];
        let r = pc.read(id, PAGE as u64, &mut buf);
        check!(
            matches!(r, Err(Error::Device(BlockError::Io { sector, .. })) if sector == bad),
            "read over bad sector {bad}: {r:?}"
        );
        let after = *pc.stats();
        check!(
            after.cc_get_misses > before.cc_get_misses,
            "the read did not ask cleancache first"
        );
        check!(
            after.read_errors > before.read_errors,
            "read error not counted"
        );
        check!(
            pc.page_frame(id, 1).is_none(),
            "the failed page is still cached (half filled)"
        );
        pc.check_stats()
            .map_err(|e| format!("page-cache counters: {e}"))?;
        pc.device_mut().clear();
        page_is_the_disks(pc, id, size, &content, 1, &runs)?;
        pc.check_stats()
            .map_err(|e| format!("page-cache counters: {e}"))
    });
    release(gcma)?;
    r
}

/// (a) A read-ahead read that fails part way: the page is never handed to
/// cleancache (it would come back half filled), and reading it later
/// returns the disk's bytes.
pub fn failed_readahead_never_reaches_cleancache(_: &BootInfo) -> TestResult {
    let gcma = hold_gcma()?;
    let learnt = pc(|pc| {
        let (id, size, content) = data_file(pc, 8, 1)?;
        let runs = read_runs(pc, id, 2)?;
        // Read-ahead of the traced read done, then every page out.
        pc.sync().map_err(|e| format!("sync: {e}"))?;
        pc.drop_clean_pages();
        for i in 0..4 {
            check!(pc.page_frame(id, i).is_none(), "page {i} still cached");
        }
        Ok((id, size, content, runs))
    });
    // Freeing the area gives cleancache back its pages, all empty.
    release(gcma)?;
    let (id, size, content, runs) = learnt?;
    with_faults(|pc| {
        let bad = bad_sector(&runs);
        pc.device_mut().fail_read(bad);
        // Page 0 on demand; pages 1..3 read ahead, page 2 failing.
        let mut buf = vec![0u8; PAGE];
        pc.read(id, 0, &mut buf)
            .map_err(|e| format!("read page 0: {e}"))?;
        check!(
            content.first_mismatch(0, &buf).is_none(),
            "page 0 differs from the seeded content"
        );
        pc.sync().map_err(|e| format!("sync: {e}"))?;
        let flags = pc.page_flags(id, 2);
        check!(
            flags.is_some_and(|f| f.contains(PageFlags::ERROR) && !f.contains(PageFlags::UPTODATE)),
            "read-ahead of page 2 over bad sector {bad}: flags {flags:?}"
        );
        let puts = pc.stats().cc_puts;
        let evicted = pc.drop_clean_pages();
        check!(
            pc.stats().cc_puts - puts < evicted as u64,
            "every evicted page went to cleancache, the failed one too"
        );
        check!(pc.page_frame(id, 2).is_none(), "failed page still cached");
        pc.device_mut().clear();
        let before = *pc.stats();
        page_is_the_disks(pc, id, size, &content, 2, &runs)?;
        let after = *pc.stats();
        check!(
            after.cc_demand_restores == before.cc_demand_restores,
            "page 2 came back from cleancache"
        );
        pc.check_stats()
            .map_err(|e| format!("page-cache counters: {e}"))
    })
}

const SCRATCH: &str = "/fault.bin";

/// A scratch file of `pages` pages written from `content` and synced; the
/// sector runs of each page, from the trace of its write-back.
fn scratch(pc: &mut Pc, pages: u32, content: &Content) -> Result<(FileId, Vec<Runs>), String> {
    let _ = pc.remove(SCRATCH);
    let id = pc.create(SCRATCH).map_err(|e| format!("create: {e}"))?;
    let mut data = vec![0u8; pages as usize * PAGE];
    content.fill(0, &mut data);
    pc.write(id, 0, &data).map_err(|e| format!("write: {e}"))?;
    pc.device_mut().trace(true);
    pc.sync().map_err(|e| format!("sync: {e}"))?;
    let runs = (0..pages)
        .map(|i| traced_runs(pc, id, i, Op::Write))
        .collect::<Result<Vec<_>, _>>();
    pc.device_mut().trace(false);
    Ok((id, runs?))
}

fn write_all(pc: &mut Pc, id: FileId, pages: u32, content: &Content) -> Result<Vec<u8>, String> {
    let mut data = vec![0u8; pages as usize * PAGE];
    content.fill(0, &mut data);
    pc.write(id, 0, &data)
        .map_err(|e| format!("overwrite: {e}"))?;
    Ok(data)
}

/// (b) A write error during write-back: sync reports it, the page stays
/// dirty and cached (the others reach the disk), and once the device
/// works again the next sync puts the page on the disk.
pub fn write_error_keeps_page_dirty(_: &BootInfo) -> TestResult {
    with_faults(|pc| {
        let old = Content::new(0xfa01, SCRATCH);
        let (id, runs) = scratch(pc, 4, &old)?;
        let new = write_all(pc, id, 4, &Content::new(0xfa02, SCRATCH))?;
        let bad = bad_sector(&runs[1]);
        pc.device_mut().fail_write(bad);
        let r = pc.sync();
        check!(
            matches!(r, Err(Error::Device(BlockError::Io { sector, .. })) if sector == bad),
            "sync over bad sector {bad}: {r:?}"
        );
        let flags = pc.page_flags(id, 1);
        check!(
            flags.is_some_and(|f| f.contains(PageFlags::DIRTY)),
            "page 1 not dirty after its failed write-back: {flags:?}"
        );
        pc.drop_clean_pages();
        check!(
            pc.page_flags(id, 1)
                .is_some_and(|f| f.contains(PageFlags::DIRTY)),
            "the dirty page was dropped"
        );
        let mut back = vec![0u8; PAGE];
        pc.read(id, PAGE as u64, &mut back)
            .map_err(|e| format!("read page 1: {e}"))?;
        check!(
            back[..] == new[PAGE..2 * PAGE],
            "page 1 reads other than written"
        );
        // On the disk: pages 0, 2, 3 new; page 1 new up to the bad sector,
        // old from it on.
        for i in [0usize, 2, 3] {
            check!(
                raw_page(pc, &runs[i])?[..] == new[i * PAGE..(i + 1) * PAGE],
                "page {i} did not reach the disk"
            );
        }
        let prefix = ((bad - runs[1][0].0) as usize) * SECTOR_SIZE;
        let mut was = vec![0u8; PAGE];
        old.fill(PAGE as u64, &mut was);
        let raw = raw_page(pc, &runs[1])?;
        check!(
            raw[..prefix] == new[PAGE..PAGE + prefix] && raw[prefix..] == was[prefix..],
            "page 1 on the disk is neither the sectors written before the fault nor the old ones"
        );
        pc.device_mut().clear();
        pc.sync()
            .map_err(|e| format!("sync after the fault: {e}"))?;
        check!(
            pc.page_flags(id, 1)
                .is_some_and(|f| !f.intersects(PageFlags::DIRTY | PageFlags::ERROR)),
            "page 1 still dirty after a good write-back"
        );
        check!(
            raw_page(pc, &runs[1])?[..] == new[PAGE..2 * PAGE],
            "page 1 did not reach the disk after the retry"
        );
        pc.remove(SCRATCH).map_err(|e| format!("remove: {e}"))?;
        pc.sync().map_err(|e| format!("sync: {e}"))?;
        pc.check_stats()
            .map_err(|e| format!("page-cache counters: {e}"))
    })
}

/// (c) A device that stops answering: a read and a write-back time out in
/// the block layer with a clean error, nothing half read stays valid, no
/// dirty page is lost, and once it answers again reads return the disk's
/// bytes and the next sync puts the pages on the disk.
pub fn device_stops_answering(_: &BootInfo) -> TestResult {
    let gcma = hold_gcma()?;
    let r = with_faults(|pc| {
        let (id, size, content) = data_file(pc, 4, 2)?;
        let runs = read_runs(pc, id, 3)?;
        pc.sync().map_err(|e| format!("sync: {e}"))?;
        pc.drop_clean_pages();
        pc.device_mut().set_timeout(STALL_TIMEOUT_NS);
        pc.device_mut().stall();
        let t0 = timer::now_ns();
        let mut buf = vec![0u8; PAGE];
        let r = pc.read(id, 3 * PAGE as u64, &mut buf);
        let waited = timer::now_ns() - t0;
        check!(
            matches!(r, Err(Error::Device(BlockError::Timeout { .. }))),
            "read from a stalled device: {r:?}"
        );
        check!(
            (STALL_TIMEOUT_NS..30_000_000_000).contains(&waited),
            "timed out after {} ms, the timeout is {} ms",
            waited / 1_000_000,
            STALL_TIMEOUT_NS / 1_000_000
        );
        check!(
            pc.page_frame(id, 3).is_none(),
            "the timed-out page is cached"
        );
        pc.device_mut().resume();
        // Read-ahead requests the device swallowed time out too.
        pc.sync().map_err(|e| format!("sync after resume: {e}"))?;
        let pages = size.div_ceil(PAGE as u64) as u32;
        for i in 0..pages {
            if let Some(f) = pc.page_flags(id, i) {
                check!(
                    f.contains(PageFlags::UPTODATE) != f.contains(PageFlags::ERROR),
                    "page {i} after the stall: flags {f:?}"
                );
            }
        }
        pc.check_stats()
            .map_err(|e| format!("page-cache counters: {e}"))?;
        page_is_the_disks(pc, id, size, &content, 3, &runs)?;

        // Write-back into a device that does not answer.
        let (sid, sruns) = scratch(pc, 2, &Content::new(0xfa03, SCRATCH))?;
        let new = write_all(pc, sid, 2, &Content::new(0xfa04, SCRATCH))?;
        pc.device_mut().stall();
        let r = pc.sync();
        check!(
            matches!(r, Err(Error::Device(BlockError::Timeout { .. }))),
            "sync into a stalled device: {r:?}"
        );
        for i in 0..2 {
            check!(
                pc.page_flags(sid, i)
                    .is_some_and(|f| f.contains(PageFlags::DIRTY)),
                "page {i} not dirty after its write-back timed out"
            );
        }
        pc.device_mut().resume();
        pc.sync().map_err(|e| format!("sync after resume: {e}"))?;
        for i in 0..2 {
            check!(
                raw_page(pc, &sruns[i])?[..] == new[i * PAGE..(i + 1) * PAGE],
                "page {i} did not reach the disk after the device answered again"
            );
        }
        pc.remove(SCRATCH).map_err(|e| format!("remove: {e}"))?;
        pc.sync().map_err(|e| format!("sync: {e}"))?;
        check!(
            pc.device_mut().timeouts >= 3,
            "{} timeouts counted",
            pc.device_mut().timeouts
        );
        pc.check_stats()
            .map_err(|e| format!("page-cache counters: {e}"))
    });
    release(gcma)?;
    r
}
