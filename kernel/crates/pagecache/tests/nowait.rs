//! `read_nowait`: reads that never wait for the device, for a caller that
//! releases its lock while the device works. Bytes read back equal the
//! file's, an in-flight page is `InFlight` (nothing copied) until its
//! read completes, the counters move as for `read` (one miss, no hit for
//! the page it started), and a failed read reaches the caller that
//! started it.

mod common;

use common::*;
use pagecache::{Error, PAGE_SIZE, PageStateStore};

const P: usize = PAGE_SIZE as usize;

/// Calls `read_nowait` until it stops answering `InFlight`, letting the
/// device complete after `polls` tries; returns the bytes and the tries.
fn read_all_nowait(pc: &mut Cache, f: u64, off: u64, len: usize) -> (Vec<u8>, usize) {
    let mut out = vec![0u8; len];
    let (mut done, mut tries) = (0, 0);
    while done < len {
        match pc.read_nowait(f, off + done as u64, &mut out[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(Error::InFlight) => {
                tries += 1;
                // The device answers once the caller has let go.
                pc.device_mut().hold = false;
            }
            Err(e) => panic!("read_nowait: {e}"),
        }
    }
    out.truncate(done);
    (out, tries)
}

#[test]
fn in_flight_page_copies_nothing_then_reads_back() {
    let data = content(11, "n", 8 * P);
    let (mut pc, _log) = cache_on(disk_with(&[("/n", data.clone())]), cfg(64, 4, 4), false);
    let f = pc.open("/n").unwrap();
    pc.device_mut().hold = true;
    let mut b = vec![0u8; 2 * P];
    // Nothing cached: the read starts (page 0 and its readahead) and says
    // so, copying nothing.
    assert_eq!(pc.read_nowait(f, 0, &mut b), Err(Error::InFlight));
    assert_eq!(pc.read_nowait(f, 0, &mut b), Err(Error::InFlight));
    assert_eq!(pc.stats().misses, 1, "a miss is counted once");
    pc.device_mut().hold = false;
    let (got, _) = read_all_nowait(&mut pc, f, 0, 8 * P);
    assert_eq!(got, data);
    let s = pc.stats();
    assert_eq!(s.misses, s.demand_reads + s.cc_demand_restores);
    check(&pc);
}

#[test]
fn partial_copy_stops_at_the_first_page_under_io() {
    let data = content(12, "m", 8 * P);
    let (mut pc, _log) = cache_on(disk_with(&[("/m", data.clone())]), cfg(64, 1, 1), false);
    let f = pc.open("/m").unwrap();
    // Page 0 cached, page 1 not: a two-page read copies page 0 only.
    let mut one = vec![0u8; P];
    pc.read(f, 0, &mut one).unwrap();
    pc.device_mut().hold = true;
    let mut b = vec![0u8; 2 * P];
    assert_eq!(pc.read_nowait(f, 0, &mut b), Ok(P));
    assert_eq!(b[..P], data[..P]);
    assert_eq!(pc.read_nowait(f, P as u64, &mut b), Err(Error::InFlight));
    pc.device_mut().hold = false;
    assert_eq!(pc.read_nowait(f, P as u64, &mut b[..P]), Ok(P));
    assert_eq!(b[..P], data[P..2 * P]);
    let s = pc.stats();
    // Page 0 was a hit (cached by the first read); page 1, which the
    // second call started and the third finished, is a miss and no hit.
    assert_eq!((s.misses, s.hits), (2, 1));
    check(&pc);
}

#[test]
fn past_the_end_and_end_of_file() {
    let data = content(13, "e", P + 10);
    let (mut pc, _log) = cache_on(disk_with(&[("/e", data.clone())]), cfg(64, 4, 4), false);
    let f = pc.open("/e").unwrap();
    let (got, _) = read_all_nowait(&mut pc, f, 0, 3 * P);
    assert_eq!(got, data);
    let mut b = [0u8; 8];
    assert_eq!(pc.read_nowait(f, data.len() as u64, &mut b), Ok(0));
    assert!(matches!(
        pc.read_nowait(f, data.len() as u64 + 1, &mut b),
        Err(Error::BeyondEof { .. })
    ));
}

#[test]
fn pin_nowait_pins_only_a_page_that_is_read() {
    let data = content(14, "p", 4 * P);
    let (mut pc, _log) = cache_on(disk_with(&[("/p", data.clone())]), cfg(64, 1, 1), false);
    let f = pc.open("/p").unwrap();
    pc.device_mut().hold = true;
    assert_eq!(pc.pin_page_nowait(f, 2), Err(Error::InFlight));
    pc.device_mut().hold = false;
    let fr = pc.pin_page_nowait(f, 2).unwrap();
    assert_eq!(pc.states().pin_count(fr), 1, "one pin: the read's is gone");
    let mut b = vec![0u8; P];
    pc.read(f, 2 * P as u64, &mut b).unwrap();
    assert_eq!(b, data[2 * P..3 * P]);
    pc.unpin_page(fr).unwrap();
    assert_eq!(pc.unpin_page(fr), Err(Error::NotPinned));
    assert!(matches!(
        pc.pin_page_nowait(f, 4),
        Err(Error::BeyondEof { .. })
    ));
    check(&pc);
}

#[test]
fn a_blocking_read_finishes_what_read_nowait_started() {
    let data = content(15, "b", 4 * P);
    let (mut pc, _log) = cache_on(disk_with(&[("/b", data.clone())]), cfg(64, 1, 1), false);
    let f = pc.open("/b").unwrap();
    pc.device_mut().hold = true;
    let mut b = vec![0u8; P];
    assert_eq!(pc.read_nowait(f, P as u64, &mut b), Err(Error::InFlight));
    // `read` waits for the device (whose `wait` completes while held) and
    // finishes the read the nowait call started: the same page, one miss,
    // no hit.
    assert_eq!(pc.read(f, P as u64, &mut b), Ok(P));
    assert_eq!(b, data[P..2 * P]);
    let s = pc.stats();
    assert_eq!((s.misses, s.hits), (1, 0));
    pc.device_mut().hold = false;
    assert_eq!(pc.read(f, P as u64, &mut b), Ok(P));
    assert_eq!(b, data[P..2 * P]);
    assert_eq!(pc.stats().hits, 1, "then it is cached");
    check(&pc);
}
