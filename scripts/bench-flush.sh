#!/usr/bin/env bash
# End-to-end figures for the flusher (BENCHMARKS.md, issue #4), on the
# embedded default with synced acks and default flush settings:
#   1. sustained bulk ingest (1,000 × 100-byte events per request, 4
#      clients) with committed rows/s, the hot backlog and the hot tier's
#      disk use sampled every 5 s;
#   2. ack → visible in loadTable at a fixed 10,000 single events/s.
# Each is -runs N (default 5) on one server; zombi-bench prints the median.
set -euo pipefail
cd "$(dirname "$0")/.."
addr=127.0.0.1:18555
. scripts/bench-lib.sh

echo "== bulk, end to end"
start
( while sleep 5; do echo "hot dir: $(du -sm "$tmp/data/hot" | cut -f1) MiB"; done ) &
du_pid=$!
bench -table bulk -mode bulk -clients 4 -batch 1000 -size 100 \
	-duration 30s -warmup 3s -runs "$runs" -watch
kill "$du_pid"
stop

echo "== ack → visible at 10,000 events/s"
start
bench -table visible -mode single -clients 64 -rate 10000 \
	-duration 20s -warmup 3s -runs "$runs" -watch
