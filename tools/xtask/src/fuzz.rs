//! `cargo xtask fuzz`: runs every cargo-fuzz target in `fuzz/` for a fixed
//! time and prints one table row per target (executions, corpus size,
//! crashes).
//!
//! * Toolchain: libFuzzer needs nightly, which only this command uses
//!   (`RUSTUP_TOOLCHAIN=nightly` for cargo-fuzz and the builds it runs);
//!   cargo-fuzz is installed with `cargo install cargo-fuzz` when missing.
//! * Corpora live in `build/fuzz/corpus/TARGET` (kept between runs, never
//!   committed), seeded from `fuzz/seeds/TARGET` and, for `physmap`, from
//!   real device trees: the project's own `build/dtb/*.dtb` and a sample of
//!   the trees in Debian's arm64 linux-image package that
//!   tools/dtb/make-dtbs.sh keeps in `build/cache`. Each sampled tree is
//!   also seeded with a RAM node added (`fdtput`), since most leave RAM to
//!   the boot loader and would stop at "no memory".
//! * A crash, leak, timeout or out-of-memory input is written to
//!   `build/fuzz/artifacts/TARGET/`; the command then exits non-zero.
//!   Reproduce one with `cargo +nightly fuzz run TARGET FILE` in `fuzz/`.
//! * Each target's libFuzzer output goes to `build/logs/fuzz-TARGET.log`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

/// The targets, in the order they run.
const TARGETS: [&str; 4] = ["physmap", "fat32", "bootargs", "virtio"];
/// Real trees taken from the Debian package (every n-th of the sorted list).
const DEBIAN_SAMPLE: usize = 64;
/// One input running longer than this is a hang (libFuzzer -timeout).
const INPUT_TIMEOUT_SECS: u32 = 10;

fn usage() -> &'static str {
    "usage: cargo xtask fuzz [--seconds N] [--runs N] [--target physmap|fat32|bootargs|virtio]... [--sanitizer none|address]\n\
     \n\
     Runs each cargo-fuzz target in fuzz/ for N seconds (default 60), or\n\
     until it has run --runs inputs if that comes first, on the nightly\n\
     toolchain, and prints executions, corpus size and crashes per target.\n\
     Exits non-zero if any target crashed or could not run."
}

struct Options {
    seconds: u64,
    runs: Option<u64>,
    targets: Vec<String>,
    sanitizer: String,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        seconds: 60,
        runs: None,
        targets: Vec::new(),
        sanitizer: "none".into(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{a} needs a value"))
        };
        match a.as_str() {
            "--seconds" => {
                let v = value()?;
                o.seconds = v
                    .parse()
                    .ok()
                    .filter(|&s| s > 0)
                    .ok_or_else(|| format!("--seconds {v}: not a positive number"))?;
            }
            "--runs" => {
                let v = value()?;
                o.runs = Some(
                    v.parse()
                        .ok()
                        .filter(|&s| s > 0)
                        .ok_or_else(|| format!("--runs {v}: not a positive number"))?,
                );
            }
            "--target" => {
                let v = value()?;
                if !TARGETS.contains(&v.as_str()) {
                    return Err(format!(
                        "--target {v}: expected one of {}",
                        TARGETS.join(", ")
                    ));
                }
                o.targets.push(v);
            }
            "--sanitizer" => {
                let v = value()?;
                if v != "none" && v != "address" {
                    return Err(format!("--sanitizer {v}: expected none or address"));
                }
                o.sanitizer = v;
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown option {other}")),
        }
    }
    if o.targets.is_empty() {
        o.targets = TARGETS.iter().map(|s| s.to_string()).collect();
    }
    Ok(o)
}

/// Entry point: `args` are the arguments after `fuzz`.
pub fn main(root: &Path, args: &[String]) -> ExitCode {
    let o = match parse(args) {
        Ok(o) => o,
        Err(e) if e.is_empty() => {
            println!("{}", usage());
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("xtask fuzz: {e}\n{}", usage());
            return ExitCode::from(2);
        }
    };
    if let Err(e) = ensure_cargo_fuzz() {
        eprintln!("xtask fuzz: {e}");
        return ExitCode::FAILURE;
    }
    let mut rows = Vec::new();
    let mut failed = false;
    for t in &o.targets {
        match o.runs {
            Some(n) => println!("\n==> fuzz {t}: {n} runs, at most {} s", o.seconds),
            None => println!("\n==> fuzz {t} for {} s", o.seconds),
        }
        let row = match prepare(root, t).and_then(|corpus| run(root, t, &corpus, &o)) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("xtask fuzz: {t}: {e}");
                Row {
                    target: t.clone(),
                    executions: None,
                    corpus: 0,
                    crashes: Vec::new(),
                    seconds: 0.0,
                    exit: Some(e),
                }
            }
        };
        failed |= !row.crashes.is_empty() || row.exit.is_some();
        rows.push(row);
    }
    print_table(&rows);
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Command for cargo-fuzz on nightly, in `fuzz/`. The variables cargo sets
/// for the xtask's own build are removed so they do not leak into the
/// nightly builds.
fn cargo_fuzz(root: &Path) -> Command {
    let mut c = Command::new("cargo");
    c.current_dir(root.join("fuzz"))
        .env("RUSTUP_TOOLCHAIN", "nightly")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTC")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .arg("fuzz");
    c
}

fn ensure_cargo_fuzz() -> Result<(), String> {
    let toolchains = Command::new("rustup")
        .args(["toolchain", "list"])
        .output()
        .map_err(|e| format!("rustup: {e}"))?;
    if !String::from_utf8_lossy(&toolchains.stdout)
        .lines()
        .any(|l| l.starts_with("nightly"))
    {
        return Err(
            "no nightly toolchain (cargo-fuzz needs one): rustup toolchain install nightly".into(),
        );
    }
    let have = Command::new("cargo")
        .args(["fuzz", "--version"])
        .env("RUSTUP_TOOLCHAIN", "nightly")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if have {
        return Ok(());
    }
    println!("==> cargo-fuzz is missing: cargo install cargo-fuzz");
    let ok = Command::new("cargo")
        .args(["install", "cargo-fuzz"])
        .env_remove("RUSTUP_TOOLCHAIN")
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(())
    } else {
        Err("cargo install cargo-fuzz failed".into())
    }
}

/// Makes `build/fuzz/corpus/TARGET`, adding the seeds it lacks.
fn prepare(root: &Path, target: &str) -> Result<PathBuf, String> {
    let corpus = root.join("build/fuzz/corpus").join(target);
    fs::create_dir_all(&corpus).map_err(|e| format!("{}: {e}", corpus.display()))?;
    let seeds = root.join("fuzz/seeds").join(target);
    let mut added = copy_files(&seeds, &corpus, "", |_| true)?;
    if target == "physmap" {
        added += copy_files(&root.join("build/dtb"), &corpus, "project-", |p| {
            p.extension().is_some_and(|e| e == "dtb")
        })?;
        added += debian_trees(root, &corpus)?;
    }
    if added > 0 {
        println!("{target}: {added} seed files added to {}", corpus.display());
    }
    Ok(corpus)
}

/// Copies the files of `from` that `keep` accepts into `to` as
/// `prefix + name`, unless already there; returns how many were copied.
fn copy_files(
    from: &Path,
    to: &Path,
    prefix: &str,
    keep: impl Fn(&Path) -> bool,
) -> Result<usize, String> {
    let Ok(dir) = fs::read_dir(from) else {
        return Ok(0);
    };
    let mut n = 0;
    for e in dir.flatten() {
        let p = e.path();
        if !p.is_file() || !keep(&p) {
            continue;
        }
        let dst = to.join(format!("{prefix}{}", e.file_name().to_string_lossy()));
        if !dst.exists() {
            fs::copy(&p, &dst).map_err(|e| format!("copy {}: {e}", p.display()))?;
            n += 1;
        }
    }
    Ok(n)
}

/// Seeds `corpus` with a sample of the trees in Debian's arm64 kernel
/// package (extracted once to build/fuzz/debian-dtbs), each as shipped and
/// with a RAM node added.
fn debian_trees(root: &Path, corpus: &Path) -> Result<usize, String> {
    let cache = root.join("build/cache");
    let mut debs: Vec<PathBuf> = fs::read_dir(&cache)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap_or_default().to_string_lossy();
            n.starts_with("linux-image-") && n.ends_with("_arm64.deb")
        })
        .collect();
    debs.sort();
    let Some(deb) = debs.pop() else {
        println!(
            "physmap: no linux-image-*_arm64.deb in {} (tools/dtb/make-dtbs.sh downloads it): seeded with the project's trees only",
            cache.display()
        );
        return Ok(0);
    };
    let out = root.join("build/fuzz/debian-dtbs");
    let stamp = out.join(".extracted");
    if !stamp.exists() {
        println!("physmap: extracting the device trees of {}", deb.display());
        let _ = fs::remove_dir_all(&out);
        fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
        let script = "dpkg-deb --fsys-tarfile \"$1\" | tar -x -C \"$2\" --wildcards '*.dtb'";
        let ok = Command::new("sh")
            .args(["-c", script, "sh"])
            .arg(&deb)
            .arg(&out)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err(format!(
                "could not extract the .dtb files of {}",
                deb.display()
            ));
        }
        fs::write(&stamp, deb.to_string_lossy().as_bytes()).map_err(|e| e.to_string())?;
    }
    let mut trees = Vec::new();
    find_dtbs(&out, &mut trees);
    trees.sort();
    if trees.is_empty() {
        return Err(format!("no .dtb files in {}", deb.display()));
    }
    let step = trees.len().div_ceil(DEBIAN_SAMPLE).max(1);
    let have_fdtput = Command::new("fdtput")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !have_fdtput {
        println!("physmap: no fdtput (device-tree-compiler): real trees seeded without a RAM node");
    }
    let mut n = 0;
    for t in trees.iter().step_by(step) {
        let name = t
            .strip_prefix(&out)
            .unwrap_or(t)
            .to_string_lossy()
            .replace('/', "_");
        let dst = corpus.join(format!("debian-{name}"));
        if !dst.exists() {
            fs::copy(t, &dst).map_err(|e| format!("copy {}: {e}", t.display()))?;
            n += 1;
        }
        let with_ram = corpus.join(format!("debian-ram-{name}"));
        if have_fdtput && !with_ram.exists() {
            fs::copy(t, &with_ram).map_err(|e| format!("copy {}: {e}", t.display()))?;
            if add_ram(&with_ram) {
                n += 1;
            } else {
                let _ = fs::remove_file(&with_ram);
            }
        }
    }
    Ok(n)
}

fn find_dtbs(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            find_dtbs(&p, out);
        } else if p.extension().is_some_and(|x| x == "dtb") {
            out.push(p);
        }
    }
}

/// Adds `/fuzz-ram` (device_type memory) covering the low 16 GiB, or as
/// much as the root's `#size-cells` can say, to the tree in `file`.
fn add_ram(file: &Path) -> bool {
    let cells = |name: &str, default: u32| {
        Command::new("fdtget")
            .args(["-t", "u"])
            .arg(file)
            .args(["/", name])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(default)
    };
    let (ac, sc) = (cells("#address-cells", 2), cells("#size-cells", 1));
    let mut reg: Vec<&str> = vec!["0"; ac as usize];
    match sc {
        1 => reg.push("0xfffff000"),
        2 => reg.extend(["0x4", "0"]),
        _ => return false,
    }
    let put = |args: &[&str]| {
        Command::new("fdtput")
            .arg(file)
            .args(args)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    put(&["-c", "/fuzz-ram"])
        && put(&["-t", "s", "/fuzz-ram", "device_type", "memory"])
        && put(&[&["-t", "x", "/fuzz-ram", "reg"][..], &reg[..]].concat())
}

struct Row {
    target: String,
    executions: Option<u64>,
    corpus: usize,
    crashes: Vec<PathBuf>,
    seconds: f64,
    /// Why the run failed other than by a crash.
    exit: Option<String>,
}

fn run(root: &Path, target: &str, corpus: &Path, o: &Options) -> Result<Row, String> {
    let artifacts = root.join("build/fuzz/artifacts").join(target);
    fs::create_dir_all(&artifacts).map_err(|e| format!("{}: {e}", artifacts.display()))?;
    let before = files(&artifacts);
    let logs = root.join("build/logs");
    let _ = fs::create_dir_all(&logs);
    let log_path = logs.join(format!("fuzz-{target}.log"));
    let log = fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let log2 = log.try_clone().map_err(|e| e.to_string())?;
    let mut cmd = cargo_fuzz(root);
    cmd.args(["run", "--sanitizer", &o.sanitizer, target])
        .arg(corpus)
        .arg("--")
        .arg(format!("-max_total_time={}", o.seconds))
        .args(o.runs.map(|n| format!("-runs={n}")))
        .arg(format!("-timeout={INPUT_TIMEOUT_SECS}"))
        .arg("-print_final_stats=1")
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    println!("{:?} (output in {})", cmd, log_path.display());
    let start = Instant::now();
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run cargo fuzz: {e}"))?;
    let seconds = start.elapsed().as_secs_f64();
    let text = fs::read_to_string(&log_path).unwrap_or_default();
    let executions = text
        .lines()
        .filter_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
        .filter_map(|v| v.trim().parse().ok())
        .next_back();
    let crashes: Vec<PathBuf> = files(&artifacts)
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    for c in &crashes {
        println!("{target}: crash input {}", c.display());
    }
    let exit = (!status.success() && crashes.is_empty()).then(|| {
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        for l in tail.iter().rev() {
            println!("  {l}");
        }
        format!(
            "cargo fuzz run exited with {status}; see {}",
            log_path.display()
        )
    });
    Ok(Row {
        target: target.into(),
        executions,
        corpus: files(corpus).len(),
        crashes,
        seconds,
        exit,
    })
}

fn files(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect()
}

fn print_table(rows: &[Row]) {
    println!("\n==> fuzz summary");
    println!(
        "{:<10} {:>12} {:>8} {:>8} {:>9}  note",
        "target", "executions", "corpus", "crashes", "seconds"
    );
    for r in rows {
        let execs = r.executions.map_or("-".to_string(), |n| n.to_string());
        let note = match (&r.exit, r.crashes.first()) {
            (Some(e), _) => e.clone(),
            (None, Some(c)) => format!("crash input {}", c.display()),
            (None, None) => String::new(),
        };
        println!(
            "{:<10} {:>12} {:>8} {:>8} {:>9.0}  {note}",
            r.target,
            execs,
            r.corpus,
            r.crashes.len(),
            r.seconds
        );
    }
}
