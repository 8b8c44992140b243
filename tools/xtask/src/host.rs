//! The host checks of `cargo xtask test`, in the order it runs them: the
//! source structure, `cargo test` of every crate under kernel/crates and
//! xtask, the real device trees (when cached), and tools/bench's unittest.

use std::env;
use std::fs;
use std::path::Path;
use std::process::Command;

use crate::process::{bench_python, run_echo, step};
use crate::report::Report;
use crate::{HOST_TARGET, realtrees, structure};

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

/// `cargo xtask structure`, as one check.
pub fn structure_check(root: &Path, report: &mut Report) {
    step("source structure (cargo xtask structure)");
    let ok = structure::run(root);
    report.add(
        "host",
        "structure: no new import cycle or file over 800 lines",
        ok,
        if ok { "" } else { "see the FAIL lines above" },
    );
}

/// `cargo test` of every crate under kernel/crates and of xtask; each
/// `test result:` line's counts go into the report's host totals.
pub fn cargo_tests(root: &Path, report: &mut Report) {
    let crates = host_crates(root);
    step(&format!("host tests: {}, xtask", crates.join(", ")));
    let mut cmd = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root)
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

/// `real-dtbs` (src/realtrees.rs), when build/cache holds Debian's kernel
/// package; nothing otherwise.
pub fn real_device_trees(root: &Path, report: &mut Report) {
    if let Some((ok, detail)) = realtrees::check_if_cached(root) {
        report.add("host", "real device trees (real-dtbs)", ok, detail);
    }
}

/// The results tool's tests (tools/bench): Debian's python3, which has
/// matplotlib.
pub fn bench_unittest(root: &Path, report: &mut Report) {
    step("host tests: tools/bench (python3 -m unittest)");
    let mut cmd = Command::new(bench_python());
    cmd.current_dir(root).args([
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
