"""The several-core parts of the demo's output: sorting the runs by the
cores they ran with (the main placement, the one-core comparison) and
checking bench.json's `cores`, `sched`, `one_core` and `locks`. Stdlib only;
builds on `benchlog` (which calls in here), described in
tools/bench/README.md.
"""

from benchlog import (ALLOCATORS, CONDITIONS, CORE_SECTIONS, COPY_WAIT_FIELDS, LOCK_FIELDS, LOCK_SITES, LOCK_TIMES,
                      ONE_CORE_CONDITIONS, SCHED_FIELDS, _num, _row_label, _type_ok, check_cma_work, check_fields, check_section,
                      row_cores)


def split_cores(parsed):
    """Sort the rows by their cores=K once the @bench cores=N is known: the
    main placement (K = N) stays where it was, keyed without K; the one-core
    comparison (K = 1 < N) moves to `one_core_*`; any other K is a problem
    and the row is left out."""
    n = row_cores(parsed.meta, f"line {parsed.lines_of.get('@bench')}: @bench", parsed.problems)
    if n is None:
        parsed.problems[-1] += "; assuming 1"
    parsed.cores = n = n or 1

    def place(k, where):
        if k == n:
            return "main"
        if k == 1:
            return "one"
        parsed.problems.append(f"{where}: cores={k} is neither 1 nor the @bench cores={n}; left out")
        return None

    for section in CORE_SECTIONS:
        rows, lines = parsed.rows[section], parsed.row_lines[section]
        parsed.rows[section], parsed.row_lines[section] = {}, {}
        for key, row in rows.items():
            where = f"line {lines[key]}: @{section}"
            to = place(key[-1], where)
            if to == "main":
                parsed.rows[section][key[:-1]] = row
                parsed.row_lines[section][key[:-1]] = lines[key]
            elif to == "one":
                parsed.one_core_rows[section][key[:-1]] = row
    latency = parsed.latency
    parsed.latency = {}
    for key, samples in latency.items():
        to = place(key[-1], f"line {parsed.lines_of[key]}: @latency")
        {"main": parsed.latency, "one": parsed.one_core_latency}.get(to, {})[key[:-1]] = samples
    work = parsed.cma_work
    parsed.cma_work = []
    for row in work:
        if row["cores"] is not None:
            to = place(row["cores"], f"line {parsed.lines_of[id(row)]}: @cmawork")
            {"main": parsed.cma_work, "one": parsed.one_core_cma_work}.get(to, []).append(row)
    locks = [r for r in parsed.locks if r["cores"] is not None
             and place(r["cores"], f"line {parsed.lines_of[id(r)]}: @lock") is not None]
    parsed.locks = sorted(locks, key=lambda r: (_index(CONDITIONS, r["condition"]),
                                                _index(ALLOCATORS, r["allocator"]), r["cores"]))
    sched = parsed.sched
    if sched is not None and sched.get("cores") is not None and sched["cores"] != n:
        parsed.problems.append(f"line {parsed.lines_of['@sched']}: @sched: cores={sched['cores']} "
                               f"but @bench cores={n}")


def _index(kinds, value):
    return kinds.index(value) if value in kinds else len(kinds)


# --- bench.json ---------------------------------------------------------------


def run_cores(data):
    """(N, problems): the top-level cores (1 when absent)."""
    n = data.get("cores", 1)
    if _type_ok(int, n) and n >= 1:
        return n, []
    return 1, [f"cores: {n!r} is not a positive integer"]


def check_row_cores(name, rows, allowed, section=None):
    """Each row's cores (when it has one, typed) is one of `allowed`."""
    problems = []
    for i, row in enumerate(rows if isinstance(rows, list) else []):
        k = row.get("cores") if isinstance(row, dict) else None
        if _type_ok(int, k) and k not in allowed:
            label = _row_label(section, i, row, name) if section else f"{name}[{i}]"
            problems.append(f"{label}.cores: {k} is not {' or '.join(map(str, sorted(allowed)))}")
    return problems


def check_one_core(one, n):
    """null, or {"alloc", "frames", "cma_work"}: the one-core comparison's
    rows, every allocator under every condition with a load, cores 1."""
    if one is None:
        return []
    if not isinstance(one, dict):
        return ["one_core: expected null or an object"]
    problems = [f"one_core: unexpected key '{k}'" for k in sorted(set(one) - {"alloc", "frames", "cma_work"})]
    if n == 1:
        problems.append("one_core: not null, but the run has one core (its rows are the top-level ones)")
    expected = [(a, c) for c in ONE_CORE_CONDITIONS for a in ALLOCATORS]
    for section in CORE_SECTIONS:
        problems += check_section(one, section, f"one_core.{section}", expected)
        problems += check_row_cores(f"one_core.{section}", one.get(section), {1}, section)
    problems += check_cma_work(one.get("cma_work", []), "one_core.cma_work")
    return problems + check_row_cores("one_core.cma_work", one.get("cma_work"), {1})


def check_lock_row(label, row, n):
    """Typed (the times may be null when nothing was acquired), nothing
    negative, contended <= acquisitions, p50 <= p99 <= max for the wait and
    the hold, cores 1 or N."""
    idle = isinstance(row, dict) and _num(row, "acquisitions") == 0
    copy = tuple(k for k, _ in COPY_WAIT_FIELDS)
    problems = check_fields(label, LOCK_FIELDS + tuple((k, str) for k in LOCK_SITES) + COPY_WAIT_FIELDS, row,
                            (LOCK_TIMES if idle else ()) + LOCK_SITES, optional=("cores",) + LOCK_SITES + copy)
    if problems:
        return problems
    negative = [k for k, t in LOCK_FIELDS if t in (int, float) and _num(row, k) is not None and row[k] < 0]
    if negative:
        problems.append(f"{label}: negative {', '.join(negative)}")
    if row["contended"] > row["acquisitions"]:
        problems.append(f"{label}: contended={row['contended']} > acquisitions={row['acquisitions']}")
    for what in ("wait", "hold"):
        p50, p99, mx = (row[f"{what}_{q}_us"] for q in ("p50", "p99", "max"))
        if None not in (p50, p99, mx) and not p50 <= p99 <= mx:
            problems.append(f"{label}: {what} p50 <= p99 <= max does not hold ({p50}, {p99}, {mx})")
    if any(_num(row, k) is not None and row[k] < 0 for k in copy):
        problems.append(f"{label}: negative copy waits")
    if row.get("cores", 1) not in (1, n):
        problems.append(f"{label}.cores: {row['cores']} is neither 1 nor the run's cores={n}")
    return problems


def check_locks(rows, n):
    if not isinstance(rows, list):
        return ["locks: expected a list"]
    problems, seen = [], set()
    for i, row in enumerate(rows):
        ok = isinstance(row, dict) and all(isinstance(row.get(k), str) for k in ("allocator", "condition"))
        label = f"locks[{row['allocator']}/{row['condition']}/{row.get('cores', 1)}]" if ok else f"locks[{i}]"
        problems += check_lock_row(label, row, n)
        key = tuple(row.get(k, 1) for k in ("name", "allocator", "condition", "cores")) if ok else None
        if key is not None and key in seen:
            problems.append(f"{label}: second row for {key[0]} at {'/'.join(map(str, key[1:]))}")
        seen.add(key)
    return problems


def check_sched(sched, n):
    if sched is None:
        return []
    problems = check_fields("sched", SCHED_FIELDS, sched, optional=())
    if not problems and sched["cores"] != n:
        problems.append(f"sched.cores: {sched['cores']}, but the run's cores is {n}")
    return problems


def check_cores_data(data):
    """Every way `data`'s several-core parts break the contract: the main
    rows' cores are the top-level cores, the comparison's 1, the locks'
    either; `sched` matches."""
    n, problems = run_cores(data)
    for section in CORE_SECTIONS:
        problems += check_row_cores(section, data.get(section), {n}, section)
    problems += check_row_cores("cma_work", data.get("cma_work"), {n})
    problems += check_one_core(data.get("one_core"), n)
    if "locks" in data:
        problems += check_locks(data["locks"], n)
    return problems + check_sched(data.get("sched"), n)
