"""Parse the demo's `@` lines, build bench.json, and validate it.

Stdlib only. The line format and the JSON contract are described in
tools/bench/README.md; the several-core parts (sorting runs by their cores,
checking cores/sched/one_core/locks) are in `corelog`.
"""

import math
import re

ALLOCATORS = ("gcma", "cma", "cma-retry", "carveout")
CONDITIONS = ("idle", "pagecache", "anon", "odirect", "longpin")
SETUPS = ("none", "carveout", "cma", "gcma")
BOARDS = ("qemu-virt", "rpi4")
ACCELS = ("tcg", "kvm", "hw")

# Field kinds: an enum (tuple of allowed strings), int, float, or
# "float|null" (a float that may legitimately be null).
NULLABLE_FLOAT = "float|null"

ROW_FIELDS = {
    "alloc": (
        ("allocator", ALLOCATORS),
        ("condition", CONDITIONS),
        ("pages", int),
        ("attempts", int),
        ("successes", int),
        ("p50_us", float),
        ("p99_us", float),
        ("max_us", float),
    ),
    "frames": (
        ("allocator", ALLOCATORS),
        ("condition", CONDITIONS),
        ("frames", int),
        ("deadline_misses", int),
        ("dropped", int),
        ("hardware_ms", float),
        ("wake_late_ms", float),
    ),
    "utilization": (
        ("setup", SETUPS),
        ("seconds", float),
        ("read_sectors", int),
        ("page_cache_hit_ratio", float),
        ("cleancache_hit_ratio", NULLABLE_FLOAT),
    ),
}
PER_PAGE_FIELDS = (
    ("gcma_alloc_ns", float),
    ("cma_alloc_ns", float),
    ("carveout_alloc_ns", float),
    ("take_back_ns", float),
    ("memset_ns", float),
    ("memcpy_ns", float),
    ("clear_page_ns", float),
    ("copy_page_ns", float),
    ("cc_store_ns", float),
    ("cc_restore_ns", float),
    ("cc_evict_ns", float),
)
# The fields that identify a row (its key), per section.
# An alloc row per buffer size: (allocator, condition, pages).
ROW_KEYS = {
    "alloc": ("allocator", "condition", "pages"),
    "frames": ("allocator", "condition"),
    "utilization": ("setup",),
}
# Log tag -> JSON section.
TAG_SECTION = {"@alloc": "alloc", "@frames": "frames", "@util": "utilization"}
TOP_KEYS = ("commit", "board", "accel", "alloc", "frames", "utilization", "per_page", "linux_cma",
            "tag_storage", "interleaved", "cma_work", "cores", "sched", "one_core", "locks", "host")
# Keys a bench.json written before they existed may lack (checked when present).
# `host` (tools/bench/hostsched.py) is null for a log with no sampler beside it.
OPTIONAL_TOP_KEYS = ("cma_work", "cores", "sched", "one_core", "locks", "host")
# The cores of the scheduler a camera run ran with (`cores=K` on @alloc,
# @latency, @frames, @cmawork, @lock): K = the @bench cores=N is the main
# placement (camera on core 0, load on 1..N-1), every top-level row; K = 1
# with N > 1 is the one-core comparison (every task on core 0), under
# "one_core". Absent (older logs, older bench.json): 1.
CORES = ("cores", int)
CORE_SECTIONS = ("alloc", "frames")
# The one-core comparison runs every allocator under every condition with a
# load (idle has none: placement cannot matter).
ONE_CORE_CONDITIONS = CONDITIONS[1:]
# What our CMA did in each CMA run (`@cmawork`), for the calibration against
# Linux CMA: the area's counter deltas and the CMA time inside and between
# migration passes, over every allocation of the run ([] when not run).
CMA_WORK_FIELDS = (
    ("allocator", ("cma", "cma-retry")),
    ("condition", CONDITIONS),
    ("allocations", int),
    ("failures", int),
    ("passes", int),
    ("dropped_clean", int),
    ("migrated", int),
    ("busy_retries", int),
    ("ranges_given_up", int),
    ("rescans", int),
    ("pass_ms", float),
    ("total_ms", float),
)
# The interleaved step (`@interleaved`): GCMA and the carveout allocating in
# strict alternation, one row per condition and size ([] when not run).
INTERLEAVED_FIELDS = (
    ("condition", CONDITIONS),
    ("pages", int),
    ("pairs", int),
    ("gcma_p50_us", float),
    ("gcma_p99_us", float),
    ("gcma_max_us", float),
    ("carveout_p50_us", float),
    ("carveout_p99_us", float),
    ("carveout_max_us", float),
    ("gcma_tails", int),
    ("carveout_tails", int),
)
# The tag-storage step (`@tagstore`): explicit pfn ranges of the second GCMA
# donor; "tag_storage": null when the tree had no tags@ region (no line).
TAG_STORAGE_FIELDS = (
    ("requests", int),
    ("taken", int),
    ("overlapped", int),
    ("failed", int),
    ("p50_us", float),
    ("p99_us", float),
    ("max_us", float),
    ("dropped", int),
)
# A row of results/linux-cma.json (`cargo xtask linux-cma`): Linux 6.12's own
# CMA timed under the same conditions; bench.json keeps a copy of the rows
# the run was compared with ("linux_cma": null when there was none).
LINUX_CMA_FIELDS = ROW_FIELDS["alloc"][1:] + (("smp", int),)

# The memory-state lock over one camera run (`@lock`): acquisitions on
# every core, how many waited for another core, and the distributions
# (nearest rank, µs) of the time waited and held ([] when the log has none).
LOCK_FIELDS = (
    ("name", str),
    ("allocator", ALLOCATORS),
    ("condition", CONDITIONS),
    ("acquisitions", int),
    ("contended", int),
    ("wait_p50_us", float),
    ("wait_p99_us", float),
    ("wait_max_us", float),
    ("hold_p50_us", float),
    ("hold_p99_us", float),
    ("hold_max_us", float),
    CORES,
)
LOCK_TIMES = tuple(f"{what}_{q}_us" for what in ("wait", "hold") for q in ("p50", "p99", "max"))
# The `@locksite` line after an `@lock` line, added to its row: where the
# run's longest hold took the lock, where its longest wait asked for it,
# and where the holder it waited behind had taken it (`file:line`; null for
# "-", none; absent in logs from before the line existed).
LOCK_SITES = ("hold_max_at", "wait_max_at", "wait_max_behind")
# The `@copywait` line after the areas lock's, added to that row: the run's
# GCMA allocations that waited for a cleancache copy in flight on a page
# they took back, and the longest such wait (absent in logs from before).
COPY_WAIT_FIELDS = (("copy_waits", int), ("copy_wait_max_us", float))
# The scheduler's placement (`@sched`, once; null when the log has none).
SCHED_FIELDS = (CORES, ("placement", str))

_INT_RE = re.compile(r"^[+-]?\d+$")


class Parsed:
    """Everything read from one console log."""

    def __init__(self):
        self.meta = {}  # the @bench line's fields
        self.tag_storage = None  # the @tagstore line's fields, typed
        self.interleaved = []  # the @interleaved lines' fields, typed
        self.cma_work = []  # the @cmawork lines' fields, typed (main placement)
        # While parsing, keys end with the row's cores; `split_cores` then
        # leaves the main placement's rows here, keyed as before.
        self.rows = {section: {} for section in ROW_FIELDS}  # key tuple -> row
        self.row_lines = {section: {} for section in ROW_FIELDS}  # key -> line no
        self.per_page = None  # dict, or None when there was no @perpage
        self.latency = {}  # (allocator, condition) -> [us, ...] (main placement)
        self.latency_pages = {}  # (allocator, condition[, cores]) -> pages of the kept samples
        self.cores = 1  # the @bench cores=N (1 when absent or not valid)
        self.sched = None  # the @sched line's fields, typed
        self.locks = []  # the @lock lines' fields, typed (every placement)
        # The one-core comparison (cores=1 when N > 1), keyed as the above.
        self.one_core_rows = {section: {} for section in CORE_SECTIONS}
        self.one_core_cma_work = []
        self.one_core_latency = {}
        # Line numbers for split_cores: id(row) of @cmawork/@lock rows, latency
        # keys, "@bench", "@sched".
        self.lines_of = {}
        self.exit = None  # the @exit line's fields
        self.progress = None  # the last @progress line's fields
        self.problems = []  # malformed or duplicate lines (fail --check)
        self.warnings = []  # worth saying, but not a contract violation
        self.lines = 0
        self.records = 0  # `@` lines seen, known tags or not


# --- values -------------------------------------------------------------------


def convert(kind, text):
    """Convert one `key=value` value; return (value, error message or None)."""
    if text == "null":
        return None, None
    if kind is str:
        return (text, None) if text else (None, "'' is empty")
    if isinstance(kind, tuple):
        if text in kind:
            return text, None
        return None, f"'{text}' is not one of {', '.join(kind)}"
    if kind is int:
        if _INT_RE.match(text):
            return int(text), None
        return None, f"'{text}' is not an integer"
    try:
        value = float(text)
    except ValueError:
        return None, f"'{text}' is not a number"
    if not math.isfinite(value):
        return None, f"'{text}' is not a finite number"
    return value, None


def split_fields(line):
    """Split '@tag k=v k=v' into (tag, {k: v}, [bad tokens])."""
    tokens = line.split()
    fields, bad = {}, []
    for token in tokens[1:]:
        key, sep, value = token.partition("=")
        if not sep or not key:
            bad.append(token)
        else:
            fields[key] = value
    return tokens[0], fields, bad


def typed_fields(schema, raw, where, problems):
    """Convert the schema's fields of `raw`; record problems; missing -> None."""
    out = {}
    for name, kind in schema:
        if name not in raw:
            problems.append(f"{where}: missing key '{name}'")
            out[name] = None
            continue
        value, error = convert(kind, raw[name])
        if error:
            problems.append(f"{where}: {name}={error}")
        out[name] = value
    return out


def row_cores(raw, where, problems):
    """A line's cores=K: 1 when absent, None (with a problem) when not a
    positive integer."""
    text = raw.get("cores")
    if text is None:
        return 1
    value, _ = convert(int, text)
    if value is None or value < 1:
        problems.append(f"{where}: cores='{text}' is not a positive integer")
        return None
    return value


# --- lines --------------------------------------------------------------------


def record_row(parsed, section, line_no, raw):
    where = f"line {line_no}: @{section if section != 'utilization' else 'util'}"
    row = typed_fields(ROW_FIELDS[section], raw, where, parsed.problems)
    key = tuple(row[k] for k in ROW_KEYS[section])
    if section in CORE_SECTIONS:
        row["cores"] = row_cores(raw, where, parsed.problems)
        key += (row["cores"],)
    if None in key:
        names = ROW_KEYS[section] + (("cores",) if section in CORE_SECTIONS else ())
        parsed.problems.append(f"{where}: row ignored (no valid {'/'.join(names)})")
        return
    previous = parsed.row_lines[section].get(key)
    if previous is not None:
        shown = "/".join(map(str, key[:len(ROW_KEYS[section])]))
        at = f" at cores={key[-1]}" if section in CORE_SECTIONS else ""
        parsed.problems.append(f"{where}: second row for {shown}{at} (first on line {previous}); keeping the last")
    parsed.rows[section][key] = row
    parsed.row_lines[section][key] = line_no


def record_latency(parsed, line_no, raw):
    where = f"line {line_no}: @latency"
    allocator, err_a = convert(ALLOCATORS, raw.get("allocator", "null"))
    condition, err_c = convert(CONDITIONS, raw.get("condition", "null"))
    if err_a or err_c or allocator is None or condition is None:
        parsed.problems.append(f"{where}: ignored (needs a valid allocator= and condition=)")
        return
    samples, bad = [], 0
    for text in raw.get("us", "").split(","):
        value, error = convert(float, text)
        if error or value is None:
            bad += 1
        else:
            samples.append(value)
    if bad and raw.get("us", ""):
        parsed.problems.append(f"{where}: {bad} sample(s) of {allocator}/{condition} are not numbers")
    pages, _ = convert(int, raw.get("pages", "null"))
    pages = pages if pages is not None else 0
    cores = row_cores(raw, where, parsed.problems)
    if cores is None:
        return
    key = (allocator, condition, cores)
    previous = parsed.latency_pages.get(key)
    if previous is not None and previous == pages:
        parsed.warnings.append(f"{where}: second @latency for {allocator}/{condition}/{pages}; keeping the last")
    # The CDF plots show the frame buffers: the smallest size per pair.
    if previous is None or pages <= previous:
        parsed.latency[key] = samples
        parsed.latency_pages[key] = pages
        parsed.lines_of[key] = line_no


def record_listed(parsed, rows, schema, tag, line_no, raw):
    """A line kept in a list (@cmawork, @lock): typed, with its cores."""
    where = f"line {line_no}: {tag}"
    row = typed_fields(tuple(f for f in schema if f != CORES), raw, where, parsed.problems)
    row["cores"] = row_cores(raw, where, parsed.problems)
    rows.append(row)
    parsed.lines_of[id(row)] = line_no


def record_lock_sites(parsed, line_no, raw):
    """`@locksite name=L ...`: the sites go into the last `@lock` row of L."""
    rows = [r for r in parsed.locks[-2:] if r.get("name") == raw.get("name")]
    if not rows:
        parsed.problems.append(f"line {line_no}: @locksite: no @lock line for name={raw.get('name')!r} before it")
        return
    for k in LOCK_SITES:
        if k not in raw:
            parsed.problems.append(f"line {line_no}: @locksite: missing key '{k}'")
        rows[-1][k] = None if raw.get(k, "-") == "-" else raw[k]


def record_copy_waits(parsed, line_no, raw):
    """`@copywait allocator=A condition=C ...`: into the last areas `@lock` row."""
    rows = [r for r in parsed.locks[-2:] if r.get("name") == "areas"]
    if not rows or any(rows[-1].get(k) != raw.get(k) for k in ("allocator", "condition")):
        parsed.problems.append(f"line {line_no}: @copywait: no areas @lock line of the same run before it")
        return
    renamed = {"copy_waits": raw.get("waits"), "copy_wait_max_us": raw.get("wait_max_us")}
    typed = typed_fields(COPY_WAIT_FIELDS, {k: v for k, v in renamed.items() if v is not None},
                         f"line {line_no}: @copywait", parsed.problems)
    rows[-1].update(typed)


def record_per_page(parsed, line_no, raw):
    if parsed.per_page is not None:
        parsed.problems.append(f"line {line_no}: @perpage: second @perpage line; keeping the last")
    parsed.per_page = typed_fields(PER_PAGE_FIELDS, raw, f"line {line_no}: @perpage", parsed.problems)


def parse_line(parsed, line_no, line):
    tag, raw, bad = split_fields(line)
    section = TAG_SECTION.get(tag)
    known = section or tag in ("@latency", "@perpage", "@bench", "@exit", "@progress", "@tagstore",
                                "@interleaved", "@cmawork", "@lock", "@locksite", "@copywait", "@sched")
    if known and bad:
        shown = " ".join(b[:40] for b in bad[:3])
        parsed.problems.append(f"line {line_no}: {tag}: not key=value: {shown}")
    if section:
        record_row(parsed, section, line_no, raw)
    elif tag == "@latency":
        record_latency(parsed, line_no, raw)
    elif tag == "@perpage":
        record_per_page(parsed, line_no, raw)
    elif tag == "@bench":
        parsed.meta = raw
        parsed.lines_of["@bench"] = line_no
    elif tag == "@interleaved":
        parsed.interleaved.append(
            typed_fields(INTERLEAVED_FIELDS, raw, f"line {line_no}: @interleaved", parsed.problems))
    elif tag == "@cmawork":
        record_listed(parsed, parsed.cma_work, CMA_WORK_FIELDS, tag, line_no, raw)
    elif tag == "@lock":
        record_listed(parsed, parsed.locks, LOCK_FIELDS, tag, line_no, raw)
    elif tag == "@locksite":
        record_lock_sites(parsed, line_no, raw)
    elif tag == "@copywait":
        record_copy_waits(parsed, line_no, raw)
    elif tag == "@sched":
        parsed.sched = typed_fields(SCHED_FIELDS, raw, f"line {line_no}: @sched", parsed.problems)
        parsed.lines_of["@sched"] = line_no
    elif tag == "@tagstore":
        parsed.tag_storage = typed_fields(TAG_STORAGE_FIELDS, raw, f"line {line_no}: @tagstore", parsed.problems)
    elif tag == "@exit":
        parsed.exit = raw
    elif tag == "@progress":
        parsed.progress = raw


def parse_lines(lines):
    """Parse an iterable of console lines (str) into a Parsed."""
    parsed = Parsed()
    for line_no, line in enumerate(lines, 1):
        parsed.lines = line_no
        line = line.strip()
        if not line.startswith("@"):
            continue
        parsed.records += 1
        parse_line(parsed, line_no, line)
    from corelog import split_cores  # it builds on this module

    split_cores(parsed)
    add_run_warnings(parsed)
    return parsed


def add_run_warnings(parsed):
    """Warnings about the run as a whole: how it ended, missing samples."""
    if parsed.exit is None:
        where = ""
        if parsed.progress:
            p = parsed.progress
            where = f"; last progress: step {p.get('step', '?')} of {p.get('of', '?')} ({p.get('what', '?')})"
        parsed.warnings.append(f"no @exit line: the run did not finish{where}")
    elif parsed.exit.get("status") != "0":
        parsed.warnings.append(
            f"@exit status={parsed.exit.get('status')} reason={parsed.exit.get('reason')}: the run failed"
        )
    for key in {k[:2] for k in parsed.rows["alloc"]}:
        if key not in parsed.latency:
            parsed.warnings.append(f"no @latency samples for {'/'.join(key)}: its CDF is not plotted")


# --- JSON ---------------------------------------------------------------------


def _order(section, key):
    """Sort key: by condition first, then allocator (or by setup)."""
    kinds = [dict(ROW_FIELDS[section])[k] for k in ROW_KEYS[section]]
    return tuple(v if kind is int else kind.index(v) for kind, v in zip(kinds, key))[::-1]


def build_json(parsed, commit, board, accel, linux_cma=None):
    """The bench.json document (the issue's contract), rows in canonical order;
    `linux_cma`: the reference (see `linux_cma_reference`) or None."""
    def ordered(section, rows):
        return [rows[k] for k in sorted(rows, key=lambda k: _order(section, k))]

    data = {"commit": commit, "board": board, "accel": accel}
    for section in ROW_FIELDS:
        data[section] = ordered(section, parsed.rows[section])
    per_page = parsed.per_page or {}
    data["per_page"] = {name: per_page.get(name) for name, _ in PER_PAGE_FIELDS}
    data["linux_cma"] = linux_cma
    data["tag_storage"] = parsed.tag_storage
    data["interleaved"] = parsed.interleaved
    data["cma_work"] = parsed.cma_work
    data["cores"] = parsed.cores
    data["sched"] = parsed.sched
    # The one-core comparison, the same row shapes as the top-level lists
    # (null on a one-core boot, where the main rows are the one-core runs).
    data["one_core"] = None if parsed.cores == 1 else {
        "alloc": ordered("alloc", parsed.one_core_rows["alloc"]),
        "frames": ordered("frames", parsed.one_core_rows["frames"]),
        "cma_work": parsed.one_core_cma_work,
    }
    data["locks"] = parsed.locks
    return data


def linux_cma_reference(doc, source):
    """The part of a results/linux-cma.json document that bench.json keeps:
    {"source", "what", "align_pages", "rows", "memory"}; raises ValueError when `doc`
    is not such a document."""
    if not isinstance(doc, dict) or not isinstance(doc.get("rows"), list):
        raise ValueError("no 'rows' list")
    boot = doc.get("boot") if isinstance(doc.get("boot"), dict) else {}
    order = boot.get("align_order")
    # The cores Linux booted with (-smp N): the boot's, else the rows' own.
    smp = boot.get("smp")
    if not _type_ok(int, smp):
        seen = {r.get("smp") for r in doc["rows"] if isinstance(r, dict)}
        smp = next(iter(seen)) if len(seen) == 1 else None
    smp = smp if _type_ok(int, smp) and smp > 0 else None
    return {
        "source": source,
        "what": doc.get("what"),
        "align_pages": 1 << order if isinstance(order, int) and 0 <= order < 32 else None,
        "rows": doc["rows"],
        # /proc/meminfo per condition as the allocations began (CmaTotal,
        # CmaFree, anonymous and cached memory): what Linux's CMA area held.
        "memory": doc.get("memory") if isinstance(doc.get("memory"), list) else [],
        "smp": smp,
    }


# --- validation ---------------------------------------------------------------


def _type_ok(kind, value):
    if kind is str:
        return isinstance(value, str) and value != ""
    if isinstance(kind, tuple):
        return value in kind
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == NULLABLE_FLOAT and value is None:
        return True
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _kind_name(kind):
    if isinstance(kind, tuple):
        return "one of " + "|".join(kind)
    if kind == NULLABLE_FLOAT:
        return "a number or null"
    if kind is str:
        return "a non-empty string"
    return "an integer" if kind is int else "a number"


def _row_label(section, index, row, name=None):
    # Named by its enum fields (allocator/condition, or setup).
    keys = [k for k in ROW_KEYS[section] if k != "pages"]
    if isinstance(row, dict) and all(isinstance(row.get(k), str) for k in keys):
        return f"{name or section}[{'/'.join(row[k] for k in keys)}]"
    return f"{name or section}[{index}]"


def check_fields(label, schema, row, allow_null=(), optional=(CORES[0],)):
    """Exact key set and types of one object; `optional` keys may be absent
    (a row's cores: written before there were several)."""
    problems = []
    if not isinstance(row, dict):
        return [f"{label}: expected an object, got {type(row).__name__}"]
    names = [name for name, _ in schema]
    for extra in sorted(set(row) - set(names)):
        problems.append(f"{label}: unexpected key '{extra}'")
    for name, kind in schema:
        if name not in row and name in optional:
            continue
        if name not in row:
            problems.append(f"{label}.{name}: missing")
        elif row[name] is None and (name in allow_null or kind == NULLABLE_FLOAT):
            continue
        elif row[name] is None:
            problems.append(f"{label}.{name}: null, expected {_kind_name(kind)}")
        elif not _type_ok(kind, row[name]):
            problems.append(f"{label}.{name}: {row[name]!r} is not {_kind_name(kind)}")
    return problems


def _num(row, name):
    value = row.get(name)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return value if ok else None


def check_latency_row(label, schema, row):
    """An allocation row (ours, or Linux CMA's): fields and types, successes
    <= attempts, nothing negative, p50 <= p99 <= max."""
    # A row where nothing succeeded may have no latency to report.
    nothing = _num(row, "successes") == 0 if isinstance(row, dict) else False
    allow = ("p50_us", "p99_us", "max_us") if nothing else ()
    problems = check_fields(label, schema, row, allow)
    if not isinstance(row, dict):
        return problems
    succ, att = _num(row, "successes"), _num(row, "attempts")
    if succ is not None and att is not None and succ > att:
        problems.append(f"{label}: successes={succ} > attempts={att}")
    for name in ("pages", "attempts", "successes", "p50_us", "p99_us", "max_us"):
        if (_num(row, name) or 0) < 0:
            problems.append(f"{label}.{name}: negative ({row[name]})")
    p50, p99, mx = (_num(row, n) for n in ("p50_us", "p99_us", "max_us"))
    if p50 is not None and p99 is not None and p50 > p99:
        problems.append(f"{label}: p50_us={p50} > p99_us={p99}")
    if p99 is not None and mx is not None and p99 > mx:
        problems.append(f"{label}: p99_us={p99} > max_us={mx}")
    return problems


def check_alloc_row(label, row):
    return check_latency_row(label, ROW_FIELDS["alloc"] + (CORES,), row)


def check_frames_row(label, row):
    problems = check_fields(label, ROW_FIELDS["frames"] + (CORES,), row)
    frames, misses, dropped = (_num(row, n) for n in ("frames", "deadline_misses", "dropped"))
    if frames is not None and misses is not None and misses > frames:
        problems.append(f"{label}: deadline_misses={misses} > frames={frames}")
    if frames is not None and dropped is not None and dropped > frames:
        problems.append(f"{label}: dropped={dropped} > frames={frames}")
    # A dropped frame is never captured, so never late as well.
    if None not in (frames, misses, dropped) and misses + dropped > frames:
        problems.append(f"{label}: deadline_misses={misses} + dropped={dropped} > frames={frames}")
    for name in ("frames", "deadline_misses", "dropped", "hardware_ms", "wake_late_ms"):
        if (_num(row, name) or 0) < 0:
            problems.append(f"{label}.{name}: negative ({row[name]})")
    return problems


def check_util_row(label, row):
    problems = check_fields(label, ROW_FIELDS["utilization"], row)
    for name in ("page_cache_hit_ratio", "cleancache_hit_ratio"):
        value = _num(row, name)
        if value is not None and not 0.0 <= value <= 1.0:
            problems.append(f"{label}.{name}: {value} is outside [0, 1]")
    if isinstance(row, dict) and row.get("setup") == "gcma" and row.get("cleancache_hit_ratio", 0) is None:
        problems.append(f"{label}.cleancache_hit_ratio: null, but GCMA lends memory to cleancache")
    for name in ("seconds", "read_sectors"):
        if (_num(row, name) or 0) < 0:
            problems.append(f"{label}.{name}: negative ({row[name]})")
    return problems


ROW_CHECKS = {"alloc": check_alloc_row, "frames": check_frames_row, "utilization": check_util_row}


def expected_keys(section):
    if section == "utilization":
        return [(s,) for s in SETUPS]
    return [(a, c) for c in CONDITIONS for a in ALLOCATORS]


def check_coverage(section, rows, name=None, expected=None):
    """Every expected row (default: `expected_keys`) present exactly once."""
    name, expected = name or section, expected or expected_keys(section)
    seen, problems = {}, []
    for row in rows:
        if isinstance(row, dict):
            key = tuple(row.get(k) for k in ROW_KEYS[section])
            seen[key] = seen.get(key, 0) + 1
    # Coverage is per (allocator, condition) / setup; alloc may have one row
    # per buffer size.
    covered = {k[:len(expected[0])] for k in seen}
    for key, count in seen.items():
        if count > 1 and None not in key:
            problems.append(f"{name}: {'/'.join(map(str, key))} appears {count} times")
    missing = ["/".join(k) for k in expected if k not in covered]
    if missing:
        problems.append(f"{name}: missing {len(missing)} row(s): {', '.join(missing)}")
    return problems


def check_section(data, section, name=None, expected=None):
    """`data[section]`'s rows (reported as `name`), then their coverage."""
    rows, name = data.get(section), name or section
    if not isinstance(rows, list):
        return [f"{name}: expected a list, got {type(rows).__name__}"]
    problems = []
    for index, row in enumerate(rows):
        problems += ROW_CHECKS[section](_row_label(section, index, row, name), row)
    return problems + check_coverage(section, rows, name, expected)


def check_per_page(per_page):
    if isinstance(per_page, dict) and per_page and all(v is None for v in per_page.values()):
        return ["per_page: missing (no @perpage line in the log)"]
    problems = check_fields("per_page", PER_PAGE_FIELDS, per_page)
    for name, _ in PER_PAGE_FIELDS:
        value = _num(per_page, name) if isinstance(per_page, dict) else None
        if value is not None and value < 0:
            problems.append(f"per_page.{name}: negative ({value})")
    return problems


def check_linux_cma(ref):
    """The Linux reference kept in bench.json: null, or its rows well formed
    (one per condition and size at most, successes <= attempts, p50 <= p99
    <= max)."""
    if ref is None:
        return []
    if not isinstance(ref, dict) or not isinstance(ref.get("rows"), list):
        return ["linux_cma: expected null or an object with a 'rows' list"]
    problems, seen = [], set()
    for index, row in enumerate(ref["rows"]):
        label = f"linux_cma.rows[{index}]"
        problems += check_latency_row(label, LINUX_CMA_FIELDS, row)
        if isinstance(row, dict):
            key = (row.get("condition"), row.get("pages"))
            if key in seen:
                problems.append(f"{label}: second row for {key[0]}/{key[1]}")
            seen.add(key)
    return problems


def check_tag_storage(row):
    """null, or every field present and typed, the counts adding up
    (taken + overlapped + failed == requests) and p50 <= p99 <= max when
    anything was taken."""
    if row is None:
        return []
    problems = check_fields("tag_storage", TAG_STORAGE_FIELDS, row)
    if problems or not isinstance(row, dict):
        return problems
    if row["taken"] + row["overlapped"] + row["failed"] != row["requests"]:
        problems.append("tag_storage: taken + overlapped + failed != requests")
    if row["taken"] and not row["p50_us"] <= row["p99_us"] <= row["max_us"]:
        problems.append("tag_storage: p50 <= p99 <= max does not hold")
    return problems


def check_rows(name, schema, rows, check_row):
    """A list of rows under `name`, every field typed by `schema`; then
    `check_row(label, row)` (a list of problems) on each well-typed row."""
    if not isinstance(rows, list):
        return [f"{name}: expected a list"]
    problems = []
    for i, row in enumerate(rows):
        label = f"{name}[{i}]"
        bad = check_fields(label, schema, row)
        problems += bad or check_row(label, row)
    return problems


def check_interleaved(rows):
    """A list of rows, every field typed, p50 <= p99 <= max on both sides."""
    def ordered(label, row):
        return [f"{label}: {side} p50 <= p99 <= max does not hold" for side in ("gcma", "carveout")
                if not row[f"{side}_p50_us"] <= row[f"{side}_p99_us"] <= row[f"{side}_max_us"]]
    return check_rows("interleaved", INTERLEAVED_FIELDS, rows, ordered)


def check_cma_work(rows, name="cma_work"):
    """A list of rows, every field typed, counts not negative, the time
    inside passes not above the total."""
    def sane(label, row):
        negative = [k for k, t in CMA_WORK_FIELDS if t in (int, float) and row[k] < 0]
        if negative:
            return [f"{label}: negative {', '.join(negative)}"]
        if row["pass_ms"] > row["total_ms"]:
            return [f"{label}: pass_ms {row['pass_ms']} > total_ms {row['total_ms']}"]
        return []
    return check_rows(name, CMA_WORK_FIELDS + (CORES,), rows, sane)


HOST_ROW_NUMBERS = ("cores", "step", "wall_s", "camera_run_pct", "camera_wait_pct", "main_run_pct", "qemu_cores")


def check_host(host):
    """`host`: null, or {"host_cores": N or null, "policy": text or null
    (absent in older runs), "rows": [...]} with one row per camera run
    (tools/bench/hostsched.py)."""
    if host is None:
        return []
    if not isinstance(host, dict) or not isinstance(host.get("rows"), list):
        return ["host: expected null or an object with a rows list"]
    problems = []
    if host.get("policy") is not None and not isinstance(host["policy"], str):
        problems.append(f"host.policy: {host['policy']!r} is not a string or null")
    for i, row in enumerate(host["rows"]):
        if not isinstance(row, dict):
            problems.append(f"host.rows[{i}]: expected an object")
            continue
        if row.get("allocator") not in ALLOCATORS or row.get("condition") not in CONDITIONS:
            problems.append(f"host.rows[{i}]: unknown allocator or condition")
        for k in HOST_ROW_NUMBERS:
            if not _type_ok(float, row.get(k)) or row[k] < 0:
                problems.append(f"host.rows[{i}].{k}: {row.get(k)!r} is not a number >= 0")
    return problems


def validate(data):
    """Every way `data` breaks the bench.json contract, one line each."""
    if not isinstance(data, dict):
        return [f"bench.json: expected an object, got {type(data).__name__}"]
    problems = [f"unexpected top-level key '{k}'" for k in sorted(set(data) - set(TOP_KEYS))]
    problems += [f"missing top-level key '{k}'" for k in TOP_KEYS
                 if k not in data and k not in OPTIONAL_TOP_KEYS]
    commit = data.get("commit")
    if "commit" in data and not (isinstance(commit, str) and commit):
        problems.append(f"commit: {commit!r} is not a non-empty string")
    for key, allowed in (("board", BOARDS), ("accel", ACCELS)):
        if key in data and data[key] not in allowed:
            problems.append(f"{key}: {data[key]!r} is not one of {', '.join(allowed)}")
    for section in ROW_FIELDS:
        if section in data:
            problems += check_section(data, section)
    if "per_page" in data:
        problems += check_per_page(data["per_page"])
    if "linux_cma" in data:
        problems += check_linux_cma(data["linux_cma"])
    if "tag_storage" in data:
        problems += check_tag_storage(data["tag_storage"])
    if "interleaved" in data:
        problems += check_interleaved(data["interleaved"])
    if "cma_work" in data:
        problems += check_cma_work(data["cma_work"])
    if "host" in data:
        problems += check_host(data["host"])
    from corelog import check_cores_data  # it builds on this module

    return problems + check_cores_data(data)
