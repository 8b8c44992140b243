//! The page-cache setups the allocators are measured under (the demo
//! compares all four, the soak runs one per allocator), how one is applied,
//! filling the memory a setup can use before a run under load, and the data
//! set's manifest.
//!
//! Setups (page cache budget B = [`BUDGET_PAGES`], area size A):
//! | setup    | page cache frames        | cleancache | reserved memory while idle |
//! |----------|--------------------------|------------|----------------------------|
//! | none     | B + A ordinary           | off        | (none: given to the cache) |
//! | carveout | B                        | off        | wasted                     |
//! | cma      | B ordinary + A CMA-lent  | off        | holds movable file pages   |
//! | gcma     | B                        | on (A)     | holds clean file copies    |
//!
//! Rules: a setup is applied only between runs (no background task
//! running); applying one syncs and drops every clean page, so each run
//! starts cold, and leaves cleancache's copies (used only when the setup
//! turns cleancache on).

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use contig::AreaKind;

use super::load::{self, DataSet};
use crate::memsys::{self, Setup};

/// Page-cache budget of ordinary memory in every setup: 8 MiB.
pub const BUDGET_PAGES: usize = 2048;

/// The page-cache setup for an allocator run or a utilization setup.
pub(crate) fn setup_for(kind: Option<AreaKind>, area_pages: usize) -> Setup {
    let base = Setup {
        budget_pages: BUDGET_PAGES,
        ordinary_pages: BUDGET_PAGES,
        cma_lending: false,
        cleancache: false,
        readahead_max: 32,
    };
    match kind {
        None => Setup {
            budget_pages: BUDGET_PAGES + area_pages,
            ordinary_pages: BUDGET_PAGES + area_pages,
            ..base
        },
        Some(AreaKind::Carveout) => base,
        Some(AreaKind::Cma) => Setup {
            budget_pages: BUDGET_PAGES + area_pages,
            cma_lending: true,
            ..base
        },
        Some(AreaKind::Gcma) => Setup {
            cleancache: true,
            ..base
        },
    }
}

/// Applies `s` to the mounted page cache and starts it cold (no cached
/// pages, nothing lent); cleancache copies stay (they are only used when
/// the setup turns cleancache on).
pub(crate) fn apply(s: Setup) {
    memsys::with(|pc| {
        pc.set_budget(s.budget_pages);
        let a = memsys::pages_mut(pc);
        a.cleancache = s.cleancache;
        a.ordinary_limit = s.ordinary_pages;
        a.cma_lending = s.cma_lending;
        let _ = pc.sync();
        pc.drop_clean_pages();
    });
}

/// Reads the data set in order until the memory the setup can use for file
/// pages is nearly full: the page-cache budget (carveout), the CMA area
/// lent to the page cache (CMA), cleancache (GCMA). At most one pass.
pub(crate) fn prefill(kind: AreaKind, data: &'static DataSet, area_pages: usize) {
    let full = || -> bool {
        let target = area_pages * 95 / 100;
        match kind {
            AreaKind::Cma => memsys::lent_pages().is_none_or(|n| n >= target),
            AreaKind::Gcma => memsys::areas().backend().stats().cached_now >= target,
            AreaKind::Carveout => {
                memsys::with(|pc| pc.cached_pages() * 100 >= BUDGET_PAGES * 95).unwrap_or(true)
            }
        }
    };
    load::resume();
    let mut buf = vec![0u8; 64 * 1024];
    for (_, path) in &data.files {
        if full() {
            break;
        }
        load::read_file(data, path, false, &mut buf);
    }
}

pub(crate) fn load_manifest() -> Result<DataSet, String> {
    let text = memsys::with(|pc| -> Result<Vec<u8>, String> {
        let id = pc
            .open(testdata::MANIFEST_PATH)
            .map_err(|e| format!("{e}"))?;
        let size = pc.file_size(id).map_err(|e| format!("{e}"))? as usize;
        let mut buf = vec![0u8; size];
        let mut off = 0;
        while off < size {
            let n = pc
                .read(id, off as u64, &mut buf[off..])
                .map_err(|e| format!("{e}"))?;
            if n == 0 {
                break;
            }
            off += n;
        }
        Ok(buf)
    })
    .ok_or("no filesystem")??;
    let text = core::str::from_utf8(&text).map_err(|_| "manifest is not UTF-8")?;
    let (seed, entries) = testdata::parse_manifest(text).map_err(|e| format!("{e:?}"))?;
    let files = entries
        .filter_map(|e| e.ok())
        .map(|e| (e.size, String::from(e.path)))
        .collect();
    Ok(DataSet { seed, files })
}
