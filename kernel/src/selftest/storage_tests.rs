//! Self-tests of the storage stack on a real virtio disk holding a data
//! image made by tools/mkdata (FAT32, files whose every byte follows from
//! (seed, path, offset)), with a page-cache budget far below the data set;
//! then GCMA and CMA with that page cache under pressure.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use contig::{AreaKind, ContigError, Select};
use fat32::FsError;
use pagecache::Error;
use testdata::{Content, MANIFEST_PATH, parse_manifest};

use super::TestResult;
use crate::BootInfo;
use crate::memsys::{self, Pc, Setup};

/// Page-cache budget of the tests: 1 MiB, far below the data set.
const BUDGET: usize = 256;
const CHUNK: usize = 64 * 1024;

fn setup() -> Setup {
    Setup {
        budget_pages: BUDGET,
        ordinary_pages: BUDGET,
        cma_lending: false,
        cleancache: true,
        readahead_max: 32,
    }
}

pub(super) fn pc<R>(f: impl FnOnce(&mut Pc) -> Result<R, String>) -> Result<R, String> {
    memsys::with(f).ok_or_else(|| String::from("no filesystem mounted"))?
}

fn read_all(pc: &mut Pc, path: &str) -> Result<Vec<u8>, String> {
    let id = pc.open(path).map_err(|e| format!("open {path}: {e}"))?;
    let size = pc.file_size(id).map_err(|e| format!("size {path}: {e}"))? as usize;
    let mut out = vec![0u8; size];
    let mut off = 0;
    while off < size {
        let n = (size - off).min(CHUNK);
        let got = pc
            .read(id, off as u64, &mut out[off..off + n])
            .map_err(|e| format!("read {path} at {off}: {e}"))?;
        if got == 0 {
            return Err(format!(
                "read {path} at {off}: 0 bytes before the end ({size})"
            ));
        }
        off += got;
    }
    Ok(out)
}

/// (seed, [(size, path)]) from the image's manifest.
pub(super) fn manifest(pc: &mut Pc) -> Result<(u64, Vec<(u64, String)>), String> {
    let text = read_all(pc, MANIFEST_PATH)?;
    let text = core::str::from_utf8(&text).map_err(|_| "manifest is not UTF-8")?;
    let (seed, entries) = parse_manifest(text).map_err(|e| format!("manifest: {e:?}"))?;
    let mut files = Vec::new();
    for e in entries {
        let e = e.map_err(|e| format!("manifest: {e:?}"))?;
        files.push((e.size, String::from(e.path)));
    }
    Ok((seed, files))
}

/// Reads every file of the manifest and checks every byte.
fn check_every_byte(pc: &mut Pc) -> Result<(usize, u64), String> {
    let (seed, files) = manifest(pc)?;
    let mut bytes = 0;
    for (size, path) in &files {
        let data = read_all(pc, path)?;
        check!(
            data.len() as u64 == *size,
            "{path}: {} bytes, manifest says {size}",
            data.len()
        );
        if let Some(at) = Content::new(seed, path).first_mismatch(0, &data) {
            return Err(format!("{path}: wrong byte at offset {at}"));
        }
        bytes += size;
    }
    Ok((files.len(), bytes))
}

pub fn mount(_: &BootInfo) -> TestResult {
    memsys::mount(setup()).map_err(|e| format!("mount: {e}"))?;
    pc(|pc| {
        let (_, files) = manifest(pc)?;
        check!(!files.is_empty(), "empty manifest");
        let root = pc.read_dir("/").map_err(|e| format!("list /: {e}"))?;
        check!(
            root.iter()
                .any(|e| e.name.eq_ignore_ascii_case("MANIFEST.TXT")),
            "/ does not list MANIFEST.TXT"
        );
        Ok(())
    })
}

pub fn read_every_byte(_: &BootInfo) -> TestResult {
    pc(|pc| {
        let (files, bytes) = check_every_byte(pc)?;
        let s = *pc.stats();
        check!(
            bytes > (BUDGET * 4096 * 8) as u64,
            "data set ({bytes} bytes) not far above the budget"
        );
        check!(
            s.evictions > 0 && s.cc_puts > 0,
            "no evictions into cleancache ({} evictions)",
            s.evictions
        );
        crate::println!(
            "storage: {files} files, {} KiB checked byte by byte; {} misses, {} pages read, {} sectors",
            bytes / 1024,
            s.misses,
            s.pages_read,
            s.sectors_read
        );
        pc.check_stats()
            .map_err(|e| format!("page-cache counters: {e}"))
    })
}

pub fn cleancache_saves_reads(_: &BootInfo) -> TestResult {
    pc(|pc| {
        let (seed, files) = manifest(pc)?;
        // The last file read_every_byte read that is larger than the page
        // cache's budget: most of it left the page cache for cleancache,
        // and nothing read after it pushed it out of cleancache (the demo's
        // 128 MiB data set is larger than cleancache; the first files read
        // are no longer there).
        let (_, path) = files
            .iter()
            .rev()
            .find(|(s, _)| *s > (BUDGET as u64) * frames::PAGE_SIZE)
            .ok_or("no file larger than the page cache's budget")?
            .clone();
        let before = *pc.stats();
        let data = read_all(pc, &path)?;
        let after = *pc.stats();
        check!(
            Content::new(seed, &path).first_mismatch(0, &data).is_none(),
            "{path}: wrong data from cleancache"
        );
        let restored = (after.cc_demand_restores + after.cc_ra_restores)
            - (before.cc_demand_restores + before.cc_ra_restores);
        check!(
            restored > 0,
            "re-reading {path} restored nothing from cleancache"
        );
        let pages = (data.len() as u64).div_ceil(frames::PAGE_SIZE);
        let read = after.pages_read - before.pages_read;
        check!(
            read + restored >= pages.min(after.misses - before.misses),
            "counters: {read} read + {restored} restored"
        );
        Ok(())
    })
}

pub fn write_append_truncate_delete(_: &BootInfo) -> TestResult {
    pc(|pc| {
        let c = Content::new(4242, "/scratch.bin");
        let mut data = vec![0u8; 3 * 4096 + 100];
        c.fill(0, &mut data);
        let _ = pc.remove("/scratch.bin");
        let id = pc
            .create("/scratch.bin")
            .map_err(|e| format!("create: {e}"))?;
        pc.write(id, 0, &data).map_err(|e| format!("write: {e}"))?;
        check!(
            read_all(pc, "/scratch.bin")? == data,
            "read after write differs"
        );
        // Append.
        let mut more = vec![0u8; 5000];
        c.fill(data.len() as u64, &mut more);
        pc.write(id, data.len() as u64, &more)
            .map_err(|e| format!("append: {e}"))?;
        data.extend_from_slice(&more);
        check!(
            read_all(pc, "/scratch.bin")? == data,
            "read after append differs"
        );
        // Overwrite the middle with other bytes.
        let patch = [0x5au8; 3000];
        pc.write(id, 4000, &patch)
            .map_err(|e| format!("overwrite: {e}"))?;
        data[4000..7000].copy_from_slice(&patch);
        check!(
            read_all(pc, "/scratch.bin")? == data,
            "read after overwrite differs"
        );
        // Truncate, then grow: the new bytes read as zero.
        pc.truncate(id, 5000)
            .map_err(|e| format!("truncate: {e}"))?;
        data.truncate(5000);
        check!(
            read_all(pc, "/scratch.bin")? == data,
            "read after truncate differs"
        );
        pc.truncate(id, 9000).map_err(|e| format!("extend: {e}"))?;
        data.resize(9000, 0);
        check!(
            read_all(pc, "/scratch.bin")? == data,
            "read after extending differs"
        );
        pc.sync().map_err(|e| format!("sync: {e}"))?;
        // Delete and re-create: empty, and no stale page or copy returns.
        pc.remove("/scratch.bin")
            .map_err(|e| format!("remove: {e}"))?;
        check!(
            matches!(pc.open("/scratch.bin"), Err(Error::Fs(FsError::NotFound))),
            "removed file still opens"
        );
        let id = pc
            .create("/scratch.bin")
            .map_err(|e| format!("re-create: {e}"))?;
        check!(
            pc.file_size(id).map_err(|e| format!("{e}"))? == 0,
            "re-created file not empty"
        );
        let mut buf = [0u8; 16];
        check!(
            matches!(pc.read(id, 1, &mut buf), Err(Error::BeyondEof { .. })),
            "read past the end not refused"
        );
        pc.remove("/scratch.bin")
            .map_err(|e| format!("final remove: {e}"))?;
        pc.sync().map_err(|e| format!("sync: {e}"))?;
        pc.check_stats()
            .map_err(|e| format!("page-cache counters: {e}"))
    })
}

pub fn no_stale_copies(_: &BootInfo) -> TestResult {
    pc(|pc| {
        // Write a file, push it out of the page cache (into cleancache) by
        // reading other data, overwrite it, and read it again: the new
        // bytes, never the cached copy of the old ones.
        let old = vec![0x11u8; 8 * 4096];
        let new = vec![0x22u8; 8 * 4096];
        let _ = pc.remove("/stale.bin");
        let id = pc
            .create("/stale.bin")
            .map_err(|e| format!("create: {e}"))?;
        pc.write(id, 0, &old).map_err(|e| format!("write: {e}"))?;
        pc.sync().map_err(|e| format!("sync: {e}"))?;
        check!(read_all(pc, "/stale.bin")? == old, "first read differs");
        check_every_byte(pc)?; // evicts /stale.bin's pages
        pc.write(id, 0, &new)
            .map_err(|e| format!("overwrite: {e}"))?;
        check_every_byte(pc)?;
        check!(
            read_all(pc, "/stale.bin")? == new,
            "stale data after overwrite + eviction"
        );
        // Truncate to zero and extend: zeros, not the old copy.
        pc.truncate(id, 0).map_err(|e| format!("truncate: {e}"))?;
        pc.truncate(id, new.len() as u64)
            .map_err(|e| format!("extend: {e}"))?;
        check!(
            read_all(pc, "/stale.bin")?.iter().all(|b| *b == 0),
            "stale data after truncate + extend"
        );
        pc.remove("/stale.bin")
            .map_err(|e| format!("remove: {e}"))?;
        pc.sync().map_err(|e| format!("sync: {e}"))
    })
}

pub fn bad_input(_: &BootInfo) -> TestResult {
    pc(|pc| {
        let free = pc.fs().free_clusters();
        check!(
            matches!(pc.open("/no/such/file"), Err(Error::Fs(FsError::NotFound))),
            "missing path not NotFound"
        );
        let (_, files) = manifest(pc)?;
        let (size, path) = files[0].clone();
        let id = pc.open(&path).map_err(|e| format!("{e}"))?;
        let mut buf = [0u8; 64];
        check!(
            matches!(
                pc.read(id, size + 1, &mut buf),
                Err(Error::BeyondEof { .. })
            ),
            "read beyond EOF not refused"
        );
        check!(
            pc.read(id, size, &mut buf)
                .map_err(|e| format!("read at EOF: {e}"))?
                == 0,
            "read at EOF returned data"
        );
        let _ = pc.remove("/huge.bin");
        let big = pc.create("/huge.bin").map_err(|e| format!("{e}"))?;
        // Larger than FAT32 allows, then larger than the disk.
        check!(
            pc.write(big, u32::MAX as u64, b"x").is_err(),
            "a write past 4 GiB succeeded"
        );
        let disk = pc.fs().geometry().total_sectors * 512;
        let r = pc.truncate(big, disk + (1 << 20));
        check!(
            matches!(
                r,
                Err(Error::Fs(FsError::NoSpace)) | Err(Error::FileTooLarge)
            ),
            "a file larger than the disk: {r:?}"
        );
        pc.remove("/huge.bin").map_err(|e| format!("{e}"))?;
        pc.sync().map_err(|e| format!("{e}"))?;
        check!(
            pc.fs().free_clusters() == free,
            "failed requests left clusters allocated: {} -> {}",
            free,
            pc.fs().free_clusters()
        );
        Ok(())
    })
}

/// Allocation tests run with the data set filling cleancache.
pub fn gcma_whole_area_under_file_workload(_: &BootInfo) -> TestResult {
    let memsys::AreaInfo { id, pages, .. } =
        memsys::first_of(AreaKind::Gcma).ok_or("no GCMA area")?;
    pc(|pc| check_every_byte(pc).map(|_| ()))?;
    let cached = memsys::areas().backend().stats().cached_now;
    check!(cached > 0, "the file workload left cleancache empty");
    for round in 0..3 {
        let a = memsys::alloc(Select::Id(id), pages, 1)
            .map_err(|e| format!("round {round}: whole area with {cached} cached: {e}"))?;
        // Every file still reads back correctly (copies dropped, not stale).
        pc(|pc| check_every_byte(pc).map(|_| ()))?;
        memsys::free(a).map_err(|e| format!("free: {e}"))?;
        // Cleancache refills from the workload after the free.
        pc(|pc| check_every_byte(pc).map(|_| ()))?;
        let again = memsys::areas().backend().stats().cached_now;
        check!(
            again > 0,
            "round {round}: cleancache did not refill after the free"
        );
    }
    Ok(())
}

pub fn cma_migrates_under_pressure(_: &BootInfo) -> TestResult {
    let memsys::AreaInfo {
        id,
        pfn: base,
        pages,
        ..
    } = memsys::first_of(AreaKind::Cma).ok_or("no CMA area")?;
    // Let the page cache borrow CMA pages: small ordinary quota, budget
    // larger than the CMA area can hold entirely.
    memsys::with(|pc| {
        pc.set_budget(pages + 2 * BUDGET);
        let a = memsys::pages_mut(pc);
        a.cleancache = false;
        a.ordinary_limit = BUDGET;
        a.cma_lending = true;
    });
    let result = (|| {
        pc(|pc| check_every_byte(pc).map(|_| ()))?;
        let lent = memsys::areas().stats(id).map_err(|e| format!("{e}"))?.lent;
        check!(lent > 0, "the page cache borrowed no CMA pages");
        let start = memsys::areas().stats(id).map_err(|e| format!("{e}"))?;
        // Pin one lent page (a reader holding it): the whole area is then
        // busy, and CMA must give up after its retries. Dirty another one by
        // writing its own bytes back (same content, DIRTY set): CMA must
        // copy that one (MIGRATE_SYNC migrates dirty pages), not drop it.
        let pinned = pc(|pc| {
            let (_, files) = manifest(pc)?;
            let mut pinned = None;
            let mut dirtied = false;
            for (_, path) in &files {
                let fid = pc.open(path).map_err(|e| format!("{e}"))?;
                let size = pc.file_size(fid).map_err(|e| format!("{e}"))?;
                for index in 0..size.div_ceil(frames::PAGE_SIZE) as u32 {
                    if let Some(frame) = pc.page_frame(fid, index) {
                        let pfn = frames::Pfn::from_addr(frame.addr() as u64);
                        if !(base..base + pages as u64).contains(&pfn) {
                            continue;
                        }
                        if pinned.is_none() {
                            pinned =
                                Some(pc.pin_page(fid, index).map_err(|e| format!("pin: {e}"))?);
                        } else if !dirtied {
                            let off = index as u64 * frames::PAGE_SIZE;
                            let len = (size - off).min(frames::PAGE_SIZE) as usize;
                            let mut page = vec![0u8; len];
                            pc.read(fid, off, &mut page).map_err(|e| format!("{e}"))?;
                            pc.write(fid, off, &page).map_err(|e| format!("{e}"))?;
                            dirtied = true;
                        }
                    }
                    if pinned.is_some() && dirtied {
                        break;
                    }
                }
                if pinned.is_some() && dirtied {
                    break;
                }
            }
            match (pinned, dirtied) {
                (Some(p), true) => Ok(p),
                _ => Err(String::from(
                    "fewer than two cached pages sit in the CMA area",
                )),
            }
        })?;
        let r = memsys::alloc(Select::Id(id), pages, 1);
        check!(
            matches!(r, Err(ContigError::Busy { .. })),
            "whole CMA area with a pinned page: {r:?}"
        );
        pc(|pc| pc.unpin_page(pinned).map_err(|e| format!("unpin: {e}")))?;
        let before = memsys::areas().stats(id).map_err(|e| format!("{e}"))?;
        let a = memsys::alloc(Select::Id(id), pages, 1)
            .map_err(|e| format!("whole CMA area after unpin: {e}"))?;
        let after = memsys::areas().stats(id).map_err(|e| format!("{e}"))?;
        check!(
            after.migrated + after.dropped_clean > before.migrated + before.dropped_clean,
            "nothing was moved out"
        );
        // Clean pages are dropped (Linux reclaim_clean_pages_from_list),
        // the dirty one copied (with the arch copy_page).
        check!(
            after.dropped_clean > start.dropped_clean,
            "no clean page was dropped (copied instead?)"
        );
        check!(
            after.migrated > start.migrated,
            "the dirty page was not migrated"
        );
        // Migration preserved every byte.
        pc(|pc| check_every_byte(pc).map(|_| ()))?;
        memsys::free(a).map_err(|e| format!("free: {e}"))?;
        pc(|pc| {
            pc.check_stats()
                .map_err(|e| format!("page-cache counters: {e}"))
        })
    })();
    // Back to the test setup, whatever happened.
    memsys::with(|pc| {
        pc.set_budget(BUDGET);
        let a = memsys::pages_mut(pc);
        a.cleancache = true;
        a.cma_lending = false;
        let _ = pc.shrink(usize::MAX);
    });
    result
}

/// Boot 1 of the persistence check (`persist=write:N`): writes a file
/// derived from N and syncs.
pub fn persist_write(nonce: u64) -> TestResult {
    pc(|pc| {
        let mut data = vec![0u8; 3 * 4096 + 17];
        Content::new(nonce, "/persist.bin").fill(0, &mut data);
        let _ = pc.remove("/persist.bin");
        let id = pc
            .create("/persist.bin")
            .map_err(|e| format!("create: {e}"))?;
        pc.write(id, 0, &data).map_err(|e| format!("write: {e}"))?;
        pc.sync().map_err(|e| format!("sync: {e}"))
    })
}

/// Boot 2 (`persist=check:N`): the file written by boot 1 is on disk.
pub fn persist_check(nonce: u64) -> TestResult {
    pc(|pc| {
        let data = read_all(pc, "/persist.bin")?;
        check!(
            data.len() == 3 * 4096 + 17,
            "persisted file has {} bytes",
            data.len()
        );
        check!(
            Content::new(nonce, "/persist.bin")
                .first_mismatch(0, &data)
                .is_none(),
            "persisted bytes differ"
        );
        Ok(())
    })
}
