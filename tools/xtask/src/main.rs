//! Host-side tasks for the GCMA unikernel.
//!
//! `cargo xtask test` is the project's one test command:
//! 1. the host unit and property tests of every crate under `kernel/crates/`,
//!    and `real-dtbs` (src/realtrees.rs) when build/cache holds Debian's
//!    kernel package; then contig's, cleancache's and pagecache's docs (no
//!    warnings), packages and host examples (src/cratechecks.rs);
//! 2. both boards built for aarch64-unknown-none;
//! 3. each board booted under QEMU in self-test mode: every `@test` line must
//!    say pass, the kernel must announce as many tests as it runs, report the
//!    three reserved regions, and exit with status 0 before the timeout;
//! 4. virt: a boot with a zeroed disk, one with bad reserved-memory nodes,
//!    a quick demo whose tables and bench.json fields are checked, and a
//!    1-minute soak (invariants every second) that must end with its
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
//!
//! Where things are: this file only dispatches a command to its module.
//! `test`: src/testcmd.rs (the ordered list), src/args.rs (its options and
//! every command's usage), src/host.rs and src/cratechecks.rs (host
//! checks), src/boots.rs (QEMU
//! boots and their checks), src/report.rs (checks and the summary),
//! src/process.rs (running programs). Each other command has its own file.

use std::env;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod args;
mod boardfacts;
mod boots;
mod ccbench;
mod cratechecks;
mod fuzz;
mod host;
mod linuxcma;
mod process;
mod publish;
mod realtrees;
mod report;
mod sdimage;
mod structure;
mod testcmd;

// The helpers the command modules reach as `crate::…`.
use args::{Options, usage};
use boots::boot;
use process::{bench_python, run_cmd, step};
use report::Report;

const HOST_TARGET: &str = env!("XTASK_HOST_TARGET");
const BOARDS: [&str; 2] = ["qemu-virt", "rpi4"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("test") => match args::parse_args(&args[1..]) {
            Ok(o) => testcmd::test(&o),
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
