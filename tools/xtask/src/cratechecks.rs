//! The checks that `contig`, `cleancache` and `pagecache` stay crates
//! another kernel can adopt (their READMEs say how): their docs build with
//! `RUSTDOCFLAGS=-D warnings`, each packages (the archive holds its README,
//! its sources and its host example) and the archive verifies, and each
//! host example runs to its end (every example checks what it prints).
//!
//! Publishing stays off (`publish = false`). A crate whose dependencies are
//! all on crates.io (`pfn`, `blkdev`) is packaged and verified by cargo as
//! it is. The others depend on crates of this repository by version
//! (`cleancache` and `frames` on `pfn = "0.1.0"`, `contig` on `cleancache`,
//! `fat32` on `frames` and `blkdev`, `pagecache` on those three), which no
//! registry has and which cargo's workspace packaging leaves out of its
//! local registry because they may not be published; so each is verified with
//! command-line `[patch]`es that resolve those dependencies to the archives
//! cargo has just unpacked under `target/package/`, and without a lock file
//! (one would record them as path packages). Hence the order of
//! [`CRATES`]: a crate after its dependencies, and each crate's `deps` name
//! every unpublished crate below it (a patched archive's own dependencies
//! resolve through the same patches). `pfn`, `frames`, `blkdev` and `fat32`
//! are checked only as far as the adoptable crates' verification needs
//! (their archives verify); they have no README or example of their own.
//! `--allow-dirty`: the check is about the crates, not about whether the
//! tree is committed.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::HOST_TARGET;
use crate::process::{run_echo, step};
use crate::report::Report;

const GROUP: &str = "crates";

/// A crate to package: its unpublished dependencies (resolved to their
/// verified archives) and, for an adoptable crate, the files its archive
/// must hold and its host example.
struct Crate {
    name: &'static str,
    deps: &'static [&'static str],
    adopt: Option<(&'static [&'static str], &'static str)>,
}

const SOURCES: &[&str] = &["Cargo.toml", "README.md", "src/lib.rs"];

/// In dependency order: each crate after the crates it depends on.
const CRATES: [Crate; 7] = [
    Crate {
        name: "pfn",
        deps: &[],
        adopt: None,
    },
    Crate {
        name: "cleancache",
        deps: &["pfn"],
        adopt: Some((SOURCES, "host_page_cache")),
    },
    Crate {
        name: "contig",
        deps: &["pfn", "cleancache"],
        adopt: Some((SOURCES, "host_kernel")),
    },
    Crate {
        name: "frames",
        deps: &["pfn"],
        adopt: None,
    },
    Crate {
        name: "blkdev",
        deps: &[],
        adopt: None,
    },
    Crate {
        name: "fat32",
        deps: &["pfn", "frames", "blkdev"],
        adopt: None,
    },
    Crate {
        name: "pagecache",
        deps: &["pfn", "frames", "blkdev", "fat32"],
        adopt: Some((SOURCES, "host_slot_fs")),
    },
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
/// crate its archive list, its verified archive and its example (for the
/// dependencies only the verified archive).
pub fn run(root: &Path, report: &mut Report) {
    step("adoptable crates: docs, packages and examples of cleancache, contig and pagecache");
    let adoptable: Vec<&str> = CRATES
        .iter()
        .filter(|c| c.adopt.is_some())
        .map(|c| c.name)
        .collect();
    let mut doc = cargo(root);
    doc.env("RUSTDOCFLAGS", "-D warnings")
        .args(["doc", "--no-deps", "--target", HOST_TARGET]);
    for name in &adoptable {
        doc.args(["-p", name]);
    }
    let (status, _) = run_echo(&mut doc);
    report.add(
        GROUP,
        &format!("docs: {} (rustdoc -D warnings)", adoptable.join(", ")),
        status == Some(0),
        exit_detail(status),
    );

    // The version of each archive verified so far.
    let mut verified_versions: Vec<(&str, String)> = Vec::new();
    for krate in &CRATES {
        let name = krate.name;
        if let Some((files, example)) = krate.adopt {
            package_list(root, name, files, example, report);
        }

        let what = if krate.adopt.is_some() {
            format!("package verify: {name}")
        } else {
            format!("package verify: {name} (a dependency of the adoptable crates)")
        };
        let patches: Result<Vec<(&str, PathBuf)>, String> = krate
            .deps
            .iter()
            .map(|dep| {
                verified_versions
                    .iter()
                    .find(|(n, _)| n == dep)
                    .map(|(_, v)| (*dep, unpacked(root, dep, v)))
                    .ok_or_else(|| format!("needs the verified {dep} archive, which failed"))
            })
            .collect();
        match patches {
            Ok(patches) => {
                let (status, out) = package_verify(root, name, &patches);
                let verified = status == Some(0) && out.contains(&format!("Verifying {name} "));
                if let (true, Some(version)) = (verified, packaged_version(&out, name)) {
                    verified_versions.push((name, version.to_string()));
                }
                report.add(GROUP, &what, verified, exit_detail(status));
            }
            Err(why) => report.add(GROUP, &what, false, why),
        }

        if let Some((_, example)) = krate.adopt {
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
}

/// `cargo package --list` of `name`: the archive holds `files` and the
/// example.
fn package_list(root: &Path, name: &str, files: &[&str], example: &str, report: &mut Report) {
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
}

/// `cargo package` of `name`, verified; with `patches`, each named
/// dependency resolves to its directory and no lock file goes into the
/// archive.
fn package_verify(root: &Path, name: &str, patches: &[(&str, PathBuf)]) -> (Option<i32>, String) {
    let mut package = cargo(root);
    package.args([
        "package",
        "--allow-dirty",
        "-p",
        name,
        "--target",
        HOST_TARGET,
    ]);
    if !patches.is_empty() {
        package.arg("--exclude-lockfile");
    }
    for (dep, path) in patches {
        package.arg("--config").arg(format!(
            "patch.crates-io.{dep}.path={:?}",
            path.display().to_string()
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
