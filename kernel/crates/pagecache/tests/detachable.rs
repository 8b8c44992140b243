//! `Detachable`: the environment taken away (the kernel's CMA pass) and
//! brought back. Hook calls made meanwhile are queued and replayed in
//! order, frees are returned, gets miss, puts are skipped: no stale copy
//! survives, no frame is lost.

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use blkdev::QueueMux;
use common::*;
use fat32::Fat32;
use pagecache::{
    CleancacheHooks, Detachable, HeapPageAllocator, LocalPageStates, PAGE_SIZE, PageAllocator,
    PageCache,
};

const P: usize = PAGE_SIZE as usize;

type DCache = PageCache<TestDisk, Detachable<(HeapPageAllocator, Recorder)>, LocalPageStates>;

fn detachable_cache(data: &[u8], budget: usize) -> (DCache, Log) {
    let log: Log = Rc::new(RefCell::new(Vec::new()));
    let disk = disk_with(&[("/d", data.to_vec())]);
    let fs = Fat32::mount(QueueMux::new(TestDisk::new(disk, log.clone()))).unwrap();
    let env = Detachable::new((HeapPageAllocator::new(), Recorder::new(log.clone(), true)));
    let pc = PageCache::new(fs, env, LocalPageStates::new(), cfg(budget, 0, 0));
    (pc, log)
}

fn recorder(pc: &DCache) -> &Recorder {
    &pc.env().get().expect("attached").1
}

#[test]
fn invalidations_while_detached_are_applied_on_attach_and_no_stale_byte_is_read() {
    let data = content(21, "d", 4 * P);
    let (mut pc, log) = detachable_cache(&data, 8);
    let f = pc.open("/d").unwrap();
    // All four pages go to the cleancache stand-in...
    let mut b = vec![0u8; 4 * P];
    pc.read(f, 0, &mut b).unwrap();
    assert_eq!(b, data);
    assert_eq!(pc.drop_clean_pages(), 4);
    assert_eq!(recorder(&pc).pages.len(), 4);
    // ...pages 0 and 3 come back (exclusive gets), 1 and 2 stay stored.
    let mut p = vec![0u8; P];
    pc.read(f, 0, &mut p).unwrap();
    pc.read(f, 3 * P as u64, &mut p).unwrap();
    assert_eq!(p, data[3 * P..]);
    assert_eq!(recorder(&pc).pages.len(), 2);
    let freed = pc.env().get().unwrap().0.freed;
    take_events(&log);

    // Taken away, as for a CMA pass.
    let away = pc.env_mut().detach().expect("attached");
    assert!(!pc.env().is_attached());
    // A write to cached page 0 and a truncate to two pages: both
    // invalidations are queued, page 3's frame is freed into the queue.
    pc.write(f, 0, b"new bytes").unwrap();
    pc.truncate(f, 2 * P as u64).unwrap();
    assert_eq!(pc.env().queued(), (1, 2));
    // Meanwhile: nothing is handed out, gets miss, puts are skipped.
    assert_eq!(pc.env_mut().alloc_page(), None);
    let mut out = [0u8; P];
    assert!(!pc.env_mut().get_page(f, 1, &mut out));
    pc.env_mut().put_page(f, 7, &out);
    // The environment itself saw none of it: its stale page 2 is there.
    assert!(away.1.pages.contains_key(&(f, 2)));
    assert!(!away.1.pages.contains_key(&(f, 7)));
    assert!(
        events(&log)
            .iter()
            .all(|e| matches!(e, Ev::DevRead(..) | Ev::DevWrite(..)))
    );
    away.1.log.borrow_mut().push(Ev::InitFs(0xdead));

    // Brought back: the invalidations replay in order, then the free.
    pc.env_mut().attach(away);
    assert_eq!(pc.env().queued(), (0, 0));
    let evs: Vec<Ev> = take_events(&log)
        .into_iter()
        .filter(|e| !matches!(e, Ev::DevRead(..) | Ev::DevWrite(..)))
        .collect();
    assert_eq!(
        evs,
        vec![Ev::InitFs(0xdead), Ev::InvalPage(f, 0), Ev::InvalFile(f, 2)]
    );
    assert_eq!(pc.env().get().unwrap().0.freed, freed + 1);
    assert!(!recorder(&pc).pages.contains_key(&(f, 2)));
    assert!(recorder(&pc).pages.contains_key(&(f, 1)));

    // The file grows back: pages 2 and 3 read as zeros, never the old bytes
    // the stand-in held for page 2; page 1 is restored from it intact.
    pc.truncate(f, 4 * P as u64).unwrap();
    let mut b = vec![0xffu8; 4 * P];
    pc.read(f, 0, &mut b).unwrap();
    assert_eq!(&b[..9], b"new bytes");
    assert_eq!(b[9..2 * P], data[9..2 * P]);
    assert!(b[2 * P..].iter().all(|&x| x == 0));
    assert!(events(&log).contains(&Ev::Get(f, 1, true)));
    pc.check_stats().unwrap();
    let (_fs, env, _) = pc.unmount().unwrap();
    assert!(env.into_inner().is_some());
}

#[test]
fn mount_calls_while_detached_replay_in_order() {
    let log: Log = Rc::new(RefCell::new(Vec::new()));
    let mut env = Detachable::new((HeapPageAllocator::new(), Recorder::new(log.clone(), true)));
    let frame = env.alloc_page().unwrap();
    let mut away = env.detach().unwrap();
    assert!(env.detach().is_none());
    env.free_page(frame);
    env.invalidate_fs();
    env.init_fs(7);
    env.invalidate_page(1, 2);
    env.invalidate_file(3, 0);
    assert!(!env.get_page(1, 2, &mut [0u8; P]));
    assert_eq!(env.queued(), (1, 4));
    assert!(log.borrow().is_empty());
    assert_eq!(away.0.freed, 0);
    away.1.pages.insert((3, 9), Box::new([1u8; P]));
    env.attach(away);
    assert_eq!(
        *log.borrow(),
        vec![
            Ev::InvalFs,
            Ev::InitFs(7),
            Ev::InvalPage(1, 2),
            Ev::InvalFile(3, 0)
        ]
    );
    let inner = env.into_inner().unwrap();
    assert_eq!((inner.0.freed, inner.0.outstanding()), (1, 0));
    assert!(inner.1.pages.is_empty());
}
