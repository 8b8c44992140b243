//! FAT32 against real images made by mkfs.fat, mtools and
//! tools/mkdata/mkdata.py; images written here are checked by `fsck.fat -n`
//! and read back with mtools. Tests skip (saying so) only when mkfs.fat is
//! not installed.

use std::path::{Path, PathBuf};
use std::process::Command;

use blkdev::{BlockDevice, RamDisk};
use fat32::{Fat32, FsError};
use testdata::Content;

fn tool(name: &str) -> Option<PathBuf> {
    for dir in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return Some(p);
        }
    }
    None
}

fn have_mkfs() -> bool {
    if tool("mkfs.fat").is_none() {
        eprintln!("SKIPPED: mkfs.fat not installed (apt-get install dosfstools mtools)");
        return false;
    }
    true
}

struct TempDir(PathBuf);
impl TempDir {
    fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "fat32-test-{}-{}-{}",
            tag,
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.env("MTOOLS_SKIP_CHECK", "1").output().expect("spawn");
    assert!(
        out.status.success(),
        "{:?} failed: {}{}",
        cmd,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A fresh FAT32 image of `mb` MiB with 512-byte clusters.
fn mkfs(dir: &TempDir, mb: u32) -> PathBuf {
    let img = dir.path("fs.img");
    run(Command::new(tool("mkfs.fat").unwrap())
        .args(["-F", "32", "-S", "512", "-s", "1", "-C"])
        .arg(&img)
        .arg((mb * 1024).to_string()));
    img
}

fn mount(img: &Path) -> Fat32<RamDisk> {
    Fat32::mount(RamDisk::from_vec(std::fs::read(img).unwrap())).unwrap()
}

fn save(fs: Fat32<RamDisk>, img: &Path) {
    let dev = fs.unmount().unwrap();
    std::fs::write(img, dev.into_vec()).unwrap();
}

fn fsck(img: &Path) {
    let out = Command::new(tool("fsck.fat").expect("fsck.fat"))
        .arg("-n")
        .arg(img)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "fsck.fat -n failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn read_all(fs: &mut Fat32<RamDisk>, path: &str) -> Vec<u8> {
    let m = fs.lookup(path).unwrap();
    let mut v = vec![0; m.size as usize];
    assert_eq!(fs.read_at(m.id, 0, &mut v).unwrap(), v.len());
    v
}

fn mkdata_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../tools/mkdata/mkdata.py")
}

#[test]
fn reads_every_byte_of_a_mkdata_image() {
    if !have_mkfs() {
        return;
    }
    let dir = TempDir::new("mkdata");
    let img = dir.path("data.img");
    run(Command::new("python3").arg(mkdata_script()).args([
        "--out",
        img.to_str().unwrap(),
        "--image-mb",
        "40",
        "--files",
        "150",
        "--large",
        "3",
        "--total-mb",
        "3",
        "--seed",
        "77",
        "--quiet",
    ]));
    let mut fs = mount(&img);
    let manifest = String::from_utf8(read_all(&mut fs, testdata::MANIFEST_PATH)).unwrap();
    let (seed, entries) = testdata::parse_manifest(&manifest).unwrap();
    assert_eq!(seed, 77);
    let mut n = 0;
    let mut bytes = 0;
    for e in entries {
        let e = e.unwrap();
        let data = read_all(&mut fs, e.path);
        assert_eq!(data.len() as u64, e.size, "{}", e.path);
        let c = Content::new(seed, e.path);
        assert_eq!(c.first_mismatch(0, &data), None, "{}", e.path);
        // An unaligned read in the middle too.
        if data.len() > 1110 {
            let m = fs.lookup(e.path).unwrap();
            let mut b = [0u8; 777];
            fs.read_at(m.id, 333, &mut b).unwrap();
            assert_eq!(b[..], data[333..333 + 777]);
        }
        n += 1;
        bytes += data.len();
    }
    assert_eq!(n, 150);
    assert!(bytes > 2 << 20);
    // Listing with long names.
    let list = fs.read_dir("/small/d00").unwrap();
    assert_eq!(list.len(), 100);
    assert!(
        list.iter()
            .any(|d| d.name == "Small File 0042 of the set.txt" && !d.is_dir)
    );
    assert!(list.iter().all(|d| d.short_name.contains('~')));
    let root = fs.read_dir("/").unwrap();
    let mut names: Vec<_> = root.iter().map(|d| (d.name.as_str(), d.is_dir)).collect();
    names.sort();
    assert_eq!(
        names,
        [("MANIFEST.TXT", false), ("big", true), ("small", true)]
    );
    // Case-insensitive lookup, by short name too.
    assert!(
        fs.lookup("/SMALL/D00/small file 0042 OF THE SET.TXT")
            .is_ok()
    );
    let short = &list[0].short_name;
    assert_eq!(
        fs.lookup(&format!("/small/d00/{short}")).unwrap().id,
        list[0].id
    );
    // Reading wrote nothing.
    assert_eq!(fs.device().stats().sectors_written, 0);
}

#[test]
fn write_append_truncate_delete_recreate_then_fsck_and_mtools() {
    if !have_mkfs() {
        return;
    }
    let dir = TempDir::new("rw");
    let img = mkfs(&dir, 40);
    let c = Content::new(5, "x");
    let mut big = vec![0u8; 300_000];
    c.fill(0, &mut big);
    {
        let mut fs = mount(&img);
        let free0 = fs.free_clusters();
        fs.mkdir("/dir").unwrap();
        fs.mkdir("/dir/Sub Directory").unwrap();
        let a = fs.create("/dir/A Long File Name.bin").unwrap();
        assert_eq!(fs.write_at(a, 0, &big[..100_000]).unwrap(), 100_000);
        // append
        fs.write_at(a, 100_000, &big[100_000..]).unwrap();
        // overwrite in the middle, unaligned
        fs.write_at(a, 12_345, &[0xAB; 5000]).unwrap();
        big[12_345..17_345].fill(0xAB);
        // truncate down, then up (zero filled)
        let b = fs.create("/dir/Sub Directory/b.txt").unwrap();
        fs.write_at(b, 0, &big[..50_000]).unwrap();
        fs.set_len(b, 7_000).unwrap();
        fs.set_len(b, 9_000).unwrap();
        // write past the end leaves a zero gap
        let g = fs.create("/GAP.BIN").unwrap();
        fs.write_at(g, 10_000, b"tail").unwrap();
        // delete and re-create
        let d = fs.create("/gone.txt").unwrap();
        fs.write_at(d, 0, &big[..20_000]).unwrap();
        fs.remove("/gone.txt").unwrap();
        assert_eq!(fs.lookup("/gone.txt"), Err(FsError::NotFound));
        let d2 = fs.create("/gone.txt").unwrap();
        fs.write_at(d2, 0, b"again").unwrap();
        assert_eq!(fs.create("/GONE.TXT"), Err(FsError::AlreadyExists));
        // many files: the directory grows past one cluster
        for i in 0..40 {
            let f = fs
                .create(&format!("/dir/many file number {i}.dat"))
                .unwrap();
            fs.write_at(f, 0, format!("{i}").as_bytes()).unwrap();
        }
        assert!(fs.free_clusters() < free0);
        save(fs, &img);
    }
    fsck(&img);
    // Another implementation reads what we wrote.
    let out = run(Command::new("mtype")
        .args(["-i", img.to_str().unwrap()])
        .arg("::/dir/A Long File Name.bin"));
    assert_eq!(out.stdout, big);
    let out = run(Command::new("mtype")
        .args(["-i", img.to_str().unwrap()])
        .arg("::/dir/many file number 39.dat"));
    assert_eq!(out.stdout, b"39");
    // Re-mount and check.
    let mut fs = mount(&img);
    assert_eq!(read_all(&mut fs, "/dir/a long file name.bin"), big);
    let b = read_all(&mut fs, "/dir/Sub Directory/b.txt");
    assert_eq!(b.len(), 9_000);
    assert_eq!(b[..7_000], big[..7_000]);
    assert!(b[7_000..].iter().all(|&x| x == 0));
    let g = read_all(&mut fs, "/gap.bin");
    assert_eq!(g.len(), 10_004);
    assert!(g[..10_000].iter().all(|&x| x == 0));
    assert_eq!(&g[10_000..], b"tail");
    assert_eq!(read_all(&mut fs, "/gone.txt"), b"again");
    assert_eq!(fs.read_dir("/dir").unwrap().len(), 42);
    // Delete everything in /dir/Sub Directory and the directory itself.
    assert_eq!(
        fs.remove("/dir/Sub Directory"),
        Err(FsError::DirectoryNotEmpty)
    );
    fs.remove("/dir/Sub Directory/b.txt").unwrap();
    fs.remove("/dir/Sub Directory").unwrap();
    for i in 0..40 {
        fs.remove(&format!("/dir/many file number {i}.dat"))
            .unwrap();
    }
    save(fs, &img);
    fsck(&img);
}

#[test]
fn disk_full_is_an_error_and_changes_nothing() {
    if !have_mkfs() {
        return;
    }
    let dir = TempDir::new("full");
    let img = mkfs(&dir, 34);
    let mut fs = mount(&img);
    let f = fs.create("/f").unwrap();
    fs.write_at(f, 0, b"hello").unwrap();
    let free = fs.free_clusters();
    let huge = vec![7u8; 40 << 20];
    assert_eq!(fs.write_at(f, 0, &huge), Err(FsError::NoSpace));
    assert_eq!(fs.free_clusters(), free);
    assert_eq!(fs.metadata(f).unwrap().size, 5);
    assert_eq!(fs.set_len(f, 1 << 32), Err(FsError::FileTooLarge));
    let mut b = [0u8; 5];
    fs.read_at(f, 0, &mut b).unwrap();
    assert_eq!(&b, b"hello");
    assert!(matches!(
        fs.read_at(f, 6, &mut b),
        Err(FsError::BeyondEof { .. })
    ));
    assert_eq!(fs.read_at(f, 5, &mut b), Ok(0));
    assert_eq!(fs.lookup("/nope/x"), Err(FsError::NotFound));
    assert_eq!(fs.lookup("/f/x"), Err(FsError::NotADirectory));
    assert_eq!(fs.create("/bad:name"), Err(FsError::InvalidName));
    save(fs, &img);
    fsck(&img);
}

fn mkfs_bytes() -> Option<Vec<u8>> {
    if !have_mkfs() {
        return None;
    }
    let dir = TempDir::new("bad");
    let img = mkfs(&dir, 34);
    let mut fs = mount(&img);
    let f = fs.create("/file.bin").unwrap();
    fs.write_at(f, 0, &[1u8; 5000]).unwrap();
    fs.mkdir("/d").unwrap();
    Some(fs.unmount().unwrap().into_vec())
}

#[test]
fn bad_images_give_errors_and_write_nothing() {
    let Some(good) = mkfs_bytes() else { return };
    // No filesystem.
    let zero = RamDisk::new(8192);
    assert!(matches!(Fat32::mount(zero), Err(FsError::NoFilesystem)));
    assert!(matches!(
        Fat32::mount(RamDisk::new(0)),
        Err(FsError::NoFilesystem)
    ));
    // Corrupt BPB fields.
    let cases: &[(usize, &[u8])] = &[
        (11, &[0, 0]),       // bytes per sector
        (13, &[3]),          // sectors per cluster
        (14, &[0, 0]),       // reserved sectors
        (16, &[0]),          // FAT count
        (32, &[0xFF; 4]),    // total sectors beyond the device
        (36, &[0, 0, 0, 0]), // FAT size
        (44, &[1, 0, 0, 0]), // root cluster
        (510, &[0, 0]),      // boot signature
    ];
    for (off, bytes) in cases {
        let mut img = good.clone();
        img[*off..*off + bytes.len()].copy_from_slice(bytes);
        let r = Fat32::mount(RamDisk::from_vec(img));
        assert!(r.is_err(), "corruption at {off} accepted");
    }
    // Corrupt FSInfo.
    let mut img = good.clone();
    img[512] = 0;
    assert_eq!(
        Fat32::mount(RamDisk::from_vec(img)).err(),
        Some(FsError::Corrupt("FSInfo signature"))
    );
    // Image truncated: filesystem larger than the device.
    let r = Fat32::mount(RamDisk::from_vec(good[..good.len() / 2].to_vec()));
    assert_eq!(
        r.err(),
        Some(FsError::Corrupt("filesystem larger than the device"))
    );

    // FAT loop: the file's first cluster points to itself.
    let mut fs = Fat32::mount(RamDisk::from_vec(good.clone())).unwrap();
    let m = fs.lookup("/file.bin").unwrap();
    let reserved = fs.geometry().reserved_sectors as usize;
    drop(fs);
    let mut img = good.clone();
    let off = reserved * 512 + m.first_cluster as usize * 4;
    img[off..off + 4].copy_from_slice(&m.first_cluster.to_le_bytes());
    let mut fs = Fat32::mount(RamDisk::from_vec(img)).unwrap();
    let mut b = vec![0u8; 5000];
    assert_eq!(
        fs.read_at(m.id, 0, &mut b),
        Err(FsError::Corrupt("cluster chain loop"))
    );
    assert!(fs.bmap(m.id, 0).is_err());
    assert_eq!(fs.device().stats().sectors_written, 0);

    // Size larger than the chain.
    let mut img = good.clone();
    let e = m.id as usize * 32;
    img[e + 28..e + 32].copy_from_slice(&(1u32 << 30).to_le_bytes());
    let mut fs = Fat32::mount(RamDisk::from_vec(img)).unwrap();
    assert_eq!(
        fs.read_at(m.id, 0, &mut b),
        Err(FsError::Corrupt("file size exceeds its cluster chain"))
    );

    // Random corruption of the metadata area: never a panic, never a write.
    let mut seed = 0x1234_5678_9abc_def0u64;
    let mut next = || {
        seed = testdata::splitmix64(seed);
        seed
    };
    let meta_end = 4096 * 512;
    for _ in 0..150 {
        let mut img = good.clone();
        for _ in 0..1 + next() % 16 {
            let at = if next() % 4 == 0 {
                (next() % 512) as usize
            } else {
                (next() % meta_end as u64) as usize
            };
            img[at] = next() as u8;
        }
        let Ok(mut fs) = Fat32::mount(RamDisk::from_vec(img)) else {
            continue;
        };
        walk(&mut fs, "/", 0);
        assert_eq!(fs.device().stats().sectors_written, 0);
    }
}

fn walk(fs: &mut Fat32<RamDisk>, path: &str, depth: u32) {
    let Ok(list) = fs.read_dir(path) else { return };
    for e in list {
        let p = format!("{}/{}", path.trim_end_matches('/'), e.name);
        if e.is_dir {
            if depth < 4 {
                walk(fs, &p, depth + 1);
            }
        } else {
            let mut b = vec![0u8; (e.size as usize).min(1 << 20)];
            let _ = fs.read_at(e.id, 0, &mut b);
            let _ = fs.bmap(e.id, 0);
        }
    }
}

#[test]
fn format_writes_a_filesystem_that_fsck_and_mtools_accept() {
    if !have_mkfs() {
        return;
    }
    let dir = TempDir::new("format");
    for (mb, spc) in [(34u64, 1u8), (70, 2)] {
        let mut disk = RamDisk::new(mb * 2048);
        let opts = fat32::FormatOptions {
            sectors_per_cluster: spc,
            ..Default::default()
        };
        fat32::format(&mut disk, &opts).unwrap();
        let mut fs = Fat32::mount(disk).unwrap();
        assert!(fs.read_dir("/").unwrap().is_empty());
        assert_eq!(fs.geometry().sectors_per_cluster, spc as u32);
        fs.mkdir("/Some Directory").unwrap();
        let f = fs
            .create("/Some Directory/a file with a long name.txt")
            .unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        fs.write_at(f, 0, &data).unwrap();
        let img = dir.path(&format!("fmt{mb}.img"));
        save(fs, &img);
        fsck(&img);
        let out = run(Command::new("mtype")
            .args(["-i", img.to_str().unwrap()])
            .arg("::/Some Directory/a file with a long name.txt"));
        assert_eq!(out.stdout, data);
    }
    // Too small for FAT32 bookkeeping: an error, not a panic.
    let mut tiny = RamDisk::new(40);
    assert!(fat32::format(&mut tiny, &fat32::FormatOptions::default()).is_err());
}

#[test]
fn mkdata_python_content_function_matches_pinned_values() {
    // The Rust side pins the same values in testdata's unit tests.
    run(Command::new("python3")
        .arg(mkdata_script())
        .arg("--selftest"));
}
