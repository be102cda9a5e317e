#!/usr/bin/env bash
# Ingest figures (BENCHMARKS.md, issue #3), on the embedded default with
# synced acks and the default flusher (1 s interval) running:
#   1. single-event POSTs, 64 keep-alive clients, as fast as acknowledged;
#   2. single-event POSTs, 64 clients, a fixed 15,000 events/s (latency);
#   3. bulk, 1,000 × 100-byte events per request, 8 clients.
# 1 and 2 are -runs N (default 5) on a fresh server each; 3 is N runs on a
# fresh server each, so no run starts behind another's flush backlog.
set -euo pipefail
cd "$(dirname "$0")/.."
addr=127.0.0.1:18556
. scripts/bench-lib.sh

echo "== single events, 64 clients, as fast as acknowledged"
start
bench -mode single -clients 64 -duration 8s -warmup 2s -runs "$runs"
stop

echo "== single events, 64 clients, 15,000 events/s"
start
bench -mode single -clients 64 -rate 15000 -duration 8s -warmup 2s -runs "$runs"
stop

echo "== bulk, 1,000 × 100 B per request, 8 clients"
for _ in $(seq 1 "$runs"); do
	start
	bench -mode bulk -clients 8 -batch 1000 -size 100 -duration 6s -warmup 1s
	stop
done
