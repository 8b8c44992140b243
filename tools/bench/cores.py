"""The results page's several-core parts: the one-core comparison, the
memory-state lock, and which core count the Linux reference ran at, over a
`View`. Stdlib only; `report` places them on the page.
"""

from benchlog import ALLOCATORS, CONDITIONS
from view import NAMES, fmt_num, fmt_pct, fmt_ratio, is_num, md_table, ratio, success_pct

LOAD_TASKS = "page-cache readers, anonymous memory, O_DIRECT-like pinners, long pins"


def plural(n, word):
    return f"{n} {word}{'' if n == 1 else 's'}"


def load_cores(n):
    return "core 1" if n == 2 else f"cores 1..{n - 1}"


# --- the Linux reference's cores -------------------------------------------------


def linux_cores_note(v):
    """Which core count the Linux reference ran at; said plainly when it is
    not this run's. None without a reference."""
    if not v.linux_ref:
        return None
    smp, n = v.linux_smp, v.cores
    if not is_num(smp):
        return f"The Linux reference does not say how many cores it booted with; this run had {plural(n, 'core')}."
    if smp == n:
        return f"The Linux reference ran on {plural(smp, 'core')} (`-smp {smp}`), as this run did."
    return (
        f"**Not the same core count:** the Linux reference ran on {plural(smp, 'core')} (`-smp {smp}`), "
        f"this run on {plural(n, 'core')}"
        + (f" (camera on core 0, load on {load_cores(n)})" if n > 1 else "")
        + ": Linux CMA's figures beside ours come from a boot with a different number of cores, so their "
        "ratios to ours mix the two. "
        + (f"collect.py compares a {n}-core run with `results/linux-cma-align256-smp{n}.json` (Linux booted "
           f"with `-smp {n}`) when that file exists." if n > 1 else
           "collect.py compares a one-core run with `results/linux-cma-align256.json` unless `--linux-cma` "
           "names another.")
    )


# --- one core and several ------------------------------------------------------


def placement_text(v):
    n = v.cores
    placement = v.sched.get("placement")
    return (
        f"Main placement (cores={n}, every figure on this page outside this section): the camera task alone "
        f"on core 0, the background load tasks ({LOAD_TASKS}) on {load_cores(n)}. One-core comparison "
        "(cores=1): the same runs with every task on core 0, as the demo ran before it scheduled on several "
        "cores; idle has no load, so placement cannot matter and it is not repeated. "
        + (f"The scheduler reported `{placement}` (`@sched`). " if placement else "")
        + f"p99 {n}/1: the p99 at cores={n} over the p99 at cores=1 (below 1: that allocator's tail is "
        "shorter with the load on other cores; above 1: longer). Success and dropped frames: at cores=1 / "
        f"at cores={n}."
    )


def one_core_table(v):
    """Per allocator, condition and size: p50 and p99 at cores=1 and at
    cores=N, the p99 ratio N/1, success rates and dropped frames at each."""
    one, n, rows = v.one, v.cores, []
    for c in CONDITIONS:
        for a in ALLOCATORS:
            sizes = sorted({p for (aa, cc, p) in list(one.sized) + list(v.sized)
                            if (aa, cc) == (a, c) and isinstance(p, int)})
            if (a, c) not in one.alloc and (a, c) not in one.frames:
                continue
            dropped = f"{fmt_num(one.dropped(a, c))} / {fmt_num(v.dropped(a, c))}"
            waited = " / ".join(fmt_pct((v.host.get((a, c, k)) or {}).get("camera_wait_pct")) for k in (1, n))
            for p in sizes or [None]:
                p99_1, p99_n = one.s(a, c, p, "p99_us"), v.s(a, c, p, "p99_us")
                success = " / ".join(fmt_pct(success_pct(x.sized.get((a, c, p)))) for x in (one, v))
                rows.append([NAMES[a], c, fmt_num(p), fmt_num(one.s(a, c, p, "p50_us")), fmt_num(p99_1),
                             fmt_num(v.s(a, c, p, "p50_us")), fmt_num(p99_n), fmt_ratio(ratio(p99_n, p99_1)),
                             success, dropped] + ([waited] if v.host else []))
    headers = ["allocator", "condition", "pages", "p50 1 core (µs)", "p99 1 core (µs)", f"p50 {n} cores (µs)",
               f"p99 {n} cores (µs)", f"p99 {n}/1", f"success 1 / {n}", f"dropped 1 / {n}"]
    headers += [f"camera vCPU waited for the host 1 / {n}"] if v.host else []
    return md_table(headers, rows, right=tuple(range(2, len(headers))))


# --- host CPU --------------------------------------------------------------------


def host_text(v):
    cores = f"{plural(v.host_cores, 'core')}" if v.host_cores else "an unknown number of cores"
    return (
        "Under TCG every vCPU is a host thread, and the guest's counter runs on the host clock: a vCPU thread "
        "that is ready but waits for a host core stops the guest's work, not its time, so whatever it was "
        "timing takes longer. This host has "
        f"{cores}; QEMU needs one per busy vCPU plus its main loop, which emulates the block device (busy "
        "under pagecache and odirect). Per camera run, from the host kernel's scheduler statistics of QEMU's "
        "threads (`/proc/PID/task/TID/schedstat`, sampled by `tools/bench/hostsched.py` beside the boot): "
        "how much of the run the camera core's vCPU (core 0) ran and how much it was ready but waiting for a "
        "host core; the same for the load cores' vCPUs together; how much the main loop and QEMU's other "
        "threads ran; and the host cores QEMU used on average. A camera vCPU that waited a few percent of "
        "the time has that share of its allocations stretched by host milliseconds: that is the emulator, "
        "not the allocator. "
        + (f"Host scheduling policy of QEMU's threads in this boot: {v.host_policy} (set by the sampler "
           "when the kernel reported its placement: on a board the camera's core is a core of its own, and "
           "a real-time vCPU thread is how the emulator gives it one; in the one-core steps that vCPU runs "
           "the load too, and a real-time thread busy all the time would be held off by the host's RT "
           "throttling; `QEMU_RUN_HOST_RT=0 cargo run` leaves every thread normal)."
           if v.host_policy else
           "Host scheduling policy of QEMU's threads in this boot: all normal (no real-time camera vCPU).")
    )


def host_order(r):
    return lock_order(r)


def host_table(v):
    rows = []
    for r in sorted(v.host.values(), key=host_order):
        rows.append([NAMES.get(r.get("allocator"), str(r.get("allocator"))), str(r.get("condition")),
                     fmt_num(r.get("cores")), fmt_num(r.get("wall_s")), fmt_pct(r.get("camera_run_pct")),
                     fmt_pct(r.get("camera_wait_pct")), fmt_pct(r.get("load_run_pct")),
                     fmt_pct(r.get("load_wait_pct")), fmt_pct(r.get("main_run_pct")),
                     fmt_num(r.get("qemu_cores"))])
    headers = ["allocator", "condition", "cores", "run (s)", "camera vCPU ran", "camera vCPU waited",
               "load vCPUs ran", "load vCPUs waited", "main loop and others ran", "host cores used"]
    return md_table(headers, rows, right=tuple(range(2, len(headers))))


def host_summary(v):
    """The run whose camera vCPU waited longest, one line."""
    rated = [r for r in v.host.values() if is_num(r.get("camera_wait_pct"))]
    if not rated:
        return None
    worst = max(rated, key=lambda r: r["camera_wait_pct"])
    return (f"Longest wait for the host: the camera vCPU under {NAMES.get(worst['allocator'], worst['allocator'])}/"
            f"{worst['condition']} at cores={worst['cores']}, ready but not running "
            f"{fmt_pct(worst['camera_wait_pct'])} of the run, while QEMU used "
            f"{fmt_num(worst.get('qemu_cores'))} host cores on average.")


# --- the memory-state lock -----------------------------------------------------


def lock_order(r):
    c, a = r.get("condition"), r.get("allocator")
    return (CONDITIONS.index(c) if c in CONDITIONS else 99, ALLOCATORS.index(a) if a in ALLOCATORS else 99,
            str(r.get("name")), r.get("cores") if is_num(r.get("cores")) else 0)


def contended_pct(r):
    got, waited = r.get("acquisitions"), r.get("contended")
    return 100.0 * waited / got if is_num(got) and is_num(waited) and got else None


def lock_table(v):
    """Per allocator, condition and cores: acquisitions, contended, wait
    and hold p99 and max."""
    names = {r.get("name") for r in v.locks}
    rows = []
    for r in sorted(v.locks, key=lock_order):
        cells = [str(r.get("name"))] if len(names) > 1 else []
        cells += [NAMES.get(r.get("allocator"), str(r.get("allocator"))), str(r.get("condition")),
                  fmt_num(r.get("cores", 1)), fmt_num(r.get("acquisitions")), fmt_num(r.get("contended")),
                  fmt_pct(contended_pct(r))]
        cells += [fmt_num(r.get(k)) for k in ("wait_p99_us", "wait_max_us", "hold_p99_us", "hold_max_us")]
        rows.append(cells)
    headers = ["lock"] if len(names) > 1 else []
    headers += ["allocator", "condition", "cores", "acquisitions", "contended", "contended %", "wait p99 (µs)",
                "wait max (µs)", "hold p99 (µs)", "hold max (µs)"]
    first = len(headers) - 8
    return md_table(headers, rows, right=tuple(range(first, len(headers))))


def lock_text(v):
    names = sorted({str(r.get("name")) for r in v.locks})
    what = ("the two memory-state locks (ticket locks: memsys guards the page cache, areas the areas and "
            "their cleancache; a CMA pass holds both)" if len(names) > 1 else
            "the memory-state lock (one ticket lock guarding the areas, cleancache and the page cache)")
    return (
        f"`@lock name={'/'.join(names)}`: {what} over each camera run, every acquisition on every core: how many "
        "found it held by another core and had to wait (contended), and the time waited for the lock and "
        "the time it was held (nearest rank, µs; wait and hold p50 are in bench.json)."
    )


def lock_summary(v):
    """The most contended run and the longest wait, one line."""
    rated = [(contended_pct(r), r) for r in v.locks if contended_pct(r) is not None]
    waits = [r for r in v.locks if is_num(r.get("wait_max_us"))]
    if not rated or not waits:
        return None

    def run(r):
        return f"{NAMES.get(r.get('allocator'), r.get('allocator'))} under {r.get('condition')} at cores={r.get('cores', 1)}"

    pct, most = max(rated, key=lambda t: t[0])
    longest = max(waits, key=lambda r: r["wait_max_us"])
    return (f"Most contended: {run(most)}, {fmt_pct(pct)} of {fmt_num(most.get('acquisitions'))} acquisitions "
            f"waited. Longest wait: {fmt_num(longest['wait_max_us'], ' µs')} ({run(longest)}).")


def lock_sites(v):
    """Per GCMA and carveout run on several cores: where the areas and
    memsys locks' longest wait and hold came from (the `@locksite` lines),
    one bullet each; [] for a log without them."""
    lines = []
    for r in sorted(v.locks, key=lock_order):
        if r.get("allocator") not in ("gcma", "carveout") or r.get("cores", 1) < 2 or not r.get("wait_max_at"):
            continue
        behind = f", behind a hold taken at `{r['wait_max_behind']}`" if r.get("wait_max_behind") else ""
        hold = (f"; longest hold {fmt_num(r.get('hold_max_us'), ' µs')} taken at `{r['hold_max_at']}`"
                if r.get("hold_max_at") else "")
        copy = ""
        if r.get("allocator") == "gcma" and r.get("copy_waits") is not None:
            copy = (f"; {fmt_num(r['copy_waits'])} allocations waited for a cleancache copy in flight"
                    + (f", longest {fmt_num(r.get('copy_wait_max_us'), ' µs')}" if r["copy_waits"] else ""))
        lines.append(f"- {NAMES.get(r['allocator'], r['allocator'])}/{r.get('condition')} at "
                     f"cores={r.get('cores')}, {r.get('name')}: longest wait "
                     f"{fmt_num(r.get('wait_max_us'), ' µs')} asked at `{r['wait_max_at']}`{behind}{hold}{copy}.")
    if lines:
        lines.insert(0, "Where the longest waits and holds of GCMA's and the carveout's runs with the load on other "
                        "cores came from (`@locksite`: the callers that took the lock, `file:line`; a wait is "
                        "behind the last holder to release before it). A cleancache put or get holds the areas "
                        "lock for its bookkeeping only and copies its page outside it; a GCMA allocation that "
                        "takes back a page being copied waits for that copy (`@copywait`):")
        lines.insert(1, "")
    return lines


# --- the page ------------------------------------------------------------------


def sections(v):
    """The page's lines for "One core and several" (when the run has both
    core counts) and "Host CPU" (when the run has hostsched figures) and "The memory-state locks" (when it has @lock lines)."""
    parts = []
    if v.one is not None:
        parts += ["## One core and several", "", placement_text(v), "", one_core_table(v), ""]
    if v.host:
        parts += ["## Host CPU", "", host_text(v), "", host_table(v), ""]
        summary = host_summary(v)
        if summary:
            parts += [summary, ""]
    if v.locks:
        parts += ["## The memory-state locks", "", lock_text(v), "", lock_table(v), ""]
        summary = lock_summary(v)
        if summary:
            parts += [summary, ""]
        sites = lock_sites(v)
        if sites:
            parts += sites + [""]
    return parts

