//! What our CMA did during one camera run, for the calibration against
//! Linux CMA: the CMA area's counters and the CMA time split (inside
//! migration passes / between them), each as the difference of two
//! snapshots taken around the run. Printed as one `@cmawork` line per CMA
//! run; the collector turns it into the measured cause on the results page.
//!
//! The counters cover every allocation of the run (frame buffers and stills
//! together) and nothing else: the snapshots are taken after the setup,
//! warm-up and prefill, and only the camera allocates from the area.

use contig::{AreaKind, AreaStats};

use crate::memsys::{self, CmaWork};
use crate::println;
use crate::workload::load::Condition;

/// The CMA area's counters and the CMA time counters at one moment.
pub(super) struct Snapshot {
    area: Option<AreaStats>,
    work: CmaWork,
}

/// Snapshot now (no CMA area: no counters, and no line later).
pub(super) fn snapshot() -> Snapshot {
    let areas = memsys::areas();
    let area = areas
        .ids()
        .find(|id| areas.kind(*id) == Some(AreaKind::Cma))
        .and_then(|id| areas.stats(id).ok());
    drop(areas);
    Snapshot {
        area,
        work: memsys::cma_work(),
    }
}

/// Prints the `@cmawork` line for the run between `before` and now.
pub(super) fn print_since(name: &str, cond: Condition, cores: usize, before: &Snapshot) {
    let after = snapshot();
    let (Some(a), Some(b)) = (after.area, before.area) else {
        return;
    };
    let w = after.work.since(before.work);
    println!(
        "@cmawork allocator={name} condition={} cores={cores} allocations={} failures={} passes={} dropped_clean={} migrated={} busy_retries={} ranges_given_up={} rescans={} pass_ms={:.3} total_ms={:.3}",
        cond.name(),
        a.allocations - b.allocations,
        a.failures - b.failures,
        w.passes,
        a.dropped_clean - b.dropped_clean,
        a.migrated - b.migrated,
        a.busy_retries - b.busy_retries,
        a.ranges_given_up - b.ranges_given_up,
        a.rescans - b.rescans,
        w.pass_ns as f64 / 1e6,
        w.total_ns as f64 / 1e6
    );
}
