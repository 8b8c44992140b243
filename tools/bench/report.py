"""Turn bench.json (plus the run's context) into Markdown: the results page,
honest notes, and the top-level README block (the targets are in
`targets`, the view and formats in `view`). Stdlib only.
"""

import os

import cores
from benchlog import ALLOCATORS, CONDITIONS, SETUPS
from targets import (CALIBRATION_FACTOR, READS_SLACK, TAIL_FACTOR, calibration_pairs, targets, within)
from view import (DASH, END_MARKER, NAMES, SHORT, START_MARKER, View, accel_note, fmt_num, fmt_pct,
                  fmt_ratio, is_num, md_table, ratio, success_pct)

# --- honest notes ---------------------------------------------------------------


def notes_tails(v):
    out = []
    for c in CONDITIONS:
        for p in v.sizes:
            p50, mx = v.s("gcma", c, p, "p50_us"), v.s("gcma", c, p, "max_us")
            f = ratio(mx, p50)
            if f is not None and f > TAIL_FACTOR:
                out.append(
                    f"GCMA under {c}, {p} pages: max {fmt_num(mx, ' µs')} is {fmt_ratio(f)} its p50 "
                    f"{fmt_num(p50, ' µs')}: a tail beyond the {TAIL_FACTOR:.0f}x target."
                )
    return out


def notes_failures(v):
    out = []
    for c in CONDITIONS:
        for a in ALLOCATORS:
            for p in v.sizes:
                row = v.sized.get((a, c, p))
                pct = success_pct(row)
                if pct is not None and pct < 100:
                    out.append(
                        f"{NAMES.get(a, a)} under {c}, {p} pages, succeeded "
                        f"{row['successes']}/{row['attempts']} ({fmt_pct(pct)})."
                    )
    return out


def notes_reads(v):
    out = []
    none, gcma, carveout = v.reads("none"), v.reads("gcma"), v.reads("carveout")
    over = ratio(gcma, none)
    if over is not None and over > 1 + READS_SLACK:
        out.append(
            f"GCMA read {fmt_pct(100 * (over - 1), True)} more device sectors than `none` "
            f"({fmt_num(gcma)} vs {fmt_num(none)}): more than the {READS_SLACK:.0%} allowed."
        )
    if is_num(gcma) and is_num(carveout) and is_num(none) and carveout > none:
        closed = (carveout - gcma) / (carveout - none)
        out.append(
            f"GCMA closes {fmt_pct(100 * closed)} of the device-read gap between the carveout "
            f"({fmt_num(carveout)} sectors) and no reservation ({fmt_num(none)})."
        )
    elif is_num(carveout) and is_num(none) and carveout <= none:
        out.append(
            "The carveout read no more than `none`: the workload fits in memory even with the "
            "reservation wasted, so this run cannot show what lending the memory saves."
        )
    return out


def notes_samples(v, latency_counts):
    out = []
    attempts = [r.get("attempts") for r in v.alloc.values() if is_num(r.get("attempts"))]
    if attempts and min(attempts) < 100:
        out.append(
            f"Only {min(attempts)} attempts in the smallest row: a p99 over fewer than 100 samples "
            "is close to the maximum; treat tails as indicative."
        )
    for key, count in sorted((latency_counts or {}).items()):
        row = v.alloc.get(key) or {}
        if count not in (row.get("attempts"), row.get("successes")) and row:
            out.append(
                f"{'/'.join(key)}: {count} latency samples but attempts={row.get('attempts')}, "
                f"successes={row.get('successes')}."
            )
    return out


def honest_notes(v, run):
    notes = [accel_note(v.data.get("accel"))]
    notes += notes_tails(v) + notes_failures(v) + notes_reads(v)
    notes += notes_samples(v, run.get("latency_counts"))
    notes += run.get("warnings", [])
    problems = run.get("problems", [])
    if problems:
        notes.append(f"{len(problems)} problem(s) with the data (listed under *Data problems* below).")
    return notes


# --- tables -------------------------------------------------------------------


# The comparators of GCMA in the headline: (label, p99 of a condition/size).
def comparators(v):
    return [
        ("CMA", lambda c, p: v.s("cma", c, p, "p99_us")),
        ("CMA retry", lambda c, p: v.s("cma-retry", c, p, "p99_us")),
        ("Linux CMA", lambda c, p: v.lx(c, p, "p99_us")),
    ]


def mib(pages):
    return f"{pages * 4096 / (1 << 20):.1f} MiB" if is_num(pages) else DASH


def success_cell(row):
    return fmt_pct(success_pct(row)) if row else DASH


def headline_table(v):
    """Per condition and buffer size: p99 of GCMA, our CMA model (both
    policies) and Linux CMA, their ratios to GCMA's, and success rates."""
    rows = []
    for c in CONDITIONS:
        for p in v.sizes or [None]:
            g = v.s("gcma", c, p, "p99_us")
            m, r, lx = (v.s("cma", c, p, "p99_us"), v.s("cma-retry", c, p, "p99_us"), v.lx(c, p, "p99_us"))
            success = " / ".join(success_cell(row) for row in (
                v.sized.get(("gcma", c, p)), v.sized.get(("cma", c, p)), v.sized.get(("cma-retry", c, p)),
                v.linux.get((c, p))))
            rows.append([c, f"{fmt_num(p)} ({mib(p)})", fmt_num(g), fmt_num(m), fmt_ratio(ratio(m, g)),
                         fmt_ratio(ratio(r, g)), fmt_num(lx), fmt_ratio(ratio(lx, g)), success])
    headers = ["condition", "pages", "GCMA p99 (µs)", "CMA p99 (µs)", "CMA/GCMA", "CMA retry/GCMA",
               "Linux CMA p99 (µs)", "Linux CMA/GCMA", "success GCMA / CMA / CMA retry / Linux CMA"]
    return md_table(headers, rows, right=tuple(range(1, 9)))


def frames_headline(v):
    """Per condition: camera frames dropped and late, every allocator."""
    rows = []
    for c in CONDITIONS:
        frames = {v.frames.get((a, c), {}).get("frames") for a in ALLOCATORS} - {None}
        rows.append([
            c, fmt_num(frames.pop()) if len(frames) == 1 else DASH,
            " / ".join(fmt_num(v.dropped(a, c)) for a in ALLOCATORS),
            " / ".join(fmt_num(v.misses(a, c)) for a in ALLOCATORS),
        ])
    names = " / ".join(SHORT[a] for a in ALLOCATORS)
    return md_table(["condition", "frames", f"dropped {names}", f"late {names}"], rows, right=(1, 2, 3))


def alignment_note(v, run):
    """The Linux reference's alignment against this run's, when they differ."""
    ref = v.linux_ref
    meta = run.get("meta") or {}
    ours = sorted({meta.get(k) for k in ("frame_align_pages", "photo_align_pages") if meta.get(k)})
    theirs = ref.get("align_pages") if ref else None
    if not ref or not ours or [str(theirs)] == ours:
        return None
    finer = is_num(theirs) and all(o.isdigit() and theirs < int(o) for o in ours)
    return (
        f"The Linux reference ({ref.get('source')}) aligned every request to {fmt_num(theirs)} pages; this run "
        f"aligned them as a driver's `dma_alloc_contiguous` does ({' and '.join(ours)} pages), so Linux "
        f"tried {'more' if finer else 'other'} candidate ranges than our model did "
        "(tools/linux-cma/README.md, *Allocations*)."
    )


def headline_legend(v, run):
    ref = v.linux_ref
    src = ref.get("source") if ref else None
    align = ref.get("align_pages") if ref else None
    linux = (
        f"Linux CMA: Linux 6.12's own `cma_alloc()` under the same conditions in the same emulator "
        f"(`{src}`, `cargo xtask linux-cma`, alignment {fmt_num(align)} pages; a separate boot, so "
        "compare its ratio to GCMA, not its absolute times). " + cores.linux_cores_note(v)
        if src else "Linux CMA: no reference (`cargo xtask linux-cma` writes results/linux-cma.json)."
    )
    note = alignment_note(v, run)
    return (
        "X/GCMA: X's p99 allocation latency over GCMA's, per condition and buffer size "
        "(above 1: GCMA is faster; below 1: GCMA loses, see *Where GCMA loses*). "
        "CMA and CMA retry are this kernel's model of Linux CMA (Linux policy and the Android "
        f"vendors' sleep-and-rescan), measured in the same boot as GCMA. {linux} "
        + (f"{note} " if note else "")
        + "Success: successful allocations of all attempts. Dropped: frames that arrived with no "
        "buffer queued; late: captured frames the pipeline got to more than one frame period "
        "(33.3 ms) after they arrived. Frame time is sensor time: the CPU's stand-in for the "
        "camera hardware (the DMA write and its checksum) and wake-ups later than asked for are "
        "kept off the timeline (*Camera frames*)."
    )


def alloc_table(v):
    rows = []
    for c in CONDITIONS:
        for a in ALLOCATORS:
            found = sorted(
                (r for r in v.alloc_rows if isinstance(r, dict) and r.get("allocator") == a and r.get("condition") == c),
                key=lambda r: r.get("pages") or 0,
            )
            if not found:
                rows.append([NAMES[a], c] + ["missing"] + [DASH] * 7)
            for r in found:
                rows.append([
                    NAMES[a], c, fmt_num(r.get("pages")), fmt_num(r.get("attempts")), fmt_num(r.get("successes")),
                    fmt_pct(success_pct(r)), fmt_num(r.get("p50_us")), fmt_num(r.get("p99_us")),
                    fmt_num(r.get("max_us")), fmt_ratio(ratio(r.get("max_us"), r.get("p50_us"))),
                ])
    headers = ["allocator", "condition", "pages", "attempts", "successes", "success", "p50 (µs)", "p99 (µs)", "max (µs)", "max/p50"]
    return md_table(headers, rows, right=tuple(range(2, 10)))


def frames_table(v):
    rows = []
    for c in CONDITIONS:
        for a in ALLOCATORS:
            r = v.frames.get((a, c))
            if not r:
                rows.append([NAMES[a], c, "missing"] + [DASH] * 5)
                continue
            frames, dropped, late = r.get("frames"), r.get("dropped"), r.get("deadline_misses")
            pct = 100.0 * dropped / frames if is_num(frames) and is_num(dropped) and frames else None
            rows.append([NAMES[a], c, fmt_num(frames), fmt_num(dropped), fmt_pct(pct), fmt_num(late),
                         fmt_num(r.get("hardware_ms")), fmt_num(r.get("wake_late_ms"))])
    headers = ["allocator", "condition", "frames", "dropped", "dropped %", "late",
               "off timeline: hardware (ms)", "off timeline: late wake-ups (ms)"]
    return md_table(headers, rows, right=(2, 3, 4, 5, 6, 7))


def linux_table(v):
    """Linux CMA beside our CMA model (both policies) and GCMA, every
    condition and size either has."""
    rows = []
    keys = sorted({(c, p) for c in CONDITIONS for p in v.sizes} | set(v.linux),
                  key=lambda k: (CONDITIONS.index(k[0]) if k[0] in CONDITIONS else 99, k[1] or 0))
    for c, p in keys:
        lx = v.linux.get((c, p))
        cells = [c, fmt_num(p)]
        cells += [f"{lx.get('successes')}/{lx.get('attempts')}" if lx else DASH,
                  fmt_num(v.lx(c, p, "p50_us")), fmt_num(v.lx(c, p, "p99_us"))]
        for a in ("cma", "cma-retry"):
            cells += [fmt_num(v.s(a, c, p, "p50_us")), fmt_num(v.s(a, c, p, "p99_us"))]
        r50 = ratio(v.s("cma", c, p, "p50_us"), v.lx(c, p, "p50_us"))
        r99 = ratio(v.s("cma", c, p, "p99_us"), v.lx(c, p, "p99_us"))
        ok = DASH if r50 is None or r99 is None else ("yes" if within(r50) and within(r99) else "no")
        cells += [fmt_ratio(r50), fmt_ratio(r99), ok, fmt_num(v.s("gcma", c, p, "p99_us"))]
        rows.append(cells)
    headers = ["condition", "pages", "Linux ok", "Linux p50", "Linux p99", "CMA p50", "CMA p99",
               "CMA retry p50", "CMA retry p99", "CMA/Linux p50", "CMA/Linux p99",
               f"within {CALIBRATION_FACTOR:.0f}x", "GCMA p99"]
    return md_table(headers, rows, right=tuple(range(1, 13)))


def interleaved_table(v):
    rows = v.data.get("interleaved")
    if not isinstance(rows, list) or not rows:
        return "*No interleaved step in this run.*"
    out = []
    for r in rows:
        if not isinstance(r, dict):
            continue
        out.append([r.get("condition"), fmt_num(r.get("pages")), fmt_num(r.get("pairs")),
                    fmt_num(r.get("gcma_p50_us")), fmt_num(r.get("gcma_p99_us")), fmt_num(r.get("gcma_max_us")),
                    fmt_num(r.get("carveout_p50_us")), fmt_num(r.get("carveout_p99_us")),
                    fmt_num(r.get("carveout_max_us")),
                    fmt_ratio(ratio(r.get("gcma_p99_us"), r.get("carveout_p99_us"))),
                    f"{r.get('gcma_tails')} / {r.get('carveout_tails')}"])
    return md_table(["condition", "pages", "pairs", "GCMA p50", "GCMA p99", "GCMA max", "carveout p50",
                     "carveout p99", "carveout max", "GCMA/carveout p99", "> 300 µs GCMA / carveout"],
                    out, right=tuple(range(1, 11)))


INTERLEAVED_NOTE = (
    "The camera runs time each allocator in its own run, one after the other, so a host stall "
    "(under TCG on a shared machine QEMU's vCPU thread is descheduled at times) lands in one "
    "allocator's samples only. Here GCMA and the carveout allocate the same buffers in strict "
    "alternation (GCMA, carveout, GCMA, ...), idle and under the page-cache load, so such stalls "
    "hit both alike: where their tails agree here but not above, the difference above is the "
    "host's; where GCMA's tail stays longer here too, it is GCMA's."
)


def cma_work_rows(v):
    """(allocator, condition) -> the run's @cmawork row, when the run has them."""
    rows = v.data.get("cma_work")
    out = {}
    for r in rows if isinstance(rows, list) else []:
        if isinstance(r, dict) and is_num(r.get("allocations")) and r["allocations"] > 0:
            out[(r.get("allocator"), r.get("condition"))] = r
    return out


def cma_work_table(v):
    """What our CMA did per allocation in each CMA run."""
    work = cma_work_rows(v)
    if not work:
        return None
    rows = []
    for c in CONDITIONS:
        for a in ("cma", "cma-retry"):
            r = work.get((a, c))
            if not r:
                continue
            n = r["allocations"]
            inside = ratio(r["pass_ms"], r["total_ms"])
            rows.append([NAMES.get(a, a), c, fmt_num(n), fmt_num(r["dropped_clean"] / n),
                         fmt_num(r["migrated"] / n), fmt_num(r["busy_retries"] / n),
                         fmt_num(r["ranges_given_up"] / n), fmt_num(r["rescans"] / n),
                         fmt_num(r["passes"] / n), fmt_num(r["total_ms"] / n),
                         DASH if inside is None else f"{100 * inside:.0f}%"])
    return md_table(["allocator", "condition", "allocations", "dropped clean", "copied", "busy answers",
                     "ranges given up", "rescans", "passes", "ms per allocation", "inside passes"],
                    rows, right=tuple(range(2, 11)))


CMA_WORK_NOTE = (
    "What our CMA model did per allocation in each CMA run (frame buffers and stills together; "
    "`@cmawork`, the CMA area's counters and the time counters around the run): clean page-cache "
    "pages dropped, pages copied, migration attempts answered busy (a pinned page), candidate "
    "ranges given up after 50 passes, Android rescans, migration passes, and the share of its time "
    "spent inside passes (the model's own work, lock held) rather than between them (other tasks "
    "running at `cond_resched`, the Android policy's sleeps)."
)


def cma_work_cause(v, c, off):
    """The measured part of a calibration note: what our CMA did under `c`."""
    r = cma_work_rows(v).get(("cma", c))
    if not r:
        return " Cause not measured yet (no @cmawork in this run)."
    n = r["allocations"]
    moved = r["dropped_clean"] + r["migrated"]
    inside = ratio(r["pass_ms"], r["total_ms"]) or 0.0
    line = (f" Measured on our side ({n} allocations): per allocation {fmt_num(r['dropped_clean'] / n)} "
            f"clean pages dropped, {fmt_num(r['migrated'] / n)} copied, {fmt_num(r['busy_retries'] / n)} "
            f"busy answers, {fmt_num(r['ranges_given_up'] / n)} ranges given up, {fmt_num(r['passes'] / n)} "
            f"passes, {fmt_num(r['total_ms'] / n, ' ms')}, {100 * inside:.0f}% of it inside passes.")
    p, _, _ = off[0]
    lx = v.lx(c, p, "p50_us")
    if inside < 0.5:
        line += (" The largest part is time between passes, while other tasks ran: it follows the "
                 "scheduler, not the model's work.")
    elif r["ranges_given_up"] / n >= 0.5:
        line += (" The largest part is pinned pages: a range holding one is retried for 50 passes "
                 "and then given up (Linux's -EBUSY); how often Linux's pins outlast its passes is not "
                 "measured here, so the gap in either direction is the pin pattern's timing.")
    elif moved and is_num(lx) and p:
        line += (f" The largest part is the model's own work on the pages it moves: "
                 f"{fmt_num(1e6 * r['pass_ms'] / moved)} ns per page moved, inside passes, against "
                 f"Linux's {fmt_num(1000 * lx / p)} ns per page of a {p}-page allocation (its whole p50 "
                 f"over its size).")
    return line


def calibration_notes(v):
    """Per condition with a pair outside the calibration band: what Linux's
    CMA area held when its allocations ran (its meminfo, recorded by
    `cargo xtask linux-cma`), and the cause where the data shows one."""
    mem = {m.get("condition"): m for m in (v.linux_ref.get("memory") or []) if isinstance(m, dict)}
    out = []
    for c in CONDITIONS:
        pairs = [(p, a, b) for cc, p, a, b in calibration_pairs(v) if cc == c]
        off = [(p, a, b) for p, a, b in pairs if not (within(a) and within(b))]
        if not off:
            continue
        shown = ", ".join(f"{p} pages p50 {fmt_ratio(a)}, p99 {fmt_ratio(b)}" for p, a, b in off)
        m = mem.get(c)
        line = f"{c}: our CMA / Linux CMA outside {CALIBRATION_FACTOR:.0f}x ({shown})."
        if m and is_num(m.get("cmatotal_kb")) and is_num(m.get("cmafree_kb")):
            total, free = m["cmatotal_kb"] / 1024, m["cmafree_kb"] / 1024
            line += (f" Linux's CMA area held {fmt_num(total - free)} of {fmt_num(total)} MiB when its "
                     f"allocations began (anonymous {fmt_num((m.get('anon_kb') or 0) / 1024)} MiB, "
                     f"page cache {fmt_num((m.get('cached_kb') or 0) / 1024)} MiB system-wide).")
            if c == "anon":
                line += (" Our anonymous memory never gets CMA-lent frames (only the page cache does), so "
                         "under anon our CMA area holds only the clean page-cache pages of the prefill, which "
                         "an allocation drops without a copy, where Linux must migrate (copy) the anonymous "
                         "pages its area holds: the cause.")
            elif c == "idle" and free >= 0.95 * total:
                p, a, _ = off[0]
                lx, ours = v.lx(c, p, "p50_us"), v.s("cma", c, p, "p50_us")
                if is_num(lx) and is_num(ours) and p:
                    line += (f" Linux's area was free, so its {fmt_num(lx, ' µs')} p50 for {p} pages "
                             f"({fmt_num(1000 * lx / p)} ns per page) is `alloc_contig_range()`'s own work on "
                             f"free pages (isolating pageblocks, draining per-CPU lists, taking each page out "
                             f"of the buddy lists); our model keeps free CMA pages in a bitmap "
                             f"({fmt_num(1000 * ours / p)} ns per page).")
            else:
                line += cma_work_cause(v, c, off)
        else:
            line += cma_work_cause(v, c, off)
        out.append(line)
    return out


def tag_storage_table(v):
    t = v.data.get("tag_storage")
    if not isinstance(t, dict):
        return "*No tag-storage step in this run (the device tree has no tags@ region).*"
    rows = [[fmt_num(t.get("requests")), fmt_num(t.get("taken")), fmt_num(t.get("overlapped")),
             fmt_num(t.get("failed")), fmt_num(t.get("p50_us")), fmt_num(t.get("p99_us")),
             fmt_num(t.get("max_us")), fmt_num(t.get("dropped"))]]
    return md_table(["requests", "taken", "already tagged (refused)", "failed", "p50 (µs)", "p99 (µs)",
                     "max (µs)", "cleancache copies dropped"], rows, right=tuple(range(8)))


TAG_STORAGE_NOTE = (
    "The `tags@` region of the device tree is a second GCMA donor standing in for arm64 MTE tag "
    "storage, as proposed in the GCMA review thread (one tag page per 32 pages of RAM). It is lent "
    "to cleancache like the camera's area; enabling tags on 1 to 4 blocks of 4 MiB of RAM takes "
    "back exactly the tag pages that cover them, by explicit pfn range (`memsys::alloc_range`, the "
    "patch's `gcma_alloc_range`), under page-cache load. A request that overlaps a block already "
    "tagged is refused as such (`RangeAllocated`); any other refusal is a failure. Outside this step "
    "the demo holds the whole tag area, so the allocator runs above compare one GCMA area of the CMA "
    "area's size."
)


def where_gcma_loses(v):
    """Every place this run's data puts GCMA behind another allocator, one
    line each: p99 above CMA's, CMA retry's or Linux CMA's at a condition and
    size, fewer successes, more dropped frames; then how far the carveout is
    ahead, and the device reads GCMA costs against no reservation."""
    out = []
    for c in CONDITIONS:
        for p in v.sizes:
            g = v.s("gcma", c, p, "p99_us")
            for label, p99 in comparators(v):
                r = ratio(p99(c, p), g)
                if r is not None and r < 1:
                    out.append(f"{c}, {p} pages: {label}'s p99 {fmt_num(p99(c, p), ' µs')} is below GCMA's "
                               f"{fmt_num(g, ' µs')} ({label}/GCMA = {fmt_ratio(r)}).")
            gs = success_pct(v.sized.get(("gcma", c, p)))
            for a in ("cma", "cma-retry"):
                other = success_pct(v.sized.get((a, c, p)))
                if gs is not None and other is not None and other > gs:
                    out.append(f"{c}, {p} pages: {NAMES[a]} succeeded more often ({fmt_pct(other)}) than GCMA "
                               f"({fmt_pct(gs)}).")
        gd = v.dropped("gcma", c)
        for a in ("cma", "cma-retry", "carveout"):
            d = v.dropped(a, c)
            if is_num(gd) and is_num(d) and gd > d:
                out.append(f"{c}: GCMA dropped {gd} frames, {NAMES[a]} {d}.")
    faster = [(c, p, ratio(v.s("gcma", c, p, "p99_us"), v.s("carveout", c, p, "p99_us")))
              for c in CONDITIONS for p in v.sizes]
    faster = [(c, p, r) for c, p, r in faster if r is not None and r > 1]
    if faster:
        lo = min(faster, key=lambda t: t[2])
        hi = max(faster, key=lambda t: t[2])
        out.append(f"The carveout's p99 is below GCMA's in {len(faster)} of {len(CONDITIONS) * len(v.sizes)} "
                   f"condition/size pairs, by {fmt_ratio(lo[2])} ({lo[0]}, {lo[1]} pages) to {fmt_ratio(hi[2])} "
                   f"({hi[0]}, {hi[1]} pages): GCMA pays for lending its memory; the carveout wastes it "
                   "(see *Device reads*).")
    gr, nr = v.reads("gcma"), v.reads("none")
    over = ratio(gr, nr)
    if over is not None and over > 1:
        out.append(f"GCMA read {fmt_pct(100 * (over - 1), True)} more device sectors than giving the memory "
                   f"to the page cache outright (`none`: {fmt_num(nr)}, GCMA: {fmt_num(gr)}).")
    if not out:
        out.append("Nowhere in this run's data: GCMA's p99 is at or below every other allocator's at every "
                   "condition and size, with no fewer successes and no more dropped frames.")
    return out


# What each condition loads the system with, and what it models.
CONDITION_TEXT = (
    ("idle", "nothing; the area is free", "a camera started on an idle system"),
    ("pagecache", "a file workload larger than the page cache (whole files in 16 KiB reads, 70 % "
     "from a hot eighth), so CMA-lent frames fill with page cache and cleancache fills",
     "memory full of clean file pages"),
    ("anon", "1 MiB heap chunks touched page by page up to 16..64 MiB, freed, again",
     "anonymous memory pressure (our anonymous memory never sits in the CMA area)"),
    ("odirect", "the file workload, plus two readers each reading whole files 1 MiB at a time; each "
     "request's page-cache pages are pinned from the moment the request reaches them until it "
     "completes, then released, continuously",
     "O_DIRECT reads: the block layer pins the buffer's pages for each request; short pins, "
     "always some in flight"),
    ("longpin", "the file workload, plus 4 groups of 64 random page-cache pages pinned; every 500 ms "
     "the oldest group is released and refilled, so 256 pages are pinned at any time, each for 2 s",
     "vmsplice() into a pipe that is read late: pages held for seconds, turning over"),
)


def conditions_table():
    rows = [[c, load, models] for c, load, models in CONDITION_TEXT]
    return md_table(["condition", "background load", "what it models"], rows)


CONDITIONS_NOTE = (
    "`odirect` and `longpin` replace the former `pinned` condition (256 random page-cache pages, each "
    "held at least 128 ms). They are the two ways of pinning pages without FOLL_LONGTERM named in the "
    "\"[LSF/MM/BPF TOPIC] Guaranteed CMA\" discussion on linux-mm (2025) as what defeats CMA's "
    "migration: a page used as the buffer of an O_DIRECT access, and vmsplice(), which can pin pages "
    "for as long as the pipe is not read. The Linux reference makes them the same way with Linux's own "
    "mechanisms (tools/linux-cma/cmaload.c: O_DIRECT reads into fresh buffers, vmsplice into pipes); "
    "here they are page-cache pins (`pin_page`/`unpin_page`), which neither migration nor dropping can "
    "pass."
)


def util_table(v):
    rows = []
    none = v.reads("none")
    for s in SETUPS:
        r = v.util.get(s)
        if not r:
            rows.append([s, "missing", DASH, DASH, DASH, DASH])
            continue
        over = ratio(r.get("read_sectors"), none)
        vs = fmt_pct(100 * (over - 1), True) if over not in (None, float("inf")) else DASH
        rows.append([
            s, fmt_num(r.get("seconds"), " s"), fmt_num(r.get("read_sectors")), vs,
            fmt_num(r.get("page_cache_hit_ratio")), fmt_num(r.get("cleancache_hit_ratio")),
        ])
    headers = ["setup", "time", "sectors read", "vs none", "page-cache hit ratio", "cleancache hit ratio"]
    return md_table(headers, rows, right=(1, 2, 3, 4, 5))


def per_page_table(v):
    p = v.per_page
    memset = p.get("memset_ns")
    rows = []
    for label, key in (("GCMA alloc (take back from cleancache)", "gcma_alloc_ns"),
                       ("  of which cleancache take-back", "take_back_ns"),
                       ("carveout alloc (mark the range used)", "carveout_alloc_ns"),
                       ("CMA alloc (migrate out)", "cma_alloc_ns"),
                       ("memset (zero a page)", "memset_ns"),
                       ("memcpy (copy a page)", "memcpy_ns"),
                       ("clear_page (arch, DC ZVA where allowed)", "clear_page_ns"),
                       ("copy_page (arch, 128 bytes per iteration)", "copy_page_ns"),
                       ("cleancache store (free slot)", "cc_store_ns"),
                       ("cleancache restore (hit)", "cc_restore_ns"),
                       ("cleancache store with eviction (CLOCK)", "cc_evict_ns")):
        r = ratio(p.get(key), memset)
        rows.append([label, fmt_num(p.get(key)), f"{r:.3f}" if r not in (None, float("inf")) else DASH])
    return md_table(["operation, per 4 KiB page", "ns", "x memset"], rows, right=(1, 2))


def targets_table(v):
    rows = [[name, status, measured] for name, status, measured in targets(v)]
    return md_table(["target", "status", "measured"], rows)


# --- pages --------------------------------------------------------------------


def run_table(v, run):
    meta = run.get("meta") or {}
    exit_ = run.get("exit")
    scale = meta.get("scale")
    run_cmd = "cargo run-rpi4" if v.data.get("board") == "rpi4" else "cargo run"
    demo = run_cmd if scale in (None, "quick") else f"{run_cmd} -- scale={scale}"
    rows = [
        ["demo", f"`{demo}` (QEMU {v.data.get('board')}, log `build/results/{v.data.get('board')}/{scale or 'quick'}/demo.log`)"],
        ["command", f"`{run.get('command', DASH)}`"],
        ["commit", f"`{v.data.get('commit')}`"],
        ["date (UTC)", run.get("date", DASH)],
        ["board / accel", f"{v.data.get('board')} / {v.data.get('accel')}"],
    ]
    if meta:
        rows.append(["@bench", " ".join(f"{k}={val}" for k, val in meta.items())])
    if v.sched:
        rows.append(["@sched", " ".join(f"{k}={val}" for k, val in v.sched.items())])
    rows.append(["exit", f"status={exit_.get('status')} reason={exit_.get('reason')}" if exit_ else "no @exit line"])
    return md_table(["", ""], rows)


def plot_block(run, name, alt):
    path = (run.get("plots") or {}).get(name)
    if path:
        return f"![{alt}]({os.path.basename(path)})"
    why = run.get("plot_error") or "no data"
    return f"*Plot not written ({why}).*"


def results_page(data, run):
    """The results page (results/README.md) as a string."""
    v = View(data)
    parts = [
        "# Benchmark results",
        "",
        f"> {accel_note(data.get('accel'))}",
        "",
        "Generated by `tools/bench/collect.py` from the demo's console log; the data is in "
        "[bench.json](bench.json). Do not edit by hand.",
        "",
        run_table(v, run),
        "",
        "## Headline",
        "",
        headline_table(v),
        "",
        frames_headline(v),
        "",
        headline_legend(v, run),
        "",
        "## Where GCMA loses",
        "",
    ]
    parts += [f"- {line}" for line in where_gcma_loses(v)]
    parts += [
        "",
        "## Conditions",
        "",
        conditions_table(),
        "",
        CONDITIONS_NOTE,
        "",
        "## Allocation latency",
        "",
        alloc_table(v),
        "",
        plot_block(run, "latency", "allocation latency CDFs per condition"),
        "",
        "## Linux CMA beside our CMA model",
        "",
        linux_table(v) if v.linux else "*No Linux CMA reference in this run's data.*",
        "",
    ]
    if v.linux:
        parts += [cores.linux_cores_note(v), ""]
    parts += [f"- {line}" for line in calibration_notes(v)]
    work = cma_work_table(v)
    if work:
        parts += ["", CMA_WORK_NOTE, "", work]
    parts += [
        "",
        "## Camera frames",
        "",
        "A frame arrives every 33.3 ms of sensor time whatever the pipeline does; one that finds no "
        "buffer queued is dropped (counted once), one the pipeline gets to more than a period after it "
        "arrived is late. A slow allocation drops the frames that arrive while nothing is queued; later "
        "frames are on time. Sensor time leaves out the CPU's stand-in for the hardware (writing the "
        "frame as DMA would, and the checksum that verifies it) and wake-ups later than the camera "
        "asked for (under TCG on a shared host the emulator is itself descheduled at times): both "
        "would drop frames for every allocator alike. The table gives both, per run. Allocations, "
        "host stalls during them included, stay on the timeline.",
        "",
        frames_table(v),
        "",
        plot_block(run, "frames", "dropped frames per allocator and condition"),
        "",
    ]
    parts += cores.sections(v)
    parts += [
        "## Device reads (utilization of the reserved memory)",
        "",
        util_table(v),
        "",
        plot_block(run, "reads", "device sectors read per setup"),
        "",
        "## Per-page costs",
        "",
        per_page_table(v),
        "",
        "## GCMA and the carveout, interleaved",
        "",
        interleaved_table(v),
        "",
        INTERLEAVED_NOTE,
        "",
        "## Tag storage: a second donor, explicit ranges",
        "",
        tag_storage_table(v),
        "",
        TAG_STORAGE_NOTE,
        "",
        "## Honest notes",
        "",
        "### Project targets",
        "",
        targets_table(v),
        "",
        "### Observations",
        "",
    ]
    parts += [f"- {note}" for note in honest_notes(v, run)]
    problems = run.get("problems") or []
    if problems:
        parts += ["", "### Data problems", ""] + [f"- {p}" for p in problems]
    return "\n".join(parts) + "\n"


def readme_block(data, run, link):
    """The text that goes between the bench markers of the top-level README."""
    v = View(data)
    met = sum(1 for _, status, _ in targets(v) if status == "met")
    return "\n".join([
        f"Published run: board {data.get('board')} / {data.get('accel')}, scale "
        f"{(run.get('meta') or {}).get('scale', DASH)}, commit `{data.get('commit')}`, "
        f"{run.get('date', DASH)}. {accel_note(data.get('accel'))}",
        "",
        headline_table(v),
        "",
        frames_headline(v),
        "",
        headline_legend(v, run),
        "",
        "Where GCMA loses:",
        "",
    ] + [f"- {line}" for line in where_gcma_loses(v)] + [
        "",
        f"Project targets met: {met} of {len(targets(v))}. Conditions, Linux CMA beside our model, "
        f"full results, plots and notes: [{link}]({link}).",
    ])


def replace_between_markers(text, block):
    """`text` with the part between the bench markers replaced by `block`,
    or None when the markers are missing or out of order."""
    start = text.find(START_MARKER)
    end = text.find(END_MARKER, start + len(START_MARKER)) if start >= 0 else -1
    if start < 0 or end < 0:
        return None
    head = text[: start + len(START_MARKER)]
    return head + "\n" + block.rstrip("\n") + "\n" + text[end:]
