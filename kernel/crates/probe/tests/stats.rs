//! Percentiles, ring behaviour, summaries and report formats.

use probe::*;

fn text(f: impl FnOnce(&mut String) -> core::fmt::Result) -> String {
    let mut s = String::new();
    f(&mut s).unwrap();
    s
}

#[test]
fn nearest_rank_is_exact() {
    let v: Vec<u64> = (1..=10).collect();
    assert_eq!(nearest_rank(&v, 50, 100), Some(5));
    assert_eq!(nearest_rank(&v, 99, 100), Some(10));
    assert_eq!(nearest_rank(&v, 90, 100), Some(9));
    assert_eq!(nearest_rank(&v, 91, 100), Some(10));
    assert_eq!(nearest_rank(&v, 0, 100), Some(1));
    assert_eq!(nearest_rank(&v, 100, 100), Some(10));
    let v: Vec<u64> = (1..=100).collect();
    assert_eq!(nearest_rank(&v, 50, 100), Some(50));
    assert_eq!(nearest_rank(&v, 99, 100), Some(99));
    let v: Vec<u64> = (1..=1000).collect();
    assert_eq!(nearest_rank(&v, 999, 1000), Some(999));
    assert_eq!(nearest_rank(&v, 99, 100), Some(990));
    assert_eq!(nearest_rank(&[7], 50, 100), Some(7));
    assert_eq!(nearest_rank(&[3, 9], 50, 100), Some(3));
    assert_eq!(nearest_rank(&[], 50, 100), None);
}

#[test]
fn summary_on_known_data() {
    static P: Probe<200> = Probe::new("known");
    // 1..=100 in a scrambled order.
    for i in 0..100u64 {
        P.record_ticks((i * 37) % 100 + 1);
    }
    let mut scratch = [0u64; 200];
    let s = Summary::of(&P, &mut scratch, 1_000_000_000);
    assert_eq!(
        s,
        Summary {
            name: "known",
            count: 100,
            samples: 100,
            min_ns: 1,
            p50_ns: 50,
            p99_ns: 99,
            max_ns: 100,
            mean_ns: 50
        }
    );
    // At 24 MHz (the Pi 4 / QEMU virt CNTFRQ): 24 ticks = 1000 ns.
    let s = Summary::of(&P, &mut scratch, 24_000_000);
    assert_eq!((s.p50_ns, s.max_ns), (50 * 1000 / 24, 100 * 1000 / 24));
}

#[test]
fn empty_probe_summary() {
    static P: Probe<8> = Probe::new("empty");
    let s = Summary::of(&P, &mut [0u64; 8], 1_000_000_000);
    assert_eq!(
        s,
        Summary {
            name: "empty",
            ..Summary::default()
        }
    );
    assert_eq!(P.totals(), Totals::default());
}

#[test]
fn ring_wrap_keeps_last_n_and_exact_totals() {
    static P: Probe<16> = Probe::new("wrap");
    // 1000 samples; the big one early must stay the exact max after wrapping.
    P.record_ticks(5_000);
    for i in 1..1000u64 {
        P.record_ticks(i);
    }
    let t = P.totals();
    assert_eq!(t.count, 1000);
    assert_eq!(t.max, 5_000);
    assert_eq!(t.min, 1);
    assert_eq!(t.sum, 5_000 + 999 * 1000 / 2);
    let mut out = [0u64; 64];
    let n = P.snapshot(&mut out);
    assert_eq!(n, 16);
    let mut got = out[..n].to_vec();
    got.sort();
    assert_eq!(got, (984..1000).collect::<Vec<_>>());
    // A smaller scratch gets the most recent samples.
    let mut small = [0u64; 4];
    assert_eq!(P.snapshot(&mut small), 4);
    assert_eq!(small, [999, 998, 997, 996]);
    let s = Summary::of(&P, &mut small, 1_000_000_000);
    assert_eq!(
        (s.count, s.samples, s.max_ns, s.p50_ns),
        (1000, 4, 5000, 997)
    );
    P.reset();
    assert_eq!(P.totals(), Totals::default());
    assert_eq!(P.snapshot(&mut out), 0);
}

#[test]
fn partial_ring_holds_only_recorded_values() {
    static P: Probe<32> = Probe::new("partial");
    P.record_ticks(0);
    P.record_ticks(u64::MAX); // clamped below the empty-slot marker
    let mut out = [0u64; 32];
    let n = P.snapshot(&mut out);
    assert_eq!(&out[..n], &[u64::MAX - 1, 0]);
    assert_eq!(P.totals().max, u64::MAX - 1);
    assert_eq!(P.totals().min, 0);
}

#[test]
fn guard_and_measure_record_once() {
    static P: Probe<4> = Probe::new("guard");
    {
        let _g = P.guard();
    }
    assert_eq!(P.measure(|| 41 + 1), 42);
    assert_eq!(P.totals().count, 2);
}

#[test]
fn tick_conversions() {
    assert_eq!(ticks_to_ns(24, 24_000_000), 1000);
    assert_eq!(ticks_to_ns(62_500_000, 62_500_000), 1_000_000_000);
    assert_eq!(ticks_to_ns(u64::MAX, 1), u64::MAX);
    assert_eq!(ticks_to_ns(7, 0), 7);
    assert_eq!(ns_to_ticks(1000, 24_000_000), 24);
    assert_eq!(ns_to_ticks(1, 24_000_000), 1);
}

#[test]
fn durations_choose_units() {
    let d = |ns| text(|s| write_duration(s, ns));
    assert_eq!(d(0), "0ns");
    assert_eq!(d(999), "999ns");
    assert_eq!(d(1_000), "1.00us");
    assert_eq!(d(1_234), "1.23us");
    assert_eq!(d(26_000), "26.0us");
    assert_eq!(d(684_000), "684us");
    assert_eq!(d(999_499), "999us");
    assert_eq!(d(999_500), "1.00ms");
    assert_eq!(d(44_700_000), "44.7ms");
    assert_eq!(d(641_000_000), "641ms");
    assert_eq!(d(3_940_000_000), "3.94s");
    assert_eq!(d(9_996_000_000), "10.0s");
    assert_eq!(d(5_000_000_000_000), "5000s");
    assert_eq!(d(u64::MAX), "18446744074s");
}

fn rows() -> Vec<Summary> {
    vec![
        Summary {
            name: "gcma.alloc",
            count: 12,
            samples: 12,
            min_ns: 1,
            p50_ns: 26_000,
            p99_ns: 92_500_000,
            max_ns: 92_500_000,
            mean_ns: 44_700_000,
        },
        Summary {
            name: "cma.alloc.with.a.long.name",
            count: 123_456_789,
            samples: 1024,
            min_ns: 5,
            p50_ns: 684_000,
            p99_ns: 3_900_000_000,
            max_ns: 3_940_000_000,
            mean_ns: 641_000_000,
        },
        Summary {
            name: "x",
            ..Summary::default()
        },
    ]
}

#[test]
fn table_lines_have_equal_width() {
    let t = text(|s| write_table(s, &rows()));
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines.len(), 5, "{t}");
    let w = lines[0].len();
    assert!(lines.iter().all(|l| l.len() == w), "{t}");
    assert!(lines[0].starts_with("probe "), "{t}");
    assert!(lines[1].chars().all(|c| c == '-'), "{t}");
    assert!(lines[2].starts_with("gcma.alloc "), "{t}");
    assert!(
        lines[3].contains("123456789") && lines[3].contains("3.94s") && lines[3].ends_with("641ms"),
        "{t}"
    );
    // Columns line up: every cell of the header ends where the data cells end.
    let ends = |l: &str| -> Vec<usize> {
        l.char_indices()
            .filter(|&(i, c)| c != ' ' && l[i + 1..].starts_with(' '))
            .map(|(i, _)| i)
            .collect()
    };
    assert_eq!(ends(lines[0])[1..], ends(lines[2])[1..], "{t}");
    assert_eq!(ends(lines[0])[1..], ends(lines[3])[1..], "{t}");
}

/// Parses a machine line the way a host tool would.
fn parse(line: &str) -> Vec<(String, String)> {
    let mut it = line.split(' ');
    assert_eq!(it.next(), Some("@probe"));
    it.map(|kv| {
        let (k, v) = kv.split_once('=').expect("key=value");
        (k.to_string(), v.to_string())
    })
    .collect()
}

#[test]
fn machine_line_parses() {
    for r in rows() {
        let line = text(|s| r.write_machine(s));
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        let kv = parse(line.trim_end());
        let keys: Vec<&str> = kv.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "name", "count", "p50_ns", "p99_ns", "max_ns", "mean_ns", "min_ns", "samples"
            ]
        );
        assert_eq!(kv[0].1, r.name);
        let num = |i: usize| kv[i].1.parse::<u64>().unwrap();
        assert_eq!(
            [num(1), num(2), num(3), num(4), num(5), num(6), num(7)],
            [
                r.count, r.p50_ns, r.p99_ns, r.max_ns, r.mean_ns, r.min_ns, r.samples
            ]
        );
    }
}

#[test]
fn report_writes_table_and_machine_lines() {
    static A: Probe<64> = Probe::new("rep.a");
    static B: Probe<8> = Probe::new("rep.bb");
    for i in 1..=10 {
        A.record_ticks(i * 24);
    }
    B.record_ticks(24_000);
    let mut scratch = [0u64; 64];
    let probes: [&dyn AnyProbe; 2] = [&A, &B];
    let out = text(|s| write_report(s, &probes, &mut scratch, 24_000_000));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    assert_eq!(
        lines[4],
        "@probe name=rep.a count=10 p50_ns=5000 p99_ns=10000 max_ns=10000 mean_ns=5500 min_ns=1000 samples=10"
    );
    assert_eq!(
        lines[5],
        "@probe name=rep.bb count=1 p50_ns=1000000 p99_ns=1000000 max_ns=1000000 mean_ns=1000000 min_ns=1000000 samples=1"
    );
    assert!(
        lines[2].starts_with("rep.a ") && lines[2].ends_with("5.50us"),
        "{out}"
    );
}

#[test]
fn report_splits_long_lists() {
    static P: Probe<4> = Probe::new("many");
    P.record_ticks(1);
    let probes: Vec<&dyn AnyProbe> = vec![&P; REPORT_ROWS + 3];
    let out = text(|s| write_report(s, &probes, &mut [0u64; 4], 1_000_000_000));
    assert_eq!(out.matches("@probe ").count(), REPORT_ROWS + 3);
    assert_eq!(out.lines().filter(|l| l.starts_with("probe ")).count(), 2);
}

#[test]
fn log2_histogram_line() {
    let samples: Vec<u64> = [1000u64; 10].into_iter().chain([1u64 << 14; 1]).collect();
    let h = Log2Hist::from_samples(&samples);
    assert_eq!(h.buckets[9], 10); // 1000 in [512, 1024)
    assert_eq!(h.buckets[14], 1);
    assert_eq!(h.span(), Some((9, 14)));
    let line = text(|s| h.write_line(s, 1_000_000_000));
    assert_eq!(line, "  512ns |@    .| 32.8us");
    assert_eq!(text(|s| Log2Hist::from_samples(&[]).write_line(s, 1)), "-");
    assert_eq!(Log2Hist::from_samples(&[0, 1]).buckets[0], 2);

    static P: Probe<16> = Probe::new("dist");
    for v in [3u64, 3, 5, 100] {
        P.record_ticks(v);
    }
    let out = text(|s| write_distributions(s, &[&P], &mut [0u64; 16], 1_000_000_000));
    assert_eq!(out, "dist      2ns |@.   .| 128ns\n");
}

#[test]
fn stack_str_rejects_overflow() {
    use core::fmt::Write;
    let mut s = StackStr::<4>::new();
    assert!(s.write_str("abcd").is_ok());
    assert!(s.write_str("e").is_err());
    assert_eq!(s.as_str(), "abcd");
}

probe::probe!(MACRO_DEFAULT = "macro.default");
probe::probe!(pub MACRO_SMALL = "macro.small", 8);

#[test]
fn macro_declares_probes() {
    assert_eq!(MACRO_DEFAULT.capacity(), DEFAULT_CAPACITY);
    assert_eq!(MACRO_SMALL.capacity(), 8);
    assert_eq!(MACRO_SMALL.name(), "macro.small");
}

#[test]
#[should_panic(expected = "whitespace")]
fn bad_names_are_rejected() {
    let _ = Probe::<4>::new("has space");
}
