//! Timing probes: named, statically allocated interval recorders over a
//! free-running tick counter (on arm64 the generic timer: `CNTPCT_EL0` ticks
//! at `CNTFRQ_EL0` Hz), with nearest-rank percentiles and reports.
//!
//! The crate is `no_std`, never allocates and is clock-agnostic: the kernel
//! installs its counter once with [`set_clock`]; until then [`now`] reads 0.
//! Host tests install their own clock, or feed durations directly with
//! [`Probe::record_ticks`].
//!
//! ```
//! use probe::{AnyProbe, Summary};
//!
//! probe::probe!(pub GCMA_ALLOC = "gcma.alloc"); // a Probe<DEFAULT_CAPACITY>
//!
//! let t = GCMA_ALLOC.start();
//! /* ... the work being timed ... */
//! GCMA_ALLOC.stop(t);
//! GCMA_ALLOC.record_ticks(24); // or a duration measured elsewhere
//!
//! let mut scratch = [0u64; probe::DEFAULT_CAPACITY];
//! let s = Summary::of(&GCMA_ALLOC, &mut scratch, 24_000_000);
//! assert_eq!((s.count, s.max_ns), (2, 1000));
//! let mut line = String::new();
//! s.write_machine(&mut line).unwrap();
//! assert!(line.starts_with("@probe name=gcma.alloc count=2 "));
//! ```
//!
//! # Rules
//!
//! * Recording (`stop`, `record_ticks`) is lock-free and wait-free apart from
//!   the atomic read-modify-write loops: one `fetch_add` claims a ring slot,
//!   one store fills it, and four atomic updates keep the exact totals. It
//!   never blocks and can run from any core or an interrupt handler.
//! * Each probe keeps the last `N` durations (ticks) in a ring, and exact
//!   totals outside it: `count`, `sum`, `min`, `max` stay exact however often
//!   the ring wraps. Percentiles come from the ring (the last `N` samples).
//! * Races, all documented losses, never garbage: every value a reader finds in
//!   the ring is a value some recorder stored. A slot claimed but not yet
//!   written is skipped while still empty (first lap) or shows the older
//!   sample it held; two recorders exactly `N` claims apart may store out of
//!   order, so the ring keeps the older of the two (one sample lost). The four
//!   totals are separate atomics: a reader racing a recorder may see the count
//!   of a sample whose sum is not added yet.
//! * [`Probe::reset`] is for quiescent probes (between benchmark phases); a
//!   sample recorded concurrently with it may survive it in part.
//! * On bare metal the atomics need the MMU and caches on (exclusive
//!   load/store on device or non-cacheable memory is not guaranteed to work):
//!   record only after the kernel enabled them.
//! * Probe names are `[^\s=]+` (checked at compile time for statics), so the
//!   machine-readable lines split on spaces and `=`.
//!
//! # Percentiles
//!
//! Nearest rank: for `n` sorted samples `x[1..=n]`, the `p`-th percentile is
//! `x[ceil(p/100 * n)]` (rank clamped to `1..=n`). p50 of `1..=10` is 5, p99 of
//! `1..=100` is 99, p99 of `1..=10` is 10. See [`nearest_rank`].

#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering::Relaxed};

/// Ring size of probes declared with [`probe!`] without a capacity.
pub const DEFAULT_CAPACITY: usize = 1024;

/// Ring slot that holds no sample yet. Durations are clamped below it.
const EMPTY: u64 = u64::MAX;

/// Frequency assumed until [`set_clock`] is called: 1 GHz (ticks are ns).
pub const DEFAULT_FREQ_HZ: u64 = 1_000_000_000;

// ---- clock -----------------------------------------------------------------

fn no_clock() -> u64 {
    0
}

/// The installed `fn() -> u64`, stored as a raw pointer. Only ever holds a
/// value cast from a `fn() -> u64` (its initial value and [`set_clock`]).
static CLOCK_NOW: AtomicPtr<()> = AtomicPtr::new(no_clock as fn() -> u64 as *mut ());
static CLOCK_FREQ: AtomicU64 = AtomicU64::new(DEFAULT_FREQ_HZ);

/// Installs the tick source and its frequency (Hz). On arm64 the kernel passes
/// a function reading `CNTPCT_EL0` (after an `isb`) and the value of
/// `CNTFRQ_EL0`. May be called again (e.g. by tests); probes running across
/// the switch record meaningless (but not corrupting) durations.
pub fn set_clock(now: fn() -> u64, freq_hz: u64) {
    CLOCK_FREQ.store(freq_hz, Relaxed);
    CLOCK_NOW.store(now as *mut (), Relaxed);
}

/// Current tick count of the installed clock (0 if none).
#[inline]
pub fn now() -> u64 {
    let p = CLOCK_NOW.load(Relaxed);
    // SAFETY: CLOCK_NOW only ever holds pointers cast from `fn() -> u64`
    // values (the initializer and `set_clock`), and function pointers and
    // data pointers have the same size and representation on every target
    // this crate supports, so casting back yields the original valid function.
    let f = unsafe { core::mem::transmute::<*mut (), fn() -> u64>(p) };
    f()
}

/// Frequency of the installed clock in Hz ([`DEFAULT_FREQ_HZ`] if none).
#[inline]
pub fn freq_hz() -> u64 {
    CLOCK_FREQ.load(Relaxed)
}

/// `ticks` at `freq_hz` in nanoseconds (rounded down, saturating). A
/// frequency of 0 (unknown) returns `ticks` unchanged.
pub const fn ticks_to_ns(ticks: u64, freq_hz: u64) -> u64 {
    if freq_hz == 0 {
        return ticks;
    }
    let ns = ticks as u128 * 1_000_000_000 / freq_hz as u128;
    if ns > u64::MAX as u128 {
        u64::MAX
    } else {
        ns as u64
    }
}

/// `ns` nanoseconds in ticks at `freq_hz` (rounded up, saturating).
pub const fn ns_to_ticks(ns: u64, freq_hz: u64) -> u64 {
    if freq_hz == 0 {
        return ns;
    }
    let t = (ns as u128 * freq_hz as u128).div_ceil(1_000_000_000);
    if t > u64::MAX as u128 {
        u64::MAX
    } else {
        t as u64
    }
}

// ---- probes ----------------------------------------------------------------

/// Declares a probe static: `probe!(pub NAME = "sub.event")` (ring of
/// [`DEFAULT_CAPACITY`]) or `probe!(NAME = "sub.event", 256)`.
#[macro_export]
macro_rules! probe {
    ($(#[$m:meta])* $vis:vis $ident:ident = $name:literal) => {
        $(#[$m])* $vis static $ident: $crate::Probe<{ $crate::DEFAULT_CAPACITY }> = $crate::Probe::new($name);
    };
    ($(#[$m:meta])* $vis:vis $ident:ident = $name:literal, $cap:expr) => {
        $(#[$m])* $vis static $ident: $crate::Probe<{ $cap }> = $crate::Probe::new($name);
    };
}

/// A start timestamp from [`Probe::start`] (raw ticks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "pass it to Probe::stop"]
pub struct Start(pub u64);

/// Exact all-time totals of a probe, in ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Totals {
    /// Samples recorded.
    pub count: u64,
    /// Sum of all samples (wrapping; 2^64 ticks is centuries at GHz rates).
    pub sum: u64,
    /// Smallest sample (0 when `count == 0`).
    pub min: u64,
    /// Largest sample (0 when `count == 0`).
    pub max: u64,
}

/// A named interval recorder keeping the last `N` durations and exact totals.
/// Declare them as statics (`Probe::new` is `const`), see [`probe!`].
pub struct Probe<const N: usize> {
    name: &'static str,
    /// Ring slots claimed so far; the next sample goes to `head % N`.
    head: AtomicUsize,
    count: AtomicU64,
    sum: AtomicU64,
    min: AtomicU64,
    max: AtomicU64,
    ring: [AtomicU64; N],
}

/// Panics (a compile error in a `static`) unless `name` is non-empty and has
/// no whitespace and no `=`.
const fn check_name(name: &str) {
    let b = name.as_bytes();
    assert!(!b.is_empty(), "probe name must not be empty");
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        assert!(
            !(c == b' ' || c == b'\t' || c == b'\n' || c == b'\r' || c == b'='),
            "probe name must not contain whitespace or '='"
        );
        i += 1;
    }
}

impl<const N: usize> Probe<N> {
    /// A probe named `name` (non-empty, no whitespace, no `=`) with a ring of
    /// `N > 0` samples.
    pub const fn new(name: &'static str) -> Self {
        assert!(N > 0, "probe ring must hold at least one sample");
        check_name(name);
        Probe {
            name,
            head: AtomicUsize::new(0),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
            min: AtomicU64::new(u64::MAX),
            max: AtomicU64::new(0),
            ring: [const { AtomicU64::new(EMPTY) }; N],
        }
    }

    /// The probe's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Reads the clock: the start of an interval.
    #[inline]
    pub fn start(&self) -> Start {
        Start(now())
    }

    /// Ends the interval begun at `start`, records it and returns its length
    /// in ticks (0 if the clock went backwards).
    #[inline]
    pub fn stop(&self, start: Start) -> u64 {
        let d = now().saturating_sub(start.0);
        self.record_ticks(d);
        d
    }

    /// Records a duration measured elsewhere, in ticks (`u64::MAX` is
    /// recorded as `u64::MAX - 1`).
    #[inline]
    pub fn record_ticks(&self, ticks: u64) {
        let d = ticks.min(EMPTY - 1);
        let slot = self.head.fetch_add(1, Relaxed) % N;
        self.ring[slot].store(d, Relaxed);
        self.count.fetch_add(1, Relaxed);
        self.sum.fetch_add(d, Relaxed);
        self.min.fetch_min(d, Relaxed);
        self.max.fetch_max(d, Relaxed);
    }

    /// Times `f`.
    #[inline]
    pub fn measure<R>(&self, f: impl FnOnce() -> R) -> R {
        let t = self.start();
        let r = f();
        self.stop(t);
        r
    }

    /// A guard that records the time until it is dropped.
    #[inline]
    pub fn guard(&self) -> Guard<'_, N> {
        Guard {
            probe: self,
            start: self.start(),
        }
    }

    /// Clears the ring and the totals. For quiescent probes (see the crate
    /// docs).
    pub fn reset(&self) {
        for s in &self.ring {
            s.store(EMPTY, Relaxed);
        }
        self.head.store(0, Relaxed);
        self.count.store(0, Relaxed);
        self.sum.store(0, Relaxed);
        self.min.store(u64::MAX, Relaxed);
        self.max.store(0, Relaxed);
    }
}

/// Records the time from its creation to its drop; see [`Probe::guard`].
pub struct Guard<'p, const N: usize> {
    probe: &'p Probe<N>,
    start: Start,
}

impl<const N: usize> Drop for Guard<'_, N> {
    fn drop(&mut self) {
        self.probe.stop(self.start);
    }
}

/// Read access to a probe of any capacity, for reports
/// (`&Probe<N>` coerces to `&dyn AnyProbe`).
pub trait AnyProbe: Sync {
    /// The probe's name.
    fn name(&self) -> &'static str;
    /// Ring size `N`.
    fn capacity(&self) -> usize;
    /// Exact totals, in ticks.
    fn totals(&self) -> Totals;
    /// Copies the most recent ring samples (ticks, unordered), at most
    /// `out.len()` and at most `N`, into `out`; returns how many.
    fn snapshot(&self, out: &mut [u64]) -> usize;
}

impl<const N: usize> AnyProbe for Probe<N> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn capacity(&self) -> usize {
        N
    }

    fn totals(&self) -> Totals {
        let count = self.count.load(Relaxed);
        if count == 0 {
            return Totals::default();
        }
        Totals {
            count,
            sum: self.sum.load(Relaxed),
            min: self.min.load(Relaxed),
            max: self.max.load(Relaxed),
        }
    }

    fn snapshot(&self, out: &mut [u64]) -> usize {
        let head = self.head.load(Relaxed);
        let want = head.min(N).min(out.len());
        let mut n = 0;
        for k in 0..want {
            let v = self.ring[(head - 1 - k) % N].load(Relaxed);
            if v != EMPTY {
                out[n] = v;
                n += 1;
            }
        }
        n
    }
}

// ---- statistics ------------------------------------------------------------

/// Nearest-rank quantile `num/den` of `sorted` (ascending): the element of
/// 1-based rank `ceil(num/den * n)`, clamped to `1..=n`. `None` if empty.
/// p50 is `(50, 100)`, p99 `(99, 100)`, p99.9 `(999, 1000)`.
pub fn nearest_rank(sorted: &[u64], num: u64, den: u64) -> Option<u64> {
    let n = sorted.len() as u128;
    if n == 0 {
        return None;
    }
    let rank = (num as u128 * n).div_ceil(den.max(1) as u128).clamp(1, n);
    Some(sorted[rank as usize - 1])
}

/// A probe summarised for reports; durations in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Summary {
    /// Probe name.
    pub name: &'static str,
    /// Exact number of samples ever recorded.
    pub count: u64,
    /// Ring samples behind `p50`/`p99` (the most recent ones).
    pub samples: u64,
    /// Exact minimum.
    pub min_ns: u64,
    /// Nearest-rank median of the ring samples.
    pub p50_ns: u64,
    /// Nearest-rank 99th percentile of the ring samples.
    pub p99_ns: u64,
    /// Exact maximum.
    pub max_ns: u64,
    /// Exact mean (`sum / count`).
    pub mean_ns: u64,
}

impl Summary {
    /// Summarises a probe: exact totals, percentiles of the most recent
    /// `min(N, scratch.len())` ring samples (copied into `scratch` and
    /// sorted there), converted to ns at `freq_hz`.
    pub fn of(probe: &dyn AnyProbe, scratch: &mut [u64], freq_hz: u64) -> Summary {
        let n = probe.snapshot(scratch);
        Summary::from_parts(probe.name(), probe.totals(), &mut scratch[..n], freq_hz)
    }

    /// Summarises `samples` (ticks, any order; sorted in place) with exact
    /// `totals`.
    pub fn from_parts(
        name: &'static str,
        totals: Totals,
        samples: &mut [u64],
        freq_hz: u64,
    ) -> Summary {
        samples.sort_unstable();
        let ns = |t| ticks_to_ns(t, freq_hz);
        let mean = totals.sum.checked_div(totals.count).unwrap_or(0);
        Summary {
            name,
            count: totals.count,
            samples: samples.len() as u64,
            min_ns: ns(totals.min),
            p50_ns: ns(nearest_rank(samples, 50, 100).unwrap_or(0)),
            p99_ns: ns(nearest_rank(samples, 99, 100).unwrap_or(0)),
            max_ns: ns(totals.max),
            mean_ns: ns(mean),
        }
    }

    /// Writes the machine-readable line (with a trailing newline):
    /// `@probe name=N count=C p50_ns=.. p99_ns=.. max_ns=.. mean_ns=.. min_ns=.. samples=..`
    /// Keys are always in this order; a parser should still ignore unknown
    /// keys at the end.
    pub fn write_machine(&self, w: &mut dyn Write) -> fmt::Result {
        writeln!(
            w,
            "@probe name={} count={} p50_ns={} p99_ns={} max_ns={} mean_ns={} min_ns={} samples={}",
            self.name,
            self.count,
            self.p50_ns,
            self.p99_ns,
            self.max_ns,
            self.mean_ns,
            self.min_ns,
            self.samples
        )
    }
}

/// Counts of samples per power-of-two bucket: bucket `b` holds values in
/// `[2^b, 2^(b+1))` (bucket 0 also holds 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Log2Hist {
    /// Samples per bucket.
    pub buckets: [u32; 64],
}

impl Log2Hist {
    /// Buckets `samples` (ticks).
    pub fn from_samples(samples: &[u64]) -> Log2Hist {
        let mut buckets = [0u32; 64];
        for &s in samples {
            let b = s.checked_ilog2().unwrap_or(0) as usize;
            buckets[b] = buckets[b].saturating_add(1);
        }
        Log2Hist { buckets }
    }

    /// First and last non-empty bucket.
    pub fn span(&self) -> Option<(usize, usize)> {
        let lo = self.buckets.iter().position(|&c| c != 0)?;
        let hi = self.buckets.iter().rposition(|&c| c != 0)?;
        Some((lo, hi))
    }

    /// One ASCII line: `LOW |shape| HIGH`, one character per bucket from the
    /// lowest to the highest non-empty one, denser characters for fuller
    /// buckets (` ` empty, `.` to `@` up to the fullest), the bounds in
    /// human units at `freq_hz`. Writes `-` when empty. No newline.
    pub fn write_line(&self, w: &mut dyn Write, freq_hz: u64) -> fmt::Result {
        const SHADES: &[u8] = b".:-=+*#%@";
        let Some((lo, hi)) = self.span() else {
            return w.write_str("-");
        };
        let peak = self.buckets[lo..=hi]
            .iter()
            .copied()
            .max()
            .unwrap_or(1)
            .max(1) as u64;
        let lo_ns = if lo == 0 {
            0
        } else {
            ticks_to_ns(1 << lo, freq_hz)
        };
        let hi_ticks = if hi >= 63 { u64::MAX } else { 1u64 << (hi + 1) };
        // Right-align the lower bound so the bars of several lines line up.
        write!(w, "{:>7} |", duration_str(lo_ns).as_str())?;
        for &c in &self.buckets[lo..=hi] {
            let ch = if c == 0 {
                b' '
            } else {
                // 1..=peak -> 0..=8
                let k = ((c as u64 - 1) * (SHADES.len() as u64 - 1))
                    .div_ceil(peak.saturating_sub(1).max(1));
                SHADES[(k as usize).min(SHADES.len() - 1)]
            };
            w.write_char(ch as char)?;
        }
        w.write_str("| ")?;
        write_duration(w, ticks_to_ns(hi_ticks, freq_hz))
    }
}

// ---- formatting ------------------------------------------------------------

/// A fixed-capacity string for formatting without allocation; excess output
/// is an error.
pub struct StackStr<const CAP: usize> {
    buf: [u8; CAP],
    len: usize,
}

impl<const CAP: usize> StackStr<CAP> {
    /// Empty.
    pub const fn new() -> Self {
        StackStr {
            buf: [0; CAP],
            len: 0,
        }
    }
    /// The text written so far.
    pub fn as_str(&self) -> &str {
        // Only whole `&str`s are ever appended, so this cannot fail.
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl<const CAP: usize> Default for StackStr<CAP> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const CAP: usize> Write for StackStr<CAP> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self
            .len
            .checked_add(s.len())
            .filter(|&e| e <= CAP)
            .ok_or(fmt::Error)?;
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Writes `ns` with a unit chosen for it and three significant digits:
/// `999ns`, `1.23us`, `45.6us`, `684us`, `1.00ms`, `3.94s`; seconds past 999
/// print as whole seconds.
pub fn write_duration(w: &mut dyn Write, ns: u64) -> fmt::Result {
    if ns < 1000 {
        return write!(w, "{ns}ns");
    }
    const UNITS: [(u128, &str); 3] = [(1_000, "us"), (1_000_000, "ms"), (1_000_000_000, "s")];
    let mut u = UNITS
        .iter()
        .rposition(|&(div, _)| ns as u128 >= div)
        .unwrap_or(0);
    loop {
        let (div, unit) = UNITS[u];
        for (dec, pow) in [(2usize, 100u128), (1, 10), (0, 1)] {
            let scaled = (ns as u128 * pow + div / 2) / div;
            if scaled < 1000 || (dec == 0 && u == UNITS.len() - 1) {
                return if dec == 0 {
                    write!(w, "{scaled}{unit}")
                } else {
                    write!(w, "{}.{:0dec$}{unit}", scaled / pow, scaled % pow)
                };
            }
        }
        u += 1;
    }
}

fn duration_str(ns: u64) -> StackStr<32> {
    let mut s = StackStr::new();
    // 32 bytes hold any u64 in seconds plus a unit.
    let _ = write_duration(&mut s, ns);
    s
}

const HEADERS: [&str; 6] = ["probe", "count", "p50", "p99", "max", "mean"];

fn row_cells(s: &Summary) -> [StackStr<32>; 5] {
    let mut count = StackStr::new();
    let _ = write!(count, "{}", s.count);
    [
        count,
        duration_str(s.p50_ns),
        duration_str(s.p99_ns),
        duration_str(s.max_ns),
        duration_str(s.mean_ns),
    ]
}

/// Writes an aligned table of `rows`: a header, a rule, one line per row;
/// every line has the same width (names left-aligned, numbers right-aligned,
/// no trailing spaces beyond the widest cell).
pub fn write_table(w: &mut dyn Write, rows: &[Summary]) -> fmt::Result {
    let mut widths = HEADERS.map(str::len);
    for r in rows {
        widths[0] = widths[0].max(r.name.len());
        for (i, c) in row_cells(r).iter().enumerate() {
            widths[i + 1] = widths[i + 1].max(c.as_str().len());
        }
    }
    let total = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
    write!(w, "{:<1$}", HEADERS[0], widths[0])?;
    for i in 1..HEADERS.len() {
        write!(w, "  {:>1$}", HEADERS[i], widths[i])?;
    }
    w.write_char('\n')?;
    for _ in 0..total {
        w.write_char('-')?;
    }
    w.write_char('\n')?;
    for r in rows {
        write!(w, "{:<1$}", r.name, widths[0])?;
        for (i, c) in row_cells(r).iter().enumerate() {
            write!(w, "  {:>1$}", c.as_str(), widths[i + 1])?;
        }
        w.write_char('\n')?;
    }
    Ok(())
}

/// Rows summarised at once by [`write_report`]; more probes are written as
/// further tables.
pub const REPORT_ROWS: usize = 32;

/// Summarises `probes` (using `scratch` for the ring copies, see
/// [`Summary::of`]) and writes an aligned table followed by one machine line
/// per probe. Keeps at most [`REPORT_ROWS`] summaries on the stack; longer
/// lists are written in several tables.
pub fn write_report(
    w: &mut dyn Write,
    probes: &[&dyn AnyProbe],
    scratch: &mut [u64],
    freq_hz: u64,
) -> fmt::Result {
    for chunk in probes.chunks(REPORT_ROWS) {
        let mut rows = [Summary::default(); REPORT_ROWS];
        for (row, p) in rows.iter_mut().zip(chunk) {
            *row = Summary::of(*p, scratch, freq_hz);
        }
        let rows = &rows[..chunk.len()];
        write_table(w, rows)?;
        for r in rows {
            r.write_machine(w)?;
        }
    }
    Ok(())
}

/// Writes one distribution line per probe: the name padded to the longest,
/// then [`Log2Hist::write_line`] of its ring samples.
pub fn write_distributions(
    w: &mut dyn Write,
    probes: &[&dyn AnyProbe],
    scratch: &mut [u64],
    freq_hz: u64,
) -> fmt::Result {
    let width = probes.iter().map(|p| p.name().len()).max().unwrap_or(0);
    for p in probes {
        let n = p.snapshot(scratch);
        write!(w, "{:<1$}  ", p.name(), width)?;
        Log2Hist::from_samples(&scratch[..n]).write_line(w, freq_hz)?;
        w.write_char('\n')?;
    }
    Ok(())
}
