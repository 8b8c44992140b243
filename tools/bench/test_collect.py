"""Tests of tools/bench/collect.py (stdlib unittest only).

Run: python3 -m unittest discover -s tools/bench -p 'test_*.py' -v
"""

import contextlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import benchlog  # noqa: E402
import collect  # noqa: E402
import report  # noqa: E402

ALLOCATORS = ("gcma", "cma", "cma-retry", "carveout")
CONDITIONS = ("idle", "pagecache", "anon", "odirect", "longpin")
SETUPS = ("none", "carveout", "cma", "gcma")
# Typical latencies (µs) per allocator and condition for the synthetic log.
BASE_US = {
    "gcma": {"idle": 10.0, "pagecache": 12.0, "anon": 11.0, "odirect": 12.0, "longpin": 12.0},
    "cma": {"idle": 15.0, "pagecache": 400.0, "anon": 900.0, "odirect": 1500.0, "longpin": 2000.0},
    "cma-retry": {"idle": 15.0, "pagecache": 420.0, "anon": 950.0, "odirect": 1600.0, "longpin": 90000.0},
    "carveout": {"idle": 5.0, "pagecache": 5.0, "anon": 5.0, "odirect": 5.0, "longpin": 5.0},
}
# A Linux CMA reference (results/linux-cma.json's shape) for the same size.
LINUX_P99 = {"idle": 40.0, "pagecache": 800.0, "anon": 5000.0, "odirect": 3000.0, "longpin": 200000.0}


def linux_doc(**override):
    rows = [{"condition": c, "pages": 768, "attempts": 30, "successes": 30 if c != "longpin" else 25,
             "p50_us": p99 / 2, "p99_us": p99, "max_us": p99, "smp": 1} for c, p99 in LINUX_P99.items()]
    for row in rows:
        row.update(override.get(row["condition"], {}))
    return {"what": "Linux CMA, test", "boot": {"align_order": 4}, "rows": rows}
# What our CMA did per run (@cmawork): anon's own work dominates, longpin's
# pinned pages, pagecache's time between passes.
CMA_WORK = {
    "idle": "allocations=20 failures=0 passes=20 dropped_clean=0 migrated=0 busy_retries=0 ranges_given_up=0"
            " rescans=0 pass_ms=0.300 total_ms=0.310",
    "pagecache": "allocations=20 failures=0 passes=40 dropped_clean=9000 migrated=100 busy_retries=0"
                 " ranges_given_up=0 rescans=0 pass_ms=4.000 total_ms=10.000",
    "anon": "allocations=20 failures=0 passes=20 dropped_clean=12000 migrated=0 busy_retries=0"
            " ranges_given_up=0 rescans=0 pass_ms=18.000 total_ms=20.000",
    "odirect": "allocations=20 failures=0 passes=200 dropped_clean=8000 migrated=0 busy_retries=400"
               " ranges_given_up=2 rescans=0 pass_ms=20.000 total_ms=30.000",
    "longpin": "allocations=20 failures=0 passes=1500 dropped_clean=8000 migrated=0 busy_retries=3000"
               " ranges_given_up=30 rescans=0 pass_ms=30.000 total_ms=40.000",
}
READS = {"none": 100000, "carveout": 180000, "cma": 104000, "gcma": 108000}


def samples(allocator, condition, n=20, seed=1):
    rng = random.Random(f"{allocator}/{condition}/{seed}")
    base = BASE_US[allocator][condition]
    return sorted(round(base * (1 + rng.random()), 1) for _ in range(n))


def alloc_line(allocator, condition, **override):
    s = samples(allocator, condition)
    fields = {
        "allocator": allocator, "condition": condition, "pages": 768, "attempts": 20, "successes": 20,
        "p50_us": s[9], "p99_us": s[-1], "max_us": s[-1],
    }
    fields.update(override)
    return "@alloc " + " ".join(f"{k}={v}" for k, v in fields.items())


def make_log(skip=(), extra=(), replace=None):
    """A complete console log; `skip`: substrings whose lines are left out;
    `replace`: {line prefix: new line}."""
    lines = [
        "GCMA unikernel 0.1.0 on qemu-virt (entered at EL1, running at EL1)",
        "[    0.011] INFO  kernel: device tree at 0x48000000",
        "@region name=gcma@50000000 kind=gcma base=0x50000000 size=0x4000000",
        "@bench board=qemu-virt scale=quick seed=42 gcma_mib=64 cma_mib=64 carveout_mib=64 ram_mib=1024 "
        "frame_align_pages=256 photo_align_pages=256",
    ]
    step = 0
    for condition in CONDITIONS:
        for allocator in ALLOCATORS:
            step += 1
            lines.append(f"@progress step={step} of=20 what={allocator}/{condition}")
            lines.append(alloc_line(allocator, condition))
            lines.append(f"@latency allocator={allocator} condition={condition} pages=768 us="
                         + ",".join(str(x) for x in samples(allocator, condition)))
            misses = {"gcma": 0, "cma": 3 if condition != "idle" else 0, "cma-retry": 4 if condition != "idle" else 0,
                      "carveout": 0}[allocator]
            dropped = 2 * misses
            lines.append(f"@frames allocator={allocator} condition={condition} frames=300 deadline_misses={misses} "
                         f"dropped={dropped} hardware_ms=812.5 wake_late_ms=3.2")
            if allocator in ("cma", "cma-retry"):
                lines.append(f"@cmawork allocator={allocator} condition={condition} " + CMA_WORK[condition])
    for setup in SETUPS:
        cc = "0.31" if setup == "gcma" else "null"
        lines.append(f"@util setup={setup} seconds=12.3 read_sectors={READS[setup]} "
                     f"page_cache_hit_ratio=0.42 cleancache_hit_ratio={cc} future_key=1")
    lines.append(
        "@perpage gcma_alloc_ns=60.5 cma_alloc_ns=9050.2 carveout_alloc_ns=150.1 take_back_ns=20.5"
        " memset_ns=1980.0 memcpy_ns=2290.0 clear_page_ns=900.0 copy_page_ns=1500.0"
        " cc_store_ns=1700.0 cc_restore_ns=1600.0 cc_evict_ns=2100.0"
    )
    for cond in ("idle", "pagecache"):
        lines.append(f"@interleaved condition={cond} pages=760 pairs=60 gcma_p50_us=50.1 gcma_p99_us=90.2"
                     " gcma_max_us=120.0 carveout_p50_us=45.0 carveout_p99_us=80.0 carveout_max_us=110.5"
                     " gcma_tails=0 carveout_tails=0")
    lines.append("@tagstore requests=60 taken=21 overlapped=39 failed=0 p50_us=15.6 p99_us=64.1 max_us=64.1 dropped=324")
    lines.append("@future tag=ignored")
    lines.extend(extra)
    lines.append("@exit status=0 reason=success")
    lines = [l for l in lines if not any(s in l for s in skip)]
    for prefix, new in (replace or {}).items():
        lines = [new if l.startswith(prefix) else l for l in lines]
    return "\r\n".join(lines) + "\r\n"


def has_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


class Workspace(unittest.TestCase):
    """A temporary folder with an output dir and a top-level README."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="bench-test-")
        self.out = os.path.join(self.dir, "results")
        self.readme = os.path.join(self.dir, "README.md")
        with open(self.readme, "w") as f:
            f.write("# Project\n\nintro\n\n<!-- bench:start -->\nold\n<!-- bench:end -->\n\ntail\n")
        self.linux = os.path.join(self.dir, "linux-cma.json")
        self.write_linux(linux_doc())

    def write_linux(self, doc):
        with open(self.linux, "w") as f:
            json.dump(doc, f)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def write_log(self, text, name="demo.log"):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def run_collect(self, text, *flags, plots=False):
        """collect.main on `text`; returns (exit code, stdout, stderr)."""
        argv = [self.write_log(text), "--out", self.out, "--readme", self.readme, "--commit", "abc1234",
                "--linux-cma", self.linux]
        argv += list(flags) + ([] if plots else ["--no-plots"])
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = collect.main(argv)
        return code, out.getvalue(), err.getvalue()

    def check(self, text):
        return self.run_collect(text, "--check")

    def bench_json(self):
        with open(os.path.join(self.out, "bench.json")) as f:
            return json.load(f)


class ParseTest(unittest.TestCase):
    def test_all_rows_parsed(self):
        parsed = benchlog.parse_lines(make_log().splitlines())
        self.assertEqual(len(parsed.rows["alloc"]), 20)
        self.assertEqual(len(parsed.rows["frames"]), 20)
        self.assertEqual(len(parsed.rows["utilization"]), 4)
        self.assertEqual(parsed.per_page["memset_ns"], 1980.0)
        self.assertEqual(len(parsed.latency[("gcma", "longpin")]), 20)
        self.assertEqual(parsed.meta["seed"], "42")
        self.assertEqual(parsed.problems, [])
        self.assertEqual(parsed.warnings, [])

    def test_malformed_lines_reported_not_crashed(self):
        bad = [
            "@alloc allocator=gcma condition=idle pages=abc attempts=20 successes=20 p50_us=1 p99_us=2 max_us=3",
            "@alloc garbage",
            "@frames allocator=gpu condition=idle frames=3 deadline_misses=0",
            "@util setup=gcma seconds=",
            "@latency allocator=cma condition=anon us=1.0,x,2.0",
            "@perpage gcma_alloc_ns=nan",
            "@",
            "@alloc allocator=cma condition=longpin p50_us=1e999",
        ]
        parsed = benchlog.parse_lines(make_log(extra=bad).splitlines())
        text = "\n".join(parsed.problems)
        for expected in ("pages='abc' is not an integer", "not key=value: garbage", "'gpu' is not one of",
                         "seconds='' is not a number", "sample(s) of cma/anon are not numbers",
                         "gcma_alloc_ns='nan' is not a finite number", "second @perpage line",
                         "p50_us='1e999' is not a finite number", "missing key 'attempts'"):
            self.assertIn(expected, text)
        self.assertTrue(all(p.startswith("line ") for p in parsed.problems), parsed.problems)
        # The good rows are still there.
        self.assertEqual(len(parsed.rows["frames"]), 20)

    def test_unfinished_run_warns_with_last_progress(self):
        parsed = benchlog.parse_lines(make_log(skip=("@exit",)).splitlines())
        self.assertTrue(any("no @exit line" in w and "step 20 of 20" in w for w in parsed.warnings), parsed.warnings)

    def test_missing_latency_is_a_warning(self):
        parsed = benchlog.parse_lines(make_log(skip=("@latency allocator=cma condition=anon",)).splitlines())
        self.assertTrue(any("no @latency samples for cma/anon" in w for w in parsed.warnings))


class JsonTest(Workspace):
    def test_json_matches_schema_exactly(self):
        code, out, _ = self.run_collect(make_log())
        self.assertEqual(code, 0)
        self.assertIn("alloc 20/20 x 1 size(s)", out)
        data = self.bench_json()
        self.assertEqual(list(data), ["commit", "board", "accel", "alloc", "frames", "utilization", "per_page",
                                      "linux_cma", "tag_storage", "interleaved", "cma_work", "cores", "sched",
                                      "one_core", "locks", "host"])
        # A log without cores= is a one-core boot: no comparison, no lock lines;
        # no hostsched.tsv beside it: no host figures.
        self.assertEqual((data["cores"], data["sched"], data["one_core"], data["locks"], data["host"]),
                         (1, None, None, [], None))
        self.assertEqual({r["cores"] for r in data["alloc"] + data["frames"] + data["cma_work"]}, {1})
        self.assertEqual([(r["allocator"], r["condition"], r["passes"]) for r in data["cma_work"]][:3],
                         [("cma", "idle", 20), ("cma-retry", "idle", 20), ("cma", "pagecache", 40)])
        self.assertEqual([(r["condition"], r["pairs"], r["gcma_p99_us"]) for r in data["interleaved"]],
                         [("idle", 60, 90.2), ("pagecache", 60, 90.2)])
        self.assertEqual(data["tag_storage"], {"requests": 60, "taken": 21, "overlapped": 39, "failed": 0,
                                               "p50_us": 15.6, "p99_us": 64.1, "max_us": 64.1, "dropped": 324})
        self.assertEqual((data["commit"], data["board"], data["accel"]), ("abc1234", "qemu-virt", "tcg"))
        types = {
            "alloc": {"allocator": str, "condition": str, "pages": int, "attempts": int, "successes": int,
                      "p50_us": float, "p99_us": float, "max_us": float, "cores": int},
            "frames": {"allocator": str, "condition": str, "frames": int, "deadline_misses": int, "dropped": int,
                       "hardware_ms": float, "wake_late_ms": float, "cores": int},
            "utilization": {"setup": str, "seconds": float, "read_sectors": int,
                            "page_cache_hit_ratio": float, "cleancache_hit_ratio": (float, type(None))},
        }
        for section, fields in types.items():
            for row in data[section]:
                self.assertEqual(set(row), set(fields), section)
                for key, kind in fields.items():
                    self.assertIsInstance(row[key], kind, f"{section}.{key}")
                    self.assertNotIsInstance(row[key], bool)
        self.assertEqual(
            set(data["per_page"]),
            {"gcma_alloc_ns", "cma_alloc_ns", "carveout_alloc_ns", "take_back_ns", "memset_ns", "memcpy_ns",
             "clear_page_ns", "copy_page_ns", "cc_store_ns", "cc_restore_ns", "cc_evict_ns"},
        )
        for value in data["per_page"].values():
            self.assertIsInstance(value, float)
        self.assertEqual(benchlog.validate(data), [])
        # Rows in canonical order: conditions, then allocators.
        self.assertEqual([(r["allocator"], r["condition"]) for r in data["alloc"]][:4],
                         [("gcma", "idle"), ("cma", "idle"), ("cma-retry", "idle"), ("carveout", "idle")])
        self.assertIsNone(data["utilization"][0]["cleancache_hit_ratio"])

    def test_flags_override_bench_line(self):
        self.run_collect(make_log(), "--board", "rpi4", "--accel", "hw")
        data = self.bench_json()
        self.assertEqual((data["board"], data["accel"]), ("rpi4", "hw"))

    def test_stdin(self):
        argv = ["-", "--out", self.out, "--no-readme", "--no-plots", "--commit", "x"]
        stdin, out, err = sys.stdin, io.StringIO(), io.StringIO()
        try:
            sys.stdin = io.StringIO(make_log())
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                self.assertEqual(collect.main(argv), 0)
        finally:
            sys.stdin = stdin
        self.assertEqual(len(self.bench_json()["alloc"]), 20)

    def test_commit_from_git_is_a_string(self):
        commit = collect.git_commit()
        self.assertIsInstance(commit, str)
        self.assertTrue(commit)

    def test_print_commit_is_what_a_run_would_record(self):
        # qemu-run.sh reads it before the boot and passes it back: the
        # same function, the same folder left out of the dirty check.
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            self.assertEqual(collect.main(["--print-commit", "--out", self.out]), 0)
        self.assertEqual(out.getvalue().strip(), collect.git_commit(ignore=(self.out,)))
        self.assertTrue(out.getvalue().strip())

    def test_a_log_is_required_unless_printing_the_commit(self):
        with contextlib.redirect_stderr(io.StringIO()), self.assertRaises(SystemExit) as e:
            collect.main(["--check"])
        self.assertEqual(e.exception.code, 2)

    def test_unreadable_log(self):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = collect.main([os.path.join(self.dir, "nope.log"), "--check"])
        self.assertEqual(code, 2)
        self.assertIn("cannot read", err.getvalue())


class CheckTest(Workspace):
    def assertProblem(self, text, expected):
        code, out, _ = self.check(text)
        self.assertEqual(code, 1, out)
        self.assertIn(expected, out)
        self.assertFalse(os.path.exists(self.out), "--check must not write")

    def test_clean_log_passes(self):
        code, out, _ = self.check(make_log())
        self.assertEqual(code, 0, out)
        self.assertIn("OK", out)

    def test_successes_above_attempts(self):
        bad = alloc_line("gcma", "anon", successes=21)
        self.assertProblem(make_log(replace={"@alloc allocator=gcma condition=anon": bad}),
                           "alloc[gcma/anon]: successes=21 > attempts=20")

    def test_p50_above_p99(self):
        bad = alloc_line("cma", "idle", p50_us=99999.0)
        self.assertProblem(make_log(replace={"@alloc allocator=cma condition=idle": bad}),
                           "alloc[cma/idle]: p50_us=99999.0 > p99_us=")

    def test_p99_above_max(self):
        bad = alloc_line("cma", "idle", p99_us=1e6, p50_us=1.0)
        self.assertProblem(make_log(replace={"@alloc allocator=cma condition=idle": bad}),
                           "alloc[cma/idle]: p99_us=1000000.0 > max_us=")

    def test_misses_above_frames(self):
        bad = "@frames allocator=gcma condition=longpin frames=300 deadline_misses=301 dropped=0 hardware_ms=1 wake_late_ms=0"
        self.assertProblem(make_log(replace={"@frames allocator=gcma condition=longpin": bad}),
                           "frames[gcma/longpin]: deadline_misses=301 > frames=300")

    def test_dropped_above_frames(self):
        bad = "@frames allocator=cma condition=odirect frames=300 deadline_misses=0 dropped=301 hardware_ms=1 wake_late_ms=0"
        self.assertProblem(make_log(replace={"@frames allocator=cma condition=odirect": bad}),
                           "frames[cma/odirect]: dropped=301 > frames=300")

    def test_dropped_and_late_above_frames(self):
        # A dropped frame is never captured, so it cannot be late as well.
        bad = "@frames allocator=cma condition=odirect frames=300 deadline_misses=200 dropped=101 hardware_ms=1 wake_late_ms=0"
        self.assertProblem(make_log(replace={"@frames allocator=cma condition=odirect": bad}),
                           "frames[cma/odirect]: deadline_misses=200 + dropped=101 > frames=300")

    def test_frames_without_dropped_is_a_problem(self):
        old = "@frames allocator=gcma condition=idle frames=300 deadline_misses=0 hardware_ms=1 wake_late_ms=0"
        self.assertProblem(make_log(replace={"@frames allocator=gcma condition=idle": old}),
                           "@frames: missing key 'dropped'")

    def test_old_pinned_condition_is_a_problem(self):
        old = alloc_line("gcma", "idle").replace("condition=idle", "condition=pinned")
        self.assertProblem(make_log(extra=[old]), "condition='pinned' is not one of idle, pagecache, anon, odirect, longpin")

    def test_missing_condition(self):
        text = make_log(skip=("condition=longpin",))
        self.assertProblem(text, "alloc: missing 4 row(s): gcma/longpin, cma/longpin, cma-retry/longpin, carveout/longpin")
        self.assertProblem(text, "frames: missing 4 row(s)")

    def test_missing_setup(self):
        self.assertProblem(make_log(skip=("@util setup=cma",)), "utilization: missing 1 row(s): cma")

    def test_missing_perpage(self):
        self.assertProblem(make_log(skip=("@perpage",)), "per_page: missing (no @perpage line in the log)")

    def test_ratio_outside_unit_interval(self):
        bad = "@util setup=gcma seconds=1 read_sectors=5 page_cache_hit_ratio=1.5 cleancache_hit_ratio=-0.1"
        text = make_log(replace={"@util setup=gcma": bad})
        self.assertProblem(text, "utilization[gcma].page_cache_hit_ratio: 1.5 is outside [0, 1]")
        self.assertProblem(text, "utilization[gcma].cleancache_hit_ratio: -0.1 is outside [0, 1]")

    def test_second_buffer_size_is_its_own_row(self):
        photo = alloc_line("gcma", "pagecache", pages=3038, attempts=4, successes=4)
        big = "@latency allocator=gcma condition=pagecache pages=3038 us=900.0,950.0,990.0,999.0"
        text = make_log(extra=[photo, big])
        code, out, _ = self.check(text)
        self.assertEqual(code, 0, out)
        parsed = benchlog.parse_lines(text.splitlines())
        self.assertEqual(len(parsed.rows["alloc"]), 21)
        self.assertIn(("gcma", "pagecache", 3038), parsed.rows["alloc"])
        # The CDF keeps the frame buffers (the smaller size), whatever the order.
        self.assertEqual(len(parsed.latency[("gcma", "pagecache")]), 20)
        self.assertEqual(parsed.warnings, [])

    def test_duplicate_row(self):
        self.assertProblem(make_log(extra=[alloc_line("gcma", "idle")]), "second row for gcma/idle")

    def test_malformed_line_fails_check(self):
        self.assertProblem(make_log(extra=["@frames allocator=cma condition=idle frames=x deadline_misses=0"]),
                           "frames='x' is not an integer")

    def test_failed_allocator_may_have_null_latency(self):
        bad = alloc_line("cma", "longpin", successes=0, p50_us="null", p99_us="null", max_us="null")
        code, out, _ = self.check(make_log(replace={"@alloc allocator=cma condition=longpin": bad}))
        self.assertEqual(code, 0, out)

    def test_null_latency_with_successes_is_a_problem(self):
        bad = alloc_line("gcma", "longpin", p99_us="null")
        self.assertProblem(make_log(replace={"@alloc allocator=gcma condition=longpin": bad}),
                           "alloc[gcma/longpin].p99_us: null, expected a number")

    def test_validate_catches_shape_errors(self):
        data = json.loads(json.dumps(benchlog.build_json(
            benchlog.parse_lines(make_log().splitlines()), "abc", "qemu-virt", "tcg")))
        data["extra"] = 1
        data["board"] = "pc"
        data["alloc"][0]["pages"] = 1.5
        data["alloc"][1]["bonus"] = True
        del data["frames"][0]["frames"]
        data["per_page"]["memset_ns"] = "fast"
        text = "\n".join(benchlog.validate(data))
        for expected in ("unexpected top-level key 'extra'", "board: 'pc' is not one of",
                         "alloc[gcma/idle].pages: 1.5 is not an integer", "alloc[cma/idle]: unexpected key 'bonus'",
                         "frames[gcma/idle].frames: missing", "per_page.memset_ns: 'fast' is not a number"):
            self.assertIn(expected, text)

    def test_check_a_bench_json_file(self):
        self.run_collect(make_log())
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            self.assertEqual(collect.main([os.path.join(self.out, "bench.json"), "--check"]), 0)
        data = self.bench_json()
        data["alloc"][0]["successes"] = 99
        path = self.write_log(json.dumps(data), "bad.json")
        with contextlib.redirect_stdout(out):
            self.assertEqual(collect.main([path, "--check"]), 1)
        self.assertIn("successes=99 > attempts=20", out.getvalue())


class PartialDataTest(Workspace):
    def test_empty_log_writes_results_listing_what_is_missing(self):
        code, out, err = self.run_collect("no records here\n")
        self.assertEqual(code, 0)
        data = self.bench_json()
        self.assertEqual(data["alloc"], [])
        self.assertEqual(set(data["per_page"].values()), {None})
        with open(os.path.join(self.out, "README.md")) as f:
            page = f.read()
        self.assertIn("alloc: missing 20 row(s)", page)
        self.assertIn("not measured", page)
        self.assertIn("no @exit line", page)

    def test_strict_fails_on_problems(self):
        code, _, _ = self.run_collect(make_log(skip=("@perpage",)), "--strict")
        self.assertEqual(code, 1)

    def test_failed_run_is_noted(self):
        self.run_collect(make_log(replace={"@exit": "@exit status=2 reason=panic"}))
        with open(os.path.join(self.out, "README.md")) as f:
            self.assertIn("@exit status=2 reason=panic: the run failed", f.read())


class ReportTest(Workspace):
    def page(self, text=None):
        self.run_collect(text or make_log())
        with open(os.path.join(self.out, "README.md")) as f:
            return f.read()

    def test_results_page_sections(self):
        page = self.page()
        for heading in ("## Headline", "## Where GCMA loses", "## Conditions", "## Allocation latency",
                        "## Linux CMA beside our CMA model", "## Camera frames",
                        "## Device reads", "## Per-page costs", "## Honest notes"):
            self.assertIn(heading, page)
        self.assertIn("QEMU TCG (emulation)", page)
        self.assertIn("`abc1234`", page)
        self.assertIn("collect.py", page)
        self.assertIn("UTC", page)

    def test_targets_met_and_not_met(self):
        page = self.page()
        lines = {l.split("|")[1].strip(): l for l in page.splitlines() if l.startswith("| GCMA") or l.startswith("| no ")}
        self.assertIn("| met ", lines["GCMA success 100% in every condition"])
        self.assertIn("| met ", lines["no GCMA frame dropped"])
        self.assertIn("| met ", lines["GCMA per-page cost ≤ 1/20 of memset"])
        self.assertIn("| met ", lines["GCMA p99 below CMA's in every condition and size, idle included"])
        # The fixture's carveout is about 2.5x faster than GCMA at p99.
        self.assertIn("| not met ", lines["GCMA p99 ≤ 2x the carveout's, every condition and size"])
        self.assertIn("| met ", lines["GCMA device reads within 15% of none, below carveout"])
        # longpin: CMA ~2000-4000 µs vs GCMA ~12-24 µs: ~ 100-300x, depends on the samples.
        self.assertRegex(lines["GCMA p99 ≥100x below CMA p99, longpin, every size"], r"\| (met|not met) ")
        self.assertIn("| met ", lines["GCMA p99 ≥15x below CMA p99, pagecache, every size"])

    def test_interleaved_table_and_its_checks(self):
        page = self.page()
        self.assertIn("## GCMA and the carveout, interleaved", page)
        self.assertRegex(page, r"\| idle\s+\|\s+760 \|\s+60 \|")
        bad = ("@interleaved condition=idle pages=760 pairs=60 gcma_p50_us=50.1 gcma_p99_us=40.0 gcma_max_us=120.0"
               " carveout_p50_us=45.0 carveout_p99_us=80.0 carveout_max_us=110.5 gcma_tails=0 carveout_tails=0")
        code, out, _ = self.run_collect(make_log(replace={"@interleaved condition=idle": bad}), "--check")
        self.assertEqual(code, 1, out)
        self.assertIn("interleaved[0]: gcma p50 <= p99 <= max does not hold", out)

    def test_cma_work_table_causes_and_checks(self):
        page = self.page()
        self.assertIn("What our CMA model did per allocation", page)
        self.assertRegex(page, r"\| CMA\s+\| longpin\s+\|\s+20 \|\s+400 \|\s+0.00 \|\s+150 \|\s+1.50 \|")
        # anon (outside 2x in the synthetic data): the model's own work per page moved.
        self.assertIn("anon: our CMA / Linux CMA outside 2x", page)
        self.assertIn("Measured on our side (20 allocations): per allocation 600 clean pages dropped, 0.00 copied",
                      page)
        self.assertIn("1,500 ns per page moved, inside passes, against Linux's 3,255 ns per page", page)
        # longpin: ranges given up.
        self.assertIn("The largest part is pinned pages", page)
        # Without @cmawork the cause is said to be unmeasured, and bench.json still validates.
        code, out, _ = self.run_collect(make_log(skip=("@cmawork",)), "--check")
        self.assertEqual(code, 0, out)
        self.assertIn("Cause not measured yet (no @cmawork in this run)", self.page(make_log(skip=("@cmawork",))))
        data = self.bench_json()
        del data["cma_work"]
        self.assertEqual(benchlog.validate(data), [])
        bad = ("@cmawork allocator=cma condition=anon allocations=20 failures=0 passes=20 dropped_clean=12000"
               " migrated=0 busy_retries=0 ranges_given_up=0 rescans=0 pass_ms=25.000 total_ms=20.000")
        code, out, _ = self.run_collect(make_log(replace={"@cmawork allocator=cma condition=anon": bad}), "--check")
        self.assertEqual(code, 1, out)
        self.assertIn("pass_ms 25.0 > total_ms 20.0", out)

    def test_tag_storage_table_and_its_checks(self):
        page = self.page()
        self.assertIn("## Tag storage: a second donor, explicit ranges", page)
        self.assertRegex(page, r"\|\s+60 \|\s+21 \|\s+39 \|\s+0 \|")
        bad = "@tagstore requests=60 taken=21 overlapped=30 failed=0 p50_us=15.6 p99_us=64.1 max_us=64.1 dropped=324"
        code, out, _ = self.run_collect(make_log(replace={"@tagstore": bad}), "--check")
        self.assertEqual(code, 1, out)
        self.assertIn("tag_storage: taken + overlapped + failed != requests", out)

    def test_notes_follow_the_data(self):
        tail = alloc_line("gcma", "anon", p50_us=10.0, p99_us=30.0, max_us=45.0, successes=19)
        reads = "@util setup=gcma seconds=1 read_sectors=130000 page_cache_hit_ratio=0.4 cleancache_hit_ratio=0.2"
        page = self.page(make_log(replace={"@alloc allocator=gcma condition=anon": tail, "@util setup=gcma": reads}))
        self.assertIn("GCMA under anon, 768 pages: max 45.0 µs is 4.5x its p50", page)
        self.assertIn("GCMA under anon, 768 pages, succeeded 19/20", page)
        self.assertIn("more device sectors than `none`", page)
        self.assertRegex(page, r"\| GCMA success 100% in every condition +\| not met")
        self.assertRegex(page, r"\| GCMA max ≤ 2x its p50, every size +\| not met")

    def test_tables_are_aligned(self):
        page = self.page()
        section = page.split("## Allocation latency\n\n")[1]
        table = section.split("\n\n")[0].splitlines()
        self.assertEqual(len(table), 22)
        self.assertEqual(len({len(l) for l in table}), 1, "rows of one table have the same width")

    def headline_rows(self, page):
        section = page.split("## Headline\n\n")[1]
        table = section.split("\n\n")[0].splitlines()[2:]
        return {tuple(c.strip() for c in l.split("|")[1:3]): [c.strip() for c in l.split("|")[1:-1]] for l in table}

    def test_headline_has_every_condition_and_size(self):
        photo = [alloc_line(a, c, pages=3038, attempts=4, successes=4 if a != "cma" or c != "longpin" else 1)
                 for c in CONDITIONS for a in ALLOCATORS]
        page = self.page(make_log(extra=photo))
        rows = self.headline_rows(page)
        self.assertEqual(len(rows), 2 * len(CONDITIONS))
        for c in CONDITIONS:
            for pages in ("768 (3.0 MiB)", "3,038 (11.9 MiB)"):
                self.assertIn((c, pages), rows)
        # Linux CMA/GCMA from the reference, where it has the size: 768 pages only.
        longpin = rows[("longpin", "768 (3.0 MiB)")]
        g = float(longpin[2].replace(",", ""))
        self.assertEqual(longpin[6], "200,000")
        self.assertEqual(longpin[7], report.fmt_ratio(200000.0 / g))
        self.assertEqual(rows[("longpin", "3,038 (11.9 MiB)")][6], "—")
        # Success rates: GCMA / CMA / CMA retry / Linux CMA.
        self.assertEqual(longpin[8], "100.0% / 100.0% / 100.0% / 83.3%")
        self.assertEqual(rows[("longpin", "3,038 (11.9 MiB)")][8], "100.0% / 25.0% / 100.0% / —")
        # Dropped frames per condition, every allocator.
        self.assertRegex(page, r"\| longpin +\| +300 \| +0 / 6 / 8 / 0 \| +0 / 3 / 4 / 0 \|")

    def test_where_gcma_loses(self):
        # CMA faster than GCMA when idle; Linux CMA faster under odirect; GCMA drops frames under anon.
        fast = alloc_line("cma", "idle", p50_us=1.0, p99_us=2.0, max_us=2.0)
        drops = "@frames allocator=gcma condition=anon frames=300 deadline_misses=0 dropped=9 hardware_ms=1 wake_late_ms=0"
        self.write_linux(linux_doc(odirect={"p50_us": 1.0, "p99_us": 1.5, "max_us": 1.5}))
        page = self.page(make_log(replace={"@alloc allocator=cma condition=idle": fast,
                                           "@frames allocator=gcma condition=anon": drops}))
        section = page.split("## Where GCMA loses\n\n")[1].split("\n\n")[0]
        self.assertIn("idle, 768 pages: CMA's p99 2.00 µs is below GCMA's", section)
        self.assertIn("odirect, 768 pages: Linux CMA's p99 1.50 µs is below GCMA's", section)
        self.assertIn("anon: GCMA dropped 9 frames, CMA 6.", section)
        self.assertIn("The carveout's p99 is below GCMA's in 5 of 5 condition/size pairs", section)
        with open(self.readme) as f:
            readme = f.read()
        self.assertIn("Where GCMA loses:", readme)
        self.assertIn("odirect, 768 pages: Linux CMA's p99 1.50 µs is below GCMA's", readme)

    def test_conditions_are_described_and_the_thread_cited(self):
        page = self.page()
        section = page.split("## Conditions\n\n")[1].split("## Allocation latency")[0]
        for c in CONDITIONS:
            self.assertRegex(section, rf"\| {c} +\|")
        self.assertIn("O_DIRECT", section)
        self.assertIn("vmsplice", section)
        self.assertIn("on linux-mm (2025)", section)
        # Nothing on the page leads outside the repository.
        self.assertNotRegex(page, r"\.\./")
        self.assertNotIn("seeds/", page)

    def test_linux_reference_kept_and_compared(self):
        page = self.page()
        ref = self.bench_json()["linux_cma"]
        self.assertEqual(ref["align_pages"], 16)
        self.assertEqual(len(ref["rows"]), 5)
        section = page.split("## Linux CMA beside our CMA model\n\n")[1].split("\n\n")[0]
        self.assertEqual(len(section.splitlines()), 2 + 5)
        self.assertIn("| anon ", section)

    def test_alignment_difference_is_said(self):
        page = self.page()
        self.assertIn("aligned every request to 16 pages; this run aligned them as a driver's "
                      "`dma_alloc_contiguous` does (256 pages), so Linux tried more candidate ranges", page)
        doc = linux_doc()
        doc["boot"]["align_order"] = 8
        self.write_linux(doc)
        self.assertNotIn("aligned every request", self.page())

    def test_no_linux_reference_is_a_warning(self):
        os.remove(self.linux)
        code, _, err = self.run_collect(make_log())
        self.assertEqual(code, 0)
        self.assertIn("no Linux CMA reference", err)
        self.assertIsNone(self.bench_json()["linux_cma"])
        with open(os.path.join(self.out, "README.md")) as f:
            self.assertIn("*No Linux CMA reference in this run's data.*", f.read())

    def test_bad_linux_reference_fails_check(self):
        self.write_linux(linux_doc(anon={"successes": 31}))
        code, out, _ = self.check(make_log())
        self.assertEqual(code, 1)
        self.assertIn("linux_cma.rows[2]: successes=31 > attempts=30", out)


class ReadmeMarkersTest(Workspace):
    def test_block_replaced_and_rest_untouched(self):
        self.run_collect(make_log())
        with open(self.readme) as f:
            text = f.read()
        self.assertTrue(text.startswith("# Project\n\nintro\n\n<!-- bench:start -->\n"))
        self.assertTrue(text.endswith("\n<!-- bench:end -->\n\ntail\n"))
        self.assertNotIn("old", text)
        self.assertIn("[results/README.md](results/README.md)", text)
        self.assertIn("| condition", text)
        # Idempotent: a second run gives the same text (same date minute aside).
        self.run_collect(make_log())
        with open(self.readme) as f:
            self.assertEqual(f.read().count("<!-- bench:start -->"), 1)

    def test_no_markers_leaves_file_alone(self):
        for body in ("# Project\nno markers\n", "only <!-- bench:start --> here\n",
                     "<!-- bench:end --> reversed <!-- bench:start -->\n"):
            with open(self.readme, "w") as f:
                f.write(body)
            _, _, err = self.run_collect(make_log())
            with open(self.readme) as f:
                self.assertEqual(f.read(), body)
            self.assertIn("not updated (no <!-- bench:start -->", err)

    def test_replace_between_markers(self):
        text = "a\n<!-- bench:start -->x<!-- bench:end -->b"
        self.assertEqual(report.replace_between_markers(text, "NEW"),
                         "a\n<!-- bench:start -->\nNEW\n<!-- bench:end -->b")
        self.assertIsNone(report.replace_between_markers("nothing", "NEW"))


class PublishTest(Workspace):
    """--publish writes only a complete full-scale run without problems."""

    def full_log(self, **kw):
        return make_log(**kw).replace("scale=quick", "scale=full")

    def test_full_clean_run_is_published(self):
        code, out, _ = self.run_collect(self.full_log(), "--publish")
        self.assertEqual(code, 0, out)
        self.assertEqual(self.bench_json()["board"], "qemu-virt")
        with open(self.readme) as f:
            self.assertIn("scale full", f.read())

    def assert_refused(self, text, why):
        with open(self.readme) as f:
            before = f.read()
        code, _, err = self.run_collect(text, "--publish")
        self.assertEqual(code, 1)
        self.assertIn(f"refusing to publish: {why}", err)
        self.assertFalse(os.path.exists(self.out), "nothing written")
        with open(self.readme) as f:
            self.assertEqual(f.read(), before)

    def test_quick_run_refused(self):
        self.assert_refused(make_log(), "scale=quick")

    def test_failed_run_refused(self):
        self.assert_refused(self.full_log(replace={"@exit": "@exit status=1 reason=failure"}), "@exit status=1")

    def test_unfinished_run_refused(self):
        self.assert_refused(self.full_log(skip=("@exit",)), "no @exit line")

    def test_run_with_problems_refused(self):
        self.assert_refused(self.full_log(skip=("@util setup=cma",)), "problem:")


class DefaultOutTest(unittest.TestCase):
    def test_default_folder_is_under_build_results(self):
        log = make_log()
        tmp = tempfile.mkdtemp(prefix="bench-out-")
        try:
            path = os.path.join(tmp, "demo.log")
            with open(path, "w") as f:
                f.write(log)
            saved = collect.REPO_ROOT
            collect.REPO_ROOT = tmp
            try:
                with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                    code = collect.main([path, "--no-plots", "--commit", "x"])
            finally:
                collect.REPO_ROOT = saved
            self.assertEqual(code, 0)
            self.assertTrue(os.path.exists(os.path.join(tmp, "build", "results", "qemu-virt", "quick", "bench.json")))
            self.assertFalse(os.path.exists(os.path.join(tmp, "results")))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class PlotTest(Workspace):
    PNG = b"\x89PNG\r\n\x1a\n"
    FILES = ("alloc-latency-cdf.png", "frame-deadline-misses.png", "device-reads.png")

    def assert_plots(self):
        with open(os.path.join(self.out, "README.md")) as f:
            page = f.read()
        for name in self.FILES:
            path = os.path.join(self.out, name)
            self.assertTrue(os.path.exists(path), path)
            with open(path, "rb") as f:
                self.assertEqual(f.read(8), self.PNG)
            self.assertIn(f"]({name})", page)

    def other_python_with_matplotlib(self):
        python = collect.SYSTEM_PYTHON
        if not os.path.exists(python):
            return None
        probe = subprocess.run([python, "-c", "import matplotlib"], capture_output=True)
        return python if probe.returncode == 0 else None

    def collect_with_plots(self, text):
        """Run collect with plots, in this interpreter if it has matplotlib,
        else with /usr/bin/python3 (Debian's python3-matplotlib)."""
        if has_matplotlib():
            code, _, err = self.run_collect(text, plots=True)
            self.assertEqual(code, 0, err)
            return
        python = self.other_python_with_matplotlib()
        if python is None:
            self.skipTest("matplotlib is missing for every python3 here (apt-get install python3-matplotlib)")
        log = self.write_log(text)
        done = subprocess.run([python, os.path.join(HERE, "collect.py"), log, "--out", self.out,
                               "--readme", self.readme, "--commit", "abc"], capture_output=True, text=True)
        self.assertEqual(done.returncode, 0, done.stderr)

    def test_plots_written(self):
        self.collect_with_plots(make_log())
        self.assert_plots()

    def test_plots_with_partial_data(self):
        self.collect_with_plots(make_log(skip=("condition=longpin", "@util setup=none", "@latency allocator=cma")))
        self.assert_plots()

    def test_no_plots_is_reported(self):
        self.run_collect(make_log())
        with open(os.path.join(self.out, "README.md")) as f:
            page = f.read()
        self.assertIn("*Plot not written (--no-plots).*", page)

    def test_script_reexecs_with_system_python_for_plots(self):
        if has_matplotlib() or self.other_python_with_matplotlib() is None:
            self.skipTest("only meaningful when this python3 lacks matplotlib and /usr/bin/python3 has it")
        log = self.write_log(make_log())
        env = dict(os.environ)
        env.pop(collect.REEXEC_ENV, None)
        done = subprocess.run([sys.executable, os.path.join(HERE, "collect.py"), log, "--out", self.out,
                               "--readme", self.readme, "--commit", "abc"], capture_output=True, text=True, env=env)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("running again with", done.stderr)
        self.assert_plots()


if __name__ == "__main__":
    unittest.main()
