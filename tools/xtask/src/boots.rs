//! The QEMU boots of `cargo xtask test` and the checks on their consoles:
//! self-test boots over a data disk (the second checking what the first
//! wrote), virt with a zeroed disk and with bad reserved-memory nodes, the
//! quick demo, the 1-minute soak, and the fault boot. [`boot`] runs one
//! kernel through qemu-run.sh and keeps its console under build/logs/.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::args::Options;
use crate::process::{bench_python, run_cmd, run_echo, step};
use crate::report::Report;
use crate::sdimage;

/// The data image for the virt self-tests (tools/mkdata: FAT32, 300 files,
/// 24 MiB whose every byte the kernel can check), made once and reused
/// while mkdata.py is unchanged.
fn data_image(root: &Path) -> Result<PathBuf, String> {
    let image = root.join("build/selftest-data.img");
    let script = root.join("tools/mkdata/mkdata.py");
    let modified = |p: &Path| fs::metadata(p).and_then(|m| m.modified());
    if let (Ok(img), Ok(src)) = (modified(&image), modified(&script)) {
        if img > src {
            return Ok(image);
        }
    }
    step("making the self-test data image (tools/mkdata/mkdata.py)");
    let status = Command::new("python3")
        .arg(&script)
        .args(["--image-mb", "64"])
        .args(sdimage::DataSet::Selftest.mkdata_args())
        .arg("--out")
        .arg(&image)
        .status()
        .map_err(|e| format!("mkdata: {e}"))?;
    if !status.success() {
        return Err(format!(
            "mkdata failed: {status} (tools/setup-host.sh installs dosfstools and mtools)"
        ));
    }
    Ok(image)
}

/// A fresh copy of the data image for one series of boots.
fn test_disk(root: &Path) -> Result<PathBuf, String> {
    let image = data_image(root)?;
    let disk = root.join("build/selftest-disk.img");
    fs::copy(&image, &disk).map_err(|e| format!("copy {}: {e}", image.display()))?;
    Ok(disk)
}

/// Boots `elf` through qemu-run.sh and keeps its console in
/// build/logs/`log_name`; `echo` false keeps it in the log only (boots
/// whose guest-side FAIL lines are expected).
pub fn boot(
    root: &Path,
    elf: &Path,
    disk: Option<&Path>,
    o: &Options,
    kernel_args: &[&str],
    log_name: &str,
    echo: bool,
) -> (Option<i32>, String) {
    // raspi4b boots from the test's SD-card image unless given another, and
    // reads its data set by 32-bit PIO under TCG: three times the timeout.
    let rpi4 = elf.file_name() == Some("rpi4".as_ref());
    let sd = root.join(sdimage::TEST_IMAGE);
    let disk = disk.or((rpi4 && sd.exists()).then_some(&*sd));
    let mut cmd = Command::new(root.join("qemu-run.sh"));
    cmd.current_dir(root)
        .arg("--timeout")
        .arg((o.timeout * if rpi4 { 3 } else { 1 }).to_string());
    if let Some(disk) = disk {
        cmd.arg("--disk").arg(disk);
    }
    cmd.arg(elf).arg("--").args(kernel_args);
    cmd.stdin(Stdio::null());
    let (status, out) = run_cmd(&mut cmd, echo);
    if !echo {
        println!("(console in build/logs/{log_name}; its FAIL lines are expected)");
    }
    let logs = root.join("build/logs");
    let _ = fs::create_dir_all(&logs);
    let _ = fs::write(logs.join(log_name), &out);
    (status, out)
}

/// `key=value` fields of a machine line `@tag k=v k=v`.
fn fields(line: &str) -> BTreeMap<&str, &str> {
    line.split_whitespace()
        .skip(1)
        .filter_map(|kv| kv.split_once('='))
        .collect()
}

/// Self-test boots: two over the same data disk (virt: the data image on
/// virtio-blk; raspi4b: the SD-card image on EMMC2), the first running
/// every test and writing a file, the second mounting the disk and checking
/// that file survived, nothing else.
pub fn selftest_boots(root: &Path, elf: &Path, board: &str, o: &Options, report: &mut Report) {
    let disk = if board == "qemu-virt" {
        test_disk(root)
    } else {
        sdimage::test_image(root, elf).map(|(img, checks)| {
            for (name, ok, detail) in checks {
                report.add("rpi4 sd-image", name, ok, detail);
            }
            img
        })
    };
    let disk = match disk {
        Ok(d) => d,
        Err(e) => {
            report.add(&format!("{board} selftest"), "data disk", false, e);
            return;
        }
    };
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(1);
    selftest_boot(
        root,
        elf,
        Some(&disk),
        board,
        &format!("persist=write:{nonce}"),
        o,
        report,
    );
    selftest_boot(
        root,
        elf,
        Some(&disk),
        board,
        &format!("persist=check:{nonce}"),
        o,
        report,
    );
}

fn selftest_boot(
    root: &Path,
    elf: &Path,
    disk: Option<&Path>,
    board: &str,
    extra: &str,
    o: &Options,
    report: &mut Report,
) {
    let phase = extra
        .split(':')
        .next()
        .and_then(|s| s.strip_prefix("persist="))
        .unwrap_or("");
    let group = if phase.is_empty() {
        format!("{board} selftest")
    } else {
        format!("{board} selftest {phase}")
    };
    step(&format!("{board}: booting in self-test mode {phase}"));
    let mut args = vec!["mode=selftest".to_string()];
    if !extra.is_empty() {
        args.push(extra.to_string());
    }
    if let Some(i) = &o.inject {
        args.push(format!("inject={i}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let log = if phase.is_empty() {
        format!("{board}-selftest.log")
    } else {
        format!("{board}-selftest-{phase}.log")
    };
    let (status, out) = boot(root, elf, disk, o, &args, &log, true);

    let mut planned = None;
    let mut summary = None;
    let mut exit_line = None;
    let mut tests = 0;
    let mut regions = Vec::new();
    for line in out.lines() {
        let f = fields(line);
        if line.starts_with("@selftest planned=") {
            planned = f.get("planned").and_then(|v| v.parse::<usize>().ok());
        } else if line.starts_with("@selftest passed=") {
            summary = Some(line.to_string());
        } else if line.starts_with("@test ") {
            tests += 1;
            let name = f.get("name").copied().unwrap_or("?");
            let ok = f.get("result") == Some(&"pass");
            report.add(
                &group,
                name,
                ok,
                if ok {
                    ""
                } else {
                    "guest test failed (see log)"
                },
            );
        } else if line.starts_with("@exit ") {
            exit_line = f.get("status").and_then(|v| v.parse::<i32>().ok());
        } else if line.starts_with("@region ") {
            regions.push((
                f.get("kind").unwrap_or(&"?").to_string(),
                f.get("name").unwrap_or(&"?").to_string(),
            ));
        }
    }
    if !phase.is_empty() {
        // Both boots of the pair run the persistence test, the check boot
        // (two tests) little else: its absence must fail, not pass as a
        // complete run of fewer tests.
        let ran = out
            .lines()
            .any(|l| l.starts_with("@test name=storage.persist_across_boots "));
        report.add(
            &group,
            "storage.persist_across_boots ran",
            ran,
            "no @test line for it",
        );
    }
    if disk.is_some() && phase != "check" {
        // The block-layer fault tests: one console line per injected fault
        // (the check boot of the persistence pair runs only its check).
        for (what, line) in [
            ("read error", "blk: injected read error at sector "),
            ("write error", "blk: injected write error at sector "),
            ("stalled device", "blk: device stopped answering: "),
        ] {
            let ok = out.lines().any(|l| l.contains(line));
            report.add(&group, &format!("fault console line: {what}"), ok, "");
        }
    }
    // Every core QEMU gives the board (tools/dtb/qemu-machines.sh: virt
    // -smp 2; raspi4b always has 4) is online and reported its self-test.
    let cores = if board == "rpi4" { 4 } else { 2 };
    let smp = out
        .lines()
        .find(|l| l.starts_with("@smp "))
        .unwrap_or("")
        .to_string();
    let f = fields(&smp);
    let want = cores.to_string();
    report.add(
        &group,
        &format!("smp: all {cores} cores online"),
        f.get("listed") == Some(&want.as_str())
            && f.get("online") == Some(&want.as_str())
            && f.get("checkins") == Some(&(cores - 1).to_string().as_str()),
        if smp.is_empty() {
            "no @smp line".to_string()
        } else {
            smp.clone()
        },
    );
    let kinds: Vec<&str> = regions.iter().map(|(k, _)| k.as_str()).collect();
    // tools/dtb/make-dtbs.sh: gcma@ and the tag-storage donor tags@ (both
    // GCMA), one CMA, one carveout.
    let four = [("gcma", 2), ("cma", 1), ("carveout", 1)]
        .iter()
        .all(|(k, n)| kinds.iter().filter(|x| *x == k).count() == *n);
    report.add(
        &group,
        "boot report: two gcma (gcma@, tags@), one cma, one carveout region",
        four,
        format!("regions seen: {}", kinds.join(", ")),
    );
    let complete = planned == Some(tests) && summary.is_some();
    report.add(
        &group,
        "every planned test reported",
        complete,
        format!(
            "planned {planned:?}, reported {tests}, summary {}",
            if summary.is_some() {
                "present"
            } else {
                "missing"
            }
        ),
    );
    let clean = status == Some(0) && exit_line == Some(0);
    let why = match status {
        Some(124) => "timed out: the kernel hung".to_string(),
        Some(s) => format!("QEMU exit status {s}, kernel @exit status {exit_line:?}"),
        None => "QEMU did not exit normally".to_string(),
    };
    report.add(
        &group,
        "exit status 0",
        clean,
        if clean { String::new() } else { why },
    );
}

/// A disk without a filesystem: storage must fail with a clear message and
/// nothing else (no panic, no fault; the raw block tests still pass).
pub fn no_filesystem_boot(root: &Path, elf: &Path, o: &Options, report: &mut Report) {
    let group = "qemu-virt no-fs disk";
    step("qemu-virt: booting with a zeroed disk (no FAT32)");
    let disk = root.join("build/zero-disk.img");
    if let Err(e) = fs::write(&disk, vec![0u8; 16 << 20]) {
        report.add(group, "zeroed disk", false, e.to_string());
        return;
    }
    let (status, out) = boot(
        root,
        elf,
        Some(&disk),
        o,
        &["mode=selftest"],
        "qemu-virt-nofs.log",
        false,
    );
    let mount = out
        .lines()
        .find(|l| l.contains("FAIL  storage.mount:"))
        .unwrap_or("");
    report.add(
        group,
        "mount refused with a clear error",
        mount.contains("no FAT32"),
        mount.trim().to_string(),
    );
    let raw_ok = out.contains("@test name=blk.read_boot_sector result=fail")
        && out.contains("@test name=blk.bad_requests result=pass");
    report.add(group, "raw device still usable", raw_ok, "");
    let clean = status == Some(1) && out.contains("@exit status=1 reason=tests-failed");
    report.add(
        group,
        "no panic or fault (status 1)",
        clean,
        format!("QEMU exit {status:?}"),
    );
    let untouched = fs::read(&disk)
        .map(|d| d.iter().all(|b| *b == 0))
        .unwrap_or(false);
    report.add(group, "nothing written to the disk", untouched, "");
}

/// Bad reserved-memory nodes added to the virt tree: each gets one console
/// line naming the node and the problem, is not an area (its memory stays
/// excluded), and boot goes on with the three good regions intact. The
/// overlapping pair is two bad nodes: a node overlapping a good region
/// would make that region refused too (physmap's rules).
pub fn bad_dtb_boot(root: &Path, elf: &Path, o: &Options, report: &mut Report) {
    let group = "qemu-virt bad dtb";
    step("qemu-virt: booting with bad reserved-memory nodes");
    let good = root.join("build/dtb/qemu-virt.dts");
    let bad_dts = root.join("build/dtb/qemu-virt-bad.dts");
    let bad_dtb = root.join("build/dtb/qemu-virt-bad.dtb");
    let cases = [
        (
            "overlap@62080000",
            "reg = <0x0 0x62080000 0x0 0x100000>;",
            "overlaps",
        ),
        ("zero@60000000", "reg = <0x0 0x60000000 0x0 0x0>;", "size"),
        (
            "outside@100000000",
            "reg = <0x1 0x0 0x0 0x100000>;",
            "outside ram",
        ),
        (
            "nomapreuse@61000000",
            "reg = <0x0 0x61000000 0x0 0x100000>; no-map; reusable;",
            "no-map",
        ),
        (
            "misaligned@62000800",
            "reg = <0x0 0x62000800 0x0 0x100000>;",
            "align",
        ),
        ("huge", "size = <0x0 0x80000000>;", "place"),
    ];
    let mut extra = String::from("\n/ {\n\treserved-memory {\n");
    for (node, props, _) in &cases {
        extra.push_str(&format!("\t\t{node} {{ {props} }};\n"));
    }
    extra.push_str("\t};\n");
    // Cores that cannot come up (QEMU runs 2): each is reported with one
    // line and boot goes on with the two real ones.
    let cpu_cases = [
        ("cpu@2", "enable-method = \"psci\";", "INVALID_PARAMETERS"),
        (
            "cpu@3",
            "enable-method = \"spin-table\"; cpu-release-addr = <0x0 0x40000000>;",
            "not an aligned word of mapped, reserved RAM",
        ),
        (
            "cpu@4",
            "enable-method = \"spin-table\"; cpu-release-addr = <0x0 0x5f000000>;",
            "did not come up within",
        ),
        (
            "cpu@5",
            "enable-method = \"spin-table\";",
            "without a 64-bit cpu-release-addr",
        ),
    ];
    extra.push_str("\tcpus {\n");
    for (node, props, _) in &cpu_cases {
        let reg = node.trim_start_matches("cpu@");
        extra.push_str(&format!(
            "\t\t{node} {{ device_type = \"cpu\"; reg = <0x{reg}>; {props} }};\n"
        ));
    }
    extra.push_str("\t};\n};\n");
    // cpu@4's release word: reserved, mapped RAM that no core polls.
    let memreserve = "/dts-v1/;\n/memreserve/ 0x5f000000 0x1000;";
    let made = fs::read_to_string(&good)
        .map_err(|e| format!("{}: {e} (tools/dtb/make-dtbs.sh makes it)", good.display()))
        .and_then(|t| {
            let t = t.replacen("/dts-v1/;", memreserve, 1);
            fs::write(&bad_dts, t + &extra).map_err(|e| e.to_string())
        })
        .and_then(|_| {
            let st = Command::new("dtc")
                .args(["-q", "-I", "dts", "-O", "dtb", "-o"])
                .arg(&bad_dtb)
                .arg(&bad_dts)
                .status()
                .map_err(|e| format!("dtc: {e}"))?;
            if st.success() {
                Ok(())
            } else {
                Err(format!("dtc failed: {st}"))
            }
        });
    if let Err(e) = made {
        report.add(group, "bad device tree built", false, e);
        return;
    }
    let mut cmd = Command::new(root.join("qemu-run.sh"));
    cmd.current_dir(root)
        .arg("--timeout")
        .arg(o.timeout.to_string())
        .arg("--dtb")
        .arg(&bad_dtb)
        .arg(elf)
        .arg("--")
        .arg("mode=selftest")
        .stdin(Stdio::null());
    let (status, out) = run_cmd(&mut cmd, false);
    println!("(console in build/logs/qemu-virt-bad-dtb.log; its FAIL lines are expected: no disk)");
    let _ = fs::write(root.join("build/logs/qemu-virt-bad-dtb.log"), &out);
    for (node, _, word) in &cases {
        let line = out
            .lines()
            .find(|l| l.contains(&format!("node '{node}'")))
            .unwrap_or("");
        report.add(
            group,
            &format!("{node}: one clear line"),
            line.to_lowercase().contains(word),
            line.trim().to_string(),
        );
        let kept = out
            .lines()
            .any(|l| l.starts_with("@region ") && l.contains(&format!("name={node} ")));
        report.add(group, &format!("{node}: skipped"), !kept, "");
    }
    let three = ["gcma@50000000", "carveout@54000000", "name=cma "]
        .iter()
        .all(|n| {
            out.lines()
                .any(|l| l.starts_with("@region ") && l.contains(n))
        });
    report.add(group, "good regions intact", three, "");
    for (node, _, words) in &cpu_cases {
        let line = out
            .lines()
            .find(|l| l.contains(node) && l.contains(words))
            .unwrap_or("");
        report.add(
            group,
            &format!("{node}: reported, not started"),
            !line.is_empty(),
            line.trim().to_string(),
        );
    }
    let smp = out.lines().find(|l| l.starts_with("@smp ")).unwrap_or("");
    report.add(
        group,
        "smp: the two real cores online, the four bad ones failed",
        smp.contains("listed=6 online=2 failed=4"),
        smp.to_string(),
    );
    report.add(
        group,
        "smp.every_core_reported fails: not every listed core is online",
        out.contains("@test name=smp.every_core_reported result=fail"),
        "",
    );
    report.add(
        group,
        "boot went on (reserved-region tests pass)",
        out.contains("@test name=dt.reserved_regions result=pass")
            && out.contains("@test name=gcma.mixed_sizes_never_fail result=pass"),
        format!("QEMU exit {status:?}"),
    );
}

/// A quick demo run: every console table present, and the @-lines turned
/// into a bench.json that tools/bench/collect.py --check accepts (every
/// field present and consistent). The numbers themselves are not judged.
/// raspi4b runs it on one core (`demo_cores`) from the self-test SD image (sdimage::TEST_IMAGE, made
/// by the self-test boots): its 24 MiB data set keeps the run to minutes,
/// where QEMU's SD card (a coroutine per byte read) makes the demo's
/// 128 MiB set take a quarter of an hour.
pub fn demo_boot(root: &Path, elf: &Path, board: &str, o: &Options, report: &mut Report) {
    let group = format!("{board} demo");
    let group = group.as_str();
    let (minutes, timeout) = if board == "rpi4" { (6, 1200) } else { (5, 600) };
    step(&format!(
        "{board}: quick demo (about {minutes} minutes under TCG)"
    ));
    let mut cmd = Command::new(root.join("qemu-run.sh"));
    cmd.current_dir(root)
        .env("QEMU_RUN_NO_RESULTS", "1")
        .arg("--timeout")
        .arg(o.timeout.max(timeout).to_string());
    if board == "rpi4" {
        cmd.arg("--disk").arg(root.join(crate::sdimage::TEST_IMAGE));
    }
    cmd.arg(elf)
        .arg("--")
        .args(["mode=demo", "scale=quick"])
        .args(demo_cores(board))
        .stdin(Stdio::null());
    let (status, out) = run_echo(&mut cmd);
    let log = root.join(if board == "rpi4" {
        "build/logs/xtask-demo-rpi4.log"
    } else {
        "build/logs/xtask-demo.log"
    });
    let _ = fs::write(&log, &out);
    report.add(
        group,
        "exit status 0",
        status == Some(0) && out.contains("@exit status=0"),
        format!("QEMU exit {status:?}"),
    );
    for table in [
        "scan of the data set",
        "probe ",
        "contiguous allocations under the camera pipeline",
        "CMA p99 / GCMA p99",
        "utilization gcma",
        "per page (median",
        "memory report (MiB)",
        "kind       size  allocated",
        "memsys lock (",
        "areas  lock (",
    ] {
        report.add(
            group,
            &format!("table: {}", table.trim()),
            out.contains(table),
            "",
        );
    }
    // Several cores in the scheduler: the one-core comparison table too.
    let cores: usize = out
        .lines()
        .find(|l| l.starts_with("@sched "))
        .and_then(|l| fields(l).get("cores").and_then(|v| v.parse().ok()))
        .unwrap_or(0);
    if demo_cores(board).is_empty() {
        report.add(
            group,
            "several cores: the camera on core 0, the one-core comparison table",
            cores > 1 && out.contains("one core and "),
            format!("@sched cores={cores}"),
        );
    } else {
        report.add(
            group,
            "smp=1: one core in the scheduler",
            cores == 1,
            format!("@sched cores={cores}"),
        );
    }
    report.add(
        group,
        "data verified (0 mismatches, 0 corrupt frames)",
        out.contains(", 0 mismatches; 0 corrupt frames"),
        "",
    );
    let mut check = Command::new(bench_python());
    check
        .current_dir(root)
        .arg("tools/bench/collect.py")
        .arg(&log)
        .args(["--check", "--board", board, "--accel", "tcg"]);
    let (st, msg) = run_echo(&mut check);
    report.add(
        group,
        "bench.json complete and consistent (collect.py --check)",
        st == Some(0),
        msg.lines().last().unwrap_or("").to_string(),
    );
}

/// The `smp=` of a board's quick demo. raspi4b's four cores take four TCG
/// threads on a host that may have two, and its demo with the one-core
/// comparison takes about 40 minutes, too long for the test command. It
/// runs on one core there (one TCG thread, tools/dtb/qemu-machines.sh); the
/// several-core demo is checked on virt, and raspi4b's four cores by its
/// self-tests (tasks on every core, cross-core joins, the memory state
/// across cores, a thread per vCPU) and by `cargo run-rpi4`.
fn demo_cores(board: &str) -> &'static [&'static str] {
    if board == "rpi4" { &["smp=1"] } else { &[] }
}

/// A 1-minute soak on the demo's data set (qemu-run.sh attaches it): the
/// summary table and a passing `@soak` line with 0 violations, status 0.
pub fn soak_boot(root: &Path, elf: &Path, o: &Options, report: &mut Report) {
    let group = "qemu-virt soak";
    step("qemu-virt: 1-minute soak (demo workloads, invariants every second)");
    let o = Options {
        timeout: o.timeout.max(480),
        inject: None,
        boards: Vec::new(),
        host: false,
        demo: false,
    };
    let args = ["mode=soak", "minutes=1"];
    let (status, out) = boot(root, elf, None, &o, &args, "qemu-virt-soak.log", true);
    let soak = out.lines().find(|l| l.starts_with("@soak ")).unwrap_or("");
    let f = fields(soak);
    report.add(group, "summary table", out.contains("soak summary"), "");
    let passed = f.get("result") == Some(&"pass") && f.get("violations") == Some(&"0");
    let checks: u64 = f.get("checks").and_then(|v| v.parse().ok()).unwrap_or(0);
    // About one check a second while phases run (123 in the two-minute
    // soak CI ran before); phase changes and a loaded host stretch that, so
    // ask for one every three seconds at least.
    report.add(
        group,
        "0 violations, at least 20 checks",
        passed && checks >= 20,
        soak.to_string(),
    );
    report.add(
        group,
        "exit status 0",
        status == Some(0) && out.contains("@exit status=0"),
        format!("QEMU exit {status:?}"),
    );
}

pub fn fault_boot(root: &Path, elf: &Path, board: &str, o: &Options, report: &mut Report) {
    let group = format!("{board} fault");
    step(&format!(
        "{board}: booting in fault mode (an undefined instruction on purpose)"
    ));
    let (status, out) = boot(
        root,
        elf,
        None,
        o,
        &["mode=fault"],
        &format!("{board}-fault.log"),
        true,
    );
    report.add(
        &group,
        "exception reported",
        out.contains("*** FATAL: unexpected synchronous exception"),
        "",
    );
    report.add(
        &group,
        "decoded as undefined instruction",
        out.contains("EC 0x00 unknown reason (undefined instruction)"),
        "",
    );
    report.add(
        &group,
        "registers dumped",
        out.contains("ELR_EL1") && out.contains("x30"),
        "",
    );
    report.add(
        &group,
        "stopped with fatal-exception status 3",
        status == Some(3) && out.contains("@exit status=3"),
        format!("QEMU exit {status:?}"),
    );
}
