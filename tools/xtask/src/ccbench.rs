//! `cargo xtask cleancache-bench`: instructions per page of GCMA's and
//! cleancache's operations on the host, counted with
//! `valgrind --tool=callgrind`, beside a carveout's allocation.
//!
//! It builds `kernel/crates/contig/examples/ccbench.rs` in release mode for
//! the host, runs it once per operation and size under callgrind with
//! `--collect-atstart=no --toggle-collect=*measure_OP*` (only the measured
//! call is counted, not the setup that fills a 16,384-page pool with
//! copies), reads the `summary:` (instructions) of the callgrind output and
//! prints an aligned table: operation, pages, instructions, instructions per
//! page. Instruction counts are deterministic for a given binary, so anyone
//! can rerun it and compare. valgrind is installed with apt-get if missing.
//! The host target, take-back at most 3 instructions per page, is
//! reported (met / not met), never asserted.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// (operation, what it is, page counts) in table order.
const OPS: [(&str, &str, &[usize]); 8] = [
    (
        "take_back_range",
        "cleancache take_back_range (cached pages)",
        &[760, 3038],
    ),
    (
        "give_back_range",
        "cleancache give_back_range",
        &[760, 3038],
    ),
    ("gcma_alloc", "GCMA allocation (Areas::alloc)", &[760, 3038]),
    ("put", "store: put_page into a free page", &[3038]),
    ("get", "restore: get_page hit", &[3038]),
    ("evict", "store with CLOCK reuse (evict)", &[3038]),
    (
        "carveout_alloc",
        "carveout allocation (Areas::alloc)",
        &[760, 3038],
    ),
    (
        "bitmap_mark",
        "baseline: mark a range used (Bitmap)",
        &[760, 3038],
    ),
];

/// The host target's per-page take-back budget (issue 12).
const TAKE_BACK_TARGET: f64 = 3.0;

pub fn command(root: &Path, host_target: &str, args: &[String]) -> ExitCode {
    if !args.is_empty() {
        eprintln!("usage: cargo xtask cleancache-bench (no options)");
        return ExitCode::from(2);
    }
    match run(root, host_target) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cleancache-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(root: &Path, host_target: &str) -> Result<(), String> {
    ensure_valgrind()?;
    let status = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root)
        .args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "contig",
            "--example",
            "ccbench",
        ])
        .args(["--target", host_target])
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("building the ccbench example failed".into());
    }
    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bin = target_dir
        .join(host_target)
        .join("release/examples/ccbench");
    let out_dir = target_dir.join("ccbench");
    fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let mut rows = Vec::new();
    for (op, what, sizes) in OPS {
        for &pages in sizes {
            let ir = count(&bin, &out_dir, op, pages)?;
            rows.push((op, what, pages, ir));
        }
    }
    print_table(&rows);
    Ok(())
}

fn valgrind_present() -> bool {
    Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn ensure_valgrind() -> Result<(), String> {
    if valgrind_present() {
        return Ok(());
    }
    eprintln!("cleancache-bench: valgrind not found; installing it with apt-get");
    let ok = Command::new("apt-get")
        .args(["install", "-y", "valgrind"])
        .status()
        .is_ok_and(|s| s.success());
    if ok && valgrind_present() {
        Ok(())
    } else {
        Err("valgrind is missing and `apt-get install -y valgrind` failed".into())
    }
}

/// Instructions of one `measure_OP` call on `pages` pages.
fn count(bin: &Path, out_dir: &Path, op: &str, pages: usize) -> Result<u64, String> {
    let out = out_dir.join(format!("callgrind.{op}.{pages}"));
    let run = Command::new("valgrind")
        .args(["--tool=callgrind", "--collect-atstart=no"])
        .arg(format!("--toggle-collect=*measure_{op}*"))
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(bin)
        .args([op, &pages.to_string()])
        .output()
        .map_err(|e| format!("cannot run valgrind: {e}"))?;
    if !run.status.success() {
        return Err(format!(
            "ccbench {op} {pages} failed under callgrind:\n{}",
            String::from_utf8_lossy(&run.stderr)
        ));
    }
    let text = fs::read_to_string(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let ir = summary(&text).ok_or_else(|| format!("{}: no summary line", out.display()))?;
    if ir == 0 {
        return Err(format!(
            "ccbench {op} {pages}: nothing counted (measure_{op} not found by --toggle-collect)"
        ));
    }
    Ok(ir)
}

/// The instruction count of a callgrind output: its `summary:` (or
/// `totals:`) line, first event.
pub fn summary(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

fn print_table(rows: &[(&str, &str, usize, u64)]) {
    let head = [
        "operation",
        "what",
        "pages",
        "instructions",
        "instructions/page",
    ];
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|&(op, what, pages, ir)| {
            [
                op.to_string(),
                what.to_string(),
                pages.to_string(),
                ir.to_string(),
                format!("{:.2}", ir as f64 / pages as f64),
            ]
        })
        .collect();
    let width = |i: usize| {
        cells
            .iter()
            .map(|c| c[i].len())
            .chain([head[i].len()])
            .max()
            .unwrap_or(0)
    };
    let w: Vec<usize> = (0..5).map(width).collect();
    let line = |c: [&str; 5]| {
        println!(
            "{:<a$}  {:<b$}  {:>c$}  {:>d$}  {:>e$}",
            c[0],
            c[1],
            c[2],
            c[3],
            c[4],
            a = w[0],
            b = w[1],
            c = w[2],
            d = w[3],
            e = w[4]
        )
    };
    line(head);
    println!("{}", "-".repeat(w.iter().sum::<usize>() + 8));
    for c in &cells {
        line([&c[0], &c[1], &c[2], &c[3], &c[4]]);
    }
    let worst = rows
        .iter()
        .filter(|r| r.0 == "take_back_range")
        .map(|r| r.3 as f64 / r.2 as f64)
        .fold(0.0, f64::max);
    println!(
        "\ntarget: take-back at most {TAKE_BACK_TARGET} instructions/page on the host: {} ({worst:.2})",
        if worst <= TAKE_BACK_TARGET {
            "met"
        } else {
            "not met"
        }
    );
    println!(
        "(release build of kernel/crates/contig/examples/ccbench.rs; pool of 16384 cached pages; counted with valgrind --tool=callgrind)"
    );
}

#[cfg(test)]
mod unit {
    #[test]
    fn summary_line() {
        let text = "version: 1\nevents: Ir\nsummary: 12345\nfl=x\n";
        assert_eq!(super::summary(text), Some(12345));
        assert_eq!(super::summary("totals: 7 8\n"), Some(7));
        assert_eq!(super::summary("events: Ir\n"), None);
    }
}
