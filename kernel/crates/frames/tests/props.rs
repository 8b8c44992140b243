//! Property tests: random alloc/free sequences against a model.

use frames::*;
use proptest::prelude::*;
use std::collections::HashMap;

const OWNED: [FrameState; 7] = [
    FrameState::Kernel,
    FrameState::Heap,
    FrameState::PageCache,
    FrameState::Cleancache,
    FrameState::Allocated,
    FrameState::ReservedArea,
    FrameState::Reserved,
];

#[derive(Clone, Debug)]
enum Op {
    /// `alloc(order, OWNED[state])`.
    Alloc(u8, usize),
    /// `alloc_pages(count, OWNED[state])`.
    AllocPages(u64, usize),
    /// Free the live allocation picked by the selector.
    Free(usize),
    /// Free it again right after (double free).
    FreeTwice(usize),
    /// Free it with a wrong order / at a tail.
    FreeWrong(usize, u8),
    /// Pin one of its frames, try to free (must fail), unpin.
    FreePinned(usize, u64),
    /// `free(base + off, order)` at an arbitrary place.
    FreeAnywhere(u64, u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..=MAX_ORDER, 0..OWNED.len()).prop_map(|(o, s)| Op::Alloc(o, s)),
        2 => (0u8..=4).prop_flat_map(|o| (0..=MAX_ORDER).prop_map(move |m| m.min(o))).prop_map(|o| Op::Alloc(o, 0)),
        2 => (1..=MAX_PAGES_PER_ALLOC, 0..OWNED.len()).prop_map(|(c, s)| Op::AllocPages(c, s)),
        4 => any::<usize>().prop_map(Op::Free),
        1 => any::<usize>().prop_map(Op::FreeTwice),
        1 => (any::<usize>(), 0..=MAX_ORDER + 1).prop_map(|(i, o)| Op::FreeWrong(i, o)),
        1 => (any::<usize>(), any::<u64>()).prop_map(|(i, f)| Op::FreePinned(i, f)),
        1 => (any::<u64>(), 0..=MAX_ORDER + 1).prop_map(|(p, o)| Op::FreeAnywhere(p, o)),
    ]
}

#[derive(Clone, Debug)]
struct Layout {
    base: u64,
    len: u64,
    /// (start offset, length, state index) of marked ranges.
    marks: Vec<(u64, u64, usize)>,
    /// (start offset, length) of ranges given to the buddy.
    adds: Vec<(u64, u64)>,
}

fn layout() -> impl Strategy<Value = Layout> {
    (0u64..5000, 1u64..2600).prop_flat_map(|(base, len)| {
        let range = move || (0..len).prop_flat_map(move |s| (Just(s), 0..=len - s));
        (
            Just(base),
            Just(len),
            prop::collection::vec(
                (range(), 0..OWNED.len()).prop_map(|((s, l), k)| (s, l, k)),
                0..4,
            ),
            prop::collection::vec(range(), 1..4),
        )
            .prop_map(|(base, len, marks, adds)| Layout {
                base,
                len,
                marks,
                adds,
            })
    })
}

/// A live allocation in the model: `blocks` are (pfn, order) pairs.
#[derive(Clone, Debug)]
struct Live {
    start: u64,
    len: u64,
    how: How,
    state: FrameState,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum How {
    Order(u8),
    Count(u64),
}

struct Model {
    base: u64,
    managed: Vec<bool>,
    marked: Vec<Option<FrameState>>,
    owned: Vec<bool>,
    live: Vec<Live>,
}

impl Model {
    fn i(&self, pfn: u64) -> usize {
        (pfn - self.base) as usize
    }

    /// Is there an aligned all-free managed run of 2^order frames?
    fn fits(&self, order: u8) -> bool {
        let n = 1u64 << order;
        let len = self.managed.len() as u64;
        let first = self.base.next_multiple_of(n);
        (0..)
            .map(|k| first + k * n)
            .take_while(|&p| p + n <= self.base + len)
            .any(|p| (p..p + n).all(|q| self.managed[self.i(q)] && !self.owned[self.i(q)]))
    }

    fn check(&self, t: &FrameTable<'_>) -> Result<(), TestCaseError> {
        if let Err(c) = t.verify() {
            return Err(TestCaseError::fail(format!("{c}")));
        }
        let managed = self.managed.iter().filter(|&&m| m).count() as u64;
        let owned = self.owned.iter().filter(|&&m| m).count() as u64;
        let st = t.stats();
        prop_assert_eq!(st.managed, managed);
        prop_assert_eq!(st.free, managed - owned);
        prop_assert_eq!(st.free + owned, st.managed);
        let mut per_state = HashMap::new();
        for m in self.marked.iter().flatten() {
            *per_state.entry(*m).or_insert(0u64) += 1;
        }
        for l in &self.live {
            *per_state.entry(l.state).or_insert(0u64) += l.len;
        }
        let absent = self
            .managed
            .iter()
            .zip(&self.marked)
            .filter(|(m, k)| !**m && k.is_none())
            .count() as u64;
        *per_state.entry(FrameState::Absent).or_insert(0) += absent;
        *per_state.entry(FrameState::Free).or_insert(0) += managed - owned;
        for s in FrameState::ALL {
            prop_assert_eq!(
                st.state(*s),
                per_state.get(s).copied().unwrap_or(0),
                "state {}",
                s
            );
        }
        prop_assert_eq!(st.per_state.iter().sum::<u64>(), st.total);
        Ok(())
    }

    fn take(&mut self, l: &Live) -> Result<(), TestCaseError> {
        for p in l.start..l.start + l.len {
            let i = self.i(p);
            prop_assert!(self.managed[i], "handed out unmanaged frame {:#x}", p);
            prop_assert!(!self.owned[i], "frame {:#x} handed out twice", p);
            self.owned[i] = true;
        }
        Ok(())
    }

    fn give_back(&mut self, idx: usize) -> Live {
        let l = self.live.swap_remove(idx);
        for p in l.start..l.start + l.len {
            let i = self.i(p);
            self.owned[i] = false;
        }
        l
    }
}

fn free_live(t: &mut FrameTable<'_>, l: &Live) -> Result<(), FrameError> {
    match l.how {
        How::Order(o) => t.free(Pfn(l.start), o),
        How::Count(c) => t.free_pages(Pfn(l.start), c),
    }
}

/// Sub-blocks `alloc_pages` built a count allocation from.
fn sub_blocks(start: u64, count: u64) -> Vec<(u64, u8)> {
    let mut v = vec![];
    let mut cur = start;
    for o in (0..=MAX_ORDER).rev() {
        if count & (1 << o) != 0 {
            v.push((cur, o));
            cur += 1 << o;
        }
    }
    v
}

/// `free(pfn, order)`: must succeed exactly when it names a live order
/// allocation, and otherwise fail without changing anything. (A sub-block of
/// an `alloc_pages` allocation is a legal target too; those are skipped.)
fn bogus_or_legit_free(
    t: &mut FrameTable<'_>,
    m: &mut Model,
    pfn: u64,
    order: u8,
) -> Result<(), TestCaseError> {
    if m.live
        .iter()
        .any(|x| matches!(x.how, How::Count(c) if sub_blocks(x.start, c).contains(&(pfn, order))))
    {
        return Ok(());
    }
    let before = t.stats();
    let r = t.free(Pfn(pfn), order);
    match m
        .live
        .iter()
        .position(|x| x.start == pfn && x.how == How::Order(order))
    {
        Some(i) => {
            prop_assert_eq!(r, Ok(()));
            m.give_back(i);
        }
        None => {
            prop_assert!(
                r.is_err(),
                "bogus free of {:#x} order {} accepted",
                pfn,
                order
            );
            prop_assert_eq!(t.stats(), before);
        }
    }
    Ok(())
}

fn run(lay: Layout, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut storage = vec![FrameDesc::ABSENT; lay.len as usize];
    let mut t = FrameTable::new(&mut storage, Pfn(lay.base)).unwrap();
    let n = lay.len as usize;
    let mut m = Model {
        base: lay.base,
        managed: vec![false; n],
        marked: vec![None; n],
        owned: vec![false; n],
        live: vec![],
    };
    for &(s, l, k) in &lay.marks {
        t.mark(Pfn(lay.base + s)..Pfn(lay.base + s + l), OWNED[k], k as u16)
            .unwrap();
        for i in s..s + l {
            m.marked[i as usize] = Some(OWNED[k]);
        }
    }
    for &(s, l) in &lay.adds {
        let added = t
            .add_free_range(Pfn(lay.base + s)..Pfn(lay.base + s + l))
            .unwrap();
        let mut expect = 0;
        for i in s..s + l {
            let i = i as usize;
            if m.marked[i].is_none() && !m.managed[i] {
                m.managed[i] = true;
                expect += 1;
            }
        }
        prop_assert_eq!(added, expect);
    }
    m.check(&t)?;
    let initial = t.stats();

    for op in ops {
        let before = t.stats();
        match op {
            Op::Alloc(order, s) => match t.alloc(order, OWNED[s]) {
                Ok(p) => {
                    prop_assert!(p.is_aligned(order), "{} not aligned to order {}", p, order);
                    let l = Live {
                        start: p.0,
                        len: 1 << order,
                        how: How::Order(order),
                        state: OWNED[s],
                    };
                    m.take(&l)?;
                    m.live.push(l);
                }
                Err(e) => {
                    prop_assert_eq!(e, FrameError::OutOfMemory { order });
                    prop_assert!(
                        !m.fits(order),
                        "order {} refused though a free aligned block exists",
                        order
                    );
                    prop_assert_eq!(t.stats(), before);
                }
            },
            Op::AllocPages(count, s) => match t.alloc_pages(count, OWNED[s]) {
                Ok(p) => {
                    let order = count.next_power_of_two().trailing_zeros() as u8;
                    prop_assert!(p.is_aligned(order));
                    let l = Live {
                        start: p.0,
                        len: count,
                        how: How::Count(count),
                        state: OWNED[s],
                    };
                    m.take(&l)?;
                    m.live.push(l);
                }
                Err(e) => {
                    let order = count.next_power_of_two().trailing_zeros() as u8;
                    prop_assert_eq!(e, FrameError::OutOfMemory { order });
                    prop_assert!(!m.fits(order));
                    prop_assert_eq!(t.stats(), before);
                }
            },
            Op::Free(sel) | Op::FreeTwice(sel) if !m.live.is_empty() => {
                let idx = sel % m.live.len();
                let l = m.live[idx].clone();
                prop_assert_eq!(free_live(&mut t, &l), Ok(()));
                m.give_back(idx);
                if matches!(op, Op::FreeTwice(_)) {
                    let after = t.stats();
                    let e = free_live(&mut t, &l).unwrap_err();
                    prop_assert_eq!(e, FrameError::DoubleFree(Pfn(l.start)));
                    prop_assert_eq!(t.stats(), after);
                }
            }
            Op::FreeWrong(sel, order) if !m.live.is_empty() => {
                let l = m.live[sel % m.live.len()].clone();
                // Its head with another order, or the frame after its head
                // with its own order (a tail, or whatever follows).
                let pfn = if l.how == How::Order(order) {
                    l.start + 1
                } else {
                    l.start
                };
                bogus_or_legit_free(&mut t, &mut m, pfn, order)?;
            }
            Op::FreePinned(sel, f) if !m.live.is_empty() => {
                let idx = sel % m.live.len();
                let l = m.live[idx].clone();
                let q = Pfn(l.start + f % l.len);
                prop_assert_eq!(t.frame_mut(q).unwrap().pin(), Ok(1));
                let e = free_live(&mut t, &l).unwrap_err();
                prop_assert_eq!(e, FrameError::Pinned(q));
                prop_assert_eq!(t.stats(), before);
                prop_assert_eq!(t.frame_mut(q).unwrap().unpin(), Ok(0));
            }
            Op::FreeAnywhere(off, order) => {
                let pfn = lay.base + off % (lay.len + 8);
                bogus_or_legit_free(&mut t, &mut m, pfn, order)?;
            }
            _ => {}
        }
        m.check(&t)?;
    }

    // Free everything: the allocator must be back to its initial shape.
    while let Some(l) = m.live.pop() {
        prop_assert_eq!(free_live(&mut t, &l), Ok(()));
        for p in l.start..l.start + l.len {
            let i = m.i(p);
            m.owned[i] = false;
        }
    }
    m.check(&t)?;
    prop_assert_eq!(t.stats(), initial);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_alloc_free_matches_model(lay in layout(), ops in prop::collection::vec(op(), 0..250)) {
        run(lay, ops)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    /// Fill memory with random orders until nothing fits, then free in random
    /// order: no overlap, and full coalescing back to the initial blocks.
    #[test]
    fn exhaust_then_free_everything(base in 0u64..3000, len in 1u64..4200, orders in prop::collection::vec(0..=MAX_ORDER, 1..64), seed in any::<u64>()) {
        let mut storage = vec![FrameDesc::ABSENT; len as usize];
        let mut t = FrameTable::new(&mut storage, Pfn(base)).unwrap();
        t.add_free_range(t.span()).unwrap();
        let initial = t.stats();
        let mut owned = vec![false; len as usize];
        let mut live = vec![];
        let mut k = 0;
        loop {
            let order = orders[k % orders.len()];
            k += 1;
            match t.alloc(order, FrameState::Heap) {
                Ok(p) => {
                    prop_assert!(p.is_aligned(order));
                    for q in p.0..p.0 + (1 << order) {
                        let i = (q - base) as usize;
                        prop_assert!(!owned[i], "overlap at {:#x}", q);
                        owned[i] = true;
                    }
                    live.push((p, order));
                }
                // Fall back to order 0 so that memory really fills up.
                Err(_) => match t.alloc(0, FrameState::Heap) {
                    Ok(p) => {
                        let i = (p.0 - base) as usize;
                        prop_assert!(!owned[i], "overlap at {}", p);
                        owned[i] = true;
                        live.push((p, 0));
                    }
                    Err(e) => {
                        prop_assert_eq!(e, FrameError::OutOfMemory { order: 0 });
                        break;
                    }
                },
            }
        }
        prop_assert_eq!(t.free_frames(), 0);
        prop_assert!(owned.iter().all(|&o| o));
        t.verify().map_err(|c| TestCaseError::fail(c.to_string()))?;
        // Deterministic shuffle from the seed.
        let mut s = seed | 1;
        for i in (1..live.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            live.swap(i, (s % (i as u64 + 1)) as usize);
        }
        for (p, o) in live {
            prop_assert_eq!(t.free(p, o), Ok(()));
        }
        t.verify().map_err(|c| TestCaseError::fail(c.to_string()))?;
        prop_assert_eq!(t.stats(), initial);
    }
}
