//! Unit tests: every error of the unified interface, GCMA rollback under
//! fault injection, CMA migration outcomes, printers and the report.

use super::*;
use std::format;
use std::string::String;

/// A registry with one area of each kind: gcma 32 pages at 0x1000, cma 32
/// at 0x2000, carveout 16 at 0x3000.
fn mixed() -> (Areas, AreaId, AreaId, AreaId) {
    let (mut areas, g) = gcma_registry(32, Pfn(0x1000));
    let c = areas.add_cma("cma", Pfn(0x2000), 32).unwrap();
    let v = areas.add_carveout("carve", Pfn(0x3000), 16).unwrap();
    (areas, g, c, v)
}

#[test]
fn zero_count_too_large_bad_alignment_each_kind() {
    let (mut areas, g, c, v) = mixed();
    let m = &mut NoMigrator;
    for id in [g, c, v] {
        let size = areas.span(id).unwrap().1;
        let sel = Select::Id(id);
        assert_eq!(areas.alloc(sel, 0, 1, m), Err(ContigError::ZeroCount));
        assert_eq!(
            areas.alloc(sel, size + 1, 1, m),
            Err(ContigError::TooLarge {
                count: size + 1,
                size
            })
        );
        for align in [0, 3, 6, size * 2] {
            assert_eq!(
                areas.alloc(sel, 1, align, m),
                Err(ContigError::BadAlignment { align, size })
            );
        }
        assert_eq!(areas.stats(id).unwrap().failures, 1 + 1 + 4);
    }
}

#[test]
fn no_space_each_kind() {
    let (mut areas, g, c, v) = mixed();
    let m = &mut NoMigrator;
    for id in [g, c, v] {
        let size = areas.span(id).unwrap().1;
        let a = areas.alloc(Select::Id(id), size - 1, 1, m).unwrap();
        assert_eq!(
            areas.alloc(Select::Id(id), 2, 1, m),
            Err(ContigError::NoSpace { count: 2, align: 1 })
        );
        let last = areas.alloc(Select::Id(id), 1, 1, m).unwrap();
        assert_eq!(last.pfn, a.pfn + (size - 1) as u64);
        areas.free(a).unwrap();
        areas.free(last).unwrap();
        assert_eq!(areas.stats(id).unwrap().allocated, 0);
    }
}

#[test]
fn free_errors_each_kind() {
    let (mut areas, g, c, v) = mixed();
    let m = &mut NoMigrator;
    for id in [g, c, v] {
        let a = areas.alloc(Select::Id(id), 4, 4, m).unwrap();
        let b = areas.alloc(Select::Id(id), 4, 1, m).unwrap();
        assert_eq!(b.pfn, a.pfn + 4);
        let with = |pfn: Pfn, count: usize| Allocation {
            area: id,
            pfn,
            count,
        };
        // A part of an allocation, and a range spanning two.
        let e = ContigError::PartialFree {
            pfn: a.pfn + 1,
            count: 2,
        };
        assert_eq!(areas.free(with(a.pfn + 1, 2)), Err(e));
        assert_eq!(
            areas.free(with(a.pfn, 8)),
            Err(ContigError::PartialFree {
                pfn: a.pfn,
                count: 8
            })
        );
        assert_eq!(
            areas.free(with(a.pfn, 3)),
            Err(ContigError::PartialFree {
                pfn: a.pfn,
                count: 3
            })
        );
        // Never allocated: idle pages, and pages outside the area.
        let idle = a.pfn + 10;
        assert_eq!(
            areas.free(with(idle, 1)),
            Err(ContigError::NotAllocated {
                pfn: idle,
                count: 1
            })
        );
        assert_eq!(
            areas.free(with(Pfn(0x9000), 1)),
            Err(ContigError::NotAllocated {
                pfn: Pfn(0x9000),
                count: 1
            })
        );
        assert_eq!(areas.free(with(a.pfn, 0)), Err(ContigError::ZeroCount));
        // The failed frees changed nothing.
        assert_eq!(areas.stats(id).unwrap().allocated, 8);
        areas.free(a).unwrap();
        assert_eq!(
            areas.free(a),
            Err(ContigError::DoubleFree {
                pfn: a.pfn,
                count: 4
            })
        );
        // A new allocation over the freed range makes it allocated again.
        let a2 = areas.alloc(Select::Id(id), 4, 4, m).unwrap();
        assert_eq!(a2, a);
        areas.free(a2).unwrap();
        areas.free(b).unwrap();
        let s = areas.stats(id).unwrap();
        assert_eq!((s.allocations, s.frees, s.allocated), (3, 3, 0));
    }
    areas.check().unwrap();
}

#[test]
fn unknown_area() {
    let (mut areas, g, _, _) = mixed();
    let m = &mut NoMigrator;
    assert_eq!(
        areas.alloc(Select::Name("nope"), 1, 1, m),
        Err(ContigError::UnknownArea)
    );
    let (mut only_gcma, _) = gcma_registry(4, Pfn(0));
    assert_eq!(
        only_gcma.alloc(Select::Kind(AreaKind::Cma), 1, 1, m),
        Err(ContigError::UnknownArea)
    );
    // An allocation from a registry with more areas than this one.
    let a = areas.alloc(Select::Name("carve"), 1, 1, m).unwrap();
    assert_eq!(only_gcma.free(a), Err(ContigError::UnknownArea));
    assert_eq!(only_gcma.stats(a.area), Err(ContigError::UnknownArea));
    assert_eq!(
        areas.set_cma_max_passes(g, 3),
        Err(ContigError::UnknownArea),
        "not a CMA area"
    );
}

#[test]
fn registration_errors() {
    let (mut areas, _, _, _) = mixed();
    assert_eq!(
        areas.add_cma("cma", Pfn(0x5000), 4),
        Err(ContigError::DuplicateName)
    );
    let overlap = ContigError::BadRange {
        base_pfn: Pfn(0x101f),
        pages: 2,
    };
    assert_eq!(areas.add_carveout("x", Pfn(0x101f), 2), Err(overlap));
    assert_eq!(
        areas.add_carveout("x", Pfn(0x5000), 0),
        Err(ContigError::BadRange {
            base_pfn: Pfn(0x5000),
            pages: 0
        })
    );
    // SAFETY: leaked memory; the call is refused before using it.
    let r = unsafe { areas.add_gcma_memory("g2", mem(4), Pfn(0x2002), 4) };
    assert_eq!(
        r,
        Err(ContigError::BadRange {
            base_pfn: Pfn(0x2002),
            pages: 4
        })
    );
    assert_eq!(areas.backend().pool_count(), 1, "refused area adds no pool");
    for i in areas.len()..MAX_AREAS {
        areas
            .add_carveout(&format!("c{i}"), Pfn(0x10_000 + 16 * i as u64), 16)
            .unwrap();
    }
    assert_eq!(
        areas.add_carveout("one-more", Pfn(0x90_000), 16),
        Err(ContigError::TooManyAreas)
    );
    assert_eq!(areas.len(), MAX_AREAS);
    assert_eq!(
        areas.find("c5").map(|id| areas.kind(id)),
        Some(Some(AreaKind::Carveout))
    );
}

#[test]
fn gcma_area_needs_a_fully_lendable_pool() {
    let mut cc = mounted();
    // SAFETY: leaked memory of 4 pages, never freed.
    let pool = unsafe { cc.add_pool(mem(4), 4, Pfn(0x40)) }.unwrap();
    cc.take_back(pool, 2).unwrap();
    let mut areas = Areas::new(cc);
    assert_eq!(
        areas.add_gcma("g", pool),
        Err(ContigError::Pool(PoolError::AlreadyTakenBack {
            pool,
            page: 2
        }))
    );
    areas.backend_mut().give_back(pool, 2).unwrap();
    areas.add_gcma("g", pool).unwrap();
}

#[test]
fn not_lent() {
    let (mut areas, _, c, _) = mixed();
    let m = &mut NoMigrator;
    let a = areas.alloc(Select::Id(c), 2, 1, m).unwrap();
    assert_eq!(
        areas.return_page(a.pfn),
        Err(ContigError::NotLent { pfn: a.pfn })
    );
    assert_eq!(
        areas.return_page(Pfn(0x1000)),
        Err(ContigError::NotLent { pfn: Pfn(0x1000) }),
        "a GCMA pfn is never lent"
    );
    let p = areas.lend_page().unwrap();
    assert_eq!(
        p,
        Pfn(0x2002),
        "lowest idle CMA page, allocated pages skipped"
    );
    areas.return_page(p).unwrap();
    assert_eq!(areas.return_page(p), Err(ContigError::NotLent { pfn: p }));
    let s = areas.stats(c).unwrap();
    assert_eq!((s.lends, s.returns, s.lent), (1, 1, 0));
}

#[test]
fn cma_busy_when_every_range_is_pinned() {
    let mut areas: Areas = Areas::new(mounted());
    let c = areas.add_cma("cma", Pfn(0x2000), 16).unwrap();
    let mut mig = FakeMigrator::default();
    for _ in 0..16 {
        mig.in_use.insert(areas.lend_page().unwrap());
    }
    assert_eq!(areas.lend_page(), None, "everything lent");
    // One pinned page in every 4-page aligned range.
    for r in 0..4 {
        mig.pinned.insert(Pfn(0x2000 + 4 * r + 1));
    }
    assert_eq!(
        areas.alloc(Select::Id(c), 4, 4, &mut mig),
        Err(ContigError::Busy { ranges_given_up: 4 })
    );
    let s = areas.stats(c).unwrap();
    assert_eq!(s.ranges_given_up, 4);
    assert_eq!(s.busy_retries, 4 * DEFAULT_MAX_PASSES as u64);
    assert_eq!(s.failures, 1);
    // The unpinned pages of the given-up ranges were migrated, once each.
    assert_eq!(s.migrated, 12);
    assert_eq!(s.lent, 4);
    assert!(mig.migrated.values().all(|&n| n == 1));
    assert!(mig.bogus.is_empty());
    // Unpin one range: the next attempt migrates its last lent page only.
    mig.pinned.remove(&Pfn(0x2009));
    let a = areas.alloc(Select::Id(c), 4, 4, &mut mig).unwrap();
    assert_eq!(a.pfn, Pfn(0x2008));
    assert_eq!(mig.migrated.get(&Pfn(0x2009)), Some(&1));
    assert_eq!(areas.stats(c).unwrap().migrated, 13);
}

#[test]
fn cma_skips_pinned_range_by_alignment() {
    let mut areas: Areas = Areas::new(mounted());
    let c = areas.add_cma("cma", Pfn(0x2000), 32).unwrap();
    let mut mig = FakeMigrator::default();
    for _ in 0..32 {
        mig.in_use.insert(areas.lend_page().unwrap());
    }
    mig.pinned.insert(Pfn(0x2003));
    areas.set_cma_max_passes(c, 2).unwrap();
    // Candidates 0x2000 (pinned), 0x2002 (pinned), 0x2004: taken.
    let a = areas.alloc(Select::Id(c), 4, 2, &mut mig).unwrap();
    assert_eq!(a.pfn, Pfn(0x2004));
    let s = areas.stats(c).unwrap();
    assert_eq!((s.ranges_given_up, s.busy_retries), (2, 4));
    // 0x2000..0x2003 minus the pin, then 0x2004..0x2008: each migrated once.
    assert_eq!(s.migrated, 3 + 4);
    assert!(mig.migrated.values().all(|&n| n == 1));
}

#[test]
fn cma_transient_busy_is_retried() {
    let mut areas: Areas = Areas::new(mounted());
    let c = areas.add_cma("cma", Pfn(0x2000), 8).unwrap();
    let mut mig = FakeMigrator::default();
    for _ in 0..8 {
        mig.in_use.insert(areas.lend_page().unwrap());
    }
    mig.busy_for.insert(Pfn(0x2001), DEFAULT_MAX_PASSES - 1);
    let a = areas.alloc(Select::Id(c), 8, 1, &mut mig).unwrap();
    assert_eq!(a.pfn, Pfn(0x2000));
    let s = areas.stats(c).unwrap();
    assert_eq!(
        (s.migrated, s.busy_retries, s.ranges_given_up),
        (8, DEFAULT_MAX_PASSES as u64 - 1, 0)
    );
    assert!(mig.in_use.is_empty());
}

#[test]
fn cma_migration_out_of_memory() {
    let mut areas: Areas = Areas::new(mounted());
    let c = areas.add_cma("cma", Pfn(0x2000), 8).unwrap();
    let mut mig = FakeMigrator::default();
    for _ in 0..8 {
        mig.in_use.insert(areas.lend_page().unwrap());
    }
    mig.no_memory.insert(Pfn(0x2002));
    assert_eq!(
        areas.alloc(Select::Id(c), 4, 1, &mut mig),
        Err(ContigError::MigrationNoMemory { pfn: Pfn(0x2002) })
    );
    let s = areas.stats(c).unwrap();
    assert_eq!((s.migrated, s.failures, s.allocated, s.lent), (2, 1, 0, 6));
    mig.no_memory.clear();
    areas.alloc(Select::Id(c), 4, 1, &mut mig).unwrap();
}

#[test]
fn gcma_alloc_drops_cached_copies_and_aligns_physically() {
    let (mut areas, g) = gcma_registry(32, Pfn(0x1003));
    fill_cleancache(&mut areas, |b| b);
    let a = areas
        .alloc(Select::Kind(AreaKind::Gcma), 8, 8, &mut NoMigrator)
        .unwrap();
    assert_eq!(a.pfn, Pfn(0x1008), "aligned pfn, not aligned index");
    let s = areas.stats(g).unwrap();
    assert_eq!((s.allocated, s.cached, s.dropped_copies), (8, 24, 8));
    let cc = areas.backend_mut();
    assert_eq!(cc.stats().cached_now, 24);
    assert_eq!(cc.stats().taken_back, 8);
    // Copies in the taken pages are gone; others still hit.
    let mut out = [0u8; PAGE_SIZE as usize];
    let hits = (0..32)
        .filter(|&i| cc.get_page(fs(), 1000, i, &mut out))
        .count();
    assert_eq!(hits, 24);
    for p in pfns(a.pfn..a.pfn + 8) {
        assert_eq!(areas.pfn_state(p), Some((g, PfnState::Allocated)));
    }
    areas.free(a).unwrap();
    assert_eq!(areas.backend().stats().lendable_now, 32);
    areas.check().unwrap();
}

#[test]
fn gcma_alloc_rolls_back_on_take_back_failure() {
    let (mut areas, pool, g) = faulty_gcma(16, Pfn(0x400));
    fill_cleancache(&mut areas, |f| &mut f.cc);
    let keep = areas.alloc(Select::Id(g), 2, 1, &mut NoMigrator).unwrap();
    // The 4th take-back of the next allocation fails.
    areas.backend_mut().fail_take_in = Some(3);
    let r = areas.alloc(Select::Id(g), 8, 1, &mut NoMigrator);
    assert_eq!(
        r,
        Err(ContigError::Pool(PoolError::AlreadyTakenBack {
            pool,
            page: 5
        }))
    );
    // The three pages taken before the fault were given back.
    for page in 2..16 {
        assert_ne!(
            areas.backend().cc.page_state(pool, page),
            Ok(PageState::TakenBack)
        );
    }
    let st = areas.backend().cc.stats();
    assert_eq!((st.taken_back, st.given_back), (2 + 3, 3));
    assert_eq!(st.lendable_now, 14);
    let s = areas.stats(g).unwrap();
    assert_eq!((s.allocated, s.failures, s.allocations), (2, 1, 1));
    areas.check().unwrap();
    // Without the fault the same request succeeds at the same place.
    let a = areas.alloc(Select::Id(g), 8, 1, &mut NoMigrator).unwrap();
    assert_eq!(a.pfn, Pfn(0x402));
    areas.free(keep).unwrap();
    areas.check().unwrap();
}

#[test]
fn gcma_free_rolls_back_on_give_back_failure() {
    let (mut areas, pool, g) = faulty_gcma(8, Pfn(0x800));
    let a = areas.alloc(Select::Id(g), 6, 1, &mut NoMigrator).unwrap();
    areas.backend_mut().fail_give_in = Some(4);
    assert_eq!(
        areas.free(a),
        Err(ContigError::Pool(PoolError::NotTakenBack { pool, page: 4 }))
    );
    // Every page of the allocation is still taken back, the allocation live.
    for page in 0..6 {
        assert_eq!(
            areas.backend().cc.page_state(pool, page),
            Ok(PageState::TakenBack)
        );
    }
    assert_eq!(areas.stats(g).unwrap().allocated, 6);
    assert_eq!(areas.allocations(g), vec![a]);
    areas.check().unwrap();
    areas.free(a).unwrap();
    assert_eq!(areas.backend().cc.stats().lendable_now, 8);
    areas.check().unwrap();
}

#[test]
fn gcma_alloc_over_a_page_taken_behind_its_back_changes_nothing() {
    let (mut areas, g) = gcma_registry(8, Pfn(0x800));
    fill_cleancache(&mut areas, |cc| cc);
    let pool = areas.backend().locate_pfn(Pfn(0x800)).unwrap().0;
    // Someone took a page back behind GCMA's back: cleancache's range
    // take-back refuses the whole range before touching any page.
    areas.backend_mut().take_back(pool, 5).unwrap();
    assert_eq!(
        areas.alloc(Select::Id(g), 8, 1, &mut NoMigrator),
        Err(ContigError::Pool(PoolError::AlreadyTakenBack {
            pool,
            page: 5
        }))
    );
    let st = areas.backend().stats();
    assert_eq!((st.cached_now, st.taken_back, st.given_back), (7, 1, 0));
    assert_eq!(st.dropped_by_take_back, 1, "no copy dropped by the refusal");
    let s = areas.stats(g).unwrap();
    assert_eq!((s.allocated, s.failures, s.dropped_copies), (0, 1, 0));
    areas.backend().check_invariants().unwrap();
    areas.backend_mut().give_back(pool, 5).unwrap();
    let a = areas.alloc(Select::Id(g), 8, 1, &mut NoMigrator).unwrap();
    assert_eq!(areas.stats(g).unwrap().dropped_copies, 7);
    areas.free(a).unwrap();
    areas.check().unwrap();
    areas.backend().check_invariants().unwrap();
}

#[test]
fn gcma_free_refuses_pages_not_taken_back() {
    let (mut areas, g) = gcma_registry(8, Pfn(0x800));
    let a = areas.alloc(Select::Id(g), 4, 1, &mut NoMigrator).unwrap();
    let pool = areas.backend().locate_pfn(Pfn(0x800)).unwrap().0;
    // Someone gave a page back behind GCMA's back: the free is refused whole.
    areas.backend_mut().give_back(pool, 2).unwrap();
    assert_eq!(
        areas.free(a),
        Err(ContigError::Pool(PoolError::NotTakenBack { pool, page: 2 }))
    );
    assert_eq!(areas.check(), Err(Pfn(0x802)));
    assert_eq!(areas.pfn_state(Pfn(0x803)), Some((g, PfnState::Allocated)));
    assert_eq!(
        areas.backend().page_state(pool, 3),
        Ok(PageState::TakenBack)
    );
}

#[test]
fn select_by_kind_falls_through() {
    let mut areas: Areas = Areas::new(mounted());
    let c1 = areas.add_carveout("small", Pfn(0x100), 4).unwrap();
    let c2 = areas.add_carveout("big", Pfn(0x200), 16).unwrap();
    let m = &mut NoMigrator;
    let a = areas
        .alloc(Select::Kind(AreaKind::Carveout), 8, 1, m)
        .unwrap();
    assert_eq!((a.area, a.pfn), (c2, Pfn(0x200)));
    let b = areas
        .alloc(Select::Kind(AreaKind::Carveout), 4, 1, m)
        .unwrap();
    assert_eq!(b.area, c1);
    assert_eq!(
        areas.alloc(Select::Kind(AreaKind::Carveout), 9, 1, m),
        Err(ContigError::NoSpace { count: 9, align: 1 }),
        "error of the last area tried"
    );
    assert_eq!(areas.lend_page(), None, "carveouts are never lent");
}

#[test]
fn errors_display_distinct() {
    let all = [
        ContigError::ZeroCount,
        ContigError::TooLarge { count: 2, size: 1 },
        ContigError::BadAlignment { align: 3, size: 8 },
        ContigError::NoSpace { count: 1, align: 1 },
        ContigError::DoubleFree {
            pfn: Pfn(1),
            count: 1,
        },
        ContigError::NotAllocated {
            pfn: Pfn(1),
            count: 1,
        },
        ContigError::PartialFree {
            pfn: Pfn(1),
            count: 1,
        },
        ContigError::Busy { ranges_given_up: 1 },
        ContigError::MigrationNoMemory { pfn: Pfn(1) },
        ContigError::UnknownArea,
        ContigError::TooManyAreas,
        ContigError::DuplicateName,
        ContigError::BadRange {
            base_pfn: Pfn(1),
            pages: 1,
        },
        ContigError::NotLent { pfn: Pfn(1) },
        ContigError::Pool(PoolError::EmptyPool),
    ];
    let texts: Vec<String> = all.iter().map(|e| format!("{e}")).collect();
    for (i, t) in texts.iter().enumerate() {
        assert!(!t.is_empty());
        assert!(!texts[..i].contains(t), "duplicate message {t}");
    }
}

#[test]
fn table_and_machine_lines() {
    let (mut areas, g, c, _) = mixed();
    let mut mig = FakeMigrator::default();
    for _ in 0..3 {
        mig.in_use.insert(areas.lend_page().unwrap());
    }
    areas.backend_mut().put_page(fs(), 1, 1, &content(1, 1, 1));
    areas.alloc(Select::Id(c), 4, 4, &mut mig).unwrap();
    areas.alloc(Select::Id(g), 2, 1, &mut mig).unwrap();
    let mut t = String::new();
    areas.write_table(&mut t).unwrap();
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[0].starts_with("name ") && lines[0].contains("busy_retries"));
    assert!(
        lines.iter().all(|l| l.len() == lines[0].len()),
        "aligned:\n{t}"
    );
    assert!(lines[2].starts_with("cma ") && lines[2].contains(" cma "));
    let mut m = String::new();
    areas.write_machine(&mut m).unwrap();
    let cma_line = m.lines().nth(1).unwrap();
    assert!(cma_line.starts_with(
        "@area name=cma kind=cma size_pages=32 allocated=4 cached=0 lent=0 migrated=3 \
         busy_retries=0 failures=0 "
    ));
    let gcma_line = m.lines().next().unwrap();
    assert!(gcma_line.starts_with("@area name=gcma kind=gcma size_pages=32 allocated=2 "));
    // The one cached copy was in pool page 0, dropped by the allocation.
    assert!(gcma_line.contains(" cached=0 ") && gcma_line.contains(" dropped_copies=1"));
    let mut r = String::new();
    areas.mem_report().write_machine(&mut r).unwrap();
    assert!(r.starts_with("@memreport total=80 allocated=6 "));
}

#[test]
fn mem_report_example() {
    let (mut areas, g, c, v) = mixed();
    let mut mig = FakeMigrator::default();
    for i in 0..10 {
        areas.backend_mut().put_page(fs(), 7, i, &content(7, i, 0));
    }
    for _ in 0..5 {
        mig.in_use.insert(areas.lend_page().unwrap());
    }
    areas.alloc(Select::Id(g), 4, 1, &mut mig).unwrap();
    areas.alloc(Select::Id(c), 16, 16, &mut mig).unwrap();
    areas.alloc(Select::Id(v), 3, 1, &mut mig).unwrap();
    let r = areas.mem_report();
    // GCMA: 4 allocated (4 copies dropped), 6 cached, 22 idle.
    assert_eq!(
        r.gcma,
        KindReport {
            areas: 1,
            size: 32,
            allocated: 4,
            cached: 6,
            lent: 0,
            idle: 22
        }
    );
    // CMA: the first 16 pages allocated (5 lent ones migrated out).
    assert_eq!((r.cma.allocated, r.cma.lent, r.cma.idle), (16, 0, 16));
    assert_eq!((r.carveout.allocated, r.carveout.idle), (3, 13));
    assert_eq!(r.total(), 80);
    assert_eq!(r.free(), 22 + 16);
    assert_eq!(r.system_total(), 32);
    assert_eq!(r.system_free(), 16);
    assert_eq!(r.contig_guaranteed(), 6 + 22 + 13);
    assert_eq!(r.contig_possible(), 6 + 22 + 13 + 16);
}

/// Host timing of a GCMA allocation as the kernel's demo makes it: 3038
/// pages (12 MiB) from a GCMA area of 16384 pages whose every page holds a
/// cleancache copy, with an observer installed that only looks at the pfns
/// (one range event per allocation); and the carveout's allocation of the same size for
/// comparison. Per page, best of 15. Run with `cargo test --release -p contig
/// --target x86_64-unknown-linux-gnu -- --ignored --nocapture`.
#[test]
#[ignore]
fn bench_gcma_alloc() {
    use std::time::Instant;
    const POOL: usize = 16384;
    const TAKE: usize = 3038;
    struct Look;
    impl cleancache::Observer for Look {
        fn on_page(&mut self, pfn: Pfn, _st: PageState) {
            std::hint::black_box(pfn);
        }
        fn on_range(&mut self, pfn: Pfn, count: usize, _st: PageState) {
            std::hint::black_box((pfn, count));
        }
    }
    let frames = mem(POOL);
    let page = content(1, 1, 1);
    let (mut best_alloc, mut best_free) = (f64::MAX, f64::MAX);
    for round in 0..15u64 {
        let mut areas = Areas::new(mounted());
        // SAFETY: leaked memory of POOL pages; the rounds use it one after
        // another (each registry is dropped before the next is made).
        let g = unsafe { areas.add_gcma_memory("gcma", frames, Pfn(0x40000), POOL) }.unwrap();
        let cc = areas.backend_mut();
        cc.set_observer(Some(Box::new(Look)));
        for i in 0..POOL as u32 {
            cc.put_page(fs(), round * 7 + (i as u64 % 5), i, &page);
        }
        let t = Instant::now();
        let a = areas
            .alloc(Select::Id(g), TAKE, 1, &mut NoMigrator)
            .unwrap();
        let dt = t.elapsed().as_nanos() as f64 / TAKE as f64;
        let t = Instant::now();
        areas.free(a).unwrap();
        let df = t.elapsed().as_nanos() as f64 / TAKE as f64;
        assert_eq!(areas.stats(g).unwrap().dropped_copies, TAKE as u64);
        best_alloc = best_alloc.min(dt);
        best_free = best_free.min(df);
    }
    std::println!(
        "gcma: alloc {best_alloc:.1} ns/page, free {best_free:.1} ns/page ({TAKE} of {POOL} cached pages, best of 15)"
    );
    let (mut best_alloc, mut best_free) = (f64::MAX, f64::MAX);
    for _ in 0..15 {
        let mut areas = Areas::new(mounted());
        let v = areas.add_carveout("carve", Pfn(0x40000), POOL).unwrap();
        let t = Instant::now();
        let a = areas
            .alloc(Select::Id(v), TAKE, 1, &mut NoMigrator)
            .unwrap();
        let dt = t.elapsed().as_nanos() as f64 / TAKE as f64;
        let t = Instant::now();
        areas.free(a).unwrap();
        let df = t.elapsed().as_nanos() as f64 / TAKE as f64;
        best_alloc = best_alloc.min(dt);
        best_free = best_free.min(df);
    }
    std::println!(
        "carveout: alloc {best_alloc:.1} ns/page, free {best_free:.1} ns/page (best of 15)"
    );
}
