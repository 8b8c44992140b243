//! The index validity rule against a reference model: a plain list of
//! slots (free, cached with a key and a version, taken back), searched
//! linearly, with the free-slot choice and CLOCK exactly as the crate
//! documentation states them, and no index at all. After every operation of
//! a random sequence, the keys the cleancache can return (`contains`, a
//! get's hit and its bytes) are exactly the keys the model holds, every
//! page's state is the model's, and the counters agree. Puts and gets may
//! also run in three steps with other operations between them (the copies
//! outside the lock of `flight.rs`): the model marks their slots busy.

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
    /// A put or a get is copying the slot's page (`flight.rs`).
    busy: Vec<bool>,
    hand: usize,
    evicted: u64,
}

/// A put or a get between its first and its last step.
enum Flight {
    Put {
        ticket: PutSlot,
        slot: usize,
        key: (FileId, PageIndex),
        version: u64,
    },
    Get {
        ticket: GetSlot,
        slot: usize,
        key: (FileId, PageIndex),
        version: u64,
    },
}

/// The model's operations: the one-step ones, and the steps of a put or a
/// get that runs outside the lock.
#[derive(Clone, Debug)]
enum Step {
    One(Op),
    BeginPut(FileId, PageIndex),
    BeginGet(FileId, PageIndex),
    /// Fill or read, then finish, the flight at this position (modulo).
    Finish(usize),
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

    /// The copy a get would return now: held, and its slot not busy.
    fn find_idle(&self, key: (FileId, PageIndex)) -> Option<usize> {
        self.find(key).filter(|&i| !self.busy[i])
    }

    /// The slot stored into (in place if `held`), `None` if rejected.
    fn put(&mut self, key: (FileId, PageIndex), version: u64) -> Option<usize> {
        if let Some(i) = self.find(key) {
            if self.busy[i] {
                return None;
            }
            self.slots[i] = Slot::Cached {
                key,
                version,
                referenced: true,
            };
            return Some(i);
        }
        let free = (0..self.slots.len()).find(|&i| self.slots[i] == Slot::Free && !self.busy[i]);
        let i = match free {
            Some(i) => i,
            None => self.clock()?,
        };
        self.slots[i] = Slot::Cached {
            key,
            version,
            referenced: false,
        };
        Some(i)
    }

    /// CLOCK, one slot at a time; busy slots are never victims (but lose
    /// their reference bit when passed).
    fn clock(&mut self) -> Option<usize> {
        let idle_cached = (0..self.slots.len())
            .any(|i| matches!(self.slots[i], Slot::Cached { .. }) && !self.busy[i]);
        if !idle_cached {
            return None;
        }
        loop {
            let i = self.hand;
            self.hand = (i + 1) % self.slots.len();
            match &mut self.slots[i] {
                Slot::Cached { referenced, .. } if *referenced => *referenced = false,
                Slot::Cached { .. } if !self.busy[i] => {
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

fn step() -> impl Strategy<Value = Step> {
    let key = (0..FILES, 0..INDEXES);
    prop_oneof![
        10 => op().prop_map(Step::One),
        3 => key.clone().prop_map(|(f, i)| Step::BeginPut(f, i)),
        2 => key.prop_map(|(f, i)| Step::BeginGet(f, i)),
        1 => (0usize..8).prop_map(Step::Finish),
    ]
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

fn run(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let mut cc = mounted();
    let pools = [
        new_pool(&mut cc, POOLS[0], Pfn(0)),
        new_pool(&mut cc, POOLS[1], Pfn(64)),
    ];
    let mut m = Model {
        slots: std::vec![Slot::Free; POOLS.iter().sum()],
        busy: std::vec![false; POOLS.iter().sum()],
        hand: 0,
        evicted: 0,
    };
    let mut fs = super::tests::FS;
    let mut version = 0;
    let mut flights: Vec<Flight> = Vec::new();
    // Every flight is finished at the end (as the kernel always does).
    let finish_all = (0..steps.len()).map(|_| Step::Finish(0));
    for step in steps.into_iter().chain(finish_all) {
        let op = match step {
            Step::One(op) => op,
            Step::BeginPut(f, i) => {
                version += 1;
                let rejected = cc.stats().put_rejected;
                let ticket = cc.begin_put(fs, f, i);
                let slot = m.put((f, i), version);
                prop_assert_eq!(ticket.is_some(), slot.is_some());
                prop_assert_eq!(
                    cc.stats().put_rejected,
                    rejected + u64::from(slot.is_none())
                );
                if let (Some(ticket), Some(slot)) = (ticket, slot) {
                    m.busy[slot] = true;
                    let key = (f, i);
                    flights.push(Flight::Put {
                        ticket,
                        slot,
                        key,
                        version,
                    });
                }
                check(&cc, &m, &pools, fs, &flights)?;
                continue;
            }
            Step::BeginGet(f, i) => {
                let missed = cc.stats().missed;
                let ticket = cc.begin_get(fs, f, i);
                let slot = m.find_idle((f, i));
                prop_assert_eq!(ticket.is_some(), slot.is_some());
                prop_assert_eq!(cc.stats().missed, missed + u64::from(slot.is_none()));
                if let (Some(ticket), Some(slot)) = (ticket, slot) {
                    let Slot::Cached { version: v, .. } = m.slots[slot] else {
                        unreachable!()
                    };
                    m.busy[slot] = true;
                    let key = (f, i);
                    flights.push(Flight::Get {
                        ticket,
                        slot,
                        key,
                        version: v,
                    });
                }
                check(&cc, &m, &pools, fs, &flights)?;
                continue;
            }
            Step::Finish(_) if flights.is_empty() => continue,
            Step::Finish(j) => {
                match flights.remove(j % flights.len()) {
                    Flight::Put {
                        ticket,
                        slot,
                        key,
                        version,
                    } => {
                        cc.finish_put(ticket.fill(&content(key.0, key.1, version)));
                        m.busy[slot] = false;
                    }
                    Flight::Get {
                        ticket,
                        slot,
                        key,
                        version,
                    } => {
                        let mut out = std::boxed::Box::new([0u8; PAGE_SIZE as usize]);
                        let missed = cc.stats().missed;
                        let hit = cc.finish_get(ticket.read(&mut out));
                        m.busy[slot] = false;
                        let held = matches!(m.slots[slot], Slot::Cached { key: k, .. } if k == key);
                        prop_assert_eq!(
                            hit,
                            held,
                            "a get kept a copy dropped in flight, or lost one"
                        );
                        prop_assert_eq!(cc.stats().missed, missed + u64::from(!held));
                        if held {
                            prop_assert!(*out == *content(key.0, key.1, version), "wrong bytes");
                            m.slots[slot] = Slot::Free;
                        }
                    }
                }
                check(&cc, &m, &pools, fs, &flights)?;
                continue;
            }
        };
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
                match m.find_idle((f, i)) {
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
        check(&cc, &m, &pools, fs, &flights)?;
    }
    prop_assert_eq!(cc.copies_in_flight_total(), 0);
    Ok(())
}

/// After every step: the retrievable keys, page states, busy pages and
/// counters are the model's, and the invariants hold.
fn check(
    cc: &Cleancache,
    m: &Model,
    pools: &[PoolId; 2],
    fs: FsId,
    flights: &[Flight],
) -> Result<(), TestCaseError> {
    // Retrievable keys: exactly the model's.
    for f in 0..FILES {
        for i in 0..INDEXES {
            prop_assert_eq!(
                cc.contains(fs, f, i),
                m.find_idle((f, i)).is_some(),
                "key {:?}",
                (f, i)
            );
        }
    }
    for (p, &pages) in POOLS.iter().enumerate() {
        for pg in 0..pages {
            prop_assert_eq!(cc.page_state(pools[p], pg), Ok(model_state(m, fs, p, pg)));
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
    prop_assert_eq!(cc.copies_in_flight_total(), flights.len());
    for (p, &pages) in POOLS.iter().enumerate() {
        for pg in 0..pages {
            let busy = cc.copies_in_flight(pools[p], pg, 1) == 1;
            prop_assert_eq!(busy, m.busy[Model::at(p, pg)]);
        }
    }
    Ok(())
}

proptest! {
    /// The keys cleancache can return are exactly those of the reference
    /// model, after any sequence of puts, gets, invalidations (page, file,
    /// mount), take-backs and give-backs (pages and ranges), with puts and
    /// gets in flight across any of them.
    #[test]
    fn index_validity_matches_a_reference_model(steps in proptest::collection::vec(step(), 1..400)) {
        run(steps)?;
    }
}
