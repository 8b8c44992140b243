//! Cleancache's own per-page costs, for the per-page step: storing a clean
//! page into a free slot, restoring it on a hit (the copy out with the fast
//! page copy), and storing when every slot is full (CLOCK evicts an older
//! copy first).
//!
//! Rules: it runs between demo steps (no background task) in one memsys
//! lock hold per round, on a mount of its own registered for the timing and
//! invalidated at the end, so it leaves no copy behind and no real file's
//! copy is touched except those CLOCK evicts (clean copies: always
//! droppable). The frame-table observer runs as in any store or hit, so its
//! cost is included.

use alloc::boxed::Box;
use alloc::vec::Vec;

use cleancache::{PAGE_SIZE, Pfn};

use crate::arch::timer;
use crate::memsys;

/// Medians per page, in ns.
pub(super) struct CcCosts {
    pub store: f64,
    pub restore: f64,
    pub evict: f64,
}

/// `rounds` rounds of `n` pages each on the pool holding `pool_pfn`.
pub(super) fn measure(pool_pfn: Pfn, n: usize, rounds: usize) -> Option<CcCosts> {
    let (mut store, mut restore, mut evict) = (Vec::new(), Vec::new(), Vec::new());
    let mut page = Box::new([0u8; PAGE_SIZE as usize]);
    let mut out = Box::new([0u8; PAGE_SIZE as usize]);
    let mut m = memsys::areas();
    let cc = m.backend_mut();
    let (pool, first) = cc.locate_pfn(pool_pfn)?;
    let fs = cc.register_fs(0x7e57);
    for r in 0..rounds as u64 {
        // n free slots: taking a range back and giving it back empties it.
        if cc.take_back_range(pool, first, n).is_err() {
            break;
        }
        let _ = cc.give_back_range(pool, first, n);
        let t0 = timer::ticks();
        for i in 0..n {
            page[..8].copy_from_slice(&(r << 32 | i as u64).to_le_bytes());
            cc.put_page(fs, r, i as u32, &page);
        }
        store.push(timer::ticks_to_ns(timer::ticks() - t0));
        let t0 = timer::ticks();
        let mut hits = 0;
        for i in 0..n {
            hits += cc.get_page(fs, r, i as u32, &mut out) as usize;
        }
        restore.push(timer::ticks_to_ns(timer::ticks() - t0));
        if hits != n {
            log::warn!("cleancache costs: {hits} of {n} restores hit");
        }
        // Fill every free slot (untimed), then store n more: each evicts.
        let free = {
            let s = cc.stats();
            s.lendable_now - s.cached_now
        };
        for i in 0..free {
            cc.put_page(fs, r + (1 << 20), i as u32, &page);
        }
        let t0 = timer::ticks();
        for i in 0..n {
            cc.put_page(fs, r + (2 << 20), i as u32, &page);
        }
        evict.push(timer::ticks_to_ns(timer::ticks() - t0));
    }
    cc.invalidate_fs(fs);
    drop(m);
    let per = |v: &[u64]| Some(super::report::median_per_page(v, n)).filter(|x| !x.is_nan());
    Some(CcCosts {
        store: per(&store)?,
        restore: per(&restore)?,
        evict: per(&evict)?,
    })
}
