//! Host tests: every refusal, and the queue invariants over long runs.

extern crate std;

use std::collections::BTreeMap;
use std::string::ToString;
use std::vec::Vec;

use crate::blk::{self, Config, ConfigError, ResponseError};
use crate::*;

#[test]
fn identity_registers() {
    assert_eq!(check_identity(MAGIC, 2, DEVICE_ID_BLOCK), Ok(2));
    assert_eq!(check_identity(0, 2, 2), Err(TransportError::BadMagic(0)));
    assert_eq!(check_identity(MAGIC, 1, 2), Err(TransportError::Legacy));
    assert_eq!(
        check_identity(MAGIC, 3, 2),
        Err(TransportError::UnsupportedVersion(3))
    );
    // An empty slot is "no device" in either version.
    assert_eq!(check_identity(MAGIC, 1, 0), Err(TransportError::NoDevice));
    assert_eq!(check_identity(MAGIC, 2, 0), Err(TransportError::NoDevice));
    assert!(
        TransportError::Legacy
            .to_string()
            .contains("force-legacy=false")
    );
}

#[test]
fn features_need_version_1_and_are_intersected() {
    assert_eq!(
        accept_features(0xffff_ffff, blk::F_RO),
        Err(TransportError::FeaturesRejected)
    );
    let offered = F_VERSION_1 | blk::F_FLUSH | (1 << 7);
    assert_eq!(
        accept_features(offered, blk::F_RO | blk::F_FLUSH),
        Ok(F_VERSION_1 | blk::F_FLUSH)
    );
}

#[test]
fn queue_size_is_bounded_both_ways() {
    assert_eq!(queue_size(0, 96, 3), Err(TransportError::QueueUnavailable));
    assert_eq!(
        queue_size(2, 96, 3),
        Err(TransportError::QueueTooSmall { max: 2, needed: 3 })
    );
    assert_eq!(queue_size(3, 96, 3), Ok(3));
    assert_eq!(queue_size(64, 96, 3), Ok(64));
    assert_eq!(queue_size(u32::MAX, 96, 3), Ok(96));
    assert_eq!(queue_size(u32::MAX, u16::MAX, 3), Ok(MAX_QUEUE_SIZE));
    assert!(
        TransportError::QueueTooSmall { max: 2, needed: 3 }
            .to_string()
            .contains("at most 2 descriptors")
    );
}

#[test]
fn configuration_reads_retry_then_give_up() {
    // A counter that changes during the first two reads only.
    let mut counter = [0u32, 1, 1, 2, 2, 2].into_iter();
    let mut reads = 0;
    let mut out = [0u8; 8];
    let r = read_consistent(
        10,
        || counter.next().unwrap(),
        |o| {
            reads += 1;
            o.fill(reads);
        },
        &mut out,
    );
    assert_eq!(r, Ok(()));
    assert_eq!(reads, 3);
    assert_eq!(out, [3; 8]);
    // One that never settles.
    let mut n = 0u32;
    let r = read_consistent(
        5,
        || {
            n += 1;
            n
        },
        |_| {},
        &mut out,
    );
    assert_eq!(r, Err(TransportError::ConfigUnstable));
    assert_eq!(n, 10);
}

#[test]
fn block_configuration() {
    assert_eq!(
        Config::parse(&2048u64.to_le_bytes()),
        Ok(Config { capacity: 2048 })
    );
    assert_eq!(
        Config::parse(&2048u64.to_le_bytes()).unwrap().bytes(),
        1 << 20
    );
    assert_eq!(Config::parse(&[1, 2, 3]), Err(ConfigError::Short(3)));
    assert_eq!(Config::parse(&[0; 8]), Err(ConfigError::Empty));
    let top = u64::MAX / 512;
    assert_eq!(
        Config::parse(&top.to_le_bytes()).map(|c| c.capacity),
        Ok(top)
    );
    assert_eq!(
        Config::parse(&(top + 1).to_le_bytes()),
        Err(ConfigError::TooLarge(top + 1))
    );
    assert_eq!(
        Config::parse(&[0xff; 8]),
        Err(ConfigError::TooLarge(u64::MAX))
    );
}

#[test]
fn status_bytes() {
    assert_eq!(blk::check_status(blk::S_OK), Ok(()));
    assert_eq!(blk::check_status(1), Err(ResponseError::IoError));
    assert_eq!(blk::check_status(2), Err(ResponseError::Unsupported));
    assert_eq!(
        blk::check_status(0xff),
        Err(ResponseError::StatusNotWritten)
    );
    for s in 3..0xff {
        assert_eq!(blk::check_status(s), Err(ResponseError::BadStatus(s)));
        assert!(!ResponseError::BadStatus(s).is_device_status());
    }
    assert_eq!(ResponseError::IoError.status(), Some(1));
    assert_eq!(ResponseError::Unsupported.status(), Some(2));
    assert_eq!(ResponseError::StatusNotWritten.status(), None);
    assert_eq!(
        ResponseError::BadStatus(7).to_string(),
        "status byte 0x07 is not a virtio-blk status"
    );
}

#[test]
fn used_length_must_cover_exactly_the_writable_bytes() {
    let used = |len, writable| Used {
        head: 0,
        len,
        writable,
    };
    assert_eq!(blk::check_response(&used(4097, 4097), 0), Ok(()));
    assert_eq!(
        blk::check_response(&used(4097, 4097), 1),
        Err(ResponseError::IoError)
    );
    // Short: the status byte is not covered, whatever it holds.
    assert_eq!(
        blk::check_response(&used(4096, 4097), 0),
        Err(ResponseError::BadLength {
            len: 4096,
            expected: 4097
        })
    );
    assert_eq!(
        blk::check_response(&used(0, 1), 0),
        Err(ResponseError::BadLength {
            len: 0,
            expected: 1
        })
    );
    assert_eq!(
        blk::check_response(&used(u32::MAX, 1), 0),
        Err(ResponseError::BadLength {
            len: u32::MAX,
            expected: 1
        })
    );
    assert_eq!(blk::data_len(4096), Some(4096));
    assert_eq!(blk::data_len(u32::MAX as usize), None);
    assert_eq!(blk::data_len(1 << 40), None);
}

#[test]
fn queue_sizes() {
    assert_eq!(SplitQueue::new(0).err(), Some(QueueError::BadSize(0)));
    assert_eq!(
        SplitQueue::new(32769).err(),
        Some(QueueError::BadSize(32769))
    );
    let q = SplitQueue::new(MAX_QUEUE_SIZE).unwrap();
    assert_eq!(q.free_descriptors(), MAX_QUEUE_SIZE);
    assert_eq!(SplitQueue::new(1).unwrap().peek_free_head(), Some(0));
}

const READ: [(u32, bool); 3] = [(16, false), (4096, true), (1, true)];
const WRITE: [(u32, bool); 3] = [(16, false), (512, false), (1, true)];
const FLUSH: [(u32, bool); 2] = [(16, false), (1, true)];

#[test]
fn chains_take_free_descriptors_and_give_them_back() {
    let mut q = SplitQueue::new(8).unwrap();
    let mut ids = [0u16; 3];
    let a = q.alloc(&READ, &mut ids).unwrap();
    assert_eq!(a.head, 0);
    assert_eq!(ids, [0, 1, 2]);
    assert_eq!((a.avail_slot, a.avail_idx), (0, 1));
    let b = q.alloc(&FLUSH, &mut ids).unwrap();
    assert_eq!(b.head, 3);
    assert_eq!(&ids[..2], &[3, 4]);
    assert_eq!(q.free_descriptors(), 3);
    // Not enough left for a three-descriptor chain? Three are: take them.
    let c = q.alloc(&WRITE, &mut ids).unwrap();
    assert_eq!(ids, [5, 6, 7]);
    assert_eq!(q.free_descriptors(), 0);
    assert_eq!(q.peek_free_head(), None);
    assert_eq!(q.alloc(&FLUSH, &mut ids), None);
    assert_eq!(q.in_flight(), 3);

    // The device returns them out of order.
    assert_eq!(q.pending(2), Ok(2));
    assert_eq!(q.used_slot(), 0);
    let u = q.complete(b.head as u32, 1).unwrap();
    assert_eq!((u.head, u.len, u.writable), (3, 1, 1));
    assert_eq!(q.used_slot(), 1);
    assert_eq!(q.complete(a.head as u32, 4097).unwrap().writable, 4097);
    assert_eq!(q.free_descriptors(), 5);
    // The next chain reuses the last freed head first.
    assert_eq!(q.peek_free_head(), Some(0));
    let d = q.alloc(&READ, &mut ids).unwrap();
    assert_eq!(d.head, 0);
    assert_eq!(ids, [0, 1, 2]);
    assert!(q.is_in_flight(c.head) && q.is_in_flight(d.head) && !q.is_in_flight(3));
}

#[test]
fn bad_used_elements_are_refused() {
    let mut q = SplitQueue::new(6).unwrap();
    let mut ids = [0u16; 3];
    let a = q.alloc(&READ, &mut ids).unwrap();
    // More used entries than requests in flight.
    assert_eq!(
        q.pending(2),
        Err(UsedError::IndexAhead {
            used_idx: 2,
            last_used: 0,
            in_flight: 1
        })
    );
    assert_eq!(
        q.pending(u16::MAX),
        Err(UsedError::IndexAhead {
            used_idx: u16::MAX,
            last_used: 0,
            in_flight: 1
        })
    );
    assert_eq!(q.pending(0), Ok(0));
    assert_eq!(
        q.complete(6, 0),
        Err(UsedError::IdOutOfRange { id: 6, size: 6 })
    );
    assert_eq!(
        q.complete(u32::MAX, 0),
        Err(UsedError::IdOutOfRange {
            id: u32::MAX,
            size: 6
        })
    );
    // Inside the chain, not its head; a free descriptor.
    assert_eq!(q.complete(1, 0), Err(UsedError::NotInFlight { id: 1 }));
    assert_eq!(q.complete(4, 0), Err(UsedError::NotInFlight { id: 4 }));
    // A 16-bit truncation of the id must not alias a real head.
    assert_eq!(
        q.complete(0x1_0000 + a.head as u32, 0),
        Err(UsedError::IdOutOfRange {
            id: 0x1_0000,
            size: 6
        })
    );
    // The real one, then the same one again.
    assert!(q.complete(a.head as u32, 4097).is_ok());
    assert_eq!(
        q.complete(a.head as u32, 4097),
        Err(UsedError::NotInFlight { id: 0 })
    );
    assert_eq!(q.free_descriptors(), 6);
    assert!(
        UsedError::IndexAhead {
            used_idx: 3,
            last_used: 1,
            in_flight: 1
        }
        .to_string()
        .contains("2 entries past 1")
    );
}

/// Deterministic xorshift for the long run below.
fn rng(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn long_random_run_keeps_every_descriptor_accounted_for() {
    // Queue sizes that are not powers of two (the driver uses 96) across
    // the 16-bit index wrap.
    for size in [3u16, 7, 96, 128] {
        let mut q = SplitQueue::new(size).unwrap();
        let mut owned: BTreeMap<u16, Vec<u16>> = BTreeMap::new();
        let mut used_idx = 0u16;
        let mut s = 0x9E37_79B9_7F4A_7C15u64 ^ size as u64;
        for step in 0..200_000u32 {
            if rng(&mut s).is_multiple_of(2) {
                let bufs: &[(u32, bool)] = if rng(&mut s).is_multiple_of(3) {
                    &FLUSH
                } else {
                    &READ
                };
                let mut ids = [0u16; 3];
                match q.alloc(bufs, &mut ids) {
                    Some(c) => {
                        let ids = &ids[..bufs.len()];
                        assert_eq!(c.head, ids[0]);
                        for chain in owned.values() {
                            assert!(
                                ids.iter().all(|i| !chain.contains(i)),
                                "step {step}: reused"
                            );
                        }
                        assert!(ids.iter().all(|&i| i < size));
                        owned.insert(c.head, ids.to_vec());
                    }
                    None => assert!(q.free_descriptors() < bufs.len() as u16),
                }
            } else if let Some(&head) = owned
                .keys()
                .nth((rng(&mut s) as usize) % owned.len().max(1))
            {
                used_idx = used_idx.wrapping_add(1);
                assert_eq!(q.pending(used_idx), Ok(1));
                let n = owned[&head].len() as u32;
                let writable = if n == 2 { 1 } else { 4097 };
                assert_eq!(
                    q.complete(head as u32, writable).unwrap().writable,
                    writable as u64
                );
                owned.remove(&head);
            }
            let held: usize = owned.values().map(Vec::len).sum();
            assert_eq!(
                q.free_descriptors() as usize + held,
                size as usize,
                "step {step}"
            );
            assert_eq!(q.in_flight() as usize, owned.len());
        }
    }
}
