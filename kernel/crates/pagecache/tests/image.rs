//! The page cache reads an image made by tools/mkdata/mkdata.py (Python's
//! twin of the `testdata` content function, written with mtools): every byte
//! of every file is checked, under a small budget, with readahead and a
//! storing cleancache stand-in, twice (the second pass is served partly by
//! cleancache). Skips, saying so, only if mkfs.fat is not installed.

mod common;

use std::path::Path;
use std::process::Command;

use blkdev::{BlockDevice, RamDisk};
use common::*;
use testdata::Content;

#[test]
fn every_byte_of_a_mkdata_image_through_the_page_cache() {
    if !Path::new("/usr/sbin/mkfs.fat").exists() && !Path::new("/sbin/mkfs.fat").exists() {
        eprintln!("SKIPPED: mkfs.fat not installed (apt-get install dosfstools mtools)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("pagecache-image-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let img = dir.join("data.img");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../tools/mkdata/mkdata.py");
    let out = Command::new("python3")
        .arg(script)
        .args(["--out", img.to_str().unwrap()])
        .args([
            "--image-mb",
            "40",
            "--files",
            "60",
            "--large",
            "2",
            "--total-mb",
            "2",
        ])
        .args(["--seed", "4242", "--quiet"])
        .env("MTOOLS_SKIP_CHECK", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&img).unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    let (mut pc, _log) = cache_on(RamDisk::from_vec(bytes), cfg(48, 4, 16), true);
    let m = pc.open(testdata::MANIFEST_PATH).unwrap();
    let mut manifest = vec![0u8; pc.file_size(m).unwrap() as usize];
    pc.read(m, 0, &mut manifest).unwrap();
    let manifest = String::from_utf8(manifest).unwrap();
    let (seed, entries) = testdata::parse_manifest(&manifest).unwrap();
    assert_eq!(seed, 4242);
    let entries: Vec<_> = entries.map(|e| e.unwrap()).collect();
    assert_eq!(entries.len(), 60);
    for pass in 0..2 {
        for e in &entries {
            let id = pc.open(e.path).unwrap();
            assert_eq!(pc.file_size(id).unwrap(), e.size);
            let c = Content::new(seed, e.path);
            // Odd-sized reads so that page boundaries fall mid-buffer.
            let mut off = 0u64;
            let mut buf = vec![0u8; 5000];
            while off < e.size {
                let n = pc.read(id, off, &mut buf).unwrap();
                assert!(n > 0);
                assert_eq!(
                    c.first_mismatch(off, &buf[..n]),
                    None,
                    "{} at {off}",
                    e.path
                );
                off += n as u64;
            }
        }
        check(&pc);
        if pass == 0 {
            assert!(pc.stats().evictions > 0);
            assert!(pc.stats().ra_pages_read > 0);
        }
    }
    let s = *pc.stats();
    assert!(s.cc_demand_restores + s.cc_ra_restores > 0, "{s:?}");
    // Nothing was written: the image is only read.
    assert_eq!(pc.fs().device().stats().sectors_written, 0);
}

#[test]
fn files_written_through_the_page_cache_pass_fsck_and_read_back_with_mtools() {
    let Some(mkfs) = ["/usr/sbin/mkfs.fat", "/sbin/mkfs.fat"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        eprintln!("SKIPPED: mkfs.fat not installed (apt-get install dosfstools mtools)");
        return;
    };
    let dir = std::env::temp_dir().join(format!("pagecache-fsck-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let img = dir.join("rw.img");
    let st = Command::new(mkfs)
        .args(["-F", "32", "-s", "8", "-C"])
        .arg(&img)
        .arg((300 * 1024).to_string())
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let (mut pc, _log) = cache_on(
        RamDisk::from_vec(std::fs::read(&img).unwrap()),
        cfg(8, 4, 8),
        true,
    );
    pc.mkdir("/Written By The Page Cache").unwrap();
    let mut expect = Vec::new();
    for i in 0..12u64 {
        let path = format!("/Written By The Page Cache/file number {i}.bin");
        let f = pc.create(&path).unwrap();
        let len = 3000 + i as usize * 7919;
        let data = content(i, &path, len);
        // In odd pieces: appends that cross page boundaries.
        for chunk in data.chunks(1234 + i as usize) {
            let off = pc.file_size(f).unwrap();
            pc.write(f, off, chunk).unwrap();
        }
        expect.push((path, data));
    }
    // Truncate some, delete some, overwrite in the middle.
    let t = pc.open(&expect[3].0).unwrap();
    pc.truncate(t, 100).unwrap();
    expect[3].1.truncate(100);
    pc.remove(&expect[5].0).unwrap();
    let f = pc.open(&expect[7].0).unwrap();
    pc.write(f, 5000, &[0x5A; 9000]).unwrap();
    expect[7].1[5000..14000].fill(0x5A);
    expect.remove(5);
    pc.sync().unwrap();
    check(&pc);
    let (fs, _, _) = pc.unmount().unwrap();
    let disk = fs.unmount().unwrap().into_inner().inner;
    std::fs::write(&img, disk.into_vec()).unwrap();
    let out = Command::new(mkfs.replace("mkfs.fat", "fsck.fat"))
        .arg("-n")
        .arg(&img)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "fsck.fat -n: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for (path, data) in &expect {
        let out = Command::new("mtype")
            .args(["-i", img.to_str().unwrap()])
            .arg(format!("::{path}"))
            .env("MTOOLS_SKIP_CHECK", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout == *data, "{path} differs");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
