//! The page cache on the kernel's frame table: frames from the buddy
//! allocator, page state in the frame descriptors (state, flags, pin count,
//! reverse map), checked from the table's side.

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use blkdev::QueueMux;
use common::*;
use fat32::Fat32;
use frames::{FrameDesc, FrameFlags, FrameState, FrameTable, Pfn};
use pagecache::{BuddyPages, FrameDescStates, MigrateError, PAGE_SIZE, PAGECACHE_OWNER, PageCache};

const P: usize = PAGE_SIZE as usize;
type Table = Rc<RefCell<FrameTable<'static>>>;

/// A frame table over 256 real, page-aligned host pages.
fn table(pages: usize) -> (Table, Pfn) {
    let layout = std::alloc::Layout::from_size_align(pages * P, P).unwrap();
    // SAFETY: non-zero size; the memory is leaked on purpose: the table's
    // frames must stay valid for the whole test.
    let mem = unsafe { std::alloc::alloc_zeroed(layout) };
    assert!(!mem.is_null());
    let base = Pfn::from_addr(mem as u64);
    let descs: &'static mut [FrameDesc] =
        Box::leak(vec![FrameDesc::ABSENT; pages].into_boxed_slice());
    let mut t = FrameTable::new(descs, base).unwrap();
    t.add_free_range(base..base.add(pages as u64)).unwrap();
    (Rc::new(RefCell::new(t)), base)
}

#[test]
fn page_state_lives_in_the_frame_descriptors() {
    let (t, _) = table(256);
    let free0 = t.borrow().free_frames();
    let data = content(21, "ft", 20 * P);
    let log = Rc::new(RefCell::new(Vec::new()));
    let disk = disk_with(&[("/ft", data.clone())]);
    let fs = Fat32::mount(QueueMux::new(TestDisk::new(disk, log.clone()))).unwrap();
    // SAFETY: the table's frames are real host memory, leaked above.
    let alloc = unsafe { BuddyPages::new(t.clone()) };
    let mut pc = PageCache::new(
        fs,
        (alloc, Recorder::new(log.clone(), true)),
        FrameDescStates::new(t.clone()),
        cfg(8, 4, 8),
    );
    let f = pc.open("/ft").unwrap();

    // Hold completions: readahead pages are under I/O in their descriptors.
    pc.device_mut().hold = true;
    let mut b = vec![0u8; P];
    pc.read(f, 0, &mut b).unwrap();
    assert_eq!(b, data[..P]);
    let fr = pc.page_frame(f, 2).unwrap();
    let pfn = Pfn::from_addr(fr.addr() as u64);
    {
        let tb = t.borrow();
        let d = tb.frame(pfn).unwrap();
        assert_eq!(d.state(), FrameState::PageCache);
        assert_eq!(d.owner(), PAGECACHE_OWNER);
        assert_eq!((d.mapping() as u64, d.index()), (f, 2));
        assert!(
            d.flags()
                .contains(FrameFlags::UNDER_IO | FrameFlags::LOCKED | FrameFlags::PINNED)
        );
        assert_eq!(d.pin_count(), 1);
    }
    let spare = t.borrow_mut().alloc(0, FrameState::Allocated).unwrap();
    let target = pagecache::Frame::from_addr(spare.addr() as usize).unwrap();
    assert_eq!(pc.migrate(fr, target), Err(MigrateError::Busy));
    pc.device_mut().hold = false;

    // Reading the rest completes the I/O; the descriptor follows.
    let mut all = vec![0u8; 20 * P];
    pc.read(f, 0, &mut all).unwrap();
    assert_eq!(all, data);
    assert!(pc.cached_pages() <= 8);
    if let Some(fr) = pc.page_frame(f, 19) {
        let tb = t.borrow();
        let d = tb.frame(Pfn::from_addr(fr.addr() as u64)).unwrap();
        assert!(
            !d.flags()
                .intersects(FrameFlags::UNDER_IO | FrameFlags::PINNED)
        );
        assert_eq!(d.pin_count(), 0);
    }

    // Pin by a reader: PINNED in the descriptor, migration refused.
    let pinned = pc.pin_page(f, 19).unwrap();
    let pd = Pfn::from_addr(pinned.addr() as u64);
    assert!(
        t.borrow()
            .frame(pd)
            .unwrap()
            .flags()
            .contains(FrameFlags::PINNED)
    );
    assert_eq!(pc.migrate(pinned, target), Err(MigrateError::Busy));
    pc.unpin_page(pinned).unwrap();
    assert!(
        !t.borrow()
            .frame(pd)
            .unwrap()
            .flags()
            .contains(FrameFlags::PINNED)
    );
    // Migrate into a frame from elsewhere: it becomes a page-cache frame,
    // the reverse map moves with it.
    pc.migrate(pinned, target).unwrap();
    {
        let tb = t.borrow();
        let d = tb.frame(spare).unwrap();
        assert_eq!(d.state(), FrameState::PageCache);
        assert_eq!((d.mapping() as u64, d.index()), (f, 19));
        assert_eq!(tb.frame(pd).unwrap().owner(), 0);
    }
    assert_eq!(pc.frame_owner(target), Some((f, 19)));
    let mut p = vec![0u8; P];
    pc.read(f, 19 * P as u64, &mut p).unwrap();
    assert_eq!(p, data[19 * P..]);
    // The old frame is the caller's now: give it back to the buddy.
    t.borrow_mut().free(pd, 0).unwrap();

    // Dirty state too.
    pc.write(f, 3, b"dirty").unwrap();
    let d3 = pc.page_frame(f, 0).unwrap();
    assert!(
        t.borrow()
            .frame(Pfn::from_addr(d3.addr() as u64))
            .unwrap()
            .flags()
            .contains(FrameFlags::DIRTY)
    );
    pc.sync().unwrap();
    check_generic(&pc);
    let cached = pc.cached_pages() as u64;
    assert_eq!(t.borrow().state_count(FrameState::PageCache), cached);

    // Unmount gives every frame back (the migration target came from the
    // buddy too, so it goes back there).
    drop(pc.unmount().unwrap());
    let tb = t.borrow();
    assert_eq!(tb.state_count(FrameState::PageCache), 0);
    assert_eq!(tb.free_frames(), free0);
    tb.verify().unwrap();
}

fn check_generic<D, A, S, H>(pc: &PageCache<D, (A, H), S>)
where
    D: blkdev::BlockDevice,
    A: pagecache::PageAllocator,
    S: pagecache::PageStateStore,
    H: pagecache::CleancacheHooks,
{
    pc.check_stats().unwrap();
}
