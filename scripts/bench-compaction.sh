#!/usr/bin/env bash
# Compaction throughput and memory (BENCHMARKS.md, issue #5 and #16):
# BenchmarkCompact run RUNS times (default 5), each in a process of its
# own, printing the median and range of MB/s per core (input bytes /
# process CPU time), of MB/s (wall time) and of the peak Go heap and RSS
# of the compaction.
#
#   scripts/bench-compaction.sh [csv]
#
# BENCH=CompactLarge runs BenchmarkCompactLarge instead: 16 files of about
# 25 MB in one partition (ZOMBI_COMPACT_FILES, ZOMBI_COMPACT_ROWS change
# that). BENCH="Compact ParquetRewrite" runs the two alternately, labelled
# by benchmark: BenchmarkParquetRewrite is arrow-go reading and writing
# BenchmarkCompact's files with nothing of Iceberg around it, the floor
# under the compactor (BENCHMARKS.md).
#
# csv (or $BENCH_CSV; default $ZOMBI_BENCH_OUT/compaction.csv, that is
# bench-out/compaction.csv): append one line per run to this file, with a
# header when it is new:
#   label,run,unix_time,load1,mb_s_core,mb_s,mb_in,files_in,files_out,heap_mb,live_mb,hwm_mb
# heap_mb is the peak of the Go heap (sampled every millisecond), live_mb
# the most a GC found live, hwm_mb the process's peak RSS over the
# compaction (VmHWM). scripts/plot-bench.py draws it.
#
# BASE=<git ref>: also build the benchmark from that commit and run the
# two alternately (base, this tree, base, …), so that the machine's other
# load falls on both alike; their figures are labelled "base" and "head".
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${RUNS:-5}"
read -ra benches <<<"${BENCH:-Compact}"
header="label,run,unix_time,load1,mb_s_core,mb_s,mb_in,files_in,files_out,heap_mb,live_mb,hwm_mb"
csv="${1:-${BENCH_CSV:-${ZOMBI_BENCH_OUT:-bench-out}/compaction.csv}}"
mkdir -p "$(dirname "$csv")"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

go test -c -o "$tmp/head.test" ./compaction
builds=(head)
if [[ -n "${BASE:-}" ]]; then
	mkdir "$tmp/base"
	git archive "$BASE" | tar -x -C "$tmp/base"
	(cd "$tmp/base" && go test -c -o "$tmp/base.test" ./compaction)
	builds=(base head)
fi
# A run is a build and a benchmark; its label is the build's name, the
# benchmark's when several benchmarks are given, or both.
runs_of=()
labels=()
for build in "${builds[@]}"; do
	for b in "${benches[@]}"; do
		label="$build"
		if ((${#benches[@]} > 1)); then
			label="$b"
			((${#builds[@]} > 1)) && label="$build-$b"
		fi
		runs_of+=("$build:$b:$label")
		labels+=("$label")
	done
done
if [[ -n "$csv" && ! -s "$csv" ]]; then
	echo "$header" >"$csv"
elif [[ -n "$csv" && "$(head -n1 "$csv")" != "$header" ]]; then
	echo "bench-compaction.sh: $csv has other columns than $header; give another file" >&2
	exit 1
fi

for run in $(seq 1 "$runs"); do
	for spec in "${runs_of[@]}"; do
		IFS=: read -r build bench label <<<"$spec"
		load="$(cut -d' ' -f1 /proc/loadavg)"
		line="$(cd compaction && "$tmp/$build.test" -test.run '^$' -test.bench "^Benchmark$bench\$" \
			-test.benchtime 1x -test.count 1 | grep "^Benchmark$bench")"
		# BenchmarkCompact-2  1  3438006708 ns/op  15.66 MB/s  27.86 MB/s/core  54.32 MB_in  50.00 files_in  1.000 files_out  490.1 heap_MB  251.0 live_MB  610.2 hwm_MB
		# (a base without the memory figures leaves their columns empty)
		fig="$(awk -v l="$label" -v r="$run" -v t="$(date +%s)" -v ld="$load" '{
			for (i = 1; i < NF; i++) v[$(i+1)] = $i
			printf "%s,%d,%d,%s,%s,%s,%s,%s,%s,%s,%s,%s\n", l, r, t, ld, v["MB/s/core"], v["MB/s"], v["MB_in"], v["files_in"], v["files_out"], v["heap_MB"], v["live_MB"], v["hwm_MB"]
		}' <<<"$line")"
		echo "$fig" >>"$tmp/all.csv"
		[[ -n "$csv" ]] && echo "$fig" >>"$csv"
		echo "$fig"
	done
done

for label in "${labels[@]}"; do
	for col in 5:MB/s/core 6:MB/s 10:heap_MB 11:live_MB 12:hwm_MB; do
		sort -t, -k"${col%%:*}" -g "$tmp/all.csv" | awk -F, -v l="$label" -v c="${col%%:*}" -v name="${col#*:}" '
			$1 == l && $c != "" { v[n++] = $c }
			END { if (n) printf "%s %-10s median %.1f  range %.1f–%.1f  (%d runs)\n", l, name, v[int((n-1)/2)], v[0], v[n-1], n }'
	done
done
