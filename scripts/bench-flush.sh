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
#   2. the same load paced at RATE events/s (default 400,000): committed
#      rows/s must keep up with it and the backlog stay flat; samples to
#      $ZOMBI_BENCH_OUT/sustained-paced.csv;
#   3. ack → visible in loadTable at a fixed 10,000 single events/s.
# 1 and 3 are -runs N (RUNS, default 5) on one server; zombi-bench prints
# the median. 2 is N runs on a fresh server each, so that no run starts
# behind the flush backlog or the compaction debt of another. SERVE_ARGS
# adds flags to zombi serve, e.g. SERVE_ARGS="--maintenance-interval 0" to
# leave compaction out. PHASES picks phases (default "bulk paced visible").
set -euo pipefail
cd "$(dirname "$0")/.."
addr=127.0.0.1:18555
. scripts/bench-lib.sh
series="$out/sustained.csv"
paced="$out/sustained-paced.csv"
rate="${RATE:-400000}"
rm -f "$series" "$paced"
echo "== $(date -u +%FT%TZ) $(git rev-parse --short HEAD), load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"

phases=" ${PHASES:-bulk paced visible} "

if [[ $phases == *" bulk "* ]]; then
	echo "== bulk, end to end${SERVE_ARGS:+, zombi serve $SERVE_ARGS}"
	# shellcheck disable=SC2086 # SERVE_ARGS is a list of flags
	start ${SERVE_ARGS:-}
	bench -table bulk -mode bulk -clients 4 -batch 1000 -size 100 \
		-duration 30s -warmup 3s -runs "$runs" -watch -series "$series"
	echo "server peak RSS (VmHWM, whole life): $(awk '/^VmHWM/ { printf "%.0f MiB", $2 / 1024 }' "/proc/$srv/status")"
	echo "== load average $(cut -d' ' -f1-3 /proc/loadavg); time series: $series"
	stop
fi

if [[ $phases == *" paced "* ]]; then
	echo "== bulk paced at $rate events/s, end to end${SERVE_ARGS:+, zombi serve $SERVE_ARGS}"
	for r in $(seq 1 "$runs"); do
		# shellcheck disable=SC2086
		start ${SERVE_ARGS:-}
		bench -table paced -mode bulk -clients 4 -batch 1000 -size 100 -rate "$rate" \
			-duration 30s -warmup 3s -run "$r" -watch -series "$paced" | tee "$tmp/paced.out"
		stop
		grep 'end to end' "$tmp/paced.out" >>"$tmp/paced.all" || true
	done
	# Lines "run N end to end: committed R rows/s under load (…); E events
	# not committed at the load's end; hot backlog MiB first F last L min M
	# median D max X; ack→visible …": median (min – max) of R, of D and of
	# X over the runs.
	med() { sort -g | awk '{ v[n++] = $1 } END { if (n) printf "%s (%s – %s)", v[int((n - 1) / 2)], v[0], v[n - 1] }'; }
	field() { grep -o "$1" "$tmp/paced.all" | tr -d ';' | awk '{ print $2 }' | med; }
	echo "median of $runs runs: committed rows/s under load $(field 'committed [0-9][0-9]*'); backlog MiB, run medians $(field 'median [0-9.]*'); run maxima $(field 'max [0-9.]*;')"
	echo "== load average $(cut -d' ' -f1-3 /proc/loadavg); time series: $paced"
fi

if [[ $phases == *" visible "* ]]; then
	echo "== ack → visible at 10,000 events/s"
	# shellcheck disable=SC2086
	start ${SERVE_ARGS:-}
	bench -table visible -mode single -clients 64 -rate 10000 \
		-duration 20s -warmup 3s -runs "$runs" -watch
fi
