"""tools/bench/hostsched.py: the sampler against a real process, the
per-step differences, and the rows collect.py puts into bench.json."""

import os
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import hostsched  # noqa: E402

TSV = """# QEMU pid 42; host cores 2; schedstat every 50 ms
step\tt_ms\ttid\tthread\trun_ms\twait_ms
1\t0.0\t42\tqemu-system-aar\t10.000\t0.000
1\t0.0\t43\tCPU 0/TCG\t5.000\t1.000
1\t0.0\t44\tCPU 1/TCG\t5.000\t0.000
2\t1000.0\t42\tqemu-system-aar\t110.000\t0.000
2\t1000.0\t43\tCPU 0/TCG\t805.000\t51.000
2\t1000.0\t44\tCPU 1/TCG\t905.000\t20.000
3\t3000.0\t42\tqemu-system-aar\t510.000\t0.000
3\t3000.0\t43\tCPU 0/TCG\t1805.000\t451.000
3\t3000.0\t44\tCPU 1/TCG\t905.000\t20.000
3\t3000.0\t45\tworker\t100.000\t0.000
end\t3500.0\t42\tqemu-system-aar\t520.000\t0.000
end\t3500.0\t43\tCPU 0/TCG\t1905.000\t451.000
end\t3500.0\t44\tCPU 1/TCG\t905.000\t20.000
"""

LOG = """boot
@progress step=1 of=3 what=scan
@scan readahead=on pages=10
@progress step=2 of=3 what=gcma/pagecache
@alloc allocator=gcma condition=pagecache cores=2 pages=760 attempts=1 successes=1 p50_us=1 p99_us=1 max_us=1
@progress step=3 of=3 what=gcma/pagecache
@frames allocator=gcma condition=pagecache cores=1 frames=1 deadline_misses=0 dropped=0
""".splitlines()


class ReadingTest(unittest.TestCase):
    def test_parse_groups_threads_by_snapshot(self):
        snaps = hostsched.parse(TSV)
        self.assertEqual([(s, t, len(th)) for s, t, th in snaps],
                         [(1, 0.0, 3), (2, 1000.0, 3), (3, 3000.0, 4), (hostsched.END, 3500.0, 3)])
        self.assertEqual(snaps[0][2][43], ("CPU 0/TCG", 5.0, 1.0))
        self.assertEqual(hostsched.host_cores(TSV), 2)

    def test_steps_are_differences_of_snapshots(self):
        d = hostsched.steps(hostsched.parse(TSV))
        self.assertEqual(sorted(d), [1, 2, 3])
        self.assertEqual(d[1], {"wall_ms": 1000.0, "vcpus": {0: (800.0, 50.0), 1: (900.0, 20.0)},
                                "other": (100.0, 0.0)})
        # The worker appears in step 3's own snapshot, so it is in step 2's
        # window from 0; CPU 1 did not move.
        self.assertEqual(d[2]["vcpus"], {0: (1000.0, 400.0), 1: (0.0, 0.0)})
        self.assertEqual(d[2]["other"], (500.0, 0.0))
        # A thread gone from the later snapshot is left out, not negative.
        self.assertEqual(d[3]["other"], (10.0, 0.0))

    def test_vcpu_names(self):
        self.assertEqual([hostsched.vcpu_index(n) for n in ("CPU 0/TCG", "CPU 12/TCG", "CPU x/TCG", "worker")],
                         [0, 12, None, None])

    def test_step_runs_take_the_first_camera_line_after_progress(self):
        self.assertEqual(hostsched.step_runs(LOG), {2: ("gcma", "pagecache", 2), 3: ("gcma", "pagecache", 1)})

    def test_host_rows(self):
        rows = hostsched.host_rows(TSV, LOG)
        self.assertEqual(len(rows), 2)  # step 1 is a scan: no camera run
        two, one = rows
        self.assertEqual(two, {"allocator": "gcma", "condition": "pagecache", "cores": 2, "step": 2,
                               "wall_s": 2.0, "camera_run_pct": 50.0, "camera_wait_pct": 20.0,
                               "load_run_pct": 0.0, "load_wait_pct": 0.0, "main_run_pct": 25.0,
                               "qemu_cores": 0.75})
        # At cores=1 the load ran on core 0 too: no load vCPU figures.
        self.assertEqual((one["cores"], one["load_run_pct"], one["load_wait_pct"], one["camera_wait_pct"]),
                         (1, None, None, 0.0))

    def test_bad_line_is_an_error(self):
        with self.assertRaises(ValueError):
            hostsched.parse("1\t0.0\t42\tqemu\n")

    def test_camera_core_from_the_placement(self):
        self.assertEqual([hostsched.camera_core(line) for line in (
            "@sched cores=2 placement=camera:0,load:1..1",
            "@sched cores=4 placement=load:0..2,camera:3",
            "@sched cores=1 placement=camera:0,load:0..0",
            "@progress step=1 of=2 what=x",
            "@sched cores=2 placement=load:1..1",
        )], [0, 3, None, None, None])

    def test_policy_line_is_read_and_left_out_of_the_snapshots(self):
        lines = TSV.splitlines(keepends=True)
        text = "".join(lines[:5]) + hostsched.POLICY + "CPU 0/TCG SCHED_FIFO priority 10\n" + "".join(lines[5:])
        self.assertEqual(hostsched.policy(text), "CPU 0/TCG SCHED_FIFO priority 10")
        self.assertEqual(hostsched.parse(text), hostsched.parse(TSV))
        self.assertIsNone(hostsched.policy(TSV))


BUSY = r"""
import os, sys, threading, time
def spin(stop):
    while time.monotonic() < stop:
        pass
stop = time.monotonic() + float(sys.argv[2])
def named(stop):
    # The name QEMU gives its first vCPU thread, as the host sees it.
    with open(f"/proc/self/task/{threading.get_native_id()}/comm", "w") as f:
        f.write("CPU 0/TCG")
    spin(stop)
t = threading.Thread(target=named, args=(stop,))
t.start()
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
spin(stop)
t.join()
"""


def start(d, *args, seconds=1.5):
    """A busy process (BUSY, `seconds` long) and the sampler following it:
    (log, out, busy, sampler)."""
    pidfile, log, out = (os.path.join(d, n) for n in ("q.pid", "demo.log", "hostsched.tsv"))
    open(log, "w").close()
    busy = subprocess.Popen([sys.executable, "-c", BUSY, pidfile, str(seconds)])
    sampler = subprocess.Popen([sys.executable, os.path.join(HERE, "hostsched.py"), "sample",
                                "--pidfile", pidfile, "--log", log, "--out", out, *args],
                               stderr=subprocess.PIPE, text=True)
    return log, out, busy, sampler


class SamplerTest(unittest.TestCase):
    def finish(self, busy, sampler):
        """Waits for the busy process and the sampler (both end by
        themselves once the busy process ends); the sampler's stderr."""
        try:
            self.assertEqual(busy.wait(timeout=30), 0)
            _, err = sampler.communicate(timeout=30)
        finally:
            busy.kill()
            sampler.kill()
        self.assertEqual(sampler.returncode, 0, err)
        return err

    def test_sampler_follows_the_log_and_measures_the_threads(self):
        with tempfile.TemporaryDirectory() as d:
            log, out, busy, sampler = start(d)
            for step in (1, 2):
                time.sleep(0.5)
                with open(log, "a") as f:
                    f.write(f"@progress step={step} of=2 what=x\n")
            err = self.finish(busy, sampler)
            self.assertIn("2 steps sampled", err)
            with open(out) as f:
                snaps = hostsched.parse(f.read())
            self.assertEqual([s for s, _, _ in snaps], [1, 2, hostsched.END])
            # Both threads of the busy process while it ran (at its exit the
            # second one may have ended first).
            self.assertEqual([len(th) for _, _, th in snaps[:2]], [2, 2], snaps)
            d = hostsched.steps(snaps)
            # Step 1 lasted about 0.5 s, and the two spinning threads ran for
            # some of it (a two-core host can give them all of it).
            self.assertGreater(d[1]["wall_ms"], 300)
            self.assertLess(d[1]["wall_ms"], 1500)
            ran = d[1]["other"][0]
            self.assertGreater(ran, 0.2 * d[1]["wall_ms"])
            self.assertLessEqual(ran, 2.2 * d[1]["wall_ms"])

    def test_camera_rt_puts_the_camera_vcpu_under_sched_fifo(self):
        with tempfile.TemporaryDirectory() as d:
            log, out, busy, sampler = start(d, "--camera-rt", "5", seconds=3)
            time.sleep(0.5)
            tid = next(int(t) for t in os.listdir(f"/proc/{busy.pid}/task")
                       if open(f"/proc/{busy.pid}/task/{t}/comm").read().strip() == "CPU 0/TCG")

            def policy_after(line, want):
                """The thread's (policy, priority) once it is `want` (or
                after 2 s) when `line` reaches the log."""
                with open(log, "a") as f:
                    f.write(line + "\n")
                for _ in range(40):
                    time.sleep(0.05)
                    got = (os.sched_getscheduler(tid), os.sched_getparam(tid).sched_priority)
                    if got == want:
                        break
                return got

            fifo, other = (os.SCHED_FIFO, 5), (os.SCHED_OTHER, 0)
            root = os.geteuid() == 0
            seen = [policy_after("@sched cores=2 placement=camera:0,load:1..1", fifo if root else other),
                    policy_after("@progress step=1 of=2 what=gcma/pagecache/one-core", other),
                    policy_after("@progress step=2 of=2 what=gcma/odirect", fifo if root else other)]
            err = self.finish(busy, sampler)
            with open(out) as f:
                text = hostsched.policy(f.read())
            if root:
                # Real-time with the load on other cores, normal in the
                # one-core step, real-time again after it.
                self.assertEqual(seen, [fifo, other, fifo], err)
                self.assertEqual(text, "CPU 0/TCG (camera core 0) SCHED_FIFO priority 5, normal in the one-core "
                                       "steps; other threads normal")
            else:
                self.assertEqual(seen, [other] * 3)
                self.assertIn("refused", text)

    def test_no_pid_file(self):
        with tempfile.TemporaryDirectory() as d:
            code = hostsched.sample(os.path.join(d, "none.pid"), os.path.join(d, "log"),
                                    os.path.join(d, "out"), wait_s=0.3)
            self.assertEqual(code, 1)


if __name__ == "__main__":
    unittest.main()
