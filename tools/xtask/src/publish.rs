//! `cargo xtask publish [--board qemu-virt|rpi4]`: make a complete
//! full-scale demo run the committed results.
//!
//! A demo run (`cargo run -- scale=full`) keeps its console log, bench.json,
//! plots and results page under `build/results/<board>/full/`; nothing it
//! does touches `results/` or the README. This command is the one way the
//! committed results change: it runs `tools/bench/collect.py --publish` on
//! that log, which refuses (and writes nothing) unless the run finished with
//! status 0, is full-scale and has no problem; then it writes
//! `results/<board>/` (bench.json, plots, page, the log itself and its host
//! CPU figures, hostsched.tsv) and, for
//! qemu-virt, the README headline.

use std::fs;
use std::path::Path;
use std::process::{Command, ExitCode};

use crate::{BOARDS, bench_python, root};

pub fn usage() -> &'static str {
    "usage: cargo xtask publish [--board qemu-virt|rpi4] [--log FILE]\n\
     \n\
     Copies a complete full-scale demo run (default log:\n\
     build/results/<board>/full/demo.log, written by `cargo run -- scale=full`\n\
     or `cargo run-rpi4 -- scale=full`) into results/<board>/ and, for\n\
     qemu-virt, updates the README headline. Refuses a run that did not\n\
     finish, is not full-scale, or whose collector reported problems.\n\
     The commit and accelerator recorded are the run's (from the bench.json\n\
     the run wrote beside its log), not the tree's at publish time."
}

/// The board whose run becomes the README headline.
const HEADLINE_BOARD: &str = "qemu-virt";

pub fn publish(args: &[String]) -> ExitCode {
    let mut board = HEADLINE_BOARD.to_string();
    let mut log = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match (a.as_str(), it.clone().next()) {
            ("--board", Some(v)) if BOARDS.contains(&v.as_str()) => {
                board = v.clone();
                it.next();
            }
            ("--log", Some(v)) => {
                log = Some(v.clone());
                it.next();
            }
            ("-h" | "--help", _) => {
                println!("{}", usage());
                return ExitCode::SUCCESS;
            }
            _ => {
                eprintln!("xtask publish: bad argument '{a}'\n{}", usage());
                return ExitCode::from(2);
            }
        }
    }
    let root = root();
    let log = log.map(Into::into).unwrap_or_else(|| {
        root.join("build/results")
            .join(&board)
            .join("full/demo.log")
    });
    if !log.is_file() {
        eprintln!(
            "xtask publish: no log at {}: run the full demo first ({} -- scale=full)",
            log.display(),
            if board == "rpi4" {
                "cargo run-rpi4"
            } else {
                "cargo run"
            }
        );
        return ExitCode::from(1);
    }
    let out = root.join("results").join(&board);
    if let Err(e) = fs::create_dir_all(&out) {
        eprintln!("xtask publish: cannot create {}: {e}", out.display());
        return ExitCode::from(1);
    }
    let mut cmd = Command::new(bench_python());
    cmd.current_dir(&root)
        .arg("tools/bench/collect.py")
        .arg(rel(&log))
        .args(["--publish", "--board", &board, "--out"])
        .arg(rel(&out));
    // The run's own commit and accelerator, as its collector recorded them.
    let run_json = log.with_file_name("bench.json");
    let recorded = fs::read_to_string(&run_json).unwrap_or_default();
    for (key, flag) in [("commit", "--commit"), ("accel", "--accel")] {
        match json_string(&recorded, key) {
            Some(v) => {
                cmd.args([flag, &v]);
            }
            None => eprintln!(
                "xtask publish: no {key} in {}: collect.py records today's instead",
                run_json.display()
            ),
        }
    }
    if board == HEADLINE_BOARD {
        cmd.arg("--readme").arg("README.md");
    }
    match cmd.status() {
        Ok(s) if s.success() => {}
        Ok(_) => {
            eprintln!("xtask publish: collect.py refused the run; results/ is unchanged");
            return ExitCode::from(1);
        }
        Err(e) => {
            eprintln!("xtask publish: cannot run {}: {e}", bench_python());
            return ExitCode::from(1);
        }
    }
    // The log, and the host CPU figures beside it (tools/bench/hostsched.py)
    // when the run has them, so that collect.py can rebuild the page from
    // results/ alone.
    let sched = log.with_file_name("hostsched.tsv");
    let mut copies = vec![(log.clone(), out.join("demo.log"))];
    if sched.is_file() {
        copies.push((sched, out.join("hostsched.tsv")));
    } else {
        // An earlier run's figures would not match this log.
        let _ = fs::remove_file(out.join("hostsched.tsv"));
    }
    for (from, to) in copies {
        if !same_file(&from, &to) {
            if let Err(e) = fs::copy(&from, &to) {
                eprintln!(
                    "xtask publish: cannot copy {} to {}: {e}",
                    from.display(),
                    to.display()
                );
                return ExitCode::from(1);
            }
        }
    }
    println!(
        "xtask publish: results/{board}/ written from {}; review with git diff, then commit",
        log.strip_prefix(&root).unwrap_or(&log).display()
    );
    ExitCode::SUCCESS
}

/// The string value of a top-level `"key": "value"` in a bench.json.
fn json_string(text: &str, key: &str) -> Option<String> {
    let at = text.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = text[at..].trim_start().strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_string())
}

/// `p` relative to the repository (the results page records the command).
fn rel(p: &Path) -> &Path {
    p.strip_prefix(root()).unwrap_or(p)
}

fn same_file(a: &Path, b: &Path) -> bool {
    matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::json_string;

    #[test]
    fn reads_the_runs_commit_and_accel() {
        let j = "{\n  \"commit\": \"93d0ead\",\n  \"board\": \"qemu-virt\",\n  \"accel\": \"tcg\",\n  \"alloc\": []\n}";
        assert_eq!(json_string(j, "commit").as_deref(), Some("93d0ead"));
        assert_eq!(json_string(j, "accel").as_deref(), Some("tcg"));
        assert_eq!(json_string(j, "missing"), None);
        assert_eq!(json_string("{\"commit\": null}", "commit"), None);
    }
}
