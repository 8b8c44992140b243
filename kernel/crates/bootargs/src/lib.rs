//! Boot arguments from /chosen/bootargs.
//!
//! | argument              | meaning                                              |
//! |-----------------------|------------------------------------------------------|
//! | `mode=demo`           | run the demo (default)                               |
//! | `mode=selftest`       | run the in-kernel tests, exit with their status      |
//! | `mode=fault`          | execute an undefined instruction (tests the report)  |
//! | `mode=soak`           | loop the demo's workloads with invariant checks      |
//! | `minutes=N`           | soak length in minutes, 1..=1440                     |
//! | `semihosting`         | a semihosting host is attached: exit codes reach it  |
//! | `loglevel=LEVEL`      | error, warn, info (default), debug or trace          |
//! | `board=NAME`          | the board the host meant to boot (checked)           |
//! | `inject=fail|panic|hang` | self-test mode: make one test fail, panic or hang, to show the harness catches it |
//! | `scale=quick|full`    | demo length: about 2.5 or 10 minutes under TCG (default quick) |
//! | `seed=N`              | demo workload seed (default 42)                      |
//! | `persist=write:N`, `persist=check:N` | self-test mode: write a file derived from N / check it is on disk (two boots) |
//! | `smp=N`               | use the first N cores of `/cpus`, 1..=8 (the boot core counts; default: every core) |
//!
//! Arguments are separated by ASCII white space; a later argument overrides
//! an earlier one. Unknown arguments and bad values are reported through the
//! caller's `report` function, one [`ArgError`] each (printed as one line),
//! and ignored: the default, or the last good value, stays.
//!
//! Pure and allocation-free: the parser borrows from the line and cannot
//! panic on any input (the fuzz target `bootargs` checks this).
#![no_std]
#![forbid(unsafe_code)]

use core::fmt;

/// What the kernel does after boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Demo,
    SelfTest,
    Fault,
    Soak,
}

/// Self-test mode: a deliberately bad test, to show the harness catches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inject {
    Fail,
    Panic,
    Hang,
}

/// Demo length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    Quick,
    Full,
}

impl Scale {
    /// The argument's value: "quick" or "full".
    pub fn name(self) -> &'static str {
        match self {
            Scale::Quick => "quick",
            Scale::Full => "full",
        }
    }
}

/// The two halves of the persistence check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persist {
    Write(u64),
    Check(u64),
}

/// Shortest and longest soak (`minutes=N`): one minute to one day.
pub const SOAK_MINUTES: core::ops::RangeInclusive<u32> = 1..=1440;

/// Fewest and most cores `smp=N` may ask for (the kernel keeps at most 8).
pub const SMP_CORES: core::ops::RangeInclusive<usize> = 1..=8;

/// A problem with one argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArgError<'a> {
    /// The whole argument as written (`key=value`).
    pub arg: &'a str,
    pub problem: &'static str,
}

impl fmt::Display for ArgError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bootargs: '{}': {}; ignored", self.arg, self.problem)
    }
}

/// The parsed arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootArgs<'a> {
    pub mode: Mode,
    pub semihosting: bool,
    /// `reboot`: where the machine is stopped through the PM watchdog
    /// (Raspberry Pi), reset it into a new boot instead of halting it.
    pub reboot: bool,
    pub loglevel: log::LevelFilter,
    pub board: Option<&'a str>,
    pub inject: Option<Inject>,
    pub persist: Option<Persist>,
    pub scale: Scale,
    pub seed: u64,
    /// Soak length (`minutes=N`), within [`SOAK_MINUTES`]; `None` when not
    /// given (the soak chooses its default).
    pub minutes: Option<u32>,
    /// Cores to use (`smp=N`), within [`SMP_CORES`]; `None`: every core
    /// the device tree lists.
    pub smp: Option<usize>,
}

impl Default for BootArgs<'_> {
    fn default() -> Self {
        BootArgs {
            mode: Mode::Demo,
            semihosting: false,
            reboot: false,
            loglevel: log::LevelFilter::Info,
            board: None,
            inject: None,
            persist: None,
            scale: Scale::Quick,
            seed: 42,
            minutes: None,
            smp: None,
        }
    }
}

impl<'a> BootArgs<'a> {
    /// Parses `line`, calling `report` for every bad argument.
    pub fn parse(line: &'a str, mut report: impl FnMut(ArgError<'a>)) -> Self {
        let mut args = BootArgs::default();
        for arg in line.split_ascii_whitespace() {
            if let Err(problem) = args.apply(arg) {
                report(ArgError { arg, problem });
            }
        }
        args
    }

    /// Applies one argument, or says what is wrong with it.
    fn apply(&mut self, arg: &'a str) -> Result<(), &'static str> {
        let (key, value) = match arg.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (arg, None),
        };
        match (key, value) {
            ("mode", Some("demo")) => self.mode = Mode::Demo,
            ("mode", Some("selftest")) => self.mode = Mode::SelfTest,
            ("mode", Some("fault")) => self.mode = Mode::Fault,
            ("mode", Some("soak")) => self.mode = Mode::Soak,
            ("mode", _) => {
                return Err("expected mode=demo, mode=selftest, mode=fault or mode=soak");
            }
            ("semihosting", None) => self.semihosting = true,
            ("reboot", None) => self.reboot = true,
            ("loglevel", Some(v)) => {
                self.loglevel = match v {
                    "error" => log::LevelFilter::Error,
                    "warn" => log::LevelFilter::Warn,
                    "info" => log::LevelFilter::Info,
                    "debug" => log::LevelFilter::Debug,
                    "trace" => log::LevelFilter::Trace,
                    _ => return Err("expected error, warn, info, debug or trace"),
                }
            }
            ("board", Some(v)) if !v.is_empty() => self.board = Some(v),
            ("inject", Some("fail")) => self.inject = Some(Inject::Fail),
            ("inject", Some("panic")) => self.inject = Some(Inject::Panic),
            ("inject", Some("hang")) => self.inject = Some(Inject::Hang),
            ("inject", _) => return Err("expected inject=fail, inject=panic or inject=hang"),
            ("scale", Some("quick")) => self.scale = Scale::Quick,
            ("scale", Some("full")) => self.scale = Scale::Full,
            ("scale", _) => return Err("expected scale=quick or scale=full"),
            ("seed", Some(v)) => self.seed = v.parse().map_err(|_| "expected seed=NUMBER")?,
            ("minutes", Some(v)) => match v.parse::<u32>() {
                Ok(n) if SOAK_MINUTES.contains(&n) => self.minutes = Some(n),
                _ => return Err("expected minutes=N with N from 1 to 1440"),
            },
            ("smp", Some(v)) => match v.parse::<usize>() {
                Ok(n) if SMP_CORES.contains(&n) => self.smp = Some(n),
                _ => return Err("expected smp=N with N from 1 to 8"),
            },
            ("persist", Some(v)) => {
                self.persist = match v.split_once(':').map(|(k, n)| (k, n.parse::<u64>())) {
                    Some(("write", Ok(n))) => Some(Persist::Write(n)),
                    Some(("check", Ok(n))) => Some(Persist::Check(n)),
                    _ => return Err("expected persist=write:N or persist=check:N"),
                }
            }
            // Arguments Linux-style loaders add; harmless here. The
            // Raspberry Pi firmware puts its own before cmdline.txt's
            // (coherent_pool=1M 8250.nr_uarts=1 bcm2708_fb.fbwidth=...
            // vc_mem.mem_base=... console=ttyS0,115200): Linux module
            // parameters (a dot in the key) and the usual root= family.
            ("console" | "earlycon" | "coherent_pool" | "cma" | "root" | "rootfstype", _) => {}
            ("rootwait" | "quiet" | "splash", None) => {}
            (k, _) if k.contains('.') => {}
            _ => return Err("unknown argument"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
