//! A virtio-blk device that returns garbage, driven through the same
//! checks the kernel's virtio-mmio and virtio-blk drivers make: identity,
//! features, queue size, configuration (with a generation counter), then a
//! run of requests whose used-ring index, element ids, lengths and status
//! bytes come from the input. Nothing may panic; every answer must match a
//! model of which chains are in flight, and no descriptor may be lost or
//! handed out twice.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use virtio::blk::{self, Config, ResponseError};
use virtio::{SplitQueue, TransportError, UsedError};

/// Reads the input front to back; zeros once it runs out.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let n = N.min(self.0.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        out
    }
    fn u8(&mut self) -> u8 {
        self.bytes::<1>()[0]
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.bytes())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.bytes())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.bytes())
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

const QUEUE_SIZE: u16 = 96;
const CHAIN: u16 = 3;

fuzz_target!(|data: &[u8]| {
    let mut inp = Input(data);

    // Transport identity and features.
    let (magic, version, id) = (inp.u32(), inp.u32(), inp.u32());
    match virtio::check_identity(magic, version, id) {
        Ok(t) => assert!(magic == virtio::MAGIC && version == 2 && t == id && id != 0),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    let (offered, wanted) = (inp.u64(), inp.u64());
    match virtio::accept_features(offered, wanted) {
        Ok(f) => {
            assert_eq!(f & !offered, 0, "accepted a feature not offered");
            assert_eq!(
                f & !(wanted | virtio::F_VERSION_1),
                0,
                "accepted one not wanted"
            );
            assert_ne!(f & virtio::F_VERSION_1, 0);
        }
        Err(e) => assert_eq!(e, TransportError::FeaturesRejected),
    }

    // Configuration read against a generation counter from the input.
    let gens = inp.bytes::<8>();
    let mut g = gens.iter().copied();
    let mut cfg = [0u8; blk::CONFIG_BYTES];
    let raw_cfg = inp.bytes::<{ blk::CONFIG_BYTES }>();
    let r = virtio::read_consistent(
        4,
        || u32::from(g.next().unwrap_or(0)),
        |out| out.copy_from_slice(&raw_cfg),
        &mut cfg,
    );
    if r.is_err() {
        assert_eq!(r, Err(TransportError::ConfigUnstable));
    }
    match Config::parse(&cfg) {
        Ok(c) => {
            assert!(c.capacity > 0);
            assert_eq!(c.bytes() / blk::SECTOR_BYTES, c.capacity);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    let short = inp.u8() as usize % (blk::CONFIG_BYTES + 1);
    assert_eq!(
        Config::parse(&cfg[..short]).is_ok(),
        short == blk::CONFIG_BYTES && Config::parse(&cfg).is_ok()
    );

    // The queue the device offers.
    let max = inp.u32();
    let size = match virtio::queue_size(max, QUEUE_SIZE, CHAIN) {
        Ok(s) => {
            assert!((CHAIN..=QUEUE_SIZE).contains(&s) && u32::from(s) <= max);
            s
        }
        Err(e) => {
            assert!(max < u32::from(CHAIN));
            assert!(matches!(
                e,
                TransportError::QueueUnavailable | TransportError::QueueTooSmall { .. }
            ));
            return;
        }
    };
    let mut q = SplitQueue::new(size).expect("queue_size gives a usable size");

    // Requests: the model is head -> (descriptors, device-writable bytes).
    let mut model: BTreeMap<u16, (Vec<u16>, u64)> = BTreeMap::new();
    // What the device has published in the used ring.
    let mut dev_used = 0u16;
    while !inp.is_empty() {
        match inp.u8() % 5 {
            0 | 1 => {
                let data_len = blk::data_len(inp.u16() as usize * 512 + 512).unwrap();
                let bufs: Vec<(u32, bool)> = match inp.u8() % 3 {
                    0 => vec![(16, false), (data_len, true), (1, true)],
                    1 => vec![(16, false), (data_len, false), (1, true)],
                    _ => vec![(16, false), (1, true)],
                };
                let writable = bufs.iter().filter(|b| b.1).map(|b| u64::from(b.0)).sum();
                let mut ids = [0u16; 3];
                let free = q.free_descriptors();
                match q.alloc(&bufs, &mut ids) {
                    Some(c) => {
                        let ids = &ids[..bufs.len()];
                        assert_eq!(c.head, ids[0]);
                        assert!(c.avail_slot < size as usize);
                        for (held, _) in model.values() {
                            assert!(
                                ids.iter().all(|i| !held.contains(i)),
                                "descriptor handed out twice"
                            );
                        }
                        assert!(ids.iter().all(|&i| i < size));
                        model.insert(c.head, (ids.to_vec(), writable));
                    }
                    None => assert!(usize::from(free) < bufs.len()),
                }
            }
            2 | 3 => {
                // The device returns one element: a real head or garbage,
                // with a length and status byte from the input.
                let pick = inp.u8();
                let id = if pick & 1 == 0 && !model.is_empty() {
                    u32::from(*model.keys().nth(pick as usize / 2 % model.len()).unwrap())
                } else {
                    inp.u32() % (u32::from(size) + 8)
                };
                let exact = inp.u8() & 1 == 0;
                let raw_len = inp.u32();
                let status = inp.u8();
                dev_used = dev_used.wrapping_add(1);
                match q.pending(dev_used) {
                    Ok(n) => assert!(n >= 1 && n <= q.in_flight()),
                    Err(UsedError::IndexAhead { .. }) => {
                        // More completions than requests: the driver resets.
                        assert_eq!(q.in_flight(), 0);
                        dev_used = dev_used.wrapping_sub(1);
                        continue;
                    }
                    Err(e) => panic!("pending gave {e:?}"),
                }
                let slot = q.used_slot();
                assert!(slot < size as usize);
                let len = match (exact, u16::try_from(id).ok().and_then(|h| model.get(&h))) {
                    (true, Some((_, w))) => *w as u32,
                    _ => raw_len,
                };
                match q.complete(id, len) {
                    Ok(used) => {
                        let (_, writable) = model
                            .remove(&used.head)
                            .expect("completed a chain not in flight");
                        assert_eq!(u32::from(used.head), id);
                        assert_eq!(used.writable, writable);
                        assert_eq!(used.len, len);
                        let r = blk::check_response(&used, status);
                        match r {
                            Ok(()) => assert!(status == blk::S_OK && u64::from(len) == writable),
                            Err(ResponseError::BadLength { .. }) => {
                                assert_ne!(u64::from(len), writable)
                            }
                            Err(e) => {
                                assert_eq!(u64::from(len), writable);
                                assert_eq!(e.is_device_status(), status == 1 || status == 2);
                                assert_eq!(e.status(), e.is_device_status().then_some(status));
                                assert!(!e.to_string().is_empty());
                            }
                        }
                    }
                    Err(UsedError::IdOutOfRange { .. }) => assert!(id >= u32::from(size)),
                    Err(UsedError::NotInFlight { id: h }) => {
                        assert_eq!(u32::from(h), id);
                        assert!(!model.contains_key(&h));
                    }
                    Err(e) => panic!("complete gave {e:?}"),
                }
            }
            _ => {
                // A used index from nowhere.
                let idx = inp.u16();
                match q.pending(idx) {
                    Ok(n) => assert!(n <= q.in_flight()),
                    Err(UsedError::IndexAhead { in_flight, .. }) => {
                        assert_eq!(in_flight, q.in_flight());
                    }
                    Err(e) => panic!("pending gave {e:?}"),
                }
            }
        }
        let held: usize = model.values().map(|(d, _)| d.len()).sum();
        assert_eq!(usize::from(q.free_descriptors()) + held, usize::from(size));
        assert_eq!(usize::from(q.in_flight()), model.len());
        for h in model.keys() {
            assert!(q.is_in_flight(*h));
        }
    }
});
