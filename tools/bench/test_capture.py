"""Tests for capture.py: a recorded raspi4b console replayed through a pty
(a serial line as the kernel sends it: CR LF, noise before the banner,
bytes after @exit), then collected with --accel hw.

Run: python3 -m unittest discover -s tools/bench -p 'test_*.py'
"""

import contextlib
import io
import json
import os
import shutil
import tempfile
import threading
import unittest

import benchlog
import capture

HERE = os.path.dirname(os.path.abspath(__file__))
# The quick demo's console from QEMU raspi4b (cargo run-rpi4 -- scale=quick),
# as the PL011 sent it: CR LF line ends.
RECORDED = os.path.join(HERE, "testdata", "raspi4b-quick-serial.log")
NOISE = b"\x00\xff\xfe\r\n"
AFTER_EXIT = b"(halted: power-cycle the board)\r\nnot part of the run\r\n"


class ReplayTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="test_capture.")
        with open(RECORDED, "rb") as f:
            self.recorded = f.read()
        self.master, self.slave = os.openpty()
        self.port = os.ttyname(self.slave)
        # Raw before the first byte arrives: a pty cooks input on arrival.
        capture.set_raw(self.slave, 115200)

    def tearDown(self):
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self.dir)

    def replay(self, data, chunk=997):
        def write():
            for i in range(0, len(data), chunk):
                os.write(self.master, data[i:i + chunk])

        t = threading.Thread(target=write, daemon=True)
        t.start()
        return t

    def run_capture(self, *extra):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc = capture.main([self.port, "--out", self.dir, "--quiet", *extra])
        return rc, err.getvalue()

    def test_recorded_log_is_a_serial_capture(self):
        self.assertIn(b"\r\n@exit status=0", self.recorded)

    def test_reads_until_exit_and_collects_as_hardware(self):
        writer = self.replay(NOISE + self.recorded + AFTER_EXIT)
        rc, err = self.run_capture()
        writer.join(5)
        self.assertEqual(rc, 0, err)
        with open(os.path.join(self.dir, "demo.log"), encoding="utf-8") as f:
            saved = f.read()
        self.assertNotIn("\r", saved)
        self.assertTrue(saved.rstrip("\n").endswith("@exit status=0 reason=success"))
        self.assertNotIn("not part of the run", saved)
        expected = self.recorded.decode("utf-8").replace("\r\n", "\n")
        self.assertTrue(saved.endswith(expected), "the recorded lines, in order, after the noise")
        with open(os.path.join(self.dir, "bench.json"), encoding="utf-8") as f:
            data = json.load(f)
        self.assertEqual((data["board"], data["accel"]), ("rpi4", "hw"))
        self.assertEqual(benchlog.validate(data), [])
        self.assertEqual(len(data["alloc"]) > 0, True)

    def test_no_exit_before_timeout_fails_and_keeps_the_log(self):
        cut = self.recorded[: self.recorded.index(b"@progress step=2 ")]
        writer = self.replay(cut)
        rc, err = self.run_capture("--timeout", "2", "--no-collect")
        writer.join(5)
        self.assertEqual(rc, 1)
        self.assertIn("no @exit line", err)
        with open(os.path.join(self.dir, "demo.log"), encoding="utf-8") as f:
            self.assertIn("@progress step=1 ", f.read())

    def test_unopenable_port_is_one_line(self):
        rc, err = self.run_capture_on(os.path.join(self.dir, "ttyNONE"))
        self.assertEqual(rc, 2)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertIn("cannot open", err)

    def run_capture_on(self, port):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc = capture.main([port, "--out", self.dir, "--quiet"])
        return rc, err.getvalue()


if __name__ == "__main__":
    unittest.main()
