//! Host tests: every argument, every message, defaults and overrides.

extern crate std;

use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

use super::*;

/// Parses `line` and returns the arguments with every message printed.
fn parse(line: &str) -> (BootArgs<'_>, Vec<String>) {
    let mut errors = Vec::new();
    let args = BootArgs::parse(line, |e| errors.push(e.to_string()));
    (args, errors)
}

#[test]
fn empty_line_gives_the_defaults() {
    let (a, e) = parse("");
    assert!(e.is_empty());
    assert_eq!(a, BootArgs::default());
    assert_eq!(a.mode, Mode::Demo);
    assert_eq!(a.loglevel, log::LevelFilter::Info);
    assert_eq!(a.scale, Scale::Quick);
    assert_eq!(a.seed, 42);
    assert_eq!(a.minutes, None);
    assert!(!a.semihosting);
    assert!(!a.reboot);
}

#[test]
fn every_good_argument_is_applied() {
    let (a, e) = parse(
        "  mode=selftest\tsemihosting loglevel=trace board=qemu-virt inject=hang \
         scale=full seed=18446744073709551615 persist=check:7 console=ttyAMA0 earlycon reboot\n",
    );
    assert!(e.is_empty(), "{e:?}");
    assert_eq!(a.mode, Mode::SelfTest);
    assert!(a.semihosting);
    assert_eq!(a.loglevel, log::LevelFilter::Trace);
    assert_eq!(a.board, Some("qemu-virt"));
    assert_eq!(a.inject, Some(Inject::Hang));
    assert_eq!(a.scale, Scale::Full);
    assert_eq!(a.seed, u64::MAX);
    assert_eq!(a.persist, Some(Persist::Check(7)));
    assert!(a.reboot);
}

#[test]
fn each_value_of_each_keyword() {
    for (line, mode) in [
        ("mode=demo", Mode::Demo),
        ("mode=selftest", Mode::SelfTest),
        ("mode=fault", Mode::Fault),
        ("mode=soak", Mode::Soak),
    ] {
        assert_eq!(parse(line).0.mode, mode, "{line}");
    }
    for (line, level) in [
        ("loglevel=error", log::LevelFilter::Error),
        ("loglevel=warn", log::LevelFilter::Warn),
        ("loglevel=info", log::LevelFilter::Info),
        ("loglevel=debug", log::LevelFilter::Debug),
        ("loglevel=trace", log::LevelFilter::Trace),
    ] {
        assert_eq!(parse(line).0.loglevel, level, "{line}");
    }
    for (line, inject) in [
        ("inject=fail", Inject::Fail),
        ("inject=panic", Inject::Panic),
        ("inject=hang", Inject::Hang),
    ] {
        assert_eq!(parse(line).0.inject, Some(inject), "{line}");
    }
    assert_eq!(parse("scale=quick").0.scale, Scale::Quick);
    assert_eq!(parse("persist=write:0").0.persist, Some(Persist::Write(0)));
    assert_eq!(Scale::Quick.name(), "quick");
    assert_eq!(Scale::Full.name(), "full");
}

#[test]
fn soak_mode_and_minutes() {
    let (a, e) = parse("mode=soak minutes=30");
    assert!(e.is_empty());
    assert_eq!((a.mode, a.minutes), (Mode::Soak, Some(30)));
    assert_eq!(parse("minutes=1").0.minutes, Some(1));
    assert_eq!(parse("minutes=1440").0.minutes, Some(1440));
    for bad in [
        "minutes=0",
        "minutes=1441",
        "minutes=-1",
        "minutes=",
        "minutes=4294967296",
        "minutes=2x",
    ] {
        let (a, e) = parse(bad);
        assert_eq!(a.minutes, None, "{bad}");
        assert_eq!(
            e,
            [format!(
                "bootargs: '{bad}': expected minutes=N with N from 1 to 1440; ignored"
            )],
        );
    }
    // A bad value keeps the last good one.
    assert_eq!(parse("minutes=5 minutes=99999").0.minutes, Some(5));
}

#[test]
fn bad_arguments_get_one_line_each_and_keep_the_default() {
    let cases = [
        (
            "mode=x",
            "expected mode=demo, mode=selftest, mode=fault or mode=soak",
        ),
        (
            "mode",
            "expected mode=demo, mode=selftest, mode=fault or mode=soak",
        ),
        (
            "loglevel=loud",
            "expected error, warn, info, debug or trace",
        ),
        ("loglevel", "unknown argument"),
        ("minutes", "unknown argument"),
        ("board=", "unknown argument"),
        (
            "inject=maybe",
            "expected inject=fail, inject=panic or inject=hang",
        ),
        ("scale=huge", "expected scale=quick or scale=full"),
        ("seed=forty", "expected seed=NUMBER"),
        ("seed=18446744073709551616", "expected seed=NUMBER"),
        (
            "persist=read:1",
            "expected persist=write:N or persist=check:N",
        ),
        (
            "persist=write",
            "expected persist=write:N or persist=check:N",
        ),
        (
            "persist=write:x",
            "expected persist=write:N or persist=check:N",
        ),
        ("semihosting=1", "unknown argument"),
        ("nosuch", "unknown argument"),
        ("=", "unknown argument"),
    ];
    for (arg, problem) in cases {
        let (a, e) = parse(arg);
        assert_eq!(a, BootArgs::default(), "{arg}");
        assert_eq!(
            e,
            [format!("bootargs: '{arg}': {problem}; ignored")],
            "{arg}"
        );
    }
}

#[test]
fn good_arguments_around_bad_ones_still_apply() {
    let (a, e) = parse("mode=soak bogus seed=7 seed=x loglevel=debug");
    assert_eq!(a.mode, Mode::Soak);
    assert_eq!(a.seed, 7);
    assert_eq!(a.loglevel, log::LevelFilter::Debug);
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(e[0].starts_with("bootargs: 'bogus': unknown argument"));
    assert!(e[1].starts_with("bootargs: 'seed=x': expected seed=NUMBER"));
}

#[test]
fn the_error_borrows_the_argument_from_the_line() {
    let line = String::from("a=b");
    let mut seen = None;
    BootArgs::parse(&line, |e| seen = Some(e));
    let e = seen.unwrap();
    assert_eq!(e.arg, "a=b");
    assert_eq!(e.arg.as_ptr(), line.as_ptr());
}

#[test]
fn raspberry_pi_firmware_tokens_before_cmdline_txt_are_ignored() {
    // What a Pi 4 firmware passes: its own tokens, then cmdline.txt's.
    let line = "coherent_pool=1M 8250.nr_uarts=1 snd_bcm2835.enable_headphones=0 \
                bcm2708_fb.fbwidth=656 bcm2708_fb.fbheight=416 bcm2708_fb.fbswap=1 \
                smsc95xx.macaddr=DC:A6:32:00:00:01 vc_mem.mem_base=0x3ec00000 \
                vc_mem.mem_size=0x40000000  console=ttyS0,115200 console=tty1 \
                root=PARTUUID=1234-02 rootfstype=ext4 rootwait quiet splash \
                board=rpi4 mode=selftest loglevel=debug";
    let (a, e) = parse(line);
    assert!(e.is_empty(), "{e:?}");
    assert_eq!(a.board, Some("rpi4"));
    assert_eq!(a.mode, Mode::SelfTest);
    assert_eq!(a.loglevel, log::LevelFilter::Debug);
    // Only those forms: a bare word that is no flag is still refused.
    let (_, e) = parse("rootwait=1 splashy");
    assert_eq!(e.len(), 2, "{e:?}");
}

#[test]
fn smp_cores() {
    assert_eq!(parse("").0.smp, None);
    for (line, want) in [("smp=1", 1), ("smp=2", 2), ("smp=8", 8), ("smp=3 smp=4", 4)] {
        let (a, e) = parse(line);
        assert!(e.is_empty(), "{line}: {e:?}");
        assert_eq!(a.smp, Some(want), "{line}");
    }
    for bad in ["smp=0", "smp=9", "smp=", "smp=-1", "smp=2x", "smp"] {
        let (a, e) = parse(bad);
        assert_eq!(a.smp, None, "{bad}");
        assert_eq!(e.len(), 1, "{bad}: {e:?}");
    }
    // A bad value keeps the last good one.
    let (a, e) = parse("smp=2 smp=99");
    assert_eq!((a.smp, e.len()), (Some(2), 1));
}
