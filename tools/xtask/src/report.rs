//! The outcome of `cargo xtask test`: one [`Check`] per checked result,
//! grouped, and the host test counts; [`print_summary`] prints the table
//! and the closing `total: N passed, M failed` line CI reads.

use std::fmt::Write as _;

/// One checked outcome.
pub struct Check {
    pub group: String,
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Default)]
pub struct Report {
    pub checks: Vec<Check>,
    pub host_passed: u64,
    pub host_failed: u64,
}

impl Report {
    pub fn add(&mut self, group: &str, name: &str, ok: bool, detail: impl Into<String>) {
        self.checks.push(Check {
            group: group.into(),
            name: name.into(),
            ok,
            detail: detail.into(),
        });
    }
}

pub fn print_summary(report: &Report, secs: f64) {
    let w_group = report
        .checks
        .iter()
        .map(|c| c.group.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let w_name = report
        .checks
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut s = String::new();
    let _ = writeln!(s, "\n==> summary ({secs:.0} s)");
    let _ = writeln!(s, "{:<w_group$}  {:<w_name$}  result", "group", "check");
    for c in &report.checks {
        let _ = write!(
            s,
            "{:<w_group$}  {:<w_name$}  {}",
            c.group,
            c.name,
            if c.ok { "pass" } else { "FAIL" }
        );
        if !c.ok && !c.detail.is_empty() {
            let _ = write!(s, "  ({})", c.detail);
        }
        s.push('\n');
    }
    // Where the time went: the slowest steps, for keeping the test
    // command within CI's budget.
    let mut times = crate::process::step_times();
    times.sort_by(|a, b| b.1.total_cmp(&a.1));
    let _ = writeln!(s, "slowest steps:");
    for (msg, t) in times.iter().take(8) {
        let _ = writeln!(
            s,
            "  {:>3}:{:02}  {msg}",
            (*t as u64) / 60,
            (*t as u64) % 60
        );
    }
    let passed = report.checks.iter().filter(|c| c.ok).count() as u64;
    let failed = report.checks.len() as u64 - passed;
    let _ = writeln!(
        s,
        "host unit/property tests: {} passed, {} failed",
        report.host_passed, report.host_failed
    );
    let _ = writeln!(
        s,
        "guest and build checks: {passed} passed, {failed} failed"
    );
    // The closing line CI reads.
    let _ = writeln!(
        s,
        "total: {} passed, {} failed",
        passed + report.host_passed,
        failed + report.host_failed
    );
    print!("{s}");
}
