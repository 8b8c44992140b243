//! Property tests of the statistics and formats against naive oracles.

use probe::*;
use proptest::prelude::*;

fn text(f: impl FnOnce(&mut String) -> core::fmt::Result) -> String {
    let mut s = String::new();
    f(&mut s).unwrap();
    s
}

/// Parses `write_duration` output back to nanoseconds (as f64).
fn parse_duration(s: &str) -> f64 {
    let (num, mul) = if let Some(n) = s.strip_suffix("ns") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix("us") {
        (n, 1e3)
    } else if let Some(n) = s.strip_suffix("ms") {
        (n, 1e6)
    } else {
        (s.strip_suffix('s').expect("unit"), 1e9)
    };
    num.parse::<f64>().expect("number") * mul
}

proptest! {
    /// Nearest rank = the smallest sample x with #{v <= x} >= p/100 * n.
    #[test]
    fn nearest_rank_matches_definition(mut v in prop::collection::vec(0u64..50, 1..300), p in 0u64..=100) {
        v.sort();
        let n = v.len() as u64;
        let naive = v.iter().copied().find(|&x| 100 * v.iter().filter(|&&y| y <= x).count() as u64 >= p * n).unwrap();
        prop_assert_eq!(nearest_rank(&v, p, 100), Some(naive));
    }

    /// Three significant digits: within half a unit of the last digit, and
    /// at most 6 characters below 1000 s.
    #[test]
    fn durations_round_trip(ns in prop_oneof![0u64..2_000, 0u64..2_000_000, 0u64..2_000_000_000_000, any::<u64>()]) {
        let s = text(|w| write_duration(w, ns));
        let back = parse_duration(&s);
        let err = (back - ns as f64).abs();
        prop_assert!(err <= (ns as f64) * 0.005 + 0.5, "{} -> {} ({})", ns, s, back);
        if ns < 999_500_000_000 {
            prop_assert!(s.len() <= 6, "{} -> {}", ns, s);
        }
    }

    /// Single-threaded: the ring holds exactly the last min(n, N) samples and
    /// the totals are exact.
    #[test]
    fn ring_keeps_the_last_samples(v in prop::collection::vec(0u64..u64::MAX, 0..100)) {
        let p: &'static Probe<16> = Box::leak(Box::new(Probe::new("prop.ring")));
        for &x in &v {
            p.record_ticks(x);
        }
        let mut out = [0u64; 16];
        let n = p.snapshot(&mut out);
        let keep = v.len().min(16);
        let mut want: Vec<u64> = v[v.len() - keep..].iter().rev().copied().collect();
        prop_assert_eq!(&out[..n], &want[..]);
        let t = p.totals();
        prop_assert_eq!(t.count, v.len() as u64);
        prop_assert_eq!(t.sum, v.iter().fold(0u64, |a, &b| a.wrapping_add(b)));
        prop_assert_eq!(t.max, v.iter().copied().max().unwrap_or(0));
        prop_assert_eq!(t.min, v.iter().copied().min().unwrap_or(0));
        // Percentiles of the summary come from exactly those samples.
        want.sort();
        let s = Summary::of(p, &mut out, 1_000_000_000);
        prop_assert_eq!(s.p50_ns, nearest_rank(&want, 50, 100).unwrap_or(0));
        prop_assert_eq!(s.p99_ns, nearest_rank(&want, 99, 100).unwrap_or(0));
    }

    /// Tables stay aligned whatever the names and values.
    #[test]
    fn table_always_aligned(rows in prop::collection::vec(
        ("[a-z.]{1,30}", any::<u64>(), any::<u64>(), any::<u64>(), any::<u64>(), any::<u64>()), 0..12)
    ) {
        let rows: Vec<Summary> = rows
            .into_iter()
            .map(|(name, count, a, b, c, d)| Summary {
                name: Box::leak(name.into_boxed_str()),
                count,
                samples: 0,
                min_ns: 0,
                p50_ns: a,
                p99_ns: b,
                max_ns: c,
                mean_ns: d,
            })
            .collect();
        let t = text(|w| write_table(w, &rows));
        let lines: Vec<&str> = t.lines().collect();
        prop_assert_eq!(lines.len(), rows.len() + 2);
        prop_assert!(lines.iter().all(|l| l.len() == lines[0].len()), "{}", t);
        for r in &rows {
            let line = text(|w| r.write_machine(w));
            let fields: Vec<&str> = line.trim_end().split(' ').collect();
            prop_assert_eq!(fields.len(), 9);
            prop_assert_eq!(fields[1], format!("name={}", r.name));
            prop_assert_eq!(fields[3], format!("p50_ns={}", r.p50_ns));
        }
    }
}
