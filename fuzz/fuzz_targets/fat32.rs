//! FAT32 on a corrupted disk: mount, walk every directory, read and map
//! every file, then create, write, grow, shrink and remove, sync, unmount
//! and mount again. Nothing may panic or hang, and the file this target
//! writes must read back exactly as written whenever every call on it
//! succeeded.
//!
//! Input: byte 0 picks the disk (low two bits: one of three images made
//! here with `fat32::format` and a few files, or 3: the rest of the input
//! is the raw image), byte 1 the operations; the rest is a list of patches
//! (3-byte offset, length, bytes) laid over the chosen image.
#![no_main]

use std::sync::OnceLock;

use blkdev::{RamDisk, SECTOR_SIZE};
use fat32::{Fat32, FileId, FormatOptions, FsError, MountOptions, ROOT};
use libfuzzer_sys::fuzz_target;

/// Three small filesystems: populated with one sector per cluster,
/// populated with four, and empty.
fn bases() -> &'static [Vec<u8>; 3] {
    static BASES: OnceLock<[Vec<u8>; 3]> = OnceLock::new();
    BASES.get_or_init(|| [populated(128, 1), populated(320, 4), empty(96)])
}

fn empty(sectors: u64) -> Vec<u8> {
    let mut d = RamDisk::new(sectors);
    fat32::format(&mut d, &FormatOptions::default()).expect("format");
    d.into_vec()
}

fn populated(sectors: u64, spc: u8) -> Vec<u8> {
    let mut d = RamDisk::new(sectors);
    let opts = FormatOptions {
        sectors_per_cluster: spc,
        ..FormatOptions::default()
    };
    fat32::format(&mut d, &opts).expect("format");
    let mut fs = Fat32::mount(d).expect("mount");
    let pattern = |n: usize, k: u8| {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31) ^ k)
            .collect::<Vec<u8>>()
    };
    let a = fs.create("/A.TXT").unwrap();
    fs.write_at(a, 0, b"hello, fat32\n").unwrap();
    let long = fs.create("/a file with a long name.bin").unwrap();
    fs.write_at(long, 0, &pattern(3000, 1)).unwrap();
    fs.mkdir("/DIR").unwrap();
    fs.mkdir("/DIR/SUB").unwrap();
    let x = fs.create("/DIR/x.dat").unwrap();
    fs.write_at(x, 0, &pattern(700, 2)).unwrap();
    // A fragmented file: grown after another file took the next clusters.
    let frag = fs.create("/DIR/SUB/frag.bin").unwrap();
    fs.write_at(frag, 0, &pattern(600, 3)).unwrap();
    let y = fs.create("/DIR/y.dat").unwrap();
    fs.write_at(y, 0, &pattern(900, 4)).unwrap();
    fs.write_at(frag, 600, &pattern(1500, 5)).unwrap();
    // A deleted entry (0xE5) and freed clusters.
    let gone = fs.create("/GONE.TXT").unwrap();
    fs.write_at(gone, 0, &pattern(1000, 6)).unwrap();
    fs.remove("/GONE.TXT").unwrap();
    fs.unmount().expect("unmount").into_vec()
}

/// Bytes the target writes: a function of the operation byte.
fn content(len: usize, k: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8) ^ k ^ ((i >> 8) as u8)).collect()
}

fn image(data: &[u8]) -> Option<(Vec<u8>, u8)> {
    let (&sel, rest) = data.split_first()?;
    let (&ops, rest) = rest.split_first()?;
    if sel & 3 == 3 {
        return Some((rest.to_vec(), ops));
    }
    let mut img = bases()[(sel & 3) as usize].clone();
    let mut p = rest;
    while p.len() >= 4 {
        let off = (p[0] as usize | (p[1] as usize) << 8 | (p[2] as usize) << 16) % img.len();
        let n = (p[3] as usize % 16 + 1).min(p.len() - 4);
        let end = (off + n).min(img.len());
        img[off..end].copy_from_slice(&p[4..4 + (end - off)]);
        p = &p[4 + n..];
    }
    Some((img, ops))
}

/// Reads every directory and file it can reach (bounded), returning the
/// paths of the files found.
fn walk(fs: &mut Fat32<RamDisk>) -> Vec<String> {
    let mut files = Vec::new();
    let mut dirs: Vec<(FileId, String, u32)> = vec![(ROOT, String::new(), 0)];
    let mut visited = 0;
    let mut buf = vec![0u8; 4096];
    while let Some((id, path, depth)) = dirs.pop() {
        visited += 1;
        if visited > 64 {
            break;
        }
        let Ok(entries) = fs.read_dir_id(id) else {
            continue;
        };
        for e in entries.iter().take(64) {
            let p = format!("{path}/{}", e.name);
            if let Ok(m) = fs.metadata(e.id) {
                assert_eq!(m.id, e.id);
                assert_eq!(m.is_dir, e.is_dir, "{p}: listing and metadata disagree");
                assert_eq!(m.size, e.size, "{p}: listing and metadata disagree");
            }
            // Path lookups rescan every directory on the way: a few.
            if files.len() + visited < 8 {
                let _ = fs.lookup(&p);
            }
            if e.is_dir {
                if depth < 6 {
                    dirs.push((e.id, p, depth + 1));
                }
                continue;
            }
            // Read up to 16 KiB of the file and map its first pages.
            let mut off = 0u64;
            while off < e.size.min(16 << 10) {
                match fs.read_at(e.id, off, &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        assert!(n <= buf.len());
                        off += n as u64;
                    }
                }
            }
            for page in 0..4 {
                if let Ok(map) = fs.bmap(e.id, page) {
                    assert!(map.bytes() as u64 <= fat32::PAGE_SIZE);
                    for &(sector, count) in map.runs() {
                        assert!(
                            sector + count as u64
                                <= fs.device().as_bytes().len() as u64 / SECTOR_SIZE as u64
                        );
                    }
                }
            }
            files.push(p);
        }
    }
    files
}

fuzz_target!(|data: &[u8]| {
    let Some((img, ops)) = image(data) else {
        return;
    };
    let opts = MountOptions {
        meta_cache_sectors: 2 + (ops as usize & 7),
    };
    let Ok(mut fs) = Fat32::mount_with(RamDisk::from_vec(img), opts) else {
        return;
    };
    let _ = fs.free_clusters();
    let files = walk(&mut fs);

    // What /fz.bin must hold, while every call on it succeeds.
    let mut expect: Option<Vec<u8>> = None;
    if let Ok(id) = fs.create("/fz.bin") {
        let mut want = Vec::new();
        let mut ok = true;
        let off = (ops as usize >> 3) * 300;
        let data = content(1 + (ops as usize) * 23, ops);
        match fs.write_at(id, off as u64, &data) {
            Ok(n) if n == data.len() => {
                want.resize(off, 0);
                want.extend_from_slice(&data);
            }
            _ => ok = false,
        }
        if ok && ops & 0x10 != 0 {
            let len = want.len() / 2 + (ops as usize & 3) * 700;
            if fs.set_len(id, len as u64).is_ok() {
                want.resize(len, 0);
            } else {
                ok = false;
            }
        }
        if ok {
            expect = Some(want);
        }
    }
    if ops & 0x20 != 0
        && fs.mkdir("/fzdir").is_ok()
        && let Ok(id) = fs.create("/fzdir/inner.txt")
    {
        let _ = fs.write_at(id, 0, &content(5000, !ops));
    }
    if ops & 0x40 != 0 {
        if let Some(p) = files.first() {
            let _ = fs.remove(p);
        }
        let _ = fs.remove("/DIR/SUB");
    }
    let _ = fs.lookup("/fz.bin");
    let Ok(dev) = fs.unmount() else {
        return;
    };

    // Mount again: what was written must be there.
    let Ok(mut fs) = Fat32::mount_with(dev, opts) else {
        return;
    };
    walk(&mut fs);
    if let Some(want) = expect {
        match fs.lookup("/fz.bin") {
            Ok(m) => {
                assert_eq!(
                    m.size,
                    want.len() as u64,
                    "size of /fz.bin changed across the remount"
                );
                let mut got = vec![0u8; want.len()];
                let mut off = 0;
                while off < got.len() {
                    match fs.read_at(m.id, off as u64, &mut got[off..]) {
                        Ok(0) => break,
                        Ok(n) => off += n,
                        Err(FsError::Corrupt(_)) => return,
                        Err(e) => panic!("reading /fz.bin back: {e}"),
                    }
                }
                assert_eq!(off, want.len(), "short read of /fz.bin");
                assert!(
                    got == want,
                    "/fz.bin reads back other bytes than were written"
                );
            }
            Err(FsError::Corrupt(_)) => {}
            Err(e) => panic!("/fz.bin vanished across the remount: {e}"),
        }
    }
});
