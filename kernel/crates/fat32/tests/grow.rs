//! Growing a file never makes a size cover bytes nobody wrote: on a disk
//! whose free clusters hold a deleted file's bytes, `set_len` and
//! `write_at` that fail half way (a device write error while zeroing or
//! writing) leave the file as it was, or grown over zeros and written
//! bytes only.

use blkdev::{FaultyDisk, RamDisk};
use fat32::{Fat32, FormatOptions, FsError};

const OLD: u8 = 0xA5;

/// `/b` (100 bytes of `b'B'`) on a disk whose every free cluster held a
/// deleted file of `OLD` bytes; returns the filesystem and the first
/// sector of the first cluster the next allocation takes.
fn full_of_deleted_bytes() -> (Fat32<FaultyDisk<RamDisk>>, u64) {
    let mut disk = RamDisk::new(34 * 2048);
    fat32::format(&mut disk, &FormatOptions::default()).unwrap();
    let mut fs = Fat32::mount(FaultyDisk::new(disk)).unwrap();
    let b = fs.create("/b").unwrap();
    fs.write_at(b, 0, &[b'B'; 100]).unwrap();
    let old = fs.create("/old").unwrap();
    let free = fs.free_clusters() as usize * fs.geometry().cluster_bytes() as usize;
    fs.write_at(old, 0, &vec![OLD; free]).unwrap();
    let first = fs.metadata(old).unwrap().first_cluster;
    fs.remove("/old").unwrap();
    let g = *fs.geometry();
    let sector = g.first_data_sector + (first as u64 - 2) * g.sectors_per_cluster as u64;
    (fs, sector)
}

fn read_b(fs: &mut Fat32<FaultyDisk<RamDisk>>) -> Vec<u8> {
    let m = fs.lookup("/b").unwrap();
    let mut back = vec![0u8; m.size as usize];
    assert_eq!(fs.read_at(m.id, 0, &mut back).unwrap(), back.len());
    back
}

#[test]
fn a_failed_set_len_leaves_the_file_as_it_was() {
    let (mut fs, sector) = full_of_deleted_bytes();
    let b = fs.lookup("/b").unwrap().id;
    let free = fs.free_clusters();
    fs.device_mut().fail_write(sector);
    let r = fs.set_len(b, 8192);
    assert!(matches!(r, Err(FsError::Device(_))), "{r:?}");
    assert_eq!(
        fs.metadata(b).unwrap().size,
        100,
        "size raised over old bytes"
    );
    assert_eq!(fs.free_clusters(), free, "clusters given back");
    assert_eq!(read_b(&mut fs), [b'B'; 100]);
    fs.device_mut().clear();
    fs.set_len(b, 8192).unwrap();
    let mut want = vec![b'B'; 100];
    want.resize(8192, 0);
    assert_eq!(read_b(&mut fs), want);
}

#[test]
fn a_failed_growing_write_at_never_exposes_old_bytes() {
    let (mut fs, sector) = full_of_deleted_bytes();
    let b = fs.lookup("/b").unwrap().id;
    // A write to the first new cluster fails.
    fs.device_mut().fail_write(sector);
    let r = fs.write_at(b, 100, &[b'N'; 3000]);
    fs.device_mut().clear();
    let back = read_b(&mut fs);
    assert!(r.is_err(), "{r:?}");
    assert!(!back.contains(&OLD), "old bytes readable after {r:?}");
    assert_eq!(&back[..100], &[b'B'; 100]);
    assert!(back[100..].iter().all(|&x| x == 0 || x == b'N'));
}
