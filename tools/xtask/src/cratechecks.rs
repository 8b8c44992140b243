//! The checks that `contig` and `cleancache` stay crates another kernel
//! can adopt (their READMEs say how): their docs build with
//! `RUSTDOCFLAGS=-D warnings`, each packages (the archive holds its README,
//! its sources and its host example) and the archive verifies, and each
//! host example runs to its end (every example checks what it prints).
//!
//! Publishing stays off (`publish = false`). `cleancache` is packaged and
//! verified by cargo as it is. `contig` depends on `cleancache = "0.1.0"`,
//! which no registry has and which cargo's workspace packaging leaves out of
//! its local registry because it may not be published; so `contig` is
//! verified with a command-line `[patch]` that resolves that dependency to
//! the `cleancache` archive cargo has just unpacked under
//! `target/package/`, and without a lock file (one would record
//! `cleancache` as a path package). `--allow-dirty`: the check is about the
//! crates, not about whether the tree is committed.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::HOST_TARGET;
use crate::process::{run_echo, step};
use crate::report::Report;

const GROUP: &str = "crates";

/// Each adoptable crate, the files its archive must hold, and its example.
const CRATES: [(&str, &[&str], &str); 2] = [
    (
        "cleancache",
        &["Cargo.toml", "README.md", "src/lib.rs"],
        "host_page_cache",
    ),
    (
        "contig",
        &["Cargo.toml", "README.md", "src/lib.rs"],
        "host_kernel",
    ),
];

fn cargo(root: &Path) -> Command {
    let mut cmd = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root);
    cmd
}

/// Where cargo unpacks a verified archive: `<target dir>/package/<name>-<version>`.
fn unpacked(root: &Path, name: &str, version: &str) -> PathBuf {
    env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("package")
        .join(format!("{name}-{version}"))
}

/// The version in cargo's `Packaging NAME vX.Y.Z (PATH)` line.
fn packaged_version<'a>(out: &'a str, name: &str) -> Option<&'a str> {
    out.lines().find_map(|l| {
        l.trim()
            .strip_prefix("Packaging ")?
            .strip_prefix(name)?
            .trim_start()
            .strip_prefix('v')?
            .split_whitespace()
            .next()
    })
}

fn exit_detail(status: Option<i32>) -> String {
    if status == Some(0) {
        String::new()
    } else {
        format!("exit {status:?}")
    }
}

/// Every check above, in the order of [`CRATES`]: docs once, then per
/// crate its archive list, its verified archive and its example.
pub fn run(root: &Path, report: &mut Report) {
    step("adoptable crates: docs, packages and examples of cleancache and contig");
    let mut doc = cargo(root);
    doc.env("RUSTDOCFLAGS", "-D warnings")
        .args(["doc", "--no-deps", "--target", HOST_TARGET]);
    for (name, _, _) in CRATES {
        doc.args(["-p", name]);
    }
    let (status, _) = run_echo(&mut doc);
    report.add(
        GROUP,
        "docs: cleancache, contig (rustdoc -D warnings)",
        status == Some(0),
        exit_detail(status),
    );

    let mut cleancache_version = None;
    for (name, files, example) in CRATES {
        let (status, out) = run_echo(cargo(root).args([
            "package",
            "--list",
            "--allow-dirty",
            "-p",
            name,
            "--target",
            HOST_TARGET,
        ]));
        let listed: Vec<&str> = out.lines().map(str::trim).collect();
        let example_file = format!("examples/{example}.rs");
        let missing: Vec<&str> = files
            .iter()
            .copied()
            .chain([example_file.as_str()])
            .filter(|f| !listed.contains(f))
            .collect();
        report.add(
            GROUP,
            &format!("package list: {name} (README, sources, example)"),
            status == Some(0) && missing.is_empty(),
            if status == Some(0) {
                format!("missing: {}", missing.join(", "))
            } else {
                exit_detail(status)
            },
        );

        // contig's dependency resolves to the cleancache archive just made.
        let patch = match (name, cleancache_version.as_deref()) {
            ("cleancache", _) => Ok(None),
            (_, Some(version)) => Ok(Some(unpacked(root, "cleancache", version))),
            (_, None) => Err("needs the verified cleancache archive, which failed"),
        };
        let what = format!("package verify: {name}");
        match patch {
            Ok(patch) => {
                let (status, out) = package_verify(root, name, patch.as_deref());
                let verified = status == Some(0) && out.contains(&format!("Verifying {name} "));
                if name == "cleancache" && verified {
                    cleancache_version = packaged_version(&out, name).map(String::from);
                }
                report.add(GROUP, &what, verified, exit_detail(status));
            }
            Err(why) => report.add(GROUP, &what, false, why),
        }

        let (status, _) = run_echo(cargo(root).args([
            "run",
            "--quiet",
            "-p",
            name,
            "--example",
            example,
            "--target",
            HOST_TARGET,
        ]));
        report.add(
            GROUP,
            &format!("example runs: {name} {example}"),
            status == Some(0),
            exit_detail(status),
        );
    }
}

/// `cargo package` of `name`, verified; with `patch`, `cleancache` resolves
/// to that directory and no lock file goes into the archive.
fn package_verify(root: &Path, name: &str, patch: Option<&Path>) -> (Option<i32>, String) {
    let mut package = cargo(root);
    package.args([
        "package",
        "--allow-dirty",
        "-p",
        name,
        "--target",
        HOST_TARGET,
    ]);
    if let Some(patch) = patch {
        package
            .arg("--exclude-lockfile")
            .arg("--config")
            .arg(format!(
                "patch.crates-io.cleancache.path={:?}",
                patch.display().to_string()
            ));
    }
    run_echo(&mut package)
}

#[cfg(test)]
mod tests {
    #[test]
    fn packaged_version_reads_cargos_line() {
        let out = "warning: x\n   Packaging cleancache v0.1.0 (/r/kernel/crates/cleancache)\n";
        assert_eq!(super::packaged_version(out, "cleancache"), Some("0.1.0"));
        assert_eq!(super::packaged_version(out, "contig"), None);
        assert_eq!(
            super::packaged_version("Packaging cleancachex v1 (p)", "cleancache"),
            None
        );
    }
}
