//! Unit tests of the frame table and buddy allocator.

use frames::*;

fn table(descs: &mut Vec<FrameDesc>, base: u64) -> FrameTable<'_> {
    FrameTable::new(descs.as_mut_slice(), Pfn(base)).unwrap()
}

fn storage(n: usize) -> Vec<FrameDesc> {
    vec![FrameDesc::ABSENT; n]
}

#[test]
fn descriptor_is_small() {
    assert_eq!(core::mem::size_of::<FrameDesc>(), 24);
    assert_eq!(FrameTable::bytes_for(1000), 24_000);
    assert_eq!(FrameTable::bytes_for_span(Pfn(10)..Pfn(20)), 240);
    assert_eq!(FrameTable::frames_for(262_144), 1536); // 1 GiB of RAM -> 6 MiB of descriptors
    assert_eq!(FrameTable::frames_for(1), 1);
}

#[test]
fn pfn_helpers() {
    assert_eq!(Pfn::from_addr(0x4000_0fff), Pfn(0x40000));
    assert_eq!(Pfn::from_addr_up(0x4000_0001), Pfn(0x40001));
    assert_eq!(Pfn(0x40000).addr(), 0x4000_0000);
    assert_eq!(pfns_within(0x1001..0x5fff), Pfn(2)..Pfn(5));
    assert_eq!(pfns_covering(0x1001..0x5fff), Pfn(1)..Pfn(6));
    assert_eq!(pfns_within(0x1001..0x1002), Pfn(2)..Pfn(2));
    assert!(Pfn(1024).is_aligned(10) && !Pfn(1536).is_aligned(10) && Pfn(1536).is_aligned(9));
}

#[test]
fn state_table_is_dense() {
    for (i, s) in FrameState::ALL.iter().enumerate() {
        assert_eq!(*s as usize, i);
    }
    assert_eq!(FrameState::COUNT, 9);
    assert_eq!(FrameState::PageCache.name(), "pagecache");
    assert!(
        !FrameState::Free.is_owned()
            && !FrameState::Absent.is_owned()
            && FrameState::Heap.is_owned()
    );
}

#[test]
fn new_table_is_all_absent() {
    let mut s = storage(100);
    s[3] = FrameDesc::ABSENT; // storage contents do not matter
    let t = table(&mut s, 0x40000);
    assert_eq!(t.stats().state(FrameState::Absent), 100);
    assert_eq!(t.free_frames(), 0);
    assert_eq!(t.span(), Pfn(0x40000)..Pfn(0x40064));
    assert!(t.state(Pfn(0x3ffff)).is_none());
    t.verify().unwrap();
}

#[test]
fn new_uninit_initialises_everything() {
    let mut mem: Vec<core::mem::MaybeUninit<FrameDesc>> = Vec::with_capacity(64);
    mem.resize_with(64, core::mem::MaybeUninit::uninit);
    let mut t = FrameTable::new_uninit(&mut mem, Pfn(64)).unwrap();
    assert_eq!(t.add_free_range(Pfn(64)..Pfn(128)).unwrap(), 64);
    assert_eq!(t.free_blocks(6), 1);
    t.verify().unwrap();
}

#[test]
fn add_free_range_builds_maximal_blocks() {
    // 2048 frames at an aligned base: two order-10 blocks.
    let mut s = storage(2048);
    let mut t = table(&mut s, 0);
    assert_eq!(t.add_free_range(Pfn(0)..Pfn(2048)).unwrap(), 2048);
    assert_eq!(t.free_blocks(MAX_ORDER), 2);
    assert_eq!((0..MAX_ORDER).map(|o| t.free_blocks(o)).sum::<u64>(), 0);
    assert_eq!(t.free_frames(), 2048);
    t.verify().unwrap();
}

#[test]
fn unaligned_start_and_end() {
    // pfns [3, 21): 3 | 4..8 | 8..16 | 16..20 | 20
    let mut s = storage(32);
    let mut t = table(&mut s, 0);
    assert_eq!(t.add_free_range(Pfn(3)..Pfn(21)).unwrap(), 18);
    let st = t.stats();
    assert_eq!(st.free_blocks[0], 2);
    assert_eq!(st.free_blocks[2], 2);
    assert_eq!(st.free_blocks[3], 1);
    assert_eq!(st.free, 18);
    assert_eq!(st.state(FrameState::Absent), 14);
    t.verify().unwrap();
    // An order-3 block must be the aligned one at 8.
    assert_eq!(t.alloc(3, FrameState::Kernel).unwrap(), Pfn(8));
    assert_eq!(
        t.alloc(3, FrameState::Kernel),
        Err(FrameError::OutOfMemory { order: 3 })
    );
    t.verify().unwrap();
}

#[test]
fn adjacent_ranges_coalesce() {
    let mut s = storage(1024);
    let mut t = table(&mut s, 1024);
    t.add_free_range(Pfn(1024)..Pfn(1536)).unwrap();
    t.add_free_range(Pfn(1536)..Pfn(2048)).unwrap();
    assert_eq!(t.free_blocks(MAX_ORDER), 1);
    // Adding again adds nothing.
    assert_eq!(t.add_free_range(Pfn(1024)..Pfn(2048)).unwrap(), 0);
    t.verify().unwrap();
}

#[test]
fn mark_then_add_skips_reserved() {
    let mut s = storage(64);
    let mut t = table(&mut s, 0);
    t.mark(Pfn(0)..Pfn(2), FrameState::Reserved, 0).unwrap();
    t.mark(Pfn(32)..Pfn(48), FrameState::ReservedArea, 7)
        .unwrap();
    assert_eq!(t.add_free_range(Pfn(0)..Pfn(64)).unwrap(), 64 - 2 - 16);
    assert_eq!(t.frame(Pfn(40)).unwrap().owner(), 7);
    assert_eq!(t.state_count(FrameState::ReservedArea), 16);
    // The buddy never hands out a marked frame.
    let mut got = Vec::new();
    while let Ok(p) = t.alloc(0, FrameState::Heap) {
        got.push(p.0);
    }
    assert_eq!(got.len(), 46);
    assert!(
        got.iter()
            .all(|&p| (2..32).contains(&p) || (48..64).contains(&p))
    );
    // Marking buddy frames is refused, changing nothing.
    assert_eq!(
        t.mark(Pfn(1)..Pfn(3), FrameState::Reserved, 0),
        Err(FrameError::Busy {
            pfn: Pfn(2),
            state: FrameState::Heap
        })
    );
    assert_eq!(t.state(Pfn(1)), Some(FrameState::Reserved));
    assert_eq!(
        t.mark(Pfn(0)..Pfn(1), FrameState::Free, 0),
        Err(FrameError::BadState(FrameState::Free))
    );
    assert_eq!(
        t.mark(Pfn(60)..Pfn(65), FrameState::Reserved, 0),
        Err(FrameError::OutOfRange(Pfn(64)))
    );
    t.verify().unwrap();
}

#[test]
fn unmark_then_free_boot_memory() {
    let mut s = storage(16);
    let mut t = table(&mut s, 0);
    t.mark(Pfn(0)..Pfn(16), FrameState::Kernel, 1).unwrap();
    assert_eq!(t.add_free_range(Pfn(0)..Pfn(16)).unwrap(), 0);
    t.mark(Pfn(8)..Pfn(16), FrameState::Absent, 0).unwrap();
    assert_eq!(t.add_free_range(Pfn(0)..Pfn(16)).unwrap(), 8);
    assert_eq!(t.free_blocks(3), 1);
    t.verify().unwrap();
}

#[test]
fn split_and_coalesce() {
    let mut s = storage(1024);
    let mut t = table(&mut s, 0);
    t.add_free_range(Pfn(0)..Pfn(1024)).unwrap();
    let a = t.alloc(0, FrameState::Kernel).unwrap();
    let st = t.stats();
    // Splitting 1024 into 1 + 1 + 2 + 4 + ... + 512.
    for o in 0..MAX_ORDER {
        assert_eq!(st.free_blocks[o as usize], 1, "order {o}");
    }
    assert_eq!(st.free_blocks[MAX_ORDER as usize], 0);
    assert_eq!(st.free, 1023);
    assert_eq!(st.state(FrameState::Kernel), 1);
    let b = t.alloc(0, FrameState::Heap).unwrap();
    assert_eq!(a.0 ^ 1, b.0, "second order-0 is the buddy");
    t.verify().unwrap();
    t.free(a, 0).unwrap();
    t.verify().unwrap();
    t.free(b, 0).unwrap();
    assert_eq!(t.free_blocks(MAX_ORDER), 1);
    assert_eq!(t.free_frames(), 1024);
    t.verify().unwrap();
}

#[test]
fn allocations_are_naturally_aligned() {
    let mut s = storage(4096);
    let mut t = table(&mut s, 0x40003); // unaligned base
    t.add_free_range(t.span()).unwrap();
    for order in (0..=MAX_ORDER).rev() {
        if let Ok(p) = t.alloc(order, FrameState::Allocated) {
            assert!(p.is_aligned(order), "{p} order {order}");
            assert_eq!(t.allocation_order(p), Some(order));
        }
    }
    t.verify().unwrap();
}

#[test]
fn alloc_sets_state_and_resets_owner_fields() {
    let mut s = storage(8);
    let mut t = table(&mut s, 0);
    t.add_free_range(Pfn(0)..Pfn(8)).unwrap();
    let p = t.alloc(2, FrameState::PageCache).unwrap();
    {
        let mut f = t.frame_mut(p.add(1)).unwrap();
        f.insert_flags(FrameFlags::DIRTY | FrameFlags::REFERENCED);
        f.set_mapping(5, 77);
        f.set_owner(3);
        f.set_links(1, 2);
        assert_eq!(f.desc().flags(), FrameFlags::DIRTY | FrameFlags::REFERENCED);
        f.remove_flags(FrameFlags::DIRTY);
        assert!(f.desc().flags().contains(FrameFlags::REFERENCED));
        assert!(!f.desc().flags().intersects(FrameFlags::DIRTY));
    }
    let d = *t.frame(p.add(1)).unwrap();
    assert_eq!(
        (d.mapping(), d.index(), d.owner(), d.links()),
        (5, 77, 3, (1, 2))
    );
    for i in 0..4 {
        assert_eq!(t.state(p.add(i)), Some(FrameState::PageCache));
    }
    t.free(p, 2).unwrap();
    let p2 = t.alloc(2, FrameState::Heap).unwrap();
    assert_eq!(p2, p);
    let d = *t.frame(p.add(1)).unwrap();
    assert_eq!(
        (d.mapping(), d.index(), d.owner(), d.flags()),
        (0, 0, 0, FrameFlags::EMPTY)
    );
    t.verify().unwrap();
}

#[test]
fn frame_mut_refuses_free_and_absent() {
    let mut s = storage(8);
    let mut t = table(&mut s, 0);
    t.add_free_range(Pfn(0)..Pfn(4)).unwrap();
    assert_eq!(
        t.frame_mut(Pfn(0)).err(),
        Some(FrameError::Busy {
            pfn: Pfn(0),
            state: FrameState::Free
        })
    );
    assert_eq!(
        t.frame_mut(Pfn(5)).err(),
        Some(FrameError::Busy {
            pfn: Pfn(5),
            state: FrameState::Absent
        })
    );
    assert_eq!(
        t.frame_mut(Pfn(9)).err(),
        Some(FrameError::OutOfRange(Pfn(9)))
    );
}

#[test]
fn double_free_and_bogus_frees_are_rejected() {
    let mut s = storage(64);
    let mut t = table(&mut s, 0);
    t.mark(Pfn(0)..Pfn(1), FrameState::Reserved, 0).unwrap();
    t.add_free_range(Pfn(0)..Pfn(64)).unwrap();
    let p = t.alloc(2, FrameState::Kernel).unwrap();
    let before = t.stats();
    let cases = [
        (p, 3, FrameError::Misaligned { pfn: p, order: 3 }),
        (
            p,
            1,
            FrameError::WrongOrder {
                pfn: p,
                allocated: 2,
                given: 1,
            },
        ),
        (p.add(2), 1, FrameError::NotHead(p.add(2))),
        (p.add(1), 0, FrameError::NotHead(p.add(1))),
        (
            Pfn(0),
            0,
            FrameError::NotAllocated {
                pfn: Pfn(0),
                state: FrameState::Reserved,
            },
        ),
        (Pfn(64), 0, FrameError::OutOfRange(Pfn(64))),
        (p, MAX_ORDER + 1, FrameError::BadOrder(MAX_ORDER + 1)),
    ];
    for (pfn, order, err) in cases {
        assert_eq!(t.free(pfn, order), Err(err));
        assert_eq!(t.stats(), before);
        t.verify().unwrap();
    }
    // A free frame that was never allocated.
    let free_frame = (1..64)
        .map(Pfn)
        .find(|&q| t.state(q) == Some(FrameState::Free))
        .unwrap();
    assert_eq!(
        t.free(free_frame, 0),
        Err(FrameError::DoubleFree(free_frame))
    );
    t.free(p, 2).unwrap();
    let after = t.stats();
    assert_eq!(t.free(p, 2), Err(FrameError::DoubleFree(p)));
    assert_eq!(t.stats(), after);
    t.verify().unwrap();
}

#[test]
fn pinned_frames_cannot_be_freed() {
    let mut s = storage(8);
    let mut t = table(&mut s, 0);
    t.add_free_range(Pfn(0)..Pfn(8)).unwrap();
    let p = t.alloc(1, FrameState::PageCache).unwrap();
    assert_eq!(t.frame_mut(p.add(1)).unwrap().pin(), Ok(1));
    assert_eq!(t.free(p, 1), Err(FrameError::Pinned(p.add(1))));
    assert_eq!(t.frame_mut(p.add(1)).unwrap().unpin(), Ok(0));
    assert_eq!(
        t.frame_mut(p.add(1)).unwrap().unpin(),
        Err(FrameError::NotPinned(p.add(1)))
    );
    t.free(p, 1).unwrap();
    t.verify().unwrap();
}

#[test]
fn set_state_moves_between_owned_states() {
    let mut s = storage(16);
    let mut t = table(&mut s, 0);
    t.mark(Pfn(8)..Pfn(16), FrameState::ReservedArea, 2)
        .unwrap();
    t.add_free_range(Pfn(0)..Pfn(16)).unwrap();
    assert_eq!(
        t.set_state(Pfn(8), FrameState::Cleancache),
        Ok(FrameState::ReservedArea)
    );
    t.set_state_range(Pfn(9)..Pfn(12), FrameState::Allocated)
        .unwrap();
    assert_eq!(t.state_count(FrameState::Allocated), 3);
    assert_eq!(t.state_count(FrameState::Cleancache), 1);
    assert_eq!(t.state_count(FrameState::ReservedArea), 4);
    assert_eq!(
        t.set_state(Pfn(0), FrameState::Heap),
        Err(FrameError::Busy {
            pfn: Pfn(0),
            state: FrameState::Free
        })
    );
    assert_eq!(
        t.set_state(Pfn(8), FrameState::Free),
        Err(FrameError::BadState(FrameState::Free))
    );
    assert_eq!(
        t.set_state_range(Pfn(6)..Pfn(10), FrameState::Heap),
        Err(FrameError::Busy {
            pfn: Pfn(6),
            state: FrameState::Free
        })
    );
    assert_eq!(t.state(Pfn(8)), Some(FrameState::Cleancache));
    // A buddy page handed to the page cache then freed.
    let p = t.alloc(0, FrameState::Heap).unwrap();
    t.set_state(p, FrameState::PageCache).unwrap();
    t.free(p, 0).unwrap();
    t.verify().unwrap();
}

#[test]
fn alloc_pages_non_power_of_two() {
    let mut s = storage(64);
    let mut t = table(&mut s, 0);
    t.add_free_range(Pfn(0)..Pfn(64)).unwrap();
    let p = t.alloc_pages(5, FrameState::Allocated).unwrap();
    assert!(p.is_aligned(3));
    assert_eq!(t.state_count(FrameState::Allocated), 5);
    assert_eq!(t.free_frames(), 59);
    assert_eq!(t.allocation_order(p), Some(2));
    assert_eq!(t.allocation_order(p.add(4)), Some(0));
    t.verify().unwrap();
    // 6 = 4 + 2: the order-2 head is fine, the order-1 at p+4 is not; nothing is freed.
    assert_eq!(
        t.free_pages(p, 6),
        Err(FrameError::WrongOrder {
            pfn: p.add(4),
            allocated: 0,
            given: 1
        })
    );
    assert_eq!(t.state_count(FrameState::Allocated), 5);
    assert_eq!(
        t.free_pages(p, 3),
        Err(FrameError::WrongOrder {
            pfn: p,
            allocated: 2,
            given: 1
        })
    );
    assert_eq!(t.state_count(FrameState::Allocated), 5);
    t.free_pages(p, 5).unwrap();
    assert_eq!(t.free_blocks(6), 1);
    assert_eq!(
        t.alloc_pages(0, FrameState::Heap),
        Err(FrameError::BadCount(0))
    );
    assert_eq!(
        t.alloc_pages(1025, FrameState::Heap),
        Err(FrameError::BadCount(1025))
    );
    assert_eq!(
        t.alloc_pages(65, FrameState::Heap),
        Err(FrameError::OutOfMemory { order: 7 })
    );
    t.verify().unwrap();
}

#[test]
fn bad_alloc_arguments() {
    let mut s = storage(4);
    let mut t = table(&mut s, 0);
    t.add_free_range(Pfn(0)..Pfn(4)).unwrap();
    assert_eq!(
        t.alloc(MAX_ORDER + 1, FrameState::Heap),
        Err(FrameError::BadOrder(MAX_ORDER + 1))
    );
    assert_eq!(
        t.alloc(0, FrameState::Free),
        Err(FrameError::BadState(FrameState::Free))
    );
    assert_eq!(
        t.alloc(0, FrameState::Absent),
        Err(FrameError::BadState(FrameState::Absent))
    );
    assert_eq!(
        t.alloc(3, FrameState::Heap),
        Err(FrameError::OutOfMemory { order: 3 })
    );
    t.verify().unwrap();
}

#[test]
fn table_limits() {
    let mut s = storage(4);
    assert_eq!(
        FrameTable::new(&mut s, Pfn(u64::MAX - 2)).err(),
        Some(FrameError::TableTooLarge)
    );
}

#[test]
fn stats_display() {
    let mut s = storage(4);
    let mut t = table(&mut s, 0);
    t.add_free_range(Pfn(0)..Pfn(4)).unwrap();
    let line = t.stats().to_string();
    assert!(
        line.starts_with("frames total=4 managed=4 free=4 blocks=[0 0 1 0"),
        "{line}"
    );
    assert!(line.contains(" free=4 kernel=0"), "{line}");
}
