//! The index validity rule against a reference model: a plain list of
//! slots (free, cached with a key and a version, taken back), searched
//! linearly, with the free-slot choice and CLOCK exactly as the crate
//! documentation states them, and no index at all. After every operation of
//! a random sequence, the keys the cleancache can return (`contains`, a
//! get's hit and its bytes) are exactly the keys the model holds, every
//! page's state is the model's, and the counters agree.

extern crate std;

use super::tests::{Op, content, get_from, mounted, new_pool};
use super::*;
use proptest::prelude::*;
use std::vec::Vec;

/// Pool sizes: a small one and one that spans two bitmap words and ends
/// inside the second (padding after it).
const POOLS: [usize; 2] = [3, 67];
const FILES: FileId = 4;
const INDEXES: PageIndex = 48;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Slot {
    Free,
    Cached {
        key: (FileId, PageIndex),
        version: u64,
        referenced: bool,
    },
    Taken,
}

/// The reference: slots of pool 0 then pool 1, in the crate's slot order.
struct Model {
    slots: Vec<Slot>,
    hand: usize,
    evicted: u64,
}

impl Model {
    fn at(p: usize, pg: usize) -> usize {
        POOLS[..p].iter().sum::<usize>() + pg
    }

    fn find(&self, key: (FileId, PageIndex)) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| matches!(s, Slot::Cached { key: k, .. } if *k == key))
    }

    /// `Some(held)` if stored (in place if `held`), `None` if rejected.
    fn put(&mut self, key: (FileId, PageIndex), version: u64) -> Option<bool> {
        if let Some(i) = self.find(key) {
            self.slots[i] = Slot::Cached {
                key,
                version,
                referenced: true,
            };
            return Some(true);
        }
        let i = match self.slots.iter().position(|s| *s == Slot::Free) {
            Some(i) => i,
            None => self.clock()?,
        };
        self.slots[i] = Slot::Cached {
            key,
            version,
            referenced: false,
        };
        Some(false)
    }

    /// CLOCK, one slot at a time.
    fn clock(&mut self) -> Option<usize> {
        if !self.slots.iter().any(|s| matches!(s, Slot::Cached { .. })) {
            return None;
        }
        loop {
            let i = self.hand;
            self.hand = (i + 1) % self.slots.len();
            match &mut self.slots[i] {
                Slot::Cached { referenced, .. } if *referenced => *referenced = false,
                Slot::Cached { .. } => {
                    self.evicted += 1;
                    return Some(i);
                }
                _ => {}
            }
        }
    }

    fn drop_where(&mut self, f: impl Fn((FileId, PageIndex)) -> bool) -> usize {
        let mut n = 0;
        for s in &mut self.slots {
            if let Slot::Cached { key, .. } = *s
                && f(key)
            {
                *s = Slot::Free;
                n += 1;
            }
        }
        n
    }
}

fn op() -> impl Strategy<Value = Op> {
    let key = (0..FILES, 0..INDEXES);
    prop_oneof![
        10 => key.clone().prop_map(|(f, i)| Op::Put(f, i)),
        4 => key.clone().prop_map(|(f, i)| Op::Get(f, i)),
        1 => key.clone().prop_map(|(f, i)| Op::InvalidatePage(f, i)),
        1 => key.prop_map(|(f, i)| Op::InvalidateFile(f, i)),
        2 => (0usize..2, 0usize..70).prop_map(|(p, pg)| Op::TakeBack(p, pg)),
        2 => (0usize..2, 0usize..70).prop_map(|(p, pg)| Op::GiveBack(p, pg)),
        1 => (0usize..2, 0usize..68, 0usize..70).prop_map(|(p, f, n)| Op::TakeBackRange(p, f, n)),
        1 => (0usize..2, 0usize..68, 0usize..70).prop_map(|(p, f, n)| Op::GiveBackRange(p, f, n)),
        1 => (0u32..2).prop_map(Op::Remount),
    ]
}

/// The state the model gives page `pg` of pool `p`, as cleancache names it.
fn model_state(m: &Model, fs: FsId, p: usize, pg: usize) -> PageState {
    match m.slots[Model::at(p, pg)] {
        Slot::Free => PageState::Free,
        Slot::Taken => PageState::TakenBack,
        Slot::Cached {
            key: (file, index), ..
        } => PageState::Cached { fs, file, index },
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut cc = mounted();
    let pools = [
        new_pool(&mut cc, POOLS[0], Pfn(0)),
        new_pool(&mut cc, POOLS[1], Pfn(64)),
    ];
    let mut m = Model {
        slots: std::vec![Slot::Free; POOLS.iter().sum()],
        hand: 0,
        evicted: 0,
    };
    let mut fs = super::tests::FS;
    let mut version = 0;
    for op in ops {
        match op {
            Op::Put(f, i) => {
                version += 1;
                let rejected = cc.stats().put_rejected;
                cc.put_page(fs, f, i, &content(f, i, version));
                let stored = m.put((f, i), version).is_some();
                prop_assert_eq!(cc.stats().put_rejected, rejected + u64::from(!stored));
            }
            Op::Get(f, i) => {
                let got = get_from(&mut cc, fs, f, i);
                match m.find((f, i)) {
                    Some(s) => {
                        let Slot::Cached { version: v, .. } = m.slots[s] else {
                            unreachable!()
                        };
                        prop_assert!(got.is_some(), "miss on a key the model holds");
                        prop_assert!(*got.unwrap() == *content(f, i, v), "wrong bytes");
                        m.slots[s] = Slot::Free;
                    }
                    None => prop_assert!(got.is_none(), "hit on a key the model lacks"),
                }
            }
            Op::InvalidatePage(f, i) => {
                cc.invalidate_page(fs, f, i);
                m.drop_where(|k| k == (f, i));
            }
            Op::InvalidateFile(f, from) => {
                cc.invalidate_file(fs, f, from);
                m.drop_where(|(kf, ki)| kf == f && ki >= from);
            }
            Op::TakeBack(p, pg) => {
                let r = cc.take_back(pools[p], pg);
                let ok = pg < POOLS[p] && m.slots[Model::at(p, pg)] != Slot::Taken;
                prop_assert_eq!(r.is_ok(), ok);
                if ok {
                    m.slots[Model::at(p, pg)] = Slot::Taken;
                }
            }
            Op::GiveBack(p, pg) => {
                let r = cc.give_back(pools[p], pg);
                let ok = pg < POOLS[p] && m.slots[Model::at(p, pg)] == Slot::Taken;
                prop_assert_eq!(r.is_ok(), ok);
                if ok {
                    m.slots[Model::at(p, pg)] = Slot::Free;
                }
            }
            Op::TakeBackRange(p, first, n) => {
                let r = cc.take_back_range(pools[p], first, n);
                let ok = first + n <= POOLS[p]
                    && (first..first + n).all(|pg| m.slots[Model::at(p, pg)] != Slot::Taken);
                prop_assert_eq!(r.is_ok(), ok);
                if ok {
                    let mut dropped = 0;
                    for pg in first..first + n {
                        let s = &mut m.slots[Model::at(p, pg)];
                        dropped += usize::from(matches!(s, Slot::Cached { .. }));
                        *s = Slot::Taken;
                    }
                    prop_assert_eq!(r, Ok(dropped));
                }
            }
            Op::GiveBackRange(p, first, n) => {
                let r = cc.give_back_range(pools[p], first, n);
                let ok = first + n <= POOLS[p]
                    && (first..first + n).all(|pg| m.slots[Model::at(p, pg)] == Slot::Taken);
                prop_assert_eq!(r.is_ok(), ok);
                if ok {
                    for pg in first..first + n {
                        m.slots[Model::at(p, pg)] = Slot::Free;
                    }
                }
            }
            Op::Remount(volume) => {
                let dropped = cc.invalidate_fs(fs);
                prop_assert_eq!(dropped, m.drop_where(|_| true));
                let old = fs;
                fs = cc.register_fs(volume);
                // Nothing of the old mount is retrievable, under any key.
                for f in 0..FILES {
                    for i in 0..INDEXES {
                        prop_assert!(!cc.contains(old, f, i));
                    }
                }
            }
        }
        // Retrievable keys: exactly the model's.
        for f in 0..FILES {
            for i in 0..INDEXES {
                prop_assert_eq!(
                    cc.contains(fs, f, i),
                    m.find((f, i)).is_some(),
                    "key {:?}",
                    (f, i)
                );
            }
        }
        for (p, &pages) in POOLS.iter().enumerate() {
            for pg in 0..pages {
                prop_assert_eq!(cc.page_state(pools[p], pg), Ok(model_state(&m, fs, p, pg)));
            }
        }
        let cached = m
            .slots
            .iter()
            .filter(|s| matches!(s, Slot::Cached { .. }))
            .count();
        let taken = m.slots.iter().filter(|s| **s == Slot::Taken).count();
        let st = cc.stats();
        prop_assert_eq!(st.cached_now, cached);
        prop_assert_eq!(st.lendable_now, m.slots.len() - taken);
        prop_assert_eq!(st.evicted, m.evicted);
        prop_assert!(cc.index_len() <= m.slots.len(), "index over its bound");
        prop_assert_eq!(cc.stale_entries(), cc.index_len() - cached);
        prop_assert_eq!(cc.check_invariants(), Ok(()));
    }
    Ok(())
}

proptest! {
    /// The keys cleancache can return are exactly those of the reference
    /// model, after any sequence of puts, gets, invalidations (page, file,
    /// mount), take-backs and give-backs (pages and ranges).
    #[test]
    fn index_validity_matches_a_reference_model(ops in proptest::collection::vec(op(), 1..400)) {
        run(ops)?;
    }
}
