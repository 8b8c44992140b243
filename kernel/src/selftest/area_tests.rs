//! Self-tests of the reserved areas: GCMA over a full cleancache, the
//! carveout, CMA with nothing lent, every bad request, and the accounting.
//! (Tests with a real page cache over the disk live in the storage tests.)

use alloc::format;
use alloc::vec::Vec;

use contig::{AreaKind, ContigError, Select};
use frames::{FrameState, PAGE_SIZE, Pfn};

use super::TestResult;
use crate::{BootInfo, memsys, mm};

/// Fills every free page of the GCMA pools with cached copies of fake file
/// pages (file ids from `base_file`) of a fake mount; returns how many were
/// stored, and the mount.
fn fill_cleancache(base_file: u64, pages: usize) -> (usize, cleancache::FsId) {
    let mut page = [0u8; PAGE_SIZE as usize];
    let mut mm = memsys::areas();
    let cc = mm.backend_mut();
    let fs = cc.register_fs(0);
    let before = cc.stats().cached_now;
    for i in 0..pages {
        let file = base_file + (i / 512) as u64;
        let index = (i % 512) as u32;
        page.fill(0);
        page[..8].copy_from_slice(&file.to_le_bytes());
        page[8..12].copy_from_slice(&index.to_le_bytes());
        cc.put_page(fs, file, index, &page);
    }
    (cc.stats().cached_now - before, fs)
}

fn gcma() -> Result<(contig::AreaId, Pfn, usize), alloc::string::String> {
    let memsys::AreaInfo { id, pfn, pages, .. } =
        memsys::first_of(AreaKind::Gcma).ok_or("no GCMA area registered")?;
    Ok((id, pfn, pages))
}

fn frames_in(pfn: Pfn, count: usize, want: FrameState) -> TestResult {
    for p in (0..count as u64).map(|i| pfn + i) {
        let st = mm::with_frames(|t| t.state(p));
        if st != Some(want) {
            return Err(format!("frame {p:#x}: {st:?}, want {want:?}"));
        }
    }
    Ok(())
}

pub fn gcma_whole_area_from_full_cleancache(_: &BootInfo) -> TestResult {
    let (id, pfn, pages) = gcma()?;
    let (stored, fs) = fill_cleancache(1 << 40, pages);
    check!(stored == pages, "cleancache took {stored} of {pages} pages");
    frames_in(pfn, pages, FrameState::Cleancache)?;
    // The whole area in one request: every page is taken back.
    let a = memsys::alloc(Select::Id(id), pages, 1)
        .map_err(|e| format!("whole-area allocation: {e}"))?;
    check!(
        a.pfn == pfn && a.count == pages,
        "got {:#x}+{}, want {pfn:#x}+{pages}",
        a.pfn,
        a.count
    );
    frames_in(pfn, pages, FrameState::Allocated)?;
    let cached = memsys::areas().backend().stats().cached_now;
    check!(
        cached == 0,
        "{cached} pages still cached after taking the whole area"
    );
    // The memory is ours: write and read it back.
    // SAFETY: the allocation owns these identity-mapped frames until freed.
    let mem = unsafe {
        core::slice::from_raw_parts_mut(pfn.addr() as *mut u64, pages * PAGE_SIZE as usize / 8)
    };
    for (i, w) in mem.iter_mut().enumerate() {
        *w = i as u64 ^ 0xdead_beef;
    }
    check!(
        mem.iter()
            .enumerate()
            .all(|(i, w)| *w == i as u64 ^ 0xdead_beef),
        "allocated memory did not hold its data"
    );
    // A cached page from before must be gone, not stale.
    let mut out = [0u8; PAGE_SIZE as usize];
    let hit = memsys::areas()
        .backend_mut()
        .get_page(fs, 1 << 40, 0, &mut out);
    check!(!hit, "a copy dropped by the allocation was still returned");
    memsys::free(a).map_err(|e| format!("free: {e}"))?;
    frames_in(pfn, pages, FrameState::ReservedArea)?;
    // Cleancache refills after the free.
    let (stored, _) = fill_cleancache(2 << 40, pages / 2);
    check!(
        stored == pages / 2,
        "cleancache refilled {stored} of {} pages after the free",
        pages / 2
    );
    Ok(())
}

pub fn gcma_mixed_sizes_never_fail(_: &BootInfo) -> TestResult {
    let (id, _, pages) = gcma()?;
    fill_cleancache(3 << 40, pages);
    // Mixed sizes, including a 12 MiB camera buffer; each fits the free
    // space left, so each must succeed.
    let sizes = [3072usize, 1, 7, 768, 256, 33, 1024, 2, 512, 64];
    let mut live = Vec::new();
    let mut used = 0;
    for (round, &n) in sizes.iter().cycle().take(40).enumerate() {
        if used + n > pages {
            // Free the oldest to make room, as a camera restarting would.
            while used + n > pages {
                let a: contig::Allocation = live.remove(0);
                used -= a.count;
                memsys::free(a).map_err(|e| format!("round {round}: free: {e}"))?;
            }
            fill_cleancache(4 << 40, pages / 4);
        }
        let align = if n >= 256 { 256 } else { 1 };
        match memsys::alloc(Select::Id(id), n, align) {
            Ok(a) => {
                used += n;
                live.push(a);
            }
            // Fragmentation may leave no aligned free range even though the
            // total fits; GCMA's guarantee is for a free range, so check
            // one really was missing.
            Err(ContigError::NoSpace { .. }) if used + n + align > pages / 2 => {}
            Err(e) => {
                return Err(format!(
                    "round {round}: {n} pages (align {align}) with {used}/{pages} used: {e}"
                ));
            }
        }
    }
    for a in live {
        memsys::free(a).map_err(|e| format!("final free: {e}"))?;
    }
    let stats = memsys::areas().stats(id).map_err(|e| format!("{e}"))?;
    check!(
        stats.allocated == 0,
        "{} pages still allocated",
        stats.allocated
    );
    Ok(())
}

pub fn areas_bad_requests(_: &BootInfo) -> TestResult {
    let (id, pfn, pages) = gcma()?;
    let sel = Select::Id(id);
    check!(
        matches!(memsys::alloc(sel, 0, 1), Err(ContigError::ZeroCount)),
        "zero pages accepted"
    );
    check!(
        matches!(
            memsys::alloc(sel, pages + 1, 1),
            Err(ContigError::TooLarge { .. })
        ),
        "more than the area accepted"
    );
    check!(
        matches!(
            memsys::alloc(sel, 4, 3),
            Err(ContigError::BadAlignment { .. })
        ),
        "alignment 3 accepted"
    );
    check!(
        matches!(
            memsys::alloc(Select::Name("no-such-area"), 1, 1),
            Err(ContigError::UnknownArea)
        ),
        "unknown area accepted"
    );
    let a = memsys::alloc(sel, 16, 16).map_err(|e| format!("alloc 16: {e}"))?;
    let part = contig::Allocation { count: 8, ..a };
    check!(
        matches!(memsys::free(part), Err(ContigError::PartialFree { .. })),
        "a partial free accepted"
    );
    let never = contig::Allocation {
        pfn: pfn + pages as u64 - 1,
        count: 1,
        ..a
    };
    check!(
        memsys::free(never).is_err(),
        "freeing a range never allocated accepted"
    );
    memsys::free(a).map_err(|e| format!("free: {e}"))?;
    check!(
        matches!(
            memsys::free(a),
            Err(ContigError::DoubleFree { .. }) | Err(ContigError::NotAllocated { .. })
        ),
        "double free accepted"
    );
    // Fill the area, then one more page: no space.
    let all = memsys::alloc(sel, pages, 1).map_err(|e| format!("whole area: {e}"))?;
    check!(
        matches!(memsys::alloc(sel, 1, 1), Err(ContigError::NoSpace { .. })),
        "allocation from a full area succeeded"
    );
    memsys::free(all).map_err(|e| format!("free all: {e}"))?;
    Ok(())
}

pub fn carveout_and_cma_idle(_: &BootInfo) -> TestResult {
    for kind in [AreaKind::Carveout, AreaKind::Cma] {
        let memsys::AreaInfo { id, pfn, pages, .. } =
            memsys::first_of(kind).ok_or(format!("no {kind:?} area"))?;
        let a =
            memsys::alloc(Select::Id(id), pages / 2, 64).map_err(|e| format!("{kind:?}: {e}"))?;
        check!(
            a.pfn >= pfn && a.pfn + a.count as u64 <= pfn + pages as u64,
            "{kind:?} allocation outside its area"
        );
        check!(
            a.pfn.is_aligned(6),
            "{kind:?} allocation at {:#x} not 64-page aligned",
            a.pfn
        );
        frames_in(a.pfn, a.count, FrameState::Allocated)?;
        memsys::free(a).map_err(|e| format!("{kind:?} free: {e}"))?;
        frames_in(a.pfn, a.count, FrameState::ReservedArea)?;
    }
    Ok(())
}

pub fn accounting_adds_up(_: &BootInfo) -> TestResult {
    let (id, _, pages) = gcma()?;
    fill_cleancache(5 << 40, pages / 3);
    let a = memsys::alloc(Select::Id(id), pages / 4, 1).map_err(|e| format!("{e}"))?;
    let r = memsys::mem_report();
    let g = r.gcma;
    check!(
        g.allocated + g.cached + g.idle == g.size,
        "GCMA: {} + {} + {} != {}",
        g.allocated,
        g.cached,
        g.idle,
        g.size
    );
    check!(
        g.allocated == pages / 4,
        "GCMA allocated {} != {}",
        g.allocated,
        pages / 4
    );
    let c = r.cma;
    check!(
        c.allocated + c.lent + c.idle == c.size,
        "CMA: {} + {} + {} != {}",
        c.allocated,
        c.lent,
        c.idle,
        c.size
    );
    let v = r.carveout;
    check!(
        v.allocated + v.idle == v.size,
        "carveout: {} + {} != {}",
        v.allocated,
        v.idle,
        v.size
    );
    check!(
        r.total() == r.allocated() + r.cached() + r.lent() + r.free() + r.reserved_idle(),
        "report total {} != sum of parts",
        r.total()
    );
    // Frame table agrees with the area's own view.
    let counted = mm::with_frames(|t| t.state_count(FrameState::Cleancache)) as usize;
    check!(
        counted == g.cached,
        "frame table counts {counted} cleancache frames, area says {}",
        g.cached
    );
    memsys::free(a).map_err(|e| format!("{e}"))?;
    Ok(())
}

/// Explicit pfn ranges (`memsys::alloc_range`, the GCMA patch's
/// `gcma_alloc_range`) on the tag-storage donor (or the GCMA area when the
/// tree has no `tags@` region): each error distinct and harmless, the range
/// taken exactly, its copies dropped, its frames marked, freed as usual.
pub fn gcma_explicit_range(_: &BootInfo) -> TestResult {
    let area = memsys::area_named("tags")
        .or_else(|| memsys::first_of(AreaKind::Gcma))
        .ok_or("no GCMA area registered")?;
    let (base, pages) = (area.pfn, area.pages);
    check!(pages >= 32, "area '{}' too small: {pages} pages", area.name);
    check!(
        memsys::alloc_range(Pfn(0), 1)
            == Err(ContigError::RangeOutside {
                pfn: Pfn(0),
                count: 1
            }),
        "pfn 0 is outside every area"
    );
    let tail = base + pages as u64 - 2;
    check!(
        memsys::alloc_range(tail, 4)
            == Err(ContigError::RangeSpansAreas {
                pfn: tail,
                count: 4
            }),
        "a range past the area's end is not inside one area"
    );
    if let Some(cma) = memsys::first_of(AreaKind::Cma) {
        check!(
            memsys::alloc_range(cma.pfn, 4)
                == Err(ContigError::RangeInCma {
                    pfn: cma.pfn,
                    count: 4
                }),
            "a CMA range is refused"
        );
    }
    let a = memsys::alloc_range(base + 8, 16).map_err(|e| format!("range: {e}"))?;
    check!(
        a.area == area.id && a.pfn == base + 8 && a.count == 16,
        "got {:#x}+{} in {:?}",
        a.pfn,
        a.count,
        a.area
    );
    frames_in(base + 8, 16, FrameState::Allocated)?;
    let r = memsys::alloc_range(base + 4, 8);
    check!(
        r == Err(ContigError::RangeAllocated {
            pfn: base + 4,
            count: 8,
            first: base + 8
        }),
        "overlapping range: {r:?}"
    );
    for p in (4..8).map(|i| base + i) {
        let st = mm::with_frames(|t| t.state(p));
        check!(
            st != Some(FrameState::Allocated),
            "refused range left frame {p:#x} allocated"
        );
    }
    // SAFETY: the allocation owns these identity-mapped frames until freed.
    let mem = unsafe {
        core::slice::from_raw_parts_mut(a.pfn.addr() as *mut u64, 16 * PAGE_SIZE as usize / 8)
    };
    for (i, w) in mem.iter_mut().enumerate() {
        *w = !(i as u64);
    }
    check!(
        mem.iter().enumerate().all(|(i, w)| *w == !(i as u64)),
        "range memory did not hold its data"
    );
    memsys::free(a).map_err(|e| format!("free: {e}"))?;
    frames_in(base + 8, 16, FrameState::ReservedArea)?;
    check!(
        matches!(memsys::free(a), Err(ContigError::DoubleFree { .. })),
        "second free of the range is a double free"
    );
    Ok(())
}
