#!/usr/bin/env bash
# End-to-end figures for the flusher (BENCHMARKS.md, issues #4 and #16), on
# the embedded default with synced acks and default flush settings:
#   1. sustained bulk ingest (1,000 × 100-byte events per request, 4
#      clients) with committed rows/s, the hot backlog, the hot tier's disk
#      use and the server's RSS sampled every second; zombi-bench prints
#      each run's RSS and the hot tier's bytes per event held, and writes
#      the samples to $ZOMBI_BENCH_OUT/sustained.csv (bench-out/) for
#      scripts/plot-bench.py; the server's peak RSS (VmHWM) is printed at
#      the end;
#   2. ack → visible in loadTable at a fixed 10,000 single events/s.
# Each is -runs N (RUNS, default 5) on one server; zombi-bench prints the
# median. SERVE_ARGS adds flags to zombi serve, e.g. SERVE_ARGS=
# "--maintenance-interval 0" to leave compaction out of the RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
addr=127.0.0.1:18555
. scripts/bench-lib.sh
series="$out/sustained.csv"
rm -f "$series"
echo "== $(date -u +%FT%TZ) $(git rev-parse --short HEAD), load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"

echo "== bulk, end to end${SERVE_ARGS:+, zombi serve $SERVE_ARGS}"
# shellcheck disable=SC2086 # SERVE_ARGS is a list of flags
start ${SERVE_ARGS:-}
bench -table bulk -mode bulk -clients 4 -batch 1000 -size 100 \
	-duration 30s -warmup 3s -runs "$runs" -watch -series "$series"
echo "server peak RSS (VmHWM, whole life): $(awk '/^VmHWM/ { printf "%.0f MiB", $2 / 1024 }' "/proc/$srv/status")"
echo "== load average $(cut -d' ' -f1-3 /proc/loadavg); time series: $series"
stop

echo "== ack → visible at 10,000 events/s"
# shellcheck disable=SC2086
start ${SERVE_ARGS:-}
bench -table visible -mode single -clients 64 -rate 10000 \
	-duration 20s -warmup 3s -runs "$runs" -watch
