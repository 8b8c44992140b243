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
SHORT = {"gcma": "GCMA", "cma": "CMA", "cma-retry": "CMA retry", "carveout": "carveout"}

# Project targets (see the issue / tools/bench/README.md). The pinned-pages
# target applies to `longpin`, the condition with pins that outlive an
# allocation (it replaced "pinned").
PINNED_CONDITION = "longpin"
PINNED_RATIO = 100.0
PAGECACHE_RATIO = 15.0
TAIL_FACTOR = 2.0
CARVEOUT_FACTOR = 2.0
CALIBRATION_FACTOR = 2.0
READS_SLACK = 0.15
PER_PAGE_FRACTION = 0.05


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
        self.sized = self._index(rows, ("allocator", "condition", "pages"))
        self.sizes = sorted({r.get("pages") for r in rows if isinstance(r, dict) and isinstance(r.get("pages"), int)})
        ref = data.get("linux_cma") if isinstance(data.get("linux_cma"), dict) else {}
        self.linux_ref = ref
        self.linux = self._index(ref.get("rows"), ("condition", "pages"))
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

    def s(self, allocator, condition, pages, field):
        """A field of the row of one buffer size."""
        return (self.sized.get((allocator, condition, pages)) or {}).get(field)

    def lx(self, condition, pages, field):
        """A field of Linux CMA's row (the reference), None without one."""
        return (self.linux.get((condition, pages)) or {}).get(field)

    def misses(self, allocator, condition):
        row = self.frames.get((allocator, condition))
        return row.get("deadline_misses") if row else None

    def dropped(self, allocator, condition):
        row = self.frames.get((allocator, condition))
        return row.get("dropped") if row else None

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
    rows = [(c, p, v.sized.get(("gcma", c, p))) for c in CONDITIONS for p in v.sizes]
    present = [(c, p, r) for c, p, r in rows if r]
    measured = ", ".join(f"{c}/{p} {r.get('successes')}/{r.get('attempts')}" for c, p, r in present) or "no GCMA rows"
    missing = sorted({c for c in CONDITIONS if not any(r for cc, _, r in rows if cc == c)})
    if any(success_pct(r) != 100.0 for _, _, r in present):
        return "not met", measured
    if missing or not present:
        return "not measured", f"{measured}; missing: {', '.join(missing) or 'every size'}"
    return "met", measured


def target_speedup(v, condition, needed):
    """CMA p99 / GCMA p99 at every buffer size."""
    parts, verdicts = [], []
    for p in v.sizes or [None]:
        gcma, cma = v.s("gcma", condition, p, "p99_us"), v.s("cma", condition, p, "p99_us")
        r = ratio(cma, gcma)
        if r is None:
            if v.s("cma", condition, p, "successes") == 0:
                parts.append(f"{p} pages: CMA succeeded 0/{v.s('cma', condition, p, 'attempts')}, no CMA latency")
            else:
                parts.append(f"{p} pages: GCMA p99 {fmt_num(gcma, ' µs')}, CMA p99 {fmt_num(cma, ' µs')}")
            verdicts.append("not measured")
            continue
        parts.append(f"{p} pages: CMA/GCMA = {fmt_ratio(r)} (CMA {fmt_num(cma, ' µs')}, GCMA {fmt_num(gcma, ' µs')})")
        verdicts.append("met" if r >= needed else "not met")
    status = "not met" if "not met" in verdicts else "not measured" if "not measured" in verdicts else "met"
    return status, "; ".join(parts)


def target_misses(v):
    """No GCMA frame dropped (late frames, which the CPU's share of the
    emulated capture also makes, are reported beside)."""
    rows = [(c, v.dropped("gcma", c), v.misses("gcma", c)) for c in CONDITIONS]
    present = [(c, d, m) for c, d, m in rows if is_num(d)]
    missing = [c for c, d, _ in rows if not is_num(d)]
    dropped = sum(d for _, d, _ in present)
    late = sum(m for _, _, m in present if is_num(m))
    measured = f"{dropped} dropped over {len(present)} condition(s) ({late} late)"
    if dropped:
        worst = ", ".join(f"{c} {d}" for c, d, _ in present if d)
        return "not met", f"{measured}: {worst}"
    if missing:
        return "not measured", f"{measured}; missing: {', '.join(missing)}"
    return "met", measured


def target_tail(v):
    factors = [(f"{c}/{p}", ratio(v.s("gcma", c, p, "max_us"), v.s("gcma", c, p, "p50_us")))
               for c in CONDITIONS for p in v.sizes]
    present = [(c, f) for c, f in factors if f is not None]
    if not present:
        return "not measured", "no GCMA latencies"
    worst_c, worst = max(present, key=lambda cf: cf[1])
    measured = f"worst max/p50 = {fmt_ratio(worst)} ({worst_c} pages)"
    if worst > TAIL_FACTOR:
        return "not met", measured
    if len(present) < len(factors) or {c.split("/")[0] for c, _ in present} != set(CONDITIONS):
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


def target_vs_carveout(v):
    """GCMA p99 at most CARVEOUT_FACTOR x the carveout's, every condition and size."""
    worst, missing = None, []
    for c in CONDITIONS:
        for p in v.sizes:
            r = ratio(v.s("gcma", c, p, "p99_us"), v.s("carveout", c, p, "p99_us"))
            if r is None:
                missing.append(f"{c}/{p}")
            elif worst is None or r > worst[0]:
                worst = (r, f"{c}/{p}")
    if worst is None:
        return "not measured", "no GCMA and carveout latencies"
    over = [f"{c}/{p}" for c in CONDITIONS for p in v.sizes
            if (r := ratio(v.s("gcma", c, p, "p99_us"), v.s("carveout", c, p, "p99_us"))) is not None
            and r > CARVEOUT_FACTOR]
    measured = f"worst GCMA/carveout p99 = {fmt_ratio(worst[0])} ({worst[1]} pages)"
    if over:
        return "not met", f"{measured}; over {CARVEOUT_FACTOR:.0f}x at {', '.join(over)}"
    if missing:
        return "not measured", f"{measured}; missing: {', '.join(missing)}"
    return "met", measured


def target_below_cma(v):
    """GCMA p99 below CMA's (Linux policy) in every condition and size, idle included."""
    losses, missing, seen = [], [], 0
    for c in CONDITIONS:
        for p in v.sizes:
            g, m = v.s("gcma", c, p, "p99_us"), v.s("cma", c, p, "p99_us")
            if not (is_num(g) and is_num(m)):
                missing.append(f"{c}/{p}")
                continue
            seen += 1
            if g >= m:
                losses.append(f"{c}/{p} (GCMA {fmt_num(g, ' µs')}, CMA {fmt_num(m, ' µs')})")
    if not seen:
        return "not measured", "no GCMA and CMA latencies"
    if losses:
        return "not met", "GCMA p99 not below CMA's at " + "; ".join(losses)
    if missing:
        return "not measured", f"below at {seen} pair(s); missing: {', '.join(missing)}"
    return "met", f"below CMA's at all {seen} condition/size pairs"


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
        (f"GCMA p99 ≥{PINNED_RATIO:.0f}x below CMA p99, {PINNED_CONDITION}, every size",)
        + target_speedup(v, PINNED_CONDITION, PINNED_RATIO),
        (f"GCMA p99 ≥{PAGECACHE_RATIO:.0f}x below CMA p99, pagecache, every size",)
        + target_speedup(v, "pagecache", PAGECACHE_RATIO),
        ("no GCMA frame dropped",) + target_misses(v),
        (f"GCMA max ≤ {TAIL_FACTOR:.0f}x its p50, every size",) + target_tail(v),
        (f"GCMA device reads within {READS_SLACK:.0%} of none, below carveout",) + target_reads(v),
        (f"GCMA per-page cost ≤ 1/{1 / PER_PAGE_FRACTION:.0f} of memset",) + target_per_page(v),
        (f"GCMA p99 ≤ {CARVEOUT_FACTOR:.0f}x the carveout's, every condition and size",) + target_vs_carveout(v),
        ("GCMA p99 below CMA's in every condition and size, idle included",) + target_below_cma(v),
        (f"our CMA within {CALIBRATION_FACTOR:.0f}x of Linux CMA (p50 and p99), every pair both have",)
        + target_calibration(v),
    ]


def calibration_pairs(v):
    """(condition, pages, CMA/Linux p50, CMA/Linux p99) for every pair both have."""
    out = []
    for c in CONDITIONS:
        for p in v.sizes:
            r50 = ratio(v.s("cma", c, p, "p50_us"), v.lx(c, p, "p50_us"))
            r99 = ratio(v.s("cma", c, p, "p99_us"), v.lx(c, p, "p99_us"))
            if r50 is not None and r99 is not None:
                out.append((c, p, r50, r99))
    return out


def within(r):
    return 1 / CALIBRATION_FACTOR <= r <= CALIBRATION_FACTOR


def target_calibration(v):
    pairs = calibration_pairs(v)
    if not pairs:
        return "not measured", "no Linux CMA reference"
    off = [f"{c}/{p} (p50 {fmt_ratio(a)}, p99 {fmt_ratio(b)})" for c, p, a, b in pairs
           if not (within(a) and within(b))]
    if off:
        return "not met", f"{len(pairs) - len(off)} of {len(pairs)} pairs within; outside: " + "; ".join(off)
    return "met", f"all {len(pairs)} pairs within {CALIBRATION_FACTOR:.0f}x"


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
        "compare its ratio to GCMA, not its absolute times)."
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
