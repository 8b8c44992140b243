"""Tests of the several-core parts of tools/bench: cores=K on the run lines,
the one-core comparison, @lock and @sched, their checks, the new target and
page sections, and the Linux reference's core count (stdlib unittest only).

Run: python3 -m unittest discover -s tools/bench -p 'test_*.py' -v
"""

import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import benchlog  # noqa: E402
import collect  # noqa: E402
from test_collect import ALLOCATORS, CMA_WORK, CONDITIONS, Workspace, alloc_line, linux_doc, make_log, samples  # noqa: E402

LOADED = CONDITIONS[1:]
RUN_TAGS = ("@alloc", "@latency", "@frames", "@cmawork")
RECORDED = os.path.join(HERE, "testdata", "raspi4b-quick-serial.log")


def lock_line(allocator, condition, cores, **override):
    fields = {"name": "memsys", "allocator": allocator, "condition": condition, "cores": cores,
              "acquisitions": 5000, "contended": 400 if cores > 1 else 0,
              "wait_p50_us": 0.1, "wait_p99_us": 3.0 if cores > 1 else 0.1, "wait_max_us": 25.0,
              "hold_p50_us": 0.5, "hold_p99_us": 4.0, "hold_max_us": 30.0}
    fields.update(override)
    return "@lock " + " ".join(f"{k}={v}" for k, v in fields.items())


def one_core_lines(allocator, condition, **override):
    """One camera run of the one-core comparison (cores=1): its lines."""
    lines = [alloc_line(allocator, condition, cores=1, **override),
             f"@latency allocator={allocator} condition={condition} pages=768 cores=1 us="
             + ",".join(str(x) for x in samples(allocator, condition, seed=2)),
             f"@frames allocator={allocator} condition={condition} frames=300 deadline_misses=0 "
             f"dropped={0 if allocator in ('gcma', 'carveout') else 5} hardware_ms=812.5 wake_late_ms=3.2 cores=1"]
    if allocator in ("cma", "cma-retry"):
        lines.append(f"@cmawork allocator={allocator} condition={condition} {CMA_WORK[condition]} cores=1")
    return lines


def make_smp_log(cores=2, one_core=None, comparison=True, locks=True, sched=True, skip=(), replace=None,
                 extra=()):
    """A log of a `cores`-core run: the main loop at cores=N, the one-core
    comparison (unless `comparison` is false; `one_core`: {(allocator,
    condition): @alloc overrides, or None: that run left out}), a @lock per
    run, @sched. `skip` and `replace` ({line prefix: new line}) apply to the
    finished lines."""
    added = [f"@sched cores={cores} placement=camera:0,load:1..{cores - 1}"] if sched else []
    for c in LOADED if comparison else ():
        for a in ALLOCATORS:
            override = (one_core or {}).get((a, c), {})
            added += [] if override is None else one_core_lines(a, c, **override)
    if locks:
        added += [lock_line(a, c, cores) for c in CONDITIONS for a in ALLOCATORS]
        added += [lock_line(a, c, 1) for c in LOADED for a in ALLOCATORS] if comparison else []
    lines = []
    for line in make_log(extra=added + list(extra)).split("\r\n"):
        if line.startswith("@bench"):
            line += f" cores={cores}"
        elif line.split(" ")[0] in RUN_TAGS and " cores=" not in line:
            line += f" cores={cores}"
        lines.append(line)
    lines = [l for l in lines if not any(s in l for s in skip)]
    for prefix, new in (replace or {}).items():
        lines = [new if l.startswith(prefix) else l for l in lines]
    return "\r\n".join(lines)


class CoresParseTest(unittest.TestCase):
    def test_runs_split_by_cores(self):
        parsed = benchlog.parse_lines(make_smp_log().splitlines())
        self.assertEqual(parsed.problems, [])
        self.assertEqual(parsed.warnings, [])
        self.assertEqual(parsed.cores, 2)
        self.assertEqual(len(parsed.rows["alloc"]), 20)
        self.assertIn(("gcma", "idle", 768), parsed.rows["alloc"])
        self.assertEqual(len(parsed.one_core_rows["alloc"]), 16)
        self.assertEqual(len(parsed.one_core_rows["frames"]), 16)
        self.assertNotIn(("gcma", "idle", 768), parsed.one_core_rows["alloc"])
        self.assertEqual(len(parsed.latency), 20)
        self.assertEqual(len(parsed.one_core_latency), 16)
        self.assertEqual((len(parsed.cma_work), len(parsed.one_core_cma_work)), (10, 8))
        self.assertEqual(len(parsed.locks), 36)
        self.assertEqual(parsed.locks[0], {
            "name": "memsys", "allocator": "gcma", "condition": "idle", "acquisitions": 5000, "contended": 400,
            "wait_p50_us": 0.1, "wait_p99_us": 3.0, "wait_max_us": 25.0, "hold_p50_us": 0.5, "hold_p99_us": 4.0,
            "hold_max_us": 30.0, "cores": 2})
        self.assertEqual(parsed.sched, {"cores": 2, "placement": "camera:0,load:1..1"})

    def test_lines_without_cores_are_one_core(self):
        parsed = benchlog.parse_lines(make_log().splitlines())
        self.assertEqual(parsed.cores, 1)
        self.assertEqual(len(parsed.rows["alloc"]), 20)
        self.assertEqual(parsed.one_core_rows["alloc"], {})
        # On a one-core boot cores=1 rows are the main rows.
        parsed = benchlog.parse_lines(make_smp_log(cores=1, comparison=False).splitlines())
        self.assertEqual((parsed.problems, len(parsed.rows["alloc"]), len(parsed.locks)), ([], 20, 20))

    def test_same_run_at_both_core_counts_is_no_duplicate(self):
        parsed = benchlog.parse_lines(make_smp_log(extra=[alloc_line("gcma", "anon", cores=1)]).splitlines())
        self.assertEqual(len(parsed.problems), 1)
        self.assertIn("second row for gcma/anon/768 at cores=1", parsed.problems[0])


class CoresJsonTest(Workspace):
    def test_json_fields(self):
        code, out, err = self.run_collect(make_smp_log())
        self.assertEqual(code, 0, err)
        self.assertIn("cores 2, one-core comparison 16/16, locks 36", out)
        data = self.bench_json()
        self.assertEqual(data["cores"], 2)
        self.assertEqual(data["sched"], {"cores": 2, "placement": "camera:0,load:1..1"})
        self.assertEqual({r["cores"] for r in data["alloc"] + data["frames"] + data["cma_work"]}, {2})
        one = data["one_core"]
        self.assertEqual(list(one), ["alloc", "frames", "cma_work"])
        self.assertEqual((len(one["alloc"]), len(one["frames"]), len(one["cma_work"])), (16, 16, 8))
        self.assertEqual({r["cores"] for r in one["alloc"] + one["frames"] + one["cma_work"]}, {1})
        self.assertEqual([(r["allocator"], r["condition"]) for r in one["alloc"]][:2],
                         [("gcma", "pagecache"), ("cma", "pagecache")])
        self.assertEqual([(r["allocator"], r["condition"], r["cores"]) for r in data["locks"]][:6],
                         [("gcma", "idle", 2), ("cma", "idle", 2), ("cma-retry", "idle", 2), ("carveout", "idle", 2),
                          ("gcma", "pagecache", 1), ("gcma", "pagecache", 2)])
        self.assertEqual(benchlog.validate(data), [])
        code, out, _ = self.check(make_smp_log())
        self.assertEqual(code, 0, out)

    def test_older_bench_json_still_validates(self):
        self.run_collect(make_log())
        data = self.bench_json()
        for key in ("cores", "sched", "one_core", "locks"):
            del data[key]
        for row in data["alloc"] + data["frames"] + data["cma_work"]:
            del row["cores"]
        del data["linux_cma"]["smp"]
        self.assertEqual(benchlog.validate(data), [])


class CoresCheckTest(Workspace):
    def assertProblems(self, text, *expected):
        code, out, _ = self.check(text)
        self.assertEqual(code, 1, out)
        for e in expected:
            self.assertIn(e, out)

    def test_bad_cores_values(self):
        bench = make_smp_log().replace(" photo_align_pages=256 cores=2", " photo_align_pages=256 cores=0")
        self.assertProblems(bench, "@bench: cores='0' is not a positive integer; assuming 1")
        self.assertProblems(make_smp_log(extra=[alloc_line("gcma", "anon", cores="two", pages=3038)]),
                            "@alloc: cores='two' is not a positive integer",
                            "@alloc: row ignored (no valid allocator/condition/pages/cores)")
        self.assertProblems(make_smp_log(extra=[alloc_line("gcma", "anon", cores=3, pages=3038)]),
                            "@alloc: cores=3 is neither 1 nor the @bench cores=2; left out")
        self.assertProblems(make_smp_log(extra=[lock_line("gcma", "anon", 4, name="other")]),
                            "@lock: cores=4 is neither 1 nor the @bench cores=2")
        self.assertProblems(make_smp_log(replace={"@sched": "@sched cores=4 placement=camera:0,load:1..3"}),
                            "@sched: cores=4 but @bench cores=2")

    def test_lock_order_and_counts(self):
        prefix = "@lock name=memsys allocator=cma condition=anon cores=2"
        self.assertProblems(make_smp_log(replace={prefix: lock_line("cma", "anon", 2, wait_p50_us=9.0)}),
                            "locks[cma/anon/2]: wait p50 <= p99 <= max does not hold (9.0, 3.0, 25.0)")
        self.assertProblems(make_smp_log(replace={prefix: lock_line("cma", "anon", 2, hold_max_us=1.0)}),
                            "locks[cma/anon/2]: hold p50 <= p99 <= max does not hold (0.5, 4.0, 1.0)")
        self.assertProblems(make_smp_log(replace={prefix: lock_line("cma", "anon", 2, contended=6000)}),
                            "locks[cma/anon/2]: contended=6000 > acquisitions=5000")
        self.assertProblems(make_smp_log(extra=[lock_line("cma", "anon", 2)]),
                            "locks[cma/anon/2]: second row for memsys at cma/anon/2")

    def test_comparison_coverage(self):
        self.assertProblems(make_smp_log(one_core={("gcma", "odirect"): None}),
                            "one_core.alloc: missing 1 row(s): gcma/odirect",
                            "one_core.frames: missing 1 row(s): gcma/odirect")
        # Without any comparison a several-core run is incomplete.
        self.assertProblems(make_smp_log(comparison=False), "one_core.alloc: missing 16 row(s)")

    def test_bench_json_cores_checks(self):
        self.run_collect(make_smp_log())
        data = self.bench_json()
        data["cores"] = "two"
        self.assertIn("cores: 'two' is not a positive integer", benchlog.validate(data))
        data = self.bench_json()
        data["alloc"][0]["cores"] = 1
        data["one_core"]["frames"][0]["cores"] = 2
        data["locks"][0]["contended"] = 6000
        data["sched"]["cores"] = 3
        text = "\n".join(benchlog.validate(data))
        for e in ("alloc[gcma/idle].cores: 1 is not 2", "one_core.frames[gcma/pagecache].cores: 2 is not 1",
                  "locks[gcma/idle/2]: contended=6000 > acquisitions=5000", "sched.cores: 3, but the run's cores is 2"):
            self.assertIn(e, text)
        data = self.bench_json()
        data["cores"] = 1
        for row in data["alloc"] + data["frames"] + data["cma_work"]:
            row["cores"] = 1
        data["sched"] = None
        self.assertIn("one_core: not null, but the run has one core (its rows are the top-level ones)",
                      benchlog.validate(data))


class CoresPageTest(Workspace):
    def page(self, text):
        code, _, err = self.run_collect(text)
        self.assertEqual(code, 0, err)
        with open(os.path.join(self.out, "README.md")) as f:
            return f.read()

    def target(self, page):
        name = "GCMA p99 with the load on other cores within 2x of its one-core p99"
        return next(l for l in page.splitlines() if l.startswith(f"| {name} "))

    def table(self, page, heading):
        section = page.split(f"## {heading}\n\n")[1]
        return next(b for b in section.split("\n\n") if b.startswith("|")).splitlines()

    def test_target_met(self):
        # The same samples at both core counts: every ratio 1.0x.
        self.assertRegex(self.target(self.page(make_smp_log())),
                         r"\| met +\| worst cores=2/cores=1 p99 = 1.0x .*all 4 condition/size pairs within")

    def test_target_missed_names_the_worst_pair(self):
        slow = {("gcma", "anon"): {"p50_us": 1.0, "p99_us": 2.0, "max_us": 2.0},
                ("gcma", "longpin"): {"p50_us": 5.0, "p99_us": 8.0, "max_us": 8.0}}
        row = self.target(self.page(make_smp_log(one_core=slow)))
        g_anon = samples("gcma", "anon")[-1]
        self.assertRegex(row, r"\| not met +\| worst cores=2/cores=1 p99 = [\d.]+x \(anon/768 pages: ")
        self.assertIn(f"{g_anon:.1f} µs against 2.00 µs", row)
        self.assertIn("over 2x at anon/768, longpin/768", row)

    def test_target_not_measured_without_comparison(self):
        self.assertRegex(self.target(self.page(make_log())), r"\| not measured +\| one core: a one-core boot")
        self.assertRegex(self.target(self.page(make_smp_log(comparison=False))),
                         r"\| not measured +\| no cores=1 comparison runs in this 2-core run")

    def test_sections_present_and_aligned(self):
        page = self.page(make_smp_log(one_core={("gcma", "anon"): {"p50_us": 1.0, "p99_us": 2.0, "max_us": 2.0}}))
        self.assertIn("## One core and several", page)
        self.assertIn("the camera task alone on core 0, the background load tasks (page-cache readers, anonymous "
                      "memory, O_DIRECT-like pinners, long pins) on core 1", page)
        self.assertIn("The scheduler reported `camera:0,load:1..1` (`@sched`)", page)
        self.assertIn("| @sched        | cores=2 placement=camera:0,load:1..1", page)
        table = self.table(page, "One core and several")
        self.assertEqual(len(table), 2 + 16)
        self.assertEqual(len({len(l) for l in table}), 1, "rows of one table have the same width")
        self.assertIn("p99 2 cores (µs)", table[0])
        anon = next(l for l in table if l.startswith("| GCMA ") and "| anon " in l)
        g = samples("gcma", "anon")[-1]
        self.assertRegex(anon, rf"\|\s+2.00 \|\s+[\d.]+ \|\s+{g:.1f} \|\s+{g / 2:.1f}x \|\s+100.0% / 100.0% \|\s+0 / 0 \|$")
        cma = next(l for l in table if l.startswith("| CMA ") and "| longpin " in l)
        self.assertRegex(cma, r"\|\s+5 / 6 \|$")
        self.assertIn("## The memory-state locks", page)
        locks = self.table(page, "The memory-state locks")
        self.assertEqual(len(locks), 2 + 36)
        self.assertEqual(len({len(l) for l in locks}), 1)
        self.assertRegex(locks[2], r"^\| GCMA +\| idle +\| +2 \| +5,000 \| +400 \| +8.0% \| +3.00 \| +25.0 \| +4.00 \| +30.0 \|$")
        self.assertIn("Most contended: GCMA under idle at cores=2, 8.0% of 5,000 acquisitions waited.", page)

    def test_lock_sites(self):
        areas = lock_line("gcma", "pagecache", 2, name="areas")
        site = ("@locksite name=areas hold_max_us=30.0 hold_max_at=kernel/src/memsys/cleancache_hooks.rs:40 "
                "wait_max_us=25.0 wait_max_at=kernel/src/memsys/mod.rs:300 "
                "wait_max_behind=kernel/src/memsys/cleancache_hooks.rs:40")
        text = make_smp_log(extra=[areas, site])
        parsed = benchlog.parse_lines(text.splitlines())
        self.assertEqual(parsed.problems, [])
        row = next(r for r in parsed.locks if r["name"] == "areas" and r["allocator"] == "gcma"
                   and r["condition"] == "pagecache" and r["cores"] == 2)
        self.assertEqual((row["hold_max_at"], row["wait_max_at"], row["wait_max_behind"]),
                         ("kernel/src/memsys/cleancache_hooks.rs:40", "kernel/src/memsys/mod.rs:300",
                          "kernel/src/memsys/cleancache_hooks.rs:40"))
        page = self.page(text)
        self.assertIn("- GCMA/pagecache at cores=2, areas: longest wait 25.0 µs asked at `kernel/src/memsys/mod.rs:300`, "
                      "behind a hold taken at `kernel/src/memsys/cleancache_hooks.rs:40`; longest hold 30.0 µs taken "
                      "at `kernel/src/memsys/cleancache_hooks.rs:40`.", page)
        self.assertEqual(benchlog.validate(self.bench_json()), [])
        # "-" is no site; a site line with no @lock before it is a problem.
        none = site.replace("wait_max_behind=kernel/src/memsys/cleancache_hooks.rs:40", "wait_max_behind=-")
        parsed = benchlog.parse_lines(make_smp_log(extra=[areas, none]).splitlines())
        self.assertEqual(next(r for r in parsed.locks if "wait_max_behind" in r)["wait_max_behind"], None)
        parsed = benchlog.parse_lines(make_smp_log(extra=[site.replace("name=areas", "name=other")]).splitlines())
        self.assertTrue(any("@locksite: no @lock line for name='other' before it" in p for p in parsed.problems),
                        parsed.problems)
        data = self.bench_json()
        data["locks"][0]["wait_max_at"] = 7
        self.assertIn("locks[gcma/idle/2].wait_max_at: 7 is not a non-empty string",
                      "\n".join(benchlog.validate(data)))

    def test_copy_waits(self):
        areas = lock_line("gcma", "pagecache", 2, name="areas")
        site = ("@locksite name=areas hold_max_us=30.0 hold_max_at=kernel/src/memsys/cleancache_hooks.rs:40 "
                "wait_max_us=25.0 wait_max_at=kernel/src/memsys/mod.rs:300 wait_max_behind=-")
        copy = "@copywait allocator=gcma condition=pagecache cores=2 waits=3 wait_max_us=12.5"
        parsed = benchlog.parse_lines(make_smp_log(extra=[areas, site, copy]).splitlines())
        self.assertEqual(parsed.problems, [])
        row = next(r for r in parsed.locks if r["name"] == "areas" and r["allocator"] == "gcma"
                   and r["condition"] == "pagecache" and r["cores"] == 2)
        self.assertEqual((row["copy_waits"], row["copy_wait_max_us"]), (3, 12.5))
        page = self.page(make_smp_log(extra=[areas, site, copy]))
        self.assertIn("asked at `kernel/src/memsys/mod.rs:300`; longest hold 30.0 µs taken at "
                      "`kernel/src/memsys/cleancache_hooks.rs:40`; 3 allocations waited for a cleancache copy "
                      "in flight, longest 12.5 µs.", page)
        # Another run's line, or none before it, is a problem; a bad count too.
        other = copy.replace("condition=pagecache", "condition=anon")
        parsed = benchlog.parse_lines(make_smp_log(extra=[areas, site, other]).splitlines())
        self.assertTrue(any("@copywait: no areas @lock line of the same run before it" in p
                            for p in parsed.problems), parsed.problems)
        parsed = benchlog.parse_lines(make_smp_log(extra=[areas, site, copy.replace("waits=3", "waits=x")])
                                      .splitlines())
        self.assertTrue(any("@copywait" in p for p in parsed.problems), parsed.problems)

    def test_lock_section_alone(self):
        # A one-core boot with @lock lines: the lock table, no comparison.
        page = self.page(make_smp_log(cores=1, comparison=False))
        self.assertNotIn("## One core and several", page)
        self.assertIn("## The memory-state locks", page)

    def test_older_logs_render_without_the_new_sections(self):
        with open(RECORDED, encoding="utf-8", errors="replace") as f:
            recorded = f.read()
        for text in (make_log(), recorded):
            page = self.page(text)
            self.assertNotIn("## One core and several", page)
            self.assertNotIn("## The memory-state locks", page)
            self.assertIn("## Camera frames", page)
            self.assertIn("The Linux reference ran on 1 core (`-smp 1`), as this run did.", page)

    def test_linux_core_count_differs(self):
        page = self.page(make_smp_log())
        self.assertIn("**Not the same core count:** the Linux reference ran on 1 core (`-smp 1`), this run on "
                      "2 cores (camera on core 0, load on core 1)", page)
        linux = page.split("## Linux CMA beside our CMA model\n\n")[1].split("\n## ")[0]
        self.assertIn("**Not the same core count:**", linux)
        headline = page.split("## Headline\n\n")[1].split("\n## ")[0]
        self.assertIn("**Not the same core count:**", headline)
        doc = linux_doc()
        doc["boot"]["smp"] = 2
        self.write_linux(doc)
        page = self.page(make_smp_log())
        self.assertNotIn("Not the same core count", page)
        self.assertIn("The Linux reference ran on 2 cores (`-smp 2`), as this run did.", page)


def with_progress(text):
    """`text` with an `@progress step=K` line before the first @alloc of
    every run (allocator, condition, cores), as the kernel prints one at
    the start of each demo step; returns (text, {step: run})."""
    lines, runs, last = [], {}, None
    for line in text.split("\r\n"):
        if line.startswith("@alloc "):
            f = dict(x.split("=", 1) for x in line.split()[1:] if "=" in x)
            run = (f["allocator"], f["condition"], int(f.get("cores", "1")))
            if run != last:
                runs[len(runs) + 1] = run
                lines.append(f"@progress step={len(runs)} of=99 what=x")
                last = run
        lines.append(line)
    return "\r\n".join(lines), runs


class HostSchedPageTest(Workspace):
    """hostsched.tsv beside the log: bench.json's `host` rows and the page's
    Host CPU section and one-core column."""

    def test_host_section(self):
        text, runs = with_progress(make_smp_log())
        tsv = ["# QEMU pid 1; host cores 2; schedstat every 50 ms", "step\tt_ms\ttid\tthread\trun_ms\twait_ms"]
        run_ms = wait_ms = 0.0
        for i, step in enumerate(list(runs) + ["end"]):
            tsv += [f"{step}\t{2000.0 * i}\t2\tCPU 0/TCG\t{run_ms}\t{wait_ms}",
                    f"{step}\t{2000.0 * i}\t3\tCPU 1/TCG\t{run_ms}\t0.0"]
            run = runs.get(step)
            run_ms += 500.0
            wait_ms += 300.0 if run == ("gcma", "pagecache", 2) else 10.0
        with open(os.path.join(self.dir, "hostsched.tsv"), "w") as f:
            f.write("\n".join(tsv) + "\n")
        code, _, err = self.run_collect(text)
        self.assertEqual(code, 0, err)
        rows = self.bench_json()["host"]["rows"]
        self.assertEqual(len(rows), len(runs))
        by_run = {(r["allocator"], r["condition"], r["cores"]): r for r in rows}
        self.assertEqual(by_run[("gcma", "pagecache", 2)]["camera_wait_pct"], 15.0)
        self.assertEqual(by_run[("gcma", "pagecache", 1)]["camera_wait_pct"], 0.5)
        with open(os.path.join(self.out, "README.md")) as f:
            page = f.read()
        host = self.table_in(page, "Host CPU")
        self.assertIn("camera vCPU waited", host[0])
        self.assertTrue(any(l.startswith("| GCMA ") and " pagecache " in l and "15.0%" in l for l in host), host)
        self.assertIn("Longest wait for the host: the camera vCPU under GCMA/pagecache at cores=2, ready but not "
                      "running 15.0% of the run", page)
        one = self.table_in(page, "One core and several")
        self.assertIn("camera vCPU waited for the host 1 / 2", one[0])
        self.assertTrue(any(l.startswith("| GCMA ") and " pagecache " in l and "0.5% / 15.0%" in l for l in one),
                        one)
        self.assertIsNone(self.bench_json()["host"]["policy"])
        self.assertIn("policy of QEMU's threads in this boot: all normal", page)
        # The sampler's policy line reaches bench.json and the page.
        tsv.insert(2, "# host policy: CPU 0/TCG (camera core 0) SCHED_FIFO priority 10, normal in the one-core steps; other threads normal")
        with open(os.path.join(self.dir, "hostsched.tsv"), "w") as f:
            f.write("\n".join(tsv) + "\n")
        code, _, err = self.run_collect(text)
        self.assertEqual(code, 0, err)
        self.assertEqual(self.bench_json()["host"]["policy"],
                         "CPU 0/TCG (camera core 0) SCHED_FIFO priority 10, normal in the one-core steps; other threads normal")
        self.assertEqual(len(self.bench_json()["host"]["rows"]), len(runs))
        with open(os.path.join(self.out, "README.md")) as f:
            self.assertIn("in this boot: CPU 0/TCG (camera core 0) SCHED_FIFO priority 10", f.read())
        # Without the file: no section, no column.
        os.remove(os.path.join(self.dir, "hostsched.tsv"))
        code, _, err = self.run_collect(text)
        self.assertEqual((code, self.bench_json()["host"]), (0, None), err)
        with open(os.path.join(self.out, "README.md")) as f:
            page = f.read()
        self.assertNotIn("## Host CPU", page)
        self.assertNotIn("waited for the host", page)

    def table_in(self, page, heading):
        section = page.split(f"## {heading}\n\n")[1]
        return next(b for b in section.split("\n\n") if b.startswith("|")).splitlines()


class DefaultLinuxReferenceTest(unittest.TestCase):
    """Without --linux-cma: the -smp N reference when the run has N cores
    and it exists, else the one-core one."""

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="bench-linux-")
        os.makedirs(os.path.join(self.root, "results"))
        self.saved, collect.REPO_ROOT = collect.REPO_ROOT, self.root
        self.write("linux-cma-align256.json", 1)

    def tearDown(self):
        collect.REPO_ROOT = self.saved
        shutil.rmtree(self.root, ignore_errors=True)

    def write(self, name, smp):
        doc = linux_doc()
        doc["boot"]["smp"] = smp
        with open(os.path.join(self.root, "results", name), "w") as f:
            json.dump(doc, f)

    def collect(self, text):
        log = os.path.join(self.root, "demo.log")
        with open(log, "w") as f:
            f.write(text)
        out = os.path.join(self.root, "out")
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            self.assertEqual(collect.main([log, "--out", out, "--no-plots", "--commit", "x"]), 0)
        with open(os.path.join(out, "bench.json")) as f:
            return json.load(f)["linux_cma"], err.getvalue()

    def test_fallback_to_one_core_reference(self):
        ref, err = self.collect(make_smp_log())
        self.assertEqual((ref["source"], ref["smp"]), ("results/linux-cma-align256.json", 1))
        self.assertIn("no results/linux-cma-align256-smp2.json: comparing this 2-core run with the one-core", err)

    def test_smp_reference_preferred(self):
        self.write("linux-cma-align256-smp2.json", 2)
        ref, err = self.collect(make_smp_log())
        self.assertEqual((ref["source"], ref["smp"]), ("results/linux-cma-align256-smp2.json", 2))
        self.assertNotIn("linux-cma-align256-smp2", err)
        # A one-core run keeps the one-core reference.
        ref, _ = self.collect(make_log())
        self.assertEqual((ref["source"], ref["smp"]), ("results/linux-cma-align256.json", 1))


if __name__ == "__main__":
    unittest.main()
