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
runs="${RUNS:-5}"
tmp="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
go build -o "$tmp/zombi" ./cmd/zombi
go build -o "$tmp/zombi-bench" ./cmd/zombi-bench
addr=127.0.0.1:18556

start() {
	rm -rf "$tmp/data"
	"$tmp/zombi" serve --data-dir "$tmp/data" --listen "$addr" --log-level warn >"$tmp/zombi.log" 2>&1 &
	srv=$!
	for _ in $(seq 1 100); do curl -sf "http://$addr/health/ready" >/dev/null && return; sleep 0.1; done
	cat "$tmp/zombi.log"; exit 1
}
stop() { kill "$srv"; wait "$srv" || true; }
bench() { "$tmp/zombi-bench" -url "http://$addr" "$@"; }

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
