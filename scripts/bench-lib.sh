# Shared by the bench-*.sh scripts (sourced, with $addr set): builds zombi
# and zombi-bench into a temporary directory removed on exit, and defines
# start (a fresh server on an empty data dir; extra arguments go to zombi
# serve), stop and bench (zombi-bench against it). RUNS sets $runs (5);
# ZOMBI_BENCH_OUT sets $out (bench-out), where the scripts write their CSV.
runs="${RUNS:-5}"
out="${ZOMBI_BENCH_OUT:-bench-out}"
mkdir -p "$out"
tmp="$(mktemp -d)"
# Under set -e a failing command in the trap becomes the script's exit
# status: kill with no job left to kill (after stop) fails with 2.
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null; rm -rf "$tmp"' EXIT
go build -o "$tmp/zombi" ./cmd/zombi
go build -o "$tmp/zombi-bench" ./cmd/zombi-bench

start() {
	rm -rf "$tmp/data"
	"$tmp/zombi" serve --data-dir "$tmp/data" --listen "$addr" --log-level warn "$@" >"$tmp/zombi.log" 2>&1 &
	srv=$!
	for _ in $(seq 1 100); do curl -sf "http://$addr/health/ready" >/dev/null && return; sleep 0.1; done
	cat "$tmp/zombi.log"; exit 1
}
stop() { kill "$srv"; wait "$srv" || true; }
bench() { "$tmp/zombi-bench" -url "http://$addr" "$@"; }
