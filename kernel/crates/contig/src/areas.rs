//! The registry of named areas behind one allocation interface, their
//! statistics, printers and the memory report.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::ptr::NonNull;

use cleancache::{Cleancache, FileId, PageIndex};

use crate::{
    CarveoutArea, CmaArea, CmaJob, CmaPolicy, CmaStep, ContigError, GcmaArea, MemReport, Migrator,
    PageState, Pfn, PoolBackend, PoolId,
};

mod range;

/// Most areas an [`Areas`] registry holds.
pub const MAX_AREAS: usize = 16;

/// The three kinds of reserved area.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AreaKind {
    /// Lent to cleancache; allocations take pages back (never fail while
    /// the request fits).
    Gcma,
    /// Lent to movable pages; allocations migrate them (may fail on pinned
    /// pages).
    Cma,
    /// Never lent.
    Carveout,
}

impl AreaKind {
    /// Lower-case name used in printouts.
    pub const fn as_str(self) -> &'static str {
        match self {
            AreaKind::Gcma => "gcma",
            AreaKind::Cma => "cma",
            AreaKind::Carveout => "carveout",
        }
    }
}

impl fmt::Display for AreaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Handle of an area in an [`Areas`] registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AreaId(usize);

impl AreaId {
    /// Registration order (0, 1, ...).
    pub const fn index(self) -> usize {
        self.0
    }
}

/// Which area(s) an allocation may come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Select<'a> {
    /// The area with this name.
    Name(&'a str),
    /// The areas of this kind, tried in registration order.
    Kind(AreaKind),
    /// This area.
    Id(AreaId),
}

/// A live contiguous allocation: `count` pages from `pfn` in `area`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Allocation {
    pub area: AreaId,
    pub pfn: Pfn,
    pub count: usize,
}

/// Statistics of one area. Sizes are in pages and are a snapshot
/// (`allocated + cached + lent + idle == size`); the rest count events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AreaStats {
    pub kind: AreaKind,
    /// Pages in the area.
    pub size: usize,
    /// Pages inside live allocations.
    pub allocated: usize,
    /// GCMA: pages holding a cleancache copy.
    pub cached: usize,
    /// CMA: pages lent to the page allocator.
    pub lent: usize,
    /// Pages in none of the states above.
    pub idle: usize,
    /// Successful allocations.
    pub allocations: u64,
    /// Successful frees.
    pub frees: u64,
    /// Failed allocations (any error).
    pub failures: u64,
    /// CMA: pages migrated out by a copy.
    pub migrated: u64,
    /// CMA: clean pages dropped instead of copied (Linux
    /// `reclaim_clean_pages_from_list`).
    pub dropped_clean: u64,
    /// CMA: migration attempts answered `Busy`.
    pub busy_retries: u64,
    /// CMA: candidate ranges given up because a page stayed busy.
    pub ranges_given_up: u64,
    /// CMA, Android policy: sleeps before a rescan.
    pub rescans: u64,
    /// GCMA: cleancache copies dropped by allocations.
    pub dropped_copies: u64,
    /// CMA: pages lent so far.
    pub lends: u64,
    /// CMA: lent pages returned so far.
    pub returns: u64,
}

impl AreaStats {
    pub(crate) const fn new(kind: AreaKind, size: usize) -> Self {
        AreaStats {
            kind,
            size,
            allocated: 0,
            cached: 0,
            lent: 0,
            idle: size,
            allocations: 0,
            frees: 0,
            failures: 0,
            migrated: 0,
            dropped_clean: 0,
            busy_retries: 0,
            ranges_given_up: 0,
            rescans: 0,
            dropped_copies: 0,
            lends: 0,
            returns: 0,
        }
    }
}

/// What a reserved pfn is used for now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PfnState {
    /// Inside a live contiguous allocation.
    Allocated,
    /// GCMA: holds a cleancache copy of `(file, index)`.
    Cached { file: FileId, index: PageIndex },
    /// CMA: lent to the page allocator.
    Lent,
    /// Free in its area (GCMA: empty pool page; CMA: lendable; carveout:
    /// reserved-idle).
    Idle,
    /// GCMA: taken back from cleancache but in no allocation. Never seen
    /// unless an invariant is broken.
    Inconsistent,
}

/// A CMA allocation in progress over one or more CMA areas (see
/// [`Areas::cma_begin`]). Drive it to [`AllocStep::Done`] or give it to
/// [`Areas::cma_abort`]: until then it holds an isolated range.
#[must_use = "a CMA allocation holds an isolated range until it is done or aborted"]
#[derive(Debug)]
pub struct CmaAlloc {
    ids: Vec<AreaId>,
    next: usize,
    cur: Option<(AreaId, CmaJob)>,
    count: usize,
    align: usize,
    policy: CmaPolicy,
    err: ContigError,
}

impl CmaAlloc {
    /// The job on the area being tried now.
    pub fn job(&self) -> Option<&CmaJob> {
        self.cur.as_ref().map(|(_, j)| j)
    }
}

/// What the caller of [`Areas::cma_step`] does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllocStep {
    /// Let other tasks run (release the lock), then step again.
    Again,
    /// Sleep `ms` milliseconds (Android policy), then step again.
    Sleep { ms: u64 },
    /// Finished.
    Done(Result<Allocation, ContigError>),
}

#[derive(Clone, Debug)]
enum AreaImpl {
    Gcma(GcmaArea),
    Cma(CmaArea),
    Carveout(CarveoutArea),
}

#[derive(Clone, Debug)]
struct Entry {
    name: String,
    imp: AreaImpl,
}

impl Entry {
    fn kind(&self) -> AreaKind {
        match self.imp {
            AreaImpl::Gcma(_) => AreaKind::Gcma,
            AreaImpl::Cma(_) => AreaKind::Cma,
            AreaImpl::Carveout(_) => AreaKind::Carveout,
        }
    }

    fn span(&self) -> (Pfn, usize) {
        match &self.imp {
            AreaImpl::Gcma(a) => a.span(),
            AreaImpl::Cma(a) => a.span(),
            AreaImpl::Carveout(a) => a.span(),
        }
    }
}

/// Up to [`MAX_AREAS`] named reserved areas of any kind, plus the cleancache
/// (or other [`PoolBackend`]) their GCMA areas lend to. The kernel keeps one
/// instance behind one lock.
pub struct Areas<B: PoolBackend = Cleancache> {
    backend: B,
    areas: Vec<Entry>,
}

impl<B: PoolBackend> Areas<B> {
    /// A registry without areas, owning `backend` (`const`, so that it can
    /// initialise a `static` lock).
    pub const fn new(backend: B) -> Self {
        Areas {
            backend,
            areas: Vec::new(),
        }
    }

    /// The cleancache (for statistics).
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The cleancache, for the page cache hooks (`put_page`, `get_page`,
    /// `invalidate_*`), under the same lock as the areas.
    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    fn check_new(&self, name: &str, base_pfn: Pfn, pages: usize) -> Result<(), ContigError> {
        if self.areas.len() >= MAX_AREAS {
            return Err(ContigError::TooManyAreas);
        }
        if self.areas.iter().any(|e| e.name == name) {
            return Err(ContigError::DuplicateName);
        }
        let bad = ContigError::BadRange { base_pfn, pages };
        let end = base_pfn.checked_add(pages as u64).ok_or(bad)?;
        if pages == 0 {
            return Err(bad);
        }
        for e in &self.areas {
            let (b, n) = e.span();
            if base_pfn < b + n as u64 && b < end {
                return Err(bad);
            }
        }
        Ok(())
    }

    fn push(&mut self, name: &str, imp: AreaImpl) -> AreaId {
        self.areas.push(Entry {
            name: String::from(name),
            imp,
        });
        AreaId(self.areas.len() - 1)
    }

    /// Registers a GCMA area over the frames of the backend's `pool`.
    pub fn add_gcma(&mut self, name: &str, pool: PoolId) -> Result<AreaId, ContigError> {
        let (base_pfn, pages) = self.backend.pool_span(pool)?;
        self.check_new(name, base_pfn, pages)?;
        let area = GcmaArea::new(&self.backend, pool)?;
        Ok(self.push(name, AreaImpl::Gcma(area)))
    }

    /// Registers a CMA area of `pages` pages from `base_pfn`.
    pub fn add_cma(
        &mut self,
        name: &str,
        base_pfn: Pfn,
        pages: usize,
    ) -> Result<AreaId, ContigError> {
        self.check_new(name, base_pfn, pages)?;
        Ok(self.push(name, AreaImpl::Cma(CmaArea::new(base_pfn, pages))))
    }

    /// Registers a static carveout of `pages` pages from `base_pfn`.
    pub fn add_carveout(
        &mut self,
        name: &str,
        base_pfn: Pfn,
        pages: usize,
    ) -> Result<AreaId, ContigError> {
        self.check_new(name, base_pfn, pages)?;
        Ok(self.push(name, AreaImpl::Carveout(CarveoutArea::new(base_pfn, pages))))
    }

    /// Number of areas.
    pub fn len(&self) -> usize {
        self.areas.len()
    }

    /// Whether no area is registered.
    pub fn is_empty(&self) -> bool {
        self.areas.is_empty()
    }

    /// Every area id, in registration order.
    pub fn ids(&self) -> impl Iterator<Item = AreaId> + use<B> {
        (0..self.areas.len()).map(AreaId)
    }

    /// The area called `name`.
    pub fn find(&self, name: &str) -> Option<AreaId> {
        self.areas.iter().position(|e| e.name == name).map(AreaId)
    }

    /// Name of an area.
    pub fn name(&self, id: AreaId) -> Option<&str> {
        self.areas.get(id.0).map(|e| e.name.as_str())
    }

    /// Kind of an area.
    pub fn kind(&self, id: AreaId) -> Option<AreaKind> {
        self.areas.get(id.0).map(Entry::kind)
    }

    /// First pfn and number of pages of an area.
    pub fn span(&self, id: AreaId) -> Option<(Pfn, usize)> {
        self.areas.get(id.0).map(Entry::span)
    }

    /// Sets the CMA migration passes of a CMA area.
    pub fn set_cma_max_passes(&mut self, id: AreaId, passes: u32) -> Result<(), ContigError> {
        match self.areas.get_mut(id.0).map(|e| &mut e.imp) {
            Some(AreaImpl::Cma(a)) => {
                a.set_max_passes(passes);
                Ok(())
            }
            _ => Err(ContigError::UnknownArea),
        }
    }

    /// Allocates `count` contiguous pages aligned to `align` pages (physical
    /// pfn) from the selected area. With [`Select::Kind`] the areas of that
    /// kind are tried in registration order and the error of the last one is
    /// returned if all fail. `migrator` is used by CMA areas only.
    pub fn alloc(
        &mut self,
        sel: Select<'_>,
        count: usize,
        align: usize,
        migrator: &mut dyn Migrator,
    ) -> Result<Allocation, ContigError> {
        let mut err = ContigError::UnknownArea;
        for i in 0..self.areas.len() {
            let e = &self.areas[i];
            let chosen = match sel {
                Select::Name(n) => e.name == n,
                Select::Kind(k) => e.kind() == k,
                Select::Id(id) => id.0 == i,
            };
            if !chosen {
                continue;
            }
            let r = match &mut self.areas[i].imp {
                AreaImpl::Gcma(a) => a.alloc(&mut self.backend, count, align),
                AreaImpl::Cma(a) => a.alloc(migrator, count, align),
                AreaImpl::Carveout(a) => a.alloc(count, align),
            };
            match r {
                Ok(pfn) => {
                    return Ok(Allocation {
                        area: AreaId(i),
                        pfn,
                        count,
                    });
                }
                Err(e) => err = e,
            }
            if !matches!(sel, Select::Kind(_)) {
                break;
            }
        }
        Err(err)
    }

    /// Starts a CMA allocation of `count` pages aligned to `align` pages
    /// under `policy` over the CMA areas `sel` names (in registration
    /// order), to be driven by [`cma_step`](Self::cma_step) with the lock
    /// released between steps (see the `cma` module rules).
    pub fn cma_begin(
        &mut self,
        sel: Select<'_>,
        count: usize,
        align: usize,
        policy: CmaPolicy,
    ) -> Result<CmaAlloc, ContigError> {
        let ids: Vec<AreaId> = (0..self.areas.len())
            .filter(|&i| {
                let e = &self.areas[i];
                e.kind() == AreaKind::Cma
                    && match sel {
                        Select::Name(n) => e.name == n,
                        Select::Kind(k) => k == AreaKind::Cma,
                        Select::Id(id) => id.0 == i,
                    }
            })
            .map(AreaId)
            .collect();
        if ids.is_empty() {
            return Err(ContigError::UnknownArea);
        }
        Ok(CmaAlloc {
            ids,
            next: 0,
            cur: None,
            count,
            align,
            policy,
            err: ContigError::UnknownArea,
        })
    }

    /// One step of a CMA allocation (one migration pass, see
    /// [`CmaArea::step`]); an area that fails hands over to the next one.
    pub fn cma_step(&mut self, job: &mut CmaAlloc, migrator: &mut dyn Migrator) -> AllocStep {
        loop {
            if job.cur.is_none() {
                let Some(&id) = job.ids.get(job.next) else {
                    return AllocStep::Done(Err(job.err));
                };
                job.next += 1;
                let AreaImpl::Cma(a) = &mut self.areas[id.0].imp else {
                    unreachable!("cma_begin keeps CMA areas only")
                };
                match a.begin(job.count, job.align, job.policy) {
                    Ok(j) => job.cur = Some((id, j)),
                    Err(e) => {
                        job.err = e;
                        continue;
                    }
                }
            }
            let (id, j) = job.cur.as_mut().expect("set above");
            let id = *id;
            let AreaImpl::Cma(a) = &mut self.areas[id.0].imp else {
                unreachable!("cma_begin keeps CMA areas only")
            };
            match a.step(j, migrator) {
                CmaStep::Again => return AllocStep::Again,
                CmaStep::Sleep { ms } => return AllocStep::Sleep { ms },
                CmaStep::Done(Ok(pfn)) => {
                    job.cur = None;
                    job.next = job.ids.len();
                    return AllocStep::Done(Ok(Allocation {
                        area: id,
                        pfn,
                        count: job.count,
                    }));
                }
                CmaStep::Done(Err(e)) => {
                    job.cur = None;
                    job.err = e;
                    if matches!(e, ContigError::MigrationNoMemory { .. }) {
                        job.next = job.ids.len();
                    }
                }
            }
        }
    }

    /// Ends a CMA allocation early: its isolated range, if any, is released.
    pub fn cma_abort(&mut self, job: &mut CmaAlloc) {
        if let Some((id, mut j)) = job.cur.take()
            && let AreaImpl::Cma(a) = &mut self.areas[id.0].imp
        {
            a.abort(&mut j);
        }
        job.next = job.ids.len();
    }

    /// Frees an allocation returned by [`alloc`](Self::alloc).
    pub fn free(&mut self, a: Allocation) -> Result<(), ContigError> {
        let e = self
            .areas
            .get_mut(a.area.0)
            .ok_or(ContigError::UnknownArea)?;
        match &mut e.imp {
            AreaImpl::Gcma(g) => g.free(&mut self.backend, a.pfn, a.count),
            AreaImpl::Cma(c) => c.free(a.pfn, a.count),
            AreaImpl::Carveout(c) => c.free(a.pfn, a.count),
        }
    }

    /// The page allocator is short of ordinary memory: lend it an idle page
    /// of a CMA area (areas in registration order), as a movable page.
    pub fn lend_page(&mut self) -> Option<Pfn> {
        self.areas.iter_mut().find_map(|e| match &mut e.imp {
            AreaImpl::Cma(c) => c.lend_page(),
            _ => None,
        })
    }

    /// The page allocator's user freed a lent page: it is idle again.
    pub fn return_page(&mut self, pfn: Pfn) -> Result<(), ContigError> {
        for e in &mut self.areas {
            if let AreaImpl::Cma(c) = &mut e.imp {
                let (b, n) = c.span();
                if pfn >= b && pfn - b < n as u64 {
                    return c.return_page(pfn);
                }
            }
        }
        Err(ContigError::NotLent { pfn })
    }

    /// Statistics of one area.
    pub fn stats(&self, id: AreaId) -> Result<AreaStats, ContigError> {
        let e = self.areas.get(id.0).ok_or(ContigError::UnknownArea)?;
        Ok(match &e.imp {
            AreaImpl::Gcma(g) => g.stats(&self.backend),
            AreaImpl::Cma(c) => c.stats(),
            AreaImpl::Carveout(c) => c.stats(),
        })
    }

    /// The area holding `pfn` and what the page is used for.
    pub fn pfn_state(&self, pfn: Pfn) -> Option<(AreaId, PfnState)> {
        let i = self.areas.iter().position(|e| {
            let (b, n) = e.span();
            pfn >= b && pfn - b < n as u64
        })?;
        let state = match &self.areas[i].imp {
            AreaImpl::Gcma(g) if g.is_allocated(pfn) => PfnState::Allocated,
            AreaImpl::Gcma(g) => {
                let page = (pfn - g.span().0) as usize;
                match self.backend.page_state(g.pool(), page) {
                    Ok(PageState::Free) => PfnState::Idle,
                    Ok(PageState::Cached { file, index, .. }) => PfnState::Cached { file, index },
                    Ok(PageState::TakenBack) | Err(_) => PfnState::Inconsistent,
                }
            }
            AreaImpl::Cma(c) if c.is_allocated(pfn) => PfnState::Allocated,
            AreaImpl::Cma(c) if c.is_lent(pfn) => PfnState::Lent,
            AreaImpl::Carveout(c) if c.is_allocated(pfn) => PfnState::Allocated,
            _ => PfnState::Idle,
        };
        Some((AreaId(i), state))
    }

    /// Live allocations of an area.
    pub fn allocations(&self, id: AreaId) -> Vec<Allocation> {
        let Some(e) = self.areas.get(id.0) else {
            return Vec::new();
        };
        let mk = |(pfn, count)| Allocation {
            area: id,
            pfn,
            count,
        };
        match &e.imp {
            AreaImpl::Gcma(g) => g.allocations().map(mk).collect(),
            AreaImpl::Cma(c) => c.allocations().map(mk).collect(),
            AreaImpl::Carveout(c) => c.allocations().map(mk).collect(),
        }
    }

    /// Checks that every GCMA area's bitmap matches the backend (a page is
    /// taken back exactly when it is allocated). Returns the first bad pfn.
    pub fn check(&self) -> Result<(), Pfn> {
        for e in &self.areas {
            if let AreaImpl::Gcma(g) = &e.imp {
                g.check(&self.backend)?;
            }
        }
        Ok(())
    }

    /// Page counts by kind.
    pub fn mem_report(&self) -> MemReport {
        let mut r = MemReport::default();
        for id in self.ids() {
            let s = self.stats(id).expect("id from ids()");
            let k = match s.kind {
                AreaKind::Gcma => &mut r.gcma,
                AreaKind::Cma => &mut r.cma,
                AreaKind::Carveout => &mut r.carveout,
            };
            k.areas += 1;
            k.size += s.size;
            k.allocated += s.allocated;
            k.cached += s.cached;
            k.lent += s.lent;
            k.idle += s.idle;
        }
        r
    }

    /// One `@area ...` line per area, `key=value` separated by spaces.
    pub fn write_machine(&self, w: &mut dyn fmt::Write) -> fmt::Result {
        for id in self.ids() {
            let s = self.stats(id).expect("id from ids()");
            writeln!(
                w,
                "@area name={} kind={} size_pages={} allocated={} cached={} lent={} \
                 migrated={} busy_retries={} failures={} idle={} allocations={} frees={} \
                 ranges_given_up={} dropped_copies={} dropped_clean={} rescans={}",
                self.areas[id.0].name,
                s.kind,
                s.size,
                s.allocated,
                s.cached,
                s.lent,
                s.migrated,
                s.busy_retries,
                s.failures,
                s.idle,
                s.allocations,
                s.frees,
                s.ranges_given_up,
                s.dropped_copies,
                s.dropped_clean,
                s.rescans
            )?;
        }
        Ok(())
    }

    /// A table with one row per area, columns aligned.
    pub fn write_table(&self, w: &mut dyn fmt::Write) -> fmt::Result {
        const HEAD: [&str; 11] = [
            "size",
            "allocated",
            "cached",
            "lent",
            "idle",
            "allocs",
            "frees",
            "failures",
            "migrated",
            "busy_retries",
            "given_up",
        ];
        let rows: Vec<(&str, AreaKind, [u64; 11])> = self
            .ids()
            .map(|id| {
                let s = self.stats(id).expect("id from ids()");
                let v = [
                    s.size as u64,
                    s.allocated as u64,
                    s.cached as u64,
                    s.lent as u64,
                    s.idle as u64,
                    s.allocations,
                    s.frees,
                    s.failures,
                    s.migrated,
                    s.busy_retries,
                    s.ranges_given_up,
                ];
                (self.areas[id.0].name.as_str(), s.kind, v)
            })
            .collect();
        let name_w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(4);
        let mut widths = HEAD.map(str::len);
        for (_, _, v) in &rows {
            for (w, x) in widths.iter_mut().zip(v) {
                *w = (*w).max(digits(*x));
            }
        }
        write!(w, "{:<name_w$}  {:<8}", "name", "kind")?;
        for (h, width) in HEAD.iter().zip(widths) {
            write!(w, "  {h:>width$}")?;
        }
        writeln!(w)?;
        for (name, kind, v) in &rows {
            write!(w, "{name:<name_w$}  {:<8}", kind.as_str())?;
            for (x, width) in v.iter().zip(widths) {
                write!(w, "  {x:>width$}")?;
            }
            writeln!(w)?;
        }
        Ok(())
    }
}

fn digits(mut x: u64) -> usize {
    let mut n = 1;
    while x >= 10 {
        x /= 10;
        n += 1;
    }
    n
}

impl Areas<Cleancache> {
    /// Registers a GCMA area over `pages` frames from `base_pfn`, mapped at
    /// `base`: the frames become a new cleancache pool, then the area.
    /// Nothing is registered if the area is refused.
    ///
    /// # Safety
    ///
    /// As [`Cleancache::add_pool`]: `base` is valid for reads and writes of
    /// `pages * PAGE_SIZE` bytes for the life of this registry, and nobody
    /// else touches those frames except the owner of a live GCMA allocation,
    /// within it.
    // SAFETY (contract): the `# Safety` section above; callers uphold it.
    pub unsafe fn add_gcma_memory(
        &mut self,
        name: &str,
        base: NonNull<u8>,
        base_pfn: Pfn,
        pages: usize,
    ) -> Result<AreaId, ContigError> {
        self.check_new(name, base_pfn, pages)?;
        // SAFETY: forwarded from this function's own contract.
        let pool = unsafe { self.backend.add_pool(base, pages, base_pfn) }?;
        self.add_gcma(name, pool)
    }
}
