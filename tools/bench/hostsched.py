#!/usr/bin/env python3
"""How much host CPU each QEMU thread got during each demo step.

Under TCG a vCPU is a host thread. When the host has fewer cores than QEMU
has busy threads (two vCPUs and the main loop, which emulates the block
device, on a two-core machine), a vCPU thread that is ready to run waits
for a host core, and the guest sees that wait as time: its counter runs on
the host clock. A GCMA allocation that takes 200 µs of guest work then
takes milliseconds. This tool measures that wait so that the results page
can say which runs had it.

Sampler (qemu-run.sh starts it beside every demo boot):

    hostsched.py sample --pidfile QEMU.PID --log demo.log --out hostsched.tsv

It waits for QEMU's pid file, then every 50 ms reads, for each of QEMU's
threads, /proc/PID/task/TID/schedstat: time run on a host core and time
spent ready but waiting for one (the kernel's run_delay), both in ns. It
follows the console log as it grows and, at every `@progress` line (the
start of a demo step) and when QEMU exits, writes one snapshot of every
thread, so each step's figures are the difference of two snapshots. QEMU
names its vCPU threads `CPU N/TCG` when run with `-name ...,debug-threads=on`.

With `--camera-rt PRIO` the sampler also gives the camera core's vCPU
thread the host's real-time policy (SCHED_FIFO at PRIO) once the kernel
names that core (`@sched cores=N placement=camera:C,...`, N of 2 or more),
so that the camera's core, which on a board is a core of its own, never
waits for a host core behind the load's vCPUs or QEMU's main loop. In the
one-core comparison's steps (`@progress ... what=.../one-core`) that
thread runs everything and is put back to the normal policy: a real-time
thread busy all the time is held off by the host's RT throttling (tens of
ms at a time), and with the load on its own core the camera vCPU already
has a host core to itself (it waited 0.0-0.2% of those runs, measured).
The sampler writes what it did in a `# host policy: ...` line, read by
`policy(text)`.

Reading (collect.py): `parse(text)` returns the snapshots and `steps(...)`
the per-step differences. Stdlib only.
"""

import argparse
import os
import sys
import time

PROG = "hostsched"
HEADER = ("step", "t_ms", "tid", "thread", "run_ms", "wait_ms")
END = "end"


def say(message):
    print(f"{PROG}: {message}", file=sys.stderr)


# --- sampling ------------------------------------------------------------------


def read_threads(pid):
    """{tid: (name, run_ns, wait_ns)} for every thread of `pid`; None once
    the process is gone."""
    base = f"/proc/{pid}/task"
    try:
        tids = os.listdir(base)
    except OSError:
        return None
    out = {}
    for tid in tids:
        try:
            with open(f"{base}/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"{base}/{tid}/schedstat") as f:
                run_ns, wait_ns = (int(x) for x in f.read().split()[:2])
        except (OSError, ValueError):
            continue  # the thread ended between listdir and the read
        out[int(tid)] = (name, run_ns, wait_ns)
    return out


def snapshot_lines(step, t_ns, threads):
    return [f"{step}\t{t_ns / 1e6:.1f}\t{tid}\t{name}\t{run / 1e6:.3f}\t{wait / 1e6:.3f}\n"
            for tid, (name, run, wait) in sorted(threads.items())]


POLICY = "# host policy: "


def progress_step(line):
    """N for a `@progress step=N ...` line, else None."""
    if line.startswith("@progress "):
        for field in line.split()[1:]:
            if field.startswith("step="):
                return field[5:]
    return None


def camera_core(line):
    """C for a `@sched cores=N placement=camera:C,...` line with N >= 2,
    else None (one core: the camera shares it with the load)."""
    if not line.startswith("@sched "):
        return None
    fields = dict(f.split("=", 1) for f in line.split()[1:] if "=" in f)
    if not fields.get("cores", "").isdigit() or int(fields["cores"]) < 2:
        return None
    for part in fields.get("placement", "").split(","):
        if part.startswith("camera:") and part[7:].isdigit():
            return int(part[7:])
    return None


def one_core_step(line):
    """True for the `@progress` line of a one-core comparison step."""
    return line.startswith("@progress ") and any(
        f.startswith("what=") and f.endswith("/one-core") for f in line.split()[1:])


def set_fifo(tid, prio):
    """SCHED_FIFO at `prio` for `tid`, or the normal policy for prio 0."""
    if prio > 0:
        os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(prio))
    else:
        os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))


def make_camera_rt(pid, core, prio, threads):
    """Puts the `CPU core/TCG` thread of `pid` under SCHED_FIFO at `prio`:
    (the policy line's text, what was done or why not; the thread's tid,
    or None if it was left normal)."""
    name = f"CPU {core}/TCG"
    tids = [tid for tid, (n, _, _) in threads.items() if n == name]
    if not tids:
        return f"normal (no thread named {name!r} in QEMU {pid})", None
    if (os.cpu_count() or 1) < 2:
        return "normal (one host core: a real-time vCPU would starve the others)", None
    try:
        set_fifo(tids[0], prio)
    except OSError as e:
        return f"normal (SCHED_FIFO for {name} refused: {e.strerror})", None
    return (f"{name} (camera core {core}) SCHED_FIFO priority {prio}, normal in the one-core steps; "
            "other threads normal"), tids[0]


def sample(pidfile, log, out, interval=0.05, wait_s=120.0, camera_rt=0):
    deadline = time.monotonic() + wait_s
    pid = None
    while time.monotonic() < deadline:
        try:
            with open(pidfile) as f:
                pid = int(f.read().strip())
            break
        except (OSError, ValueError):
            time.sleep(0.1)
    if pid is None:
        say(f"no QEMU pid in {pidfile} after {wait_s:.0f} s; no host figures for this run")
        return 1
    start = time.monotonic_ns()
    last = read_threads(pid) or {}
    pos, tail, written, policy_set, rt_tid = 0, "", 0, None, None
    with open(out, "w") as o:
        o.write(f"# QEMU pid {pid}; host cores {os.cpu_count()}; schedstat every {interval * 1000:.0f} ms\n")
        o.write("\t".join(HEADER) + "\n")
        while True:
            now = read_threads(pid)
            t = time.monotonic_ns() - start
            if now is None:
                break
            last = now
            try:
                with open(log, "rb") as f:
                    f.seek(pos)
                    data = f.read()
            except OSError:
                data = b""
            if data:
                pos += len(data)
                text = tail + data.decode("utf-8", "replace")
                cut = text.rfind("\n") + 1
                text, tail = text[:cut], text[cut:]
                for line in text.split("\n"):
                    step = progress_step(line)
                    if step is not None:
                        o.writelines(snapshot_lines(step, t, last))
                        written += 1
                        if rt_tid is not None:
                            try:
                                set_fifo(rt_tid, 0 if one_core_step(line) else camera_rt)
                            except OSError as e:
                                say(f"host policy of step {step} not changed: {e.strerror}")
                    core = camera_core(line)
                    if core is not None and camera_rt > 0 and policy_set is None:
                        policy_set, rt_tid = make_camera_rt(pid, core, camera_rt, last)
                        o.write(POLICY + policy_set + "\n")
                        say(f"host policy: {policy_set}")
                o.flush()
            time.sleep(interval)
        o.writelines(snapshot_lines(END, time.monotonic_ns() - start, last))
    say(f"{written} steps sampled; {out}")
    return 0


# --- reading -------------------------------------------------------------------


def parse(text):
    """[(step, t_ms, {tid: (name, run_ms, wait_ms)})] in file order; the
    step is an int, or END for the snapshot at QEMU's exit."""
    snaps = []
    for line in text.splitlines():
        if not line or line.startswith("#") or line.startswith(HEADER[0] + "\t"):
            continue
        cells = line.split("\t")
        if len(cells) != len(HEADER):
            raise ValueError(f"hostsched: {len(cells)} fields, want {len(HEADER)}: {line!r}")
        step = END if cells[0] == END else int(cells[0])
        t, tid, name, run, wait = float(cells[1]), int(cells[2]), cells[3], float(cells[4]), float(cells[5])
        if not snaps or snaps[-1][0] != step or snaps[-1][1] != t:
            snaps.append((step, t, {}))
        snaps[-1][2][tid] = (name, run, wait)
    return snaps


def policy(text):
    """The sampler's `# host policy: ...` text, or None (no real-time
    vCPU was asked for, or the kernel ran on one core)."""
    for line in text.splitlines():
        if line.startswith(POLICY):
            return line[len(POLICY):].strip()
    return None


def host_cores(text):
    for line in text.splitlines()[:1]:
        words = line.split()
        if "cores" in words:
            try:
                return int(words[words.index("cores") + 1].rstrip(";"))
            except (IndexError, ValueError):
                return None
    return None


def vcpu_index(name):
    """N for QEMU's `CPU N/TCG` thread name, else None."""
    if name.startswith("CPU ") and name.endswith("/TCG"):
        digits = name[4:-4]
        return int(digits) if digits.isdigit() else None
    return None


def steps(snaps):
    """{step: {"wall_ms", "vcpus": {N: (run_ms, wait_ms)}, "other": (run_ms,
    wait_ms)}} between each step's snapshot and the next one. A thread that
    appears only in the later snapshot counts from 0."""
    out = {}
    for (step, t0, a), (_, t1, b) in zip(snaps, snaps[1:]):
        if step == END:
            continue
        vcpus, other = {}, [0.0, 0.0]
        for tid, (name, run, wait) in b.items():
            _, run0, wait0 = a.get(tid, (name, 0.0, 0.0))
            d = (max(0.0, run - run0), max(0.0, wait - wait0))
            n = vcpu_index(name)
            if n is None:
                other[0] += d[0]
                other[1] += d[1]
            else:
                vcpus[n] = d
        out[step] = {"wall_ms": t1 - t0, "vcpus": vcpus, "other": tuple(other)}
    return out


def step_runs(lines):
    """{step: (allocator, condition, cores)} from a console log: the first
    `@alloc` or `@frames` line after each `@progress step=N` (steps with
    neither, such as the scans, are left out)."""
    out, step = {}, None
    for line in lines:
        if line.startswith("@progress "):
            fields = dict(f.split("=", 1) for f in line.split()[1:] if "=" in f)
            step = int(fields["step"]) if fields.get("step", "").isdigit() else None
        elif step is not None and step not in out and line.startswith(("@alloc ", "@frames ")):
            fields = dict(f.split("=", 1) for f in line.split()[1:] if "=" in f)
            cores = fields.get("cores", "1")
            if "allocator" in fields and "condition" in fields and cores.isdigit():
                out[step] = (fields["allocator"], fields["condition"], int(cores))
    return out


def pct(part, whole):
    return round(100.0 * part / whole, 1) if whole > 0 else None


def host_rows(text, log_lines):
    """bench.json's `host` rows: per camera run, the wall time, how much of
    it the camera core's vCPU (core 0) ran and how much it waited for a
    host core, the same for the other vCPUs together, and the host cores
    all of QEMU's threads used on average."""
    runs = step_runs(log_lines)
    rows = []
    for step, d in sorted(steps(parse(text)).items()):
        if step not in runs or d["wall_ms"] <= 0:
            continue
        allocator, condition, cores = runs[step]
        wall = d["wall_ms"]
        cam = d["vcpus"].get(0, (0.0, 0.0))
        others = [v for n, v in d["vcpus"].items() if n != 0 and n < cores]
        total = sum(r for r, _ in d["vcpus"].values()) + d["other"][0]
        rows.append({
            "allocator": allocator, "condition": condition, "cores": cores, "step": step,
            "wall_s": round(wall / 1000.0, 2),
            "camera_run_pct": pct(cam[0], wall), "camera_wait_pct": pct(cam[1], wall),
            "load_run_pct": pct(sum(r for r, _ in others), wall * len(others)) if others else None,
            "load_wait_pct": pct(sum(w for _, w in others), wall * len(others)) if others else None,
            "main_run_pct": pct(d["other"][0], wall),
            "qemu_cores": round(total / wall, 2),
        })
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(prog="hostsched.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sample", help="sample a running QEMU (qemu-run.sh does)")
    s.add_argument("--pidfile", required=True)
    s.add_argument("--log", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--interval-ms", type=float, default=50.0)
    s.add_argument("--camera-rt", type=int, default=0, metavar="PRIO",
                   help="SCHED_FIFO priority for the camera core's vCPU thread (0: leave it normal)")
    args = p.parse_args(argv)
    return sample(args.pidfile, args.log, args.out, args.interval_ms / 1000.0, camera_rt=args.camera_rt)


if __name__ == "__main__":
    sys.exit(main())
