//! `cargo xtask test`, the project's one test command, as an ordered list:
//! host set-up, the host checks (src/host.rs, src/cratechecks.rs), both boards built, then each
//! board's boots (src/boots.rs, src/sdimage.rs), then the summary
//! (src/report.rs). Exit status 0 only when every check and every host test
//! passed.

use std::env;
use std::process::{Command, ExitCode};
use std::time::Instant;

use crate::args::Options;
use crate::process::{run_echo, step};
use crate::report::{Report, print_summary};
use crate::{boots, cratechecks, host, root, sdimage};

pub fn test(o: &Options) -> ExitCode {
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
        host::structure_check(&root, &mut report);
        host::cargo_tests(&root, &mut report);
        host::real_device_trees(&root, &mut report);
        host::bench_unittest(&root, &mut report);
        cratechecks::run(&root, &mut report);
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
            boots::selftest_boots(&root, &elf, board, o, &mut report);
            if board == "qemu-virt" {
                boots::no_filesystem_boot(&root, &elf, o, &mut report);
                boots::bad_dtb_boot(&root, &elf, o, &mut report);
                if o.demo {
                    boots::demo_boot(&root, &elf, o, &mut report);
                    boots::soak_boot(&root, &elf, o, &mut report);
                }
            }
            boots::fault_boot(&root, &elf, board, o, &mut report);
            if board == "rpi4" {
                sdimage::high_capacity_boot(&root, &elf, o, &mut report);
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
