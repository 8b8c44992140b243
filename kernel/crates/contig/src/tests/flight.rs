//! GCMA allocations beside cleancache copies in flight (cleancache's
//! `flight.rs`): a fit with no busy page is preferred, the first fit is
//! taken (and the caller told to wait) when every fit has one.

use super::*;

#[test]
fn gcma_skips_a_fit_with_a_copy_in_flight() {
    let (mut areas, id) = gcma_registry(64, Pfn(0x1000));
    // The lowest free slot is page 0 of the only pool: a put copying it.
    let filling = areas.backend_mut().begin_put(fs(), 1, 0).unwrap();
    let pool = areas.backend().locate_pfn(Pfn(0x1000)).unwrap().0;
    assert_eq!(areas.backend().first_copy_in_flight(pool, 0, 64), Some(0));
    let a = areas.alloc(Select::Id(id), 16, 8, &mut NoMigrator).unwrap();
    // Page 0 is busy: the next aligned fit, pages 8 .. 24.
    assert_eq!(a.pfn, Pfn(0x1008));
    assert_eq!(areas.backend().copies_in_flight(pool, 8, 16), 0);
    // With the rest taken, the only fit holds the busy page: taken, with
    // the copy still in flight on it (its caller waits for it before using
    // the pages).
    let rest = areas.alloc(Select::Id(id), 40, 8, &mut NoMigrator).unwrap();
    assert_eq!(rest.pfn, Pfn(0x1018));
    let whole_rest = areas.alloc(Select::Id(id), 8, 8, &mut NoMigrator).unwrap();
    assert_eq!(whole_rest.pfn, Pfn(0x1000));
    assert_eq!(areas.backend().copies_in_flight(pool, 0, 8), 1);
    areas
        .backend_mut()
        .finish_put(filling.fill(&content(1, 0, 1)));
    assert_eq!(areas.backend().copies_in_flight(pool, 0, 64), 0);
    // The copy was taken back in flight: dropped, never retrievable.
    assert!(!areas.backend().contains(fs(), 1, 0));
    areas.free(a).unwrap();
    areas.free(whole_rest).unwrap();
    areas.free(rest).unwrap();
    assert_eq!(areas.check(), Ok(()));
    assert_eq!(areas.backend().check_invariants(), Ok(()));
}

/// A registry of 64 pages whose every slot holds a copy, and puts in
/// flight on the pages `busy` (each put into the one slot freed for it).
fn busy_at(busy: &[u32]) -> (Areas, AreaId, Vec<cleancache::PutSlot>) {
    let (mut areas, id) = gcma_registry(64, Pfn(0x1000));
    let cc = areas.backend_mut();
    for k in 0..64 {
        cc.put_page(fs(), 1, k, &content(1, k, 1));
    }
    let tickets = busy
        .iter()
        .map(|&k| {
            cc.invalidate_page(fs(), 1, k);
            cc.begin_put(fs(), 2, k).unwrap()
        })
        .collect();
    (areas, id, tickets)
}

#[test]
fn gcma_skips_at_most_max_copy_skips_busy_pages() {
    let every_8 = |n: usize| (0..n as u32).map(|k| 8 * k).collect::<Vec<_>>();
    // Busy pages 0, 8, .. 8 * MAX_COPY_SKIPS: more busy fits of 8 aligned
    // pages than skips, so the first fit, pages 0 .. 8.
    let (mut areas, id, tickets) = busy_at(&every_8(MAX_COPY_SKIPS + 1));
    let pool = areas.backend().locate_pfn(Pfn(0x1000)).unwrap().0;
    let busy: Vec<u32> = (0..64)
        .filter(|&p| areas.backend().copies_in_flight(pool, p as usize, 1) == 1)
        .collect();
    assert_eq!(busy, every_8(MAX_COPY_SKIPS + 1));
    let a = areas.alloc(Select::Id(id), 8, 8, &mut NoMigrator).unwrap();
    assert_eq!(a.pfn, Pfn(0x1000));
    for t in tickets {
        areas.backend_mut().finish_put(t.fill(&content(2, 0, 1)));
    }
    areas.free(a).unwrap();
    assert_eq!(areas.backend().check_invariants(), Ok(()));
    // One busy fit fewer: the fit after the last busy one.
    let (mut areas, id, tickets) = busy_at(&every_8(MAX_COPY_SKIPS));
    let a = areas.alloc(Select::Id(id), 8, 8, &mut NoMigrator).unwrap();
    assert_eq!(a.pfn, Pfn(0x1000 + 8 * MAX_COPY_SKIPS as u64));
    for t in tickets {
        areas.backend_mut().finish_put(t.fill(&content(2, 0, 1)));
    }
    areas.free(a).unwrap();
    assert_eq!(areas.backend().check_invariants(), Ok(()));
}
