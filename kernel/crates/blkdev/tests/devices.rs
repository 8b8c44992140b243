//! RAM disk, fault injection and the queue multiplexer. The fault wrapper:
//! partial read and write failures, a device that stops answering
//! (timeouts by the clock and without one), reports and traces.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use blkdev::{
    BlockDevice, BlockError, Fault, FaultKind, FaultyDisk, Op, QueueMux, RamDisk, Request,
    SECTOR_SIZE,
};

fn req(tag: u64, op: Op, sector: u64, buf: &mut [u8]) -> Request {
    Request {
        tag,
        op,
        sector,
        buf: buf.as_mut_ptr(),
        len: buf.len(),
    }
}

#[test]
fn ram_disk_round_trip_and_counters() {
    let mut d = RamDisk::new(16);
    assert_eq!(d.sector_count(), 16);
    let data: Vec<u8> = (0..2 * SECTOR_SIZE).map(|i| i as u8).collect();
    d.write_sectors(3, &data).unwrap();
    let mut back = vec![0u8; 2 * SECTOR_SIZE];
    d.read_sectors(3, &mut back).unwrap();
    assert_eq!(back, data);
    let s = d.stats();
    assert_eq!(
        (
            s.sectors_read,
            s.sectors_written,
            s.read_requests,
            s.write_requests
        ),
        (2, 2, 1, 1)
    );
    d.flush().unwrap();
    assert_eq!(d.stats().flushes, 1);
}

#[test]
fn requests_are_checked_at_submission() {
    let mut d = RamDisk::new(8);
    let mut b = vec![0u8; SECTOR_SIZE];
    assert_eq!(
        d.read_sectors(8, &mut b),
        Err(BlockError::OutOfRange {
            sector: 8,
            count: 1,
            capacity: 8
        })
    );
    assert!(matches!(
        d.read_sectors(u64::MAX, &mut b),
        Err(BlockError::OutOfRange { .. })
    ));
    assert_eq!(
        d.read_sectors(0, &mut b[..100]),
        Err(BlockError::BadBuffer { len: 100 })
    );
    assert_eq!(
        d.read_sectors(0, &mut []),
        Err(BlockError::BadBuffer { len: 0 })
    );
    d.set_read_only(true);
    assert_eq!(d.write_sectors(0, &b), Err(BlockError::ReadOnly));
    assert_eq!(d.stats().sectors_written, 0);
    assert_eq!(d.in_flight(), 0);
}

#[test]
fn a_batch_completes_later_and_in_order() {
    let mut d = RamDisk::new(64).with_queue_depth(4);
    d.as_bytes_mut()[..4 * SECTOR_SIZE].fill(7);
    let mut bufs = vec![vec![0u8; SECTOR_SIZE]; 5];
    let mut it = bufs.iter_mut();
    for tag in 0..4u64 {
        let b = it.next().unwrap();
        // SAFETY: the buffers outlive the completions, reaped below.
        unsafe { d.submit(req(tag, Op::Read, tag, b)).unwrap() };
    }
    let b5 = it.next().unwrap();
    // SAFETY: refused, never queued.
    assert_eq!(
        unsafe { d.submit(req(9, Op::Read, 0, b5)) },
        Err(BlockError::QueueFull)
    );
    assert_eq!(d.in_flight(), 4);
    // Nothing moved before completion.
    assert_eq!(d.stats().sectors_read, 0);
    // The sync helpers refuse to run with requests in flight.
    let mut x = vec![0u8; SECTOR_SIZE];
    assert_eq!(d.read_sectors(0, &mut x), Err(BlockError::Busy));
    let tags: Vec<u64> = std::iter::from_fn(|| d.poll()).map(|c| c.tag).collect();
    assert_eq!(tags, [0, 1, 2, 3]);
    assert!(bufs[..4].iter().all(|b| b.iter().all(|&x| x == 7)));
    assert_eq!(d.wait(), None);
}

#[test]
fn faulty_disk_fails_only_the_chosen_sectors() {
    let mut d = FaultyDisk::new(RamDisk::new(16));
    d.fail_read(5);
    d.fail_write(9);
    let mut b = vec![0u8; 2 * SECTOR_SIZE];
    assert_eq!(
        d.read_sectors(4, &mut b),
        Err(BlockError::Io {
            sector: 5,
            status: 1
        })
    );
    d.read_sectors(6, &mut b).unwrap();
    assert_eq!(
        d.write_sectors(8, &b),
        Err(BlockError::Io {
            sector: 9,
            status: 1
        })
    );
    // The sector before the bad one was written, the bad one was not.
    assert_eq!(d.inner().stats().sectors_written, 1);
    d.write_sectors(10, &b).unwrap();
    assert_eq!(d.injected, 2);
    d.clear();
    d.read_sectors(4, &mut b).unwrap();
}

#[test]
fn queue_mux_runs_sync_requests_between_async_ones() {
    let mut d = QueueMux::new(RamDisk::new(32).with_queue_depth(2));
    d.inner_mut().as_bytes_mut()[10 * SECTOR_SIZE..11 * SECTOR_SIZE].fill(3);
    let mut a = vec![0u8; SECTOR_SIZE];
    let mut b = vec![0u8; SECTOR_SIZE];
    // SAFETY: the buffers live until the completions are reaped below.
    unsafe {
        d.submit(req(1, Op::Read, 10, &mut a)).unwrap();
        d.submit(req(2, Op::Read, 11, &mut b)).unwrap();
    }
    // The queue is full: the sync read makes room by stashing completions.
    let mut s = vec![0u8; SECTOR_SIZE];
    d.read_sectors(10, &mut s).unwrap();
    assert!(s.iter().all(|&x| x == 3));
    let mut tags: Vec<u64> = std::iter::from_fn(|| d.poll()).map(|c| c.tag).collect();
    tags.sort();
    assert_eq!(tags, [1, 2]);
    assert!(a.iter().all(|&x| x == 3));
    assert_eq!(d.in_flight(), 0);
}

const S: usize = SECTOR_SIZE;

/// A disk whose sector `s` is filled with byte `s + 1`.
fn disk(sectors: u64) -> RamDisk {
    let mut d = RamDisk::new(sectors);
    for s in 0..sectors {
        d.write_sectors(s, &[s as u8 + 1; S]).unwrap();
    }
    d
}

static REPORTS: Mutex<Vec<Fault>> = Mutex::new(Vec::new());

fn record(f: &Fault) {
    REPORTS.lock().unwrap().push(*f);
}

/// The reports are a global: tests that look at them hold this.
static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn a_failed_read_moves_the_good_prefix_only_and_is_reported() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    REPORTS.lock().unwrap().clear();
    let mut d = FaultyDisk::new(disk(16));
    d.set_reporter(record);
    d.fail_read(6);
    let mut b = vec![0xeeu8; 4 * S];
    assert_eq!(
        d.read_sectors(4, &mut b),
        Err(BlockError::Io {
            sector: 6,
            status: 1
        })
    );
    // Sectors 4 and 5 arrived, 6 and 7 were not touched.
    assert!(b[..S].iter().all(|x| *x == 5));
    assert!(b[S..2 * S].iter().all(|x| *x == 6));
    assert!(b[2 * S..].iter().all(|x| *x == 0xee));
    // A request starting on the bad sector moves nothing.
    let mut c = vec![0xeeu8; S];
    assert!(d.read_sectors(6, &mut c).is_err());
    assert!(c.iter().all(|x| *x == 0xee));
    let r = REPORTS.lock().unwrap().clone();
    assert_eq!(r.len(), 2);
    assert_eq!(
        r[0],
        Fault {
            op: Op::Read,
            sector: 4,
            sectors: 4,
            kind: FaultKind::Error { at: 6 }
        }
    );
    assert_eq!(
        r[0].to_string(),
        "blk: injected read error at sector 6: read of sectors 4..8 failed after 2 good sectors"
    );
    assert_eq!(d.injected, 2);
    d.clear();
    d.read_sectors(4, &mut b).unwrap();
    assert!(b[2 * S..3 * S].iter().all(|x| *x == 7));
}

#[test]
fn a_failed_write_writes_the_good_prefix_only() {
    let mut d = FaultyDisk::new(disk(16));
    d.fail_write(10);
    let data = vec![0xabu8; 4 * S];
    assert!(matches!(
        d.write_sectors(8, &data),
        Err(BlockError::Io { sector: 10, .. })
    ));
    let mut back = vec![0u8; 4 * S];
    d.inner_mut().read_sectors(8, &mut back).unwrap();
    assert!(back[..2 * S].iter().all(|x| *x == 0xab));
    assert!(back[2 * S..3 * S].iter().all(|x| *x == 11));
    assert!(back[3 * S..].iter().all(|x| *x == 12));
    d.clear();
    d.write_sectors(8, &data).unwrap();
    d.inner_mut().read_sectors(8, &mut back).unwrap();
    assert_eq!(back, data);
}

#[test]
fn partial_failures_keep_their_tags_among_other_requests() {
    let mut d = FaultyDisk::new(disk(32));
    d.fail_read(3);
    let (mut a, mut b, mut c) = (vec![0u8; 4 * S], vec![0u8; 4 * S], vec![0u8; S]);
    // SAFETY: the buffers outlive every completion, reaped below.
    unsafe {
        d.submit(req(1, Op::Read, 0, &mut a)).unwrap();
        d.submit(req(2, Op::Read, 8, &mut b)).unwrap();
        d.submit(req(3, Op::Read, 3, &mut c)).unwrap();
    }
    assert_eq!(d.in_flight(), 3);
    let mut got = Vec::new();
    while let Some(c) = d.wait() {
        got.push(c);
    }
    got.sort_by_key(|c| c.tag);
    assert!(matches!(
        got[0].result,
        Err(BlockError::Io { sector: 3, .. })
    ));
    assert_eq!(got[1].result, Ok(()));
    assert!(matches!(
        got[2].result,
        Err(BlockError::Io { sector: 3, .. })
    ));
    assert_eq!(d.in_flight(), 0);
    assert!(b.iter().all(|x| (9..=12).contains(x)));
}

static NOW: AtomicU64 = AtomicU64::new(0);

fn clock() -> u64 {
    NOW.load(Ordering::SeqCst)
}

#[test]
fn a_stalled_device_times_out_by_the_clock_and_never_touches_the_buffer() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    REPORTS.lock().unwrap().clear();
    let mut d = FaultyDisk::new(disk(16));
    d.set_clock(clock, 1_000);
    d.set_reporter(record);
    NOW.store(5_000, Ordering::SeqCst);
    d.stall();
    let mut b = vec![0xeeu8; 2 * S];
    let w = vec![0x55u8; S];
    // SAFETY: the buffers outlive the completions, reaped below.
    unsafe {
        d.submit(req(7, Op::Read, 2, &mut b)).unwrap();
        d.submit(Request {
            tag: 8,
            op: Op::Write,
            sector: 12,
            buf: w.as_ptr() as *mut u8,
            len: S,
        })
        .unwrap();
    }
    assert_eq!(d.in_flight(), 2);
    assert_eq!(d.poll(), None, "answered before the timeout");
    NOW.store(5_999, Ordering::SeqCst);
    assert_eq!(d.poll(), None, "answered before the timeout");
    NOW.store(6_000, Ordering::SeqCst);
    let c = d.poll().expect("timed out");
    assert_eq!(c.tag, 7);
    assert_eq!(c.result, Err(BlockError::Timeout { sector: 2 }));
    let c = d.wait().expect("timed out");
    assert_eq!(
        (c.tag, c.result),
        (8, Err(BlockError::Timeout { sector: 12 }))
    );
    assert_eq!((d.in_flight(), d.timeouts), (0, 2));
    assert!(b.iter().all(|x| *x == 0xee), "a swallowed read wrote");
    let mut back = vec![0u8; S];
    d.inner_mut().read_sectors(12, &mut back).unwrap();
    assert!(
        back.iter().all(|x| *x == 13),
        "a swallowed write reached the disk"
    );
    let r = REPORTS.lock().unwrap().clone();
    assert_eq!(
        r[0].to_string(),
        "blk: device stopped answering: read of sectors 2..4 timed out after 0 ms"
    );
    assert_eq!(r[0].kind, FaultKind::Timeout { waited_ns: 1_000 });
    // Answering again: new requests complete.
    d.resume();
    d.read_sectors(2, &mut b).unwrap();
    assert!(b[..S].iter().all(|x| *x == 3));
}

#[test]
fn without_a_clock_a_wait_on_a_stalled_device_times_out_at_once() {
    let mut d = FaultyDisk::new(disk(8));
    d.stall();
    let mut b = vec![0u8; S];
    assert_eq!(
        d.read_sectors(1, &mut b),
        Err(BlockError::Timeout { sector: 1 })
    );
    assert!(d.flush().is_err());
    // The stalled device queues no more than its depth.
    let mut bufs = vec![vec![0u8; S]; d.queue_depth() + 1];
    let mut refused = 0;
    for (i, buf) in bufs.iter_mut().enumerate() {
        // SAFETY: the buffers outlive every completion, reaped below.
        if unsafe { d.submit(req(i as u64, Op::Read, 0, buf)) } == Err(BlockError::QueueFull) {
            refused += 1;
        }
    }
    assert_eq!(refused, 1);
    while d.wait().is_some() {}
    assert_eq!(d.in_flight(), 0);
}

#[test]
fn the_queue_mux_returns_a_timeout_to_a_sync_caller() {
    let mut d = FaultyDisk::new(disk(8));
    d.stall();
    let mut m = QueueMux::new(d);
    let mut b = vec![0u8; S];
    assert_eq!(
        m.read_sectors(3, &mut b),
        Err(BlockError::Timeout { sector: 3 })
    );
    m.inner_mut().resume();
    m.read_sectors(3, &mut b).unwrap();
    assert!(b.iter().all(|x| *x == 4));
}

#[test]
fn the_trace_names_every_request() {
    let mut d = FaultyDisk::new(disk(8));
    let mut b = vec![0u8; 2 * S];
    d.trace(true);
    d.read_sectors(2, &mut b).unwrap();
    d.write_sectors(5, &b[..S]).unwrap();
    let t = d.traced();
    assert_eq!(t.len(), 2);
    assert_eq!((t[0].op, t[0].sector, t[0].sectors), (Op::Read, 2, 2));
    assert_eq!(t[0].buf, b.as_ptr() as usize);
    assert_eq!((t[1].op, t[1].sector, t[1].sectors), (Op::Write, 5, 1));
    d.trace(false);
    assert!(d.traced().is_empty());
}
