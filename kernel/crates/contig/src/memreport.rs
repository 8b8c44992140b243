//! The memory report: reserved pages by kind and use (allocated, cached,
//! lent, idle) and the totals derived from them. See the crate
//! documentation for the accounting rules.

use core::fmt;

/// Page counts of the areas of one kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KindReport {
    pub areas: usize,
    pub size: usize,
    pub allocated: usize,
    pub cached: usize,
    pub lent: usize,
    pub idle: usize,
}

/// Reserved memory as the kernel's memory report shows it (pages). See the
/// crate documentation for the accounting rules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemReport {
    pub gcma: KindReport,
    pub cma: KindReport,
    pub carveout: KindReport,
}

impl MemReport {
    fn kinds(&self) -> [&KindReport; 3] {
        [&self.gcma, &self.cma, &self.carveout]
    }

    /// Pages of every area.
    pub fn total(&self) -> usize {
        self.kinds().iter().map(|k| k.size).sum()
    }

    /// Pages inside contiguous allocations (charged to their drivers).
    pub fn allocated(&self) -> usize {
        self.kinds().iter().map(|k| k.allocated).sum()
    }

    /// GCMA pages holding cleancache copies (reported as cache).
    pub fn cached(&self) -> usize {
        self.gcma.cached
    }

    /// CMA pages lent to the page allocator (charged to their users).
    pub fn lent(&self) -> usize {
        self.cma.lent
    }

    /// Unused pages a contiguous allocation gets with no work: GCMA idle +
    /// CMA idle.
    pub fn free(&self) -> usize {
        self.gcma.idle + self.cma.idle
    }

    /// Carveout pages not allocated: reserved, wasted while idle.
    pub fn reserved_idle(&self) -> usize {
        self.carveout.idle
    }

    /// Reserved pages that belong to the system's RAM total (CMA only).
    pub fn system_total(&self) -> usize {
        self.cma.size
    }

    /// Reserved pages that count as system free memory (CMA idle only).
    pub fn system_free(&self) -> usize {
        self.cma.idle
    }

    /// Pages a contiguous allocation is guaranteed to get (fragmentation
    /// aside): GCMA cached + idle, carveout idle.
    pub fn contig_guaranteed(&self) -> usize {
        self.gcma.cached + self.gcma.idle + self.carveout.idle
    }

    /// Pages a contiguous allocation may get if every migration succeeds:
    /// the guaranteed ones plus CMA idle + lent.
    pub fn contig_possible(&self) -> usize {
        self.contig_guaranteed() + self.cma.idle + self.cma.lent
    }

    /// One machine-readable line `@memreport ...`.
    pub fn write_machine(&self, w: &mut dyn fmt::Write) -> fmt::Result {
        writeln!(
            w,
            "@memreport total={} allocated={} cached={} lent={} free={} reserved_idle={} \
             system_total={} system_free={} contig_guaranteed={} contig_possible={}",
            self.total(),
            self.allocated(),
            self.cached(),
            self.lent(),
            self.free(),
            self.reserved_idle(),
            self.system_total(),
            self.system_free(),
            self.contig_guaranteed(),
            self.contig_possible()
        )
    }
}
