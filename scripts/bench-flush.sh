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
runs="${RUNS:-5}"
tmp="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
go build -o "$tmp/zombi" ./cmd/zombi
go build -o "$tmp/zombi-bench" ./cmd/zombi-bench
addr=127.0.0.1:18555

start() {
	rm -rf "$tmp/data"
	"$tmp/zombi" serve --data-dir "$tmp/data" --listen "$addr" --log-level warn "$@" >"$tmp/zombi.log" 2>&1 &
	srv=$!
	for _ in $(seq 1 100); do curl -sf "http://$addr/health/ready" >/dev/null && return; sleep 0.1; done
	cat "$tmp/zombi.log"; exit 1
}

echo "== bulk, end to end"
start
( while sleep 5; do echo "hot dir: $(du -sm "$tmp/data/hot" | cut -f1) MiB"; done ) &
du_pid=$!
"$tmp/zombi-bench" -url "http://$addr" -table bulk -mode bulk -clients 4 -batch 1000 -size 100 \
	-duration 30s -warmup 3s -runs "$runs" -watch
kill "$du_pid"
kill "$srv"; wait "$srv" || true

echo "== ack → visible at 10,000 events/s"
start
"$tmp/zombi-bench" -url "http://$addr" -table visible -mode single -clients 64 -rate 10000 \
	-duration 20s -warmup 3s -runs "$runs" -watch
