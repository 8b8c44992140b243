//! Host tests of the copies outside the lock (`flight.rs`): each rule with
//! the interleaving that breaks it if it is wrong. The reference model
//! (`model_tests.rs`) covers random interleavings.

extern crate std;

use super::tests::{FS, content, get_from, mounted, new_pool, pool_mem};
use super::*;
use alloc::boxed::Box;

fn page() -> Box<PageBytes> {
    Box::new([0u8; PAGE_SIZE as usize])
}

#[test]
fn a_put_in_flight_is_never_read_half_written() {
    let mut cc = mounted();
    let p = new_pool(&mut cc, 4, Pfn(0));
    let slot = cc.begin_put(FS, 1, 7).expect("a free slot");
    assert_eq!(cc.copies_in_flight(p, 0, 4), 1);
    // Indexed at once, but not readable until finished.
    assert!(!cc.contains(FS, 1, 7));
    let missed = cc.stats().missed;
    assert!(get_from(&mut cc, FS, 1, 7).is_none());
    assert_eq!(cc.stats().missed, missed + 1);
    // Another put of the same key is refused while the slot is busy.
    let rejected = cc.stats().put_rejected;
    cc.put_page(FS, 1, 7, &content(1, 7, 9));
    assert_eq!(cc.stats().put_rejected, rejected + 1);
    cc.finish_put(slot.fill(&content(1, 7, 1)));
    assert_eq!(cc.copies_in_flight(p, 0, 4), 0);
    assert_eq!(*get_from(&mut cc, FS, 1, 7).unwrap(), *content(1, 7, 1));
    assert_eq!(cc.check_invariants(), Ok(()));
}

#[test]
fn a_busy_slot_is_never_reused() {
    let mut cc = mounted();
    let p = new_pool(&mut cc, 1, Pfn(0));
    cc.put_page(FS, 1, 0, &content(1, 0, 1));
    let reading = cc.begin_get(FS, 1, 0).expect("the copy");
    // The one slot is busy: neither the free choice nor CLOCK may take it.
    let rejected = cc.stats().put_rejected;
    for i in 1..5 {
        cc.put_page(FS, 2, i, &content(2, i, 1));
    }
    assert_eq!(cc.stats().put_rejected, rejected + 4);
    assert_eq!(cc.stats().evicted, 0);
    let mut out = page();
    assert!(cc.finish_get(reading.read(&mut out)));
    assert_eq!(*out, *content(1, 0, 1));
    assert_eq!(cc.page_state(p, 0), Ok(PageState::Free));
    assert_eq!(cc.check_invariants(), Ok(()));
}

#[test]
fn a_get_loses_a_copy_invalidated_in_flight() {
    let mut cc = mounted();
    let p = new_pool(&mut cc, 2, Pfn(0));
    cc.put_page(FS, 1, 3, &content(1, 3, 1));
    let reading = cc.begin_get(FS, 1, 3).unwrap();
    cc.invalidate_page(FS, 1, 3);
    let (missed, restored) = (cc.stats().missed, cc.stats().restored);
    let mut out = page();
    assert!(
        !cc.finish_get(reading.read(&mut out)),
        "a stale copy was returned"
    );
    assert_eq!(cc.stats().missed, missed + 1);
    assert_eq!(cc.stats().restored, restored);
    assert_eq!(cc.page_state(p, 0), Ok(PageState::Free));
    // The same for an unmount in flight.
    cc.put_page(FS, 1, 4, &content(1, 4, 1));
    let reading = cc.begin_get(FS, 1, 4).unwrap();
    assert_eq!(cc.invalidate_fs(FS), 1);
    assert!(!cc.finish_get(reading.read(&mut out)));
    assert_eq!(cc.check_invariants(), Ok(()));
}

#[test]
fn take_back_of_a_busy_page_is_immediate_and_the_copy_is_dropped() {
    let mut cc = mounted();
    let mem = pool_mem(4);
    // SAFETY: leaked memory of 4 pages; the test writes a taken-back page
    // only once no copy is in flight on it.
    let p = unsafe { cc.add_pool(mem, 4, Pfn(0)) }.unwrap();
    let filling = cc.begin_put(FS, 1, 0).unwrap();
    cc.put_page(FS, 1, 1, &content(1, 1, 1));
    let reading = cc.begin_get(FS, 1, 1).unwrap();
    // Take-back does not wait: both pages are GCMA's at once ...
    assert_eq!(cc.take_back_range(p, 0, 4), Ok(2));
    assert_eq!(cc.page_state(p, 0), Ok(PageState::TakenBack));
    // ... but in use by their copiers until they finish.
    assert_eq!(cc.copies_in_flight(p, 0, 4), 2);
    assert_eq!(cc.copies_in_flight(p, 2, 2), 0);
    cc.finish_put(filling.fill(&content(1, 0, 1)));
    let mut out = page();
    assert!(
        !cc.finish_get(reading.read(&mut out)),
        "a taken-back copy was returned"
    );
    assert_eq!(cc.copies_in_flight(p, 0, 4), 0);
    // Now the owner may write them; cleancache holds nothing of them.
    // SAFETY: pages 0 and 1 are taken back and no copy is in flight.
    let owned = unsafe { core::slice::from_raw_parts_mut(mem.as_ptr(), 2 * PAGE_SIZE as usize) };
    owned.fill(0xA5);
    assert_eq!(cc.stats().cached_now, 0);
    cc.give_back_range(p, 0, 4).unwrap();
    assert!(get_from(&mut cc, FS, 1, 0).is_none());
    assert!(get_from(&mut cc, FS, 1, 1).is_none());
    assert!(
        owned.iter().all(|&b| b == 0xA5),
        "cleancache wrote a page it lost"
    );
    assert_eq!(cc.check_invariants(), Ok(()));
}

#[test]
#[should_panic(expected = "a slot ticket of another cleancache")]
fn a_ticket_of_another_cleancache_is_refused() {
    let mut a = mounted();
    let mut b = mounted();
    new_pool(&mut a, 1, Pfn(0));
    new_pool(&mut b, 1, Pfn(0));
    let slot = a.begin_put(FS, 1, 0).unwrap();
    let _other = b.begin_put(FS, 1, 0).unwrap();
    b.finish_put(slot.fill(&content(1, 0, 1)));
}
