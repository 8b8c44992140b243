//! `cargo xtask linux-cma`: Linux 6.12's own CMA, timed in the same emulator
//! as our kernel, as the reference our CMA model is calibrated against.
//!
//! Steps (the shell side is `tools/linux-cma/build.sh`, see
//! `tools/linux-cma/README.md`):
//! 1. `build.sh deps`: installs the missing build dependencies with apt-get
//!    (gcc-aarch64-linux-gnu, libc6-dev-arm64-cross, bc, bison, flex, cpio,
//!    xz-utils) and says which;
//! 2. `build.sh kernel`: Linux from Debian's linux-source-6.12, tinyconfig +
//!    `tools/linux-cma/config.fragment`, cached in `build/linux-cma/` (rebuilt
//!    only when the package, the fragment or the patch changes);
//! 3. `build.sh initramfs`: busybox-static:arm64 and our static programs;
//! 4. `build.sh data`: the demo's data disk, `build/demo-data.img`;
//! 5. `build.sh boot`: QEMU virt, `-smp N` (`--smp`, 1 unless asked; passed
//!    as `LCMA_SMP`), `cma=64M`; the guest's `/init` runs each condition and
//!    prints `@lcma` lines;
//! 6. the console (kept in `build/linux-cma/console.log`) is parsed into
//!    rows (the guest must report N CPUs), printed as a table and written to
//!    `results/linux-cma.json`.
//!
//! `--log FILE` skips 1-5 and parses a recorded console instead. The parser
//! is tested on a recorded run (`tools/linux-cma/testdata/linux-cma.log`) by
//! `cargo xtask test` (its host tests include this crate); the build and the
//! boot are never part of the test command.
//!
//! Percentiles are nearest-rank, computed by `probe::nearest_rank`, the
//! definition the kernel's own reports use, over every attempt (failed ones
//! included, as the demo's are).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use crate::{root, run_cmd, step};

/// The demo's buffer sizes in pages (kernel/src/workload/camera.rs: FRAME_PAGES,
/// 1080p NV12, and PHOTO_PAGES, 4K NV12).
const DEFAULT_PAGES: [u64; 2] = [760, 3038];
/// The demo's buffer alignment in pages (camera.rs ALIGN_PAGES: 64 KiB).
const DEFAULT_ALIGN_PAGES: u64 = 16;
/// Fewest timed attempts a row may have for the run to count.
const MIN_ATTEMPTS: u64 = 20;
/// Most guest CPUs `--smp` takes.
const MAX_SMP: u64 = 8;

pub fn usage() -> &'static str {
    "usage: cargo xtask linux-cma [--count N] [--align-pages N] [--conditions LIST]\n\
     \x20                            [--warmup SECS] [--gap MS] [--timeout SECS]\n\
     \x20                            [--smp N] [--log FILE] [--out FILE]\n\
     \n\
     Builds Linux 6.12 (Debian's linux-source-6.12, tinyconfig + tools/linux-cma/\n\
     config.fragment; cached in build/linux-cma/), boots it under QEMU virt\n\
     (-smp N, cma=64M) with the demo's data disk, times CMA allocations of\n\
     760 and 3038 pages through debugfs under idle, pagecache, anon, odirect\n\
     and longpin, prints the table and writes results/linux-cma.json.\n\
     --smp N (1 to 8) boots the guest with N CPUs; with N > 1 the timing\n\
     program is pinned to CPU 0 and the loads to CPUs 1..N-1. The guest must\n\
     report N CPUs (a --log console too), or nothing is written.\n\
     Defaults: --count 30 rounds, --align-pages 16, all five conditions,\n\
     --warmup 10, --gap 250, --timeout 5400, --smp 1. --log FILE parses a\n\
     recorded console instead of building and booting."
}

struct Options {
    count: u64,
    align_pages: u64,
    conditions: Option<String>,
    warmup: u64,
    gap_ms: u64,
    timeout: u64,
    smp: u64,
    log: Option<PathBuf>,
    out: Option<PathBuf>,
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        count: 30,
        align_pages: DEFAULT_ALIGN_PAGES,
        conditions: None,
        warmup: 10,
        gap_ms: 250,
        timeout: 5400,
        smp: 1,
        log: None,
        out: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{a} needs a value"))
        };
        let number = |v: String| {
            v.parse::<u64>()
                .map_err(|_| format!("{a} {v}: not a whole number"))
        };
        match a.as_str() {
            "--count" => o.count = number(value()?)?.max(1),
            "--align-pages" => {
                let v = number(value()?)?;
                if !v.is_power_of_two() {
                    return Err(format!("--align-pages {v}: must be a power of two"));
                }
                o.align_pages = v;
            }
            "--conditions" => {
                let v = value()?;
                for c in v.split(',') {
                    if !["idle", "pagecache", "anon", "odirect", "longpin"].contains(&c) {
                        return Err(format!(
                            "--conditions: unknown condition {c} (idle, pagecache, anon, odirect, longpin)"
                        ));
                    }
                }
                o.conditions = Some(v);
            }
            "--warmup" => o.warmup = number(value()?)?,
            "--gap" => o.gap_ms = number(value()?)?,
            "--timeout" => o.timeout = number(value()?)?.max(1),
            "--smp" => {
                let v = value()?;
                o.smp = match v.parse::<u64>() {
                    Ok(n @ 1..=MAX_SMP) => n,
                    _ => {
                        return Err(format!(
                            "--smp {v}: want a number of guest CPUs from 1 to {MAX_SMP}"
                        ));
                    }
                };
            }
            "--log" => o.log = Some(PathBuf::from(value()?)),
            "--out" => o.out = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(o)
}

pub fn linux_cma(args: &[String]) -> ExitCode {
    let o = match parse_args(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("xtask linux-cma: {e}\n{}", usage());
            return ExitCode::from(2);
        }
    };
    let root = root();
    let started = Instant::now();
    let log = match &o.log {
        Some(path) => match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("xtask linux-cma: {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        },
        None => match build_and_boot(&root, &o) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("xtask linux-cma: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let run = match parse(&log).and_then(|r| check_smp(&r, o.smp).map(|()| r)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("xtask linux-cma: {e}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", table(&run));
    let short: Vec<String> = run
        .rows
        .iter()
        .filter(|r| r.attempts < MIN_ATTEMPTS)
        .map(|r| format!("{} {} pages: {} attempts", r.condition, r.pages, r.attempts))
        .collect();
    if !short.is_empty() {
        eprintln!(
            "xtask linux-cma: fewer than {MIN_ATTEMPTS} attempts in {}; results not written",
            short.join(", ")
        );
        return ExitCode::FAILURE;
    }
    let out = o
        .out
        .clone()
        .unwrap_or_else(|| root.join("results/linux-cma.json"));
    if let Err(e) = fs::write(&out, to_json(&run)) {
        eprintln!("xtask linux-cma: {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    println!(
        "wrote {} ({} rows); wall time {:.0} s",
        out.strip_prefix(&root).unwrap_or(&out).display(),
        run.rows.len(),
        started.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}

/// A run counts only with the CPUs it was asked for: the guest's
/// `@lcma-boot smp=` counts the processors in its /proc/cpuinfo.
fn check_smp(run: &Run, want: u64) -> Result<(), String> {
    let got = run.rows.first().map(|r| r.smp).unwrap_or(0);
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "the guest reports smp={got} (@lcma-boot) but --smp {want} was asked for: a guest without the CPUs asked for is no valid reference; nothing written"
        ))
    }
}

/// Steps 1-5: returns the guest console.
fn build_and_boot(root: &Path, o: &Options) -> Result<String, String> {
    let script = root.join("tools/linux-cma/build.sh");
    for (what, arg) in [
        ("build dependencies", "deps"),
        ("Linux 6.12 kernel (cached in build/linux-cma/)", "kernel"),
        (
            "initramfs (busybox-static:arm64, cmatime, cmaload)",
            "initramfs",
        ),
        ("the demo's data disk", "data"),
    ] {
        step(&format!("linux-cma: {what}"));
        let t0 = Instant::now();
        let status = Command::new("bash")
            .current_dir(root)
            .arg(&script)
            .arg(arg)
            .status()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if !status.success() {
            return Err(format!("build.sh {arg} failed ({status})"));
        }
        println!("({arg}: {:.0} s)", t0.elapsed().as_secs_f64());
    }
    let align_order = o.align_pages.trailing_zeros();
    let mut kargs = vec![
        format!("lcma.count={}", o.count),
        format!("lcma.align={align_order}"),
        format!("lcma.warmup={}", o.warmup),
        format!("lcma.gap={}", o.gap_ms),
        format!(
            "lcma.pages={}",
            DEFAULT_PAGES.map(|p| p.to_string()).join(",")
        ),
    ];
    if let Some(c) = &o.conditions {
        kargs.push(format!("lcma.conditions={c}"));
    }
    step(&format!(
        "linux-cma: booting Linux under QEMU (-smp {}, timeout {} s): {}",
        o.smp,
        o.timeout,
        kargs.join(" ")
    ));
    let t0 = Instant::now();
    let mut cmd = Command::new("timeout");
    cmd.current_dir(root)
        .env("LCMA_SMP", o.smp.to_string())
        .args(["-k", "5", &o.timeout.to_string(), "bash"])
        .arg(&script)
        .arg("boot")
        .args(&kargs)
        .stdin(Stdio::null());
    let (status, out) = run_cmd(&mut cmd, true);
    let dir = root.join("build/linux-cma");
    let _ = fs::create_dir_all(&dir);
    let _ = fs::write(dir.join("console.log"), &out);
    println!(
        "(boot: {:.0} s; console in build/linux-cma/console.log)",
        t0.elapsed().as_secs_f64()
    );
    match status {
        Some(0) => Ok(out),
        Some(124) => Err(format!(
            "QEMU killed after {} s: the run did not finish",
            o.timeout
        )),
        s => Err(format!("QEMU exited with {s:?}")),
    }
}

/// One row of results/linux-cma.json.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub condition: String,
    pub pages: u64,
    pub attempts: u64,
    pub successes: u64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    pub smp: u64,
}

/// A parsed run.
#[derive(Debug)]
pub struct Run {
    /// The `@lcma-boot` fields (kernel, smp, area, align_order, ...).
    pub boot: BTreeMap<String, String>,
    /// The first `@lcma-mem` line of each condition (memory as the timing
    /// starts), in condition order.
    pub mem: Vec<BTreeMap<String, String>>,
    pub rows: Vec<Row>,
}

fn fields(line: &str) -> BTreeMap<String, String> {
    line.split_whitespace()
        .skip(1)
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Microseconds (one decimal, as cmatime prints them) to whole nanoseconds.
fn us_to_ns(v: &str) -> Option<u64> {
    let us: f64 = v.parse().ok()?;
    (us.is_finite() && us >= 0.0).then(|| (us * 1000.0).round() as u64)
}

/// Turns the guest console into rows: one per (condition, pages), in the
/// order they first appear. Refuses a run without `@lcma-boot`, one that
/// did not end with `@lcma-done status=0`, and malformed `@lcma` lines.
pub fn parse(log: &str) -> Result<Run, String> {
    let mut boot = None;
    let mut done = None;
    let mut error = None;
    let mut mem: Vec<BTreeMap<String, String>> = Vec::new();
    // (condition, pages) -> (attempts, successes, latencies ns)
    let mut order: Vec<(String, u64)> = Vec::new();
    let mut samples: BTreeMap<(String, u64), (u64, u64, Vec<u64>)> = BTreeMap::new();
    for (n, raw) in log.lines().enumerate() {
        // The console may carry a kernel message in front of a line.
        let Some(at) = raw.find("@lcma") else {
            continue;
        };
        let line = raw[at..].trim_end_matches('\r');
        let tag = line.split_whitespace().next().unwrap_or("");
        let f = fields(line);
        match tag {
            "@lcma-boot" => boot = Some(f),
            "@lcma-done" => done = f.get("status").cloned(),
            "@lcma-error" => error = Some(line["@lcma-error".len()..].trim().to_string()),
            "@lcma-mem" => {
                let c = f.get("condition");
                if !mem.iter().any(|m| m.get("condition") == c) {
                    mem.push(f);
                }
            }
            "@lcma" if f.get("op").map(String::as_str) == Some("alloc") => {
                let bad = || format!("line {}: malformed: {line}", n + 1);
                let cond = f.get("condition").ok_or_else(bad)?.clone();
                let pages: u64 = f
                    .get("pages")
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(bad)?;
                let ok = match f.get("ok").map(String::as_str) {
                    Some("1") => true,
                    Some("0") => false,
                    _ => return Err(bad()),
                };
                let ns = f.get("us").and_then(|v| us_to_ns(v)).ok_or_else(bad)?;
                let key = (cond, pages);
                if !samples.contains_key(&key) {
                    order.push(key.clone());
                }
                let e = samples.entry(key).or_default();
                e.0 += 1;
                e.1 += ok as u64;
                e.2.push(ns);
            }
            _ => {}
        }
    }
    if let Some(e) = error {
        return Err(format!("the guest reported an error: {e}"));
    }
    let boot = boot.ok_or("no @lcma-boot line: the guest's /init did not start")?;
    match done.as_deref() {
        Some("0") => {}
        Some(s) => return Err(format!("the guest run ended with status {s}")),
        None => return Err("no @lcma-done line: the run did not finish".into()),
    }
    let smp: u64 = boot
        .get("smp")
        .and_then(|v| v.parse().ok())
        .ok_or("@lcma-boot has no smp=N")?;
    if order.is_empty() {
        return Err("no timed allocation (@lcma op=alloc) in the log".into());
    }
    let us = |ns: Option<u64>| ns.unwrap_or(0) as f64 / 1000.0;
    let rows = order
        .into_iter()
        .map(|key| {
            let (attempts, successes, mut lat) = samples.remove(&key).unwrap_or_default();
            lat.sort_unstable();
            Row {
                condition: key.0,
                pages: key.1,
                attempts,
                successes,
                p50_us: us(probe::nearest_rank(&lat, 50, 100)),
                p99_us: us(probe::nearest_rank(&lat, 99, 100)),
                max_us: us(lat.last().copied()),
                smp,
            }
        })
        .collect();
    Ok(Run { boot, mem, rows })
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// A value of an `@lcma-*` line as JSON: a number if it is one.
fn json_value(v: &str) -> String {
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) && (v == "0" || !v.starts_with('0')) {
        v.to_string()
    } else {
        json_str(v)
    }
}

fn json_map(m: &BTreeMap<String, String>) -> String {
    let items: Vec<String> = m
        .iter()
        .map(|(k, v)| format!("{}: {}", json_str(k), json_value(v)))
        .collect();
    format!("{{{}}}", items.join(", "))
}

/// results/linux-cma.json: `rows` as the issue specifies them, with the
/// guest's description of the run (`boot`) and its memory as each
/// condition's timing began (`memory`).
pub fn to_json(run: &Run) -> String {
    let mut s = String::from("{\n");
    let smp = run.boot.get("smp").map(String::as_str).unwrap_or("?");
    let pinned = if smp == "1" {
        ""
    } else {
        " (cmatime on CPU 0, the loads on the others)"
    };
    let _ = writeln!(
        s,
        "  \"what\": \"Linux CMA (cma_alloc through /sys/kernel/debug/cma/<area>/alloc), QEMU virt TCG, cortex-a72, 1 GiB, -smp {smp}{pinned}, cma=64M; cargo xtask linux-cma\","
    );
    let _ = writeln!(s, "  \"boot\": {},", json_map(&run.boot));
    let mem: Vec<String> = run
        .mem
        .iter()
        .map(|m| format!("    {}", json_map(m)))
        .collect();
    let _ = writeln!(s, "  \"memory\": [\n{}\n  ],", mem.join(",\n"));
    let rows: Vec<String> = run
        .rows
        .iter()
        .map(|r| {
            format!(
                "    {{\"condition\": {}, \"pages\": {}, \"attempts\": {}, \"successes\": {}, \"p50_us\": {:.1}, \"p99_us\": {:.1}, \"max_us\": {:.1}, \"smp\": {}}}",
                json_str(&r.condition),
                r.pages,
                r.attempts,
                r.successes,
                r.p50_us,
                r.p99_us,
                r.max_us,
                r.smp
            )
        })
        .collect();
    let _ = writeln!(s, "  \"rows\": [\n{}\n  ]", rows.join(",\n"));
    s.push_str("}\n");
    s
}

/// The console table.
pub fn table(run: &Run) -> String {
    let mut s = String::new();
    let get = |k: &str| run.boot.get(k).map(String::as_str).unwrap_or("?");
    let align = get("align_order")
        .parse::<u32>()
        .map(|o| format!("{} pages", 1u64 << o))
        .unwrap_or_else(|_| "?".into());
    let _ = writeln!(
        s,
        "\nLinux {} CMA, area {} ({} pages), smp {}, alignment {align}; latency of cma_alloc via debugfs, us",
        get("kernel"),
        get("area"),
        get("area_pages"),
        get("smp")
    );
    let _ = writeln!(
        s,
        "{:<10} {:>6} {:>8} {:>9} {:>10} {:>10} {:>10}   CmaFree at start",
        "condition", "pages", "attempts", "successes", "p50", "p99", "max"
    );
    for r in &run.rows {
        let cma_free = run
            .mem
            .iter()
            .find(|m| m.get("condition") == Some(&r.condition))
            .and_then(|m| m.get("cmafree_kb"))
            .map(|kb| format!("{kb} KiB"))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "{:<10} {:>6} {:>8} {:>9} {:>10.1} {:>10.1} {:>10.1}   {cma_free}",
            r.condition, r.pages, r.attempts, r.successes, r.p50_us, r.p99_us, r.max_us
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORDED: &str = include_str!("../../linux-cma/testdata/linux-cma.log");

    fn synthetic(lines: &[&str]) -> String {
        let mut s = String::from(
            "[    0.000000] Booting Linux\n@lcma-boot kernel=6.12.117 smp=1 area=reserved area_pages=16384 align_order=4\n",
        );
        for l in lines {
            s.push_str(l);
            s.push('\n');
        }
        s
    }

    #[test]
    fn recorded_run_gives_every_condition_and_size() {
        let run = parse(RECORDED).expect("the recorded log parses");
        let conds: Vec<&str> = run.rows.iter().map(|r| r.condition.as_str()).collect();
        for c in ["idle", "pagecache", "anon", "odirect", "longpin"] {
            for pages in DEFAULT_PAGES {
                let row = run
                    .rows
                    .iter()
                    .find(|r| r.condition == c && r.pages == pages)
                    .unwrap_or_else(|| panic!("no row {c} {pages}: {conds:?}"));
                assert!(row.attempts >= MIN_ATTEMPTS, "{row:?}");
                assert!(row.successes <= row.attempts, "{row:?}");
                assert!(row.p50_us > 0.0 && row.p50_us <= row.p99_us, "{row:?}");
                assert!(row.p99_us <= row.max_us, "{row:?}");
                assert_eq!(row.smp, 1);
            }
        }
        assert_eq!(run.rows.len(), 10);
        assert_eq!(run.boot.get("smp").map(String::as_str), Some("1"));
        // Every alloc line of the log is counted once.
        let allocs = RECORDED
            .lines()
            .filter(|l| l.contains("@lcma ") && l.contains(" op=alloc "))
            .count() as u64;
        assert_eq!(run.rows.iter().map(|r| r.attempts).sum::<u64>(), allocs);
        // The pressure conditions ran with the area lent out.
        assert_eq!(run.mem.len(), 5);
    }

    #[test]
    fn recorded_idle_row_matches_its_lines() {
        // Recompute one row by hand from the log: nearest rank over every
        // attempt's latency.
        let mut lat: Vec<f64> = RECORDED
            .lines()
            .filter(|l| l.contains("@lcma condition=idle op=alloc") && l.contains(" pages=760 "))
            .map(|l| {
                l.split_whitespace()
                    .find_map(|kv| kv.strip_prefix("us="))
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect();
        lat.sort_by(f64::total_cmp);
        let n = lat.len();
        let rank = |p: usize| lat[(p * n).div_ceil(100).clamp(1, n) - 1];
        let run = parse(RECORDED).unwrap();
        let row = &run.rows[0];
        assert_eq!((row.condition.as_str(), row.pages), ("idle", 760));
        assert_eq!(row.attempts as usize, n);
        assert!(
            (row.p50_us - rank(50)).abs() < 0.05,
            "{row:?} vs {}",
            rank(50)
        );
        assert!(
            (row.p99_us - rank(99)).abs() < 0.05,
            "{row:?} vs {}",
            rank(99)
        );
        assert!((row.max_us - lat[n - 1]).abs() < 0.05);
    }

    #[test]
    fn percentiles_are_nearest_rank_over_all_attempts() {
        let mut lines: Vec<String> = (1..=100)
            .map(|i| {
                format!(
                    "@lcma condition=anon op=alloc round={i} pages=760 ok={} us={i}.0",
                    (i % 10 != 0) as u8
                )
            })
            .collect();
        lines.push("@lcma condition=anon op=free round=1 pages=760 ok=1 us=99999.0".into());
        lines.push("@lcma-done status=0".into());
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let run = parse(&synthetic(&refs)).unwrap();
        assert_eq!(run.rows.len(), 1, "free lines are not allocations");
        let r = &run.rows[0];
        assert_eq!((r.attempts, r.successes), (100, 90));
        assert_eq!((r.p50_us, r.p99_us, r.max_us), (50.0, 99.0, 100.0));
    }

    #[test]
    fn kernel_text_before_a_line_and_carriage_returns_are_tolerated() {
        let log = synthetic(&[
            "[   12.5] cma: alloc failed@lcma condition=idle op=alloc round=0 pages=3038 ok=0 us=12.5 err=Cannot\r",
            "@lcma-done status=0\r",
        ]);
        let run = parse(&log).unwrap();
        assert_eq!(run.rows[0].pages, 3038);
        assert_eq!(run.rows[0].successes, 0);
        assert_eq!(run.rows[0].max_us, 12.5);
    }

    #[test]
    fn unfinished_failed_or_malformed_runs_are_refused() {
        let sample = "@lcma condition=idle op=alloc round=0 pages=760 ok=1 us=10.0";
        assert!(
            parse(&synthetic(&[sample]))
                .unwrap_err()
                .contains("did not finish")
        );
        assert!(
            parse(&synthetic(&[sample, "@lcma-done status=1"]))
                .unwrap_err()
                .contains("status 1")
        );
        assert!(
            parse(&synthetic(&[
                "@lcma-error cannot mount /dev/vda",
                "@lcma-done status=1"
            ]))
            .unwrap_err()
            .contains("cannot mount")
        );
        assert!(
            parse(&synthetic(&[
                "@lcma condition=idle op=alloc round=0 pages=760 ok=yes us=10.0",
                "@lcma-done status=0"
            ]))
            .unwrap_err()
            .contains("malformed")
        );
        assert!(
            parse("@lcma-done status=0\n")
                .unwrap_err()
                .contains("@lcma-boot")
        );
        assert!(
            parse(&synthetic(&["@lcma-done status=0"]))
                .unwrap_err()
                .contains("no timed allocation")
        );
    }

    fn args(a: &[&str]) -> Result<Options, String> {
        parse_args(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn smp_defaults_to_one_and_takes_one_to_eight() {
        assert_eq!(args(&[]).unwrap().smp, 1);
        for n in 1..=MAX_SMP {
            let o = args(&["--count", "3", "--smp", &n.to_string()]).unwrap();
            assert_eq!((o.smp, o.count), (n, 3));
        }
    }

    #[test]
    fn bad_smp_values_are_refused() {
        for bad in ["0", "9", "64", "-1", "two", "2.0", "", " 2"] {
            let e = args(&["--smp", bad])
                .err()
                .unwrap_or_else(|| panic!("--smp {bad:?} taken"));
            assert!(
                e.contains(&format!("--smp {bad}:")) && e.contains("from 1 to 8"),
                "{bad:?}: {e}"
            );
        }
        assert!(args(&["--smp"]).err().unwrap().contains("needs a value"));
    }

    #[test]
    fn a_guest_with_other_cpus_than_asked_is_refused() {
        let run = parse(RECORDED).unwrap();
        assert_eq!(check_smp(&run, 1), Ok(()));
        let e = check_smp(&run, 2).unwrap_err();
        assert!(e.contains("smp=1") && e.contains("--smp 2"), "{e}");
        let two = synthetic(&[
            "@lcma condition=idle op=alloc round=0 pages=760 ok=1 us=10.0",
            "@lcma-done status=0",
        ])
        .replace("smp=1", "smp=2");
        let run = parse(&two).unwrap();
        assert_eq!(check_smp(&run, 2), Ok(()));
        assert!(check_smp(&run, 1).is_err());
        assert!(to_json(&run).contains("-smp 2 (cmatime on CPU 0"));
    }

    #[test]
    fn one_cpu_json_says_what_it_always_said() {
        let j = to_json(&parse(RECORDED).unwrap());
        assert!(j.contains(", 1 GiB, -smp 1, cma=64M;"), "{j}");
    }

    #[test]
    fn json_has_the_specified_row_fields() {
        let run = parse(RECORDED).unwrap();
        let j = to_json(&run);
        let rows = &j[j.find("\"rows\": [").expect("a rows array")..];
        let lines: Vec<&str> = rows
            .lines()
            .filter(|l| l.contains("{\"condition\""))
            .collect();
        assert_eq!(lines.len(), run.rows.len());
        for l in lines {
            for key in [
                "condition",
                "pages",
                "attempts",
                "successes",
                "p50_us",
                "p99_us",
                "max_us",
                "smp",
            ] {
                assert!(l.contains(&format!("\"{key}\": ")), "{key} missing in {l}");
            }
        }
    }
}
