//! Several std threads recording into one probe while another reads it.

use probe::*;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};

const THREADS: u64 = 4;
const PER_THREAD: u64 = 50_000;

/// Values are `thread * 1_000_000 + i + 1`, so each is recognisable.
fn valid(v: u64) -> bool {
    let (t, i) = (v / 1_000_000, v % 1_000_000);
    t < THREADS && (1..=PER_THREAD).contains(&i)
}

#[test]
fn concurrent_recording_never_corrupts() {
    static P: Probe<64> = Probe::new("concurrent");
    let done = AtomicBool::new(false);
    let go = Barrier::new(THREADS as usize + 1);
    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut scratch = [0u64; 64];
            let mut snapshots = 0u64;
            go.wait();
            loop {
                let finished = done.load(Ordering::Relaxed);
                let n = P.snapshot(&mut scratch);
                for &v in &scratch[..n] {
                    assert!(valid(v), "garbage sample {v} in the ring");
                }
                let sum = Summary::of(&P, &mut scratch, 1_000_000_000);
                assert!(sum.p50_ns <= sum.p99_ns);
                snapshots += 1;
                if finished {
                    break;
                }
            }
            snapshots
        });
        let writers: Vec<_> = (0..THREADS)
            .map(|t| {
                let go = &go;
                s.spawn(move || {
                    go.wait();
                    for i in 1..=PER_THREAD {
                        P.record_ticks(t * 1_000_000 + i);
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        done.store(true, Ordering::Relaxed);
        assert!(reader.join().unwrap() > 1);
    });
    let t = P.totals();
    assert_eq!(t.count, THREADS * PER_THREAD);
    assert_eq!(t.min, 1);
    assert_eq!(t.max, (THREADS - 1) * 1_000_000 + PER_THREAD);
    let expect_sum: u64 = (0..THREADS)
        .map(|t| t * 1_000_000 * PER_THREAD + PER_THREAD * (PER_THREAD + 1) / 2)
        .sum();
    assert_eq!(t.sum, expect_sum);
    let mut scratch = [0u64; 64];
    let n = P.snapshot(&mut scratch);
    assert_eq!(n, 64, "quiescent ring is full");
    assert!(scratch.iter().all(|&v| valid(v)));
    // Every thread finished with its largest values; each slot holds one of
    // the last samples of some thread.
    let mut sorted = scratch.to_vec();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 64, "no sample stored twice");
}
