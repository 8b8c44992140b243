//! Unit tests of the structure check, on small fake trees in the temp dir.

use super::*;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh directory with `files` (path, text) written into it.
fn tree(files: &[(&str, &str)]) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "xtask-structure-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs::remove_dir_all(&dir);
    for (path, text) in files {
        let p = dir.join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }
    dir
}

fn lines(n: usize) -> String {
    "fn x() {}\n".repeat(n)
}

fn keys(offences: &[Offence]) -> Vec<String> {
    offences.iter().map(Offence::key).collect()
}

#[test]
fn two_modules_importing_each_other_are_one_cycle() {
    let root = tree(&[
        ("kernel/src/lib.rs", "pub mod a;\npub mod b;\npub mod c;\n"),
        ("kernel/src/a.rs", "use crate::{b::Thing, c};\n"),
        ("kernel/src/b.rs", "pub fn f() { crate::a::g(); }\n"),
        ("kernel/src/c.rs", "pub fn leaf() {}\n"),
    ]);
    let out = check(&root, "");
    assert_eq!(keys(&out.new), ["cycle a b"]);
    assert_eq!(
        out.new[0],
        Offence::Cycle {
            modules: vec!["a".into(), "b".into()],
            path: vec!["a".into(), "b".into(), "a".into()],
        }
    );
    assert!(!out.ok());
    assert!(out.report().contains("FAIL  import cycle: a -> b -> a"));
}

#[test]
fn a_longer_cycle_is_named_with_every_member_and_one_path() {
    let root = tree(&[
        ("kernel/src/lib.rs", "mod x;\nmod y;\nmod z;\n"),
        ("kernel/src/x.rs", "use crate::y::Y;\n"),
        ("kernel/src/y.rs", "use crate::z::{self, Z};\n"),
        ("kernel/src/z.rs", "fn f() -> crate::x::T { todo!() }\n"),
    ]);
    let out = check(&root, "");
    assert_eq!(
        out.new,
        [Offence::Cycle {
            modules: vec!["x".into(), "y".into(), "z".into()],
            path: vec!["x".into(), "y".into(), "z".into(), "x".into()],
        }]
    );
}

#[test]
fn comments_strings_and_root_items_are_no_edges() {
    let root = tree(&[
        (
            "kernel/src/lib.rs",
            "pub mod a;\npub mod b;\npub struct Info;\n",
        ),
        (
            "kernel/src/a.rs",
            "//! See [`crate::b::B`].\n/* crate::b::x() */\nuse crate::Info;\n\
             const S: &str = \"crate::b::y\";\nconst R: &str = r#\"crate::b\"#;\n\
             fn f<'a>(c: char) -> bool { c == '\"' && crate::b::ok() }\n",
        ),
        ("kernel/src/b.rs", "// crate::a::f\nuse crate::Info;\n"),
    ]);
    let (graph, errors) = module_graph(&root.join("kernel/src")).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    // The one real path after the char literal '"' still counts.
    assert_eq!(graph["a"], BTreeSet::from(["b".to_string()]));
    assert!(graph["b"].is_empty());
    assert!(check(&root, "").ok());
}

#[test]
fn paths_resolve_to_the_deepest_module_through_path_attributes() {
    let root = tree(&[
        (
            "kernel/src/lib.rs",
            "#[path = \"arch/aarch64/mod.rs\"]\npub mod arch;\npub mod drivers;\n",
        ),
        ("kernel/src/arch/aarch64/mod.rs", "pub mod timer;\n"),
        (
            "kernel/src/arch/aarch64/timer.rs",
            "use crate::drivers::gic::Gic;\n",
        ),
        (
            "kernel/src/drivers/mod.rs",
            "pub mod gic;\nmod inline { }\n",
        ),
        (
            "kernel/src/drivers/gic.rs",
            "pub struct Gic;\nfn t() { crate::arch::timer::now(); }\n",
        ),
    ]);
    let (graph, errors) = module_graph(&root.join("kernel/src")).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        graph.keys().collect::<Vec<_>>(),
        ["arch", "arch::timer", "drivers", "drivers::gic"]
    );
    assert_eq!(
        graph["arch::timer"],
        BTreeSet::from(["drivers::gic".into()])
    );
    let out = check(&root, "");
    assert_eq!(keys(&out.new), ["cycle arch::timer drivers::gic"]);
}

#[test]
fn a_declared_module_without_a_file_is_an_error() {
    let root = tree(&[("kernel/src/lib.rs", "mod gone;\n")]);
    let out = check(&root, "");
    assert_eq!(out.errors.len(), 1, "{:?}", out.errors);
    assert!(out.errors[0].contains("module gone"));
    assert!(!out.ok());
}

#[test]
fn files_over_the_limit_outside_tests_are_listed_with_their_length() {
    let long = lines(MAX_LINES + 1);
    let root = tree(&[
        ("kernel/src/lib.rs", ""),
        ("kernel/crates/a/src/lib.rs", &long),
        ("kernel/crates/a/src/ok.rs", &lines(MAX_LINES)),
        ("kernel/crates/a/src/tests.rs", &long),
        ("kernel/crates/a/tests/prop.rs", &long),
        ("kernel/src/selftest/area_tests.rs", &long),
        ("tools/xtask/src/main.rs", &long),
        ("tools/xtask/target/debug/build/gen.rs", &long),
        ("other/big.rs", &long),
    ]);
    let out = check(&root, "");
    assert_eq!(
        out.new,
        [
            Offence::Size {
                file: "kernel/crates/a/src/lib.rs".into(),
                lines: MAX_LINES + 1
            },
            Offence::Size {
                file: "tools/xtask/src/main.rs".into(),
                lines: MAX_LINES + 1
            },
        ]
    );
    assert!(
        out.report()
            .contains("FAIL  kernel/crates/a/src/lib.rs: 801 lines (over 800)")
    );
}

#[test]
fn the_allow_list_passes_known_offenders_and_fails_new_and_stale_ones() {
    let root = tree(&[
        ("kernel/src/lib.rs", "mod a;\nmod b;\n"),
        ("kernel/src/a.rs", "use crate::b;\n"),
        ("kernel/src/b.rs", "use crate::a;\n"),
        ("kernel/big.rs", &lines(MAX_LINES + 5)),
    ]);
    let all = "# known\ncycle a b\nsize   kernel/big.rs  # to split\n";
    let out = check(&root, all);
    assert!(out.ok(), "{}", out.report());
    assert_eq!(keys(&out.allowed), ["cycle a b", "size kernel/big.rs"]);
    assert!(out.report().contains("known kernel/big.rs: 805 lines"));

    let out = check(&root, "cycle a b\n");
    assert_eq!(keys(&out.new), ["size kernel/big.rs"]);
    assert!(!out.ok());

    let out = check(&root, &format!("{all}size kernel/gone.rs\ncycle a c\n"));
    assert_eq!(out.stale, ["cycle a c", "size kernel/gone.rs"]);
    assert!(!out.ok());
    assert!(out.report().contains(
        "FAIL  'size kernel/gone.rs' is fixed: remove its line from tools/xtask/structure-allow.txt"
    ));
}

#[test]
fn test_files_are_recognised_by_name_and_directory() {
    assert!(is_test_file("kernel/crates/x/src/tests.rs"));
    assert!(is_test_file("kernel/src/selftest/blk_tests.rs"));
    assert!(is_test_file("kernel/crates/x/tests/a.rs"));
    assert!(is_test_file("kernel/crates/x/src/tests/a.rs"));
    assert!(!is_test_file("kernel/crates/x/src/contests.rs"));
    assert!(!is_test_file("kernel/src/selftest/mod.rs"));
}

#[test]
fn super_and_self_paths_are_edges_resolved_from_the_file_module() {
    let root = tree(&[
        (
            "kernel/src/lib.rs",
            "pub mod irq;\npub mod sched;\npub mod drivers;\n",
        ),
        ("kernel/src/irq.rs", "fn h() { crate::sched::preempt(); }\n"),
        ("kernel/src/sched.rs", "use super::irq::register;\n"),
        ("kernel/src/drivers/mod.rs", "pub mod disk;\npub mod sd;\n"),
        (
            "kernel/src/drivers/disk.rs",
            "use super::sd::Sd;\nmod inner {\n    use super::super::sd::X;\n}\nfn f() { self::g(); }\n",
        ),
        ("kernel/src/drivers/sd.rs", "pub struct Sd;\n"),
    ]);
    let out = check(&root, "");
    assert_eq!(keys(&out.new), ["cycle irq sched"]);
    let (graph, errors) = module_graph(&root.join("kernel/src")).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        graph["drivers::disk"].iter().collect::<Vec<_>>(),
        ["drivers::sd"]
    );
}

#[test]
fn a_module_and_its_own_submodules_are_no_cycle() {
    let root = tree(&[
        ("kernel/src/lib.rs", "pub mod demo;\npub mod soak;\n"),
        (
            "kernel/src/demo/mod.rs",
            "pub mod report;\npub struct Row;\nfn f() { crate::demo::report::print(); }\n",
        ),
        (
            "kernel/src/demo/report.rs",
            "use super::Row;\npub fn print() {}\n",
        ),
        ("kernel/src/soak.rs", "pub fn s() {}\n"),
    ]);
    assert!(check(&root, "").ok());
    // A third module on the loop makes it a cycle again.
    let root = tree(&[
        ("kernel/src/lib.rs", "pub mod demo;\npub mod soak;\n"),
        (
            "kernel/src/demo/mod.rs",
            "pub mod report;\nfn f() { crate::demo::report::print(); }\n",
        ),
        ("kernel/src/demo/report.rs", "use crate::soak::s;\n"),
        ("kernel/src/soak.rs", "use crate::demo::Row;\n"),
    ]);
    assert_eq!(
        keys(&check(&root, "").new),
        ["cycle demo demo::report soak"]
    );
}
