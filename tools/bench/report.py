"""Turn bench.json (plus the run's context) into Markdown: the results page,
the project targets (met / not met), honest notes, and the top-level README
block. Stdlib only.
"""

import os

from benchlog import ALLOCATORS, CONDITIONS, SETUPS

START_MARKER = "<!-- bench:start -->"
END_MARKER = "<!-- bench:end -->"
DASH = "—"
NAMES = {"gcma": "GCMA", "cma": "CMA", "cma-retry": "CMA (Android retry)", "carveout": "carveout"}

# Project targets (see the issue / tools/bench/README.md).
PINNED_RATIO = 100.0
PAGECACHE_RATIO = 15.0
TAIL_FACTOR = 3.0
READS_SLACK = 0.15
PER_PAGE_FRACTION = 0.25


# --- small helpers ------------------------------------------------------------


def is_num(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def fmt_num(value, unit=""):
    """3 significant-ish digits, thousands separated; null -> a dash."""
    if not is_num(value):
        return DASH
    magnitude = abs(value)
    if magnitude >= 100 or isinstance(value, int):
        text = f"{value:,.0f}"
    elif magnitude >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return text + unit


def fmt_ratio(value):
    if value is None:
        return DASH
    if value == float("inf"):
        return "∞"
    return f"{value:.1f}x" if value < 100 else f"{value:,.0f}x"


def fmt_pct(value, signed=False):
    if value is None:
        return DASH
    return f"{value:+.1f}%" if signed else f"{value:.1f}%"


def ratio(numerator, denominator):
    """numerator / denominator, None when either is missing, inf for x/0."""
    if not (is_num(numerator) and is_num(denominator)):
        return None
    if denominator == 0:
        return float("inf") if numerator > 0 else None
    return numerator / denominator


def success_pct(row):
    if not row or not is_num(row.get("attempts")) or not is_num(row.get("successes")):
        return None
    return 100.0 * row["successes"] / row["attempts"] if row["attempts"] else None


def md_table(headers, rows, right=()):
    """A Markdown table whose raw text is aligned too. `right`: column
    indexes to right-align (numbers)."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(3, *(len(r[i]) for r in cells)) for i in range(len(headers))]

    def line(row):
        padded = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        return "| " + " | ".join(padded) + " |"

    rule = ["-" * (w - 1) + ":" if i in right else "-" * w for i, w in enumerate(widths)]
    return "\n".join([line(cells[0]), "| " + " | ".join(rule) + " |"] + [line(r) for r in cells[1:]])


class View:
    """bench.json indexed by row key."""

    def __init__(self, data):
        self.data = data
        # Headline figures use the frame buffers: the smallest size per pair.
        rows = data.get("alloc") if isinstance(data.get("alloc"), list) else []
        by_size = sorted((r for r in rows if isinstance(r, dict)), key=lambda r: -(r.get("pages") or 0))
        self.alloc = self._index(by_size, ("allocator", "condition"))
        self.alloc_rows = rows
        self.frames = self._index(data.get("frames"), ("allocator", "condition"))
        self.util = self._index(data.get("utilization"), ("setup",))
        per_page = data.get("per_page")
        self.per_page = per_page if isinstance(per_page, dict) else {}

    @staticmethod
    def _index(rows, keys):
        out = {}
        for row in rows if isinstance(rows, list) else []:
            if isinstance(row, dict):
                key = tuple(row.get(k) for k in keys)
                out[key if len(key) > 1 else key[0]] = row
        return out

    def a(self, allocator, condition, field):
        return (self.alloc.get((allocator, condition)) or {}).get(field)

    def misses(self, allocator, condition):
        row = self.frames.get((allocator, condition))
        return row.get("deadline_misses") if row else None

    def reads(self, setup):
        return (self.util.get(setup) or {}).get("read_sectors")


def accel_note(accel):
    if accel == "tcg":
        return (
            "Measured under QEMU TCG (emulation): absolute times are distorted. "
            "The allocators ran side by side in one boot: compare ratios, not absolute times."
        )
    if accel == "kvm":
        return "Measured under QEMU with KVM: closer to hardware, still virtualized; compare ratios."
    return "Measured on hardware."


# --- targets ------------------------------------------------------------------


def target_success(v):
    rows = [(c, v.alloc.get(("gcma", c))) for c in CONDITIONS]
    present = [(c, r) for c, r in rows if r]
    measured = ", ".join(f"{c} {r.get('successes')}/{r.get('attempts')}" for c, r in present) or "no GCMA rows"
    missing = [c for c, r in rows if not r]
    if any(success_pct(r) != 100.0 for _, r in present):
        return "not met", measured
    if missing:
        return "not measured", f"{measured}; missing: {', '.join(missing)}"
    return "met", measured


def target_speedup(v, condition, needed):
    gcma, cma = v.a("gcma", condition, "p99_us"), v.a("cma", condition, "p99_us")
    r = ratio(cma, gcma)
    if r is None:
        if v.a("cma", condition, "successes") == 0:
            return "not measured", f"CMA succeeded 0/{v.a('cma', condition, 'attempts')}: no CMA latency"
        return "not measured", f"GCMA p99 {fmt_num(gcma, ' µs')}, CMA p99 {fmt_num(cma, ' µs')}"
    measured = f"CMA/GCMA = {fmt_ratio(r)} (CMA {fmt_num(cma, ' µs')}, GCMA {fmt_num(gcma, ' µs')})"
    return ("met" if r >= needed else "not met"), measured


def target_misses(v):
    rows = [(c, v.misses("gcma", c)) for c in CONDITIONS]
    present = [(c, m) for c, m in rows if is_num(m)]
    missing = [c for c, m in rows if not is_num(m)]
    total = sum(m for _, m in present)
    measured = f"{total} miss(es) over {len(present)} condition(s)"
    if total > 0:
        worst = ", ".join(f"{c} {m}" for c, m in present if m)
        return "not met", f"{measured} ({worst})"
    if missing:
        return "not measured", f"{measured}; missing: {', '.join(missing)}"
    return "met", measured


def target_tail(v):
    factors = [(c, ratio(v.a("gcma", c, "max_us"), v.a("gcma", c, "p50_us"))) for c in CONDITIONS]
    present = [(c, f) for c, f in factors if f is not None]
    if not present:
        return "not measured", "no GCMA latencies"
    worst_c, worst = max(present, key=lambda cf: cf[1])
    measured = f"worst max/p50 = {fmt_ratio(worst)} ({worst_c})"
    if worst > TAIL_FACTOR:
        return "not met", measured
    if len(present) < len(CONDITIONS):
        return "not measured", measured + "; some conditions missing"
    return "met", measured


def target_reads(v):
    gcma, none, carveout = v.reads("gcma"), v.reads("none"), v.reads("carveout")
    over = ratio(gcma, none)
    if over is None:
        return "not measured", f"read sectors: gcma {fmt_num(gcma)}, none {fmt_num(none)}"
    measured = f"GCMA {fmt_pct(100 * (over - 1), True)} vs none"
    carve = ratio(carveout, none)
    if carve is not None:
        measured += f"; carveout {fmt_pct(100 * (carve - 1), True)} vs none"
    if over > 1 + READS_SLACK or (is_num(carveout) and gcma >= carveout):
        return "not met", measured
    if not is_num(carveout):
        return "not measured", measured + "; no carveout row"
    return "met", measured


def target_per_page(v):
    fraction = ratio(v.per_page.get("gcma_alloc_ns"), v.per_page.get("memset_ns"))
    if fraction is None:
        return "not measured", "no @perpage costs"
    measured = f"GCMA alloc = {fraction:.3f} x memset per page"
    return ("met" if fraction < PER_PAGE_FRACTION else "not met"), measured


def targets(v):
    """[(target, status, measured)] for every project target."""
    return [
        ("GCMA success 100% in every condition",) + target_success(v),
        (f"GCMA p99 ≥{PINNED_RATIO:.0f}x below CMA p99, pinned", ) + target_speedup(v, "pinned", PINNED_RATIO),
        (f"GCMA p99 ≥{PAGECACHE_RATIO:.0f}x below CMA p99, pagecache",) + target_speedup(v, "pagecache", PAGECACHE_RATIO),
        ("zero GCMA frame deadline misses",) + target_misses(v),
        (f"GCMA max ≤ {TAIL_FACTOR:.0f}x its p50",) + target_tail(v),
        (f"GCMA device reads within {READS_SLACK:.0%} of none, below carveout",) + target_reads(v),
        (f"GCMA per-page cost < 1/{1 / PER_PAGE_FRACTION:.0f} of memset",) + target_per_page(v),
    ]


# --- honest notes ---------------------------------------------------------------


def notes_tails(v):
    out = []
    for c in CONDITIONS:
        p50, mx = v.a("gcma", c, "p50_us"), v.a("gcma", c, "max_us")
        f = ratio(mx, p50)
        if f is not None and f > TAIL_FACTOR:
            out.append(
                f"GCMA under {c}: max {fmt_num(mx, ' µs')} is {fmt_ratio(f)} its p50 "
                f"{fmt_num(p50, ' µs')}: a tail beyond the {TAIL_FACTOR:.0f}x target."
            )
    return out


def notes_failures(v):
    out = []
    for (allocator, condition), row in sorted(v.alloc.items(), key=lambda kv: str(kv[0])):
        pct = success_pct(row)
        if pct is not None and pct < 100:
            out.append(
                f"{NAMES.get(allocator, allocator)} under {condition} succeeded "
                f"{row['successes']}/{row['attempts']} ({fmt_pct(pct)})."
            )
    return out


def notes_speed(v):
    out = []
    for c in CONDITIONS:
        r = ratio(v.a("cma", c, "p99_us"), v.a("gcma", c, "p99_us"))
        if r is not None and r < 1:
            out.append(f"Under {c}, CMA's p99 is lower than GCMA's (CMA/GCMA = {fmt_ratio(r)}).")
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
    notes += notes_tails(v) + notes_failures(v) + notes_speed(v) + notes_reads(v)
    notes += notes_samples(v, run.get("latency_counts"))
    notes += run.get("warnings", [])
    problems = run.get("problems", [])
    if problems:
        notes.append(f"{len(problems)} problem(s) with the data (listed under *Data problems* below).")
    return notes


# --- tables -------------------------------------------------------------------


def headline_table(v):
    rows = []
    for c in CONDITIONS:
        g, m = v.a("gcma", c, "p99_us"), v.a("cma", c, "p99_us")
        misses = " / ".join(fmt_num(v.misses(a, c)) for a in ALLOCATORS)
        row = v.alloc.get(("gcma", c))
        success = fmt_pct(success_pct(row))
        rows.append([c, fmt_num(g), fmt_num(m), fmt_ratio(ratio(m, g)), success, misses])
    headers = ["condition", "GCMA p99 (µs)", "CMA p99 (µs)", "CMA/GCMA", "GCMA success", "deadline misses " + " / ".join(NAMES[a] for a in ALLOCATORS)]
    return md_table(headers, rows, right=(1, 2, 3, 4, 5))


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
                rows.append([NAMES[a], c, "missing", DASH, DASH])
                continue
            frames, misses = r.get("frames"), r.get("deadline_misses")
            pct = 100.0 * misses / frames if is_num(frames) and is_num(misses) and frames else None
            rows.append([NAMES[a], c, fmt_num(frames), fmt_num(misses), fmt_pct(pct)])
    return md_table(["allocator", "condition", "frames", "deadline misses", "missed"], rows, right=(2, 3, 4))


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
        "CMA/GCMA: how many times GCMA's p99 allocation latency is below CMA's (higher is better for GCMA).",
        "",
        "## Allocation latency",
        "",
        alloc_table(v),
        "",
        plot_block(run, "latency", "allocation latency CDFs per condition"),
        "",
        "## Frame deadlines",
        "",
        frames_table(v),
        "",
        plot_block(run, "frames", "frame deadline misses per allocator and condition"),
        "",
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
        f"Project targets met: {met} of {len(targets(v))}. Full results, plots and notes: [{link}]({link}).",
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
