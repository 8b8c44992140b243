//! Explicit-range allocation (`Areas::alloc_range`): every error, all or
//! nothing, cached copies dropped, frees unchanged, and a model test.

use super::*;
use proptest::prelude::*;

/// gcma 32 pages at 0x1000, a second gcma 16 pages right after it at
/// 0x1020 (so a range can straddle two areas), cma 32 at 0x2000, carveout 16
/// at 0x3000.
fn areas4() -> (Areas, [AreaId; 4]) {
    let (mut areas, g) = gcma_registry(32, Pfn(0x1000));
    // SAFETY: freshly leaked memory of 16 pages, never freed, touched by
    // nobody else.
    let g2 = unsafe { areas.add_gcma_memory("gcma2", mem(16), Pfn(0x1020), 16) }.unwrap();
    let c = areas.add_cma("cma", Pfn(0x2000), 32).unwrap();
    let v = areas.add_carveout("carve", Pfn(0x3000), 16).unwrap();
    (areas, [g, g2, c, v])
}

#[test]
fn each_error_is_distinct_and_changes_nothing() {
    let (mut areas, [g, g2, c, v]) = areas4();
    let before: Vec<_> = [g, g2, c, v]
        .map(|id| areas.stats(id).unwrap().allocated)
        .into();
    assert_eq!(
        areas.alloc_range(Pfn(0x1000), 0),
        Err(ContigError::ZeroCount)
    );
    // Overlaps no area: below, between, above, and a wrapping range.
    for (pfn, count) in [(0x10, 4), (0x1030, 16), (0x4000, 1), (u64::MAX, 2)] {
        assert_eq!(
            areas.alloc_range(Pfn(pfn), count),
            Err(ContigError::RangeOutside {
                pfn: Pfn(pfn),
                count
            }),
            "{pfn:#x}+{count}"
        );
    }
    // Straddles gcma and gcma2; runs past the carveout's end; starts before
    // the CMA area.
    for (pfn, count) in [(0x101e, 4), (0x300e, 4), (0x1ffe, 4)] {
        assert_eq!(
            areas.alloc_range(Pfn(pfn), count),
            Err(ContigError::RangeSpansAreas {
                pfn: Pfn(pfn),
                count
            }),
            "{pfn:#x}+{count}"
        );
    }
    assert_eq!(
        areas.alloc_range(Pfn(0x2004), 4),
        Err(ContigError::RangeInCma {
            pfn: Pfn(0x2004),
            count: 4
        })
    );
    let after: Vec<_> = [g, g2, c, v]
        .map(|id| areas.stats(id).unwrap().allocated)
        .into();
    assert_eq!(before, after);
    areas.check().unwrap();
}

#[test]
fn partly_allocated_range_is_refused_whole() {
    let (mut areas, [g, _, _, v]) = areas4();
    fill_cleancache(&mut areas, |b| b);
    let cached = areas.backend().stats().cached_now;
    for (id, base) in [(g, 0x1000), (v, 0x3000)] {
        let a = areas.alloc_range(Pfn(base + 6), 2).unwrap();
        assert_eq!((a.area, a.pfn, a.count), (id, Pfn(base + 6), 2));
        // 4..12 holds the allocated 6 and 7.
        assert_eq!(
            areas.alloc_range(Pfn(base + 4), 8),
            Err(ContigError::RangeAllocated {
                pfn: Pfn(base + 4),
                count: 8,
                first: Pfn(base + 6)
            })
        );
        assert_eq!(areas.stats(id).unwrap().allocated, 2, "nothing else taken");
        // The neighbours on both sides are still free.
        let left = areas.alloc_range(Pfn(base), 6).unwrap();
        let right = areas.alloc_range(Pfn(base + 8), 8).unwrap();
        for x in [a, left, right] {
            areas.free(x).unwrap();
        }
        assert_eq!(areas.stats(id).unwrap().allocated, 0);
    }
    // The GCMA ranges dropped exactly the copies of the pages they took:
    // 2 + 6 + 8 = 16 pages of gcma, and the refused range dropped none.
    assert_eq!(areas.stats(g).unwrap().dropped_copies, 16);
    assert_eq!(areas.backend().stats().cached_now, cached - 16);
    areas.check().unwrap();
}

#[test]
fn gcma_range_drops_exactly_its_copies_and_frees_as_usual() {
    let (mut areas, [g, g2, ..]) = areas4();
    fill_cleancache(&mut areas, |b| b);
    let a = areas.alloc_range(Pfn(0x1024), 5).unwrap();
    assert_eq!(a.area, g2);
    for p in 0x1020..0x1030 {
        let want = if (0x1024..0x1029).contains(&p) {
            PfnState::Allocated
        } else {
            areas.pfn_state(Pfn(p)).unwrap().1
        };
        assert_eq!(areas.pfn_state(Pfn(p)).unwrap(), (g2, want));
        if !(0x1024..0x1029).contains(&p) {
            assert!(matches!(want, PfnState::Cached { .. }), "{p:#x}: {want:?}");
        }
    }
    assert_eq!(areas.stats(g).unwrap().allocated, 0);
    // Free is the ordinary free, with its errors.
    let part = Allocation { count: 4, ..a };
    assert_eq!(
        areas.free(part),
        Err(ContigError::PartialFree {
            pfn: Pfn(0x1024),
            count: 4
        })
    );
    areas.free(a).unwrap();
    assert_eq!(
        areas.free(a),
        Err(ContigError::DoubleFree {
            pfn: Pfn(0x1024),
            count: 5
        })
    );
    // The whole area is one range again, and a search-based allocation can
    // take it.
    let all = areas
        .alloc(Select::Id(g2), 16, 16, &mut NoMigrator)
        .unwrap();
    assert_eq!(all.pfn, Pfn(0x1020));
    areas.free(all).unwrap();
    areas.check().unwrap();
}

#[test]
fn range_refused_by_the_pool_rolls_back() {
    let (mut areas, _, g) = faulty_gcma(16, Pfn(0x400));
    areas.backend_mut().fail_take_in = Some(2);
    assert!(matches!(
        areas.alloc_range(Pfn(0x402), 6),
        Err(ContigError::Pool(_))
    ));
    assert_eq!(areas.stats(g).unwrap().allocated, 0);
    areas.check().unwrap();
    let a = areas.alloc_range(Pfn(0x402), 6).unwrap();
    areas.free(a).unwrap();
    areas.check().unwrap();
}

proptest! {
    /// Against a model (a set of allocated pfns per area): every explicit
    /// range succeeds exactly when it lies inside one GCMA area or carveout
    /// and holds no allocated pfn, and then allocates exactly its pfns.
    #[test]
    fn model(ops in prop::collection::vec((0x0ff0u64..0x3020, 1usize..24, any::<bool>()), 1..60)) {
        let (mut areas, _) = areas4();
        fill_cleancache(&mut areas, |b| b);
        let spans: Vec<(Pfn, Pfn, bool)> = areas.ids().map(|id| {
            let (b, n) = areas.span(id).unwrap();
            (b, b + n as u64, areas.kind(id) != Some(AreaKind::Cma))
        }).collect();
        let mut used = BTreeSet::new();
        let mut live: Vec<Allocation> = Vec::new();
        for (pfn, count, free_one) in ops {
            if free_one && !live.is_empty() {
                let a = live.swap_remove(pfn as usize % live.len());
                areas.free(a).unwrap();
                for p in pfns(a.pfn..a.pfn + a.count as u64) {
                    used.remove(&p);
                }
                continue;
            }
            let pfn = Pfn(pfn);
            let end = pfn + count as u64;
            let inside = spans.iter().find(|(b, e, _)| pfn >= *b && end <= *e);
            let r = areas.alloc_range(pfn, count);
            match inside {
                Some((_, _, true)) if pfns(pfn..end).all(|p| !used.contains(&p)) => {
                    let a = r.unwrap();
                    prop_assert_eq!((a.pfn, a.count), (pfn, count));
                    used.extend(pfns(pfn..end));
                    live.push(a);
                }
                Some((_, _, true)) => {
                    let first = pfns(pfn..end).find(|p| used.contains(p)).unwrap();
                    prop_assert_eq!(r, Err(ContigError::RangeAllocated { pfn, count, first }));
                }
                Some((_, _, false)) => prop_assert_eq!(r, Err(ContigError::RangeInCma { pfn, count })),
                None if spans.iter().any(|(b, e, _)| pfn < *e && *b < end) => {
                    prop_assert_eq!(r, Err(ContigError::RangeSpansAreas { pfn, count }))
                }
                None => prop_assert_eq!(r, Err(ContigError::RangeOutside { pfn, count })),
            }
            for id in areas.ids() {
                let (b, n) = areas.span(id).unwrap();
                let want = pfns(b..b + n as u64).filter(|p| used.contains(p)).count();
                prop_assert_eq!(areas.stats(id).unwrap().allocated, want);
            }
            prop_assert!(areas.check().is_ok());
        }
    }
}
