#!/usr/bin/env bash
# Installs promtool, Prometheus's rule checker and rule unit-test runner,
# into ${ZOMBI_CACHE:-$HOME/.cache/zombi}/bin for scripts/check-deploy.sh,
# and prints its path.
#
# Idempotent: a promtool of the pinned version already there is left
# alone. A fresh install builds it from source with `go install` from the
# Go module proxy (Prometheus publishes its Go module as v0.<major><minor>.<patch>:
# v0.316.0 is Prometheus 3.16.0): about 9 minutes and 3.6 GB of module and
# build cache on 2 busy cores, most of it Prometheus's dependencies.
set -euo pipefail

version=v0.316.0
bin_dir="${ZOMBI_CACHE:-$HOME/.cache/zombi}/bin"
bin="$bin_dir/promtool" stamp="$bin_dir/.promtool.version"

if [[ -x "$bin" && -f "$stamp" && "$(cat "$stamp")" == "$version" ]]; then
	echo "$bin"
	exit 0
fi
if ! command -v go >/dev/null; then
	echo "install-promtool: go is not on PATH" >&2
	exit 1
fi
echo "install-promtool: building promtool $version with go install (takes minutes)" >&2
mkdir -p "$bin_dir"
tmp="$(mktemp -d "$bin_dir/.install.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS
GOBIN="$tmp" go install -trimpath "github.com/prometheus/prometheus/cmd/promtool@$version" >&2
mv -f "$tmp/promtool" "$bin"
echo "$version" >"$stamp"
echo "install-promtool: installed $bin in $((SECONDS - start))s" >&2
echo "$bin"
