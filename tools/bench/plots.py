"""PNG plots of a benchmark run (matplotlib, Agg backend: no display needed).

Every function takes bench.json (and the @latency samples) and writes one
file; missing data shows as a note inside the figure, never as an error.
"""

import os

from benchlog import ALLOCATORS, CONDITIONS, SETUPS

COLORS = {"gcma": "#2a9d3f", "cma": "#d1495b", "cma-retry": "#e9a03b", "carveout": "#5b6c8f", "none": "#9a9a9a"}
NAMES = {"gcma": "GCMA", "cma": "CMA", "cma-retry": "CMA (Android retry)", "carveout": "carveout", "none": "none"}
FILES = {
    "latency": "alloc-latency-cdf.png",
    "frames": "frame-deadline-misses.png",
    "reads": "device-reads.png",
}


def load_pyplot():
    """matplotlib.pyplot with the Agg backend; raises ImportError if absent."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def subtitle(data):
    accel = data.get("accel")
    how = "QEMU TCG (emulation): compare ratios, not times" if accel == "tcg" else accel
    return f"{data.get('board')} / {how} / commit {data.get('commit')}"


def cdf_axes(ax, condition, latency):
    from matplotlib.ticker import FuncFormatter

    drawn = 0
    for allocator in ALLOCATORS:
        samples = sorted(s for s in latency.get((allocator, condition), []) if s > 0)
        if not samples:
            continue
        n = len(samples)
        ys = [(i + 1) / n for i in range(n)]
        ax.step(samples, ys, where="post", color=COLORS[allocator], label=f"{NAMES[allocator]} (n={n})")
        drawn += 1
    ax.set_title(condition)
    ax.set_ylim(0, 1.02)
    ax.grid(True, which="both", alpha=0.3)
    if drawn:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda x, _: ""))
        ax.legend(loc="lower right", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no samples", ha="center", va="center", transform=ax.transAxes, color="#888")


def plot_latency(plt, data, latency, path):
    cols = (len(CONDITIONS) + 1) // 2
    fig, axes = plt.subplots(2, cols, figsize=(5.5 * cols, 8))
    for ax, condition in zip(axes.flat, CONDITIONS):
        cdf_axes(ax, condition, latency)
    for ax in list(axes.flat)[len(CONDITIONS):]:
        ax.set_visible(False)
    for ax in axes[1]:
        ax.set_xlabel("allocation latency (µs, log scale)")
    for ax in axes[:, 0]:
        ax.set_ylabel("fraction of allocations ≤ x")
    fig.suptitle("Contiguous allocation latency CDF per condition\n" + subtitle(data), fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def label_bars(ax, bars, labels):
    for bar, label in zip(bars, labels):
        ax.annotate(label, (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=8, xytext=(0, 2), textcoords="offset points")


def plot_frames(plt, data, path):
    rows = {(r.get("allocator"), r.get("condition")): r for r in data.get("frames", []) if isinstance(r, dict)}
    fig, ax = plt.subplots(figsize=(9, 5))
    width = 0.8 / len(ALLOCATORS)
    for i, allocator in enumerate(ALLOCATORS):
        xs, heights, labels = [], [], []
        for j, condition in enumerate(CONDITIONS):
            row = rows.get((allocator, condition)) or {}
            dropped, late = row.get("dropped"), row.get("deadline_misses")
            xs.append(j + (i - (len(ALLOCATORS) - 1) / 2) * width)
            heights.append(dropped if isinstance(dropped, (int, float)) else 0)
            labels.append(f"{dropped}/{late}" if row else "missing")
        bars = ax.bar(xs, heights, width, color=COLORS[allocator], label=NAMES[allocator])
        label_bars(ax, bars, labels)
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xticks(range(len(CONDITIONS)), CONDITIONS)
    ax.set_ylabel("dropped frames (labels: dropped/late)")
    ax.set_ylim(0, max(1, ax.get_ylim()[1] * 1.15))
    ax.legend()
    ax.grid(True, axis="y", alpha=0.3)
    frames = sorted({r.get("frames") for r in rows.values() if isinstance(r.get("frames"), int)})
    of = f" of {frames[0]}" if len(frames) == 1 else ""
    ax.set_title(f"Camera frames dropped (no buffer queued){of} per run\n" + subtitle(data), fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_reads(plt, data, path):
    from matplotlib.ticker import FuncFormatter

    rows = {r.get("setup"): r for r in data.get("utilization", []) if isinstance(r, dict)}
    none = (rows.get("none") or {}).get("read_sectors")
    heights, labels = [], []
    for setup in SETUPS:
        sectors = (rows.get(setup) or {}).get("read_sectors")
        heights.append(sectors if isinstance(sectors, (int, float)) else 0)
        if not isinstance(sectors, (int, float)):
            labels.append("missing")
        elif isinstance(none, (int, float)) and none > 0 and setup != "none":
            labels.append(f"{sectors:,} ({100 * (sectors / none - 1):+.1f}%)")
        else:
            labels.append(f"{sectors:,}")
    fig, ax = plt.subplots(figsize=(9.5, 5))
    bars = ax.bar(range(len(SETUPS)), heights, color=[COLORS[s] for s in SETUPS])
    label_bars(ax, bars, labels)
    ax.set_xticks(range(len(SETUPS)), [NAMES[s] for s in SETUPS])
    ax.set_ylabel("device sectors read (lower is better; % vs none)")
    ax.set_ylim(0, max(1, ax.get_ylim()[1] * 1.12))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:,.0f}"))
    ax.grid(True, axis="y", alpha=0.3)
    ax.set_title("Device reads of the same workload per reserved-memory setup\n" + subtitle(data), fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_plots(data, latency, out_dir):
    """Write every plot into out_dir; return {name: path}. Raises ImportError
    when matplotlib is missing."""
    plt = load_pyplot()
    paths = {name: os.path.join(out_dir, file) for name, file in FILES.items()}
    plot_latency(plt, data, latency, paths["latency"])
    plot_frames(plt, data, paths["frames"])
    plot_reads(plt, data, paths["reads"])
    return paths
