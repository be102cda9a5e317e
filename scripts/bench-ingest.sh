#!/usr/bin/env bash
# Ingest figures (BENCHMARKS.md, issue #3), on the embedded default with
# synced acks and the default flusher (1 s interval) running:
#   1. single-event POSTs, 64 keep-alive clients, as fast as acknowledged;
#   2. single-event POSTs, 64 clients, a fixed 15,000 events/s (latency);
#   3. bulk, 1,000 × 100-byte events per request, 8 clients.
# 1 and 2 are -runs N (default 5) on a fresh server each; 3 is N runs on a
# fresh server each, so no run starts behind another's flush backlog.
# One row per run goes to $ZOMBI_BENCH_OUT/ingest.csv (bench-out/), labelled
# single, single-15000 and bulk; scripts/plot-bench.py draws it.
set -euo pipefail
cd "$(dirname "$0")/.."
addr=127.0.0.1:18556
. scripts/bench-lib.sh
csv="$out/ingest.csv"
rm -f "$csv"
echo "== $(date -u +%FT%TZ) $(git rev-parse --short HEAD), load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"

echo "== single events, 64 clients, as fast as acknowledged"
start
bench -mode single -clients 64 -duration 8s -warmup 2s -runs "$runs" -csv "$csv" -label single
stop

echo "== single events, 64 clients, 15,000 events/s"
start
bench -mode single -clients 64 -rate 15000 -duration 8s -warmup 2s -runs "$runs" -csv "$csv" -label single-15000
stop

echo "== bulk, 1,000 × 100 B per request, 8 clients"
for r in $(seq 1 "$runs"); do
	start
	bench -mode bulk -clients 8 -batch 1000 -size 100 -duration 6s -warmup 1s -run "$r" -csv "$csv" -label bulk
	stop
done
# events_per_s is the CSV's 10th column.
awk -F, '$1 == "bulk" { print $10 }' "$csv" | sort -g | awk '
	{ v[n++] = $1 }
	END { if (n > 1) printf "median of %d runs by throughput: %d events/s (%d – %d)\n", n, v[int(n/2)], v[0], v[n-1] }'
echo "== load average $(cut -d' ' -f1-3 /proc/loadavg); CSV: $csv"
