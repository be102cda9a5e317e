#!/usr/bin/env bash
# Zombi against Apache Iceberg's reference REST server (issue #16), in one
# run: the same catalog operations over HTTP (cmd/zombi-catbench: create
# table, loadTable, loadTable answered 304, append commit, list tables,
# then 16 writers appending to one table) against each server in turn,
# run by run (A B C D, A B C D, …) so that machine noise hits all of them.
#
# Servers, all started once and kept up for the whole run:
#   zombi-embedded   zombi serve, embedded store, local warehouse
#   zombi-postgres   zombi serve on Postgres (a fresh database on
#                    $ZOMBI_TEST_POSTGRES_URL), local warehouse; skipped
#                    without that variable
#   reference-mem    org.apache.iceberg.rest.RESTCatalogServer 1.11.0 on
#                    its default store, JdbcCatalog on in-memory SQLite,
#                    with a pool of one connection (CATALOG_CLIENTS=1): its
#                    default pool of two opens two separate in-memory
#                    databases, and concurrent requests fail with "no such
#                    table: iceberg_tables"
#   reference-file   the same on a SQLite file, as Apache's
#                    iceberg-rest-fixture image configures it
#
# Environment: RUNS (5), DURATION (5s), WARMUP (2s), CLIENTS (8),
# WRITERS (16), ZOMBI_BENCH_OUT (bench-out: catalog.csv and
# catalog-summary.md go there), BASELINE=<git rev> to add a zombi-embedded
# (and zombi-postgres) built from that revision, ZOMBI_CACHE (the jars).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
runs="${RUNS:-5}"
duration="${DURATION:-5s}"
warmup="${WARMUP:-2s}"
clients="${CLIENTS:-8}"
writers="${WRITERS:-16}"
out="${ZOMBI_BENCH_OUT:-bench-out}"
java="${ZOMBI_RCK_JAVA_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}/bin/java"
mkdir -p "$out"
csv="$out/catalog.csv"
rm -f "$csv"

tmp="$(mktemp -d)"
pids=()
dbs=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	for db in "${dbs[@]}"; do psql -q "$ZOMBI_TEST_POSTGRES_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/zombi" ./cmd/zombi
go build -o "$tmp/zombi-catbench" ./cmd/zombi-catbench
if [[ -n "${BASELINE:-}" ]]; then
	mkdir "$tmp/base"
	git archive "$BASELINE" | tar -x -C "$tmp/base"
	(cd "$tmp/base" && go build -o "$tmp/zombi-base" ./cmd/zombi)
fi
cp="$(python3 tests/rck/run.py --reference-classpath)"

names=()
urls=()
port=18480

ready() { # url pid log
	for _ in $(seq 1 300); do
		curl -sf "$1/v1/config" >/dev/null && return
		kill -0 "$2" 2>/dev/null || break
		sleep 0.1
	done
	echo "server at $1 did not start:" >&2
	cat "$3" >&2
	exit 1
}

start_zombi() { # name binary [serve flags…]
	local name="$1" bin="$2"
	shift 2
	port=$((port + 1))
	"$bin" serve --data-dir "$tmp/$name" --listen "127.0.0.1:$port" --log-level warn "$@" >"$tmp/$name.log" 2>&1 &
	pids+=($!)
	ready "http://127.0.0.1:$port" $! "$tmp/$name.log"
	names+=("$name")
	urls+=("http://127.0.0.1:$port")
}

postgres_db() { # a fresh database; its URL in $pg_url
	local db="zombi_catbench_$$_${#dbs[@]}"
	psql -q "$ZOMBI_TEST_POSTGRES_URL" -c "CREATE DATABASE $db" >/dev/null
	dbs+=("$db")
	pg_url="$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$ZOMBI_TEST_POSTGRES_URL" "$db")"
}

# The reference server reads its settings from CATALOG_* variables
# (RCKUtils.environmentCatalogConfig: CATALOG_REST_PORT is rest.port). It
# listens on all interfaces; nothing in it can be made to bind loopback.
start_reference() { # name [VAR=value…]
	local name="$1"
	shift
	port=$((port + 1))
	mkdir -p "$tmp/$name"
	env -u CATALOG_URI "$@" CATALOG_REST_PORT="$port" CATALOG_WAREHOUSE="$tmp/$name/warehouse" \
		"$java" -cp "$cp" org.apache.iceberg.rest.RESTCatalogServer >"$tmp/$name.log" 2>&1 &
	pids+=($!)
	ready "http://127.0.0.1:$port" $! "$tmp/$name.log"
	names+=("$name")
	urls+=("http://127.0.0.1:$port")
}

start_zombi zombi-embedded "$tmp/zombi"
if [[ -n "${BASELINE:-}" ]]; then start_zombi "zombi-embedded@$BASELINE" "$tmp/zombi-base"; fi
if [[ -n "${ZOMBI_TEST_POSTGRES_URL:-}" ]]; then
	postgres_db
	start_zombi zombi-postgres "$tmp/zombi" --postgres-url "$pg_url"
	if [[ -n "${BASELINE:-}" ]]; then
		postgres_db
		start_zombi "zombi-postgres@$BASELINE" "$tmp/zombi-base" --postgres-url "$pg_url"
	fi
else
	echo "no \$ZOMBI_TEST_POSTGRES_URL: zombi-postgres skipped" >&2
fi
start_reference reference-mem CATALOG_CLIENTS=1
start_reference reference-file CATALOG_URI="jdbc:sqlite:$tmp/reference-file/catalog.db" \
	CATALOG_JDBC_USER=user CATALOG_JDBC_PASSWORD=password CATALOG_JDBC_STRICT__MODE=true

bench() { "$tmp/zombi-catbench" -duration "$duration" -warmup "$warmup" "$@"; }

echo "== $(date -u +%FT%TZ) $(git rev-parse --short HEAD), load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
echo "== warming up (the JVMs' JIT), unrecorded"
for i in "${!names[@]}"; do
	bench -url "${urls[$i]}" -server "${names[$i]}" -run 0 -duration 3s -warmup 1s -ops create,load,load304,commit,list 2>/dev/null
done
for r in $(seq 1 "$runs"); do
	for i in "${!names[@]}"; do
		bench -url "${urls[$i]}" -server "${names[$i]}" -run "$r" -clients "$clients" -csv "$csv" \
			-ops create,load,load304,commit,list
		bench -url "${urls[$i]}" -server "${names[$i]}" -run "$r" -clients "$writers" -csv "$csv" \
			-ops contend
	done
	echo "== run $r done, load average $(cut -d' ' -f1-3 /proc/loadavg)"
done
"$tmp/zombi-catbench" -summary "$csv" -reference reference-mem,reference-file | tee "$out/catalog-summary.md"
echo "CSV: $csv"
