"""Draws the benchmark scripts' CSV files as PNG plots.

    py="$(scripts/pyenv.sh | tail -n1)"
    "$py" scripts/plot-bench.py              # every CSV of the list below that exists
    "$py" scripts/plot-bench.py CSV [PNG]    # one file, of the kind its header says

Without arguments it looks in $ZOMBI_BENCH_OUT (default bench-out/; a
relative path is taken from the repository's root, as the scripts do) and
draws each of these it finds:

  catalog.csv     scripts/bench-catalog.sh     docs/img/catalog-vs-reference.png
  sustained.csv   scripts/bench-flush.sh       docs/img/sustained.png
  sustained-paced.csv  (the same, paced)       docs/img/sustained-paced.png
  compaction.csv  scripts/bench-compaction.sh  docs/img/compaction.png
  ingest.csv      scripts/bench-ingest.sh      docs/img/ingest.png

With a CSV, the kind comes from the columns of its header and PNG defaults
to that kind's file in docs/img. The plots:

- catalog: one group of bars per operation, one bar per server: the median
  ops/s over the runs (log scale) with the range as an error bar, and
  beside it the median p50 and p99 latency.
- sustained: per run, over seconds from the run's start, events
  acknowledged and rows committed per second (a commit adds a whole flush
  cycle at once, so the committed line is spiky), the hot tier's backlog
  and disk use, and the server's RSS and Go heap in use, with a triangle
  where a compaction of the table ended; a dotted line marks the end of
  the load, after which the run waits for the flusher to catch up. The
  title gives the median RSS and the hot tier's backlog bytes per event
  held (acknowledged, not yet committed; a ratio of sums over the samples
  taken under load), as zombi-bench computes them.
- compaction: MB/s per core (input bytes / process CPU time) of each run,
  one colour per label (base and head, or the benchmark), with MB/s of
  wall time, the load average at each run's start and issue #16's target.
- ingest: per run, bulk events/s, single-event events/s at 64 clients, and
  p50/p99 acknowledgement latency at a fixed rate, each with its median.
"""

from __future__ import annotations

import csv
import io
import os
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402  (pillow: a dependency of matplotlib)

REPO = Path(__file__).resolve().parents[1]
IMG = REPO / "docs" / "img"
MiB = 1 << 20


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def save(fig, dst: Path) -> None:
    """Writes fig as a PNG of 256 colours: a third of the bytes of
    matplotlib's RGBA for plots of many antialiased lines, which live in
    the repository."""
    buf = io.BytesIO()
    fig.savefig(buf, dpi=110)
    plt.close(fig)
    buf.seek(0)
    dst.parent.mkdir(parents=True, exist_ok=True)
    Image.open(buf).convert("RGB").quantize(colors=256).save(dst, optimize=True)
    print(dst)


# --- catalog (scripts/bench-catalog.sh) ---------------------------------------


def load_catalog(path: Path) -> tuple[list[str], list[str], dict]:
    """Operations and servers in the order they first appear, and per
    (operation, server) the lists of ops/s, p50 and p99 over the runs."""
    ops: list[str] = []
    servers: list[str] = []
    data: dict = defaultdict(lambda: {"rate": [], "p50": [], "p99": []})
    for row in rows(path):
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


def plot_catalog(src: Path, dst: Path) -> int:
    ops, servers, data = load_catalog(src)
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
    save(fig, dst)
    return 0


# --- sustained (scripts/bench-flush.sh, zombi-bench -series) ------------------


def num(s: str) -> float | None:
    return float(s) if s != "" else None


def sustained_summary(by_run: dict[str, list[dict[str, str]]]) -> str:
    """Median RSS over the runs' medians and the hot tier's backlog bytes
    per event held, over the samples taken under load (zombi-bench's
    definitions: a ratio of sums per run, then the median over runs)."""
    rss_medians, per_event = [], []
    for pts in by_run.values():
        load = [p for p in pts if p["phase"] == "load"]
        if not load:
            continue
        rss_medians.append(statistics.median(float(p["rss_bytes"]) for p in load))
        known = [p for p in load if p["held_events"] != ""]
        held = sum(float(p["held_events"]) for p in known)
        if held > 0:
            per_event.append(sum(float(p["backlog_bytes"]) for p in known) / held)
    s = f"RSS median {statistics.median(rss_medians) / MiB:.0f} MiB"
    if len(rss_medians) > 1:
        s += f" (run medians {min(rss_medians) / MiB:.0f}–{max(rss_medians) / MiB:.0f})"
    if per_event:
        s += f"; hot tier backlog {statistics.median(per_event):.0f} B per event held"
    return s


def plot_sustained(src: Path, dst: Path) -> int:
    by_run: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows(src):
        by_run[row["run"]].append(row)
    if not by_run:
        print(f"plot-bench: no samples in {src}", file=sys.stderr)
        return 1

    fig, (ax_rate, ax_backlog, ax_rss) = plt.subplots(3, 1, figsize=(11, 10), sharex=True, constrained_layout=True)
    colors = plt.get_cmap("tab10")
    for i, (run, pts) in enumerate(by_run.items()):
        c = colors(i)
        t = [float(p["t_s"]) for p in pts]
        acked = [num(p["acked_per_s"]) for p in pts]
        committed = [num(p["committed_per_s"]) for p in pts]
        ax_rate.plot(t, [v / 1e3 if v is not None else None for v in acked], color=c, label=f"run {run}: acknowledged")
        ax_rate.plot(t, [v / 1e3 if v is not None else None for v in committed], color=c, ls="--", label=f"run {run}: committed")
        ax_backlog.plot(t, [float(p["backlog_bytes"]) / MiB for p in pts], color=c, label=f"run {run}: backlog")
        ax_backlog.plot(t, [float(p["hot_disk_bytes"]) / MiB for p in pts], color=c, ls="--", label=f"run {run}: on disk")
        ax_rss.plot(t, [float(p["rss_bytes"]) / MiB for p in pts], color=c, label=f"run {run}: RSS")
        if "heap_inuse_bytes" in pts[0]:
            ax_rss.plot(t, [float(p["heap_inuse_bytes"]) / MiB for p in pts], color=c, ls="--", label=f"run {run}: Go heap")
        if "compacted_bytes" in pts[0]:
            # A compaction ended in the second before each point where
            # the input compacted rose.
            ends = [(float(b["t_s"]), float(b["rss_bytes"]) / MiB) for a, b in zip(pts, pts[1:])
                    if float(b["compacted_bytes"]) > float(a["compacted_bytes"])]
            if ends:
                ax_rss.plot(*zip(*ends), "v", color=c, ms=9, mec="black", label=f"run {run}: a compaction ended")
        load_end = max((float(p["t_s"]) for p in pts if p["phase"] == "load"), default=None)
        if load_end is not None:
            for ax in (ax_rate, ax_backlog, ax_rss):
                ax.axvline(load_end, color=c, ls=":", lw=1)
    loads = [float(r["load1"]) for pts in by_run.values() for r in pts if r["load1"] != ""]
    load_note = f", load average {min(loads):.1f}–{max(loads):.1f}" if loads else ""
    what = "Sustained bulk ingest at a fixed rate" if "paced" in src.stem else "Sustained bulk ingest"
    ax_rate.set_title(f"{what}, {len(by_run)} run(s){load_note}\n{sustained_summary(by_run)}", fontsize="medium")
    ax_rate.set_ylabel("thousand events/s\nacknowledged (solid), committed (dashed)")
    ax_backlog.set_ylabel("hot tier MiB\nbacklog (solid), on disk (dashed)")
    ax_rss.set_ylabel("server MiB\nRSS (solid), Go heap in use (dashed)")
    ax_rss.set_xlabel("seconds from the run's start (dotted vertical: end of the load)")
    for ax in (ax_rate, ax_backlog, ax_rss):
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
    ax_rate.legend(fontsize="small", ncols=len(by_run))
    ax_backlog.legend(fontsize="small", ncols=len(by_run))
    ax_rss.legend(fontsize="small", ncols=len(by_run))
    save(fig, dst)
    return 0


# --- compaction (scripts/bench-compaction.sh) ---------------------------------


# Issue #16's target for compaction: input MB per second of CPU time.
COMPACTION_TARGET = 44


def plot_compaction(src: Path, dst: Path) -> int:
    data = [r for r in rows(src) if r["mb_s_core"] != ""]
    if not data:
        print(f"plot-bench: no runs in {src}", file=sys.stderr)
        return 1
    labels = list(dict.fromkeys(r["label"] for r in data))
    colors = plt.get_cmap("tab10")
    fig, ax = plt.subplots(figsize=(14, 5.5), constrained_layout=True)
    xs = range(len(data))
    for i, label in enumerate(labels):
        idx = [j for j, r in enumerate(data) if r["label"] == label]
        core = [float(data[j]["mb_s_core"]) for j in idx]
        wall = [float(data[j]["mb_s"]) for j in idx]
        m = statistics.median(core)
        ax.bar(idx, core, 0.7, color=colors(i), label=f"{label}: MB/s per core (median {m:.1f}, {min(core):.1f}–{max(core):.1f})")
        ax.plot(idx, wall, "osD^v"[i % 5], color="black", mfc="white",
                label=f"{label}: MB/s of wall time (median {statistics.median(wall):.1f})")
        ax.axhline(m, color=colors(i), ls="--", lw=1)
    ax.axhline(COMPACTION_TARGET, color="red", ls=":", lw=1.5, label=f"target: {COMPACTION_TARGET} MB/s per core")
    for j, r in enumerate(data):
        ax.annotate(f"load {float(r['load1']):.1f}", (j, float(r["mb_s_core"])), textcoords="offset points",
                    xytext=(0, 3), ha="center", fontsize="x-small")
    tilt = len(data) > 10
    ax.set_xticks(list(xs), [f"{r['label']} {r['run']}" for r in data], rotation=60 if tilt else 0,
                  ha="right" if tilt else "center", fontsize="small" if tilt else None)
    ax.set_ylabel("input MB/s")
    mb_in = statistics.median(float(r["mb_in"]) for r in data)
    files_in = statistics.median(float(r["files_in"]) for r in data)
    ax.set_title(f"Compaction of {files_in:.0f} files ({mb_in:.0f} MB of Parquet) into one, per run "
                 f"({', '.join(labels)}; one process per run)")
    ax.grid(axis="y", alpha=0.3)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    save(fig, dst)
    return 0


# --- ingest (scripts/bench-ingest.sh, zombi-bench -csv) -----------------------


def plot_ingest(src: Path, dst: Path) -> int:
    by_label: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in rows(src):
        by_label[r["label"]].append(r)
    if not by_label:
        print(f"plot-bench: no runs in {src}", file=sys.stderr)
        return 1
    # Loads as fast as acknowledged (throughput matters), then loads at a
    # fixed rate (latency matters).
    unpaced = [lb for lb, rs in by_label.items() if float(rs[0]["rate"]) == 0]
    paced = [lb for lb, rs in by_label.items() if float(rs[0]["rate"]) > 0]
    panels = len(unpaced) + len(paced)
    fig, axes = plt.subplots(1, panels, figsize=(4 * panels + 1, 4.5), constrained_layout=True, squeeze=False)
    axes = list(axes[0])
    colors = plt.get_cmap("tab10")
    for k, label in enumerate(unpaced):
        ax, rs = axes[k], by_label[label]
        v = [float(r["events_per_s"]) / 1e3 for r in rs]
        m = statistics.median(v)
        ax.bar([r["run"] for r in rs], v, color=colors(k))
        ax.axhline(m, color="black", ls="--", lw=1, label=f"median {m:,.1f}k ({min(v):,.1f}–{max(v):,.1f}k)")
        r0 = rs[0]
        shape = f"{r0['clients']} clients" + (f", {r0['batch']} events/request" if r0["mode"] == "bulk" else "")
        ax.set_title(f"{label}: {shape}", fontsize="medium")
        ax.set_ylabel("thousand events acknowledged/s")
    for k, label in enumerate(paced, start=len(unpaced)):
        ax, rs = axes[k], by_label[label]
        runs = [r["run"] for r in rs]
        p50 = [float(r["p50_ms"]) for r in rs]
        p99 = [float(r["p99_ms"]) for r in rs]
        ax.bar(runs, p99, color=colors(k), alpha=0.35, label=f"p99, median {statistics.median(p99):.1f} ms")
        ax.bar(runs, p50, color=colors(k), label=f"p50, median {statistics.median(p50):.1f} ms")
        r0 = rs[0]
        ax.set_title(f"{label}: {r0['clients']} clients at {float(r0['rate']):,.0f} events/s", fontsize="medium")
        ax.set_ylabel("acknowledgement latency ms")
    loads = [float(r["load1"]) for rs in by_label.values() for r in rs if r["load1"] != ""]
    for ax in axes:
        ax.set_xlabel("run")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize="small")
    if loads:
        fig.suptitle(f"Ingest, durable acknowledgements (load average {min(loads):.1f}–{max(loads):.1f})")
    save(fig, dst)
    return 0


# --- dispatch -----------------------------------------------------------------

KINDS = {
    # kind: (default CSV name, default PNG, plotter, columns that identify it)
    "catalog": ("catalog.csv", IMG / "catalog-vs-reference.png", plot_catalog, {"server", "op", "ops_per_s"}),
    "sustained": ("sustained.csv", IMG / "sustained.png", plot_sustained, {"rss_bytes", "acked_per_s"}),
    "sustained-paced": ("sustained-paced.csv", IMG / "sustained-paced.png", plot_sustained, {"rss_bytes", "acked_per_s"}),
    "compaction": ("compaction.csv", IMG / "compaction.png", plot_compaction, {"mb_s_core"}),
    "ingest": ("ingest.csv", IMG / "ingest.png", plot_ingest, {"events_per_s", "p99_ms", "label"}),
}


def kind_of(path: Path) -> str | None:
    """The kind of a CSV by its header; of kinds with the same columns,
    the one whose default file name it has, else the first."""
    with open(path, newline="") as f:
        header = set(next(csv.reader(f), []))
    kinds = [kind for kind, (_, _, _, cols) in KINDS.items() if cols <= header]
    named = [kind for kind in kinds if KINDS[kind][0] == path.name]
    return (named or kinds or [None])[0]


def main() -> int:
    if len(sys.argv) > 1:
        src = Path(sys.argv[1])
        kind = kind_of(src)
        if kind is None:
            print(f"plot-bench: {src} is none of {', '.join(KINDS)} (by its header)", file=sys.stderr)
            return 1
        _, png, plot, _ = KINDS[kind]
        return plot(src, Path(sys.argv[2]) if len(sys.argv) > 2 else png)
    out_dir = REPO / os.environ.get("ZOMBI_BENCH_OUT", "bench-out")
    found = 0
    status = 0
    for name, png, plot, _ in KINDS.values():
        src = out_dir / name
        if src.exists():
            found += 1
            status |= plot(src, png)
    if not found:
        print(f"plot-bench: none of {', '.join(k[0] for k in KINDS.values())} in {out_dir}", file=sys.stderr)
        return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
