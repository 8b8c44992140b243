//! `cargo xtask sd-image`: a flashable Raspberry Pi 4 SD-card image, made
//! without root.
//!
//! Layout (512-byte sectors, MBR partition table):
//!
//! | what        | first sector | size                         | content |
//! |-------------|--------------|------------------------------|---------|
//! | MBR         | 0            | 1 MiB gap (alignment)        | two FAT32 (LBA, type 0x0c) entries, disk signature |
//! | partition 1 | 2048         | [`BOOT_MIB`] MiB, label BOOT | start4.elf, fixup4.dat, bcm2711-rpi-4-b.dtb, config.txt, cmdline.txt, kernel8.img |
//! | partition 2 | after it     | to the end, label GCMADATA   | the demo's data set (tools/mkdata) |
//!
//! The image size is a power of two (QEMU's SD card refuses anything
//! else); cards over 2 GiB are high capacity. Partition 1 is formatted in
//! place with `mkfs.fat --offset` and filled with `mcopy -i IMG@@OFFSET`;
//! partition 2 is tools/mkdata's FAT32 image made at the partition's size and
//! copied in at its offset (all-zero blocks skipped, so the image stays
//! sparse), with a progress line per 8 %.
//!
//! The firmware comes from Debian's `raspi-firmware` (non-free-firmware)
//! through tools/sdimage/fetch-firmware.sh, which gives apt its own source
//! list and never installs the package. The DTB is tools/dtb's
//! `build/dtb/rpi4.dtb` (our reserved-memory nodes), the file QEMU boots.
//! kernel8.img is the raw image of the rpi4 ELF (llvm-objcopy), loaded by the
//! firmware at `kernel_address`, the link address of linker/rpi4.ld.
//!
//! [`check_image`] reads an image back (partition table, labels, files):
//! `cargo xtask test` runs it on the image it boots.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Size of the boot partition.
pub const BOOT_MIB: u64 = 64;
/// First sector of partition 1 (1 MiB alignment, as Raspberry Pi OS does).
pub const P1_START: u64 = 2048;
/// Label of the data partition; the kernel mounts the partition that has it.
pub const DATA_LABEL: &str = "GCMADATA";
/// Link address of the rpi4 kernel (linker/rpi4.ld: RAM base 0 + text_offset
/// 0x80000), where config.txt's `kernel_address` makes the firmware load it.
pub const KERNEL_ADDRESS: u64 = 0x80000;
/// The firmware facts the rpi4 board code relies on (the PL011 clock),
/// stated once in the board crate.
#[path = "../../../boards/rpi4/src/firmware.rs"]
mod firmware;
use firmware::UART_CLOCK_HZ;
/// Files on the boot partition.
pub const BOOT_FILES: [&str; 6] = [
    "start4.elf",
    "fixup4.dat",
    "bcm2711-rpi-4-b.dtb",
    "config.txt",
    "cmdline.txt",
    "kernel8.img",
];

const SECTOR: u64 = 512;

/// Which data set goes on partition 2.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DataSet {
    /// The demo's (qemu-run.sh's build/demo-data.img): 800 files, 128 MiB, seed 42.
    Demo,
    /// The self-tests' (xtask's build/selftest-data.img): 300 files, 24 MiB, seed 7.
    Selftest,
}

impl DataSet {
    /// tools/mkdata arguments (all but the image size and output).
    pub fn mkdata_args(self) -> [&'static str; 8] {
        match self {
            DataSet::Demo => [
                "--files",
                "800",
                "--large",
                "8",
                "--total-mb",
                "128",
                "--seed",
                "42",
            ],
            DataSet::Selftest => [
                "--files",
                "300",
                "--large",
                "3",
                "--total-mb",
                "24",
                "--seed",
                "7",
            ],
        }
    }
    fn name(self) -> &'static str {
        match self {
            DataSet::Demo => "demo",
            DataSet::Selftest => "selftest",
        }
    }
}

/// What to build.
pub struct Options {
    pub out: PathBuf,
    pub size_mib: u64,
    /// The rpi4 kernel ELF; None builds `-p rpi4` (debug).
    pub kernel: Option<PathBuf>,
    /// Extra boot arguments after `board=rpi4` in cmdline.txt.
    pub cmdline: String,
    pub data: DataSet,
}

pub fn usage() -> &'static str {
    "usage: cargo xtask sd-image [--out FILE] [--size MIB] [--kernel ELF] [--cmdline ARGS] [--data demo|selftest]\n\
     \n\
     Writes a Raspberry Pi 4 SD-card image (default build/rpi4-sd.img, 256 MiB):\n\
     an MBR, a FAT32 boot partition (firmware, DTB, config.txt, cmdline.txt,\n\
     kernel8.img) and a FAT32 data partition labelled GCMADATA. No root needed.\n\
     --size is a power of two >= 128 (QEMU's SD card needs one; > 2048 is SDHC).\n\
     --cmdline adds boot arguments after board=rpi4 (e.g. \"mode=selftest\")."
}

fn parse(root: &Path, args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        out: root.join("build/rpi4-sd.img"),
        size_mib: 256,
        kernel: None,
        cmdline: String::new(),
        data: DataSet::Demo,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{a} needs a value"))
        };
        match a.as_str() {
            "--out" => o.out = PathBuf::from(value()?),
            "--size" => {
                let v = value()?;
                o.size_mib = v
                    .parse()
                    .map_err(|_| format!("--size {v}: not a number of MiB"))?;
            }
            "--kernel" => o.kernel = Some(PathBuf::from(value()?)),
            "--cmdline" => o.cmdline = value()?,
            "--data" => {
                o.data = match value()?.as_str() {
                    "demo" => DataSet::Demo,
                    "selftest" => DataSet::Selftest,
                    v => return Err(format!("--data {v}: expected demo or selftest")),
                }
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown option {other}")),
        }
    }
    if !o.size_mib.is_power_of_two() || o.size_mib < 128 {
        return Err(format!(
            "--size {}: the image must be a power of two of at least 128 MiB (QEMU's SD card refuses other sizes)",
            o.size_mib
        ));
    }
    Ok(o)
}

/// `cargo xtask sd-image ARGS`.
pub fn main(root: &Path, args: &[String]) -> std::process::ExitCode {
    let o = match parse(root, args) {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("xtask sd-image: {e}");
            }
            eprintln!("{}", usage());
            return std::process::ExitCode::from(2);
        }
    };
    match build(root, &o).and_then(|()| check_image(&o.out)) {
        Ok(facts) => {
            println!(
                "sd-image: checked: partitions {:?} (first sector, sectors); boot files {}; cmdline.txt {:?}",
                facts.partitions,
                facts.boot_files.join(" "),
                facts.cmdline
            );
            println!(
                "sd-image: wrote {} ({} MiB); write it to a card with: dd if={} of=/dev/sdX bs=4M conv=fsync",
                o.out.display(),
                o.size_mib,
                o.out.display()
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xtask sd-image: error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn mtools_env(cmd: &mut Command) -> &mut Command {
    cmd.env("MTOOLS_SKIP_CHECK", "1")
}

fn tool(name: &str) -> String {
    for dir in ["/usr/sbin", "/sbin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p.display().to_string();
        }
    }
    name.to_string()
}

/// rustup's llvm-objcopy (llvm-tools component), as qemu-run.sh finds it.
pub fn objcopy(root: &Path) -> Result<PathBuf, String> {
    let sysroot = run(Command::new("rustc")
        .current_dir(root)
        .args(["--print", "sysroot"]))?;
    let vv = run(Command::new("rustc").current_dir(root).arg("-vV"))?;
    let host = vv
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .ok_or("rustc -vV names no host")?;
    let p = Path::new(sysroot.trim()).join(format!("lib/rustlib/{host}/bin/llvm-objcopy"));
    if p.exists() {
        Ok(p)
    } else {
        Err("llvm-objcopy not found: rustup component add llvm-tools (tools/setup-host.sh)".into())
    }
}

/// The partition table: (first sector, sectors) of the boot and data partitions.
pub fn layout(size_mib: u64) -> [(u64, u64); 2] {
    let total = size_mib << 11;
    let boot = BOOT_MIB << 11;
    let p2 = P1_START + boot;
    [(P1_START, boot), (p2, total - p2)]
}

/// Sector 0: boot code area zero, disk signature, two FAT32 LBA entries.
fn mbr(parts: &[(u64, u64); 2], signature: u32) -> [u8; 512] {
    let mut s = [0u8; 512];
    s[440..444].copy_from_slice(&signature.to_le_bytes());
    for (i, &(start, len)) in parts.iter().enumerate() {
        let e = &mut s[446 + 16 * i..446 + 16 * (i + 1)];
        e[0] = if i == 0 { 0x80 } else { 0 }; // the boot partition is active
        // CHS fields: the "use LBA" value 1023/254/63 (0xfe 0xff 0xff).
        e[1..4].copy_from_slice(&[0xfe, 0xff, 0xff]);
        e[4] = 0x0c; // FAT32 with LBA addressing
        e[5..8].copy_from_slice(&[0xfe, 0xff, 0xff]);
        e[8..12].copy_from_slice(&(start as u32).to_le_bytes());
        e[12..16].copy_from_slice(&(len as u32).to_le_bytes());
    }
    s[510] = 0x55;
    s[511] = 0xaa;
    s
}

fn config_txt() -> String {
    format!(
        "# GCMA unikernel on the Raspberry Pi 4 (written by cargo xtask sd-image)\n\
         arm_64bit=1\n\
         kernel=kernel8.img\n\
         # load kernel8.img at the kernel's link address (linker/rpi4.ld)\n\
         kernel_address={KERNEL_ADDRESS:#x}\n\
         device_tree=bcm2711-rpi-4-b.dtb\n\
         # the PL011 console on GPIO 14/15; its reference clock, from which the\n\
         # kernel programs 115200 baud\n\
         enable_uart=1\n\
         init_uart_clock={UART_CLOCK_HZ}\n\
         # the GIC-400, which the kernel drives\n\
         enable_gic=1\n"
    )
}

/// Builds the image described by `o`.
pub fn build(root: &Path, o: &Options) -> Result<(), String> {
    let [(p1, p1_len), (p2, p2_len)] = layout(o.size_mib);
    println!(
        "sd-image: {} MiB image, boot partition {} MiB at sector {p1}, data partition {} MiB at sector {p2}",
        o.size_mib,
        p1_len >> 11,
        p2_len >> 11
    );

    // The kernel and its raw image.
    let elf = match &o.kernel {
        Some(k) => k.clone(),
        None => {
            println!("sd-image: building the rpi4 kernel (cargo build -p rpi4)");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let st = Command::new(cargo)
                .current_dir(root)
                .args(["build", "-p", "rpi4", "--target", "aarch64-unknown-none"])
                .status()
                .map_err(|e| format!("cargo: {e}"))?;
            if !st.success() {
                return Err("cargo build -p rpi4 failed".into());
            }
            root.join("target/aarch64-unknown-none/debug/rpi4")
        }
    };
    let staging = root.join("build/sd-staging");
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(&staging).map_err(|e| format!("{}: {e}", staging.display()))?;
    let kimg = staging.join("kernel8.img");
    run(Command::new(objcopy(root)?)
        .args(["-O", "binary"])
        .arg(&elf)
        .arg(&kimg))?;
    let head = fs::read(&kimg).map_err(|e| format!("{}: {e}", kimg.display()))?;
    if head.len() < 64 || &head[56..60] != b"ARM\x64" {
        return Err(format!(
            "{} has no arm64 Image header; is {} the rpi4 kernel?",
            kimg.display(),
            elf.display()
        ));
    }
    let text_offset = u64::from_le_bytes(head[8..16].try_into().expect("8 bytes"));
    if text_offset != KERNEL_ADDRESS {
        return Err(format!(
            "kernel8.img's text_offset is {text_offset:#x}, config.txt loads it at {KERNEL_ADDRESS:#x}: linker/rpi4.ld and tools/xtask/src/sdimage.rs disagree"
        ));
    }

    // The device tree (tools/dtb), as qemu-run.sh makes it.
    let dtb = root.join("build/dtb/rpi4.dtb");
    let stale = match (
        fs::metadata(&dtb),
        fs::metadata(root.join("tools/dtb/make-dtbs.sh")),
    ) {
        (Ok(d), Ok(s)) => d.modified().ok() < s.modified().ok(),
        _ => true,
    };
    if stale {
        println!(
            "sd-image: building {} (tools/dtb/make-dtbs.sh --board rpi4)",
            dtb.display()
        );
        run(Command::new(root.join("tools/dtb/make-dtbs.sh")).args(["--board", "rpi4", "--quiet"]))?;
    }
    fs::copy(&dtb, staging.join("bcm2711-rpi-4-b.dtb"))
        .map_err(|e| format!("{}: {e}", dtb.display()))?;

    // The firmware.
    println!("sd-image: firmware from Debian's raspi-firmware (tools/sdimage/fetch-firmware.sh)");
    let fw = run(Command::new(root.join("tools/sdimage/fetch-firmware.sh")).arg("--quiet"))?;
    let fw = PathBuf::from(fw.trim());
    for f in ["start4.elf", "fixup4.dat"] {
        fs::copy(fw.join(f), staging.join(f))
            .map_err(|e| format!("{}: {e}", fw.join(f).display()))?;
    }
    fs::write(staging.join("config.txt"), config_txt()).map_err(|e| e.to_string())?;
    let mut cmdline = "board=rpi4".to_string();
    if !o.cmdline.trim().is_empty() {
        cmdline.push(' ');
        cmdline.push_str(o.cmdline.trim());
    }
    cmdline.push('\n');
    fs::write(staging.join("cmdline.txt"), cmdline).map_err(|e| e.to_string())?;

    // The data partition's file system, made at the partition's size.
    let data_mib = p2_len >> 11;
    let data = root.join(format!(
        "build/cache/sd-data-{}-{data_mib}M.img",
        o.data.name()
    ));
    let script = root.join("tools/mkdata/mkdata.py");
    let fresh = matches!(
        (fs::metadata(&data).and_then(|m| m.modified()), fs::metadata(&script).and_then(|m| m.modified())),
        (Ok(d), Ok(s)) if d > s
    );
    if !fresh {
        println!(
            "sd-image: making the {} data set for partition 2 (tools/mkdata, {data_mib} MiB)",
            o.data.name()
        );
        let st = Command::new("python3")
            .arg(&script)
            .args(o.data.mkdata_args())
            .arg("--image-mb")
            .arg(data_mib.to_string())
            .arg("--out")
            .arg(&data)
            .status()
            .map_err(|e| format!("python3: {e}"))?;
        if !st.success() {
            let _ = fs::remove_file(&data);
            return Err("tools/mkdata/mkdata.py failed".into());
        }
    }

    // The image: sparse file, partition table, boot FAT32, files, data.
    if let Some(dir) = o.out.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let tmp = o.out.with_extension("img.part");
    let _ = fs::remove_file(&tmp);
    {
        let mut f = File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
        f.set_len(o.size_mib << 20).map_err(|e| e.to_string())?;
        let sig = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(0x6c6d_6367);
        f.write_all(&mbr(&layout(o.size_mib), sig))
            .map_err(|e| e.to_string())?;
    }
    run(Command::new(tool("mkfs.fat"))
        .args(["-F", "32", "-S", "512", "-s", "1", "-n", "BOOT", "-h"])
        .arg(p1.to_string())
        .arg(format!("--offset={p1}"))
        .arg(&tmp)
        .arg((p1_len / 2).to_string()))?;
    let target = format!("{}@@{}", tmp.display(), p1 * SECTOR);
    let mut cp = Command::new("mcopy");
    mtools_env(&mut cp).arg("-i").arg(&target);
    for f in BOOT_FILES {
        cp.arg(staging.join(f));
    }
    cp.arg("::/");
    run(&mut cp)?;
    copy_partition(&data, &tmp, p2 * SECTOR, p2_len * SECTOR)?;
    fs::rename(&tmp, &o.out).map_err(|e| format!("{}: {e}", o.out.display()))?;
    Ok(())
}

/// Copies the file system image `src` into `img` at byte `offset`, skipping
/// all-zero blocks, with progress lines.
fn copy_partition(src: &Path, img: &Path, offset: u64, room: u64) -> Result<(), String> {
    let mut from = File::open(src).map_err(|e| format!("{}: {e}", src.display()))?;
    let len = from.metadata().map_err(|e| e.to_string())?.len();
    if len > room {
        return Err(format!(
            "{} is {len} bytes, the data partition {room}",
            src.display()
        ));
    }
    let mut to = OpenOptions::new()
        .write(true)
        .open(img)
        .map_err(|e| format!("{}: {e}", img.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    let (mut done, mut written, mut shown) = (0u64, 0u64, 0u64);
    println!(
        "sd-image: data partition: copying {} MiB from {}",
        len >> 20,
        src.display()
    );
    while done < len {
        let n = (len - done).min(buf.len() as u64) as usize;
        from.read_exact(&mut buf[..n]).map_err(|e| e.to_string())?;
        if done == 0 && n >= 7 * 512 {
            // BPB "hidden sectors" (offset 28) of the boot sector and its
            // backup (sector 6): the partition's first sector, as a
            // partitioning tool would write it.
            let start = ((offset / SECTOR) as u32).to_le_bytes();
            buf[28..32].copy_from_slice(&start);
            buf[6 * 512 + 28..6 * 512 + 32].copy_from_slice(&start);
        }
        // 64 KiB pieces: the file system's data sits in a few clusters of
        // each MiB near the start; empty space stays a hole.
        for (i, piece) in buf[..n].chunks(64 << 10).enumerate() {
            if piece.iter().any(|&b| b != 0) {
                to.seek(SeekFrom::Start(offset + done + (i as u64) * (64 << 10)))
                    .map_err(|e| e.to_string())?;
                to.write_all(piece).map_err(|e| e.to_string())?;
                written += piece.len() as u64;
            }
        }
        done += n as u64;
        let pct = done * 100 / len;
        if pct >= shown + 8 || done == len {
            shown = pct;
            println!(
                "sd-image: data partition: {pct:3}% ({} / {} MiB, {} MiB non-zero)",
                done >> 20,
                len >> 20,
                written >> 20
            );
        }
    }
    to.sync_all().map_err(|e| e.to_string())?;
    Ok(())
}

/// The image `cargo xtask test` boots raspi4b from.
pub const TEST_IMAGE: &str = "build/rpi4-sd-test.img";

/// Builds [`TEST_IMAGE`] from `elf` with the self-test data set and reads
/// it back; returns the image and the checks (name, passed, detail).
pub fn test_image(
    root: &Path,
    elf: &Path,
) -> Result<(PathBuf, Vec<(&'static str, bool, String)>), String> {
    println!("\n==> rpi4: SD-card image {TEST_IMAGE} (cargo xtask sd-image --data selftest)");
    let o = Options {
        out: root.join(TEST_IMAGE),
        size_mib: 256,
        kernel: Some(elf.to_path_buf()),
        cmdline: String::new(),
        data: DataSet::Selftest,
    };
    let _ = fs::remove_file(&o.out);
    build(root, &o)?;
    let facts = check_image(&o.out)?;
    let checks = vec![
        ("image built, size a power of two", true, String::new()),
        (
            "MBR: two FAT32 partitions inside the image, no overlap",
            facts.partitions[0].1 > 0 && facts.partitions[1].1 > 0,
            format!("{:?}", facts.partitions),
        ),
        (
            "boot partition: firmware, DTB, config.txt, cmdline.txt, kernel8.img; data: GCMADATA with MANIFEST.TXT",
            facts.boot_files.len() >= BOOT_FILES.len(),
            facts.boot_files.join(" "),
        ),
    ];
    Ok((o.out, checks))
}

/// A 4 GiB sparse image (QEMU presents a high-capacity, block-addressed
/// card): one boot in fault mode, which identifies the card and lists and
/// picks the partitions (reading sector 0 and each partition's first
/// sector by block number) before its deliberate fault.
pub fn high_capacity_boot(root: &Path, elf: &Path, o: &crate::Options, report: &mut crate::Report) {
    let group = "rpi4 sd 4 GiB";
    println!(
        "\n==> rpi4: 4 GiB SD-card image (high capacity), boot until the partitions are picked"
    );
    let img = Options {
        out: root.join("build/rpi4-sd-4g.img"),
        size_mib: 4096,
        kernel: Some(elf.to_path_buf()),
        cmdline: String::new(),
        data: DataSet::Selftest,
    };
    if let Err(e) = build(root, &img).and_then(|()| check_image(&img.out).map(|_| ())) {
        report.add(group, "image built and read back", false, e);
        return;
    }
    report.add(group, "image built and read back", true, "");
    let (_, out) = crate::boot(
        root,
        elf,
        Some(&img.out),
        o,
        &["mode=fault"],
        "rpi4-sd-4g.log",
        true,
    );
    let _ = fs::remove_file(&img.out);
    let card = out.lines().find(|l| l.contains("sd card: ")).unwrap_or("");
    report.add(
        group,
        "card identified as high capacity, 8388608 sectors",
        card.contains("8388608 sectors") && card.contains("high capacity (block addressing)"),
        card.trim().to_string(),
    );
    report.add(
        group,
        "data partition found by its label",
        out.contains(&format!("label \"{DATA_LABEL}\""))
            && out.contains(&format!(
                "the file system is partition 2 (label {DATA_LABEL})"
            )),
        "",
    );
}

/// What [`check_image`] found.
#[derive(Debug)]
pub struct ImageFacts {
    /// (first sector, sectors) of both partitions.
    pub partitions: [(u64, u64); 2],
    /// Names on the boot partition (upper case as mdir lists them).
    pub boot_files: Vec<String>,
    /// cmdline.txt.
    pub cmdline: String,
}

/// Reads an image back: power-of-two size, MBR signature, two FAT32 LBA
/// partitions inside the image that do not overlap, the boot partition's
/// files and label, the data partition's label and MANIFEST.TXT.
pub fn check_image(img: &Path) -> Result<ImageFacts, String> {
    let mut f = File::open(img).map_err(|e| format!("{}: {e}", img.display()))?;
    let size = f.metadata().map_err(|e| e.to_string())?.len();
    if !size.is_power_of_two() {
        return Err(format!(
            "{}: size {size} is not a power of two",
            img.display()
        ));
    }
    let mut s = [0u8; 512];
    f.read_exact(&mut s).map_err(|e| e.to_string())?;
    if s[510..512] != [0x55, 0xaa] {
        return Err("sector 0 has no MBR signature 55 aa".into());
    }
    let mut parts = [(0u64, 0u64); 2];
    for (i, p) in parts.iter_mut().enumerate() {
        let e = &s[446 + 16 * i..446 + 16 * (i + 1)];
        if e[4] != 0x0c {
            return Err(format!(
                "partition {} has type {:#04x}, want 0x0c (FAT32 LBA)",
                i + 1,
                e[4]
            ));
        }
        let start = u32::from_le_bytes(e[8..12].try_into().expect("4")) as u64;
        let len = u32::from_le_bytes(e[12..16].try_into().expect("4")) as u64;
        if start == 0 || len == 0 || (start + len) * SECTOR > size {
            return Err(format!(
                "partition {}: sectors {start}+{len} outside the image",
                i + 1
            ));
        }
        *p = (start, len);
    }
    if parts[0].0 + parts[0].1 > parts[1].0 {
        return Err("partitions 1 and 2 overlap".into());
    }
    let at = |p: (u64, u64)| format!("{}@@{}", img.display(), p.0 * SECTOR);
    let label = |p: (u64, u64)| -> Result<String, String> {
        let out = run(mtools_env(&mut Command::new("minfo"))
            .arg("-i")
            .arg(at(p))
            .arg("::"))?;
        Ok(out
            .lines()
            .find_map(|l| l.trim().strip_prefix("disk label="))
            .unwrap_or("")
            .trim_matches('"')
            .trim()
            .to_string())
    };
    let boot_label = label(parts[0])?;
    if boot_label != "BOOT" {
        return Err(format!(
            "boot partition label {boot_label:?}, want \"BOOT\""
        ));
    }
    let data_label = label(parts[1])?;
    if data_label != DATA_LABEL {
        return Err(format!(
            "data partition label {data_label:?}, want {DATA_LABEL:?}"
        ));
    }
    let listing = run(mtools_env(&mut Command::new("mdir"))
        .args(["-b", "-i"])
        .arg(at(parts[0]))
        .arg("::/"))?;
    let boot_files: Vec<String> = listing
        .lines()
        .map(|l| l.trim().trim_start_matches("::/").to_string())
        .filter(|l| !l.is_empty())
        .collect();
    for want in BOOT_FILES {
        if !boot_files.iter().any(|f| f.eq_ignore_ascii_case(want)) {
            return Err(format!(
                "boot partition lacks {want} (has {})",
                boot_files.join(", ")
            ));
        }
    }
    let cat = |p: (u64, u64), name: &str| -> Result<Vec<u8>, String> {
        let out = mtools_env(&mut Command::new("mtype"))
            .arg("-i")
            .arg(at(p))
            .arg(format!("::/{name}"))
            .output()
            .map_err(|e| format!("mtype: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "cannot read {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(out.stdout)
    };
    let kernel = cat(parts[0], "kernel8.img")?;
    if kernel.len() < 64 || &kernel[56..60] != b"ARM\x64" {
        return Err("kernel8.img on the boot partition has no arm64 Image header".into());
    }
    let dtb = cat(parts[0], "bcm2711-rpi-4-b.dtb")?;
    if dtb.get(..4) != Some(&[0xd0, 0x0d, 0xfe, 0xed]) {
        return Err("bcm2711-rpi-4-b.dtb is not a flattened device tree".into());
    }
    let config = String::from_utf8_lossy(&cat(parts[0], "config.txt")?).into_owned();
    for want in [
        "arm_64bit=1",
        "kernel=kernel8.img",
        "enable_uart=1",
        "kernel_address=0x80000",
    ] {
        if !config.lines().any(|l| l.trim() == want) {
            return Err(format!("config.txt lacks {want}"));
        }
    }
    let cmdline = String::from_utf8_lossy(&cat(parts[0], "cmdline.txt")?)
        .trim()
        .to_string();
    if !cmdline.split_whitespace().any(|a| a == "board=rpi4") {
        return Err(format!("cmdline.txt {cmdline:?} lacks board=rpi4"));
    }
    let manifest = cat(parts[1], "MANIFEST.TXT")?;
    if !manifest.starts_with(b"seed ") {
        return Err("data partition's MANIFEST.TXT does not start with \"seed \"".into());
    }
    Ok(ImageFacts {
        partitions: parts,
        boot_files,
        cmdline,
    })
}
