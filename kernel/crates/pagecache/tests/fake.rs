//! The page cache over a fake filesystem (tests/fakefs): no FAT32, only the
//! `Filesystem` trait's block map, sizes and length changes. The tests over
//! real FAT32 are the other files here.

mod fakefs;

use blkdev::RamDisk;
use fakefs::FakeFs;
use pagecache::{
    Config, Error, HeapPageAllocator, LocalPageStates, NoCleancache, PAGE_SIZE, PageCache,
};

type Cache = PageCache<RamDisk, (HeapPageAllocator, NoCleancache), LocalPageStates, FakeFs>;

const P: usize = PAGE_SIZE as usize;

fn cache(disk_pages: u64, budget: usize, ra_max: u32) -> Cache {
    PageCache::new(
        FakeFs::new(disk_pages),
        (HeapPageAllocator::new(), NoCleancache),
        LocalPageStates::new(),
        Config {
            budget_pages: budget,
            ra_init_pages: 4.min(ra_max),
            ra_max_pages: ra_max,
            writeback_batch: 4,
        },
    )
}

fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 4096) as u8 ^ salt).collect()
}

#[test]
fn written_bytes_reach_the_disk_through_the_block_map() {
    let mut pc = cache(64, 8, 0);
    let id = pc.create("a").unwrap();
    let data = pattern(5 * P + 123, 0x5a);
    assert_eq!(pc.write(id, 0, &data).unwrap(), data.len());
    pc.sync().unwrap();
    assert_eq!(pc.file_size(id).unwrap(), data.len() as u64);
    // The pages sit on scattered extents: only the block map finds them.
    assert_eq!(pc.fs().disk_bytes(id), data);
    assert!(pc.fs().calls.bmap >= 6, "{:?}", pc.fs().calls);
    assert!(pc.fs().calls.check_grow >= 1 && pc.fs().calls.sync >= 1);
    // Read back cold (over a budget smaller than the file).
    pc.drop_clean_pages();
    let mut back = vec![0u8; data.len()];
    assert_eq!(pc.read(id, 0, &mut back).unwrap(), data.len());
    assert_eq!(back, data);
    let (_fs, ..) = pc.unmount().unwrap();
}

#[test]
fn sequential_reads_are_read_ahead_over_the_fake() {
    let mut pc = cache(128, 64, 16);
    let id = pc.create("big").unwrap();
    let data = pattern(48 * P, 0x11);
    pc.write(id, 0, &data).unwrap();
    pc.sync().unwrap();
    pc.drop_clean_pages();
    let before = *pc.stats();
    let mut buf = vec![0u8; P];
    for i in 0..48 {
        assert_eq!(pc.read(id, (i * P) as u64, &mut buf).unwrap(), P);
        assert_eq!(buf, data[i * P..(i + 1) * P]);
    }
    let after = *pc.stats();
    assert!(after.ra_pages_read - before.ra_pages_read > 0);
    assert_eq!(after.pages_read - before.pages_read, 48);
    assert_eq!(after.sectors_read - before.sectors_read, 48 * 8);
}

#[test]
fn a_write_past_the_free_space_fails_and_changes_nothing() {
    let mut pc = cache(4, 8, 0);
    let id = pc.create("f").unwrap();
    let data = pattern(2 * P, 0x33);
    pc.write(id, 0, &data).unwrap();
    pc.sync().unwrap();
    let free = pc.fs().free_pages();
    // Two pages free; three more asked for.
    let more = pattern(3 * P, 0x44);
    assert!(matches!(
        pc.write(id, 2 * P as u64, &more),
        Err(Error::Fs(fat32::FsError::NoSpace))
    ));
    assert_eq!(pc.file_size(id).unwrap(), 2 * P as u64);
    assert_eq!(pc.fs().free_pages(), free);
    let mut back = vec![0u8; 2 * P];
    assert_eq!(pc.read(id, 0, &mut back).unwrap(), 2 * P);
    assert_eq!(back, data);
}

#[test]
fn truncate_then_grow_reads_zeros_over_the_fake() {
    let mut pc = cache(16, 8, 0);
    let id = pc.create("t").unwrap();
    pc.write(id, 0, &pattern(3 * P, 0x77)).unwrap();
    pc.truncate(id, P as u64 + 10).unwrap();
    pc.truncate(id, 3 * P as u64).unwrap();
    pc.sync().unwrap();
    pc.drop_clean_pages();
    let mut back = vec![0xffu8; 3 * P];
    assert_eq!(pc.read(id, 0, &mut back).unwrap(), 3 * P);
    assert_eq!(&back[..P + 10], &pattern(3 * P, 0x77)[..P + 10]);
    assert!(back[P + 10..].iter().all(|b| *b == 0));
    // Removing gives the extents back.
    pc.remove("t").unwrap();
    assert_eq!(pc.fs().free_pages(), 16);
}
