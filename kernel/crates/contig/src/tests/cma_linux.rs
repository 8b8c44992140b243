//! The CMA model's Linux 6.12 rules (see the `cma` module): alignment as
//! `dma_alloc_contiguous` computes it, isolation of the candidate range,
//! clean pages dropped, failure only when every candidate holds an
//! unmovable page, 5 x 10 passes, and the Android retry policy.

use super::*;
use proptest::prelude::*;

/// Linux `get_order(size)`: the smallest order with `PAGE_SIZE << order >=
/// size`, computed by the loop, not by the model's bit trick.
fn get_order(bytes: usize) -> u32 {
    let mut order = 0;
    while ((PAGE_SIZE as usize) << order) < bytes {
        order += 1;
    }
    order
}

#[test]
fn alignment_matches_linux_for_the_demo_sizes() {
    // 1080p NV12 (3 MiB - 1 page ... 768 pages) and 4K NV12 (12 MiB).
    assert_eq!(linux_cma_align_pages(760), 256);
    assert_eq!(linux_cma_align_pages(768), 256);
    assert_eq!(linux_cma_align_pages(3038), 256);
    assert_eq!(linux_cma_align_pages(1), 1);
    assert_eq!(linux_cma_align_pages(2), 2);
    assert_eq!(linux_cma_align_pages(3), 4);
    assert_eq!(linux_cma_align_pages(16), 16);
    assert_eq!(linux_cma_align_pages(17), 32);
    assert_eq!(linux_cma_align_pages(256), 256);
    assert_eq!(linux_cma_align_pages(257), 256);
}

/// One lent-and-pinned page per 4-page range of a 16-page area, job driven
/// by hand: never more than [`DEFAULT_MAX_PASSES`] steps per range, split
/// as 5 attempts of 10 passes.
#[test]
fn passes_are_five_attempts_of_ten() {
    assert_eq!(
        (MIGRATE_ATTEMPTS, MIGRATE_PASSES, DEFAULT_MAX_PASSES),
        (5, 10, 50)
    );
    let mut cma = CmaArea::new(Pfn(0x4000), 16);
    let mut mig = FakeMigrator::default();
    for _ in 0..16 {
        mig.in_use.insert(cma.lend_page().unwrap());
    }
    for r in 0..4 {
        mig.pinned.insert(Pfn(0x4000 + 4 * r + 2));
    }
    let mut job = cma.begin(4, 4, CmaPolicy::Linux).unwrap();
    let mut steps = 0u32;
    let r = loop {
        steps += 1;
        match cma.step(&mut job, &mut mig) {
            CmaStep::Again => {}
            CmaStep::Sleep { .. } => panic!("the Linux policy never sleeps"),
            CmaStep::Done(r) => break r,
        }
    };
    assert_eq!(r, Err(ContigError::Busy { ranges_given_up: 4 }));
    // 50 passes on each of the 4 ranges, plus the step that found no range.
    assert_eq!(steps, 4 * DEFAULT_MAX_PASSES + 1);
    assert_eq!(cma.stats().busy_retries, 4 * DEFAULT_MAX_PASSES as u64);
    assert!(job.is_done() && job.isolated().is_none());
}

/// The Android policy: with pins that never go away, exactly
/// [`ANDROID_MAX_RETRIES`] sleeps of 100 ms, each followed by a rescan from
/// the start, then `Busy`; a pin released during a sleep lets the rescan
/// succeed.
#[test]
fn android_retry_sleeps_and_rescans() {
    assert_eq!((ANDROID_MAX_RETRIES, ANDROID_RETRY_SLEEP_MS), (5, 100));
    let mut cma = CmaArea::new(Pfn(0x4000), 8);
    cma.set_max_passes(2);
    let mut mig = FakeMigrator::default();
    for _ in 0..8 {
        mig.in_use.insert(cma.lend_page().unwrap());
    }
    mig.pinned.insert(Pfn(0x4001));
    mig.pinned.insert(Pfn(0x4005));
    let mut job = cma.begin(4, 4, CmaPolicy::AndroidRetry).unwrap();
    let mut sleeps = 0;
    let r = loop {
        match cma.step(&mut job, &mut mig) {
            CmaStep::Again => {}
            CmaStep::Sleep { ms } => {
                assert_eq!(ms, 100);
                sleeps += 1;
            }
            CmaStep::Done(r) => break r,
        }
    };
    assert_eq!(sleeps, ANDROID_MAX_RETRIES);
    assert_eq!(job.rescans(), ANDROID_MAX_RETRIES);
    assert_eq!(cma.stats().rescans, ANDROID_MAX_RETRIES as u64);
    // Two ranges per scan, six scans.
    assert_eq!(
        r,
        Err(ContigError::Busy {
            ranges_given_up: 12
        })
    );
    // The Linux policy gives up after one scan.
    let r = cma.alloc(&mut mig, 4, 4);
    assert_eq!(r, Err(ContigError::Busy { ranges_given_up: 2 }));

    let mut job = cma.begin(4, 4, CmaPolicy::AndroidRetry).unwrap();
    let r = loop {
        match cma.step(&mut job, &mut mig) {
            CmaStep::Again => {}
            CmaStep::Sleep { .. } => {
                // The pinning task runs while the allocator sleeps.
                mig.pinned.remove(&Pfn(0x4005));
            }
            CmaStep::Done(r) => break r,
        }
    };
    assert_eq!(r, Ok(Pfn(0x4004)));
    assert_eq!(job.rescans(), 1);
    // A finished job answers its outcome again, counted once.
    let allocations = cma.stats().allocations;
    assert_eq!(cma.step(&mut job, &mut mig), CmaStep::Done(Ok(Pfn(0x4004))));
    assert_eq!(cma.stats().allocations, allocations);
}

/// A free area with nothing lent: `NoSpace`, never a sleep.
#[test]
fn android_retry_does_not_sleep_without_busy() {
    let mut cma = CmaArea::new(Pfn(0x4000), 8);
    let a = cma.alloc(&mut NoMigrator, 8, 1).unwrap();
    let mut job = cma.begin(4, 4, CmaPolicy::AndroidRetry).unwrap();
    assert_eq!(
        cma.step(&mut job, &mut NoMigrator),
        CmaStep::Done(Err(ContigError::NoSpace { count: 4, align: 4 }))
    );
    cma.free(a, 8).unwrap();
}

#[derive(Clone, Debug)]
enum JOp {
    Step,
    Lend,
    Return(usize),
    Pin(usize),
    Unpin(usize),
    NoMemory(usize),
    Abort,
}

const JPAGES: usize = 48;
const JBASE: Pfn = Pfn(0x8003);

fn jop() -> impl Strategy<Value = JOp> {
    prop_oneof![
        6 => Just(JOp::Step),
        4 => Just(JOp::Lend),
        2 => any::<usize>().prop_map(JOp::Return),
        1 => (0..JPAGES).prop_map(JOp::Pin),
        1 => (0..JPAGES).prop_map(JOp::Unpin),
        1 => (0..JPAGES).prop_map(JOp::NoMemory),
        1 => Just(JOp::Abort),
    ]
}

proptest! {
    /// `linux_cma_align_pages` is `1 << min(get_order(count * PAGE_SIZE),
    /// 8)`, for every size up to 64 MiB.
    #[test]
    fn alignment_matches_linux_formula(count in 1usize..=16384) {
        let want = 1usize << get_order(count * PAGE_SIZE as usize).min(8);
        prop_assert_eq!(linux_cma_align_pages(count), want);
        prop_assert!(want.is_power_of_two() && want <= 256);
    }

    /// Clean lent pages are dropped (never copied), the others copied; each
    /// page once; the allocation succeeds with nothing pinned.
    #[test]
    fn model_drops_clean_pages(
        lend in 0usize..=32,
        clean in proptest::collection::btree_set(0usize..32, 0..32),
        count in 1usize..=32,
    ) {
        let mut cma = CmaArea::new(Pfn(0x1000), 32);
        let mut mig = FakeMigrator::default();
        for _ in 0..lend {
            mig.in_use.insert(cma.lend_page().unwrap());
        }
        mig.clean = clean.iter().map(|&p| Pfn(0x1000) + p as u64).collect();
        let align = linux_cma_align_pages(count).min(32);
        let pfn = cma.alloc(&mut mig, count, align).unwrap();
        prop_assert_eq!(pfn, Pfn(0x1000));
        let range: Vec<Pfn> = pfns(Pfn(0x1000)..Pfn(0x1000) + count as u64).collect();
        let lent_in: Vec<Pfn> = range.iter().copied().filter(|p| *p < Pfn(0x1000) + lend as u64).collect();
        let want_dropped: BTreeSet<Pfn> =
            lent_in.iter().copied().filter(|p| mig.clean.contains(p)).collect();
        let want_copied: BTreeSet<Pfn> =
            lent_in.iter().copied().filter(|p| !mig.clean.contains(p)).collect();
        prop_assert_eq!(mig.dropped.keys().copied().collect::<BTreeSet<_>>(), want_dropped.clone());
        prop_assert_eq!(mig.migrated.keys().copied().collect::<BTreeSet<_>>(), want_copied.clone());
        prop_assert!(mig.dropped.values().chain(mig.migrated.values()).all(|&n| n == 1));
        let s = cma.stats();
        prop_assert_eq!(s.dropped_clean, want_dropped.len() as u64);
        prop_assert_eq!(s.migrated, want_copied.len() as u64);
        prop_assert_eq!(s.allocated, count);
        prop_assert_eq!(s.lent, lend - lent_in.len());
        prop_assert!(mig.bogus.is_empty());
    }

    /// A job driven step by step while pages are lent, returned, pinned and
    /// unpinned between steps: `lend_page` never lends a page of the range
    /// being emptied (nor an allocated one), the identities hold, and the
    /// isolation is gone after every exit (success, busy, no memory, abort).
    #[test]
    fn model_never_lends_an_isolated_page(
        ops in proptest::collection::vec(jop(), 1..300),
        count in 1usize..=24,
        passes in 1u32..6,
        android in any::<bool>(),
        prealloc in 0usize..=16,
    ) {
        let mut cma = CmaArea::new(JBASE, JPAGES);
        cma.set_max_passes(passes);
        let mut mig = FakeMigrator::default();
        if prealloc > 0 {
            cma.alloc(&mut mig, prealloc, 1).unwrap();
        }
        let policy = if android { CmaPolicy::AndroidRetry } else { CmaPolicy::Linux };
        let align = linux_cma_align_pages(count);
        let mut job = Some(cma.begin(count, align, policy).unwrap());
        let mut allocated = 0;
        for op in ops {
            match op {
                JOp::Step => {
                    if let Some(j) = job.as_mut()
                        && let CmaStep::Done(r) = cma.step(j, &mut mig)
                    {
                        prop_assert!(j.isolated().is_none());
                        if let Ok(pfn) = r {
                            prop_assert!(pfn.0.is_multiple_of(align as u64));
                            allocated += count;
                        }
                        job = None;
                    }
                }
                JOp::Lend => {
                    if let Some(pfn) = cma.lend_page() {
                        prop_assert!(!cma.is_isolated(pfn), "lent an isolated page {pfn:#x}");
                        prop_assert!(!cma.is_allocated(pfn));
                        if let Some((s, n)) = job.as_ref().and_then(|j| j.isolated()) {
                            let i = (pfn - JBASE) as usize;
                            prop_assert!(!(s..s + n).contains(&i));
                        }
                        prop_assert!(mig.in_use.insert(pfn), "lent twice: {pfn:#x}");
                    }
                }
                JOp::Return(k) => {
                    if let Some(&pfn) = mig.in_use.iter().nth(k % mig.in_use.len().max(1)) {
                        prop_assert_eq!(cma.return_page(pfn), Ok(()));
                        mig.in_use.remove(&pfn);
                    }
                }
                JOp::Pin(p) => { mig.pinned.insert(JBASE + p as u64); }
                JOp::Unpin(p) => { mig.pinned.remove(&(JBASE + p as u64)); }
                JOp::NoMemory(p) => { mig.no_memory.insert(JBASE + p as u64); }
                JOp::Abort => {
                    if let Some(mut j) = job.take() {
                        cma.abort(&mut j);
                        prop_assert!(j.is_done() && j.isolated().is_none());
                    }
                }
            }
            let s = cma.stats();
            prop_assert_eq!(s.allocated + s.lent + s.idle, JPAGES);
            prop_assert_eq!(s.lent, mig.in_use.len());
            prop_assert_eq!(s.allocated, prealloc + allocated);
            prop_assert!(mig.bogus.is_empty(), "moved a page not lent: {:?}", mig.bogus);
            if job.is_none() {
                for p in 0..JPAGES {
                    prop_assert!(!cma.is_isolated(JBASE + p as u64));
                }
            }
        }
        if let Some(mut j) = job.take() {
            cma.abort(&mut j);
        }
        // Nothing isolated remains: every idle page is lendable again.
        let s = cma.stats();
        let mut lendable = 0;
        while cma.lend_page().is_some() {
            lendable += 1;
        }
        prop_assert_eq!(lendable, s.idle);
    }

    /// With the Linux policy an allocation fails (`Busy`) exactly when every
    /// candidate range (aligned, not allocated) holds a pinned lent page,
    /// and fails with `NoSpace` only when there is no candidate; otherwise
    /// it returns the first candidate without a pinned page.
    #[test]
    fn model_fails_only_when_every_candidate_is_pinned(
        lend in 0usize..=64,
        pins in proptest::collection::btree_set(0usize..64, 0..12),
        prealloc in proptest::collection::vec((0usize..64, 1usize..8), 0..4),
        count in 1usize..=20,
    ) {
        const BASE: Pfn = Pfn(0x10005);
        let mut cma = CmaArea::new(BASE, 64);
        let mut mig = FakeMigrator::default();
        let mut used = [false; 64];
        for (at, n) in prealloc {
            // Allocate exactly at `at` by pinning nothing and picking the
            // fit: allocations with alignment 1 from the first fit.
            if at + n <= 64 && used[at..at + n].iter().all(|u| !u) {
                let before: Vec<usize> = (0..64).filter(|&i| !used[i]).collect();
                if before.first() == Some(&at) {
                    cma.alloc(&mut mig, n, 1).unwrap();
                    used[at..at + n].iter_mut().for_each(|u| *u = true);
                }
            }
        }
        for _ in 0..lend {
            if let Some(p) = cma.lend_page() {
                mig.in_use.insert(p);
            }
        }
        mig.pinned = pins.iter().map(|&p| BASE + p as u64).collect();
        let align = linux_cma_align_pages(count);
        let candidates: Vec<usize> = (0..64)
            .filter(|&s| {
                (BASE + s as u64).0.is_multiple_of(align as u64)
                    && s + count <= 64
                    && used[s..s + count].iter().all(|u| !u)
            })
            .collect();
        let unmovable = |s: usize| {
            (s..s + count).any(|i| {
                let p = BASE + i as u64;
                mig.in_use.contains(&p) && mig.pinned.contains(&p)
            })
        };
        let want = candidates.iter().copied().find(|&s| !unmovable(s));
        let r = cma.alloc(&mut mig, count, align);
        match want {
            Some(s) => prop_assert_eq!(r, Ok(BASE + s as u64)),
            None if candidates.is_empty() => {
                prop_assert_eq!(r, Err(ContigError::NoSpace { count, align }))
            }
            None => prop_assert_eq!(
                r,
                Err(ContigError::Busy { ranges_given_up: candidates.len() })
            ),
        }
    }
}
