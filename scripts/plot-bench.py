"""Plots the catalog benchmark's CSV (scripts/bench-catalog.sh).

    py="$(scripts/pyenv.sh | tail -n1)"
    "$py" scripts/plot-bench.py [CSV] [PNG]

CSV defaults to $ZOMBI_BENCH_OUT/catalog.csv (bench-out/catalog.csv), PNG
to docs/img/catalog-vs-reference.png. One group of bars per operation, one
bar per server: the median ops/s over the runs (log scale) with the range
as an error bar, and beside it the median p50 and p99 latency.
"""

from __future__ import annotations

import csv
import os
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def load(path: Path) -> tuple[list[str], list[str], dict]:
    """Operations and servers in the order they first appear, and per
    (operation, server) the lists of ops/s, p50 and p99 over the runs."""
    ops: list[str] = []
    servers: list[str] = []
    data: dict = defaultdict(lambda: {"rate": [], "p50": [], "p99": []})
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row["note"]:  # not supported: no figures
                continue
            op, server = row["op"], row["server"]
            if op not in ops:
                ops.append(op)
            if server not in servers:
                servers.append(server)
            d = data[(op, server)]
            d["rate"].append(float(row["ops_per_s"]))
            d["p50"].append(float(row["p50_ms"]))
            d["p99"].append(float(row["p99_ms"]))
    return ops, servers, data


def main() -> int:
    out_dir = Path(os.environ.get("ZOMBI_BENCH_OUT", "bench-out"))
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else out_dir / "catalog.csv"
    dst = Path(sys.argv[2]) if len(sys.argv) > 2 else REPO / "docs" / "img" / "catalog-vs-reference.png"
    ops, servers, data = load(src)
    if not ops:
        print(f"plot-bench: no figures in {src}", file=sys.stderr)
        return 1

    fig, (ax_rate, ax_lat) = plt.subplots(2, 1, figsize=(11, 8), constrained_layout=True)
    width = 0.8 / len(servers)
    colors = plt.get_cmap("tab10")
    for i, server in enumerate(servers):
        xs, med, lo, hi, p50, p99 = [], [], [], [], [], []
        for j, op in enumerate(ops):
            d = data.get((op, server))
            if not d or not d["rate"]:
                continue
            m = statistics.median(d["rate"])
            xs.append(j + (i - (len(servers) - 1) / 2) * width)
            med.append(m)
            lo.append(m - min(d["rate"]))
            hi.append(max(d["rate"]) - m)
            p50.append(statistics.median(d["p50"]))
            p99.append(statistics.median(d["p99"]))
        ax_rate.bar(xs, med, width, yerr=[lo, hi], capsize=2, label=server, color=colors(i))
        ax_lat.bar(xs, p99, width, color=colors(i), alpha=0.35)
        ax_lat.bar(xs, p50, width, color=colors(i), label=server)
    runs = max(len(d["rate"]) for d in data.values())
    ax_rate.set_yscale("log")
    ax_rate.set_ylabel("operations/s (median, range)")
    ax_rate.set_title(f"Iceberg REST catalog operations over HTTP, median of {runs} runs")
    ax_lat.set_yscale("log")
    ax_lat.set_ylabel("latency ms: p50 (solid), p99 (light)")
    for ax in (ax_rate, ax_lat):
        ax.set_xticks(range(len(ops)), ops)
        ax.grid(axis="y", which="both", alpha=0.3)
    ax_rate.legend(fontsize="small", ncols=3)
    dst.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(dst, dpi=110)
    print(dst)
    return 0


if __name__ == "__main__":
    sys.exit(main())
