//! Property tests against simple models.

use super::*;
use proptest::prelude::*;

/// Naive first fit over a model of allocated pages, aligned on the pfn.
fn model_fit(used: &[bool], from: usize, base: Pfn, count: usize, align: usize) -> Option<usize> {
    (from..used.len()).find(|&s| {
        (base + s as u64).0.is_multiple_of(align as u64)
            && s + count <= used.len()
            && used[s..s + count].iter().all(|u| !u)
    })
}

#[derive(Clone, Debug)]
enum GOp {
    Put(FileId, PageIndex),
    Get(FileId, PageIndex),
    Invalidate(FileId, PageIndex),
    InvalidateFile(FileId, PageIndex),
    Alloc(usize, u32),
    Free(usize),
}

fn gop() -> impl Strategy<Value = GOp> {
    prop_oneof![
        4 => (0u64..4, 0u32..16).prop_map(|(f, i)| GOp::Put(f, i)),
        3 => (0u64..4, 0u32..16).prop_map(|(f, i)| GOp::Get(f, i)),
        1 => (0u64..4, 0u32..16).prop_map(|(f, i)| GOp::Invalidate(f, i)),
        1 => (0u64..4, 0u32..16).prop_map(|(f, i)| GOp::InvalidateFile(f, i)),
        3 => (1usize..=12, 0u32..=3).prop_map(|(c, a)| GOp::Alloc(c, a)),
        2 => any::<usize>().prop_map(GOp::Free),
    ]
}

const GPAGES: usize = 48;
const GBASE: Pfn = Pfn(0x1003);

proptest! {
    /// GCMA never fails while the request fits a free range, whatever
    /// cleancache holds; it picks exactly the first fit; a cached page is
    /// never inside an allocation; hits return the last content put.
    #[test]
    fn gcma_never_fails_when_it_fits(
        prefill in proptest::collection::vec((0u64..4, 0u32..16), 0..80),
        ops in proptest::collection::vec(gop(), 1..250),
    ) {
        let (mut areas, g) = gcma_registry(GPAGES, GBASE);
        let mut model: BTreeMap<(FileId, PageIndex), u64> = BTreeMap::new();
        let mut version = 0;
        // Random puts, then distinct keys until every page holds a copy.
        for (f, i) in prefill {
            version += 1;
            areas.backend_mut().put_page(fs(), f, i, &content(f, i, version));
            model.insert((f, i), version);
        }
        model.retain(|&(f, i), _| areas.backend().contains(fs(), f, i));
        let mut extra = 0;
        while areas.backend().stats().cached_now < GPAGES {
            areas.backend_mut().put_page(fs(), 1000, extra, &content(1000, extra, 0));
            model.insert((1000, extra), 0);
            extra += 1;
        }
        prop_assert_eq!(areas.backend().stats().lendable_now, GPAGES);
        let mut used = [false; GPAGES];
        let mut live: Vec<Allocation> = Vec::new();
        for op in ops {
            match op {
                GOp::Put(f, i) => {
                    version += 1;
                    areas.backend_mut().put_page(fs(), f, i, &content(f, i, version));
                    if areas.backend().contains(fs(), f, i) {
                        model.insert((f, i), version);
                    } else {
                        prop_assert_eq!(used.iter().filter(|&&u| u).count(), GPAGES);
                        model.remove(&(f, i));
                    }
                }
                GOp::Get(f, i) => {
                    let mut out = Box::new([0u8; PAGE_SIZE as usize]);
                    let v = model.remove(&(f, i));
                    if areas.backend_mut().get_page(fs(), f, i, &mut out) {
                        prop_assert!(v.is_some(), "hit without a valid copy");
                        prop_assert!(*out == *content(f, i, v.unwrap()), "stale data");
                    }
                }
                GOp::Invalidate(f, i) => {
                    areas.backend_mut().invalidate_page(fs(), f, i);
                    model.remove(&(f, i));
                }
                GOp::InvalidateFile(f, from) => {
                    areas.backend_mut().invalidate_file(fs(), f, from);
                    model.retain(|&(mf, mi), _| mf != f || mi < from);
                }
                GOp::Alloc(count, alog) => {
                    let align = 1usize << alog;
                    let expect = model_fit(&used, 0, GBASE, count, align);
                    let r = areas.alloc(Select::Id(g), count, align, &mut NoMigrator);
                    match expect {
                        Some(s) => {
                            let a = r.expect("GCMA failed although the request fits");
                            prop_assert_eq!(a.pfn, GBASE + s as u64);
                            prop_assert_eq!(a.pfn.0 % align as u64, 0);
                            used[s..s + count].iter_mut().for_each(|u| *u = true);
                            live.push(a);
                        }
                        None => prop_assert_eq!(r, Err(ContigError::NoSpace { count, align })),
                    }
                    // Copies in taken pages are gone: drop them from the model.
                    model.retain(|&(f, i), _| areas.backend().contains(fs(), f, i));
                }
                GOp::Free(k) => {
                    if !live.is_empty() {
                        let a = live.swap_remove(k % live.len());
                        prop_assert_eq!(areas.free(a), Ok(()));
                        let s = (a.pfn - GBASE) as usize;
                        used[s..s + a.count].iter_mut().for_each(|u| *u = false);
                        prop_assert_eq!(
                            areas.free(a),
                            Err(ContigError::DoubleFree { pfn: a.pfn, count: a.count })
                        );
                    }
                }
            }
            // No page in two owners: pool state vs. bitmap, page by page.
            prop_assert_eq!(areas.check(), Ok(()));
            let cc = areas.backend();
            prop_assert_eq!(cc.check_invariants(), Ok(()));
            let (pool, _) = cc.locate_pfn(GBASE).unwrap();
            for (p, &u) in used.iter().enumerate() {
                let st = cc.page_state(pool, p).unwrap();
                prop_assert_eq!(st == PageState::TakenBack, u);
                let want = if u { PfnState::Allocated } else {
                    match st {
                        PageState::Free => PfnState::Idle,
                        PageState::Cached { file, index, .. } => PfnState::Cached { file, index },
                        PageState::TakenBack => PfnState::Inconsistent,
                    }
                };
                prop_assert_eq!(areas.pfn_state(GBASE + p as u64), Some((g, want)));
            }
            let s = areas.stats(g).unwrap();
            prop_assert_eq!(s.allocated + s.cached + s.idle, GPAGES);
            prop_assert_eq!(s.allocated, used.iter().filter(|&&u| u).count());
        }
    }
}

#[derive(Clone, Debug)]
enum COp {
    Lend,
    Return(usize),
    Pin(usize),
    Unpin(usize),
    Alloc(usize, u32),
    Free(usize),
}

const CPAGES: usize = 40;
const CBASE: Pfn = Pfn(0x2002);

fn cop() -> impl Strategy<Value = COp> {
    prop_oneof![
        6 => Just(COp::Lend),
        1 => any::<usize>().prop_map(COp::Return),
        2 => (0..CPAGES).prop_map(COp::Pin),
        1 => (0..CPAGES).prop_map(COp::Unpin),
        3 => (1usize..=10, 0u32..=3).prop_map(|(c, a)| COp::Alloc(c, a)),
        2 => any::<usize>().prop_map(COp::Free),
    ]
}

proptest! {
    /// CMA against an exact model of cma_alloc: candidates in first-fit
    /// order shifted by the alignment, a range with a pinned lent page given
    /// up after the passes (its unpinned lent pages migrated, once), the first
    /// range with no pinned lent page taken; Busy when every candidate was
    /// pinned, NoSpace when there was none.
    #[test]
    fn cma_matches_model(ops in proptest::collection::vec(cop(), 1..200), passes in 1u32..4) {
        let mut areas: Areas = Areas::new(mounted());
        let c = areas.add_cma("cma", CBASE, CPAGES).unwrap();
        areas.set_cma_max_passes(c, passes).unwrap();
        let mut mig = FakeMigrator::default();
        let mut used = [false; CPAGES];
        let mut live: Vec<Allocation> = Vec::new();
        for op in ops {
            let before = areas.stats(c).unwrap();
            match op {
                COp::Lend => {
                    let want = (0..CPAGES)
                        .find(|&p| !used[p] && !mig.in_use.contains(&(CBASE + p as u64)));
                    let got = areas.lend_page();
                    prop_assert_eq!(got, want.map(|p| CBASE + p as u64));
                    if let Some(pfn) = got {
                        mig.in_use.insert(pfn);
                    }
                }
                COp::Return(k) => {
                    if let Some(&pfn) = mig.in_use.iter().nth(k % mig.in_use.len().max(1)) {
                        prop_assert_eq!(areas.return_page(pfn), Ok(()));
                        mig.in_use.remove(&pfn);
                    }
                    if let Some(s) = used.iter().position(|&u| u) {
                        let pfn = CBASE + s as u64;
                        prop_assert_eq!(areas.return_page(pfn), Err(ContigError::NotLent { pfn }));
                    }
                }
                COp::Pin(p) => { mig.pinned.insert(CBASE + p as u64); }
                COp::Unpin(p) => { mig.pinned.remove(&(CBASE + p as u64)); }
                COp::Alloc(count, alog) => {
                    let align = 1usize << alog;
                    // Model of the candidate walk.
                    let mut in_use = mig.in_use.clone();
                    let mut migrated_now: BTreeSet<Pfn> = BTreeSet::new();
                    let (mut given_up, mut busy) = (0u64, 0u64);
                    let mut from = 0;
                    let outcome = loop {
                        let Some(s) = model_fit(&used, from, CBASE, count, align) else {
                            break None;
                        };
                        let range = CBASE + s as u64..CBASE + (s + count) as u64;
                        let lent: Vec<Pfn> = pfns(range.clone()).filter(|p| in_use.contains(p)).collect();
                        let pinned = lent.iter().filter(|p| mig.pinned.contains(p)).count() as u64;
                        for p in lent.iter().filter(|p| !mig.pinned.contains(p)) {
                            prop_assert!(migrated_now.insert(*p), "model migrates twice");
                            in_use.remove(p);
                        }
                        if pinned == 0 {
                            break Some(s);
                        }
                        given_up += 1;
                        busy += pinned * passes as u64;
                        from = s + align;
                    };
                    let old_counts = mig.migrated.clone();
                    let r = areas.alloc(Select::Id(c), count, align, &mut mig);
                    match outcome {
                        Some(s) => {
                            let a = r.expect("a range without pinned pages must succeed");
                            prop_assert_eq!(a.pfn, CBASE + s as u64);
                            used[s..s + count].iter_mut().for_each(|u| *u = true);
                            live.push(a);
                        }
                        None if given_up > 0 => prop_assert_eq!(
                            r, Err(ContigError::Busy { ranges_given_up: given_up as usize })
                        ),
                        None => prop_assert_eq!(r, Err(ContigError::NoSpace { count, align })),
                    }
                    // Exactly the model's pages were migrated, each once.
                    prop_assert_eq!(&mig.in_use, &in_use);
                    for (&pfn, &n) in &mig.migrated {
                        let was = old_counts.get(&pfn).copied().unwrap_or(0);
                        prop_assert_eq!(n - was, migrated_now.contains(&pfn) as u32);
                    }
                    let after = areas.stats(c).unwrap();
                    prop_assert_eq!(after.migrated - before.migrated, migrated_now.len() as u64);
                    prop_assert_eq!(after.ranges_given_up - before.ranges_given_up, given_up);
                    prop_assert_eq!(after.busy_retries - before.busy_retries, busy);
                    prop_assert_eq!(after.failures - before.failures, outcome.is_none() as u64);
                }
                COp::Free(k) => {
                    if !live.is_empty() {
                        let a = live.swap_remove(k % live.len());
                        prop_assert_eq!(areas.free(a), Ok(()));
                        let s = (a.pfn - CBASE) as usize;
                        used[s..s + a.count].iter_mut().for_each(|u| *u = false);
                    }
                }
            }
            prop_assert!(mig.bogus.is_empty(), "migrate() of a page not lent: {:?}", mig.bogus);
            // Lent and allocated pages: as the model says, never both.
            for (p, &u) in used.iter().enumerate() {
                let pfn = CBASE + p as u64;
                let want = if u {
                    prop_assert!(!mig.in_use.contains(&pfn));
                    PfnState::Allocated
                } else if mig.in_use.contains(&pfn) {
                    PfnState::Lent
                } else {
                    PfnState::Idle
                };
                prop_assert_eq!(areas.pfn_state(pfn), Some((c, want)));
            }
            let s = areas.stats(c).unwrap();
            prop_assert_eq!(s.lent, mig.in_use.len());
            prop_assert_eq!(s.allocated + s.lent + s.idle, CPAGES);
        }
    }
}

#[derive(Clone, Debug)]
enum MOp {
    Alloc(AreaKind, usize, u32),
    Free(usize),
    Lend,
    Return(usize),
    Put(FileId, PageIndex),
    Get(FileId, PageIndex),
    InvalidateFile(FileId),
}

fn mop() -> impl Strategy<Value = MOp> {
    let kind = prop_oneof![
        Just(AreaKind::Gcma),
        Just(AreaKind::Cma),
        Just(AreaKind::Carveout)
    ];
    prop_oneof![
        3 => (kind, 1usize..=8, 0u32..=2).prop_map(|(k, c, a)| MOp::Alloc(k, c, a)),
        2 => any::<usize>().prop_map(MOp::Free),
        2 => Just(MOp::Lend),
        1 => any::<usize>().prop_map(MOp::Return),
        3 => (0u64..3, 0u32..20).prop_map(|(f, i)| MOp::Put(f, i)),
        1 => (0u64..3, 0u32..20).prop_map(|(f, i)| MOp::Get(f, i)),
        1 => (0u64..3).prop_map(MOp::InvalidateFile),
    ]
}

proptest! {
    /// The memory report adds up under any mix of operations on all three
    /// kinds, and agrees with an independent page-by-page count.
    #[test]
    fn mem_report_adds_up(ops in proptest::collection::vec(mop(), 1..200)) {
        let mut areas: Areas = Areas::new(mounted());
        // SAFETY: leaked memory of 24 pages, never freed, used by nobody else.
        unsafe { areas.add_gcma_memory("g0", mem(24), Pfn(0x100), 24) }.unwrap();
        areas.add_cma("c0", Pfn(0x200), 24).unwrap();
        areas.add_carveout("v0", Pfn(0x300), 12).unwrap();
        // SAFETY: as above, 8 pages.
        unsafe { areas.add_gcma_memory("g1", mem(8), Pfn(0x400), 8) }.unwrap();
        let mut mig = FakeMigrator::default();
        let mut live: Vec<Allocation> = Vec::new();
        for op in ops {
            match op {
                MOp::Alloc(k, count, alog) => {
                    if let Ok(a) = areas.alloc(Select::Kind(k), count, 1 << alog, &mut mig) {
                        prop_assert_eq!(areas.kind(a.area), Some(k));
                        live.push(a);
                    }
                }
                MOp::Free(i) => {
                    if !live.is_empty() {
                        let a = live.swap_remove(i % live.len());
                        prop_assert_eq!(areas.free(a), Ok(()));
                    }
                }
                MOp::Lend => {
                    if let Some(p) = areas.lend_page() {
                        mig.in_use.insert(p);
                    }
                }
                MOp::Return(i) => {
                    if let Some(&p) = mig.in_use.iter().nth(i % mig.in_use.len().max(1)) {
                        prop_assert_eq!(areas.return_page(p), Ok(()));
                        mig.in_use.remove(&p);
                    }
                }
                MOp::Put(f, i) => areas.backend_mut().put_page(fs(), f, i, &content(f, i, 0)),
                MOp::Get(f, i) => {
                    let mut out = Box::new([0u8; PAGE_SIZE as usize]);
                    areas.backend_mut().get_page(fs(), f, i, &mut out);
                }
                MOp::InvalidateFile(f) => areas.backend_mut().invalidate_file(fs(), f, 0),
            }
            let r = areas.mem_report();
            for k in [&r.gcma, &r.cma, &r.carveout] {
                prop_assert_eq!(k.allocated + k.cached + k.lent + k.idle, k.size);
            }
            prop_assert_eq!((r.gcma.lent, r.cma.cached, r.carveout.cached, r.carveout.lent), (0, 0, 0, 0));
            prop_assert_eq!(r.total(), 24 + 24 + 12 + 8);
            prop_assert_eq!(
                r.total(),
                r.allocated() + r.cached() + r.lent() + r.free() + r.reserved_idle()
            );
            prop_assert_eq!(r.allocated(), live.iter().map(|a| a.count).sum::<usize>());
            prop_assert_eq!(r.lent(), mig.in_use.len());
            prop_assert_eq!(r.cached(), areas.backend().stats().cached_now);
            // Independent count, pfn by pfn.
            let mut count = MemReport::default();
            for id in areas.ids() {
                let (base, n) = areas.span(id).unwrap();
                let k = match areas.kind(id).unwrap() {
                    AreaKind::Gcma => &mut count.gcma,
                    AreaKind::Cma => &mut count.cma,
                    AreaKind::Carveout => &mut count.carveout,
                };
                k.areas += 1;
                k.size += n;
                for pfn in pfns(base..base + n as u64) {
                    match areas.pfn_state(pfn).unwrap().1 {
                        PfnState::Allocated => k.allocated += 1,
                        PfnState::Cached { .. } => k.cached += 1,
                        PfnState::Lent => k.lent += 1,
                        PfnState::Idle => k.idle += 1,
                        PfnState::Inconsistent => prop_assert!(false, "inconsistent pfn {pfn:#x}"),
                    }
                }
            }
            prop_assert_eq!(count, r);
            prop_assert_eq!(areas.check(), Ok(()));
        }
    }
}
