//! Running host programs: a step heading (with the time since the first
//! one, and each step's duration kept for the summary), a command whose
//! output is echoed live and returned, and the python3 the results tool
//! needs.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Instant;

/// The steps so far: (heading, when it started).
static STEPS: Mutex<Vec<(String, Instant)>> = Mutex::new(Vec::new());

pub fn step(msg: &str) {
    let now = Instant::now();
    let mut steps = STEPS.lock().unwrap_or_else(|e| e.into_inner());
    let since = steps
        .first()
        .map_or(0, |(_, t0)| now.duration_since(*t0).as_secs());
    steps.push((msg.to_string(), now));
    println!("\n==> [{:02}:{:02}] {msg}", since / 60, since % 60);
    let _ = std::io::stdout().flush();
}

/// Every step's heading and duration in seconds, the last one up to now.
pub fn step_times() -> Vec<(String, f64)> {
    let steps = STEPS.lock().unwrap_or_else(|e| e.into_inner());
    let ends = steps
        .iter()
        .skip(1)
        .map(|(_, t)| *t)
        .chain([Instant::now()]);
    steps
        .iter()
        .zip(ends)
        .map(|((msg, t0), t1)| (msg.clone(), t1.duration_since(*t0).as_secs_f64()))
        .collect()
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
