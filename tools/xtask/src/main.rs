//! Host-side tasks for the GCMA unikernel.
//!
//! `cargo xtask test` is the project's one test command:
//! 1. the host unit and property tests of every crate under `kernel/crates/`,
//!    and `real-dtbs` (src/realtrees.rs) when build/cache holds Debian's
//!    kernel package;
//! 2. both boards built for aarch64-unknown-none;
//! 3. each board booted under QEMU in self-test mode: every `@test` line must
//!    say pass, the kernel must announce as many tests as it runs, report the
//!    three reserved regions, and exit with status 0 before the timeout;
//! 4. virt: a boot with a zeroed disk, one with bad reserved-memory nodes,
//!    a quick demo whose tables and bench.json fields are checked, and a
//!    2-minute soak (invariants every second) that must end with its
//!    summary, 0 violations and status 0;
//! 5. each board booted in fault mode: the undefined instruction must be
//!    reported (exception class, ESR, registers) and the kernel must stop
//!    with the fatal-exception status.
//! 6. rpi4: a 4 GiB (high-capacity) SD image, the board facts
//!    (src/boardfacts.rs: wrong load address, high-peripheral tree, PM
//!    watchdog halt and reboot) and, unless --skip-demo, a quick demo from
//!    the self-test SD image checked as virt's is.
//!
//! A hang (timeout), a panic, a fault or a missing result line is a failure.
//! The last line is `total: N passed, M failed`.
//!
//! `cargo xtask structure` checks the source tree: no import cycle between
//! the modules of kernel/src, no source file over 800 lines outside tests
//! (see structure.rs); `cargo xtask test` runs it first, as one check.
//!
//! `--inject fail|panic|hang` adds a failing, panicking or hanging guest test,
//! to show that each turns the command red.

mod fuzz;

use std::collections::BTreeMap;
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

mod boardfacts;
mod ccbench;
mod linuxcma;
mod publish;
mod realtrees;
mod sdimage;
mod structure;

const HOST_TARGET: &str = env!("XTASK_HOST_TARGET");
const BOARDS: [&str; 2] = ["qemu-virt", "rpi4"];

fn usage() -> &'static str {
    "usage: cargo xtask test [--inject fail|panic|hang] [--timeout SECS] [--board qemu-virt|rpi4] [--skip-host] [--skip-demo]\n\
     \x20      cargo xtask structure [--graph]\n\
     \x20      cargo xtask fuzz [--seconds N] (every fuzz target; --help there)\n\
     \n\
     test: checks the source structure, runs the host tests of kernel/crates/* and\n\
     xtask, builds both boards, boots each under QEMU in self-test and fault mode\n\
     and checks every result line, then runs a quick demo on each board (raspi4b:\n\
     from the self-test SD image) and checks its tables and bench.json fields,\n\
     and a 2-minute soak on virt (--skip-demo skips the demos and the soak).\n\
     structure: fails on an import cycle between the modules of kernel/src or a\n\
     source file over 800 lines outside tests that tools/xtask/structure-allow.txt\n\
     does not list; --graph prints the module graph it reads.\n\
     \n\
     cargo xtask real-dtbs [--lines]: every .dtb of the cached Debian kernel package through\n\
     physmap; fails if a byte a node claims is usable (see src/realtrees.rs).\n\
     \n\
     cargo xtask cleancache-bench: instructions per page of GCMA take-back/give-back,\n\
     cleancache store/restore/evict and a carveout allocation, counted with callgrind\n\
     (see src/ccbench.rs)."
}

struct Options {
    inject: Option<String>,
    timeout: u64,
    boards: Vec<String>,
    host: bool,
    demo: bool,
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        inject: None,
        timeout: 300,
        boards: BOARDS.iter().map(|s| s.to_string()).collect(),
        host: true,
        demo: true,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match a.as_str() {
            "--inject" => {
                let v = value("--inject")?;
                if !["fail", "panic", "hang"].contains(&v.as_str()) {
                    return Err(format!("--inject {v}: expected fail, panic or hang"));
                }
                o.inject = Some(v);
            }
            "--timeout" => {
                let v = value("--timeout")?;
                o.timeout = v
                    .parse()
                    .map_err(|_| format!("--timeout {v}: not a number of seconds"))?;
            }
            "--board" => {
                let v = value("--board")?;
                if !BOARDS.contains(&v.as_str()) {
                    return Err(format!(
                        "--board {v}: expected one of {}",
                        BOARDS.join(", ")
                    ));
                }
                o.boards = vec![v];
            }
            "--skip-host" => o.host = false,
            "--skip-demo" => o.demo = false,
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(o)
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// One checked outcome.
struct Check {
    group: String,
    name: String,
    ok: bool,
    detail: String,
}

#[derive(Default)]
struct Report {
    checks: Vec<Check>,
    host_passed: u64,
    host_failed: u64,
}

impl Report {
    fn add(&mut self, group: &str, name: &str, ok: bool, detail: impl Into<String>) {
        self.checks.push(Check {
            group: group.into(),
            name: name.into(),
            ok,
            detail: detail.into(),
        });
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("test") => match parse_args(&args[1..]) {
            Ok(o) => test(&o),
            Err(e) => {
                eprintln!("xtask: {e}\n{}", usage());
                ExitCode::from(2)
            }
        },
        Some("publish") => publish::publish(&args[1..]),
        Some("structure") if args.len() <= 2 => {
            let ok = match args.get(1).map(String::as_str) {
                None => structure::run(&root()),
                Some("--graph") => structure::print_graph(&root()),
                Some(other) => {
                    eprintln!("xtask: unknown option {other}\n{}", usage());
                    return ExitCode::from(2);
                }
            };
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Some("real-dtbs") => realtrees::command(&root(), &args[1..]),
        Some("linux-cma") => linuxcma::linux_cma(&args[1..]),
        Some("fuzz") => fuzz::main(&root(), &args[1..]),
        Some("cleancache-bench") => ccbench::command(&root(), HOST_TARGET, &args[1..]),
        Some("sd-image") => sdimage::main(&root(), &args[1..]),
        Some("-h" | "--help" | "help") => {
            println!(
                "{}\n\n{}\n\n{}\n\n{}",
                usage(),
                publish::usage(),
                sdimage::usage(),
                linuxcma::usage()
            );
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{}", usage());
            ExitCode::from(2)
        }
    }
}

fn step(msg: &str) {
    println!("\n==> {msg}");
    let _ = std::io::stdout().flush();
}

/// Runs `cmd`, echoing its output live and returning it (stdout+stderr).
fn run_echo(cmd: &mut Command) -> (Option<i32>, String) {
    run_cmd(cmd, true)
}

/// Runs `cmd` and returns its output; echoes it live if `echo`.
fn run_cmd(cmd: &mut Command, echo: bool) -> (Option<i32>, String) {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return (None, format!("cannot start {cmd:?}: {e}")),
    };
    let stderr = child.stderr.take().expect("piped stderr");
    let err_thread = std::thread::spawn(move || {
        let mut out = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if echo {
                eprintln!("{line}");
            }
            out.push_str(&line);
            out.push('\n');
        }
        out
    });
    let mut out = String::new();
    let stdout = child.stdout.take().expect("piped stdout");
    for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
        let line = String::from_utf8_lossy(&line).replace('\r', "");
        if echo {
            println!("{line}");
        }
        out.push_str(&line);
        out.push('\n');
    }
    let status = child.wait().ok().and_then(|s| s.code());
    out.push_str(&err_thread.join().unwrap_or_default());
    (status, out)
}

/// The python3 for tools/bench: Debian's, which has python3-matplotlib.
fn bench_python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

fn host_crates(root: &Path) -> Vec<String> {
    let mut names = Vec::new();
    let Ok(dir) = fs::read_dir(root.join("kernel/crates")) else {
        return names;
    };
    for entry in dir.flatten() {
        let manifest = entry.path().join("Cargo.toml");
        let Ok(text) = fs::read_to_string(&manifest) else {
            continue;
        };
        if let Some(name) = text.lines().find_map(|l| {
            l.trim().strip_prefix("name").map(|r| {
                r.trim()
                    .trim_start_matches('=')
                    .trim()
                    .trim_matches('"')
                    .to_string()
            })
        }) {
            names.push(name);
        }
    }
    names.sort();
    names
}

fn test(o: &Options) -> ExitCode {
    let root = root();
    let started = Instant::now();
    let mut report = Report::default();

    // Host set-up first (idempotent, about a second when all is there): so
    // that this one command works on a fresh Debian 12 machine.
    step("host set-up (tools/setup-host.sh)");
    let (status, _) = run_echo(
        Command::new("bash")
            .current_dir(&root)
            .arg("tools/setup-host.sh"),
    );
    if status != Some(0) {
        report.add(
            "host",
            "tools/setup-host.sh",
            false,
            format!("exit {status:?}"),
        );
        print_summary(&report, started.elapsed().as_secs_f64());
        return ExitCode::FAILURE;
    }

    if o.host {
        step("source structure (cargo xtask structure)");
        let ok = structure::run(&root);
        report.add(
            "host",
            "structure: no new import cycle or file over 800 lines",
            ok,
            if ok { "" } else { "see the FAIL lines above" },
        );
    }

    if o.host {
        let crates = host_crates(&root);
        step(&format!("host tests: {}, xtask", crates.join(", ")));
        let mut cmd = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.current_dir(&root)
            .args(["test", "--target", HOST_TARGET]);
        for c in &crates {
            cmd.args(["-p", c]);
        }
        // xtask's own unit tests: the structure check's and the linux-cma
        // log parser's on a recorded run.
        cmd.args(["-p", "xtask"]);
        let (status, out) = run_echo(&mut cmd);
        for line in out.lines() {
            // "test result: ok. 35 passed; 0 failed; 0 ignored; ..."
            if let Some(rest) = line.trim().strip_prefix("test result: ") {
                let num = |key: &str| -> u64 {
                    rest.split(';')
                        .find_map(|p| {
                            p.trim()
                                .trim_start_matches("ok.")
                                .trim_start_matches("FAILED.")
                                .trim()
                                .strip_suffix(key)
                        })
                        .and_then(|n| n.trim().parse().ok())
                        .unwrap_or(0)
                };
                report.host_passed += num("passed");
                report.host_failed += num("failed");
            }
        }
        let ok = status == Some(0);
        report.add(
            "host",
            "cargo test",
            ok,
            if ok {
                String::new()
            } else {
                format!("cargo test exited with {status:?}")
            },
        );
    }

    if o.host
        && let Some((ok, detail)) = realtrees::check_if_cached(&root)
    {
        report.add("host", "real device trees (real-dtbs)", ok, detail);
    }

    if o.host {
        // The results tool (tools/bench): Debian's python3, which has matplotlib.
        step("host tests: tools/bench (python3 -m unittest)");
        let mut cmd = Command::new(bench_python());
        cmd.current_dir(&root).args([
            "-m",
            "unittest",
            "discover",
            "-s",
            "tools/bench",
            "-p",
            "test_*.py",
        ]);
        let (status, out) = run_echo(&mut cmd);
        // "Ran 38 tests in 1.8s" then "OK" / "FAILED (failures=1, errors=2)".
        let ran: u64 = out
            .lines()
            .find_map(|l| {
                l.strip_prefix("Ran ")
                    .and_then(|r| r.split_whitespace().next())
                    .and_then(|n| n.parse().ok())
            })
            .unwrap_or(0);
        let bad: u64 = out
            .lines()
            .find_map(|l| l.strip_prefix("FAILED ("))
            .map(|r| {
                r.trim_end_matches(')')
                    .split(", ")
                    .filter_map(|kv| kv.split_once('='))
                    .filter(|(k, _)| *k == "failures" || *k == "errors")
                    .filter_map(|(_, v)| v.parse::<u64>().ok())
                    .sum()
            })
            .unwrap_or(0);
        let ok = status == Some(0) && ran > 0;
        report.host_passed += ran.saturating_sub(bad);
        report.host_failed += if ok { 0 } else { bad.max(1) };
        report.add(
            "host",
            "tools/bench unittest",
            ok,
            if ok {
                String::new()
            } else {
                format!("exit {status:?}, ran {ran}")
            },
        );
    }

    step(&format!("building {}", o.boards.join(", ")));
    let mut cmd = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(&root)
        .args(["build", "--target", "aarch64-unknown-none"]);
    for b in &o.boards {
        cmd.args(["-p", b]);
    }
    let (status, _) = run_echo(&mut cmd);
    let built = status == Some(0);
    report.add(
        "build",
        "aarch64-unknown-none",
        built,
        if built { "" } else { "cargo build failed" },
    );

    if built {
        for board in &o.boards {
            let elf = root.join("target/aarch64-unknown-none/debug").join(board);
            selftest_boots(&root, &elf, board, o, &mut report);
            if board == "qemu-virt" {
                no_filesystem_boot(&root, &elf, o, &mut report);
                bad_dtb_boot(&root, &elf, o, &mut report);
                if o.demo {
                    demo_boot(&root, &elf, board, o, &mut report);
                    soak_boot(&root, &elf, o, &mut report);
                }
            }
            fault_boot(&root, &elf, board, o, &mut report);
            if board == "rpi4" {
                sdimage::high_capacity_boot(&root, &elf, o, &mut report);
                boardfacts::run(&root, &elf, &mut report);
                if o.demo {
                    demo_boot(&root, &elf, board, o, &mut report);
                }
            }
        }
    }

    print_summary(&report, started.elapsed().as_secs_f64());
    let failed = report.checks.iter().filter(|c| !c.ok).count() as u64 + report.host_failed;
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

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
fn boot(
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
/// virtio-blk; raspi4b: the SD-card image on EMMC2), the first writing a
/// file, the second checking it survived.
fn selftest_boots(root: &Path, elf: &Path, board: &str, o: &Options, report: &mut Report) {
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
    if disk.is_some() {
        // The block-layer fault tests: one console line per injected fault.
        for (what, line) in [
            ("read error", "blk: injected read error at sector "),
            ("write error", "blk: injected write error at sector "),
            ("stalled device", "blk: device stopped answering: "),
        ] {
            let ok = out.lines().any(|l| l.contains(line));
            report.add(&group, &format!("fault console line: {what}"), ok, "");
        }
    }
    let kinds: Vec<&str> = regions.iter().map(|(k, _)| k.as_str()).collect();
    let three = ["gcma", "cma", "carveout"]
        .iter()
        .all(|k| kinds.iter().filter(|x| *x == k).count() == 1);
    report.add(
        &group,
        "boot report: gcma, cma and carveout regions",
        three,
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
fn no_filesystem_boot(root: &Path, elf: &Path, o: &Options, report: &mut Report) {
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
fn bad_dtb_boot(root: &Path, elf: &Path, o: &Options, report: &mut Report) {
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
    extra.push_str("\t};\n};\n");
    let made = fs::read_to_string(&good)
        .map_err(|e| format!("{}: {e} (tools/dtb/make-dtbs.sh makes it)", good.display()))
        .and_then(|t| fs::write(&bad_dts, t + &extra).map_err(|e| e.to_string()))
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
/// raspi4b runs it from the self-test SD image (sdimage::TEST_IMAGE, made
/// by the self-test boots): its 24 MiB data set keeps the run to minutes,
/// where QEMU's SD card (a coroutine per byte read) makes the demo's
/// 128 MiB set take a quarter of an hour.
fn demo_boot(root: &Path, elf: &Path, board: &str, o: &Options, report: &mut Report) {
    let group = format!("{board} demo");
    let group = group.as_str();
    let (minutes, timeout) = if board == "rpi4" { (6, 1200) } else { (2, 600) };
    step(&format!(
        "{board}: quick demo (about {minutes} minutes under TCG)"
    ));
    let mut cmd = Command::new(root.join("qemu-run.sh"));
    cmd.current_dir(root)
        .env("QEMU_RUN_NO_RESULTS", "1")
        .arg("--timeout")
        .arg(o.timeout.max(timeout).to_string());
    if board == "rpi4" {
        cmd.arg("--disk").arg(root.join(sdimage::TEST_IMAGE));
    }
    cmd.arg(elf)
        .arg("--")
        .args(["mode=demo", "scale=quick"])
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
    ] {
        report.add(
            group,
            &format!("table: {}", table.trim()),
            out.contains(table),
            "",
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

/// A 2-minute soak on the demo's data set (qemu-run.sh attaches it): the
/// summary table and a passing `@soak` line with 0 violations, status 0.
fn soak_boot(root: &Path, elf: &Path, o: &Options, report: &mut Report) {
    let group = "qemu-virt soak";
    step("qemu-virt: 2-minute soak (demo workloads, invariants every second)");
    let o = Options {
        timeout: o.timeout.max(480),
        inject: None,
        boards: Vec::new(),
        host: false,
        demo: false,
    };
    let args = ["mode=soak", "minutes=2"];
    let (status, out) = boot(root, elf, None, &o, &args, "qemu-virt-soak.log", true);
    let soak = out.lines().find(|l| l.starts_with("@soak ")).unwrap_or("");
    let f = fields(soak);
    report.add(group, "summary table", out.contains("soak summary"), "");
    let passed = f.get("result") == Some(&"pass") && f.get("violations") == Some(&"0");
    let checks: u64 = f.get("checks").and_then(|v| v.parse().ok()).unwrap_or(0);
    // About one check a second while phases run; phase changes and a loaded
    // host stretch that, so ask for one every three seconds at least.
    report.add(
        group,
        "0 violations, at least 40 checks",
        passed && checks >= 40,
        soak.to_string(),
    );
    report.add(
        group,
        "exit status 0",
        status == Some(0) && out.contains("@exit status=0"),
        format!("QEMU exit {status:?}"),
    );
}

fn fault_boot(root: &Path, elf: &Path, board: &str, o: &Options, report: &mut Report) {
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

fn print_summary(report: &Report, secs: f64) {
    let w_group = report
        .checks
        .iter()
        .map(|c| c.group.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let w_name = report
        .checks
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut s = String::new();
    let _ = writeln!(s, "\n==> summary ({secs:.0} s)");
    let _ = writeln!(s, "{:<w_group$}  {:<w_name$}  result", "group", "check");
    for c in &report.checks {
        let _ = write!(
            s,
            "{:<w_group$}  {:<w_name$}  {}",
            c.group,
            c.name,
            if c.ok { "pass" } else { "FAIL" }
        );
        if !c.ok && !c.detail.is_empty() {
            let _ = write!(s, "  ({})", c.detail);
        }
        s.push('\n');
    }
    let passed = report.checks.iter().filter(|c| c.ok).count() as u64;
    let failed = report.checks.len() as u64 - passed;
    let _ = writeln!(
        s,
        "host unit/property tests: {} passed, {} failed",
        report.host_passed, report.host_failed
    );
    let _ = writeln!(
        s,
        "guest and build checks: {passed} passed, {failed} failed"
    );
    // The closing line CI reads.
    let _ = writeln!(
        s,
        "total: {} passed, {} failed",
        passed + report.host_passed,
        failed + report.host_failed
    );
    print!("{s}");
}
