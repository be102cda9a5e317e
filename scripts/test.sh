#!/usr/bin/env bash
# Runs every Zombi test on this machine, fresh or not: installs what is
# missing (PostgreSQL, HAProxy and Chromium from Debian packages, the S3-compatible test server
# from the Go module proxy, promtool from Debian's prometheus package, a
# Python virtualenv from PyPI —
# cached under ${ZOMBI_CACHE:-$HOME/.cache/zombi}), starts one Postgres
# cluster and one S3 server for all suites, then runs:
#   1. checks: generated code current, gofmt, go vet
#   2. scripts/check-deploy.sh: the alerting rules (promtool check and test
#      rules) and the Grafana dashboard under deploy/, against the metrics
#      a running node exports (go test ./deploy)
#   3. go test ./...  (unit, store conformance, end-to-end incl. iceberg-go's
#      catalog conformance suite, on the embedded store and on Postgres + S3,
#      and three --cluster nodes behind HAProxy in tests/cluster)
#   4. each fuzz target, briefly
#   5. pytest tests/interop  (PyIceberg, Spark, DuckDB and Trino against a
#      running zombi, and the web console in headless Chromium driven by
#      Playwright; Spark's Iceberg jars and Trino come from Maven Central,
#      pinned by SHA-256 and cached under $ZOMBI_CACHE/maven; Spark runs on
#      OpenJDK 17, Trino 476 on the machine's Temurin 25 JDK, which no
#      package source this script may use offers, so it is checked, not
#      installed)
#   6. the Iceberg REST Compatibility Kit against zombi on the embedded
#      store and on Postgres (tests/rck; its jars pinned like the above)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export ZOMBI_CACHE="${ZOMBI_CACHE:-$HOME/.cache/zombi}"
mkdir -p "$ZOMBI_CACHE"

step() { printf '\n=== %s\n' "$*"; }

step "prerequisites"
if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
	echo "PostgreSQL server binaries missing: installing the Debian package"
	sudo_=""; [ "$(id -u)" -ne 0 ] && sudo_="sudo"
	$sudo_ apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq postgresql >/dev/null
fi
if [ ! -x /usr/lib/jvm/java-17-openjdk-amd64/bin/java ] && [ -z "${ZOMBI_TEST_SPARK_JAVA_HOME:-}" ]; then
	echo "OpenJDK 17 (for Spark) missing: installing the Debian package"
	sudo_=""; [ "$(id -u)" -ne 0 ] && sudo_="sudo"
	$sudo_ apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq openjdk-17-jre-headless >/dev/null
fi
if ! command -v haproxy >/dev/null && [ ! -x /usr/sbin/haproxy ]; then
	echo "HAProxy (the cluster test's load balancer) missing: installing the Debian package"
	sudo_=""; [ "$(id -u)" -ne 0 ] && sudo_="sudo"
	$sudo_ apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq haproxy >/dev/null
fi
if [ -z "${ZOMBI_TEST_CHROMIUM:-}" ] && [ ! -x /usr/bin/chromium ]; then
	echo "Chromium (the console's browser test) missing: installing the Debian package"
	sudo_=""; [ "$(id -u)" -ne 0 ] && sudo_="sudo"
	$sudo_ apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
trino_java="${ZOMBI_TEST_TRINO_JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
if [ ! -x "$trino_java/bin/java" ]; then
	echo "no JDK 24+ for Trino at $trino_java: install one there or set ZOMBI_TEST_TRINO_JAVA_HOME" >&2
	exit 1
fi
scripts/install-s3-server.sh
scripts/install-promtool.sh
python="$(scripts/pyenv.sh | tail -n 1)"
echo "python: $python"
"$python" tests/interop/artifacts.py >/dev/null
"$python" tests/rck/run.py --fetch >/dev/null

step "generated code is current"
go generate ./openapi ./ingest/...
if ! git diff --quiet -- openapi ingest; then
	git --no-pager diff --stat -- openapi ingest
	echo "generated code is stale: run 'go generate ./openapi ./ingest/...' and commit the result" >&2
	exit 1
fi

step "gofmt and go vet"
unformatted="$(gofmt -l $(git ls-files '*.go'))"
if [ -n "$unformatted" ]; then
	echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
go vet ./...

step "shared test services (Postgres, S3)"
tmp="$(mktemp -d)"
go build -o "$tmp/zombi-testenv" ./internal/testenv/cmd/zombi-testenv
"$tmp/zombi-testenv" >"$tmp/env" 2>"$tmp/testenv.log" &
services=$!
cleanup() {
	kill "$services" 2>/dev/null && wait "$services" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
for _ in $(seq 1 600); do
	grep -q '^# ready' "$tmp/env" 2>/dev/null && break
	if ! kill -0 "$services" 2>/dev/null; then
		cat "$tmp/testenv.log" >&2; exit 1
	fi
	sleep 0.1
done
grep -q '^# ready' "$tmp/env" || { echo "test services did not start" >&2; cat "$tmp/testenv.log" >&2; exit 1; }
# shellcheck disable=SC1091
source "$tmp/env"
echo "postgres: $ZOMBI_TEST_POSTGRES_URL"
echo "s3:       $ZOMBI_TEST_S3_ENDPOINT"

step "deploy: alerting rules and dashboard"
scripts/check-deploy.sh

step "go test ./..."
# ./deploy ran in the step above.
go test -count=1 -timeout 20m $(go list ./... | grep -v '/deploy$')

# The budget is a count of executions, not a duration: with a duration,
# Go before 1.27 can fail a target with a bare "context deadline exceeded"
# when the deadline races a busy worker (go.dev/issue/75804), and this
# machine is busy. 2000 executions take 1-8 s per target here.
step "fuzz targets, briefly (${ZOMBI_FUZZTIME:=2000x} each)"
fuzz() { # package target
	if ! go test -run '^$' -fuzz "^$2\$" -fuzztime "$ZOMBI_FUZZTIME" "$1" >"$tmp/fuzz.log" 2>&1; then
		cat "$tmp/fuzz.log"
		echo "fuzz $2 failed; the failing input is under $1/testdata/fuzz/$2" >&2
		exit 1
	fi
	echo "fuzz $2: ok"
}
for target in FuzzDecodeEnvelopeJSON FuzzDecodeBulkJSON FuzzDecodeBulkNDJSON FuzzDecodeProto FuzzConvert; do
	fuzz ./ingest/codec "$target"
done
for target in FuzzEventValue FuzzDecodeValue; do
	fuzz ./hotrow "$target"
done
fuzz ./ingest FuzzParseTableRef
fuzz ./catalog FuzzCommitConfinement
fuzz ./planning FuzzParseFilter

step "pytest tests/interop"
"$python" -m pytest -q tests/interop

step "Iceberg REST Compatibility Kit"
"$python" tests/rck/run.py embedded postgres

step "all tests passed"
