"""The project targets (met / not met / not measured) over a `View`.
Stdlib only.
"""

from benchlog import CONDITIONS, ONE_CORE_CONDITIONS
from view import fmt_num, fmt_pct, fmt_ratio, is_num, ratio, success_pct

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
ONE_CORE_FACTOR = 2.0


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
        (f"GCMA p99 with the load on other cores within {ONE_CORE_FACTOR:.0f}x of its one-core p99",)
        + target_cores(v),
    ]


def target_cores(v):
    """GCMA p99 at cores=N at most ONE_CORE_FACTOR x its p99 at cores=1,
    every condition with a load and every size."""
    if v.one is None and v.cores == 1:
        return "not measured", "one core: a one-core boot has no comparison runs"
    if v.one is None:
        return "not measured", f"no cores=1 comparison runs in this {v.cores}-core run"
    pairs, missing = [], []
    for c in ONE_CORE_CONDITIONS:
        for p in sorted(set(v.sizes) | set(v.one.sizes)):
            several, one = v.s("gcma", c, p, "p99_us"), v.one.s("gcma", c, p, "p99_us")
            r = ratio(several, one)
            if r is None:
                missing.append(f"{c}/{p}")
            else:
                pairs.append((r, c, p, several, one))
    if not pairs:
        return "not measured", "no GCMA p99 at both core counts"
    r, c, p, several, one = max(pairs, key=lambda t: t[0])
    measured = (f"worst cores={v.cores}/cores=1 p99 = {fmt_ratio(r)} ({c}/{p} pages: {fmt_num(several, ' µs')} "
                f"against {fmt_num(one, ' µs')})")
    over = [f"{c}/{p}" for r, c, p, _, _ in pairs if r > ONE_CORE_FACTOR]
    if over:
        return "not met", f"{measured}; over {ONE_CORE_FACTOR:.0f}x at {', '.join(over)}"
    if missing:
        return "not measured", f"{measured}; missing: {', '.join(missing)}"
    return "met", f"{measured}; all {len(pairs)} condition/size pairs within"


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
    cores = (f" (Linux on {v.linux_smp} core(s), ours at cores={v.cores}: not the same core count)"
             if is_num(v.linux_smp) and v.linux_smp != v.cores else "")
    off = [f"{c}/{p} (p50 {fmt_ratio(a)}, p99 {fmt_ratio(b)})" for c, p, a, b in pairs
           if not (within(a) and within(b))]
    if off:
        return "not met", f"{len(pairs) - len(off)} of {len(pairs)} pairs within; outside: " + "; ".join(off) + cores
    return "met", f"all {len(pairs)} pairs within {CALIBRATION_FACTOR:.0f}x{cores}"
