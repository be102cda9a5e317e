#!/usr/bin/env bash
# Ack → visible to a live query (BENCHMARKS.md, issue #13), on the
# embedded default with default flushing (1 s): events at 10,000/s in bulks
# of 100, and a reader querying the live catalog view back to back —
# iceberg-go, PyIceberg, Spark — plus a run with no reader, whose server
# CPU against the others' is the cost of writing hot tails. Each reader
# runs $RUNS times (default 5; Spark once), each on a fresh server.
set -euo pipefail
cd "$(dirname "$0")/.."
addr=127.0.0.1:18556
. scripts/bench-lib.sh
go build -o "$tmp/zombi-livebench" ./cmd/zombi-livebench
python="$(scripts/pyenv.sh | tail -n 1)"

live() { # duration reader [args...]
	local duration=$1
	shift
	start
	"$tmp/zombi-livebench" -url "http://$addr" -rate 10000 -duration "$duration" -reader "$@"
	stop
}
for reader in none go pyiceberg; do
	for i in $(seq 1 "$runs"); do
		echo "== $reader, run $i"
		case $reader in
		pyiceberg) live 30s cmd -- "$python" scripts/live_reader.py pyiceberg ;;
		*) live 30s "$reader" ;;
		esac
	done
done
# Spark's JVM takes about 10 s to start; its first query's answer starts
# the measurement.
echo "== spark"
live 60s cmd -- "$python" scripts/live_reader.py spark 2>"$tmp/spark.log" || { tail -20 "$tmp/spark.log"; exit 1; }
