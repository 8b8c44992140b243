//! Host tests with real threads: exclusion (a non-atomic counter adds up
//! exactly), FIFO order, try_lock, the counters, and wrapping tickets.

extern crate std;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::vec::Vec;

use super::TicketLock;

#[test]
fn torture_counters_add_up_exactly() {
    // Two threads: a ticket lock hands the lock to the next ticket even if
    // its thread is descheduled, so more threads than host cores make the
    // test slow (not wrong).
    const THREADS: u64 = 2;
    const ROUNDS: u64 = 20_000;
    // Two fields updated non-atomically: a lost update or a torn pair shows.
    let lock = Arc::new(TicketLock::new((0u64, 0u64)));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let lock = Arc::clone(&lock);
            thread::spawn(move || {
                for _ in 0..ROUNDS {
                    let mut g = lock.lock();
                    let (a, b) = *g;
                    assert_eq!(a, b, "a holder saw another holder's half-done update");
                    g.0 = a + 1;
                    core::hint::spin_loop();
                    g.1 = b + 1;
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(*lock.lock(), (THREADS * ROUNDS, THREADS * ROUNDS));
    let c = lock.contention();
    assert_eq!(u64::from(c.acquisitions), THREADS * ROUNDS + 1);
    assert!(c.contended <= u64::from(c.acquisitions));
    assert!(!lock.is_locked());
}

#[test]
fn waiters_get_the_lock_in_ticket_order() {
    let lock = Arc::new(TicketLock::new(Vec::new()));
    let held = lock.lock();
    let mut handles = Vec::new();
    for id in 0..4u32 {
        let l = Arc::clone(&lock);
        handles.push(thread::spawn(move || l.lock().push(id)));
        // Wait until this thread holds ticket `id + 1` before starting the next.
        while lock.queued() != id + 2 {
            thread::yield_now();
        }
    }
    drop(held);
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(*lock.lock(), [0, 1, 2, 3]);
    let c = lock.contention();
    assert_eq!(c.acquisitions, 6);
    assert_eq!(c.contended, 4, "the four waiters each waited");
    assert!(c.max_wait_spins > 0);
}

#[test]
fn try_lock_fails_while_held_or_waited_for() {
    let lock = TicketLock::new(5u8);
    {
        let g = lock.try_lock().expect("free lock");
        assert_eq!(*g, 5);
        assert!(lock.try_lock().is_none());
        assert!(lock.is_locked());
    }
    assert!(!lock.is_locked());
    *lock.try_lock().unwrap() = 6;
    assert_eq!(*lock.lock(), 6);
    assert_eq!(lock.contention().contended, 0);
}

#[test]
fn tickets_wrap() {
    let lock = TicketLock::new(0u32);
    lock.next.store(u32::MAX - 1, Ordering::Relaxed);
    lock.serving.store(u32::MAX - 1, Ordering::Relaxed);
    for _ in 0..4 {
        *lock.lock() += 1;
    }
    assert_eq!(*lock.lock(), 4);
    assert_eq!(lock.queued(), 0);
}

#[test]
fn force_unlock_frees_a_lock_whose_holder_is_gone() {
    let lock = Arc::new(TicketLock::new(0u32));
    core::mem::forget(lock.lock());
    assert!(lock.try_lock().is_none());
    // SAFETY: the forgotten guard's holder never touches the value again.
    unsafe { lock.force_unlock() };
    let done = Arc::new(AtomicBool::new(false));
    let (l, d) = (Arc::clone(&lock), Arc::clone(&done));
    thread::spawn(move || {
        *l.lock() += 1;
        d.store(true, Ordering::Release);
    })
    .join()
    .unwrap();
    assert!(done.load(Ordering::Acquire));
    assert_eq!(*lock.lock(), 1);
}
