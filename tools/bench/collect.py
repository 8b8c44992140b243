#!/usr/bin/env python3
"""Collect the GCMA demo's benchmark lines from a console log.

Writes bench.json, PNG plots and a results page (README.md) into
build/results/<board>/<scale>/ (or --out). Committed results are written
only by --publish (through `cargo xtask publish`): into results/<board>/,
plus the block between <!-- bench:start --> and <!-- bench:end --> of the
top-level README.md, and only from a complete full-scale run without
problems. With --check it only validates. See tools/bench/README.md.
"""

import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import benchlog  # noqa: E402
import hostsched  # noqa: E402
import report  # noqa: E402

PROG = "collect"
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
SYSTEM_PYTHON = "/usr/bin/python3"
REEXEC_ENV = "BENCH_COLLECT_REEXEC"


def say(message):
    print(f"{PROG}: {message}", file=sys.stderr)


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="collect.py",
        description="Turn the demo's @-lines (console log) into bench.json, plots and a results page.",
    )
    p.add_argument("log", metavar="LOG", nargs="?",
                   help="console log file, '-' for stdin; with --check also a bench.json")
    p.add_argument("--out", help="output folder (default: <repo>/build/results/<board>/<scale>)")
    p.add_argument("--board", choices=benchlog.BOARDS, help="board (default: the @bench line's, else qemu-virt)")
    p.add_argument("--accel", choices=benchlog.ACCELS, help="accelerator (default: the @bench line's, else tcg)")
    p.add_argument("--check", action="store_true", help="validate only, write nothing; exit 1 on any problem")
    p.add_argument("--strict", action="store_true", help="when writing, exit 1 if the data has problems")
    p.add_argument("--no-plots", action="store_true", help="do not write the PNG plots")
    p.add_argument("--readme", help="README whose bench markers get the headline (default: none is touched)")
    p.add_argument("--no-readme", action="store_true", help="leave every README alone (overrides --readme)")
    p.add_argument("--publish", action="store_true",
                   help="refuse (write nothing, exit 1) unless the run is complete, full-scale, exited 0 "
                        "and has no problems; used by `cargo xtask publish`")
    p.add_argument("--commit", help="commit to record (default: git rev-parse --short HEAD, +-dirty)")
    p.add_argument("--print-commit", action="store_true",
                   help="print the commit a run would record now and exit (qemu-run.sh reads it before "
                        "the boot and passes it back with --commit)")
    p.add_argument("--linux-cma", metavar="FILE",
                   help="Linux CMA reference to compare with (default: <repo>/results/linux-cma-align256.json, "
                        "Linux aligning each request as our demo does, or on a run with N > 1 cores "
                        "results/linux-cma-align256-smpN.json when it exists; "
                        "written by `cargo xtask linux-cma`); 'none' for no comparison")
    p.add_argument("--host-sched", metavar="FILE",
                   help="host CPU per demo step (tools/bench/hostsched.py; default: hostsched.tsv beside "
                        "LOG when it exists, as qemu-run.sh writes it); 'none' to leave it out")
    args = p.parse_args(argv)
    if args.log is None and not args.print_commit:
        p.error("the following arguments are required: LOG")
    return args


# --- environment --------------------------------------------------------------


def have_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def reexec_with_system_python(argv):
    """If this python3 lacks matplotlib but Debian's /usr/bin/python3 has it
    (python3-matplotlib), run this script again with that one."""
    if os.environ.get(REEXEC_ENV) or not os.path.exists(SYSTEM_PYTHON):
        return
    if os.path.realpath(sys.executable) == os.path.realpath(SYSTEM_PYTHON):
        return
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import matplotlib"], capture_output=True)
    if probe.returncode != 0:
        return
    say(f"matplotlib is missing for {sys.executable}; running again with {SYSTEM_PYTHON}")
    sys.stdout.flush()
    sys.stderr.flush()
    os.environ[REEXEC_ENV] = "1"
    os.execv(SYSTEM_PYTHON, [SYSTEM_PYTHON, os.path.abspath(__file__)] + list(argv))


def git(*args):
    try:
        done = subprocess.run(["git", "-C", REPO_ROOT, *args], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_commit(ignore=()):
    """Short HEAD, '-dirty' if tracked files changed (outside `ignore`)."""
    head = git("rev-parse", "--short", "HEAD")
    if not head:
        return "unknown"
    excludes = []
    for path in ignore:
        rel = os.path.relpath(os.path.abspath(path), REPO_ROOT)
        if not rel.startswith(".."):
            excludes.append(f":(exclude){rel}")
    status = git("status", "--porcelain", "--untracked-files=no", "--", ".", *excludes)
    return head + ("-dirty" if status else "")


def command_line(argv):
    script = os.path.abspath(__file__)
    rel = os.path.relpath(script, os.getcwd())
    shown = rel if not rel.startswith("..") else script
    return shlex.join([shown] + list(argv))


# --- input --------------------------------------------------------------------


def read_input(path):
    """The log's text; raises OSError with a readable message."""
    if path == "-":
        return sys.stdin.read()
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def choose(flag, meta_value, allowed, default, what, warnings):
    if flag:
        if meta_value and meta_value != flag:
            warnings.append(f"--{what} {flag} overrides the log's @bench {what}={meta_value}")
        return flag
    if meta_value in allowed:
        return meta_value
    warnings.append(f"no --{what} and no valid @bench {what}=: assuming {default}")
    return default


def default_linux_cma(cores, warnings):
    """results/linux-cma-align256-smp{N}.json (Linux booted with -smp N) for a
    run with N > 1 cores when it exists, else the one-core reference."""
    one = os.path.join(REPO_ROOT, "results", "linux-cma-align256.json")
    if cores <= 1:
        return one
    several = os.path.join(REPO_ROOT, "results", f"linux-cma-align256-smp{cores}.json")
    if os.path.exists(several):
        return several
    warnings.append(f"no results/linux-cma-align256-smp{cores}.json: comparing this {cores}-core run with "
                    "the one-core Linux CMA reference")
    return one


def load_linux_cma(flag, warnings, cores=1):
    """The Linux CMA reference for bench.json (benchlog.linux_cma_reference),
    or None with a warning saying why there is none; `cores`: the run's."""
    if flag == "none":
        return None
    path = flag or default_linux_cma(cores, warnings)
    rel = os.path.relpath(os.path.abspath(path), REPO_ROOT)
    shown = rel.replace(os.sep, "/") if not rel.startswith("..") else os.path.basename(path)
    try:
        with open(path, encoding="utf-8") as f:
            return benchlog.linux_cma_reference(json.load(f), shown)
    except OSError as e:
        warnings.append(f"no Linux CMA reference ({e.strerror}: {shown}; `cargo xtask linux-cma` writes it)")
    except (json.JSONDecodeError, ValueError) as e:
        warnings.append(f"Linux CMA reference {shown} not used: {e}")
    return None


def load_host_sched(args, log_text, warnings):
    """bench.json's `host` from the sampler's file, or None without one."""
    path = args.host_sched
    if path == "none":
        return None
    if path is None:
        if args.log == "-":
            return None
        path = os.path.join(os.path.dirname(os.path.abspath(args.log)), "hostsched.tsv")
        if not os.path.exists(path):
            return None
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        rows = hostsched.host_rows(text, log_text.splitlines())
    except (OSError, ValueError) as e:
        warnings.append(f"host CPU figures left out: {path}: {e}")
        return None
    if not rows:
        warnings.append(f"host CPU figures left out: {path} has no step of this log's camera runs")
        return None
    return {"host_cores": hostsched.host_cores(text), "policy": hostsched.policy(text), "rows": rows}


def check_json_file(text, source):
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        say(f"{source}: not valid JSON: {e}")
        return 1
    problems = benchlog.validate(data)
    return finish_check(problems, [], f"{source}: bench.json")


def finish_check(problems, warnings, what):
    for warning in warnings:
        print(f"warning: {warning}")
    for problem in problems:
        print(f"problem: {problem}")
    verdict = "OK" if not problems else f"{len(problems)} problem(s)"
    print(f"{PROG}: check {what}: {verdict}, {len(warnings)} warning(s)")
    return 1 if problems else 0


def summarize(data):
    rows = len(benchlog.expected_keys("alloc"))
    pairs = {(r.get("allocator"), r.get("condition")) for r in data["alloc"] if isinstance(r, dict)}
    sizes = {r.get("pages") for r in data["alloc"] if isinstance(r, dict)}
    counts = [
        f"alloc {len(pairs & set(benchlog.expected_keys('alloc')))}/{rows} x {len(sizes)} size(s)",
        f"frames {len(data['frames'])}/{rows}",
        f"utilization {len(data['utilization'])}/4",
        "per_page " + ("yes" if any(v is not None for v in data["per_page"].values()) else "missing"),
    ]
    one = data.get("one_core")
    if isinstance(one, dict):
        expected = {(a, c) for c in benchlog.ONE_CORE_CONDITIONS for a in benchlog.ALLOCATORS}
        pairs = {(r.get("allocator"), r.get("condition")) for r in one.get("alloc", []) if isinstance(r, dict)}
        counts.append(f"cores {data.get('cores')}, one-core comparison {len(pairs & expected)}/{len(expected)}")
    if data.get("locks"):
        counts.append(f"locks {len(data['locks'])}")
    return ", ".join(counts)


# --- output -------------------------------------------------------------------


def write_text(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def make_plots(args, data, latency):
    """{name: path} of the plots written, and why any were not."""
    if args.no_plots:
        return {}, "--no-plots"
    try:
        import plots
    except ImportError as e:  # pragma: no cover - plots itself is stdlib
        return {}, str(e)
    try:
        return plots.write_plots(data, latency, args.out), None
    except ImportError:
        say("matplotlib is not installed: no plots (Debian: apt-get install python3-matplotlib)")
        return {}, "matplotlib is not installed"


def update_top_readme(args, data, run):
    if args.no_readme:
        return "skipped (--no-readme)"
    if not args.readme:
        return "not touched (no --readme)"
    try:
        with open(args.readme, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        return f"not updated ({e.strerror}: {args.readme})"
    link = os.path.relpath(os.path.join(args.out, "README.md"), os.path.dirname(os.path.abspath(args.readme)))
    new = report.replace_between_markers(text, report.readme_block(data, run, link.replace(os.sep, "/")))
    if new is None:
        return f"not updated (no {report.START_MARKER} ... {report.END_MARKER} markers in {args.readme})"
    if new != text:
        write_text(args.readme, new)
    return f"updated {args.readme}"


def write_all(args, argv, parsed, data, problems, warnings):
    os.makedirs(args.out, exist_ok=True)
    json_path = os.path.join(args.out, "bench.json")
    write_text(json_path, json.dumps(data, indent=2) + "\n")
    say(f"wrote {json_path}")
    plot_paths, plot_error = make_plots(args, data, parsed.latency)
    for path in plot_paths.values():
        say(f"wrote {path}")
    run = {
        "command": command_line(argv),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "meta": parsed.meta,
        "exit": parsed.exit,
        "problems": problems,
        "warnings": warnings,
        "plots": plot_paths,
        "plot_error": plot_error,
        "latency_counts": {k: len(v) for k, v in parsed.latency.items()},
    }
    page = os.path.join(args.out, "README.md")
    write_text(page, report.results_page(data, run))
    say(f"wrote {page}")
    say(f"top-level README: {update_top_readme(args, data, run)}")
    return len(plot_paths)


def publish_refusals(parsed, problems):
    """Why this run may not become the committed results (empty: it may)."""
    why = [f"problem: {p}" for p in problems]
    scale = parsed.meta.get("scale")
    if scale != "full":
        why.append(f"scale={scale or 'unknown'}: only a full-scale run (cargo run -- scale=full) is published")
    if parsed.exit is None:
        why.append("no @exit line: the run did not finish")
    elif parsed.exit.get("status") != "0":
        why.append(f"@exit status={parsed.exit.get('status')}: the run failed")
    return why


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.print_commit:
        print(git_commit(ignore=tuple(p for p in (args.out, args.readme) if p)))
        return 0
    if not args.check and not args.no_plots and not have_matplotlib() and __name__ == "__main__":
        reexec_with_system_python(argv)
    try:
        text = read_input(args.log)
    except OSError as e:
        say(f"cannot read {args.log}: {e.strerror or e}")
        return 2
    source = "stdin" if args.log == "-" else args.log
    if text.lstrip().startswith("{"):
        if args.check:
            return check_json_file(text, source)
        say(f"{source} looks like JSON; give the console log (or use --check to validate a bench.json)")
        return 2
    parsed = benchlog.parse_lines(text.splitlines())
    say(f"read {source}: {parsed.lines} lines, {parsed.records} @-records")
    warnings = list(parsed.warnings)
    board = choose(args.board, parsed.meta.get("board"), benchlog.BOARDS, "qemu-virt", "board", warnings)
    accel = choose(args.accel, parsed.meta.get("accel"), benchlog.ACCELS, "tcg", "accel", warnings)
    if not args.out:
        args.out = os.path.join(REPO_ROOT, "build", "results", board, parsed.meta.get("scale") or "quick")
    commit = args.commit or git_commit(ignore=tuple(p for p in (args.out, args.readme) if p))
    linux = load_linux_cma(args.linux_cma, warnings, parsed.cores)
    data = benchlog.build_json(parsed, commit, board, accel, linux)
    data["host"] = load_host_sched(args, text, warnings)
    problems = parsed.problems + benchlog.validate(data)
    if args.check:
        return finish_check(problems, warnings, f"{source} ({summarize(data)})")
    if args.publish:
        refusals = publish_refusals(parsed, problems)
        if refusals:
            for why in refusals:
                say(f"refusing to publish: {why}")
            say(f"nothing written; {source} stays where it is")
            return 1
    for warning in warnings:
        say(f"warning: {warning}")
    for problem in problems:
        say(f"problem: {problem}")
    n_plots = write_all(args, argv, parsed, data, problems, warnings)
    print(f"{PROG}: {board}/{accel} {commit}: {summarize(data)}; {n_plots} plot(s); "
          f"{len(problems)} problem(s), {len(warnings)} warning(s); results in {args.out}")
    return 1 if args.strict and problems else 0


if __name__ == "__main__":
    sys.exit(main())
