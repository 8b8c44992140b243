//! RAM disk, fault injection and the queue multiplexer.

use blkdev::{BlockDevice, BlockError, FaultyDisk, Op, QueueMux, RamDisk, Request, SECTOR_SIZE};

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
    assert_eq!(d.inner().stats().sectors_written, 0);
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
