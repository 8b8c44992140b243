//! Reports on the memory state: the memory report, the statistics printed
//! after the demo, and where the areas are.
//!
//! Rule: each report is read in one memsys lock hold (one consistent
//! moment), the frame table inside it.

use alloc::string::String;
use core::fmt::Write as _;

use contig::{AreaId, AreaKind, MemReport};
use frames::{FrameState, Pfn};

use super::areas;
use crate::{console, mm};

/// An area: its id, name, first pfn and size in pages.
#[derive(Clone, Debug)]
pub struct AreaInfo {
    pub id: AreaId,
    pub name: String,
    pub pfn: Pfn,
    pub pages: usize,
}

/// The first area of `kind`.
pub fn first_of(kind: AreaKind) -> Option<AreaInfo> {
    let areas = areas();
    let id = areas.ids().find(|id| areas.kind(*id) == Some(kind))?;
    let (pfn, pages) = areas.span(id)?;
    Some(AreaInfo {
        id,
        name: String::from(areas.name(id)?),
        pfn,
        pages,
    })
}

/// The first area whose name is `prefix` or starts with `prefix@` (a
/// device-tree node name such as `tags@58000000`).
pub fn area_named(prefix: &str) -> Option<AreaInfo> {
    let areas = areas();
    let id = areas.ids().find(|id| {
        areas.name(*id).is_some_and(|n| {
            n == prefix || n.strip_prefix(prefix).is_some_and(|r| r.starts_with('@'))
        })
    })?;
    let (pfn, pages) = areas.span(id)?;
    Some(AreaInfo {
        id,
        name: String::from(areas.name(id)?),
        pfn,
        pages,
    })
}

/// The memory report (total, free, lent, cached, allocated per kind).
pub fn mem_report() -> MemReport {
    areas().mem_report()
}

/// Prints the kernel's memory report (every frame by state, and each kind
/// of reserved memory split the way the `contig` crate's accounting says),
/// the per-area table, the cleancache statistics and machine lines.
pub fn print_stats() {
    let areas = areas();
    let mut out = console::Writer;
    let stats = mm::with_frames(|t| t.stats());
    let mib = |pages: u64| pages as f64 / 256.0;
    let _ = writeln!(out, "memory report (MiB)");
    for st in FrameState::ALL {
        let n = stats.state(*st);
        if n > 0 && *st != FrameState::Absent {
            let _ = writeln!(out, "  {:<14} {:>9.1}", st.name(), mib(n));
        }
    }
    let r = areas.mem_report();
    let _ = writeln!(
        out,
        "  {:<9} {:>9} {:>9} {:>9} {:>9} {:>9}   (pages)",
        "reserved", "size", "allocated", "cached", "lent", "idle"
    );
    for (name, k) in [("gcma", r.gcma), ("cma", r.cma), ("carveout", r.carveout)] {
        let _ = writeln!(
            out,
            "  {:<9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            name, k.size, k.allocated, k.cached, k.lent, k.idle
        );
    }
    let _ = writeln!(
        out,
        "  GCMA cached pages count as available (dropped instantly), never as free; idle CMA pages are free system memory; idle carveout pages are wasted"
    );
    let _ = areas.write_table(&mut out);
    let _ = areas.write_machine(&mut out);
    let _ = areas.backend().write_machine(&mut out);
    let _ = areas.mem_report().write_machine(&mut out);
}
