//! Running host programs: a step heading, a command whose output is
//! echoed live and returned, and the python3 the results tool needs.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

pub fn step(msg: &str) {
    println!("\n==> {msg}");
    let _ = std::io::stdout().flush();
}

/// Runs `cmd`, echoing its output live and returning it (stdout+stderr).
pub fn run_echo(cmd: &mut Command) -> (Option<i32>, String) {
    run_cmd(cmd, true)
}

/// Runs `cmd` and returns its output; echoes it live if `echo`.
pub fn run_cmd(cmd: &mut Command, echo: bool) -> (Option<i32>, String) {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return (None, format!("cannot start {cmd:?}: {e}")),
    };
    let stderr = child.stderr.take().expect("piped stderr");
    let err_thread = std::thread::spawn(move || {
        let mut out = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if echo {
                eprintln!("{line}");
            }
            out.push_str(&line);
            out.push('\n');
        }
        out
    });
    let mut out = String::new();
    let stdout = child.stdout.take().expect("piped stdout");
    for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
        let line = String::from_utf8_lossy(&line).replace('\r', "");
        if echo {
            println!("{line}");
        }
        out.push_str(&line);
        out.push('\n');
    }
    let status = child.wait().ok().and_then(|s| s.code());
    out.push_str(&err_thread.join().unwrap_or_default());
    (status, out)
}

/// The python3 for tools/bench: Debian's, which has python3-matplotlib.
pub fn bench_python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}
