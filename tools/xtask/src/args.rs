//! The command line of `cargo xtask test` (and the usage text of every
//! command): [`Options`] from `--inject`, `--timeout`, `--board`,
//! `--skip-host` and `--skip-demo`.

use crate::BOARDS;

pub fn usage() -> &'static str {
    "usage: cargo xtask test [--inject fail|panic|hang] [--timeout SECS] [--board qemu-virt|rpi4] [--skip-host] [--skip-demo]\n\
     \x20      cargo xtask structure [--graph]\n\
     \x20      cargo xtask fuzz [--seconds N] (every fuzz target; --help there)\n\
     \n\
     test: checks the source structure, runs the host tests of kernel/crates/* and\n\
     xtask, checks that contig, cleancache and pagecache document, package and run\n\
     their host examples, builds both boards, boots each under QEMU in self-test and\n\
     fault mode and checks every result line, then runs a quick demo on each board\n\
     (raspi4b: from the self-test SD image) and checks its tables and bench.json\n\
     fields, and a 1-minute soak on virt (--skip-demo skips the demos and the soak).\n\
     structure: fails on an import cycle between the modules of kernel/src or a\n\
     source file over 800 lines outside tests that tools/xtask/structure-allow.txt\n\
     does not list; --graph prints the module graph it reads.\n\
     \n\
     cargo xtask real-dtbs [--lines]: every .dtb of the cached Debian kernel package through\n\
     physmap; fails if a byte a node claims is usable (see src/realtrees.rs).\n\
     \n\
     cargo xtask cleancache-bench: instructions per page of GCMA take-back/give-back,\n\
     cleancache store/restore/evict and a carveout allocation, counted with callgrind\n\
     (see src/ccbench.rs)."
}

pub struct Options {
    pub inject: Option<String>,
    pub timeout: u64,
    pub boards: Vec<String>,
    pub host: bool,
    pub demo: bool,
}

pub fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        inject: None,
        timeout: 300,
        boards: BOARDS.iter().map(|s| s.to_string()).collect(),
        host: true,
        demo: true,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match a.as_str() {
            "--inject" => {
                let v = value("--inject")?;
                if !["fail", "panic", "hang"].contains(&v.as_str()) {
                    return Err(format!("--inject {v}: expected fail, panic or hang"));
                }
                o.inject = Some(v);
            }
            "--timeout" => {
                let v = value("--timeout")?;
                o.timeout = v
                    .parse()
                    .map_err(|_| format!("--timeout {v}: not a number of seconds"))?;
            }
            "--board" => {
                let v = value("--board")?;
                if !BOARDS.contains(&v.as_str()) {
                    return Err(format!(
                        "--board {v}: expected one of {}",
                        BOARDS.join(", ")
                    ));
                }
                o.boards = vec![v];
            }
            "--skip-host" => o.host = false,
            "--skip-demo" => o.demo = false,
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(o)
}
