//! The page cache outside this kernel, on the host: what another kernel
//! supplies to it, each piece written here from scratch.
//!
//! * A filesystem of the example's own, [`SlotFs`]: a flat namespace of up
//!   to 4 files, file `s` owning every 4th page of a RAM disk from page `s`
//!   (so only the block map finds a file's pages), names and sizes kept in
//!   memory. It implements [`pagecache::Filesystem`].
//! * An environment, [`Arena`]: one pool of 40 page-aligned frames of host
//!   memory that both lends the page cache its frames
//!   ([`pagecache::PageAllocator`]) and keeps copies of the clean pages it
//!   evicts ([`pagecache::CleancacheHooks`]), so the two halves share state
//!   as a kernel's memory areas and cleancache do. A frame the page cache
//!   asks for wins over a copy (the copy is dropped: the disk has the data).
//! * The page states in [`pagecache::LocalPageStates`] (a kernel with frame
//!   descriptors uses `FrameDescStates` instead).
//!
//! The steps: write two files through an 8-page cache (reclaim writes
//! dirty pages back), read one back from the copies alone (no device read),
//! overwrite pages (their copies go first), truncate and grow (zeros, no
//! old bytes), pin and migrate a page, remove a file and reuse its slot (the
//! disk still holds the old bytes; the new file never shows them), unmount
//! (every copy of the mount dropped), mount again and fill the pool until a
//! frame for the page cache is taken from a copy. Every read is compared
//! with the expected bytes, the disk with what was written, and the
//! counters with what the steps imply; a wrong one panics (non-zero exit).
//!
//! `cargo run -p pagecache --example host_slot_fs --target x86_64-unknown-linux-gnu`

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::collections::{BTreeMap, VecDeque};

use blkdev::{BlockDevice, QueueMux, RamDisk};
use fat32::{DirEntry, FsError, Metadata, PageMap};
use frames::PageBytes;
use pagecache::{
    CleancacheHooks, Config, FileId, Filesystem, Frame, LocalPageStates, MigrateError, PAGE_SIZE,
    PageAllocator, PageCache, PageFlags, PageIndex,
};

const P: usize = PAGE_SIZE as usize;
/// Sectors of 512 bytes in a page.
const SPP: u64 = PAGE_SIZE / 512;
/// Files the slot filesystem holds.
const SLOTS: u64 = 4;
/// Pages a file may have.
const SLOT_PAGES: u64 = 16;
/// The volume serial handed to the hooks.
const VOLUME: u32 = 0x510f_5001;
/// Frames in the environment's pool, and pages the page cache may hold.
const ARENA_FRAMES: usize = 40;
const BUDGET: usize = 8;

type Cache = PageCache<RamDisk, Arena, LocalPageStates, SlotFs>;

// ---- the filesystem ----

/// File `id` lives in slot `id - 1`; page `i` of slot `s` is disk page
/// `i * SLOTS + s`.
struct SlotFs {
    dev: QueueMux<RamDisk>,
    /// Live files: name and size.
    files: BTreeMap<FileId, (String, u64)>,
}

impl SlotFs {
    fn new() -> Self {
        SlotFs {
            dev: QueueMux::new(RamDisk::new(SLOTS * SLOT_PAGES * SPP)),
            files: BTreeMap::new(),
        }
    }
    fn first_sector(id: FileId, index: u64) -> u64 {
        (index * SLOTS + (id - 1)) * SPP
    }
    /// What the disk holds for `len` bytes of slot `id`, whatever the file.
    fn disk_bytes(&self, id: FileId, len: usize) -> Vec<u8> {
        let disk = self.dev.inner().as_bytes();
        let mut out = Vec::new();
        for i in 0..(len as u64).div_ceil(PAGE_SIZE) {
            let at = (Self::first_sector(id, i) * 512) as usize;
            out.extend_from_slice(&disk[at..at + P]);
        }
        out.truncate(len);
        out
    }
    fn id_of(&self, path: &str) -> Option<FileId> {
        let name = path.trim_start_matches('/');
        self.files
            .iter()
            .find_map(|(id, (n, _))| (n == name).then_some(*id))
    }
    fn meta(&self, id: FileId) -> Result<Metadata, FsError> {
        let (_, size) = self.files.get(&id).ok_or(FsError::StaleFile)?;
        Ok(Metadata {
            id,
            size: *size,
            is_dir: false,
            first_cluster: 0,
        })
    }
}

impl Filesystem for SlotFs {
    type Device = QueueMux<RamDisk>;
    fn volume_id(&self) -> u32 {
        VOLUME
    }
    fn lookup(&mut self, path: &str) -> Result<Metadata, FsError> {
        self.id_of(path)
            .ok_or(FsError::NotFound)
            .and_then(|id| self.meta(id))
    }
    fn metadata(&mut self, id: FileId) -> Result<Metadata, FsError> {
        self.meta(id)
    }
    fn create(&mut self, path: &str) -> Result<FileId, FsError> {
        // A name: 1 to 16 bytes, no directories.
        let name = path.trim_start_matches('/');
        match (name.len(), name.contains('/'), self.id_of(name)) {
            (1..=16, false, None) => {}
            (_, _, Some(_)) => return Err(FsError::AlreadyExists),
            _ => return Err(FsError::InvalidName),
        }
        // The lowest free slot: ids are reused, as the trait allows.
        let id = (1..=SLOTS)
            .find(|id| !self.files.contains_key(id))
            .ok_or(FsError::NoSpace)?;
        self.files.insert(id, (name.into(), 0));
        Ok(id)
    }
    fn mkdir(&mut self, _path: &str) -> Result<FileId, FsError> {
        Err(FsError::Unsupported(
            "no directories in the slot filesystem",
        ))
    }
    fn read_dir(&mut self, _path: &str) -> Result<Vec<DirEntry>, FsError> {
        let entry = |(id, (name, size)): (&FileId, &(String, u64))| DirEntry {
            name: name.clone(),
            short_name: name.clone(),
            id: *id,
            size: *size,
            is_dir: false,
        };
        Ok(self.files.iter().map(entry).collect())
    }
    fn remove(&mut self, path: &str) -> Result<Metadata, FsError> {
        let id = self.id_of(path).ok_or(FsError::NotFound)?;
        let meta = self.meta(id)?;
        self.files.remove(&id);
        Ok(meta)
    }
    fn bmap(&mut self, id: FileId, index: u32) -> Result<PageMap, FsError> {
        let (_, size) = self.files.get(&id).ok_or(FsError::StaleFile)?;
        let mut map = PageMap::default();
        // Only pages inside the file's allocation (its size, in pages).
        if u64::from(index) < size.div_ceil(PAGE_SIZE) {
            let first = Self::first_sector(id, index.into());
            for s in first..first + SPP {
                assert!(map.add_sector(s));
            }
        }
        Ok(map)
    }
    fn check_grow(&mut self, id: FileId, len: u64) -> Result<(), FsError> {
        self.meta(id)?;
        if len > SLOT_PAGES * PAGE_SIZE {
            return Err(FsError::NoSpace);
        }
        Ok(())
    }
    fn set_len_uninit(&mut self, id: FileId, len: u64) -> Result<(), FsError> {
        self.check_grow(id, len)?;
        self.files.get_mut(&id).ok_or(FsError::StaleFile)?.1 = len;
        Ok(())
    }
    fn sync(&mut self) -> Result<(), FsError> {
        Ok(self.dev.flush()?)
    }
    fn device_mut(&mut self) -> &mut QueueMux<RamDisk> {
        &mut self.dev
    }
}

// ---- the environment: frames and cleancache from one pool ----

/// The bytes of a pool frame.
///
/// # Safety
///
/// `f` is one of the arena's frames and no other reference to its bytes
/// is alive (the arena's own free frames and copies, never a frame the
/// page cache holds).
// SAFETY (contract): the `# Safety` section above; callers uphold it.
unsafe fn frame_bytes<'a>(f: Frame) -> &'a mut PageBytes {
    // SAFETY: arena frames are PAGE_SIZE-byte, page-aligned heap blocks
    // that live as long as the arena; the caller holds the only reference.
    unsafe { &mut *(f.addr() as *mut PageBytes) }
}

type CopyKey = (u64, FileId, PageIndex);

#[derive(Debug, Default, Clone, Copy)]
struct ArenaStats {
    puts: u64,
    hits: u64,
    invalidated: u64,
    /// Copies dropped because the page cache needed the frame.
    reclaimed: u64,
}

struct Arena {
    all: Vec<Frame>,
    free: Vec<Frame>,
    copies: BTreeMap<CopyKey, Frame>,
    /// Copies oldest first (may name copies already gone).
    order: VecDeque<CopyKey>,
    /// The current mount: a generation no earlier mount had.
    mount: Option<u64>,
    generations: u64,
    stats: ArenaStats,
}

impl Arena {
    fn layout() -> Layout {
        Layout::from_size_align(P, P).expect("page layout")
    }
    fn new(frames: usize) -> Self {
        let all: Vec<Frame> = (0..frames)
            .map(|_| {
                // SAFETY: the layout has a non-zero size.
                let p = unsafe { alloc_zeroed(Self::layout()) };
                Frame::from_addr(p as usize).expect("out of host memory")
            })
            .collect();
        Arena {
            free: all.clone(),
            all,
            copies: BTreeMap::new(),
            order: VecDeque::new(),
            mount: None,
            generations: 0,
            stats: ArenaStats::default(),
        }
    }
    fn holds(&self, file: FileId, index: PageIndex) -> bool {
        self.mount
            .is_some_and(|m| self.copies.contains_key(&(m, file, index)))
    }
    fn drop_copies(&mut self, keep: impl Fn(&CopyKey) -> bool) {
        let gone: Vec<CopyKey> = self.copies.keys().filter(|k| !keep(k)).copied().collect();
        for k in gone {
            self.free.extend(self.copies.remove(&k));
            self.stats.invalidated += 1;
        }
    }
    /// The oldest copy's frame, the copy dropped.
    fn reclaim_copy(&mut self) -> Option<Frame> {
        while let Some(k) = self.order.pop_front() {
            if let Some(f) = self.copies.remove(&k) {
                self.stats.reclaimed += 1;
                return Some(f);
            }
        }
        None
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        for f in &self.all {
            // SAFETY: every frame was allocated in `new` with `layout()`;
            // the page cache that used the arena is gone (it owned it).
            unsafe { dealloc(f.addr() as *mut u8, Self::layout()) };
        }
    }
}

// SAFETY: a frame is handed out only from `free` (or from a dropped copy),
// so no one else uses it until `free_page` brings it back; arena frames
// are page-aligned PAGE_SIZE-byte blocks that outlive the page cache.
unsafe impl PageAllocator for Arena {
    fn alloc_page(&mut self) -> Option<Frame> {
        self.free.pop().or_else(|| self.reclaim_copy())
    }
    fn free_page(&mut self, frame: Frame) {
        assert!(self.all.contains(&frame), "a frame the arena never had");
        self.free.push(frame);
    }
}

impl CleancacheHooks for Arena {
    fn init_fs(&mut self, _volume: u32) {
        self.generations += 1;
        self.mount = Some(self.generations);
    }
    fn invalidate_fs(&mut self) {
        if let Some(m) = self.mount.take() {
            self.drop_copies(|k| k.0 != m);
        }
    }
    fn put_page(&mut self, file: FileId, index: PageIndex, data: &PageBytes) {
        let Some(m) = self.mount else { return };
        // Only into a free frame: a put never takes a frame the page cache
        // may need, and never replaces another copy.
        let Some(f) = self.free.pop() else { return };
        // SAFETY: `f` was free: the arena's, referenced nowhere else.
        unsafe { frame_bytes(f) }.copy_from_slice(data);
        self.free.extend(self.copies.insert((m, file, index), f));
        self.order.push_back((m, file, index));
        self.stats.puts += 1;
    }
    fn get_page(&mut self, file: FileId, index: PageIndex, out: &mut PageBytes) -> bool {
        let Some(m) = self.mount else { return false };
        // Exclusive: the copy leaves as the page goes back into the cache.
        let Some(f) = self.copies.remove(&(m, file, index)) else {
            return false;
        };
        // SAFETY: `f` held a copy: the arena's, referenced nowhere else.
        out.copy_from_slice(unsafe { frame_bytes(f) });
        self.free.push(f);
        self.stats.hits += 1;
        true
    }
    fn invalidate_page(&mut self, file: FileId, index: PageIndex) {
        self.drop_copies(|k| (k.1, k.2) != (file, index));
    }
    fn invalidate_file(&mut self, file: FileId, from: PageIndex) {
        self.drop_copies(|k| k.1 != file || k.2 < from);
    }
}

// ---- the steps ----

fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len).map(|i| (i * 13 + i / P) as u8 ^ salt).collect()
}

fn read_all(pc: &mut Cache, id: FileId) -> Vec<u8> {
    let mut buf = vec![0xeeu8; pc.file_size(id).expect("size") as usize];
    assert_eq!(pc.read(id, 0, &mut buf).expect("read"), buf.len());
    buf
}

fn config() -> Config {
    Config {
        budget_pages: BUDGET,
        ra_init_pages: 2,
        ra_max_pages: 4,
        writeback_batch: 4,
    }
}

fn main() {
    let mut pc: Cache = PageCache::new(
        SlotFs::new(),
        Arena::new(ARENA_FRAMES),
        LocalPageStates::new(),
        config(),
    );
    pc.check_stats().expect("stats");

    // 1. Two files written through an 8-page cache: reclaim writes dirty
    //    pages back to make room; the clean ones it evicts become copies.
    let data = pc.create("data").expect("create data");
    let log = pc.create("log").expect("create log");
    let mut want_data = pattern(12 * P + 100, 0x5a);
    let want_log = pattern(3 * P, 0xa5);
    assert_eq!(
        pc.write(data, 0, &want_data).expect("write"),
        want_data.len()
    );
    assert_eq!(pc.write(log, 0, &want_log).expect("write"), want_log.len());
    let last = pc.page_flags(log, 2).expect("cached");
    assert!(last.contains(PageFlags::DIRTY | PageFlags::UPTODATE));
    pc.sync().expect("sync");
    assert!(
        !pc.page_flags(log, 2)
            .expect("cached")
            .contains(PageFlags::DIRTY)
    );
    assert!(pc.cached_pages() <= BUDGET);
    assert!(pc.stats().reclaim_writebacks > 0, "{:?}", pc.stats());
    assert_eq!(pc.fs().disk_bytes(data, want_data.len()), want_data);
    assert_eq!(pc.fs().disk_bytes(log, want_log.len()), want_log);
    pc.check_stats().expect("stats");
    println!(
        "write: 16 pages through {BUDGET} frames, {} written back by reclaim, disk verified",
        pc.stats().reclaim_writebacks
    );

    // 2. Every page evicted: each one is a copy in the arena; reading
    //    `data` again takes all 13 pages from the copies, none from disk.
    pc.drop_clean_pages();
    assert_eq!(pc.cached_pages(), 0);
    assert!((0..13).all(|i| pc.env().holds(data, i)));
    let before = *pc.stats();
    assert_eq!(read_all(&mut pc, data), want_data);
    let after = *pc.stats();
    let restored = (after.cc_demand_restores + after.cc_ra_restores)
        - (before.cc_demand_restores + before.cc_ra_restores);
    assert_eq!(restored, 13);
    assert_eq!(after.pages_read, before.pages_read, "no device read");
    // Exclusive gets: a page in the cache has no copy (those the read
    // evicted again are copies again).
    let cached: Vec<PageIndex> = (0..13)
        .filter(|&i| pc.page_frame(data, i).is_some())
        .collect();
    assert!(!cached.is_empty());
    assert!(cached.iter().all(|&i| !pc.env().holds(data, i)));
    pc.check_stats().expect("stats");
    println!("cleancache: data read back from 13 copies, 0 device reads");

    // 3. Overwrites: a whole page (no read; its copy is invalidated first)
    //    and part of one (its copy restored, then changed).
    pc.drop_clean_pages();
    assert!(pc.env().holds(data, 5) && pc.env().holds(data, 7));
    let page5 = pattern(P, 0x33);
    pc.write(data, 5 * P as u64, &page5).expect("write");
    assert!(!pc.env().holds(data, 5), "the stale copy went first");
    want_data[5 * P..6 * P].copy_from_slice(&page5);
    pc.write(data, 7 * P as u64 + 50, b"partial")
        .expect("write");
    want_data[7 * P + 50..7 * P + 57].copy_from_slice(b"partial");
    pc.sync().expect("sync");
    pc.drop_clean_pages();
    assert_eq!(read_all(&mut pc, data), want_data);
    assert_eq!(pc.fs().disk_bytes(data, want_data.len()), want_data);
    println!("overwrite: new bytes read back and on disk, no stale copy");

    // 4. Truncate to 4 pages and 10 bytes, grow to 6 pages: the tail reads
    //    zeros, although the disk still holds the old bytes there.
    pc.drop_clean_pages();
    pc.truncate(data, 4 * P as u64 + 10).expect("truncate");
    assert!((4..13).all(|i| !pc.env().holds(data, i)));
    pc.truncate(data, 6 * P as u64).expect("grow");
    want_data.truncate(4 * P + 10);
    want_data.resize(6 * P, 0);
    pc.sync().expect("sync");
    pc.drop_clean_pages();
    assert_eq!(read_all(&mut pc, data), want_data);
    println!("truncate: 4 pages + 10 bytes kept, the grown tail reads zeros");

    // 5. Pins and migration: a pinned page is busy; unpinned, it moves to
    //    a frame the caller hands over and the old frame comes back.
    let old = pc.pin_page(log, 1).expect("pin");
    let new = pc.env_mut().alloc_page().expect("a frame");
    assert_eq!(pc.migrate(old, new), Err(MigrateError::Busy));
    pc.unpin_page(old).expect("unpin");
    pc.migrate(old, new).expect("migrate");
    assert_eq!(pc.page_frame(log, 1), Some(new));
    assert_eq!(pc.frame_owner(new), Some((log, 1)));
    assert_eq!(pc.frame_owner(old), None);
    pc.env_mut().free_page(old);
    let mut page = vec![0u8; P];
    pc.read(log, P as u64, &mut page).expect("read");
    assert_eq!(page, want_log[P..2 * P]);
    println!("migrate: refused while pinned, then moved; bytes intact");

    // 6. Remove `log` and create `fresh` in its slot (the same file id):
    //    the disk still holds log's bytes, the new file never shows them.
    pc.drop_clean_pages();
    assert!(pc.env().holds(log, 0));
    pc.remove("log").expect("remove");
    assert!((0..3).all(|i| !pc.env().holds(log, i)));
    let fresh = pc.create("fresh").expect("create");
    assert_eq!(fresh, log, "the slot is reused");
    assert_eq!(
        pc.fs().disk_bytes(fresh, 3 * P),
        want_log,
        "old bytes on disk"
    );
    pc.truncate(fresh, 3 * P as u64).expect("grow");
    pc.sync().expect("sync");
    pc.drop_clean_pages();
    assert!(read_all(&mut pc, fresh).iter().all(|b| *b == 0));
    assert_eq!(pc.fs().disk_bytes(fresh, 3 * P), vec![0; 3 * P]);
    println!("reuse: a new file in a removed file's slot reads zeros");

    // 7. Unmount: every copy of the mount is dropped and every frame is
    //    back. Mount again: a new generation, nothing old found.
    pc.check_stats().expect("stats");
    let (fs, env, states) = pc.unmount().expect("unmount");
    assert!(env.copies.is_empty() && env.mount.is_none());
    assert_eq!(env.free.len(), ARENA_FRAMES, "every frame back");
    assert_eq!(fs.disk_bytes(data, want_data.len()), want_data);
    let stats = env.stats;
    let mut pc: Cache = PageCache::new(fs, env, states, config());
    let data = pc.open("data").expect("open");
    assert_eq!(read_all(&mut pc, data), want_data);
    assert_eq!(pc.stats().pages_read, 6, "all from the disk");
    assert_eq!(pc.env().stats.hits, stats.hits, "no copy of the old mount");
    println!("remount: data read from the disk, no copy of the first mount found");

    // 8. Frames win over copies: with the budget raised to the whole pool,
    //    38 pages evicted leave 38 copies and 2 free frames; growing
    //    `fresh` by 3 pages takes the 2 and then the oldest copy's frame
    //    (the page cache zeroes new pages). From then on the pool is full:
    //    a page restored from a copy needs a frame first, which costs the
    //    oldest copy, and a page whose copy went is read from the disk.
    pc.set_budget(ARENA_FRAMES);
    let fresh = pc.open("fresh").expect("open");
    let big = [
        pc.create("big1").expect("create"),
        pc.create("big2").expect("create"),
    ];
    let want_big = [pattern(16 * P, 0x11), pattern(16 * P, 0x22)];
    for (id, want) in big.iter().zip(&want_big) {
        pc.write(*id, 0, want).expect("write");
    }
    pc.sync().expect("sync");
    assert_eq!(pc.cached_pages(), 38);
    pc.drop_clean_pages();
    assert_eq!((pc.env().copies.len(), pc.env().free.len()), (38, 2));
    pc.truncate(fresh, 6 * P as u64).expect("grow");
    assert_eq!(pc.env().stats.reclaimed, 1);
    let before = *pc.stats();
    assert!(read_all(&mut pc, fresh).iter().all(|b| *b == 0));
    for (id, want) in big.iter().zip(&want_big) {
        assert_eq!(&read_all(&mut pc, *id), want);
    }
    assert_eq!(read_all(&mut pc, data), want_data);
    let after = *pc.stats();
    // Each of the 41 pages not cached (fresh's first 3, big's 32, data's
    // 6) came once, from a copy or from the disk.
    let restored = (after.cc_demand_restores + after.cc_ra_restores)
        - (before.cc_demand_restores + before.cc_ra_restores);
    let read = after.pages_read - before.pages_read;
    assert_eq!(restored + read, 41, "{restored} restored, {read} read");
    assert!(read > 3 && restored > 0, "{restored} restored, {read} read");
    pc.check_stats().expect("stats");
    let (_, env, _) = pc.unmount().expect("unmount");
    assert_eq!(env.free.len(), ARENA_FRAMES);
    println!(
        "pressure: 41 pages, {restored} from copies and {read} from the disk; arena: {} puts, {} hits, {} invalidated, {} copies reclaimed for frames",
        env.stats.puts, env.stats.hits, env.stats.invalidated, env.stats.reclaimed
    );
    println!("host_slot_fs: all steps passed");
}
