//! Boot arguments from /chosen/bootargs.
//!
//! | argument              | meaning                                              |
//! |-----------------------|------------------------------------------------------|
//! | `mode=demo`           | run the demo (default)                               |
//! | `mode=selftest`       | run the in-kernel tests, exit with their status      |
//! | `mode=fault`          | execute an undefined instruction (tests the report)  |
//! | `mode=soak`           | loop the demo's workloads with invariant checks      |
//! | `minutes=N`           | soak length, 1..=1440 minutes (default 10)           |
//! | `semihosting`         | a semihosting host is attached: exit codes reach it  |
//! | `loglevel=LEVEL`      | error, warn, info (default), debug or trace          |
//! | `board=NAME`          | the board the host meant to boot (checked)           |
//! | `inject=fail|panic|hang` | self-test mode: make one test fail, panic or hang, to show the harness catches it |
//! | `scale=quick|full`    | demo length: about 2.5 or 10 minutes under TCG (default quick) |
//! | `seed=N`              | demo workload seed (default 42)                      |
//! | `persist=write:N`, `persist=check:N` | self-test mode: write a file derived from N / check it is on disk (two boots) |
//!
//! Unknown arguments and bad values are reported on the console, one line
//! each, and ignored (the default stays).

use core::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Demo,
    SelfTest,
    Fault,
    Soak,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inject {
    Fail,
    Panic,
    Hang,
}

/// A problem with one argument.
#[derive(Clone, Copy, Debug)]
pub struct ArgError<'a> {
    pub arg: &'a str,
    pub problem: &'static str,
}

impl fmt::Display for ArgError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bootargs: '{}': {}; ignored", self.arg, self.problem)
    }
}

/// The two halves of the persistence check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persist {
    Write(u64),
    Check(u64),
}

pub struct BootArgs<'a> {
    pub mode: Mode,
    pub semihosting: bool,
    pub loglevel: log::LevelFilter,
    pub board: Option<&'a str>,
    pub inject: Option<Inject>,
    pub persist: Option<Persist>,
    pub scale: crate::demo::Scale,
    pub seed: u64,
    pub minutes: Option<u32>,
}

impl<'a> BootArgs<'a> {
    /// Parses `line`, calling `report` for every bad argument.
    pub fn parse(line: &'a str, mut report: impl FnMut(ArgError<'a>)) -> Self {
        let mut args = BootArgs {
            mode: Mode::Demo,
            semihosting: false,
            loglevel: log::LevelFilter::Info,
            board: None,
            inject: None,
            persist: None,
            scale: crate::demo::Scale::Quick,
            seed: 42,
            minutes: None,
        };
        for arg in line.split_ascii_whitespace() {
            let (key, value) = match arg.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (arg, None),
            };
            let bad = |problem| ArgError { arg, problem };
            match (key, value) {
                ("mode", Some("demo")) => args.mode = Mode::Demo,
                ("mode", Some("selftest")) => args.mode = Mode::SelfTest,
                ("mode", Some("fault")) => args.mode = Mode::Fault,
                ("mode", Some("soak")) => args.mode = Mode::Soak,
                ("mode", _) => report(bad(
                    "expected mode=demo, mode=selftest, mode=fault or mode=soak",
                )),
                ("semihosting", None) => args.semihosting = true,
                ("loglevel", Some(v)) => match v {
                    "error" => args.loglevel = log::LevelFilter::Error,
                    "warn" => args.loglevel = log::LevelFilter::Warn,
                    "info" => args.loglevel = log::LevelFilter::Info,
                    "debug" => args.loglevel = log::LevelFilter::Debug,
                    "trace" => args.loglevel = log::LevelFilter::Trace,
                    _ => report(bad("expected error, warn, info, debug or trace")),
                },
                ("board", Some(v)) if !v.is_empty() => args.board = Some(v),
                ("inject", Some("fail")) => args.inject = Some(Inject::Fail),
                ("inject", Some("panic")) => args.inject = Some(Inject::Panic),
                ("inject", Some("hang")) => args.inject = Some(Inject::Hang),
                ("inject", _) => report(bad("expected inject=fail, inject=panic or inject=hang")),
                ("scale", Some("quick")) => args.scale = crate::demo::Scale::Quick,
                ("scale", Some("full")) => args.scale = crate::demo::Scale::Full,
                ("scale", _) => report(bad("expected scale=quick or scale=full")),
                ("seed", Some(v)) => match v.parse() {
                    Ok(n) => args.seed = n,
                    Err(_) => report(bad("expected seed=NUMBER")),
                },
                ("minutes", Some(v)) => match v.parse::<u32>() {
                    Ok(n @ 1..=1440) => args.minutes = Some(n),
                    _ => report(bad("expected minutes=N with N from 1 to 1440")),
                },
                ("persist", Some(v)) => match v.split_once(':').map(|(k, n)| (k, n.parse::<u64>()))
                {
                    Some(("write", Ok(n))) => args.persist = Some(Persist::Write(n)),
                    Some(("check", Ok(n))) => args.persist = Some(Persist::Check(n)),
                    _ => report(bad("expected persist=write:N or persist=check:N")),
                },
                // Arguments Linux-style loaders add; harmless here.
                ("console" | "earlycon", _) => {}
                _ => report(bad("unknown argument")),
            }
        }
        args
    }
}
