"""What the results page reads bench.json through (`View`), the number
formats and the Markdown table every page and table uses. Stdlib only.
"""

START_MARKER = "<!-- bench:start -->"
END_MARKER = "<!-- bench:end -->"
DASH = "—"
NAMES = {"gcma": "GCMA", "cma": "CMA", "cma-retry": "CMA (Android retry)", "carveout": "carveout"}
SHORT = {"gcma": "GCMA", "cma": "CMA", "cma-retry": "CMA retry", "carveout": "carveout"}


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
        # Several cores: every row above is the main placement (cores=N);
        # `one` views the one-core comparison (None without one).
        cores = data.get("cores")
        self.cores = cores if isinstance(cores, int) and not isinstance(cores, bool) and cores >= 1 else 1
        one = data.get("one_core") if isinstance(data.get("one_core"), dict) else {}
        self.one = View(one) if self.cores > 1 and isinstance(one.get("alloc"), list) and one["alloc"] else None
        locks = data.get("locks")
        self.locks = [r for r in locks if isinstance(r, dict)] if isinstance(locks, list) else []
        self.sched = data.get("sched") if isinstance(data.get("sched"), dict) else {}
        # Host CPU per camera run (tools/bench/hostsched.py), by (allocator, condition, cores).
        host = data.get("host") if isinstance(data.get("host"), dict) else {}
        self.host_cores = host.get("host_cores") if is_num(host.get("host_cores")) else None
        self.host_policy = host.get("policy") if isinstance(host.get("policy"), str) else None
        self.host = self._index(host.get("rows"), ("allocator", "condition", "cores"))
        # The cores Linux booted with: the reference's, else its rows' (older bench.json).
        smp = ref.get("smp")
        seen = {r.get("smp") for r in self.linux.values() if isinstance(r, dict)}
        self.linux_smp = smp if is_num(smp) else seen.pop() if len(seen) == 1 else None

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
